//! Batches Headwater writes itself: records the node produces on someone's behalf (HTTP
//! publish, dead letters, replays, pipeline outputs, its own internal topics), encoded with the
//! `kafka-protocol` codec as any producer would encode them.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as Codec, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::BatchError;

/// Headers of a record, as the codec keeps them.
pub type Headers = IndexMap<StrBytes, Option<Bytes>>;

/// The `i`th record of a batch written by Headwater itself: no producer id, no transaction.
pub fn plain_record(
    i: usize,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Headers,
) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: i as i64,
        // The encoder keeps records in one batch while offset - sequence is constant; -1 as
        // the base sequence marks a batch without an idempotent producer.
        sequence: i as i32 - 1,
        timestamp,
        key,
        value,
        headers,
    }
}

/// One uncompressed batch of records written by Headwater itself (key, value, headers), all
/// stamped `timestamp`: what the node produces on a client's behalf.
pub fn plain_batch(
    records: Vec<(Option<Bytes>, Option<Bytes>, Headers)>,
    timestamp: i64,
) -> Result<Bytes, BatchError> {
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value, headers))| plain_record(i, timestamp, key, value, headers))
        .collect();
    encode_records(&records, Codec::None)
}

/// One uncompressed batch written for an idempotent producer of the node's own (a pipeline):
/// `producer` is (id, epoch, base sequence). A resend with the same numbers is recognised by
/// the log as a duplicate, which is what makes a pipeline's re-run after a crash exactly-once.
pub fn producer_batch(
    records: Vec<(Option<Bytes>, Option<Bytes>, Headers)>,
    timestamp: i64,
    producer: (i64, i16, i32),
) -> Result<Bytes, BatchError> {
    let (id, epoch, base) = producer;
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value, headers))| {
            let mut r = plain_record(i, timestamp, key, value, headers);
            r.producer_id = id;
            r.producer_epoch = epoch;
            r.sequence = base.wrapping_add(i as i32);
            r
        })
        .collect();
    encode_records(&records, Codec::None)
}

/// Encodes `records` as v2 batches compressed with `codec`: one batch when they share a
/// producer and their offsets and sequences advance together, as records decoded from one
/// batch do.
pub fn encode_records(records: &[Record], codec: Codec) -> Result<Bytes, BatchError> {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression: codec,
        },
    )
    .map_err(|e| BatchError::Encode {
        reason: e.to_string(),
    })?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::RecordBatchDecoder;

    use super::*;
    use crate::batch::BatchHeader;

    fn value(s: &str) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn plain_batch_round_trips_through_the_decoder() {
        let mut headers = Headers::new();
        headers.insert(StrBytes::from_static_str("h"), value("v"));
        let batch = plain_batch(
            vec![
                (value("k0"), value("a"), headers.clone()),
                (None, value("b"), Headers::new()),
            ],
            1_700_000_000_123,
        )
        .expect("encodes");
        let h = BatchHeader::parse_checked(&batch).expect("a valid v2 batch");
        assert_eq!((h.record_count, h.last_offset_delta), (2, 1));
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (-1, -1, -1)
        );
        assert_eq!(h.total_len, batch.len());
        let set = RecordBatchDecoder::decode(&mut batch.clone()).expect("decodes");
        assert_eq!(set.records.len(), 2);
        assert_eq!(set.records[0].key, value("k0"));
        assert_eq!(set.records[0].value, value("a"));
        assert_eq!(set.records[0].headers, headers);
        assert_eq!(set.records[1].key, None);
        assert_eq!(set.records[1].offset, 1);
        assert_eq!(set.records[1].timestamp, 1_700_000_000_123);
    }

    #[test]
    fn producer_batch_carries_the_producer_and_its_sequences() {
        let batch = producer_batch(
            vec![
                (None, value("a"), Headers::new()),
                (None, value("b"), Headers::new()),
            ],
            5,
            (42, 3, i32::MAX),
        )
        .expect("encodes");
        let h = BatchHeader::parse_checked(&batch).expect("valid");
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (42, 3, i32::MAX)
        );
        assert_eq!(h.last_sequence(), 0);
        let set = RecordBatchDecoder::decode(&mut batch.clone()).expect("decodes");
        assert_eq!(set.records[1].sequence, i32::MIN);
        assert_eq!(set.records[1].value, value("b"));
    }

    #[test]
    fn compressed_records_round_trip() {
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let records: Vec<Record> = (0..20)
                .map(|i| {
                    plain_record(
                        i,
                        7,
                        None,
                        value("same value, compressible"),
                        Headers::new(),
                    )
                })
                .collect();
            let batch = encode_records(&records, codec).expect("encodes");
            let h = BatchHeader::parse_checked(&batch).expect("valid");
            assert_eq!(h.record_count, 20, "{codec:?}");
            let set = RecordBatchDecoder::decode(&mut batch.clone()).expect("decodes");
            assert_eq!(set.compression, codec);
            assert_eq!(set.records.len(), 20);
            assert_eq!(set.records[19].value, value("same value, compressible"));
        }
    }
}
