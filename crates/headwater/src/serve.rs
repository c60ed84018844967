//! `headwater serve`: one node.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use headwater_kafka::{Broker, NodeIdentity};
use headwater_log::Log;
use tracing_subscriber::EnvFilter;

use crate::config::NodeConfig;

#[derive(Debug, Args)]
pub struct ServeArgs {
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
    /// TOML config file with [kafka] and [log] tables.
    #[arg(long, env = "HEADWATER_CONFIG")]
    config: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
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
    let log = Log::open(&args.data_dir, config.log.clone())?;
    let result = runtime.block_on(serve(args, config, log.clone()));
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    log.close()
        .with_context(|| format!("closing the log in {}", args_dir(&log)))?;
    result.map(|()| ExitCode::SUCCESS)
}

fn args_dir(log: &Log) -> String {
    log.dir().display().to_string()
}

async fn serve(args: ServeArgs, config: NodeConfig, log: Arc<Log>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.kafka_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} for the Kafka protocol; pass another --kafka-addr",
                args.kafka_addr
            )
        })?;
    let local = listener.local_addr()?;
    let (host, port) = match &config.kafka.advertised_addr {
        Some(a) => {
            let (h, p) = a
                .rsplit_once(':')
                .with_context(|| format!("[kafka] advertised_addr '{a}' must be host:port"))?;
            let p: i32 = p
                .parse()
                .with_context(|| format!("[kafka] advertised_addr '{a}' has an invalid port"))?;
            (h.to_string(), p)
        }
        None => (local.ip().to_string(), i32::from(local.port())),
    };
    let node = NodeIdentity {
        node_id: 0,
        host,
        port,
        cluster_id: cluster_id(&log)?,
    };
    let broker = Broker::new(log.clone(), config.kafka.clone(), node)?;
    let mut services = headwater_server::Services::open(&log, &broker)?;
    services.emit_openlineage(config.openlineage.clone());
    let users = match &config.auth {
        Some(auth) => Some(headwater_auth::Users::new(auth).with_context(|| {
            format!(
                "the [auth] table of {}",
                args.config
                    .as_deref()
                    .unwrap_or(std::path::Path::new("the config"))
                    .display()
            )
        })?),
        None => None,
    };
    let principals = config.auth.as_ref().map_or(0, |a| a.principals.len());
    if let Some(users) = users {
        services.require_auth(users);
    }
    if let Some(dir) = &args.domains {
        apply_at_start(&services.domains, dir).await?;
    }

    let http = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} for HTTP; pass another --http-addr",
                args.http_addr
            )
        })?;
    let http_local = http.local_addr()?;
    log.start_background();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let http_task = tokio::spawn(services.serve_http(http, stopped(stop_rx.clone())));
    tracing::info!(addr = %http_local, "http listener ready on {http_local} (schema registry API)");
    if config.auth.is_some() {
        tracing::info!(
            principals,
            "authentication on: Kafka clients sign in with SASL PLAIN or SCRAM-SHA-256/512, HTTP callers with a bearer token; access follows domain ownership and readers"
        );
    } else {
        // Say so where an operator looks, not only in the docs.
        tracing::warn!(
            "NO AUTHENTICATION: every Kafka client and HTTP caller that reaches {local} or {http_local} may produce, consume and change every domain; add an [auth] table to the config (docs/governance.md) or keep the node on localhost"
        );
    }
    tracing::info!(addr = %local, data_dir = %args.data_dir.display(), "kafka listener ready on {local}");
    headwater_kafka::serve(broker, listener, stopped(stop_rx)).await;
    if let Ok(Err(e)) = http_task.await {
        tracing::warn!("http listener ended with an error: {e}");
    }
    tracing::info!("shutting down: closing segments");
    Ok(())
}

/// Applies the manifests of `dir`; refuses to start when they do not load.
async fn apply_at_start(
    domains: &headwater_server::DomainService,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let loaded = headwater_domains::load_dir(dir).map_err(|errors| {
        let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        anyhow::anyhow!(
            "the manifests in {} have problems:\n{}",
            dir.display(),
            list.join("\n")
        )
    })?;
    let specs: Vec<_> = loaded.iter().map(|d| d.spec()).collect();
    for o in domains.apply(&specs, "node:serve --domains").await {
        if !o.errors.is_empty() {
            tracing::error!(domain = %o.domain, "domain not applied: {}", o.errors.join("; "));
        } else if o.unchanged {
            tracing::info!(domain = %o.domain, "domain unchanged");
        } else {
            tracing::info!(domain = %o.domain, "domain applied: {}", o.changes.join("; "));
        }
    }
    Ok(())
}

/// A stable cluster id per data directory, as Kafka clients expect one.
fn cluster_id(log: &Log) -> anyhow::Result<String> {
    let path = log.dir().join("cluster-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        return Ok(id.trim().to_string());
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    std::fs::write(&path, &id).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(id)
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
