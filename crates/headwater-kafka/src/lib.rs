//! # headwater-kafka
//!
//! The Kafka wire-protocol front end of a Headwater node, built on the `kafka-protocol` codec:
//! ApiVersions, Metadata, topic administration, Produce, Fetch with long polling, ListOffsets,
//! the classic group coordinator with committed offsets, topic configs and idempotent producers.
//!
//! It owns connections, request dispatch and the mapping of Kafka semantics onto the log. It does
//! not own bytes on disk (`headwater-log`) nor contracts and domains (later layers).
//!
//! Entry point: [`Broker::new`] over an open [`headwater_log::Log`], then [`serve`] on a
//! listener.

mod access;
mod broker;
mod config;
mod connection;
mod error;
mod gate;
mod groups;
mod handlers;
mod internal_topic;
pub mod metrics;
mod partitioner;
mod sasl;
mod versions;

use std::sync::Arc;

pub use access::Access;
pub use broker::AdminChange;
pub use broker::{Broker, NodeIdentity};
pub use config::KafkaConfig;
pub use connection::serve_connection;
pub use error::ConnectionError;
pub use gate::{GateVerdict, ProduceGate};
/// Encoding of the batches the node produces itself, re-exported for the node's producers (the
/// HTTP publish, replays, pipeline sinks, the contract gate's dead letters).
pub use headwater_log::batch::{plain_batch, plain_record, producer_batch, Headers};
pub use internal_topic::{now_ms, InternalTopic, Scanned};
pub use kafka_protocol;
pub use metrics::KafkaMetrics;
pub use partitioner::partition_for_key;

/// Accepts connections until `shutdown` resolves, serving each on its own task.
pub async fn serve(
    broker: Arc<Broker>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(broker.clone(), stream));
                }
                Err(e) => {
                    // Out of file descriptors and the like: keep serving existing connections.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}
