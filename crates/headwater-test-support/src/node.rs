//! A node inside the test process: the one assembly of `headwater-node`, on free ports of
//! 127.0.0.1 and a temporary data directory.

use std::net::SocketAddr;
use std::sync::Arc;

use headwater_log::Log;
use headwater_node::{Node, NodeBuilder, NodeConfig};
use headwater_server::Api;

use crate::Client;

/// A running in-process node and the temporary directory it keeps its data in.
#[derive(Debug)]
pub struct TestNode {
    /// Where its Kafka listener is.
    pub addr: SocketAddr,
    /// Where its HTTP listener is.
    pub http: SocketAddr,
    /// Its log, for tests that look at what was stored.
    pub log: Arc<Log>,
    node: Node,
    dir: tempfile::TempDir,
}

impl TestNode {
    /// A node with the default config.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(NodeConfig::default()).await
    }

    /// A node with the default config and one topic of `partitions` partitions, and a client
    /// connected to it.
    pub async fn with_topic(name: &str, partitions: i32) -> anyhow::Result<(Self, Client)> {
        let node = Self::start().await?;
        let mut client = node.client().await?;
        let code = client.create_topic(name, partitions, &[]).await?;
        anyhow::ensure!(
            code == 0,
            "creating topic {name} answered error code {code}"
        );
        Ok((node, client))
    }

    /// A node with `config`.
    pub async fn start_with(config: NodeConfig) -> anyhow::Result<Self> {
        Self::start_in(tempfile::tempdir()?, config).await
    }

    /// A node on an existing data dir (for restart tests).
    pub async fn start_in(dir: tempfile::TempDir, config: NodeConfig) -> anyhow::Result<Self> {
        Self::launch(dir, |b| b.config(config, None)).await
    }

    /// A node over `dir` configured by `configure` (manifests to apply, a config): the
    /// listeners always bind free ports of 127.0.0.1.
    pub async fn launch(
        dir: tempfile::TempDir,
        configure: impl FnOnce(NodeBuilder) -> NodeBuilder,
    ) -> anyhow::Result<Self> {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        let node = configure(Node::builder(dir.path()))
            .kafka_addr(any_port)
            .http_addr(any_port)
            .start()
            .await?;
        Ok(TestNode {
            addr: node.kafka_addr(),
            http: node.http_addr(),
            log: node.log.clone(),
            node,
            dir,
        })
    }

    /// Every service of the node.
    pub fn services(&self) -> &Api {
        &self.node.services
    }

    /// The node itself: its log, Kafka front end and contract gate beside its services.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The node's data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A new Kafka protocol connection to the node.
    pub async fn client(&self) -> anyhow::Result<Client> {
        Client::connect(self.addr).await
    }

    /// Stops the listeners, closes the log cleanly and hands back the data dir.
    pub async fn stop(self) -> anyhow::Result<tempfile::TempDir> {
        let TestNode { node, dir, .. } = self;
        node.shutdown().await?;
        Ok(dir)
    }
}
