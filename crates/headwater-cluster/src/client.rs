//! A node's connection to its cluster: the settings every client shares, the check at start,
//! and librdkafka's errors and log lines routed to tracing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::admin::AdminClient;
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;

use crate::{ClusterConfig, ClusterError};

/// One broker of the cluster, as its metadata names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    /// The broker's node id.
    pub id: i32,
    /// Its advertised host.
    pub host: String,
    /// Its advertised port.
    pub port: u16,
}

/// What every client of a node on the cluster shares: the last error librdkafka reported, so a
/// failed call can say why (a refused sign-in looks like a timeout from the call's side).
#[derive(Debug, Default, Clone)]
pub struct Context {
    last_error: Arc<Mutex<LastError>>,
}

/// The code (when librdkafka gives one) and reason of the last error reported.
type LastError = Option<(Option<RDKafkaErrorCode>, String)>;

impl Context {
    fn last_error(&self) -> LastError {
        self.last_error.lock().clone()
    }
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", "{fac} {message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", "{fac} {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "{fac} {message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", "{fac} {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", "{error}: {reason}");
        *self.last_error.lock() = Some((error.rdkafka_error_code(), reason.to_string()));
    }
}

impl ConsumerContext for Context {}

/// A node's handle on its Kafka cluster: checked at [`Cluster::connect`], then shared by
/// everything the node keeps there.
pub struct Cluster {
    config: ClusterConfig,
    client_config: ClientConfig,
    context: Context,
    brokers: Vec<BrokerAddr>,
    admin: AdminClient<Context>,
    producer: FutureProducer<Context>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("bootstrap", &self.config.bootstrap)
            .field("brokers", &self.brokers)
            .finish_non_exhaustive()
    }
}

/// How often a start looks at librdkafka's errors while it waits for the cluster.
const CHECK_EVERY: Duration = Duration::from_millis(250);

impl Cluster {
    /// Signs in to the cluster and reads its brokers. Fails within `connect_timeout_ms` with an
    /// error naming the bootstrap servers when no broker answers, and at once when the cluster
    /// refuses the credentials.
    pub async fn connect(config: ClusterConfig) -> Result<Arc<Cluster>, ClusterError> {
        tokio::task::spawn_blocking(move || Self::connect_blocking(config))
            .await
            .map_err(|e| ClusterError::Config(format!("the cluster check stopped: {e}")))?
    }

