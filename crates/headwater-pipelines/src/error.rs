/// Why a query or a pipeline run failed, saying what to fix.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("SQL: {0}")]
    Sql(String),
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("converting records to Arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("reading stream '{topic}': {message}")]
    Read { topic: String, message: String },
    #[error("{0}")]
    Spec(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}
