//! One partition: an ordered list of segments, the offsets they hold and its producers' state.
//!
//! Appends are serialised by one lock per partition; reads take no append lock and read segment
//! files with positional reads, so consumers never wait for producers. The last segment is the
//! active one; every older segment is sealed: synced, indexed on disk, never written again.
//!
//! Durability: under the `always` policy, offsets become visible to consumers (the high
//! watermark) only once they are synced, so a consumer never sees a record that a crash could
//! take back and hand to another record.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{watch, Notify};

use crate::batch::{self, BatchError, BatchHeader, BatchIter};
use crate::config::{FsyncPolicy, TopicConfig};
use crate::flusher::Flusher;
use crate::producer::{BatchMeta, ProducerStates, SequenceCheck};
use crate::segment::{now_ms, Segment};
use crate::{fsutil, LogError};

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Offset assigned to the first record.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// The batch was a resend of one already in the log; nothing was written.
    pub duplicate: bool,
    /// The partition's first offset after the append.
    pub log_start_offset: i64,
}

/// Offsets a reader needs with the data it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    /// The first offset still held.
    pub log_start_offset: i64,
    /// Offsets below this are visible to consumers.
    pub high_watermark: i64,
}

/// One partition of a topic: its segments, producer states and offsets. Appends are serialised; reads run beside them.
#[derive(Debug)]
pub struct Partition {
    topic: Arc<str>,
    index: i32,
    dir: PathBuf,
    config: Arc<RwLock<TopicConfig>>,
    index_interval: u64,
    segments: RwLock<Vec<Arc<Segment>>>,
    /// Serialises appends; holds the idempotent producers' state.
    producers: Mutex<ProducerStates>,
    end_offset: AtomicI64,
    start_offset: AtomicI64,
    synced_offset: AtomicI64,
    /// Held while one fsync runs; appends that wait on it are covered by that fsync (group commit).
    sync_lock: Mutex<()>,
    /// (segment base offset, bytes) the active segment's saved index last described.
    checkpointed: Mutex<(i64, u64)>,
    /// The durable offset and a count of failed fsyncs, for producers waiting asynchronously.
    durable: watch::Sender<Durable>,
    last_sync_error: Mutex<Option<String>>,
    flusher: Flusher,
    appended: Arc<Notify>,
}

/// What waiting producers watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Durable {
    offset: i64,
    failures: u64,
}

pub(crate) fn partition_dir(topics_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    topics_dir.join(format!("{topic}-{partition}"))
}