    fn connect_blocking(config: ClusterConfig) -> Result<Arc<Cluster>, ClusterError> {
        let client_config = client_config(&config)?;
        let context = Context::default();
        let client = |what: &'static str| {
            let bootstrap = config.bootstrap.clone();
            move |source| ClusterError::Client {
                what,
                bootstrap,
                source,
            }
        };
        let probe: BaseConsumer<Context> = client_config
            .create_with_context(context.clone())
            .map_err(client("creating a client"))?;
        let started = Instant::now();
        let deadline = Duration::from_millis(config.connect_timeout_ms);
        let metadata = loop {
            // librdkafka hands a refused sign-in to the error callback, which runs when the
            // client's queue is served; the metadata call itself only sees a transport failure.
            let _ = probe.poll(Duration::ZERO);
            if let Some((Some(RDKafkaErrorCode::Authentication), detail)) = context.last_error() {
                return Err(ClusterError::SignIn {
                    bootstrap: config.bootstrap.clone(),
                    username: config.username.clone().unwrap_or_default(),
                    mechanism: config.sasl_mechanism.map_or("no SASL", |m| m.name()),
                    detail,
                });
            }
            match probe.fetch_metadata(None, CHECK_EVERY) {
                Ok(metadata) => break metadata,
                Err(e) if started.elapsed() >= deadline => {
                    let detail = context.last_error().map_or(e.to_string(), |(_, d)| d);
                    return Err(ClusterError::Unreachable {
                        bootstrap: config.bootstrap.clone(),
                        waited_ms: config.connect_timeout_ms,
                        detail,
                    });
                }
                Err(_) => {}
            }
        };
        let brokers = metadata
            .brokers()
            .iter()
            .map(|b| BrokerAddr {
                id: b.id(),
                host: b.host().to_string(),
                port: u16::try_from(b.port()).unwrap_or_default(),
            })
            .collect();
        let admin = client_config
            .create_with_context(context.clone())
            .map_err(client("creating the admin client"))?;
        // State changes are written once and in order: idempotence (which implies acks=all and
        // one request in flight per partition at a time as far as ordering goes) and no linger.
        let producer = client_config
            .clone()
            .set("enable.idempotence", "true")
            .set("linger.ms", "0")
            .create_with_context(context.clone())
            .map_err(client("creating the producer"))?;
        tracing::info!(bootstrap = %config.bootstrap, brokers = ?brokers, "signed in to the Kafka cluster");
        Ok(Arc::new(Cluster {
            config,
            client_config,
            context,
            brokers,
            admin,
            producer,
        }))
    }

    /// The brokers the cluster's metadata named at connect.
    pub fn brokers(&self) -> &[BrokerAddr] {
        &self.brokers
    }

    /// How many replicas each partition of `topic` has, in partition order.
    pub async fn replicas(&self, topic: &str) -> Result<Vec<usize>, ClusterError> {
        let reader = self.reader()?;
        let timeout = Duration::from_millis(self.config.connect_timeout_ms);
        let topic_name = topic.to_string();
        let metadata =
            tokio::task::spawn_blocking(move || reader.fetch_metadata(Some(&topic_name), timeout))
                .await
                .map_err(|e| self.topic_error(topic, format!("reading its metadata stopped: {e}")))?
                .map_err(|e| self.client_error("reading a topic's metadata", e))?;
        let found = metadata.topics().iter().find(|t| t.name() == topic);
        match found {
            Some(t) if t.error().is_none() => {
                let mut partitions: Vec<_> = t
                    .partitions()
                    .iter()
                    .map(|p| (p.id(), p.replicas().len()))
                    .collect();
                partitions.sort_unstable();
                Ok(partitions.into_iter().map(|(_, n)| n).collect())
            }
            _ => Err(self.topic_error(topic, "the cluster does not know it".to_string())),
        }
    }

    /// The settings the node was started with.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    pub(crate) fn admin(&self) -> &AdminClient<Context> {
        &self.admin
    }

    pub(crate) fn producer(&self) -> &FutureProducer<Context> {
        &self.producer
    }

    /// A new consumer with the node's settings and no group: reads what it is assigned.
    pub(crate) fn reader(&self) -> Result<BaseConsumer<Context>, ClusterError> {
        self.client_config
            .clone()
            // Never joined or committed (readers are assigned partitions), but librdkafka's
            // consumer wants a group id to exist.
            .set("group.id", "_headwater.state-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create_with_context(self.context.clone())
            .map_err(|source| self.client_error("creating a reader", source))
    }

    pub(crate) fn client_error(&self, what: &'static str, source: KafkaError) -> ClusterError {
        ClusterError::Client {
            what,
            bootstrap: self.config.bootstrap.clone(),
            source,
        }
    }

    pub(crate) fn topic_error(&self, topic: &str, detail: String) -> ClusterError {
        ClusterError::Topic {
            topic: topic.to_string(),
            bootstrap: self.config.bootstrap.clone(),
            detail,
        }
    }
}

/// The librdkafka settings every client of the node shares.
fn client_config(config: &ClusterConfig) -> Result<ClientConfig, ClusterError> {
    let mut c = ClientConfig::new();
    for (k, v) in &config.client {
        c.set(k, v);
    }
    c.set("bootstrap.servers", &config.bootstrap)
        .set("client.id", "headwater")
        .set_log_level(RDKafkaLogLevel::Warning);
    match config.sasl_mechanism {
        None => {
            c.set("security.protocol", "plaintext");
        }
        Some(mechanism) => {
            let username = config.username.as_deref().ok_or_else(|| {
                ClusterError::Config(format!(
                    "[cluster] sasl_mechanism is {} but no username is set: add username",
                    mechanism.name()
                ))
            })?;
            let password = config.resolved_password()?.ok_or_else(|| {
                ClusterError::Config(format!(
                    "[cluster] sasl_mechanism is {} but no password is set: add password_env \
                     (or password)",
                    mechanism.name()
                ))
            })?;
            c.set("security.protocol", "sasl_plaintext")
                .set("sasl.mechanism", mechanism.name())
                .set("sasl.username", username)
                .set("sasl.password", password);
        }
    }
    Ok(c)
}
