//! The log as a whole: a data directory of topics, each a set of partitions.
//!
//! Layout of the data directory:
//!
//! ```text
//! DATA/.lock                         held (flock) by the running node
//! DATA/clean-shutdown                present only between a clean stop and the next start
//! DATA/producer-ids                  the highest producer id handed out (block reservation)
//! DATA/topics/<topic>.json           topic id, partition count and config overrides
//! DATA/topics/<topic>-<partition>/   segments, indexes and producer snapshots
//! ```
//!
//! A topic's `.json` file is its commit point: a partition directory without one is a leftover
//! of an interrupted create or delete and is ignored.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::config::{LogConfig, TopicConfig};
use crate::flusher::Flusher;
use crate::partition::{partition_dir, OpenArgs, Partition};
use crate::{fsutil, LogError};

/// Longest topic name Kafka accepts.
const MAX_TOPIC_NAME: usize = 249;
/// Producer ids are reserved on disk in blocks, so handing one out rarely touches the disk.
const PRODUCER_ID_BLOCK: i64 = 1000;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicMeta {
    id: uuid::Uuid,
    partitions: i32,
    #[serde(default)]
    configs: BTreeMap<String, String>,
}

/// A topic: its partitions and its settings (node defaults with the topic's overrides).
#[derive(Debug)]
pub struct Topic {
    name: String,
    id: uuid::Uuid,
    overrides: RwLock<BTreeMap<String, String>>,
    config: Arc<RwLock<TopicConfig>>,
    partitions: RwLock<Vec<Arc<Partition>>>,
}

impl Topic {
    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The topic's id, fixed at creation (Kafka's topic id).
    pub fn id(&self) -> uuid::Uuid {
        self.id
    }
    /// Internal topics hold Headwater's own state (`_headwater.*`).
    pub fn is_internal(&self) -> bool {
        self.name.starts_with("_headwater.")
    }
    /// Its partitions, by index.
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().clone()
    }
    /// The partition at `index`, if the topic has it.
    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.read().get(i).cloned())
    }
    /// Its effective settings.
    pub fn config(&self) -> TopicConfig {
        self.config.read().clone()
    }
    /// The settings set on the topic itself, by key.
    pub fn overrides(&self) -> BTreeMap<String, String> {
        self.overrides.read().clone()
    }
}

#[derive(Debug)]
struct ProducerIds {
    next: i64,
    reserved_to: i64,
}

/// The embedded log of one node. Open it once per data directory.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    topics_dir: PathBuf,
    config: LogConfig,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serialises topic creation, deletion and alteration (rare, and each touches several files).
    admin: Mutex<()>,
    appended: Arc<Notify>,
    flusher: Flusher,
    producer_ids: Mutex<ProducerIds>,
    closed: AtomicBool,
    _lock: File,
}

/// Checks a topic name against Kafka's rules.
pub fn validate_topic_name(name: &str) -> Result<(), LogError> {
    let bad = |reason: &str| LogError::InvalidTopicName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name == "." || name == ".." {
        return Err(bad("'.' and '..' are not allowed"));
    }
    if name.len() > MAX_TOPIC_NAME {
        return Err(bad("it is longer than 249 characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(bad(&format!(
            "character '{c}' is not allowed (use ASCII letters, digits, '.', '_' and '-')"
        )));
    }
    Ok(())
}

impl Log {
    /// Opens (or creates) the log in `dir`, taking its lock and recovering every partition.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Arc<Self>, LogError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(LogError::io("create data dir", &dir))?;
        let lock = take_lock(&dir)?;
        let topics_dir = dir.join("topics");
        std::fs::create_dir_all(&topics_dir)
            .map_err(LogError::io("create topics dir", &topics_dir))?;

        let marker = dir.join("clean-shutdown");
        let clean = marker.exists();
        if clean {
            std::fs::remove_file(&marker).map_err(LogError::io("remove", &marker))?;
            fsutil::sync_dir(&dir)?;
        } else {
            tracing::info!(dir = %dir.display(), "no clean-shutdown marker: checking the active segment of every partition");
        }

