//! # headwater-streams
//!
//! A node's streams as its services use them: the contract gate every produce to a validated
//! topic passes ([`ContractGate`]), the schema registry's store that the gate checks against
//! ([`SchemaRegistry`], kept in `_headwater.schemas`), and [`StreamService`]: publishing JSON
//! events, reading them decoded, replaying dead letters and committing group offsets, for
//! people (HTTP, CLI) and for pipelines ([`NodeStreams`] as their source, the service itself as
//! their sink).
//!
//! Everything goes through the node's Kafka front end ([`headwater_kafka::Broker::call`]), so
//! a record the node writes on someone's behalf passes the same checks as a Kafka client's.
//! This crate is where a second backing (an existing Kafka cluster) plugs in beside the
//! embedded log.
//!
//! It does not own HTTP (`headwater-server`), plan/apply or access decisions
//! (`headwater-governance`), nor the contract rules themselves (`headwater-contracts`).

mod gate;
mod groups;
mod publish;
mod read;
mod registry;
mod replay;
mod service;
mod sink;
mod source;

pub use gate::{ContractGate, RecordRefusal};
pub use publish::{LineOutcome, PublishOutcome};
pub use read::{Event, Positions, StartAt};
pub use registry::{ChangeError, SchemaRegistry, SCHEMAS_TOPIC};
pub use replay::{ReplayOutcome, StillInvalid, REPLAY_GROUP};
pub use service::{PositionError, StreamError, StreamService};
pub use source::NodeStreams;
