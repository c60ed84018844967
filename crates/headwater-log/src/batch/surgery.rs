//! Header fields of batches read leniently and rewritten in place, the CRC kept valid.
//!
//! The contract gate's dead-letter mode takes invalid records out of a producer's batch and
//! writes the rest; an idempotent producer's next sequence number must still be the expected
//! one, so what is written must span the same offsets as what was sent. Two edits do that: a
//! re-encoded batch is given the original last offset delta ([`set_last_offset_delta`]), and a
//! run of invalid records at the start of a batch is stood in for by a batch with no record
//! ([`record_less_batch`]), as compaction leaves them.
//!
//! Readers of Headwater's own topics ([`whole_batch_len`], [`span`]) and the front end's
//! counters ([`count_records`]) read header fields without the checks of
//! [`BatchHeader::parse`](super::BatchHeader::parse): they must step over a batch that does not
//! decode rather than stop at it.

use bytes::{Bytes, BytesMut};

use super::{be_i32, be_i64, total_len, BatchError, CRC_START, HEADER_LEN, LENGTH_PREFIX_LEN};

/// Byte offsets of the header fields rewritten here (see the table in [`super`]).
const LENGTH_AT: usize = 8;
const CRC_AT: usize = 17;
const ATTRIBUTES_LOW_BYTE_AT: usize = 22;
const LAST_OFFSET_DELTA_AT: usize = 23;
const RECORD_COUNT_AT: usize = 57;

