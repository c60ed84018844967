//! The Kafka v2 record batch: its header read in place, and every change Headwater makes to
//! batch bytes.
//!
//! This module is the one place that knows the byte layout below. The header is read here
//! ([`BatchHeader`], [`BatchIter`]); header fields are rewritten with the CRC kept valid in
//! [`surgery`] (the last offset delta, record-less batches that hold a span of offsets); batches
//! Headwater writes itself are encoded in [`encode`]. Nothing outside this module reads or writes
//! a batch by byte offset.
//!
//! A batch on disk is byte-for-byte what the producer sent, except the first eight bytes (the base
//! offset), which the log assigns. The CRC32C in the header covers everything from the attributes
//! field to the end of the batch, so assigning the base offset never invalidates it.
//!
//! ```text
//! offset  size  field
//!      0     8  base offset            (assigned by the log)
//!      8     4  batch length           (bytes after this field)
//!     12     4  partition leader epoch
//!     16     1  magic                  (must be 2)
//!     17     4  crc32c                 (of bytes 21..end)
//!     21     2  attributes             (bits 0-2 compression, 3 timestamp type, 4 transactional, 5 control)
//!     23     4  last offset delta
//!     27     8  base timestamp
//!     35     8  max timestamp
//!     43     8  producer id
//!     51     2  producer epoch
//!     53     4  base sequence
//!     57     4  record count
//!     61        records
//! ```

use std::fmt;

pub mod encode;
pub mod surgery;

pub use encode::{encode_records, plain_batch, plain_record, producer_batch, Headers};
pub use surgery::{
    count_records, record_less_batch, set_last_offset_delta, span, whole_batch_len, Span,
};

/// Bytes before the records of a v2 batch.
pub const HEADER_LEN: usize = 61;
/// Bytes needed to learn a batch's total length: base offset plus length field.
pub const LENGTH_PREFIX_LEN: usize = 12;
/// First byte the CRC covers (the attributes field).
const CRC_START: usize = 21;

/// Why a byte range is not a valid v2 record batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than the batch (or its header) needs.
    #[error("batch is truncated: {needed} bytes declared, {available} present")]
    Truncated {
        /// Bytes the batch needs.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// The length field cannot describe a v2 batch.
    #[error("batch length {length} is invalid (must be at least {min})")]
    BadLength {
        /// The length field as read.
        length: i64,
        /// The smallest valid length.
        min: usize,
    },
    /// Not a v2 batch: Headwater stores only magic 2.
    #[error("record batch magic {magic} is not supported (only v2 batches, magic 2)")]
    BadMagic {
        /// The magic byte as read.
        magic: i8,
    },
    /// The content does not match the CRC32C in the header.
    #[error("CRC mismatch: header says {stored:#010x}, content gives {computed:#010x}")]
    BadCrc {
        /// The CRC in the header.
        stored: u32,
        /// The CRC of the content.
        computed: u32,
    },
    /// A negative record count or last offset delta.
    #[error("batch declares {count} records, which is invalid")]
    BadCount {
        /// The count as read.
        count: i32,
    },
    /// A batch must span at least one offset.
    #[error("a record batch spans at least one offset; {span} was asked for")]
    BadSpan {
        /// The span asked for.
        span: i32,
    },
    /// The codec could not encode records into a batch: its message, as it gave it (the
    /// `kafka-protocol` encoder reports untyped errors).
    #[error("{reason}")]
    Encode {
        /// The codec's message.
        reason: String,
    },
}

/// Compression codec named in a batch's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Records stored as they are.
    None,
    /// gzip (codec 1).
    Gzip,
    /// Snappy (codec 2).
    Snappy,
    /// LZ4 (codec 3).
    Lz4,
    /// Zstandard (codec 4).
    Zstd,
    /// A codec number Kafka does not define.
    Unknown(u8),
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::None => f.write_str("none"),
            Compression::Gzip => f.write_str("gzip"),
            Compression::Snappy => f.write_str("snappy"),
            Compression::Lz4 => f.write_str("lz4"),
            Compression::Zstd => f.write_str("zstd"),
            Compression::Unknown(c) => write!(f, "unknown({c})"),
        }
    }
}

