//! A node's connection to a real Apache Kafka 4.4 cluster (3 KRaft nodes, SCRAM-SHA-512, the
//! StandardAuthorizer), started by `scripts/kafka-cluster`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use headwater_cluster::{
    Acl, AclOperation, AclPattern, AclResource, Cluster, ClusterConfig, ClusterError,
    SaslMechanism, StateTopic,
};
use headwater_test_support::{free_port, kafka_cluster};
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord};

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}.{nanos}")
}

#[tokio::test]
async fn signs_in_and_sees_every_broker() {
    let config = kafka_cluster().expect("cluster");
    let cluster = Cluster::connect(config).await.expect("connect");
    assert_eq!(cluster.brokers().len(), 3, "{:?}", cluster.brokers());
}

#[tokio::test]
async fn a_refused_password_is_an_error_naming_the_cluster_and_the_fix() {
    let mut config = kafka_cluster().expect("cluster");
    config.password = Some("not-the-password".to_string());
    let bootstrap = config.bootstrap.clone();
    let started = Instant::now();
    let err = Cluster::connect(config).await.expect_err("refused");
    assert!(matches!(err, ClusterError::SignIn { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(&bootstrap), "{message}");
    assert!(message.contains("SCRAM-SHA-512"), "{message}");
    assert!(
        message.contains("fix [cluster] username and password"),
        "{message}"
    );
    // Refused at the first answer, not after the whole connect timeout.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_cluster_that_is_not_there_fails_within_the_timeout() {
    let bootstrap = format!("127.0.0.1:{}", free_port().expect("port"));
    let mut config = ClusterConfig::new(&bootstrap);
    config.connect_timeout_ms = 1500;
    let err = Cluster::connect(config).await.expect_err("nothing listens");
    assert!(matches!(err, ClusterError::Unreachable { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&bootstrap) && message.contains("start the cluster"),
        "{message}"
    );
}

#[tokio::test]
async fn a_sign_in_without_a_password_is_a_config_error() {
    let mut config = ClusterConfig::new("127.0.0.1:9");
    config.sasl_mechanism = Some(SaslMechanism::ScramSha512);
    config.username = Some("headwater".to_string());
    let err = Cluster::connect(config).await.expect_err("no password");
    assert!(err.to_string().contains("no password is set"), "{err}");
}

#[tokio::test]
async fn a_state_topic_is_replicated_and_reads_back_in_order_from_another_node() {
    let config = kafka_cluster().expect("cluster");
    let writer = Cluster::connect(config.clone()).await.expect("connect");
    let name = unique("_headwater.test");
    let topic = StateTopic::open(&writer, &name).await.expect("create");
    assert_eq!(writer.replicas(&name).await.expect("metadata"), vec![3]);
    let mine = topic.follow().await.expect("follow");
    let mut offsets = Vec::new();
    for i in 0..5u8 {
        let key = [b'k', i];
        offsets.push(
            mine.append(Some(&key), Some(&[i; 3]))
                .await
                .expect("append"),
        );
        // What a node appends it reads back at once.
        assert_eq!(mine.records_from(0).len(), usize::from(i) + 1);
    }
    assert_eq!(offsets, vec![0, 1, 2, 3, 4]);

    // Another node opens the same topic (already there) and reads what the first wrote.
    let other_node = Cluster::connect(config).await.expect("connect");
    let again = StateTopic::open(&other_node, &name)
        .await
        .expect("open existing");
    let theirs = again.follow().await.expect("follow");
    let records = theirs.records_from(0);
    assert_eq!(records.len(), 5);
    for (i, r) in records.iter().enumerate() {
        let i = u8::try_from(i).expect("small");
        assert_eq!(r.offset, i64::from(i));
        assert_eq!(r.key.as_deref(), Some(&[b'k', i][..]));
        assert_eq!(r.value.as_deref(), Some(&[i; 3][..]));
    }
    assert_eq!(theirs.records_from(3).len(), 2);

    // Each sees what the other appends afterwards.
    let mut end = mine.end();
    let offset = theirs
        .append(None, Some(b"from the other node"))
        .await
        .expect("append");
    tokio::time::timeout(Duration::from_secs(30), end.wait_for(|e| *e > offset))
        .await
        .expect("seen in time")
        .expect("reader running");
    let last = mine.records_from(offset);
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].value.as_deref(), Some(&b"from the other node"[..]));

    let empty = StateTopic::open(&other_node, &unique("_headwater.empty"))
        .await
        .expect("create");
    assert!(empty
        .follow()
        .await
        .expect("follow")
        .records_from(0)
        .is_empty());
}

/// A producer of its own, signed in to the cluster as `user`: a client that bypasses Headwater.
fn direct_producer(config: &ClusterConfig, user: &str, password: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap)
        .set("security.protocol", "sasl_plaintext")
        .set("sasl.mechanism", "SCRAM-SHA-512")
        .set("sasl.username", user)
        .set("sasl.password", password)
        .set("message.timeout.ms", "10000")
        .create()
        .expect("producer")
}

