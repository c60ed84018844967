//! The one assembly of a node: every part built once, in dependency order, each given what it
//! needs at construction.
//!
//! ```text
//! log ─┬─ audit trail ─┬─ schema registry ── contract gate ─┐
//!      │               └─ applied domains (store) ─ access ──┴─ broker (Kafka front end)
//!      └─────────────────────────────────────────────────────── streams ── pipelines
//!                                     status ── plan/apply ── catalog ── lineage ── metrics
//! ```
//!
//! `headwater serve`, every test that needs a node (through `headwater-test-support`) and the
//! benchmarks start nodes here, and nowhere else.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use headwater_governance::{
    follow_pipeline_runs, record_admin_changes, Actor, ApplyTo, AuditTrail, CatalogService,
    DomainOutcome, DomainService, DomainStore, LineageService, NodeAccess, OpenLineage,
    PipelineService, RefusalCounts, StatusService,
};
use headwater_kafka::{Authorizer, Broker, Checks, NodeIdentity};
use headwater_log::Log;
use headwater_server::{Api, NodeMetrics};
use headwater_streams::{ContractGate, NodeStreams, SchemaRegistry, StreamService};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{NodeConfig, NodeError};

/// How to start a node; [`Node::builder`] makes one with the defaults of `headwater serve`.
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    data_dir: PathBuf,
    config: NodeConfig,
    config_file: Option<PathBuf>,
    kafka_addr: SocketAddr,
    http_addr: SocketAddr,
    domains: Option<PathBuf>,
}

/// A running node: its listeners, its services, and how to stop it.
#[derive(Debug)]
pub struct Node {
    /// Its services, as the HTTP API serves them and tests and benchmarks drive them.
    pub services: Api,
    /// The embedded log under everything.
    pub log: Arc<Log>,
    /// The Kafka front end.
    pub broker: Arc<Broker>,
    /// The produce-time contract and quality check.
    pub gate: Arc<ContractGate>,
    kafka_addr: SocketAddr,
    http_addr: SocketAddr,
    stop: watch::Sender<bool>,
    kafka: Option<JoinHandle<()>>,
    http: Option<JoinHandle<std::io::Result<()>>>,
}

impl Node {
    /// A node over `data_dir` with the defaults of `headwater serve`: Kafka on
    /// 127.0.0.1:9092, HTTP on 127.0.0.1:8081, no config file, no manifests applied at start.
    pub fn builder(data_dir: impl Into<PathBuf>) -> NodeBuilder {
        NodeBuilder {
            data_dir: data_dir.into(),
            config: NodeConfig::default(),
            config_file: None,
            kafka_addr: SocketAddr::from(([127, 0, 0, 1], 9092)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
            domains: None,
        }
    }

    /// Where the Kafka listener is bound.
    pub fn kafka_addr(&self) -> SocketAddr {
        self.kafka_addr
    }

    /// Where the HTTP listener is bound.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Stops accepting connections and waits for both listeners to finish. The log stays
    /// open (see [`Node::close`]).
    pub async fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(kafka) = self.kafka.take() {
            let _ = kafka.await;
        }
        if let Some(http) = self.http.take() {
            if let Ok(Err(e)) = http.await {
                tracing::warn!("http listener ended with an error: {e}");
            }
        }
    }

    /// Closes the log: segments flushed and synced. Call after [`Node::stop`], once the
    /// runtime's remaining tasks are done with it.
    pub fn close(self) -> Result<(), NodeError> {
        self.log.close()?;
        Ok(())
    }

    /// [`Node::stop`], then [`Node::close`].
    pub async fn shutdown(mut self) -> Result<(), NodeError> {
        self.stop().await;
        self.close()
    }
}

impl NodeBuilder {
    /// The settings of the config file, read from `file` (named in errors).
    pub fn config(mut self, config: NodeConfig, file: Option<&Path>) -> Self {
        self.config = config;
        self.config_file = file.map(Path::to_path_buf);
        self
    }

    /// Where the Kafka listener binds (port 0: any free port).
    pub fn kafka_addr(mut self, addr: SocketAddr) -> Self {
        self.kafka_addr = addr;
        self
    }

