//! Internal topics (`_headwater.*`): Headwater's own state kept as records in the log, so the
//! embedded mode and a Kafka cluster keep state the same way.
//!
//! Each is one partition synced on every append (`headwater.fsync=always`): an acknowledged
//! change survives a crash. Its owner replays it whole at start.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use headwater_log::{now_ms, Log, LogError, Partition};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// The `i`th record of a batch written by Headwater itself: no producer id, no transaction.
pub fn plain_record(
    i: usize,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: IndexMap<kafka_protocol::protocol::StrBytes, Option<Bytes>>,
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

/// Headers of a record, as the codec keeps them.
pub type Headers = IndexMap<kafka_protocol::protocol::StrBytes, Option<Bytes>>;

/// One uncompressed batch of records written by Headwater itself (key, value, headers), all
/// stamped `timestamp`: what the node produces on a client's behalf.
pub fn plain_batch(
    records: Vec<(Option<Bytes>, Option<Bytes>, Headers)>,
    timestamp: i64,
) -> Result<Bytes, String> {
    encode_batch(
        records
            .into_iter()
            .enumerate()
            .map(|(i, (key, value, headers))| plain_record(i, timestamp, key, value, headers))
            .collect(),
    )
}

fn encode_batch(records: Vec<Record>) -> Result<Bytes, String> {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| e.to_string())?;
    Ok(buf.freeze())
}

/// One uncompressed batch written for an idempotent producer of the node's own (a pipeline):
/// `producer` is (id, epoch, base sequence). A resend with the same numbers is recognised by
/// the log as a duplicate, which is what makes a pipeline's re-run after a crash exactly-once.
pub fn producer_batch(
    records: Vec<(Option<Bytes>, Option<Bytes>, Headers)>,
    timestamp: i64,
    producer: (i64, i16, i32),
) -> Result<Bytes, String> {
    let (id, epoch, base) = producer;
    encode_batch(
        records
            .into_iter()
            .enumerate()
            .map(|(i, (key, value, headers))| {
                let mut r = plain_record(i, timestamp, key, value, headers);
                r.producer_id = id;
                r.producer_epoch = epoch;
                r.sequence = base.wrapping_add(i as i32);
                r
            })
            .collect(),
    )
}

/// One thing [`InternalTopic::scan`] read.
#[derive(Debug)]
pub enum Scanned {
    Record {
        offset: i64,
        key: Option<Bytes>,
        value: Option<Bytes>,
    },
    /// A batch covering offsets `first..=last` that does not decode.
    Broken {
        first: i64,
        last: i64,
        error: String,
    },
}

/// The size of the record batch at the start of `buf`, if all of it is there.
fn batch_size(buf: &[u8]) -> Option<usize> {
    let len = i32::from_be_bytes(buf.get(8..12)?.try_into().ok()?);
    let size = 12 + usize::try_from(len).ok()?;
    (size >= 61 && size <= buf.len()).then_some(size)
}

/// The base offset and last offset delta from a batch's header, which the CRC does not cover.
fn batch_span(batch: &[u8]) -> (i64, i32) {
    let base = batch
        .get(0..8)
        .and_then(|b| b.try_into().ok())
        .map(i64::from_be_bytes)
        .unwrap_or(0);
    let delta = batch
        .get(23..27)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_be_bytes)
        .unwrap_or(0);
    (base, delta.max(0))
}

#[derive(Debug, Clone)]
pub struct InternalTopic {
    name: &'static str,
    partition: Arc<Partition>,
}

impl InternalTopic {
    /// Opens the topic, creating it on first use.
    pub fn open(log: &Arc<Log>, name: &'static str) -> Result<Self, LogError> {
        let topic = match log.topic(name) {
            Some(t) => t,
            None => {
                let mut cfg = BTreeMap::new();
                cfg.insert("headwater.fsync".to_string(), "always".to_string());
                cfg.insert("retention.ms".to_string(), "-1".to_string());
                log.create_topic(name, 1, cfg)?
            }
        };
        let partition = topic
            .partition(0)
            .ok_or_else(|| LogError::UnknownPartition {
                topic: name.to_string(),
                partition: 0,
            })?;
        Ok(InternalTopic { name, partition })
    }

    /// Calls `apply(key, value)` for every record in order; returns how many there were. A
    /// batch that does not decode is logged and skipped.
    pub fn replay(
        &self,
        mut apply: impl FnMut(Option<&Bytes>, Option<&Bytes>),
    ) -> Result<usize, LogError> {
        let mut count = 0;
        self.scan(|read| match read {
            Scanned::Record { key, value, .. } => {
                apply(key.as_ref(), value.as_ref());
                count += 1;
            }
            Scanned::Broken { first, last, error } => tracing::error!(
                topic = self.name,
                first,
                last,
                "skipping an undecodable batch: {error}"
            ),
        })?;
        Ok(count)
    }

    /// Reads every record in order, with its offset; a batch that does not decode (its CRC
    /// fails, say) is reported with the offsets it covers and reading goes on after it.
    pub fn scan(&self, mut f: impl FnMut(Scanned)) -> Result<(), LogError> {
        let mut offset = self.partition.start_offset();
        let end = self.partition.end_offset();
        while offset < end {
            let data = self.partition.read(offset, 1 << 20)?;
            if data.is_empty() {
                break;
            }
            let before = offset;
            let mut buf = Bytes::from(data);
            while let Some(size) = batch_size(&buf) {
                let mut batch = buf.split_to(size);
                let (base, last_delta) = batch_span(&batch);
                match RecordBatchDecoder::decode(&mut batch) {
                    Ok(set) => {
                        for r in set.records {
                            if r.offset >= offset {
                                f(Scanned::Record {
                                    offset: r.offset,
                                    key: r.key,
                                    value: r.value,
                                });
                            }
                        }
                    }
                    Err(e) => f(Scanned::Broken {
                        first: base,
                        last: base + i64::from(last_delta),
                        error: e.to_string(),
                    }),
                }
                offset = offset.max(base + i64::from(last_delta) + 1);
            }
            if offset == before {
                // Nothing whole came back: the rest is not readable as batches.
                break;
            }
        }
        Ok(())
    }

    /// Appends records (key, value) as one batch and waits until they are on disk.
    pub async fn append(
        &self,
        records: Vec<(Option<Bytes>, Option<Bytes>)>,
    ) -> Result<(), LogError> {
        if records.is_empty() {
            return Ok(());
        }
        let records = records
            .into_iter()
            .map(|(key, value)| (key, value, IndexMap::new()))
            .collect();
        let buf = plain_batch(records, now_ms()).map_err(|e| LogError::Io {
            op: "encode internal records",
            path: self.name.into(),
            source: std::io::Error::other(e),
        })?;
        let out = self.partition.append(&buf)?;
        self.partition.wait_durable(out.last_offset + 1).await
    }
}
