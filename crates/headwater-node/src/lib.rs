//! # headwater-node
//!
//! One Headwater node: its config file ([`NodeConfig`]) and the one place its parts are put
//! together ([`Node::builder`]): the embedded log, the Kafka front end, the streams, the
//! pipelines, governance and the HTTP API, each built once and given what it needs. `headwater
//! serve`, the tests (through `headwater-test-support`) and the benchmarks all start nodes
//! here; a second storage backing (an existing Kafka cluster) is a second way to assemble.
//!
//! It owns assembly, listeners and shutdown; what each part does is its own crate's.
//!
//! ```no_run
//! # async fn run() -> Result<(), headwater_node::NodeError> {
//! use headwater_node::Node;
//! let node = Node::builder("./headwater-data")
//!     .kafka_addr("127.0.0.1:0".parse().expect("an address"))
//!     .http_addr("127.0.0.1:0".parse().expect("an address"))
//!     .apply_domains("examples/domains")
//!     .start()
//!     .await?;
//! println!("Kafka on {}, HTTP on {}", node.kafka_addr(), node.http_addr());
//! node.shutdown().await
//! # }
//! ```

mod config;
mod error;
mod node;

pub use config::NodeConfig;
pub use error::NodeError;
pub use node::{Node, NodeBuilder};
