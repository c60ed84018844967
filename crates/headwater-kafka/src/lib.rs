//! # headwater-kafka
//!
//! The Kafka wire-protocol front end of a Headwater node, built on the `kafka-protocol` codec:
//! ApiVersions, Metadata, topic administration, Produce, Fetch with long polling, ListOffsets,
//! the classic group coordinator with committed offsets, topic configs, idempotent producers,
//! and SASL sign-in (PLAIN, SCRAM) with per-request authorization when the node has `[auth]`.
//!
//! It owns connections and framing (`connection`), one module per Kafka API (`apis`), the group
//! coordinator and its committed offsets (`groups`), the application of access decisions to
//! Kafka requests ([`Authorizer`]), the produce gate's interface ([`ProduceGate`]) and the
//! internal topics holding the node's own state ([`InternalTopic`]). It does not own bytes on
//! disk nor the record batch format (`headwater-log`), who may do what (the node implements
//! [`Authorizer`] from its domains), nor contracts (the node implements [`ProduceGate`]).
//!
//! Entry point: [`Broker::new`] over an open [`headwater_log::Log`], then [`serve`] on a
//! listener.
//!
//! ## Where a new Kafka API goes
//!
//! One module in `src/apis/` named after the API (`apis/describe_acls.rs`), with a unit struct
//! named as the API is in `kafka_protocol` (`DescribeAcls`) implementing `apis::Api`: its
//! version range, its handler, and, when its request names topics or groups, the access check
//! (`authorize`) and the merge of refusals into its response (`merge`). Then, in
//! `src/apis/mod.rs`, its `mod` line and one line in the `apis!` list: dispatch, the ApiVersions
//! table and the UNSUPPORTED_VERSION answer follow from that list. State that outlives a request (groups, offsets,
//! producer ids) stays in its owner; the module calls into it.

mod apis;
mod authorize;
mod broker;
mod config;
mod connection;
mod error;
mod gate;
mod groups;
mod internal_topic;
pub mod metrics;
mod partitioner;
mod sasl;

use std::sync::Arc;

pub use apis::InProcess;
pub use authorize::Authorizer;
pub use broker::AdminChange;
pub use broker::{Broker, Checks, NodeIdentity};
pub use config::KafkaConfig;
pub use connection::{serve_connection, serve_frame};
pub use error::ConnectionError;
pub use gate::{GateVerdict, ProduceGate};
/// Encoding of the batches the node produces itself, re-exported for the node's producers (the
/// HTTP publish, replays, pipeline sinks, the contract gate's dead letters).
pub use headwater_log::batch::{plain_batch, plain_record, producer_batch, Headers};
pub use headwater_log::now_ms;
pub use internal_topic::{InternalTopic, Scanned, StateError};
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
    let slots = Arc::new(tokio::sync::Semaphore::new(broker.config.max_connections));
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        broker.metrics().connection_closed("connection_limit");
                        tracing::warn!(%peer, limit = broker.config.max_connections, "closing a new connection: the node serves [kafka] max_connections already");
                        drop(stream);
                        continue;
                    };
                    let broker = broker.clone();
                    tokio::spawn(async move {
                        serve_connection(broker, stream).await;
                        drop(slot);
                    });
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
