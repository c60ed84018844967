//! Random request bodies for every implemented API and version: the decoder refuses them
//! without taking the node down, and other connections keep being served. This is the stable-
//! toolchain stand-in for a fuzz target over the request decoders.

use bytes::BufMut;
use headwater_test_support::{Client, TestNode};
use kafka_protocol::messages::ApiVersionsRequest;
use proptest::prelude::*;

/// (api key, min, max) as advertised; kept in step with `versions.rs` by the ApiVersions check.
async fn advertised(node: &TestNode) -> anyhow::Result<Vec<(i16, i16, i16)>> {
    let mut c = node.client().await?;
    let v = c.send(&ApiVersionsRequest::default(), 3).await?;
    Ok(v.api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_bodies_never_take_the_node_down(
        pick in any::<prop::sample::Index>(),
        version_pick in any::<prop::sample::Index>(),
        client_id in proptest::option::of("[a-z]{0,8}"),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let node = TestNode::start().await?;
            let apis = advertised(&node).await?;
            let (key, min, max) = apis[pick.index(apis.len())];
            let version = min + version_pick.index((max - min + 1) as usize) as i16;
            let mut frame = bytes::BytesMut::new();
            frame.put_i16(key);
            frame.put_i16(version);
            frame.put_i32(7);
            match &client_id {
                Some(id) => {
                    frame.put_i16(id.len() as i16);
                    frame.put_slice(id.as_bytes());
                }
                None => frame.put_i16(-1),
            }
            frame.put_slice(&body);
            let mut bad = Client::connect(node.addr).await?;
            let mut sized = bytes::BytesMut::new();
            sized.put_i32(frame.len() as i32);
            sized.put_slice(&frame);
            bad.send_raw(&sized).await?;
            // Answered or closed, either is fine; what matters is the node afterwards.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), bad.read_frame()).await;
            let mut good = node.client().await?;
            let v = good.send(&ApiVersionsRequest::default(), 3).await?;
            anyhow::ensure!(v.error_code == 0, "node stopped answering after api {key} v{version}");
            Ok::<_, anyhow::Error>(())
        }).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}
