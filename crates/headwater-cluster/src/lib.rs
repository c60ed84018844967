//! Headwater on an existing Kafka cluster (Apache Kafka, MSK, Confluent Cloud, Redpanda).
//!
//! Owns: the `[cluster]` settings ([`ClusterConfig`]), signing in to the cluster and the check a
//! node makes at start ([`Cluster::connect`], which fails naming the bootstrap servers rather
//! than hanging), and the topics holding Headwater's own state there ([`StateTopic`], followed in memory by a
//! [`StateMirror`]). Every
//! client is librdkafka through the `rdkafka` crate; nothing here speaks the wire protocol by
//! hand.
//!
//! Does not own: the embedded log (`headwater-log`), the Kafka protocol a node serves
//! (`headwater-kafka`), contracts or domains. Nothing here knows HTTP.

mod acls;
mod broker_connection;
mod client;
mod config;
mod error;
mod mirror;
mod state_topic;

pub use acls::{Acl, AclOperation, AclPattern, AclResource};
pub use broker_connection::BrokerConnection;
pub use client::{BrokerAddr, Cluster, Context};
pub use config::{ClusterConfig, SaslMechanism};
pub use error::ClusterError;
pub use mirror::{StateMirror, StateRecord};
pub use state_topic::StateTopic;
