//! # headwater-test-support
//!
//! The one harness of the workspace's tests and benchmarks:
//!
//! - [`TestNode`]: a whole node inside the test process (the assembly of `headwater-node`) on
//!   free ports of 127.0.0.1 with a temporary data directory;
//! - [`NodeProcess`]: the `headwater` binary in its own process, for tests and benchmarks that
//!   kill or restart it, and [`free_port`];
//! - [`Client`]: a bare Kafka protocol client on the node's own codec, and [`batch`] to build
//!   record batches as producers send them;
//! - [`Http`]: a minimal keep-alive HTTP client;
//! - [`wait_for`]: poll a condition instead of sleeping;
//! - [`kafka_cluster`]: the real Apache Kafka cluster of `scripts/kafka-cluster`, started once.
//!
//! Tests with real Kafka clients (kcat, librdkafka, kafka-python) live in `tests/clients` and
//! start the binary themselves.

mod batch;
mod client;
mod http;
mod kafka_cluster;
mod node;
mod process;
mod wait;

pub use batch::batch;
pub use client::Client;
pub use http::{connect, Http};
pub use kafka_cluster::kafka_cluster;
pub use node::TestNode;
pub use process::{free_port, NodeProcess};
pub use wait::wait_for;

pub use headwater_node::{Node, NodeConfig};
