//! A request frame from a client that has not signed in, through the decoder and the
//! dispatcher of an open node over a real log: whatever the bytes, the node answers or closes
//! the connection, never panics.
#![no_main]

use std::sync::{Arc, OnceLock};

use headwater_kafka::{Broker, Checks, KafkaConfig, NodeIdentity};
use headwater_log::{Log, LogConfig};
use libfuzzer_sys::fuzz_target;

struct Node {
    runtime: tokio::runtime::Runtime,
    broker: Arc<Broker>,
    _dir: tempfile::TempDir,
}

fn node() -> &'static Node {
    static NODE: OnceLock<Node> = OnceLock::new();
    NODE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = runtime.block_on(async {
            let log = Log::open(dir.path(), LogConfig::default()).expect("log");
            let config = KafkaConfig {
                auto_create_topics: true,
                ..KafkaConfig::default()
            };
            let identity = NodeIdentity {
                node_id: 0,
                host: "127.0.0.1".into(),
                port: 9092,
                cluster_id: "fuzz".into(),
            };
            let checks = Checks {
                gate: None,
                authorizer: None,
            };
            Broker::new(log, config, identity, checks).expect("broker")
        });
        Node {
            runtime,
            broker,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let node = node();
    let frame = bytes::Bytes::copy_from_slice(data);
    // A request that waits (a long-polling Fetch, a JoinGroup) is cut off as a client that
    // disconnects would be: the fuzzer looks for panics, not for answers.
    let served = headwater_kafka::serve_frame(&node.broker, frame);
    let _ = node.runtime.block_on(async {
        tokio::time::timeout(std::time::Duration::from_millis(200), served).await
    });
});
