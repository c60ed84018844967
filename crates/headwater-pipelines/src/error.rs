//! Why a query or a pipeline failed.
//!
//! [`PipelineError`] says what a user can fix: a name in the SQL, a manifest that does not
//! match its SQL, a pipeline asked to do what its kind does not do. Failures of the streams a
//! pipeline reads and writes carry the backing's own error ([`SourceError`], [`SinkError`]).
//! Faults no user can fix (the node's disk, its state files, a broken invariant) are kept
//! apart in [`Fault`], behind [`PipelineError::Internal`].
//!
//! The texts are what users read: a pipeline's `last_error`, its `backing_off` state, the
//! `error` event of `headwater run` and `headwater rebuild`.

use crate::sink::SinkError;
use crate::source::SourceError;

/// Why a query or a pipeline run failed, saying what to fix.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The SQL names a table without its domain.
    #[error("SQL: table '{table}' has no domain; name streams and tables as <domain>.<name>, e.g. payments.transaction_settled")]
    UnqualifiedTable {
        /// The table as the SQL names it.
        table: String,
    },
    /// SQL that would do more than read: the node runs queries only.
    #[error("SQL: {kind} is refused; only read-only queries run here (SELECT, WITH, VALUES, SHOW, EXPLAIN): nothing may be written, created, dropped or set through SQL")]
    NotAQuery {
        /// The statement's kind (`COPY`, `CREATE TABLE`, `SET`).
        kind: String,
    },
    /// A query used more memory than the node lets one query use.
    #[error("SQL: the query needs more memory than the {limit_bytes} bytes a query may use ([sql] max_memory_bytes): {detail}; filter or aggregate more before sorting or grouping")]
    OutOfMemory {
        /// The limit.
        limit_bytes: u64,
        /// What DataFusion could not fit.
        detail: String,
    },
    /// A query ran past the node's time limit and was stopped.
    #[error("SQL: the query ran past the time limit of {limit_ms} ms ([sql] timeout_ms) and was stopped; narrow it with filters or LIMIT")]
    TimedOut {
        /// The limit.
        limit_ms: u64,
    },
    /// The SQL names something that is neither a stream nor a table.
    #[error("SQL: '{name}' is neither a stream nor a table; list them with `headwater sql \"SHOW TABLES\"` or check the name")]
    UnknownTable {
        /// `<domain>.<name>` as the SQL names it.
        name: String,
    },
    /// DataFusion refused or failed the SQL: a wrong column, a type, a cast that failed while
    /// it ran. Its text names the problem.
    #[error("{source}")]
    DataFusion {
        /// DataFusion's error.
        #[from]
        source: datafusion::error::DataFusionError,
    },
    /// A pipeline reads a stream in its SQL that its manifest does not list in `inputs`.
    #[error("pipeline {pipeline} reads '{stream}' in its SQL but does not list it in `inputs`; add it there (readers are checked against inputs)")]
    UndeclaredInput {
        /// `<domain>.<pipeline>`.
        pipeline: String,
        /// The stream the SQL reads.
        stream: String,
    },
    /// A table pipeline partitions by a column its query does not produce.
    #[error("pipeline {pipeline}: partition column '{column}' is not in the query's result (columns: {})", .columns.join(", "))]
    UnknownPartitionColumn {
        /// `<domain>.<pipeline>`.
        pipeline: String,
        /// The `partition_by` column.
        column: String,
        /// The columns the query produces.
        columns: Vec<String>,
    },
    /// A pipeline's output is not what the code asked to run it for (its manifest names
    /// another output, or none).
    #[error("pipeline {pipeline} does not write {expected}")]
    WrongOutput {
        /// `<domain>.<pipeline>`.
        pipeline: String,
        /// What it was run as: "a table", "a stream", "a stream through windows".
        expected: &'static str,
    },
    /// A pipeline's `output` does not name exactly one target.
    #[error("pipeline {pipeline}: {reason}")]
    InvalidOutput {
        /// `<domain>.<pipeline>`.
        pipeline: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A table pipeline without SQL.
    #[error("pipeline {pipeline} has no sql")]
    NoSql {
        /// `<domain>.<pipeline>`.
        pipeline: String,
    },
    /// `run` named a pipeline no applied domain declares.
    #[error("pipeline '{domain}.{name}' is not deployed; declare it in {domain}'s manifest and `headwater apply`")]
    NotDeployed {
        /// The domain named.
        domain: String,
        /// The pipeline named.
        name: String,
    },
    /// `run` named a streaming pipeline: it has no runs to start.
    #[error("pipeline '{pipeline}' is a streaming pipeline; it runs continuously")]
    RunsContinuously {
        /// `<domain>.<pipeline>`.
        pipeline: String,
    },
    /// `rebuild` named nothing a deployed pipeline writes.
    #[error("'{name}' is not a pipeline, table or view of a deployed pipeline; list them with `headwater pipelines`")]
    NothingToRebuild {
        /// `<domain>.<name>` as given.
        name: String,
    },
    /// `rebuild` named a pipeline writing a stream: its events are out already.
    #[error("pipeline '{pipeline}' writes a stream, whose events are already published and read by others; it is not rebuilt. Replay to a new stream instead")]
    StreamNotRebuilt {
        /// `<domain>.<pipeline>`.
        pipeline: String,
    },
    /// The view's pipeline failed while a rebuild waited for it to catch up.
    #[error("the rebuild failed: {error}")]
    RebuildFailed {
        /// The pipeline's error, as its status shows it.
        error: String,
    },
    /// The pipeline was removed (its domain applied without it) before a requested run began.
    #[error("pipeline '{pipeline}' was removed")]
    Removed {
        /// `<domain>.<pipeline>`.
        pipeline: String,
    },
    /// The pipeline was redeployed while a requested run was under way; the new unit runs on.
    #[error("pipeline '{pipeline}' was redeployed during the run")]
    RedeployedDuringRun {
        /// `<domain>.<pipeline>`.
        pipeline: String,
    },
    /// A newer unit of the same pipeline took over its state: this one stops writing.
    #[error("{pipeline} was redeployed: this instance stops")]
    Superseded {
        /// `<domain>.<pipeline>`.
        pipeline: String,
    },
    /// The view was emptied for a rebuild while this unit was updating it.
    #[error("the view was cleared for a rebuild")]
    ViewCleared,
    /// An input stream of a streaming pipeline does not exist.
    #[error("input '{stream}' does not exist")]
    UnknownInput {
        /// The input as the manifest names it.
        stream: String,
    },
    /// Reading an input stream failed.
    #[error("reading stream '{stream}': {source}")]
    Read {
        /// The stream read.
        stream: String,
        /// What the backing said.
        source: SourceError,
    },
    /// Writing output or committing a checkpoint failed.
    #[error(transparent)]
    Write {
        /// What the backing said.
        #[from]
        source: SinkError,
    },
    /// The pipeline's code panicked (SQL, a function the node added, or a bug). The pipeline
    /// is restarted like after any other failure.
    #[error("the pipeline panicked: {message}")]
    Panicked {
        /// The panic's message.
        message: String,
    },
    /// A fault of the node, not of what the user declared.
    #[error(transparent)]
    Internal {
        /// The fault.
        #[from]
        source: Fault,
    },
}

