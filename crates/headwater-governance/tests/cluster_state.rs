//! The audit trail kept on a real Apache Kafka cluster instead of the
//! embedded log: written by one node, read back by a node that starts afterwards.

use std::sync::Arc;

use headwater_cluster::Cluster;
use headwater_domains::audit::Change;
use headwater_governance::AuditTrail;
use headwater_kafka::InternalTopic;
use headwater_test_support::kafka_cluster;
use serde_json::json;

/// A topic name of its own for each test run: the cluster outlives one test.
fn unique(prefix: &str) -> &'static str {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    Box::leak(format!("{prefix}.{nanos}").into_boxed_str())
}

async fn connect() -> Arc<Cluster> {
    let config = kafka_cluster().expect("cluster");
    Cluster::connect(config).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_chain_continues_on_the_cluster_across_nodes() {
    let name = unique("_headwater.audit-test");
    let first = connect().await;
    let trail = AuditTrail::over(InternalTopic::on_cluster(&first, name).await.expect("open"))
        .expect("trail");
    for i in 0..3 {
        let change = Change::new(
            "user:alice",
            "schema.register",
            Some("payments"),
            "orders-value",
            json!(null),
            json!({"version": i}),
        );
        trail.record(change).await;
    }
    let verified = trail.verify().expect("verify");
    assert!(verified.intact && verified.entries == 3, "{verified:?}");
    drop(trail);

    // A node started afterwards reads the same chain and continues it.
    let second = connect().await;
    let trail = AuditTrail::over(
        InternalTopic::on_cluster(&second, name)
            .await
            .expect("open"),
    )
    .expect("trail");
    assert_eq!(trail.stored().expect("stored").len(), 3);
    trail
        .record(Change::new(
            "user:bob",
            "domain.apply",
            Some("finance"),
            "finance",
            json!(null),
            json!({}),
        ))
        .await;
    let verified = trail.verify().expect("verify");
    assert!(verified.intact && verified.entries == 4, "{verified:?}");
}
