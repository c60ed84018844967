//! One module per kind of pipeline output: each runs a pipeline of its kind.
//!
//! - [`table`]: a Parquet table replaced whole by each run (`mode: batch`);
//! - [`stream`]: a stream, record by record, exactly once through its group's checkpoint;
//! - [`windowed`]: a stream, one result per event-time window;
//! - [`view`]: a keyed feature view, served over HTTP.
//!
//! A new kind of output goes here as a module of its own with its `run_*` function, plus its
//! arm where the supervisor starts units ([`crate::supervisor`]: `Supervisor::start` and, for
//! a streaming kind, `stream_unit::Target`). A streaming kind reads through
//! [`crate::micro_batch`] and keeps its own exactly-once checkpoint.

pub(crate) mod stream;
pub(crate) mod table;
pub(crate) mod view;
pub(crate) mod windowed;

use headwater_domains::PipelineSpec;

/// A deployed streaming pipeline, as the run function of its output kind gets it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deployed<'a> {
    pub(crate) domain: &'a str,
    pub(crate) name: &'a str,
    pub(crate) spec: &'a PipelineSpec,
}