        let reserved = std::fs::read_to_string(dir.join("producer-ids"))
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(0);
        let log = Log {
            dir: dir.clone(),
            topics_dir: topics_dir.clone(),
            config,
            topics: RwLock::new(BTreeMap::new()),
            admin: Mutex::new(()),
            appended: Arc::new(Notify::new()),
            flusher: Flusher::start(),
            producer_ids: Mutex::new(ProducerIds {
                next: reserved,
                reserved_to: reserved,
            }),
            closed: AtomicBool::new(false),
            _lock: lock,
        };
        let mut metas = Vec::new();
        for entry in std::fs::read_dir(&topics_dir).map_err(LogError::io("list", &topics_dir))? {
            let entry = entry.map_err(LogError::io("list", &topics_dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(topic) = name.strip_suffix(".json") {
                if path.is_file() {
                    metas.push((topic.to_string(), path));
                }
            }
        }
        for (name, path) in metas {
            let bytes = std::fs::read(&path).map_err(LogError::io("read", &path))?;
            let meta: TopicMeta = serde_json::from_slice(&bytes).map_err(|e| LogError::Io {
                op: "parse topic metadata",
                path: path.clone(),
                source: std::io::Error::other(e),
            })?;
            let topic = log.open_topic(&name, meta, clean)?;
            log.topics.write().insert(name, topic);
        }
        Ok(Arc::new(log))
    }

    fn open_topic(&self, name: &str, meta: TopicMeta, clean: bool) -> Result<Arc<Topic>, LogError> {
        let config = Arc::new(RwLock::new(TopicConfig::resolve(
            &self.config,
            &meta.configs,
        )?));
        let topic_name: Arc<str> = Arc::from(name);
        let mut partitions = Vec::new();
        for i in 0..meta.partitions {
            let p = Partition::open(self.partition_args(&topic_name, i, &config), clean)?;
            partitions.push(Arc::new(p));
        }
        Ok(Arc::new(Topic {
            name: name.to_string(),
            id: meta.id,
            overrides: RwLock::new(meta.configs),
            config,
            partitions: RwLock::new(partitions),
        }))
    }

    fn partition_args(
        &self,
        topic: &Arc<str>,
        index: i32,
        config: &Arc<RwLock<TopicConfig>>,
    ) -> OpenArgs {
        OpenArgs {
            topic: topic.clone(),
            index,
            dir: partition_dir(&self.topics_dir, topic, index),
            config: config.clone(),
            index_interval: self.config.index_interval_bytes,
            appended: self.appended.clone(),
            flusher: self.flusher.clone(),
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The node-wide settings.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Woken whenever any partition gains visible records (for long-polling fetches).
    pub fn appended(&self) -> &Arc<Notify> {
        &self.appended
    }

    /// The topic named `name`, if any.
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    /// Every topic, internal ones included.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.topics.read().values().cloned().collect()
    }

    /// One partition of a topic, or why there is none.
    pub fn partition(&self, topic: &str, index: i32) -> Result<Arc<Partition>, LogError> {
        let t = self
            .topic(topic)
            .ok_or_else(|| LogError::UnknownTopic(topic.to_string()))?;
        t.partition(index)
            .ok_or_else(|| LogError::UnknownPartition {
                topic: topic.to_string(),
                partition: index,
            })
    }

    fn write_meta(&self, topic: &Topic) -> Result<(), LogError> {
        let meta = TopicMeta {
            id: topic.id,
            partitions: topic.partitions.read().len() as i32,
            configs: topic.overrides.read().clone(),
        };
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| LogError::Io {
            op: "encode topic metadata",
            path: self.topics_dir.clone(),
            source: std::io::Error::other(e),
        })?;
        fsutil::replace_synced(&self.topics_dir.join(format!("{}.json", topic.name)), &json)
    }

    /// Checks that a topic could be created, without creating it.
    pub fn validate_new_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), LogError> {
        validate_topic_name(name)?;
        if self.topics.read().contains_key(name) {
            return Err(LogError::TopicExists(name.to_string()));
        }
        if !(1..=100_000).contains(&partitions) {
            return Err(LogError::InvalidPartitions {
                topic: name.to_string(),
                count: i64::from(partitions),
                reason: "must be between 1 and 100000".to_string(),
            });
        }
        TopicConfig::resolve(&self.config, configs)?;
        Ok(())
    }