async fn produce(producer: &FutureProducer, topic: &str) -> Result<(), RDKafkaErrorCode> {
    let record = FutureRecord::<[u8], [u8]>::to(topic).payload(b"direct");
    match producer.send(record, Duration::from_secs(10)).await {
        Ok(_) => Ok(()),
        Err((e, _)) => Err(e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail)),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn acls_written_through_headwater_are_what_the_cluster_enforces_on_direct_clients() {
    let config = kafka_cluster().expect("cluster");
    let cluster = Cluster::connect(config.clone()).await.expect("connect");
    let domain = unique("acl").replace('.', "-");
    let topic = format!("{domain}.orders");
    StateTopic::open(&cluster, &topic).await.expect("create");
    let (owner, stranger) = (format!("{domain}-owner"), format!("{domain}-stranger"));
    cluster
        .set_scram_user(&owner, "owner-secret")
        .await
        .expect("owner");
    cluster
        .set_scram_user(&stranger, "stranger-secret")
        .await
        .expect("stranger");

    let grants: Vec<Acl> = [AclOperation::Write, AclOperation::Describe]
        .into_iter()
        .map(|operation| Acl {
            resource: AclResource::Topic,
            pattern: AclPattern::Prefixed,
            name: format!("{domain}."),
            principal: format!("User:{owner}"),
            operation,
        })
        .collect();
    cluster.create_acls(&grants).await.expect("create acls");
    // ACLs reach every broker through the metadata log, a moment after the controller has them.
    let mut held = BTreeSet::new();
    for _ in 0..40 {
        held = cluster.acls().await.expect("list");
        if grants.iter().all(|g| held.contains(g)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(grants.iter().all(|g| held.contains(g)), "{held:?}");
    assert_eq!(
        grants[0].to_string(),
        format!("User:{owner} may WRITE topic prefixed {domain}.")
    );

    let owners = direct_producer(&config, &owner, "owner-secret");
    let mut outcome = Err(RDKafkaErrorCode::Fail);
    for _ in 0..20 {
        outcome = produce(&owners, &topic).await;
        if outcome.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(outcome, Ok(()));
    let strangers = direct_producer(&config, &stranger, "stranger-secret");
    assert_eq!(
        produce(&strangers, &topic).await,
        Err(RDKafkaErrorCode::TopicAuthorizationFailed)
    );

    // Taking the grants away takes the owner's writes away too.
    cluster.delete_acls(&grants).await.expect("delete acls");
    let owners = direct_producer(&config, &owner, "owner-secret");
    let mut refused = Ok(());
    for _ in 0..20 {
        refused = produce(&owners, &topic).await;
        if refused.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(refused, Err(RDKafkaErrorCode::TopicAuthorizationFailed));
}