/// Segment files of a partition directory, sorted by base offset.
pub fn list_segments(dir: &Path) -> Result<Vec<(i64, PathBuf)>, LogError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(LogError::io("list partition", dir))? {
        let entry = entry.map_err(LogError::io("list partition", dir))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".log") {
            if let Ok(base) = stem.parse::<i64>() {
                out.push((base, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) struct OpenArgs {
    pub topic: Arc<str>,
    pub index: i32,
    pub dir: PathBuf,
    pub config: Arc<RwLock<TopicConfig>>,
    pub index_interval: u64,
    pub appended: Arc<Notify>,
    pub flusher: Flusher,
}

impl Partition {
    /// Creates an empty partition directory with its first segment.
    pub(crate) fn create(args: OpenArgs) -> Result<Self, LogError> {
        std::fs::create_dir_all(&args.dir).map_err(LogError::io("create partition", &args.dir))?;
        let seg = Segment::create(&args.dir, 0, args.index_interval)?;
        fsutil::sync_dir(&args.dir)?;
        Ok(Self::assemble(
            args,
            vec![Arc::new(seg)],
            ProducerStates::default(),
        ))
    }

    fn assemble(args: OpenArgs, segments: Vec<Arc<Segment>>, producers: ProducerStates) -> Self {
        let start = segments.first().map(|s| s.base_offset).unwrap_or(0);
        let end = segments.last().map(|s| s.next_offset()).unwrap_or(0);
        Partition {
            topic: args.topic,
            index: args.index,
            dir: args.dir,
            config: args.config,
            index_interval: args.index_interval,
            segments: RwLock::new(segments),
            producers: Mutex::new(producers),
            end_offset: AtomicI64::new(end),
            start_offset: AtomicI64::new(start),
            synced_offset: AtomicI64::new(end),
            sync_lock: Mutex::new(()),
            checkpointed: Mutex::new((-1, 0)),
            durable: watch::Sender::new(Durable {
                offset: end,
                failures: 0,
            }),
            last_sync_error: Mutex::new(None),
            flusher: args.flusher,
            appended: args.appended,
        }
    }

    /// Opens a partition from disk. After an unclean stop (`clean == false`) the active segment
    /// is CRC-checked batch by batch and a damaged tail is cut off and logged.
    pub(crate) fn open(args: OpenArgs, clean: bool) -> Result<Self, LogError> {
        std::fs::create_dir_all(&args.dir).map_err(LogError::io("open partition", &args.dir))?;
        let files = list_segments(&args.dir)?;
        if files.is_empty() {
            return Self::create(args);
        }
        let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(files.len());
        let last = files.len() - 1;
        for (i, (base, path)) in files.iter().enumerate() {
            let verify = !clean && i == last;
            let (seg, damage) = Segment::open(path, *base, args.index_interval, verify)?;
            if let Some(d) = damage {
                let last_good = d
                    .last_good_offset
                    .map(|o| o.to_string())
                    .unwrap_or_else(|| "none".to_string());
                tracing::warn!(
                    file = %path.display(),
                    position = d.position,
                    last_good_offset = %last_good,
                    reason = %d.reason,
                    "truncated damaged tail of segment {} at byte {} (last good offset {}): {}",
                    path.display(), d.position, last_good, d.reason
                );
            }
            segments.push(Arc::new(seg));
        }
        let end = segments.last().map(|s| s.next_offset()).unwrap_or(0);
        segments.last().map(|s| s.sync()).transpose()?;
        // Producer state: newest snapshot at or below the end, plus the headers after it.
        let (mut producers, from) = ProducerStates::load_latest(&args.dir, end).unwrap_or_default();
        for seg in &segments {
            if seg.next_offset() <= from {
                continue;
            }
            let pos = seg.position_of(from)?;
            seg.for_each_header(pos, |h| {
                if h.base_offset >= from {
                    producers.record(h)
                }
            })?;
        }
        ProducerStates::prune(&args.dir, 3, end);
        Ok(Self::assemble(args, segments, producers))
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }
    /// The partition's index in its topic.
    pub fn index(&self) -> i32 {
        self.index
    }
    /// The partition's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The topic's current fsync policy.
    pub fn fsync_policy(&self) -> FsyncPolicy {
        self.config.read().fsync
    }
    /// The offset the next appended record gets.
    pub fn end_offset(&self) -> i64 {
        self.end_offset.load(Ordering::Acquire)
    }
    /// The first offset still held (retention moves it).
    pub fn start_offset(&self) -> i64 {
        self.start_offset.load(Ordering::Acquire)
    }

    /// What consumers may read: under `always`, only what is synced.
    pub fn watermarks(&self) -> Watermarks {
        let high = if self.fsync_policy() == FsyncPolicy::Always {
            self.synced_offset.load(Ordering::Acquire)
        } else {
            self.end_offset()
        };
        Watermarks {
            log_start_offset: self.start_offset(),
            high_watermark: high,
        }
    }

    /// Bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.read().iter().map(|s| s.size()).sum()
    }

    /// The segments, oldest first.
    pub fn segments(&self) -> Vec<Arc<Segment>> {
        self.segments.read().clone()
    }

    /// Validates and appends the record batches of one produce request to this partition.
    ///
    /// Every batch must be a v2 batch with a correct CRC; a batch an idempotent producer already
    /// wrote is not written again and its original offsets are returned. Under the `always`
    /// policy the caller must still call [`Partition::sync_through`] before acknowledging.
    pub fn append(&self, records: &[u8]) -> Result<AppendOutcome, LogError> {
        self.append_batches(records, false)
    }

    /// Appends batches the node built from a client's batch after taking invalid records out
    /// (dead-letter mode). They may hold no records at all: like the batches Kafka's log
    /// cleaner keeps, such a batch only carries its producer's sequence numbers and offset
    /// span, so an idempotent producer's numbering stays whole.
    pub fn append_filtered(&self, records: &[u8]) -> Result<AppendOutcome, LogError> {
        self.append_batches(records, true)
    }

    fn append_batches(&self, records: &[u8], allow_empty: bool) -> Result<AppendOutcome, LogError> {
        let cfg = self.config.read().clone();
        let mut headers = Vec::new();
        let mut iter = BatchIter::new(records);
        for (position, item) in iter.by_ref() {
            let invalid = |source| LogError::InvalidBatch {
                topic: self.topic.to_string(),
                partition: self.index,
                position,
                source,
            };
            let h = item.map_err(invalid)?;
            if h.total_len as u64 > cfg.max_message_bytes {
                return Err(LogError::BatchTooLarge {
                    topic: self.topic.to_string(),
                    partition: self.index,
                    size: h.total_len,
                    max: cfg.max_message_bytes,
                });
            }
            BatchHeader::parse_checked(&records[position..position + h.total_len])
                .map_err(invalid)?;
            if (h.record_count == 0 && !allow_empty) || h.record_count > h.last_offset_delta + 1 {
                return Err(invalid(BatchError::BadCount {
                    count: h.record_count,
                }));
            }
            if h.is_transactional() || h.is_control() {
                return Err(LogError::TransactionsUnsupported {
                    topic: self.topic.to_string(),
                    partition: self.index,
                });
            }
            headers.push((position, h));
        }
        if headers.is_empty() {
            return Err(LogError::InvalidBatch {
                topic: self.topic.to_string(),
                partition: self.index,
                position: 0,
                source: BatchError::Truncated {
                    needed: batch::HEADER_LEN,
                    available: records.len(),
                },
            });
        }

        let mut producers = self.producers.lock();
        // Duplicates of already-written batches are answered, not written.
        let mut keep = Vec::with_capacity(headers.len());
        let mut duplicate: Option<BatchMeta> = None;
        // Batches of one producer later in the same call (the node's own splits) continue the
        // sequence of the earlier ones, which are not in the producer state yet.
        let mut pending: Vec<(i64, i32)> = Vec::new();
        for (pos, h) in &headers {
            let idempotent = h.producer_id >= 0 && h.base_sequence >= 0;
            if let Some(at) = pending.iter().position(|(p, _)| *p == h.producer_id) {
                let expected = crate::producer::next_seq(pending[at].1);
                if idempotent && h.base_sequence != expected {
                    return Err(LogError::OutOfOrderSequence {
                        topic: self.topic.to_string(),
                        partition: self.index,
                        producer_id: h.producer_id,
                        got: h.base_sequence,
                        expected,
                    });
                }
                pending[at].1 = h.last_sequence();
                keep.push((*pos, *h));
                continue;
            }
            match producers.check(&self.topic, self.index, h)? {
                SequenceCheck::Append => {
                    keep.push((*pos, *h));
                    if idempotent {
                        pending.push((h.producer_id, h.last_sequence()));
                    }
                }
                SequenceCheck::Duplicate(meta) => duplicate = Some(meta),
            }
        }
        if keep.is_empty() {
            let meta = duplicate.unwrap_or(BatchMeta {
                first_seq: -1,
                last_seq: -1,
                base_offset: -1,
                last_offset: -1,
            });
            return Ok(AppendOutcome {
                base_offset: meta.base_offset,
                last_offset: meta.last_offset,
                duplicate: true,
                log_start_offset: self.start_offset(),
            });
        }

        let mut buf = Vec::with_capacity(keep.iter().map(|(_, h)| h.total_len).sum());
        let base = self.end_offset();
        let mut next = base;
        let mut assigned = Vec::with_capacity(keep.len());
        for (pos, h) in &keep {
            let start = buf.len();
            buf.extend_from_slice(&records[*pos..*pos + h.total_len]);
            batch::set_base_offset(&mut buf[start..], next);
            let mut h = *h;
            h.base_offset = next;
            next += h.offset_span();
            assigned.push(h);
        }

        let active = self.active_for(buf.len() as u64, &cfg, &producers)?;
        active.append(&buf, &assigned)?;
        for h in &assigned {
            producers.record(h);
        }
        self.end_offset.store(next, Ordering::Release);
        drop(producers);
        if cfg.fsync != FsyncPolicy::Always {
            self.appended.notify_waiters();
        }
        Ok(AppendOutcome {
            base_offset: base,
            last_offset: next - 1,
            duplicate: false,
            log_start_offset: self.start_offset(),
        })
    }

    /// The segment the next `len` bytes go to, rolling first when the active one is full or old.
    fn active_for(
        &self,
        len: u64,
        cfg: &TopicConfig,
        producers: &ProducerStates,
    ) -> Result<Arc<Segment>, LogError> {
        let active = self
            .segments
            .read()
            .last()
            .cloned()
            .ok_or(LogError::ShuttingDown)?;
        let full = active.size() > 0 && active.size() + len > cfg.segment_bytes;
        let old = active.size() > 0 && active.age_ms(now_ms()) >= cfg.segment_ms as i64;
        if full || old {
            return self.roll(&active, producers);
        }
        Ok(active)
    }

    /// Seals the active segment (sync, index files, producer snapshot) and starts a new one.
    fn roll(
        &self,
        active: &Arc<Segment>,
        producers: &ProducerStates,
    ) -> Result<Arc<Segment>, LogError> {
        let base = active.next_offset();
        active.sync()?;
        active.write_index_files(active.size())?;
        producers.save(&self.dir, base)?;
        let seg = Arc::new(Segment::create(&self.dir, base, self.index_interval)?);
        fsutil::sync_dir(&self.dir)?;
        self.segments.write().push(seg.clone());
        self.synced_offset.fetch_max(base, Ordering::AcqRel);
        self.publish_durable();
        ProducerStates::prune(&self.dir, 3, i64::MAX);
        tracing::debug!(topic = %self.topic, partition = self.index, base, "rolled segment");
        Ok(seg)
    }

    /// Makes every offset below `offset` durable. Concurrent callers share one fsync: whoever
    /// holds the lock syncs everything written so far, and the others find their offsets covered.
    pub fn sync_through(&self, offset: i64) -> Result<(), LogError> {
        if self.synced_offset.load(Ordering::Acquire) >= offset {
            return Ok(());
        }
        let _guard = self.sync_lock.lock();
        if self.synced_offset.load(Ordering::Acquire) >= offset {
            return Ok(());
        }
        // Read the end before the segment: a roll in between syncs the old segment itself.
        let end = self.end_offset();
        let active = self.segments.read().last().cloned();
        if let Some(seg) = active {
            if let Err(e) = seg.sync() {
                *self.last_sync_error.lock() = Some(e.to_string());
                self.durable.send_modify(|d| d.failures += 1);
                return Err(e);
            }
        }
        self.synced_offset.fetch_max(end, Ordering::AcqRel);
        self.publish_durable();
        self.appended.notify_waiters();
        Ok(())
    }

    fn publish_durable(&self) {
        let synced = self.synced_offset.load(Ordering::Acquire);
        self.durable.send_if_modified(|d| {
            let grew = synced > d.offset;
            d.offset = d.offset.max(synced);
            grew
        });
    }

    /// Waits, without holding a thread, until every offset below `offset` is on disk. The
    /// partition's fsyncs are shared by all waiters (see `flusher`).
    pub async fn wait_durable(self: &Arc<Self>, offset: i64) -> Result<(), LogError> {
        let mut rx = self.durable.subscribe();
        let start_failures = rx.borrow().failures;
        if rx.borrow().offset >= offset {
            return Ok(());
        }
        if !self.flusher.request(self.clone()) {
            return Err(LogError::ShuttingDown);
        }
        loop {
            if rx.changed().await.is_err() {
                return Err(LogError::ShuttingDown);
            }
            let now = *rx.borrow();
            if now.offset >= offset {
                return Ok(());
            }
            if now.failures != start_failures {
                let reason = self
                    .last_sync_error
                    .lock()
                    .clone()
                    .unwrap_or_else(|| "fsync failed".to_string());
                return Err(LogError::Io {
                    op: "fsync",
                    path: self.dir.clone(),
                    source: std::io::Error::other(reason),
                });
            }
        }
    }

    /// Saves the active segment's index describing its synced bytes, so a start after a crash
    /// checks only what was written since (Kafka's recovery point). Skipped under `never`, where
    /// nothing is synced between rolls and the whole active segment is checked instead.
    pub fn checkpoint(&self) -> Result<(), LogError> {
        if self.fsync_policy() == FsyncPolicy::Never {
            return Ok(());
        }
        let Some(active) = self.segments.read().last().cloned() else {
            return Ok(());
        };
        let size = active.size();
        let mut last = self.checkpointed.lock();
        if *last == (active.base_offset, size) {
            return Ok(());
        }
        active.sync()?;
        active.write_index_files(size)?;
        *last = (active.base_offset, size);
        Ok(())
    }

    /// True when appended bytes are not yet synced.
    pub fn is_dirty(&self) -> bool {
        self.synced_offset.load(Ordering::Acquire) < self.end_offset()
    }

    /// Reads whole batches starting with the one that holds `offset`, up to `max_bytes` (but at
    /// least one batch). Only offsets below the high watermark are returned.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<Vec<u8>, LogError> {
        let marks = self.watermarks();
        if offset < marks.log_start_offset || offset > self.end_offset() {
            return Err(LogError::OffsetOutOfRange {
                topic: self.topic.to_string(),
                partition: self.index,
                offset,
                start: marks.log_start_offset,
                end: marks.high_watermark,
            });
        }
        if offset >= marks.high_watermark {
            return Ok(Vec::new());
        }
        let segs = self.segments.read().clone();
        let i = segs.partition_point(|s| s.base_offset <= offset).max(1) - 1;
        for seg in &segs[i..] {
            let pos = seg.position_of(offset)?;
            let mut data = seg.read_batches(pos, max_bytes)?;
            if data.is_empty() {
                continue;
            }
            self.clip_to(&mut data, marks.high_watermark);
            return Ok(data);
        }
        Ok(Vec::new())
    }

    /// Drops whole batches that start at or past `high` (not yet durable under `always`).
    fn clip_to(&self, data: &mut Vec<u8>, high: i64) {
        let mut end = 0;
        for (at, item) in BatchIter::new(data) {
            match item {
                Ok(h) if h.base_offset < high => end = at + h.total_len,
                _ => break,
            }
        }
        data.truncate(end);
    }

    /// The earliest offset whose record timestamp is at least `ts`, with that timestamp.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        let high = self.watermarks().high_watermark;
        let segs = self.segments.read().clone();
        for seg in segs {
            if seg.max_timestamp() < ts {
                continue;
            }
            if let Some((pos, h)) = seg.position_of_time(ts)? {
                if h.base_offset >= high {
                    return Ok(None);
                }
                let data = seg.read_batches(pos, h.total_len)?;
                let exact = crate::records::first_at_or_after(&data, ts);
                return Ok(Some(exact.unwrap_or((h.base_offset, h.max_timestamp))));
            }
        }
        Ok(None)
    }

    /// Rolls an old active segment and deletes segments past retention. Returns segments deleted.
    pub fn maintain(&self) -> Result<usize, LogError> {
        let cfg = self.config.read().clone();
        {
            let producers = self.producers.lock();
            let active = self.segments.read().last().cloned();
            if let Some(active) = active {
                if active.size() > 0 && active.age_ms(now_ms()) >= cfg.segment_ms as i64 {
                    self.roll(&active, &producers)?;
                }
            }
        }
        let now = now_ms();
        let mut deleted = Vec::new();
        {
            let mut segs = self.segments.write();
            let mut total: u64 = segs.iter().map(|s| s.size()).sum();
            while segs.len() > 1 {
                let s = &segs[0];
                let by_time = cfg.retention_ms >= 0
                    && s.max_timestamp() >= 0
                    && now - s.max_timestamp() > cfg.retention_ms;
                let by_size =
                    cfg.retention_bytes >= 0 && total - s.size() >= cfg.retention_bytes as u64;
                if !(by_time || by_size) {
                    break;
                }
                total -= s.size();
                deleted.push(segs.remove(0));
                self.start_offset
                    .store(segs[0].base_offset, Ordering::Release);
            }
        }
        for seg in &deleted {
            tracing::info!(
                topic = %self.topic,
                partition = self.index,
                file = %seg.path().display(),
                "deleted segment past retention"
            );
            seg.delete_files()?;
        }
        Ok(deleted.len())
    }

    /// Syncs and indexes the active segment and snapshots producer state, for a fast clean start.
    pub fn close(&self) -> Result<(), LogError> {
        let producers = self.producers.lock();
        let active = self.segments.read().last().cloned();
        if let Some(seg) = active {
            seg.sync()?;
            seg.write_index_files(seg.size())?;
        }
        let end = self.end_offset();
        self.synced_offset.fetch_max(end, Ordering::AcqRel);
        self.publish_durable();
        producers.save(&self.dir, end)?;
        ProducerStates::prune(&self.dir, 3, end);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::test_batches::batch;
    use crate::config::LogConfig;

    fn args(dir: &Path, cfg: TopicConfig) -> OpenArgs {
        OpenArgs {
            topic: Arc::from("t"),
            index: 0,
            dir: dir.join("t-0"),
            config: Arc::new(RwLock::new(cfg)),
            index_interval: 256,
            appended: Arc::new(Notify::new()),
            flusher: Flusher::start(),
        }
    }

    fn cfg() -> TopicConfig {
        let mut c =
            TopicConfig::resolve(&LogConfig::default(), &Default::default()).expect("defaults");
        c.segment_bytes = 4096;
        c
    }

    #[test]
    fn appends_roll_and_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Partition::create(args(dir.path(), cfg())).expect("create");
        for i in 0..100 {
            let out = p.append(&batch(2, 50, None)).expect("append");
            assert_eq!(out.base_offset, i * 2);
        }
        assert!(p.segments().len() > 1, "rolled");
        let data = p.read(51, 1).expect("read");
        let h = BatchHeader::parse_checked(&data).expect("batch");
        assert_eq!(h.base_offset, 50);
        drop(p);
        let p = Partition::open(args(dir.path(), cfg()), false).expect("reopen");
        assert_eq!(p.end_offset(), 200);
        let out = p.append(&batch(1, 5, None)).expect("append");
        assert_eq!(out.base_offset, 200);
    }

    #[test]
    fn read_returns_every_batch_from_the_offset_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Partition::create(args(dir.path(), cfg())).expect("create");
        p.append(&batch(3, 5, None)).expect("append");
        p.append(&batch(1, 5, None)).expect("append");
        let data = p.read(1, 1 << 20).expect("read");
        let offsets: Vec<i64> = BatchIter::new(&data)
            .map(|(_, h)| h.expect("batch").base_offset)
            .collect();
        assert_eq!(offsets, vec![0, 3]);
    }

    #[test]
    fn crash_after_checkpoint_keeps_checkpointed_prefix_and_cuts_torn_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = cfg();
        c.segment_bytes = 1 << 20;
        let p = Partition::create(args(dir.path(), c.clone())).expect("create");
        for _ in 0..20 {
            p.append(&batch(2, 30, None)).expect("append");
        }
        p.checkpoint().expect("checkpoint");
        for _ in 0..5 {
            p.append(&batch(2, 30, None)).expect("append");
        }
        let seg = p.segments().pop().expect("active");
        let path = seg.path().to_path_buf();
        let len = seg.size();
        drop(seg);
        drop(p);
        // A torn last batch, as a crash mid-write leaves it.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        f.set_len(len - 7).expect("tear");
        let p = Partition::open(args(dir.path(), c), false).expect("reopen");
        assert_eq!(
            p.end_offset(),
            48,
            "every whole batch survives, the torn one is cut"
        );
        let data = p.read(46, 1 << 20).expect("read");
        assert!(BatchHeader::parse_checked(&data).is_ok());
    }

    #[test]
    fn idempotent_dedup_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Partition::create(args(dir.path(), cfg())).expect("create");
        let b0 = batch(3, 10, Some((42, 0, 0)));
        let b1 = batch(3, 10, Some((42, 0, 3)));
        p.append(&b0).expect("first");
        p.append(&b1).expect("second");
        drop(p);
        let p = Partition::open(args(dir.path(), cfg()), false).expect("reopen");
        let dup = p.append(&b1).expect("dup");
        assert!(dup.duplicate);
        assert_eq!(dup.base_offset, 3);
        assert_eq!(p.end_offset(), 6);
        let gap = p.append(&batch(1, 10, Some((42, 0, 9))));
        assert!(matches!(gap, Err(LogError::OutOfOrderSequence { .. })));
    }

    #[test]
    fn filtered_batches_continue_one_producers_sequence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Partition::create(args(dir.path(), cfg())).expect("create");
        p.append(&batch(2, 10, Some((42, 0, 0)))).expect("first");
        // What the contract gate makes of a 3-record batch whose first record was invalid: a
        // batch without records over its offset, then the valid records' batch.
        let mut empty = batch(1, 10, Some((42, 0, 2)));
        empty.truncate(crate::batch::HEADER_LEN);
        empty[8..12].copy_from_slice(&((crate::batch::HEADER_LEN - 12) as i32).to_be_bytes());
        empty[57..61].copy_from_slice(&0i32.to_be_bytes());
        let crc = crc32c::crc32c(&empty[21..]);
        empty[17..21].copy_from_slice(&crc.to_be_bytes());
        let mut split = empty.clone();
        split.extend_from_slice(&batch(2, 10, Some((42, 0, 3))));
        assert!(
            p.append(&empty).is_err(),
            "a client may not send a batch without records"
        );
        let out = p.append_filtered(&split).expect("split");
        assert_eq!((out.base_offset, out.last_offset), (2, 4));
        let dup = p.append_filtered(&split).expect("resent");
        assert!(dup.duplicate, "a resend of the split batch is a duplicate");
        let next = p.append(&batch(1, 10, Some((42, 0, 5)))).expect("next");
        assert_eq!(next.base_offset, 5);
    }

    #[test]
    fn always_policy_hides_unsynced_offsets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = cfg();
        c.fsync = FsyncPolicy::Always;
        let p = Partition::create(args(dir.path(), c)).expect("create");
        let out = p.append(&batch(1, 10, None)).expect("append");
        assert_eq!(p.watermarks().high_watermark, 0);
        p.sync_through(out.last_offset + 1).expect("sync");
        assert_eq!(p.watermarks().high_watermark, 1);
    }

    #[test]
    fn waiting_producers_share_the_flusher() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = cfg();
        c.fsync = FsyncPolicy::Always;
        let p = Arc::new(Partition::create(args(dir.path(), c)).expect("create"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut waits = Vec::new();
            for _ in 0..8 {
                let out = p.append(&batch(1, 10, None)).expect("append");
                let p = p.clone();
                waits.push(tokio::spawn(async move {
                    p.wait_durable(out.last_offset + 1).await
                }));
            }
            for w in waits {
                w.await.expect("join").expect("durable");
            }
        });
        assert_eq!(p.watermarks().high_watermark, 8);
    }

    #[test]
    fn retention_by_bytes_deletes_oldest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = cfg();
        c.retention_bytes = 8192;
        let p = Partition::create(args(dir.path(), c)).expect("create");
        for _ in 0..200 {
            p.append(&batch(1, 100, None)).expect("append");
        }
        let deleted = p.maintain().expect("maintain");
        assert!(deleted > 0);
        assert!(p.size_bytes() < 8192 + 4096);
        assert!(p.start_offset() > 0);
        assert!(matches!(
            p.read(0, 100),
            Err(LogError::OffsetOutOfRange { .. })
        ));
    }

    #[test]
    fn retention_by_time_deletes_segments_with_old_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = cfg();
        // The test batches carry 2023 timestamps: a day of retention makes them all expired.
        c.retention_ms = 24 * 3600 * 1000;
        let p = Partition::create(args(dir.path(), c)).expect("create");
        for _ in 0..100 {
            p.append(&batch(1, 100, None)).expect("append");
        }
        let sealed = p.segments().len() - 1;
        assert!(sealed > 0);
        assert_eq!(p.maintain().expect("maintain"), sealed);
        assert_eq!(p.segments().len(), 1, "the active segment is never deleted");
        assert_eq!(p.start_offset(), p.segments()[0].base_offset);
    }

    #[test]
    fn read_fills_max_bytes_with_whole_batches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = cfg();
        c.segment_bytes = 1 << 20;
        let p = Partition::create(args(dir.path(), c)).expect("create");
        let one = batch(1, 10_000, None);
        for _ in 0..5 {
            p.append(&one).expect("append");
        }
        assert_eq!(p.read(0, 100).expect("read").len(), one.len());
        assert_eq!(
            p.read(0, one.len() * 5 / 2).expect("read").len(),
            one.len() * 2
        );
        assert_eq!(
            p.read(1, one.len() * 10).expect("read").len(),
            one.len() * 4
        );
    }

    #[test]
    fn active_segment_rolls_by_age() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = cfg();
        c.segment_ms = 20;
        // The test batches carry 2023 timestamps; keep them so only the roll is observed.
        c.retention_ms = -1;
        let p = Partition::create(args(dir.path(), c)).expect("create");
        p.append(&batch(1, 10, None)).expect("append");
        p.append(&batch(1, 10, None)).expect("append");
        assert_eq!(p.segments().len(), 1);
        std::thread::sleep(std::time::Duration::from_millis(30));
        p.maintain().expect("maintain");
        assert_eq!(p.segments().len(), 2, "an old non-empty segment rolls");
        assert_eq!(p.segments()[1].base_offset, 2);
        p.maintain().expect("maintain");
        assert_eq!(
            p.segments().len(),
            2,
            "an empty active segment does not roll"
        );
    }

    #[test]
    fn rejects_bad_crc() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Partition::create(args(dir.path(), cfg())).expect("create");
        let mut b = batch(1, 10, None);
        let n = b.len();
        b[n - 2] ^= 1;
        assert!(matches!(p.append(&b), Err(LogError::InvalidBatch { .. })));
        assert_eq!(p.end_offset(), 0);
    }
}
