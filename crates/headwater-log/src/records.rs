//! Just enough of the v2 record format to find a record by timestamp inside an uncompressed batch.
//!
//! The log never rewrites records; this read-only walk serves ListOffsets by timestamp, which
//! must answer with the first record at or after a time, not just the batch holding it.

use crate::batch::{BatchHeader, Compression, HEADER_LEN};

fn varint(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut value: u64 = 0;
    let mut shift = 0;
    loop {
        let b = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    Some(((value >> 1) as i64) ^ -((value & 1) as i64))
}

/// First record of the batch at the start of `batch` whose timestamp is at least `ts`, as
/// (offset, timestamp). `None` for compressed batches (the caller falls back to the batch) or
/// when no record qualifies.
pub fn first_at_or_after(batch: &[u8], ts: i64) -> Option<(i64, i64)> {
    let h = BatchHeader::parse(batch).ok()?;
    if h.compression() != Compression::None || batch.len() < h.total_len {
        return None;
    }
    let mut pos = HEADER_LEN;
    for _ in 0..h.record_count {
        let len = varint(batch, &mut pos)?;
        let next = pos + usize::try_from(len).ok()?;
        pos += 1; // attributes
        let ts_delta = varint(batch, &mut pos)?;
        let off_delta = varint(batch, &mut pos)?;
        let rec_ts = h.base_timestamp + ts_delta;
        if rec_ts >= ts {
            return Some((h.base_offset + off_delta, rec_ts));
        }
        pos = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::test_batches::batch;

    #[test]
    fn finds_first_record() {
        let b = batch(3, 4, None);
        // All records share the base timestamp in the test batch.
        assert_eq!(
            first_at_or_after(&b, 1_700_000_000_000),
            Some((0, 1_700_000_000_000))
        );
        assert_eq!(first_at_or_after(&b, 1_700_000_000_001), None);
    }
}
