//! The node's config file (`--config FILE`, TOML).
//!
//! ```toml
//! [kafka]
//! auto_create_topics = false
//! max_request_bytes = 104857600
//! max_connections = 4096
//! sign_in_timeout_ms = 10000      # with [auth]: a connection signs in within this
//! idle_timeout_ms = 600000
//!
//! [http]
//! max_connections = 4096
//! header_read_timeout_ms = 10000
//! max_event_streams = 256
//!
//! [log]
//! fsync = "interval"          # always | interval | never
//! fsync_interval_ms = 1000
//! segment_bytes = 1073741824
//!
//! [sql]                       # each ad-hoc query of /v1/sql
//! max_memory_bytes = 536870912
//! timeout_ms = 60000
//!
//! [openlineage]
//! url = "http://127.0.0.1:5000/api/v1/lineage"
//! file = "lineage.jsonl"
//!
//! [auth]
//! platform = ["user:platform"]
//! [[auth.principals]]             # as `headwater auth principal NAME --group team:x` prints
//! name = "payments-svc"
//! groups = ["team:payments"]
//! ```
//!
//! Every key is optional; an unknown key is an error naming its line, so a typo never silently
//! falls back to a default.

use std::path::Path;

use headwater_governance::OpenLineageConfig;
use headwater_kafka::KafkaConfig;
use headwater_log::LogConfig;
use serde::Deserialize;

use crate::NodeError;

/// Everything the config file sets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// The Kafka front end (`[kafka]`).
    pub kafka: KafkaConfig,
    /// The embedded log (`[log]`).
    pub log: LogConfig,
    /// The HTTP port's limits (`[http]`).
    pub http: headwater_server::HttpConfig,
    /// Bounds on each ad-hoc query of `/v1/sql` (`[sql]`).
    pub sql: headwater_pipelines::SqlLimits,
    /// Where pipeline runs' OpenLineage events go; none by default.
    pub openlineage: OpenLineageConfig,
    /// Principals and platform identities. Absent: the node runs open (and says so at start),
    /// which suits a laptop, not a shared network.
    pub auth: Option<headwater_auth::AuthConfig>,
}

impl NodeConfig {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> Result<Self, NodeError> {
        let text = std::fs::read_to_string(path).map_err(|source| NodeError::ReadConfig {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| {
            let place = e
                .span()
                .map(|s| {
                    let line = text[..s.start].matches('\n').count() + 1;
                    let col = s.start - text[..s.start].rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
                    format!("{}:{line}:{col}", path.display())
                })
                .unwrap_or_else(|| path.display().to_string());
            NodeError::Config {
                place,
                message: e.message().to_string(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "[kafka]\nauto_create_topics = true\n[log]\nfsynk = \"always\"\n",
        )
        .expect("write");
        let err = NodeConfig::load(&path).expect_err("unknown key");
        let msg = err.to_string();
        assert!(msg.contains("node.toml:4:1"), "{msg}");
        assert!(msg.contains("fsynk"), "{msg}");
    }

    #[test]
    fn reads_settings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "[log]\nfsync = \"always\"\n").expect("write");
        let cfg = NodeConfig::load(&path).expect("valid");
        assert_eq!(cfg.log.fsync, headwater_log::FsyncPolicy::Always);
        assert!(!cfg.kafka.auto_create_topics);
    }
}
