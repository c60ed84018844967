//! # headwater-test-support
//!
//! Helpers shared by the workspace's tests and benchmarks: an in-process node on a free port
//! ([`TestNode`]), a minimal Kafka protocol client built on the same `kafka-protocol` codec
//! ([`Client`]), record batch builders and [`wait_for`]. Tests that need a real process (crash,
//! SIGKILL) start the `headwater` binary instead, see `tests/clients`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use headwater_kafka::{Broker, KafkaConfig, NodeIdentity};
use headwater_log::{Log, LogConfig};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, FetchRequest, ProduceRequest, RequestHeader, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A node running inside the test process on 127.0.0.1 with a free port and a temporary dir.
#[derive(Debug)]
pub struct TestNode {
    /// The Kafka listener's address.
    pub addr: SocketAddr,
    /// The node's log, for checks behind the front end's back.
    pub log: Arc<Log>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    dir: tempfile::TempDir,
}

impl TestNode {
    /// Starts a node with default configs.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(KafkaConfig::default(), LogConfig::default()).await
    }

    /// Starts a node with these configs in a new temporary dir.
    pub async fn start_with(kafka: KafkaConfig, log: LogConfig) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        Self::start_in(dir, kafka, log).await
    }

    /// Starts a node on an existing data dir (for restart tests).
    pub async fn start_in(
        dir: tempfile::TempDir,
        kafka: KafkaConfig,
        log_cfg: LogConfig,
    ) -> anyhow::Result<Self> {
        let (log, broker, listener) = open_node(dir.path(), kafka, log_cfg).await?;
        let addr = listener.local_addr()?;
        log.start_background();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(headwater_kafka::serve(broker, listener, async {
            let _ = rx.await;
        }));
        Ok(TestNode {
            addr,
            log,
            shutdown: Some(tx),
            task: Some(task),
            dir,
        })
    }

    /// The node's data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A new client connection to the node.
    pub async fn client(&self) -> anyhow::Result<Client> {
        Client::connect(self.addr).await
    }

    /// Stops accepting, closes the log cleanly and hands back the data dir.
    pub async fn stop(mut self) -> anyhow::Result<tempfile::TempDir> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.log.close()?;
        // Connection tasks may still hold the log; the lock file is released when they end.
        let log = self.log.clone();
        drop(log);
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir()?);
        Ok(dir)
    }
}

/// A node's log and Kafka front end over `dir`, with a listener on a free port of 127.0.0.1
/// that it advertises: the parts a test wires its services onto.
pub async fn open_node(
    dir: &std::path::Path,
    kafka: KafkaConfig,
    log_cfg: LogConfig,
) -> anyhow::Result<(Arc<Log>, Arc<Broker>, tokio::net::TcpListener)> {
    let log = Log::open(dir, log_cfg)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let node = NodeIdentity {
        node_id: 0,
        host: addr.ip().to_string(),
        port: i32::from(addr.port()),
        cluster_id: "test-cluster".to_string(),
    };
    let broker = Broker::new(log.clone(), kafka, node)?;
    Ok((log, broker, listener))
}

/// A bare Kafka protocol client: one connection, one request at a time.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    correlation: i32,
}

