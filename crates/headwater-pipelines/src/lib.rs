//! # headwater-pipelines
//!
//! Each domain processes what it may read at its own pace. This crate is the pipeline runtime
//! that does it, over two narrow traits: [`StreamSource`] (read streams) and [`StreamSink`]
//! (write a stream, keep a consumer group's offsets).
//!
//! ## What it owns
//!
//! - streams as tables: a contract becomes an Arrow schema, records become rows;
//! - DataFusion SQL over streams and tables ([`Engine`]);
//! - Parquet tables replaced atomically with their input checkpoint ([`Tables`]);
//! - keyed feature views over sliding windows, in redb, updated with their checkpoint
//!   ([`ViewStore`]);
//! - the supervisor that runs every pipeline as an isolated, restartable unit
//!   ([`Supervisor`]), and the statuses and run events it reports.
//!
//! ## What it does not
//!
//! It does not know HTTP, the Kafka protocol, the log's bytes or manifests on disk; it gets
//! pipelines as [`headwater_domains::PipelineSpec`]s. It reads and writes streams only through
//! the two traits, so the embedded log and a Kafka cluster are two backings of one interface;
//! the node implements them (`NodeStreams` and `StreamService` in `headwater-streams`). It opens
//! no socket.
//!
//! ## Entry points
//!
//! - [`Engine::new`] over a [`StreamSource`] and [`Tables`]: ad-hoc SQL ([`Engine::query`])
//!   and plan-time checks ([`Engine::check`], [`Engine::column_lineage`]);
//! - [`Supervisor::new`] over the engine and a [`StreamSink`], then
//!   [`Supervisor::sync_domain`] each time a domain is applied; [`Supervisor::statuses`],
//!   [`Supervisor::run`], [`Supervisor::rebuild`], [`Supervisor::view`] serve the API.
//!
//! ## Where things go
//!
//! - a new kind of pipeline output: a module under `src/output/` (see its module doc), and
//!   its arm where the supervisor starts units (`src/supervisor/mod.rs`);
//! - a new way to fail: a variant of [`PipelineError`] (what a user can fix) or [`Fault`] (what
//!   they cannot); a backing's failure: [`SourceError`] or [`SinkError`];
//! - a new column type: `src/arrow_schema.rs` (schema) and `src/rows.rs` (values);
//! - a new feature aggregation: `src/features.rs`.
//!
//! Tests are units at the bottom of each file; the supervisor's use small fakes of the two
//! traits. Pipelines against a real node are tested in `headwater-node/tests` and
//! `tests/clients/`.

mod arrow_schema;
mod engine;
mod error;
mod features;
mod lineage;
mod micro_batch;
mod output;
mod read_only;
mod rows;
mod sink;
mod sketch;
mod source;
mod state_files;
mod supervisor;
mod tables;
mod view_store;

pub use arrow_schema::{table_schema, META_COLUMNS};
pub use engine::{Engine, Functions, Input, Loaded, SqlLimits};
pub use error::{Fault, PipelineError};
pub use features::Feature;
pub use micro_batch::pipeline_group;
pub use output::table::{run_table_pipeline, Progress, RunReport};
pub use sink::{BoxFuture, Committed, ProducerId, SinkError, StreamSink};
pub use source::{Offsets, SourceError, StreamRecord, StreamRefused, StreamSource};
pub use supervisor::{
    PipelineStatus, RunEvent, RunEventKind, State, Supervisor, ViewInfo, STUCK_AFTER,
};
pub use tables::{TableMeta, Tables, META_FILE as TABLE_META_FILE};
pub use view_store::{FeatureRow, ViewCheckpoint, ViewStore};

pub use datafusion;

pub(crate) use rows::to_batches;

/// Wall-clock time in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
