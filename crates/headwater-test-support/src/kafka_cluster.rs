//! The real Apache Kafka cluster of `scripts/kafka-cluster`, shared by every test that needs one.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context as _};
use headwater_cluster::{ClusterConfig, SaslMechanism};

/// The workspace's root, where `scripts/` is.
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Settings of the 3-node Apache Kafka 4.4 cluster of `scripts/kafka-cluster`, started on first
/// use (`scripts/kafka-cluster ensure`: once for all test processes, under a lock) and left
/// running for the next test; `scripts/test` stops it at the end. Headwater signs in as the
/// cluster's super user `headwater` with SCRAM-SHA-512.
pub fn kafka_cluster() -> anyhow::Result<ClusterConfig> {
    let root = workspace_root();
    let out = Command::new(root.join("scripts/kafka-cluster"))
        .arg("ensure")
        .output()
        .context("running scripts/kafka-cluster ensure")?;
    if !out.status.success() {
        bail!(
            "scripts/kafka-cluster ensure failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let env = String::from_utf8(out.stdout).context("cluster settings")?;
    let value = |key: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("export {key}=")))
            .map(str::to_string)
    };
    let bootstrap = value("KAFKA_BOOTSTRAP").context("KAFKA_BOOTSTRAP")?;
    let username = value("KAFKA_SASL_USERNAME").context("KAFKA_SASL_USERNAME")?;
    let password = value("KAFKA_SASL_PASSWORD").context("KAFKA_SASL_PASSWORD")?;
    Ok(ClusterConfig::new(bootstrap).sign_in(SaslMechanism::ScramSha512, username, password))
}
