//! One segment: a file of record batches plus its sparse offset and timestamp indexes.
//!
//! On disk a segment is `<base offset, 20 digits>.log` holding batches back to back, exactly as
//! producers sent them with only the base offset assigned. Its indexes are kept in memory while
//! the node runs and written beside it when the segment is sealed or the node stops:
//!
//! - `.index`: big-endian pairs `(offset - base: u32, byte position: u32)`, one every
//!   `index_interval_bytes`, ascending in both;
//! - `.timeindex`: big-endian pairs `(max timestamp so far: i64, offset - base: u32)`, ascending.
//!
//! The index files are a cache: a missing or inconsistent one is rebuilt from the `.log` by reading
//! batch headers, so the `.log` file is the only truth.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::batch::{self, BatchError, BatchHeader, HEADER_LEN};
use crate::LogError;

#[derive(Debug, Default, Clone)]
pub(crate) struct SparseIndex {
    /// (offset relative to the segment base, byte position of the batch holding it)
    pub offsets: Vec<(u32, u32)>,
    /// (largest timestamp up to this batch, relative offset of the batch)
    pub times: Vec<(i64, u32)>,
    bytes_since_entry: u64,
}

/// Where recovery of a segment stopped, when it found damage.
#[derive(Debug, Clone)]
pub struct Damage {
    pub position: u64,
    pub last_good_offset: Option<i64>,
    pub reason: BatchError,
}

/// One segment file of a partition, with its offset and time indexes.
#[derive(Debug)]
pub struct Segment {
    /// Offset of the first batch the segment holds.
    pub base_offset: i64,
    path: PathBuf,
    file: File,
    /// Bytes readers may see: only whole, written batches.
    size: AtomicU64,
    /// Offset after the last batch in the segment.
    next_offset: AtomicI64,
    /// Largest batch timestamp seen, for retention and time lookups; -1 when empty.
    max_timestamp: AtomicI64,
    /// Milliseconds since the epoch when the segment got its first batch, for age-based rolls.
    first_append_ms: AtomicI64,
    index: Mutex<SparseIndex>,
    index_interval: u64,
    /// Held while the index files are rewritten: the flusher's checkpoint and a close can
    /// overlap, and both write through the same temporary file.
    index_files: Mutex<()>,
}

pub(crate) fn segment_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.log")
}