    /// Where the HTTP listener binds (port 0: any free port).
    pub fn http_addr(mut self, addr: SocketAddr) -> Self {
        self.http_addr = addr;
        self
    }

    /// Applies the domain manifests in `dir` at start, as `headwater apply` would.
    pub fn apply_domains(mut self, dir: impl Into<PathBuf>) -> Self {
        self.domains = Some(dir.into());
        self
    }

    /// Opens the log, builds every service, applies the manifests if asked, and starts both
    /// listeners. Call on a multi-threaded tokio runtime: services spawn their tasks on it.
    pub async fn start(self) -> Result<Node, NodeError> {
        let config = &self.config;
        let users = match &config.auth {
            Some(auth) => Some(headwater_auth::Users::new(auth).map_err(|source| {
                NodeError::Auth {
                    config: self
                        .config_file
                        .as_deref()
                        .map_or_else(|| "the config".to_string(), |p| p.display().to_string()),
                    source,
                }
            })?),
            None => None,
        };
        let kafka_listener = bind(self.kafka_addr, "the Kafka protocol", "--kafka-addr").await?;
        let kafka_addr = kafka_listener
            .local_addr()
            .map_err(|source| listen_error(self.kafka_addr, "the Kafka protocol", source))?;
        let log = Log::open(&self.data_dir, config.log.clone())?;
        let (host, port) = advertised_host(config, kafka_addr)?;
        let identity = NodeIdentity {
            node_id: 0,
            host,
            port,
            cluster_id: cluster_id(&log)?,
        };
        let (services, broker, gate) = assemble(&log, config, identity, users)?;
        services.domains.start_pipelines().await;
        if let Some(dir) = &self.domains {
            apply_at_start(&services.domains, dir).await?;
        }
        let http_listener = bind(self.http_addr, "HTTP", "--http-addr").await?;
        let http_addr = http_listener
            .local_addr()
            .map_err(|source| listen_error(self.http_addr, "HTTP", source))?;
        log.start_background();
        let (stop, stopped) = watch::channel(false);
        let until_stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let http = tokio::spawn(
            services
                .clone()
                .serve(http_listener, until_stopped(stopped.clone())),
        );
        let kafka = tokio::spawn(headwater_kafka::serve(
            broker.clone(),
            kafka_listener,
            until_stopped(stopped),
        ));
        Ok(Node {
            services,
            log,
            broker,
            gate,
            kafka_addr,
            http_addr,
            stop,
            kafka: Some(kafka),
            http: Some(http),
        })
    }
}