/// The fixed header of one batch, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record (assigned by the log).
    pub base_offset: i64,
    /// Total bytes of the batch, header included.
    pub total_len: usize,
    /// Partition leader epoch.
    pub leader_epoch: i32,
    /// Format version: always 2 once parsed.
    pub magic: i8,
    /// CRC32C of the bytes from the attributes to the end.
    pub crc: u32,
    /// Compression, timestamp type, transactional and control bits.
    pub attributes: i16,
    /// Offset of the last record relative to the base offset.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Epoch of that producer, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Records the batch holds (fewer than its span after compaction).
    pub record_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

/// Total length of the batch starting at `buf`, from its 12-byte prefix.
pub fn total_len(prefix: &[u8]) -> Result<usize, BatchError> {
    if prefix.len() < LENGTH_PREFIX_LEN {
        return Err(BatchError::Truncated {
            needed: LENGTH_PREFIX_LEN,
            available: prefix.len(),
        });
    }
    let declared = i64::from(be_i32(prefix, 8));
    let total = declared + LENGTH_PREFIX_LEN as i64;
    if total < HEADER_LEN as i64 {
        return Err(BatchError::BadLength {
            length: declared,
            min: HEADER_LEN - LENGTH_PREFIX_LEN,
        });
    }
    Ok(total as usize)
}

impl BatchHeader {
    /// Decodes the header at the start of `buf` and checks the length and magic, not the CRC.
    pub fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        let total = total_len(buf)?;
        if buf.len() < HEADER_LEN {
            return Err(BatchError::Truncated {
                needed: HEADER_LEN,
                available: buf.len(),
            });
        }
        let magic = buf[16] as i8;
        if magic != 2 {
            return Err(BatchError::BadMagic { magic });
        }
        let header = BatchHeader {
            base_offset: be_i64(buf, 0),
            total_len: total,
            leader_epoch: be_i32(buf, 12),
            magic,
            crc: be_i32(buf, 17) as u32,
            attributes: be_i16(buf, 21),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            record_count: be_i32(buf, 57),
        };
        if header.record_count < 0 || header.last_offset_delta < 0 {
            return Err(BatchError::BadCount {
                count: header.record_count,
            });
        }
        Ok(header)
    }

    /// Decodes the header and verifies the CRC over the whole batch in `buf`.
    pub fn parse_checked(buf: &[u8]) -> Result<Self, BatchError> {
        let header = Self::parse(buf)?;
        if buf.len() < header.total_len {
            return Err(BatchError::Truncated {
                needed: header.total_len,
                available: buf.len(),
            });
        }
        let computed = crc32c::crc32c(&buf[CRC_START..header.total_len]);
        if computed != header.crc {
            return Err(BatchError::BadCrc {
                stored: header.crc,
                computed,
            });
        }
        Ok(header)
    }

    /// Offset of the last record the batch spans.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Offsets the batch occupies: Kafka counts by the last offset delta, not the record count,
    /// because compaction may leave gaps.
    pub fn offset_span(&self) -> i64 {
        i64::from(self.last_offset_delta) + 1
    }

    /// The codec of the records, from the attributes.
    pub fn compression(&self) -> Compression {
        match self.attributes & 0x7 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            c => Compression::Unknown(c as u8),
        }
    }

    /// Whether a transactional producer wrote the batch.
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    /// Whether the batch is a control batch (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    /// Last sequence number in the batch, wrapping like Kafka's producers do.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        (last % (i64::from(i32::MAX) + 1)) as i32
    }
}