/// Writes the CRC32C of the batch at the start of `batch`, `total` bytes long.
fn seal(batch: &mut [u8], total: usize) {
    let crc = crc32c::crc32c(&batch[CRC_START..total]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Sets the last offset delta of the batch at the start of `batch` and recomputes its CRC, so
/// the batch spans `delta + 1` offsets whatever records it holds.
///
/// Fails when `batch` is shorter than the batch its length field declares.
pub fn set_last_offset_delta(batch: &mut [u8], delta: i32) -> Result<(), BatchError> {
    let total = total_len(batch)?;
    if batch.len() < total {
        return Err(BatchError::Truncated {
            needed: total,
            available: batch.len(),
        });
    }
    batch[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4].copy_from_slice(&delta.to_be_bytes());
    seal(batch, total);
    Ok(())
}

/// A batch with no record spanning `span` offsets, with the producer id, epoch, base sequence,
/// timestamps and leader epoch of `header` (the first [`HEADER_LEN`] bytes of a batch).
///
/// It stands for records taken out of the start of a batch: the log assigns it their offsets,
/// and the producer's sequence numbers continue after them.
pub fn record_less_batch(header: &[u8], span: i32) -> Result<Bytes, BatchError> {
    let Some(header) = header.get(..HEADER_LEN) else {
        return Err(BatchError::Truncated {
            needed: HEADER_LEN,
            available: header.len(),
        });
    };
    if span < 1 {
        return Err(BatchError::BadSpan { span });
    }
    let mut b = BytesMut::from(header);
    // The length field counts from the partition leader epoch on: the header minus 12 bytes.
    b[LENGTH_AT..LENGTH_AT + 4]
        .copy_from_slice(&((HEADER_LEN - LENGTH_PREFIX_LEN) as i32).to_be_bytes());
    // No records means nothing is compressed.
    b[ATTRIBUTES_LOW_BYTE_AT] &= !0x07;
    b[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4].copy_from_slice(&(span - 1).to_be_bytes());
    b[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&0i32.to_be_bytes());
    seal(&mut b, HEADER_LEN);
    Ok(b.freeze())
}

/// The size of the batch at the start of `buf`, if all of it is there and its length field can
/// describe a batch. Magic, counts and CRC are not checked.
pub fn whole_batch_len(buf: &[u8]) -> Option<usize> {
    total_len(buf).ok().filter(|size| *size <= buf.len())
}

/// The offsets a batch covers, read from its header without checking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The base offset.
    pub base_offset: i64,
    /// The last offset delta; a negative one (a corrupt header) reads as 0, so that a reader
    /// stepping over batches always moves forward.
    pub last_offset_delta: i32,
}

impl Span {
    /// The last offset covered.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// The offset after the batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
}

/// The base offset and last offset delta of the batch at the start of `batch`: fields the CRC
/// does not cover or that a reader needs even when the rest does not decode. `None` when the
/// header is not all there.
pub fn span(batch: &[u8]) -> Option<Span> {
    (batch.len() >= LAST_OFFSET_DELTA_AT + 4).then(|| Span {
        base_offset: be_i64(batch, 0),
        last_offset_delta: be_i32(batch, LAST_OFFSET_DELTA_AT).max(0),
    })
}

/// Records in a run of batches, from their record-count fields; counting stops at a header that
/// is not all there. A negative count counts as none.
pub fn count_records(mut batches: &[u8]) -> u64 {
    let mut n = 0u64;
    while batches.len() >= RECORD_COUNT_AT + 4 {
        n += u64::try_from(be_i32(batches, RECORD_COUNT_AT)).unwrap_or(0);
        let size = usize::try_from(be_i32(batches, LENGTH_AT))
            .map_or(usize::MAX, |len| len.saturating_add(LENGTH_PREFIX_LEN));
        batches = batches.get(size..).unwrap_or(&[]);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::test_batches::batch;
    use crate::batch::BatchHeader;

    #[test]
    fn new_last_offset_delta_keeps_the_crc_valid() {
        let mut b = batch(3, 4, Some((9, 2, 40)));
        set_last_offset_delta(&mut b, 7).expect("whole batch");
        let h = BatchHeader::parse_checked(&b).expect("CRC still valid");
        assert_eq!(h.last_offset_delta, 7);
        assert_eq!(h.record_count, 3);
        assert_eq!(h.offset_span(), 8);
    }

    #[test]
    fn last_offset_delta_of_a_cut_batch_is_refused() {
        let mut b = batch(3, 4, None);
        let cut = b.len() - 1;
        assert!(matches!(
            set_last_offset_delta(&mut b[..cut], 1),
            Err(BatchError::Truncated { .. })
        ));
        assert!(matches!(
            set_last_offset_delta(&mut b[..20], 1),
            Err(BatchError::Truncated { .. })
        ));
    }

    #[test]
    fn record_less_batch_keeps_the_producer_and_spans_the_offsets() {
        let original = batch(5, 4, Some((77, 3, 1000)));
        let empty = record_less_batch(&original[..HEADER_LEN], 2).expect("a whole header");
        assert_eq!(empty.len(), HEADER_LEN);
        let h = BatchHeader::parse_checked(&empty).expect("a valid batch");
        let was = BatchHeader::parse(&original).expect("valid");
        assert_eq!(h.record_count, 0);
        assert_eq!(h.last_offset_delta, 1);
        assert_eq!(h.offset_span(), 2);
        assert_eq!(h.total_len, HEADER_LEN);
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (77, 3, 1000)
        );
        assert_eq!(h.base_timestamp, was.base_timestamp);
        assert_eq!(h.compression(), super::super::Compression::None);
    }

    #[test]
    fn record_less_batch_clears_the_codec() {
        let mut original = batch(1, 4, None);
        original[22] |= 0x03; // claim lz4
        let h = BatchHeader::parse_checked(&record_less_batch(&original, 1).expect("header"))
            .expect("valid");
        assert_eq!(h.compression(), super::super::Compression::None);
    }

    #[test]
    fn record_less_batch_needs_a_header_and_a_span() {
        let original = batch(1, 4, None);
        assert!(matches!(
            record_less_batch(&original[..HEADER_LEN - 1], 1),
            Err(BatchError::Truncated { .. })
        ));
        assert_eq!(
            record_less_batch(&original, 0),
            Err(BatchError::BadSpan { span: 0 })
        );
    }

    #[test]
    fn whole_batch_len_and_span_read_the_header() {
        let mut buf = batch(3, 4, None);
        let one = buf.len();
        crate::batch::set_base_offset(&mut buf, 40);
        buf.extend(batch(1, 4, None));
        assert_eq!(whole_batch_len(&buf), Some(one));
        assert_eq!(whole_batch_len(&buf[..one - 1]), None);
        assert_eq!(whole_batch_len(&buf[..5]), None);
        let s = span(&buf).expect("header there");
        assert_eq!((s.base_offset, s.last_offset_delta), (40, 2));
        assert_eq!((s.last_offset(), s.next_offset()), (42, 43));
        assert_eq!(span(&buf[..10]), None);
    }

    #[test]
    fn span_reads_a_negative_delta_as_zero() {
        let mut b = batch(1, 4, None);
        b[23..27].copy_from_slice(&(-5i32).to_be_bytes());
        assert_eq!(span(&b).map(|s| s.last_offset_delta), Some(0));
    }

    #[test]
    fn count_records_adds_the_counts_of_every_batch() {
        let mut buf = batch(3, 4, None);
        buf.extend(batch(2, 10, None));
        assert_eq!(count_records(&buf), 5);
        assert_eq!(count_records(&buf[..30]), 0);
        assert_eq!(count_records(&[]), 0);
    }
}
