//! The `[cluster]` table: which Kafka cluster a node serves and how it signs in.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Where the cluster is and how Headwater signs in to it.
///
/// ```toml
/// [cluster]
/// bootstrap = "kafka-1:9092,kafka-2:9092"
/// sasl_mechanism = "SCRAM-SHA-512"
/// username = "headwater"
/// password_env = "HEADWATER_CLUSTER_PASSWORD"
/// client = { "socket.keepalive.enable" = "true" }
/// ```
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Bootstrap servers, `host:port` separated by commas.
    pub bootstrap: String,
    /// How to sign in; none means the cluster's listener is PLAINTEXT without SASL.
    #[serde(default)]
    pub sasl_mechanism: Option<SaslMechanism>,
    /// The user Headwater signs in as. It must be a super user of the cluster (or hold ALTER on
    /// the cluster and every operation on Headwater's topics), because Headwater creates topics,
    /// writes ACLs and acts for every domain.
    #[serde(default)]
    pub username: Option<String>,
    /// The password, written in the file. Prefer `password_env`, so the file can be shared.
    #[serde(default)]
    pub password: Option<String>,
    /// The name of an environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// How long a start waits for the cluster before failing (default 10 s): a cluster that is
    /// down or unreachable is an error naming it, not a node that hangs.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Further librdkafka client settings (`socket.keepalive.enable`, `client.rack`, …), given
    /// to every client Headwater opens on the cluster. Headwater's own settings win.
    #[serde(default)]
    pub client: BTreeMap<String, String>,
}

fn default_connect_timeout_ms() -> u64 {
    10_000
}

impl ClusterConfig {
    /// A cluster at `bootstrap` without SASL, with the defaults.
    pub fn new(bootstrap: impl Into<String>) -> Self {
        ClusterConfig {
            bootstrap: bootstrap.into(),
            sasl_mechanism: None,
            username: None,
            password: None,
            password_env: None,
            connect_timeout_ms: default_connect_timeout_ms(),
            client: BTreeMap::new(),
        }
    }

    /// The same cluster, signing in with `mechanism` as `username`.
    pub fn sign_in(
        mut self,
        mechanism: SaslMechanism,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.sasl_mechanism = Some(mechanism);
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// The password, from the file or from `password_env`.
    pub(crate) fn resolved_password(&self) -> Result<Option<String>, crate::ClusterError> {
        match (&self.password, &self.password_env) {
            (Some(_), Some(_)) => Err(crate::ClusterError::Config(
                "[cluster] sets both password and password_env: keep one".to_string(),
            )),
            (Some(p), None) => Ok(Some(p.clone())),
            (None, Some(var)) => std::env::var(var).map(Some).map_err(|_| {
                crate::ClusterError::Config(format!(
                    "[cluster] password_env names {var}, which is not set in the node's environment"
                ))
            }),
            (None, None) => Ok(None),
        }
    }
}

// The password never reaches a log line.
impl fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("bootstrap", &self.bootstrap)
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("password_env", &self.password_env)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("client", &self.client)
            .finish()
    }
}

/// The SASL mechanisms a cluster can ask for. TLS is not supported yet (see docs/security.md).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum SaslMechanism {
    /// `PLAIN`: the password travels as is, so only on a trusted network.
    #[serde(rename = "PLAIN")]
    Plain,
    /// `SCRAM-SHA-256`.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// `SCRAM-SHA-512`.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// The name Kafka and librdkafka use.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_table_reads_with_defaults_and_refuses_unknown_keys() {
        let cfg: ClusterConfig = serde_json::from_str(
            r#"{"bootstrap":"a:9092","sasl_mechanism":"SCRAM-SHA-512","username":"hw","password":"s"}"#,
        )
        .expect("valid");
        assert_eq!(cfg.connect_timeout_ms, 10_000);
        assert_eq!(cfg.sasl_mechanism, Some(SaslMechanism::ScramSha512));
        assert!(
            !format!("{cfg:?}").contains("\"s\""),
            "the password is not printed"
        );
        let typo = serde_json::from_str::<ClusterConfig>(r#"{"bootstrap":"a:9092","pasword":"s"}"#);
        assert!(typo.is_err());
    }

    #[test]
    fn one_password_source() {
        let mut cfg = ClusterConfig::new("a:9092").sign_in(SaslMechanism::Plain, "hw", "s");
        assert_eq!(cfg.resolved_password().ok().flatten().as_deref(), Some("s"));
        cfg.password_env = Some("HEADWATER_TEST_UNSET_VARIABLE".to_string());
        assert!(cfg.resolved_password().is_err());
        cfg.password = None;
        let err = cfg.resolved_password().err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("HEADWATER_TEST_UNSET_VARIABLE")));
    }
}
