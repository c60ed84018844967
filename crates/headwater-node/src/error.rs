//! Why a node does not start or stop cleanly: each names the file, address or table at fault
//! and what to change.

use std::net::SocketAddr;
use std::path::PathBuf;

use headwater_domains::ManifestError;
use headwater_log::LogError;

/// Why a node could not start, or could not close its log.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid: `place` is `file:line:column`.
    #[error("{place}: {message}")]
    Config {
        /// Where: the file, and the line and column when known.
        place: String,
        /// What is wrong, as the TOML reader says it.
        message: String,
    },
    /// `[kafka] advertised_addr` is not `host:port`.
    #[error("[kafka] advertised_addr '{addr}' must be host:port with a numeric port")]
    AdvertisedAddr {
        /// The configured value.
        addr: String,
    },
    /// The `[auth]` table does not describe usable principals.
    #[error("the [auth] table of {config}: {source}")]
    Auth {
        /// The config file.
        config: String,
        /// What is wrong with it.
        #[source]
        source: headwater_auth::AuthError,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr} for {what}; pass another {flag}: {source}")]
    Listen {
        /// `the Kafka protocol` or `HTTP`.
        what: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// The command-line flag that sets it.
        flag: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The manifests to apply at start do not load.
    #[error("the manifests in {} have problems:\n{}", dir.display(), list(problems))]
    Manifests {
        /// The directory given with `--domains`.
        dir: PathBuf,
        /// Every problem, with its file and line.
        problems: Vec<ManifestError>,
    },
    /// The data directory's cluster id could not be written.
    #[error("cannot write {}: {source}", path.display())]
    ClusterId {
        /// The `cluster-id` file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The log could not be opened or closed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// An internal topic (`_headwater.*`) could not be read at start.
    #[error(transparent)]
    State(#[from] headwater_kafka::StateError),
}

fn list(problems: &[ManifestError]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
