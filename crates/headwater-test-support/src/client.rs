//! A bare Kafka protocol client on the same `kafka-protocol` codec the node uses: one
//! connection, one request at a time, for tests that check exact protocol answers.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, FetchRequest, ProduceRequest, RequestHeader, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{Record, RecordBatchDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::batch;

/// A bare Kafka protocol client: one connection, one request at a time.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    correlation: i32,
}

impl Client {
    /// Connects to the Kafka listener at `addr`, with Nagle's delay off so each request goes
    /// out at once.
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

    /// Sends a bare v1 request header for `api_key` at `version`, built by hand so keys and
    /// versions the codec does not know can be sent, and returns the response frame.
    pub async fn send_header_only(
        &mut self,
        api_key: i16,
        version: i16,
        correlation_id: i32,
    ) -> anyhow::Result<Bytes> {
        let mut frame = BytesMut::new();
        frame.put_i32(10);
        frame.put_i16(api_key);
        frame.put_i16(version);
        frame.put_i32(correlation_id);
        frame.put_i16(-1); // no client id
        self.send_raw(&frame).await?;
        self.read_frame().await
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

    /// Creates topic `name` with `partitions` partitions and the topic `configs` (CreateTopics
    /// v7, replication factor 1); returns the topic's error code, 0 when created (-1 when the
    /// answer names no topic).
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
            .into_iter()
            .find_map(|t| t.partitions.into_iter().next())
            .context("empty fetch response")?;
        let mut records = Vec::new();
        if let Some(mut bytes) = p.records {
            while bytes.has_remaining() {
                records.extend(RecordBatchDecoder::decode(&mut bytes)?.records);
            }
        }
        Ok((p.error_code, p.high_watermark, records))
    }
}
