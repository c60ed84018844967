//! `headwater serve`: one node, until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use headwater_node::{Node, NodeConfig};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Where topics, segments and state live.
    #[arg(long, default_value = "./headwater-data", env = "HEADWATER_DATA_DIR")]
    data_dir: PathBuf,
    /// Address of the Kafka protocol listener.
    #[arg(long, default_value = "127.0.0.1:9092", env = "HEADWATER_KAFKA_ADDR")]
    kafka_addr: SocketAddr,
    /// Address of the HTTP listener (Schema Registry API; Headwater's API under /v1).
    #[arg(long, default_value = "127.0.0.1:8081", env = "HEADWATER_HTTP_ADDR")]
    http_addr: SocketAddr,
    /// Apply the domain manifests in this directory at start (as `headwater apply` would).
    #[arg(long, env = "HEADWATER_DOMAINS")]
    domains: Option<PathBuf>,
    /// TOML config file with `[kafka]`, `[log]`, `[auth]` and `[openlineage]` tables.
    #[arg(long, env = "HEADWATER_CONFIG")]
    config: Option<PathBuf>,
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = match &args.config {
        Some(path) => NodeConfig::load(path)?,
        None => NodeConfig::default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("headwater")
        .build()
        .context("cannot start the async runtime")?;
    let mut builder = Node::builder(&args.data_dir)
        .config(config, args.config.as_deref())
        .kafka_addr(args.kafka_addr)
        .http_addr(args.http_addr);
    if let Some(dir) = &args.domains {
        builder = builder.apply_domains(dir);
    }
    let node = runtime.block_on(async {
        let mut node = builder.start().await?;
        announce(&node, &args);
        shutdown_signal().await;
        node.stop().await;
        anyhow::Ok(node)
    })?;
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    tracing::info!("shutting down: closing segments");
    let dir = node.log.dir().display().to_string();
    node.close()
        .with_context(|| format!("closing the log in {dir}"))?;
    Ok(ExitCode::SUCCESS)
}

/// Says where the node listens and whether anyone must sign in, where an operator looks.
fn announce(node: &Node, args: &ServeArgs) {
    let (kafka, http) = (node.kafka_addr(), node.http_addr());
    tracing::info!(addr = %http, "http listener ready on {http} (schema registry API)");
    match &node.services.access {
        Some(access) => tracing::info!(
            principals = access.users().count(),
            "authentication on: Kafka clients sign in with SASL PLAIN or SCRAM-SHA-256/512, HTTP callers with a bearer token; access follows domain ownership and readers"
        ),
        None => tracing::warn!(
            "NO AUTHENTICATION: every Kafka client and HTTP caller that reaches {kafka} or {http} may produce, consume and change every domain; add an [auth] table to the config (docs/governance.md) or keep the node on localhost"
        ),
    }
    tracing::info!(addr = %kafka, data_dir = %args.data_dir.display(), "kafka listener ready on {kafka}");
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot watch SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}