impl Client {
    /// Connects to a Kafka listener.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            correlation: 0,
        })
    }

    /// Sends a typed request at `version` and decodes its response.
    pub async fn send<R>(&mut self, req: &R, version: i16) -> anyhow::Result<R::Response>
    where
        R: Request + Encodable,
    {
        self.correlation += 1;
        let key = ApiKey::try_from(R::KEY).map_err(|_| anyhow::anyhow!("unknown api key"))?;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("headwater-test")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, key.request_header_version(version))?;
        req.encode(&mut buf, version)?;
        let len = (buf.len() - 4) as i32;
        buf[0..4].copy_from_slice(&len.to_be_bytes());
        self.stream.write_all(&buf).await?;
        let mut frame = self.read_frame().await?;
        let rh = ResponseHeader::decode(&mut frame, R::Response::header_version(version))?;
        if rh.correlation_id != self.correlation {
            bail!(
                "correlation id {} != {}",
                rh.correlation_id,
                self.correlation
            );
        }
        R::Response::decode(&mut frame, version)
    }

    /// Writes raw bytes (for malformed-frame tests).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Reads one size-prefixed frame.
    pub async fn read_frame(&mut self) -> anyhow::Result<Bytes> {
        let len = self.stream.read_i32().await.context("reading frame size")?;
        let mut frame = vec![0u8; len.max(0) as usize];
        self.stream.read_exact(&mut frame).await?;
        Ok(Bytes::from(frame))
    }

    /// True once the server has closed this connection.
    pub async fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    /// Creates a topic; returns the topic's error code.
    pub async fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> anyhow::Result<i16> {
        let topic = CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.to_string())))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.to_string()))
                            .with_value(Some(StrBytes::from_string(v.to_string())))
                    })
                    .collect(),
            );
        let resp = self
            .send(
                &CreateTopicsRequest::default()
                    .with_topics(vec![topic])
                    .with_timeout_ms(5000),
                7,
            )
            .await?;
        Ok(resp.topics.first().map(|t| t.error_code).unwrap_or(-1))
    }

    /// Produces one batch; returns (error code, base offset).
    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: i16,
    ) -> anyhow::Result<(i16, i64)> {
        let req = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch))])]);
        let resp = self.send(&req, 9).await?;
        let p = resp
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .context("empty produce response")?;
        Ok((p.error_code, p.base_offset))
    }

    /// Produces `n` records of `value_len` bytes in batches of up to 500 (acks=-1); returns the
    /// offset after the last one.
    pub async fn produce_n(
        &mut self,
        topic: &str,
        partition: i32,
        n: usize,
        value_len: usize,
    ) -> anyhow::Result<i64> {
        let value = vec![b'v'; value_len];
        let mut next = 0;
        let mut left = n;
        while left > 0 {
            let k = left.min(500);
            let values: Vec<&[u8]> = (0..k).map(|_| value.as_slice()).collect();
            let (err, base) = self
                .produce(topic, partition, batch(&values, None), -1)
                .await?;
            anyhow::ensure!(
                err == 0,
                "produce to {topic}-{partition} failed with error code {err}"
            );
            next = base + k as i64;
            left -= k;
        }
        Ok(next)
    }

    /// Reads every record of a partition from `offset` up to the high watermark.
    pub async fn consume_all(
        &mut self,
        topic: &str,
        partition: i32,
        mut offset: i64,
    ) -> anyhow::Result<Vec<Record>> {
        let mut out = Vec::new();
        loop {
            let (err, hw, records) = self.fetch(topic, partition, offset, 0, 0).await?;
            anyhow::ensure!(
                err == 0,
                "fetch from {topic}-{partition} failed with error code {err}"
            );
            for r in records {
                if r.offset >= offset {
                    offset = r.offset + 1;
                    out.push(r);
                }
            }
            if offset >= hw {
                return Ok(out);
            }
        }
    }

    /// Fetches from one partition; returns (error code, high watermark, records).
    pub async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait_ms: i32,
        min_bytes: i32,
    ) -> anyhow::Result<(i16, i64, Vec<Record>)> {
        let req = FetchRequest::default()
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(min_bytes)
            .with_max_bytes(50 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(10 << 20)])]);
        let resp = self.send(&req, 12).await?;
        let p = resp
            .responses
            .first()
            .and_then(|t| t.partitions.first())
            .context("empty fetch response")?;
        let mut records = Vec::new();
        if let Some(mut bytes) = p.records.clone() {
            while bytes.has_remaining() {
                records.extend(RecordBatchDecoder::decode(&mut bytes)?.records);
            }
        }
        Ok((p.error_code, p.high_watermark, records))
    }
}

/// A v2 record batch of `values` (keys `k<i>`), uncompressed, optionally from an idempotent producer.
pub fn batch(values: &[&[u8]], producer: Option<(i64, i16, i32)>) -> Bytes {
    let (pid, epoch, seq) = producer.unwrap_or((-1, -1, -1));
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset - sequence is constant.
            sequence: seq.wrapping_add(i as i32),
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::copy_from_slice(v)),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    // Encoding our own in-memory records cannot fail for an uncompressed v2 batch.
    let _ = RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    );
    buf.freeze()
}

/// Polls `check` every 20 ms until it returns `Some` or `timeout` passes.
pub async fn wait_for<T, F, Fut>(timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("condition not met within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trips() {
        let b = batch(&[b"a", b"b", b"c"], None);
        let mut bytes = b.clone();
        let set = RecordBatchDecoder::decode(&mut bytes).expect("decode");
        let offs: Vec<_> = set
            .records
            .iter()
            .map(|r| (r.offset, r.value.clone()))
            .collect();
        assert_eq!(offs.len(), 3, "{offs:?} {:?}", &b[..70]);
    }
}
