//! What can stop an apply half way: each names what it was doing, and the fix is to run apply
//! again (every step is idempotent: a created stream is kept, a registered version is found).

use headwater_log::LogError;
use headwater_streams::ChangeError;

/// Why applying a domain stopped after some of its changes took effect.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Creating or configuring a stream, or storing the applied manifest, failed in the log.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Storing the applied manifest failed (on the embedded log or the cluster).
    #[error(transparent)]
    State(#[from] headwater_kafka::StateError),
    /// The schema registry refused or could not store a contract change.
    #[error(transparent)]
    Registry(#[from] ChangeError),
}