/// Writes `base_offset` into the first eight bytes of a batch.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Iterates over the batch boundaries of a buffer of concatenated batches.
///
/// Stops at the first incomplete batch; `remainder` then tells how many bytes were left over.
#[derive(Debug)]
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> BatchIter<'a> {
    /// Iterates over the batches of `buf`, from its start.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    /// Byte position of the next batch in the buffer.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for BatchIter<'a> {
    /// Position of the batch in the buffer and its header (length and magic checked, not CRC).
    type Item = (usize, Result<BatchHeader, BatchError>);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.buf[self.pos..];
        if rest.is_empty() {
            return None;
        }
        let at = self.pos;
        match BatchHeader::parse(rest) {
            Ok(h) if h.total_len <= rest.len() => {
                self.pos += h.total_len;
                Some((at, Ok(h)))
            }
            Ok(h) => Some((at, {
                self.pos = self.buf.len();
                Err(BatchError::Truncated {
                    needed: h.total_len,
                    available: rest.len(),
                })
            })),
            Err(e) => {
                // Nothing after a bad header can be located: stop here.
                self.pos = self.buf.len();
                Some((at, Err(e)))
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod test_batches {
    /// Builds a valid uncompressed v2 batch with `count` records of `value_len` bytes.
    pub(crate) fn batch(
        count: i32,
        value_len: usize,
        producer: Option<(i64, i16, i32)>,
    ) -> Vec<u8> {
        let mut records = Vec::new();
        for i in 0..count {
            let mut rec = Vec::new();
            rec.push(0u8); // attributes
            push_varint(&mut rec, 0); // timestamp delta
            push_varint(&mut rec, i64::from(i)); // offset delta
            push_varint(&mut rec, -1); // key null
            push_varint(&mut rec, value_len as i64);
            rec.extend(std::iter::repeat_n(b'x', value_len));
            push_varint(&mut rec, 0); // headers
            push_varint(&mut records, rec.len() as i64);
            records.extend(rec);
        }
        let (pid, epoch, seq) = producer.unwrap_or((-1, -1, -1));
        let mut b = Vec::new();
        b.extend(0i64.to_be_bytes());
        b.extend(0i32.to_be_bytes()); // length, patched below
        b.extend(0i32.to_be_bytes());
        b.push(2);
        b.extend(0u32.to_be_bytes()); // crc, patched below
        b.extend(0i16.to_be_bytes());
        b.extend((count - 1).to_be_bytes());
        b.extend(1_700_000_000_000i64.to_be_bytes());
        b.extend(1_700_000_000_000i64.to_be_bytes());
        b.extend(pid.to_be_bytes());
        b.extend(epoch.to_be_bytes());
        b.extend(seq.to_be_bytes());
        b.extend(count.to_be_bytes());
        b.extend(records);
        let len = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn push_varint(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            if z < 0x80 {
                out.push(z as u8);
                return;
            }
            out.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_crc() {
        let b = test_batches::batch(3, 10, Some((7, 1, 5)));
        let h = BatchHeader::parse_checked(&b).expect("valid");
        assert_eq!(h.record_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.producer_id, 7);
        assert_eq!(h.last_sequence(), 7);
        assert_eq!(h.total_len, b.len());
    }

    #[test]
    fn base_offset_does_not_touch_crc() {
        let mut b = test_batches::batch(2, 5, None);
        set_base_offset(&mut b, 1234);
        let h = BatchHeader::parse_checked(&b).expect("still valid");
        assert_eq!(h.base_offset, 1234);
        assert_eq!(h.last_offset(), 1235);
    }

    #[test]
    fn flipped_byte_fails_crc() {
        let mut b = test_batches::batch(2, 5, None);
        let last = b.len() - 3;
        b[last] ^= 0xff;
        assert!(matches!(
            BatchHeader::parse_checked(&b),
            Err(BatchError::BadCrc { .. })
        ));
    }

    #[test]
    fn iterates_and_reports_truncation() {
        let mut buf = test_batches::batch(1, 5, None);
        let one = buf.len();
        buf.extend(test_batches::batch(1, 5, None));
        buf.truncate(buf.len() - 4);
        let items: Vec<_> = BatchIter::new(&buf).collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].1.is_ok());
        assert_eq!(items[1].0, one);
        assert!(matches!(items[1].1, Err(BatchError::Truncated { .. })));
    }

    #[test]
    fn sequence_wraps() {
        let mut b = test_batches::batch(3, 1, Some((1, 0, i32::MAX - 1)));
        let h = BatchHeader::parse(&b).expect("valid");
        assert_eq!(h.last_sequence(), 0);
        b.clear();
    }
}
