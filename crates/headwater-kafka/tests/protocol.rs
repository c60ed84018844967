//! The Kafka front end through the wire protocol: produce, fetch, bad input, version negotiation.

use std::time::Duration;

use bytes::BufMut;
use headwater_kafka::KafkaConfig;
use headwater_test_support::{batch, Client, NodeConfig, TestNode};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiVersionsRequest, DescribeGroupsRequest, GroupId, HeartbeatRequest, JoinGroupRequest,
    MetadataRequest, OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_then_fetch_returns_records_as_sent() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let mut c = node.client().await?;
    assert_eq!(c.create_topic("orders", 2, &[]).await?, 0);
    let (err, base) = c
        .produce("orders", 1, batch(&[b"a", b"b", b"c"], None), -1)
        .await?;
    assert_eq!((err, base), (0, 0));
    let (err, base) = c.produce("orders", 1, batch(&[b"d"], None), 1).await?;
    assert_eq!((err, base), (0, 3));
    let (err, hw, records) = c.fetch("orders", 1, 1, 0, 0).await?;
    assert_eq!((err, hw), (0, 4));
    // The whole first batch comes back (offsets 0..=2), then the second.
    let values: Vec<_> = records
        .iter()
        .map(|r| r.value.clone().unwrap_or_default())
        .collect();
    assert_eq!(values, vec!["a", "b", "c", "d"]);
    assert_eq!(records[3].offset, 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_long_polls_until_data_arrives() -> anyhow::Result<()> {
    let (node, mut c) = TestNode::with_topic("clicks", 1).await?;
    let mut consumer = node.client().await?;
    let waiting = tokio::spawn(async move { consumer.fetch("clicks", 0, 0, 10_000, 1).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "fetch must wait for data");
    c.produce("clicks", 0, batch(&[b"x"], None), 1).await?;
    let (err, hw, records) = tokio::time::timeout(Duration::from_secs(5), waiting).await???;
    assert_eq!((err, hw, records.len()), (0, 1, 1));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_topics_are_not_created_by_default() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let mut c = node.client().await?;
    let (err, _) = c.produce("nope", 0, batch(&[b"x"], None), 1).await?;
    assert_eq!(err, ResponseError::UnknownTopicOrPartition.code());
    assert!(node.log.topic("nope").is_none());

    let kafka = KafkaConfig {
        auto_create_topics: true,
        ..Default::default()
    };
    let node = node_with(kafka).await?;
    let mut c = node.client().await?;
    let (err, _) = c.produce("auto", 0, batch(&[b"x"], None), 1).await?;
    assert_eq!(err, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_resend_is_answered_not_written() -> anyhow::Result<()> {
    let (_node, mut c) = TestNode::with_topic("pay", 1).await?;
    let first = batch(&[b"a", b"b"], Some((7, 0, 0)));
    assert_eq!(c.produce("pay", 0, first.clone(), -1).await?, (0, 0));
    assert_eq!(
        c.produce("pay", 0, batch(&[b"c"], Some((7, 0, 2))), -1)
            .await?,
        (0, 2)
    );
    // The retry of the first batch gets its original offset back.
    assert_eq!(c.produce("pay", 0, first, -1).await?, (0, 0));
    let gap = c
        .produce("pay", 0, batch(&[b"z"], Some((7, 0, 9))), -1)
        .await?;
    assert_eq!(gap.0, ResponseError::OutOfOrderSequenceNumber.code());
    let (_, hw, _) = c.fetch("pay", 0, 0, 0, 0).await?;
    assert_eq!(hw, 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_batch_is_refused_and_connection_kept() -> anyhow::Result<()> {
    let (_node, mut c) = TestNode::with_topic("t", 1).await?;
    let mut bad = batch(&[b"hello"], None).to_vec();
    let n = bad.len();
    bad[n - 3] ^= 0x55;
    let (err, _) = c.produce("t", 0, bad.into(), 1).await?;
    assert_eq!(err, ResponseError::CorruptMessage.code());
    assert_eq!(c.produce("t", 0, batch(&[b"ok"], None), 1).await?, (0, 0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_frames_close_only_their_connection() -> anyhow::Result<()> {
    let kafka = KafkaConfig {
        max_request_bytes: 1 << 20,
        ..Default::default()
    };
    let node = node_with(kafka).await?;
    let mut good = node.client().await?;
    good.create_topic("t", 1, &[]).await?;

    // Garbage after a valid-looking header: Metadata v1 with a body that is not a topic list.
    let mut garbage = Client::connect(node.addr).await?;
    let mut frame = bytes::BytesMut::new();
    frame.put_i32(16);
    frame.put_i16(3); // Metadata
    frame.put_i16(1);
    frame.put_i32(42);
    frame.put_i16(-1); // null client id
    frame.put_slice(&[0x7f, 0xff, 0xff, 0xff, 0xde, 0xad]);
    garbage.send_raw(&frame).await?;
    assert!(
        garbage.is_closed().await,
        "malformed frame closes its connection"
    );

    let mut oversized = Client::connect(node.addr).await?;
    oversized.send_raw(&(2i32 << 20).to_be_bytes()).await?;
    assert!(
        oversized.is_closed().await,
        "oversized frame closes its connection"
    );

    let mut short = Client::connect(node.addr).await?;
    short.send_raw(&[0, 0, 0, 2, 1, 2]).await?;
    assert!(short.is_closed().await, "short frame closes its connection");

    // The well-behaved connection is still served.
    assert_eq!(
        good.produce("t", 0, batch(&[b"still here"], None), 1)
            .await?,
        (0, 0)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_versions_get_an_error_code_not_a_hangup() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let mut c = node.client().await?;
    use bytes::Buf;
    // ApiVersions at a version from the future, then an API key nobody knows: each answered
    // with UNSUPPORTED_VERSION (ApiVersions with our list), and the connection stays open.
    for (api_key, version, correlation) in [(18, 99, 5), (999, 0, 6)] {
        let mut resp = c.send_header_only(api_key, version, correlation).await?;
        assert_eq!(resp.get_i32(), correlation);
        assert_eq!(resp.get_i16(), ResponseError::UnsupportedVersion.code());
    }

    // Still usable, and ApiVersions lists what we implement.
    let versions = c.send(&ApiVersionsRequest::default(), 3).await?;
    assert_eq!(versions.error_code, 0);
    assert!(versions
        .api_keys
        .iter()
        .any(|k| k.api_key == 0 && k.min_version == 3));
    let meta = c.send(&MetadataRequest::default(), 12).await?;
    assert_eq!(meta.brokers.len(), 1);
    Ok(())
}

fn commit(group: &str, topic: &str, offset: i64) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_restart() -> anyhow::Result<()> {
    let (node, mut c) = TestNode::with_topic("t", 1).await?;
    let resp = c.send(&commit("g1", "t", 42), 8).await?;
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    drop(c);
    let dir = node.stop().await?;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let node = TestNode::start_in(dir, NodeConfig::default()).await?;
    let mut c = node.client().await?;
    let fetch = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g1")))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partition_indexes(vec![0])]));
    let resp = c.send(&fetch, 7).await?;
    assert_eq!(resp.topics[0].partitions[0].committed_offset, 42);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_segments_read_back_in_order() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let mut c = node.client().await?;
    assert_eq!(
        c.create_topic("rolls", 1, &[("segment.bytes", "65536")])
            .await?,
        0
    );
    let end = c.produce_n("rolls", 0, 5_000, 100).await?;
    assert_eq!(end, 5_000);
    let segments = node.log.partition("rolls", 0)?.segments().len();
    assert!(segments > 5, "expected several segments, got {segments}");
    let records = c.consume_all("rolls", 0, 0).await?;
    let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..5_000).collect::<Vec<_>>());
    Ok(())
}

fn join(group: &str, member: &str, session_ms: i32) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(session_ms)
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(bytes::Bytes::from_static(b"subscription"))])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_member_is_expired_after_its_session_timeout() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let mut a = node.client().await?;
    let joined = a.send(&join("g", "", 1_000), 7).await?;
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.leader, joined.member_id, "the only member leads");
    let synced = a
        .send(
            &SyncGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("g")))
                .with_generation_id(joined.generation_id)
                .with_member_id(joined.member_id.clone())
                .with_assignments(vec![SyncGroupRequestAssignment::default()
                    .with_member_id(joined.member_id.clone())
                    .with_assignment(bytes::Bytes::from_static(b"all of it"))]),
            5,
        )
        .await?;
    assert_eq!(synced.error_code, 0);
    assert_eq!(&synced.assignment[..], b"all of it");
    let beat = HeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g")))
        .with_generation_id(joined.generation_id)
        .with_member_id(joined.member_id.clone());
    assert_eq!(a.send(&beat, 4).await?.error_code, 0);

    // The member goes silent: no heartbeat, no LeaveGroup. Its session ends and it is removed.
    let describe =
        DescribeGroupsRequest::default().with_groups(vec![GroupId(StrBytes::from_static_str("g"))]);
    let mut admin = node.client().await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let members = loop {
        let resp = admin.send(&describe, 5).await?;
        let g = resp
            .groups
            .first()
            .ok_or_else(|| anyhow::anyhow!("no group"))?;
        if g.members.is_empty() {
            break g.group_state.to_string();
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "member never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(members, "Empty");
    let late = a.send(&beat, 4).await?;
    assert_eq!(late.error_code, ResponseError::UnknownMemberId.code());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_respects_partition_and_response_limits() -> anyhow::Result<()> {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::FetchRequest;
    let (_node, mut c) = TestNode::with_topic("limits", 2).await?;
    let big = vec![b'x'; 10_000];
    for p in 0..2 {
        for _ in 0..5 {
            let (err, _) = c.produce("limits", p, batch(&[&big], None), 1).await?;
            assert_eq!(err, 0);
        }
    }
    let partition = |p: i32, max: i32| {
        FetchPartition::default()
            .with_partition(p)
            .with_fetch_offset(0)
            .with_partition_max_bytes(max)
    };
    let req = |max_bytes: i32, part_max: i32| {
        FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(max_bytes)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("limits")))
                .with_partitions(vec![
                    partition(0, part_max),
                    partition(1, part_max),
                ])])
    };
    let sizes = |r: &kafka_protocol::messages::FetchResponse| -> Vec<usize> {
        r.responses[0]
            .partitions
            .iter()
            .map(|p| p.records.as_ref().map(|b| b.len()).unwrap_or(0))
            .collect()
    };
    // A partition limit smaller than one batch still returns that whole batch from the first
    // non-empty partition, so the consumer progresses, and nothing from the next (KIP-74).
    let r = c.send(&req(50 << 20, 100), 12).await?;
    let s = sizes(&r);
    assert!(s[0] > 10_000 && s[0] < 20_000 && s[1] == 0, "{s:?}");
    // A partition limit of ~2.5 batches returns two whole batches per partition.
    let r = c.send(&req(50 << 20, 25_000), 12).await?;
    let s = sizes(&r);
    assert!(s.iter().all(|n| *n > 20_000 && *n <= 25_000), "{s:?}");
    // A response limit of ~1.5 batches fills the first partition and leaves the second empty.
    let r = c.send(&req(15_000, 1 << 20), 12).await?;
    let s = sizes(&r);
    assert!(s[0] > 10_000 && s[0] <= 15_000 && s[1] == 0, "{s:?}");
    Ok(())
}

/// A node whose Kafka front end has `kafka` for its config.
async fn node_with(kafka: KafkaConfig) -> anyhow::Result<TestNode> {
    TestNode::start_with(NodeConfig {
        kafka,
        ..NodeConfig::default()
    })
    .await
}