/// Builds every service over `log`, in the order the module doc draws: the services, the
/// Kafka front end and the contract gate.
fn assemble(
    log: &Arc<Log>,
    config: &NodeConfig,
    identity: NodeIdentity,
    users: Option<headwater_auth::Users>,
) -> Result<(Api, Arc<Broker>, Arc<ContractGate>), NodeError> {
    let audit = Arc::new(AuditTrail::open(log)?);
    let registry = Arc::new(SchemaRegistry::open(log, audit.clone())?);
    let gate = Arc::new(ContractGate::new(registry.clone()));
    let store = DomainStore::open(log)?;
    let applied = store.applied().clone();
    let refusals = RefusalCounts::default();
    let access =
        users.map(|users| NodeAccess::new(users, applied.clone(), audit.clone(), refusals.clone()));
    let kafka_ns = format!("kafka://{}:{}", identity.host, identity.port);
    let checks = Checks {
        gate: Some(gate.clone()),
        authorizer: access.clone().map(|a| a as Arc<dyn Authorizer>),
    };
    let broker = Broker::new(log.clone(), config.kafka.clone(), identity, checks)?;
    let streams = Arc::new(StreamService::new(
        broker.clone(),
        registry.clone(),
        gate.clone(),
        applied.clone(),
        audit.clone(),
    ));
    let pipelines = Arc::new(PipelineService::new(
        Arc::new(NodeStreams::new(streams.clone())),
        streams.clone(),
        log.appended().clone(),
        log.dir(),
        config.sql,
    ));
    let openlineage =
        (config.openlineage.url.is_some() || config.openlineage.file.is_some()).then(|| {
            Arc::new(OpenLineage::new(
                config.openlineage.clone(),
                applied.clone(),
                kafka_ns,
            ))
        });
    if let Some(runs) = pipelines.supervisor().run_events() {
        follow_pipeline_runs(&audit, runs, openlineage);
    }
    if let Some(changes) = broker.admin_changes() {
        record_admin_changes(&audit, changes, &applied);
    }
    let status = Arc::new(StatusService::new(
        streams.clone(),
        pipelines.clone(),
        applied.clone(),
    ));
    let domains = Arc::new(DomainService::new(
        store,
        ApplyTo {
            log: log.clone(),
            registry: registry.clone(),
            gate: gate.clone(),
            pipelines: pipelines.clone(),
            status: status.clone(),
            audit: audit.clone(),
            access: access.clone(),
        },
    ));
    let catalog = Arc::new(CatalogService::new(
        applied.clone(),
        registry.clone(),
        status.clone(),
        streams.clone(),
    ));
    let lineage = Arc::new(LineageService::new(
        catalog.clone(),
        applied,
        pipelines.clone(),
    ));
    let metrics = Arc::new(NodeMetrics::new(
        &broker,
        &gate,
        &refusals,
        status.clone(),
        pipelines.clone(),
    ));
    let services = Api {
        registry,
        domains,
        streams,
        pipelines,
        status,
        audit,
        catalog,
        lineage,
        metrics,
        access,
        http: config.http,
    };
    Ok((services, broker, gate))
}

async fn bind(
    addr: SocketAddr,
    what: &'static str,
    flag: &'static str,
) -> Result<tokio::net::TcpListener, NodeError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Listen {
            what,
            addr,
            flag,
            source,
        })
}

fn listen_error(addr: SocketAddr, what: &'static str, source: std::io::Error) -> NodeError {
    let flag = if what == "HTTP" {
        "--http-addr"
    } else {
        "--kafka-addr"
    };
    NodeError::Listen {
        what,
        addr,
        flag,
        source,
    }
}

/// The host and port clients are told to connect to: `[kafka] advertised_addr`, or where the
/// listener is bound.
fn advertised_host(config: &NodeConfig, bound: SocketAddr) -> Result<(String, i32), NodeError> {
    let Some(addr) = &config.kafka.advertised_addr else {
        return Ok((bound.ip().to_string(), i32::from(bound.port())));
    };
    let bad = || NodeError::AdvertisedAddr { addr: addr.clone() };
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port: i32 = port.parse().map_err(|_| bad())?;
    Ok((host.to_string(), port))
}

/// A stable cluster id per data directory, as Kafka clients expect one.
fn cluster_id(log: &Log) -> Result<String, NodeError> {
    let path = log.dir().join("cluster-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        return Ok(id.trim().to_string());
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    std::fs::write(&path, &id).map_err(|source| NodeError::ClusterId { path, source })?;
    Ok(id)
}

/// Applies the manifests of `dir` as the node itself; refuses to start when they do not load.
/// A domain whose plan has errors is logged and left out; the others are applied.
async fn apply_at_start(domains: &DomainService, dir: &Path) -> Result<(), NodeError> {
    let loaded = headwater_domains::load_dir(dir).map_err(|problems| NodeError::Manifests {
        dir: dir.to_path_buf(),
        problems,
    })?;
    let specs: Vec<_> = loaded.iter().map(|d| d.spec()).collect();
    for o in domains
        .apply(&specs, &Actor::Node("node:serve --domains"))
        .await
    {
        log_outcome(&o);
    }
    Ok(())
}

fn log_outcome(o: &DomainOutcome) {
    if !o.errors.is_empty() {
        tracing::error!(domain = %o.domain, "domain not applied: {}", o.errors.join("; "));
    } else if o.unchanged {
        tracing::info!(domain = %o.domain, "domain unchanged");
    } else {
        tracing::info!(domain = %o.domain, "domain applied: {}", o.changes.join("; "));
    }
}
