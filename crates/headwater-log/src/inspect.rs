//! Reading segment files offline, for `headwater log inspect` and `headwater log verify`.
//!
//! These read the files directly (no node needed, nothing is written) and check every batch's
//! header and CRC, reporting the byte position of anything wrong.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::batch::{BatchError, BatchHeader, HEADER_LEN};
use crate::partition::list_segments;
use crate::LogError;

/// One batch as found in a file.
#[derive(Debug, Clone)]
pub struct BatchReport {
    /// Byte position of the batch in the file.
    pub position: u64,
    /// Its header.
    pub header: BatchHeader,
    /// Whether its CRC matches its content.
    pub crc_ok: bool,
}

/// Something wrong in a file, and where.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The segment file.
    pub file: PathBuf,
    /// Byte position of the damage in the file.
    pub position: u64,
    /// Last offset of the last batch before it that checked out.
    pub last_good_offset: Option<i64>,
    /// What is wrong.
    pub error: BatchError,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: byte {}: {}",
            self.file.display(),
            self.position,
            self.error
        )?;
        match self.last_good_offset {
            Some(o) => write!(f, " (last good offset {o})"),
            None => write!(f, " (no good batch before it)"),
        }
    }
}

/// Segment files named by `path`: the file itself, or every segment of a partition directory,
/// or of every partition under a data or topics directory.
pub fn segment_files(path: &Path) -> Result<Vec<PathBuf>, LogError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let direct = list_segments(path)?;
    if !direct.is_empty() {
        return Ok(direct.into_iter().map(|(_, p)| p).collect());
    }
    let mut out = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let mut children: Vec<_> = std::fs::read_dir(&d)
            .map_err(LogError::io("list", &d))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        children.sort();
        for c in children {
            let segs = list_segments(&c)?;
            if segs.is_empty() {
                dirs.push(c);
            } else {
                out.extend(segs.into_iter().map(|(_, p)| p));
            }
        }
    }
    Ok(out)
}

/// Reads every batch of one segment file, calling `on_batch` for each; stops at the first
/// unreadable batch and returns it as a problem. CRC failures are reported and reading goes on,
/// since the length field still says where the next batch starts.
pub fn scan_file(
    path: &Path,
    mut on_batch: impl FnMut(&BatchReport),
) -> Result<Vec<Problem>, LogError> {
    let file = File::open(path).map_err(LogError::io("open", path))?;
    let len = file.metadata().map_err(LogError::io("stat", path))?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut pos = 0u64;
    let mut buf = Vec::new();
    let mut problems = Vec::new();
    let mut last_good = None;
    while pos < len {
        let avail = len - pos;
        let problem = |error| Problem {
            file: path.to_path_buf(),
            position: pos,
            last_good_offset: last_good,
            error,
        };
        if avail < HEADER_LEN as u64 {
            problems.push(problem(BatchError::Truncated {
                needed: HEADER_LEN,
                available: avail as usize,
            }));
            break;
        }
        buf.resize(HEADER_LEN, 0);
        reader
            .read_exact(&mut buf)
            .map_err(LogError::io("read", path))?;
        let header = match BatchHeader::parse(&buf) {
            Ok(h) => h,
            Err(e) => {
                problems.push(problem(e));
                break;
            }
        };
        if header.total_len as u64 > avail {
            problems.push(problem(BatchError::Truncated {
                needed: header.total_len,
                available: avail as usize,
            }));
            break;
        }
        buf.resize(header.total_len, 0);
        reader
            .read_exact(&mut buf[HEADER_LEN..])
            .map_err(LogError::io("read", path))?;
        let crc = BatchHeader::parse_checked(&buf);
        if let Err(e) = &crc {
            problems.push(problem(e.clone()));
        } else {
            last_good = Some(header.last_offset());
        }
        on_batch(&BatchReport {
            position: pos,
            header,
            crc_ok: crc.is_ok(),
        });
        pos += header.total_len as u64;
    }
    Ok(problems)
}

/// One line per batch, in the spirit of Kafka's DumpLogSegments.
pub fn format_batch(r: &BatchReport) -> String {
    let h = &r.header;
    format!(
        "baseOffset: {} lastOffset: {} count: {} position: {} size: {} baseTimestamp: {} maxTimestamp: {} producerId: {} producerEpoch: {} baseSequence: {} lastSequence: {} isTransactional: {} isControl: {} compression: {} crc: {:#010x} crcOk: {}",
        h.base_offset,
        h.last_offset(),
        h.record_count,
        r.position,
        h.total_len,
        h.base_timestamp,
        h.max_timestamp,
        h.producer_id,
        h.producer_epoch,
        h.base_sequence,
        h.last_sequence(),
        h.is_transactional(),
        h.is_control(),
        h.compression(),
        h.crc,
        r.crc_ok
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::test_batches::batch;

    #[test]
    fn finds_flipped_byte_and_torn_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("00000000000000000000.log");
        let one = batch(2, 30, None);
        let mut bytes = one.clone();
        let mut second = batch(2, 30, None);
        crate::batch::set_base_offset(&mut second, 2);
        let flip_at = bytes.len() + 70;
        bytes.extend(&second);
        bytes.extend(&one[..20]);
        bytes[flip_at] ^= 0x40;
        std::fs::write(&path, &bytes).expect("write");
        let mut seen = 0;
        let problems = scan_file(&path, |_| seen += 1).expect("scan");
        assert_eq!(seen, 2);
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].position, one.len() as u64);
        assert!(matches!(problems[0].error, BatchError::BadCrc { .. }));
        assert_eq!(problems[1].position, (one.len() * 2) as u64);
        assert!(problems[1].to_string().contains("byte"));
    }
}
