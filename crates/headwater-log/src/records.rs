//! Just enough of the v2 record format to walk the records of an uncompressed batch in place:
//! to find a record by timestamp, and to read record values for produce-time validation.
//!
//! The log never rewrites records; ListOffsets by timestamp must answer with the first record
//! at or after a time, not just the batch holding it, and checking values needs nothing else
//! of a record.

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

/// A length-prefixed byte string at `pos`; `Some(None)` for length -1 (null).
fn bytes<'a>(buf: &'a [u8], pos: &mut usize) -> Option<Option<&'a [u8]>> {
    let len = varint(buf, pos)?;
    if len == -1 {
        return Some(None);
    }
    let end = pos.checked_add(usize::try_from(len).ok()?)?;
    let s = buf.get(*pos..end)?;
    *pos = end;
    Some(Some(s))
}

/// The values of an uncompressed batch's records, read in place (`None` for a null value), in
/// record order; `None` overall when the batch is compressed or its records do not parse, and
/// the caller must decode it fully. A full decode allocated a record, its key and its headers
/// for each one.
pub fn record_values(batch: &[u8]) -> Option<Vec<Option<&[u8]>>> {
    let h = BatchHeader::parse(batch).ok()?;
    if h.compression() != Compression::None || batch.len() < h.total_len {
        return None;
    }
    let batch = &batch[..h.total_len];
    // A count larger than the bytes could hold is a lie; do not size anything by it.
    let mut values = Vec::with_capacity(usize::try_from(h.record_count).ok()?.min(batch.len() / 7));
    let mut pos = HEADER_LEN;
    for _ in 0..h.record_count {
        let len = varint(batch, &mut pos)?;
        let end = pos.checked_add(usize::try_from(len).ok()?)?;
        if end > batch.len() {
            return None;
        }
        pos += 1; // attributes
        varint(batch, &mut pos)?; // timestamp delta
        varint(batch, &mut pos)?; // offset delta
        bytes(batch, &mut pos)?; // key
        let value = bytes(batch, &mut pos)?;
        for _ in 0..varint(batch, &mut pos)? {
            bytes(batch, &mut pos)?;
            bytes(batch, &mut pos)?;
        }
        if pos != end {
            return None;
        }
        values.push(value);
    }
    (pos == batch.len()).then_some(values)
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
    fn record_values_are_read_in_place() {
        let b = batch(3, 10, None);
        let values = record_values(&b).expect("plain batch");
        assert_eq!(values, vec![Some(&b"xxxxxxxxxx"[..]); 3]);
        // Truncated records or a record count that does not match are left to a full decode.
        assert!(record_values(&b[..b.len() - 1]).is_none());
        let mut lying = b.clone();
        lying[57..61].copy_from_slice(&4i32.to_be_bytes());
        assert!(record_values(&lying).is_none());
        let mut compressed = b;
        compressed[22] |= 1;
        assert!(record_values(&compressed).is_none());
    }

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
