//! # headwater-pipelines
//!
//! Each domain processes what it may read at its own pace. This crate holds the pieces that do
//! it:
//!
//! - streams as tables: a contract becomes an Arrow schema, records become rows;
//! - DataFusion SQL over streams and tables;
//! - Parquet tables replaced atomically with their input checkpoint;
//! - keyed feature views over sliding windows, in redb, updated with their checkpoint;
//! - the supervisor that runs every pipeline as an isolated, restartable unit.
//!
//! It reads streams only through [`StreamSource`], so the embedded log and a Kafka cluster are
//! two backings of one interface. It does not know HTTP, the Kafka protocol or manifests on disk;
//! `headwater-server` wires it to a node.

mod arrow_schema;
mod batch;
mod engine;
mod error;
mod features;
mod lineage;
mod rows;
mod runtime;
mod sink;
mod sketch;
mod source;
mod streaming;
mod tables;
mod view_pipeline;
mod view_store;
mod windowed;

pub use arrow_schema::{table_schema, META_COLUMNS};
pub use batch::{run_batch, Progress, RunReport};
pub use engine::{Engine, Functions, Input, Loaded};
pub use error::PipelineError;
pub use features::Feature;
pub use rows::to_batches;
pub use runtime::STUCK_AFTER;
pub use runtime::{PipelineStatus, RunEvent, RunEventKind, Runtime, State, ViewInfo};
pub use sink::{BoxFuture, Committed, ProducerId, StreamSink};
pub use source::{Offsets, StreamRecord, StreamSource};
pub use streaming::{group_of, Checkpoint, Flow};
pub use tables::{TableMeta, Tables, META_FILE as TABLE_META_FILE};
pub use view_store::{FeatureRow, ViewCheckpoint, ViewStore};

pub use datafusion;

/// Wall-clock time in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