/// Milliseconds since the Unix epoch, as record timestamps hold them.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Segment {
    /// Creates a new, empty segment file.
    pub fn create(dir: &Path, base_offset: i64, index_interval: u64) -> Result<Self, LogError> {
        let path = dir.join(segment_file_name(base_offset));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(LogError::io("create segment", &path))?;
        Ok(Self::from_parts(path, file, base_offset, index_interval))
    }

    fn from_parts(path: PathBuf, file: File, base_offset: i64, index_interval: u64) -> Self {
        Segment {
            base_offset,
            path,
            file,
            size: AtomicU64::new(0),
            next_offset: AtomicI64::new(base_offset),
            max_timestamp: AtomicI64::new(-1),
            first_append_ms: AtomicI64::new(-1),
            index: Mutex::new(SparseIndex::default()),
            index_interval: index_interval.max(1),
            index_files: Mutex::new(()),
        }
    }

    /// Opens an existing segment.
    ///
    /// With `verify`, every batch's CRC is checked and a damaged tail is cut off (the returned
    /// `Damage` says where); otherwise saved indexes are trusted when they are consistent and
    /// only headers after the last index entry are read.
    pub fn open(
        path: &Path,
        base_offset: i64,
        index_interval: u64,
        verify: bool,
    ) -> Result<(Self, Option<Damage>), LogError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(LogError::io("open segment", path))?;
        let len = file
            .metadata()
            .map_err(LogError::io("stat segment", path))?
            .len();
        let seg = Self::from_parts(path.to_path_buf(), file, base_offset, index_interval);
        // Saved indexes describe a prefix of the file that was synced before they were written
        // (at a roll, a checkpoint or a clean stop): that prefix is trusted, the rest is read.
        let (start_pos, described, mut index) = match seg.load_index_files(len) {
            Some((idx, described)) => {
                let pos = idx.offsets.last().map(|e| u64::from(e.1)).unwrap_or(0);
                (pos, described, idx)
            }
            None => (0, 0, SparseIndex::default()),
        };
        // Entries at or past the scan start are re-added by the scan.
        index.offsets.retain(|e| u64::from(e.1) < start_pos);
        // The first batch the scan reads gets an index entry again.
        index.bytes_since_entry = seg.index_interval;
        let verify_from = if verify { described } else { u64::MAX };
        let damage = seg.scan(start_pos, len, verify_from, &mut index)?;
        *seg.index.lock() = index;
        Ok((seg, damage))
    }

    /// Reads headers from `from` to `len`, extending `index` and the segment's counters, and
    /// truncates the file at the first damaged batch.
    fn scan(
        &self,
        from: u64,
        len: u64,
        verify_from: u64,
        index: &mut SparseIndex,
    ) -> Result<Option<Damage>, LogError> {
        let mut pos = from;
        let mut last_good = None;
        let mut damage = None;
        let mut head = [0u8; HEADER_LEN];
        let mut body = Vec::new();
        while pos < len {
            let avail = (len - pos) as usize;
            if avail < HEADER_LEN {
                damage = Some(BatchError::Truncated {
                    needed: HEADER_LEN,
                    available: avail,
                });
                break;
            }
            self.file
                .read_exact_at(&mut head, pos)
                .map_err(LogError::io("read segment", &self.path))?;
            let header = match BatchHeader::parse(&head) {
                Ok(h) => h,
                Err(e) => {
                    damage = Some(e);
                    break;
                }
            };
            if header.total_len > avail {
                damage = Some(BatchError::Truncated {
                    needed: header.total_len,
                    available: avail,
                });
                break;
            }
            if pos >= verify_from {
                body.resize(header.total_len, 0);
                self.file
                    .read_exact_at(&mut body, pos)
                    .map_err(LogError::io("read segment", &self.path))?;
                if let Err(e) = BatchHeader::parse_checked(&body) {
                    damage = Some(e);
                    break;
                }
            }
            let expected = self.next_offset.load(Ordering::Relaxed);
            if header.base_offset < expected || header.base_offset < self.base_offset {
                damage = Some(BatchError::BadLength {
                    length: header.base_offset,
                    min: 0,
                });
                break;
            }
            self.note_batch(&header, pos, index);
            last_good = Some(header.last_offset());
            pos += header.total_len as u64;
        }
        self.size.store(pos, Ordering::Release);
        if let Some(reason) = damage {
            self.file
                .set_len(pos)
                .map_err(LogError::io("truncate segment", &self.path))?;
            self.file
                .sync_all()
                .map_err(LogError::io("sync segment", &self.path))?;
            let last_good_offset =
                last_good.or_else(|| Some(self.next_offset.load(Ordering::Relaxed) - 1));
            return Ok(Some(Damage {
                position: pos,
                last_good_offset: last_good_offset.filter(|o| *o >= 0),
                reason,
            }));
        }
        Ok(None)
    }

    /// Records a batch now at byte `pos` in the counters and sparse index.
    fn note_batch(&self, header: &BatchHeader, pos: u64, index: &mut SparseIndex) {
        let rel = (header.base_offset - self.base_offset) as u32;
        if index.offsets.is_empty() || index.bytes_since_entry >= self.index_interval {
            index.offsets.push((rel, pos as u32));
            let prev = index.times.last().map(|t| t.0).unwrap_or(i64::MIN);
            if header.max_timestamp > prev {
                index.times.push((header.max_timestamp, rel));
            }
            index.bytes_since_entry = 0;
        }
        index.bytes_since_entry += header.total_len as u64;
        self.next_offset
            .store(header.last_offset() + 1, Ordering::Release);
        self.max_timestamp
            .fetch_max(header.max_timestamp, Ordering::AcqRel);
        // Age is wall-clock time since this node first wrote to (or reopened) the segment, not
        // record timestamps: replaying old events must not roll a segment per batch.
        let _ = self.first_append_ms.compare_exchange(
            -1,
            now_ms(),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }

    /// Appends batches that already carry their assigned offsets. `headers` are the batches'
    /// parsed headers in order. On a failed write the file is cut back so no partial batch stays.
    pub fn append(&self, bytes: &[u8], headers: &[BatchHeader]) -> Result<(), LogError> {
        let pos = self.size.load(Ordering::Acquire);
        if let Err(e) = self.file.write_all_at(bytes, pos) {
            let _ = self.file.set_len(pos);
            return Err(LogError::Io {
                op: "append to segment",
                path: self.path.clone(),
                source: e,
            });
        }
        let mut index = self.index.lock();
        let mut at = pos;
        for h in headers {
            self.note_batch(h, at, &mut index);
            at += h.total_len as u64;
        }
        if self.first_append_ms.load(Ordering::Relaxed) < 0 {
            self.first_append_ms.store(now_ms(), Ordering::Relaxed);
        }
        drop(index);
        self.size.store(at, Ordering::Release);
        Ok(())
    }

    /// Bytes readers may see.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }
    /// The offset after the segment's last batch.
    pub fn next_offset(&self) -> i64 {
        self.next_offset.load(Ordering::Acquire)
    }
    /// Largest timestamp of a batch in the segment.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp.load(Ordering::Acquire)
    }
    /// The segment file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Age of the segment in ms, counted from its first append.
    pub fn age_ms(&self, now: i64) -> i64 {
        let first = self.first_append_ms.load(Ordering::Relaxed);
        if first < 0 {
            0
        } else {
            now - first
        }
    }

    /// Syncs the file's data to disk.
    pub fn sync(&self) -> Result<(), LogError> {
        self.file
            .sync_data()
            .map_err(LogError::io("fsync segment", &self.path))
    }

    /// Byte position of the batch holding `offset`, or the segment size if it is past the end.
    pub fn position_of(&self, offset: i64) -> Result<u64, LogError> {
        let rel = (offset - self.base_offset).max(0) as u32;
        let start = {
            let index = self.index.lock();
            let i = index.offsets.partition_point(|e| e.0 <= rel);
            if i == 0 {
                0
            } else {
                u64::from(index.offsets[i - 1].1)
            }
        };
        self.walk_from(start, |h| h.last_offset() >= offset)
    }

    /// Byte position of the first batch whose max timestamp is at least `ts`, with its header.
    pub fn position_of_time(&self, ts: i64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let start = {
            let index = self.index.lock();
            let i = index.times.partition_point(|e| e.0 < ts);
            // The batch of entry i-1 had max timestamp below ts; start at its offset.
            let rel = if i == 0 { 0 } else { index.times[i - 1].1 };
            let j = index.offsets.partition_point(|e| e.0 <= rel);
            if j == 0 {
                0
            } else {
                u64::from(index.offsets[j - 1].1)
            }
        };
        let mut found = None;
        let pos = self.walk_from(start, |h| {
            if h.max_timestamp >= ts {
                found = Some(*h);
                true
            } else {
                false
            }
        })?;
        Ok(found.map(|h| (pos, h)))
    }

    /// Calls `f` with every batch header from byte `pos` to the end.
    pub fn for_each_header(
        &self,
        pos: u64,
        mut f: impl FnMut(&BatchHeader),
    ) -> Result<(), LogError> {
        self.walk_from(pos, |h| {
            f(h);
            false
        })
        .map(|_| ())
    }

    /// Walks batch headers from `pos` until `stop` says yes; returns that batch's position or
    /// the segment size.
    fn walk_from(
        &self,
        mut pos: u64,
        mut stop: impl FnMut(&BatchHeader) -> bool,
    ) -> Result<u64, LogError> {
        let size = self.size();
        let mut head = [0u8; HEADER_LEN];
        while pos + HEADER_LEN as u64 <= size {
            self.file
                .read_exact_at(&mut head, pos)
                .map_err(LogError::io("read segment", &self.path))?;
            let h = BatchHeader::parse(&head).map_err(|source| LogError::Corrupt {
                path: self.path.clone(),
                position: pos,
                offset: -1,
                source,
            })?;
            if stop(&h) {
                return Ok(pos);
            }
            pos += h.total_len as u64;
        }
        Ok(size)
    }

    /// Reads whole batches from `pos`, at most `max_bytes` of them, but always the first whole
    /// batch even when it alone is larger (as Kafka does, so a consumer can always progress).
    pub fn read_batches(&self, pos: u64, max_bytes: usize) -> Result<Vec<u8>, LogError> {
        let size = self.size();
        if pos >= size {
            return Ok(Vec::new());
        }
        let want = ((size - pos) as usize).min(max_bytes.max(HEADER_LEN));
        let mut buf = vec![0u8; want];
        self.file
            .read_exact_at(&mut buf, pos)
            .map_err(LogError::io("read segment", &self.path))?;
        let corrupt = |source| LogError::Corrupt {
            path: self.path.clone(),
            position: pos,
            offset: -1,
            source,
        };
        let mut end = 0usize;
        for (at, item) in batch::BatchIter::new(&buf) {
            match item {
                Ok(h) => end = at + h.total_len,
                Err(BatchError::Truncated { .. }) => break,
                Err(source) if at == 0 => return Err(corrupt(source)),
                Err(_) => break,
            }
        }
        if end == 0 {
            // The first batch alone is larger than max_bytes: return it whole.
            let len = batch::total_len(&buf).map_err(corrupt)?;
            let len = (len as u64).min(size - pos) as usize;
            buf.resize(len, 0);
            self.file
                .read_exact_at(&mut buf, pos)
                .map_err(LogError::io("read segment", &self.path))?;
            return Ok(buf);
        }
        buf.truncate(end);
        Ok(buf)
    }

    fn index_paths(&self) -> (PathBuf, PathBuf) {
        (
            self.path.with_extension("index"),
            self.path.with_extension("timeindex"),
        )
    }

    /// Writes the in-memory indexes beside the segment, describing its first `size` bytes, which
    /// the caller has synced. Each file is replaced atomically, so a crash leaves the old or the
    /// new index, never a torn one.
    pub fn write_index_files(&self, size: u64) -> Result<(), LogError> {
        let _one_writer = self.index_files.lock();
        let index = self.index.lock().clone();
        let (opath, tpath) = self.index_paths();
        let kept: Vec<&(u32, u32)> = index
            .offsets
            .iter()
            .filter(|(_, pos)| u64::from(*pos) < size)
            .collect();
        let last_rel = kept.last().map(|e| e.0);
        let mut o = Vec::with_capacity(kept.len() * 8 + 8);
        for (rel, pos) in &kept {
            o.extend(rel.to_be_bytes());
            o.extend(pos.to_be_bytes());
        }
        // The trailer records how many bytes of the segment the index describes.
        o.extend(size.to_be_bytes());
        let mut t = Vec::with_capacity(index.times.len() * 12);
        for (ts, rel) in &index.times {
            if last_rel.is_some_and(|l| *rel <= l) {
                t.extend(ts.to_be_bytes());
                t.extend(rel.to_be_bytes());
            }
        }
        for (path, bytes) in [(&tpath, &t), (&opath, &o)] {
            let tmp = path.with_extension("tmp-index");
            crate::fsutil::write_synced(&tmp, bytes)?;
            std::fs::rename(&tmp, path).map_err(LogError::io("rename index", path))?;
        }
        Ok(())
    }

    /// Loads saved indexes if they describe a prefix of a file of `len` bytes; returns them with
    /// the length of that prefix.
    fn load_index_files(&self, len: u64) -> Option<(SparseIndex, u64)> {
        let (opath, tpath) = self.index_paths();
        let o = std::fs::read(&opath).ok()?;
        let t = std::fs::read(&tpath).ok()?;
        if o.len() < 8 || (o.len() - 8) % 8 != 0 || t.len() % 12 != 0 {
            return None;
        }
        let (entries, trailer) = o.split_at(o.len() - 8);
        let described = u64::from_be_bytes(trailer.try_into().ok()?);
        if described > len {
            return None;
        }
        let mut index = SparseIndex::default();
        for e in entries.chunks_exact(8) {
            let rel = u32::from_be_bytes(e[0..4].try_into().ok()?);
            let pos = u32::from_be_bytes(e[4..8].try_into().ok()?);
            if u64::from(pos) >= described {
                return None;
            }
            index.offsets.push((rel, pos));
        }
        for e in t.chunks_exact(12) {
            let ts = i64::from_be_bytes(e[0..8].try_into().ok()?);
            let rel = u32::from_be_bytes(e[8..12].try_into().ok()?);
            index.times.push((ts, rel));
        }
        // Counters for the part before the scan start come from the saved time index.
        if let Some((ts, _)) = index.times.last() {
            self.max_timestamp.store(*ts, Ordering::Relaxed);
        }
        if let Some((rel, _)) = index.offsets.last() {
            self.next_offset
                .store(self.base_offset + i64::from(*rel), Ordering::Relaxed);
        }
        Some((index, described))
    }

    /// Removes the segment's files.
    pub fn delete_files(&self) -> Result<(), LogError> {
        let (opath, tpath) = self.index_paths();
        for p in [&opath, &tpath] {
            if p.exists() {
                std::fs::remove_file(p).map_err(LogError::io("delete index", p))?;
            }
        }
        std::fs::remove_file(&self.path).map_err(LogError::io("delete segment", &self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::test_batches::batch;

    fn with_offset(mut b: Vec<u8>, off: i64) -> (Vec<u8>, BatchHeader) {
        batch::set_base_offset(&mut b, off);
        let h = BatchHeader::parse(&b).expect("valid");
        (b, h)
    }

    #[test]
    fn append_read_and_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let seg = Segment::create(dir.path(), 100, 64).expect("create");
        let mut next = 100;
        for _ in 0..50 {
            let (b, h) = with_offset(batch(3, 20, None), next);
            seg.append(&b, &[h]).expect("append");
            next += 3;
        }
        assert_eq!(seg.next_offset(), 250);
        let pos = seg.position_of(130).expect("find");
        let read = seg.read_batches(pos, 1).expect("read");
        let h = BatchHeader::parse_checked(&read).expect("whole batch");
        assert_eq!(h.base_offset, 130);
        assert!(h.last_offset() >= 130);
        seg.write_index_files(seg.size()).expect("index");
        let path = seg.path().to_path_buf();
        drop(seg);
        let (seg, damage) = Segment::open(&path, 100, 64, false).expect("reopen");
        assert!(damage.is_none());
        assert_eq!(seg.next_offset(), 250);
        assert_eq!(seg.position_of(130).expect("find"), pos);
    }

    #[test]
    fn torn_tail_is_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let seg = Segment::create(dir.path(), 0, 4096).expect("create");
        let (b, h) = with_offset(batch(2, 10, None), 0);
        seg.append(&b, &[h]).expect("append");
        let good = seg.size();
        let (b2, h2) = with_offset(batch(2, 10, None), 2);
        seg.append(&b2[..b2.len() - 5], &[h2]).expect("append torn");
        let path = seg.path().to_path_buf();
        drop(seg);
        let (seg, damage) = Segment::open(&path, 0, 4096, true).expect("reopen");
        let d = damage.expect("damage found");
        assert_eq!(d.position, good);
        assert_eq!(d.last_good_offset, Some(1));
        assert_eq!(seg.size(), good);
        assert_eq!(seg.next_offset(), 2);
    }
}