    /// Creates a topic with `partitions` partitions and the given config overrides.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, LogError> {
        let _admin = self.admin.lock();
        self.validate_new_topic(name, partitions, &configs)?;
        let config = Arc::new(RwLock::new(TopicConfig::resolve(&self.config, &configs)?));
        let topic_name: Arc<str> = Arc::from(name);
        let mut parts = Vec::new();
        for i in 0..partitions {
            let args = self.partition_args(&topic_name, i, &config);
            // A leftover directory from an interrupted delete must not leak old records in.
            if args.dir.exists() {
                std::fs::remove_dir_all(&args.dir).map_err(LogError::io("remove", &args.dir))?;
            }
            parts.push(Arc::new(Partition::create(args)?));
        }
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id: uuid::Uuid::new_v4(),
            overrides: RwLock::new(configs),
            config,
            partitions: RwLock::new(parts),
        });
        self.write_meta(&topic)?;
        self.topics.write().insert(name.to_string(), topic.clone());
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// Deletes a topic and its files.
    pub fn delete_topic(&self, name: &str) -> Result<(), LogError> {
        let _admin = self.admin.lock();
        let topic = self
            .topics
            .write()
            .remove(name)
            .ok_or_else(|| LogError::UnknownTopic(name.to_string()))?;
        let meta = self.topics_dir.join(format!("{name}.json"));
        std::fs::remove_file(&meta).map_err(LogError::io("delete", &meta))?;
        fsutil::sync_dir(&self.topics_dir)?;
        for p in topic.partitions() {
            if let Err(e) = std::fs::remove_dir_all(p.dir()) {
                tracing::warn!(dir = %p.dir().display(), error = %e, "could not remove deleted partition's files");
            }
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(())
    }

    /// The topic `name`, or the error a client is told when there is none.
    fn existing(&self, name: &str) -> Result<Arc<Topic>, LogError> {
        self.topic(name)
            .ok_or_else(|| LogError::UnknownTopic(name.to_string()))
    }

    /// Grows a topic to `total` partitions.
    pub fn create_partitions(
        &self,
        name: &str,
        total: i32,
        validate_only: bool,
    ) -> Result<(), LogError> {
        let _admin = self.admin.lock();
        let topic = self.existing(name)?;
        let current = topic.partitions.read().len() as i32;
        if total <= current || total > 100_000 {
            return Err(LogError::InvalidPartitions {
                topic: name.to_string(),
                count: i64::from(total),
                reason: format!(
                    "the topic has {current}; the new count must be larger (and at most 100000)"
                ),
            });
        }
        if validate_only {
            return Ok(());
        }
        let topic_name: Arc<str> = Arc::from(name);
        for i in current..total {
            let args = self.partition_args(&topic_name, i, &topic.config);
            if args.dir.exists() {
                std::fs::remove_dir_all(&args.dir).map_err(LogError::io("remove", &args.dir))?;
            }
            let p = Arc::new(Partition::create(args)?);
            topic.partitions.write().push(p);
        }
        self.write_meta(&topic)
    }

    /// Applies config changes: `Some(value)` sets a key, `None` removes the override.
    pub fn alter_topic_config(
        &self,
        name: &str,
        changes: &[(String, Option<String>)],
        validate_only: bool,
    ) -> Result<(), LogError> {
        let _admin = self.admin.lock();
        let topic = self.existing(name)?;
        let mut overrides = topic.overrides();
        for (k, v) in changes {
            match v {
                Some(v) => {
                    overrides.insert(k.clone(), v.clone());
                }
                None => {
                    overrides.remove(k);
                }
            }
        }
        let resolved = TopicConfig::resolve(&self.config, &overrides)?;
        if validate_only {
            return Ok(());
        }
        *topic.overrides.write() = overrides;
        *topic.config.write() = resolved;
        self.write_meta(&topic)
    }

    /// Hands out a producer id that is never handed out again, even after a crash.
    pub fn allocate_producer_id(&self) -> Result<i64, LogError> {
        let mut ids = self.producer_ids.lock();
        if ids.next >= ids.reserved_to {
            let to = ids.reserved_to + PRODUCER_ID_BLOCK;
            fsutil::replace_synced(&self.dir.join("producer-ids"), to.to_string().as_bytes())?;
            ids.reserved_to = to;
        }
        let id = ids.next;
        ids.next += 1;
        Ok(id)
    }

    /// Runs the interval flusher (with recovery checkpoints) and the retention checker on
    /// background threads until `close`.
    pub fn start_background(self: &Arc<Self>) {
        let flush_every = Duration::from_millis(self.config.fsync_interval_ms.max(1));
        self.every_partition("log-flusher", flush_every, |t, p| {
            if t.config().fsync == crate::FsyncPolicy::Interval && p.is_dirty() {
                p.sync_through(p.end_offset())?;
            }
            p.checkpoint()
        });
        let retention_every =
            Duration::from_millis(self.config.retention_check_interval_ms.max(10));
        self.every_partition("log-retention", retention_every, |_, p| {
            p.maintain().map(|_| ())
        });
    }

    /// Runs `work` on every partition every `period` on a thread named `name`; failures are
    /// logged with the partition and the work goes on.
    fn every_partition(
        self: &Arc<Self>,
        name: &'static str,
        period: Duration,
        work: fn(&Topic, &Partition) -> Result<(), LogError>,
    ) {
        let log = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || loop {
                std::thread::sleep(period);
                let Some(log) = log.upgrade() else { return };
                if log.closed.load(Ordering::Acquire) {
                    return;
                }
                for t in log.topics() {
                    for p in t.partitions() {
                        if let Err(e) = work(&t, &p) {
                            tracing::error!(topic = t.name(), partition = p.index(), error = %e, "{name} failed");
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the {name} thread: {e}");
        }
    }

    /// Syncs and indexes every partition and leaves the clean-shutdown marker. Idempotent.
    pub fn close(&self) -> Result<(), LogError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let _admin = self.admin.lock();
        for t in self.topics() {
            for p in t.partitions() {
                p.close()?;
            }
        }
        fsutil::write_synced(&self.dir.join("clean-shutdown"), b"")?;
        fsutil::sync_dir(&self.dir)?;
        tracing::info!(dir = %self.dir.display(), "log closed cleanly");
        Ok(())
    }
}

fn take_lock(dir: &Path) -> Result<File, LogError> {
    use std::io::{Read, Seek, Write};
    let path = dir.join(".lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(LogError::io("open lock file", &path))?;
    match file.try_lock() {
        Ok(()) => {
            let _ = file.set_len(0);
            let _ = file.seek(std::io::SeekFrom::Start(0));
            let _ = writeln!(file, "{}", std::process::id());
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            Err(LogError::DataDirLocked {
                dir: dir.to_path_buf(),
                lock: path,
                holder: if holder.is_empty() {
                    String::new()
                } else {
                    format!(" by pid {holder}")
                },
            })
        }
        Err(std::fs::TryLockError::Error(e)) => Err(LogError::Io {
            op: "lock",
            path,
            source: e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::test_batches::batch;

    #[test]
    fn second_open_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _a = Log::open(dir.path(), LogConfig::default()).expect("first");
        let err = Log::open(dir.path(), LogConfig::default()).expect_err("second");
        assert!(err.to_string().contains(".lock"), "{err}");
    }

    #[test]
    fn topics_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let log = Log::open(dir.path(), LogConfig::default()).expect("open");
            let mut cfg = BTreeMap::new();
            cfg.insert("retention.ms".to_string(), "5000".to_string());
            log.create_topic("orders", 3, cfg).expect("create");
            log.partition("orders", 2)
                .expect("partition")
                .append(&batch(4, 10, None))
                .expect("append");
            log.create_partitions("orders", 4, false).expect("grow");
            log.close().expect("close");
        }
        let log = Log::open(dir.path(), LogConfig::default()).expect("reopen");
        let t = log.topic("orders").expect("topic");
        assert_eq!(t.partitions().len(), 4);
        assert_eq!(t.config().retention_ms, 5000);
        assert_eq!(t.partition(2).expect("p2").end_offset(), 4);
        log.delete_topic("orders").expect("delete");
        assert!(log.topic("orders").is_none());
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_topic_name("payments.transaction_settled").is_ok());
        assert!(validate_topic_name("bad name").is_err());
        assert!(validate_topic_name("..").is_err());
    }

    #[test]
    fn producer_ids_never_repeat_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = {
            let log = Log::open(dir.path(), LogConfig::default()).expect("open");
            log.allocate_producer_id().expect("id")
        };
        let log = Log::open(dir.path(), LogConfig::default()).expect("reopen");
        assert!(log.allocate_producer_id().expect("id") > first);
    }
}