/// A fault no user declaration causes: the node's disk, its state files, or a bug.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    /// Records or query results did not convert between JSON and Arrow.
    #[error("converting records to Arrow: {source}")]
    Arrow {
        /// Arrow's error.
        #[from]
        source: datafusion::arrow::error::ArrowError,
    },
    /// A file or directory operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the path.
        what: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A feature view's redb file failed or holds what cannot be read.
    #[error("view store of {view}: {reason}")]
    ViewStore {
        /// `<domain>.<view>`.
        view: String,
        /// What failed; for unreadable state, how to rebuild it.
        reason: String,
    },
    /// A windowed pipeline's redb state file failed.
    #[error("window state of {pipeline}: {reason}")]
    WindowState {
        /// `<domain>.<pipeline>`.
        pipeline: String,
        /// What failed.
        reason: String,
    },
    /// Rows did not convert between Arrow's JSON and JSON values.
    #[error("{what}: {source}")]
    Json {
        /// What was being converted.
        what: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// Something the code relies on did not hold: a bug.
    #[error("{what}")]
    Broken {
        /// What did not hold.
        what: String,
    },
}

impl From<datafusion::arrow::error::ArrowError> for PipelineError {
    fn from(source: datafusion::arrow::error::ArrowError) -> Self {
        Fault::Arrow { source }.into()
    }
}

impl PipelineError {
    /// An I/O fault while doing `what`.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Fault::Io {
            what: what.into(),
            source,
        }
        .into()
    }

    /// Whether running again later may succeed without anyone changing anything: the backing
    /// of the streams was unavailable. (The supervisor restarts every failed pipeline with
    /// backoff anyway; this tells a transient failure from one that needs a fix.)
    pub fn is_retryable(&self) -> bool {
        match self {
            PipelineError::Read { source, .. } => source.is_retryable(),
            PipelineError::Write { source } => source.is_retryable(),
            _ => false,
        }
    }
}
