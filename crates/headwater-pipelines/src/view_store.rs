//! Feature views on disk: one redb file per view under `<data>/views/<domain>/<view>.redb`.
//!
//! A micro-batch's updated keys and the input positions it ends at are written in one redb
//! transaction, so a view and its checkpoint never disagree: after a crash the view resumes
//! from the positions its state includes, and no event is counted twice or lost. Lookups read a
//! snapshot without waiting for a writer. One file per view means one view's writes never wait
//! for another's, and removing or rebuilding a view touches no other.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Fault;
use crate::features::{Feature, KeyState};
use crate::source::Offsets;
use crate::state_files::OpenFile;
use crate::PipelineError;

const STATE: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("state");
const META: TableDefinition<'static, &str, &str> = TableDefinition::new("meta");
const CHECKPOINT: &str = "checkpoint";

/// Where a view's state stands: the input positions it includes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ViewCheckpoint {
    /// Per input stream, the offsets the state includes records up to (exclusive).
    pub positions: BTreeMap<String, Offsets>,
    /// The features the state was computed for: other features need a rebuild.
    pub features: String,
    /// When the state was last written, in milliseconds since the Unix epoch.
    pub updated_ms: i64,
}

/// One event for a view: its key, event time and record.
#[derive(Debug, Clone)]
pub(crate) struct ViewEvent {
    pub(crate) key: String,
    pub(crate) ts: i64,
    pub(crate) record: Value,
}

/// A key's features as served.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureRow {
    /// The key.
    pub key: String,
    /// Feature name -> value over its window now.
    pub features: serde_json::Map<String, Value>,
    /// Events ever aggregated for the key.
    pub events: u64,
    /// Event time of the latest of them.
    pub last_event_ms: i64,
}

fn store_error(view: &str, e: impl std::fmt::Display) -> PipelineError {
    Fault::ViewStore {
        view: view.to_string(),
        reason: e.to_string(),
    }
    .into()
}

/// An open view: its file, its features and its write generation.
#[derive(Debug)]
pub struct ViewStore {
    /// `<domain>.<view>`.
    pub name: String,
    /// The record field the view is keyed by.
    pub key: String,
    /// The features it computes per key.
    pub features: Vec<Feature>,
    db: Arc<Database>,
    /// Bumped by [`ViewStore::clear`]: a writer that started before a rebuild finds its
    /// generation gone and writes nothing.
    generation: Arc<AtomicU64>,
    write: Arc<Mutex<()>>,
    cache: StateCache,
    /// Tells this store's cached answers from those of another store on the same file (a
    /// redeployed view whose features differ).
    id: u64,
}

/// Decoded states of the keys looked up or written since the file was opened, kept in step
/// with the file by every write: a lookup of a known key reads no page and decodes nothing.
pub(crate) type StateCache = Arc<RwLock<HashMap<String, Arc<Cached>>>>;

/// A key's state, and the answer last served from it.
#[derive(Debug)]
pub(crate) struct Cached {
    state: KeyState,
    /// Held next to the state it was computed from, so a write (which caches a new `Cached`)
    /// retires it, and a repeated lookup costs one map lookup and merges and serializes
    /// nothing.
    answer: Mutex<Option<Answer>>,
}

#[derive(Debug)]
struct Answer {
    store: u64,
    /// The first instant a bucket of the state leaves its window, changing the answer.
    until: i64,
    json: bytes::Bytes,
}

impl Cached {
    fn new(state: KeyState) -> Arc<Cached> {
        Arc::new(Cached {
            state,
            answer: Mutex::new(None),
        })
    }

    fn answer(&self, store: u64, now: i64) -> Option<bytes::Bytes> {
        self.answer
            .lock()
            .as_ref()
            .filter(|a| a.store == store && now < a.until)
            .map(|a| a.json.clone())
    }
}

/// Source of [`ViewStore::id`].
static NEXT_STORE: AtomicU64 = AtomicU64::new(0);

impl ViewStore {
    /// The view `name` over an open state file (see [`crate::state_files::StateFiles::view`]).
    pub(crate) fn new(name: String, key: &str, features: Vec<Feature>, file: OpenFile) -> Self {
        ViewStore {
            name,
            key: key.to_string(),
            features,
            db: file.db,
            generation: file.generation,
            write: file.write,
            cache: file.cache,
            id: NEXT_STORE.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl ViewStore {
    /// A fingerprint of the features: state computed for other features is not reused.
    pub(crate) fn fingerprint(&self) -> String {
        serde_json::to_string(&(&self.key, &self.features)).unwrap_or_default()
    }

    /// The current write generation: what [`ViewStore::apply`] must be given.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Where the view's state stands; `None` before its first write.
    pub fn checkpoint(&self) -> Result<Option<ViewCheckpoint>, PipelineError> {
        self.read_one(META, CHECKPOINT, |text| {
            serde_json::from_str(text)
                .map_err(|x| store_error(&self.name, format!("unreadable checkpoint: {x}")))
        })
    }

    /// Reads `key` from `table` and decodes it; `None` when the table or the key is absent.
    fn read_one<V: redb::Value + 'static, T>(
        &self,
        table: TableDefinition<'static, &str, V>,
        key: &str,
        decode: impl FnOnce(V::SelfType<'_>) -> Result<T, PipelineError>,
    ) -> Result<Option<T>, PipelineError> {
        let e = |e: redb::Error| store_error(&self.name, e);
        let txn = self.db.begin_read().map_err(|x| e(x.into()))?;
        let table = match txn.open_table(table) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(x) => return Err(e(x.into())),
        };
        let Some(value) = table.get(key).map_err(|x| e(x.into()))? else {
            return Ok(None);
        };
        decode(value.value()).map(Some)
    }

    /// Ends the current generation: a writer that started before (a pipeline being replaced)
    /// writes nothing more, so its replacement never counts a micro-batch twice.
    pub(crate) fn fence(&self) {
        let _w = self.write.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Empties the view (a rebuild or a change of features): writers of the old generation
    /// write nothing more.
    pub(crate) fn clear(&self) -> Result<(), PipelineError> {
        let _w = self.write.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        let e = |e: redb::Error| store_error(&self.name, e);
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        txn.delete_table(STATE).map_err(|x| e(x.into()))?;
        txn.delete_table(META).map_err(|x| e(x.into()))?;
        txn.commit().map_err(|x| e(x.into()))?;
        self.cache.write().clear();
        Ok(())
    }

    /// Adds `events` and moves the checkpoint to `positions`, in one transaction. Writes
    /// nothing if the view was cleared since `generation`.
    pub(crate) fn apply(
        &self,
        generation: u64,
        events: &[ViewEvent],
        positions: &BTreeMap<String, Offsets>,
        now: i64,
    ) -> Result<bool, PipelineError> {
        let _w = self.write.lock();
        if self.generation() != generation {
            return Ok(false);
        }
        let e = |e: redb::Error| store_error(&self.name, e);
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        let mut touched: HashMap<&str, KeyState> = HashMap::new();
        {
            let mut table = txn.open_table(STATE).map_err(|x| e(x.into()))?;
            for ev in events {
                let state = match touched.get_mut(ev.key.as_str()) {
                    Some(s) => s,
                    None => {
                        let old = table
                            .get(ev.key.as_str())
                            .map_err(|x| e(x.into()))?
                            .and_then(|v| postcard::from_bytes::<KeyState>(v.value()).ok())
                            .unwrap_or_default();
                        touched.entry(ev.key.as_str()).or_insert(old)
                    }
                };
                state.add(&self.features, ev.ts, &ev.record, now);
            }
            for (key, state) in &touched {
                let bytes = postcard::to_allocvec(state)
                    .map_err(|x| store_error(&self.name, format!("encoding key '{key}': {x}")))?;
                table
                    .insert(*key, bytes.as_slice())
                    .map_err(|x| e(x.into()))?;
            }
            let mut meta = txn.open_table(META).map_err(|x| e(x.into()))?;
            let checkpoint = ViewCheckpoint {
                positions: positions.clone(),
                features: self.fingerprint(),
                updated_ms: now,
            };
            let text = serde_json::to_string(&checkpoint).unwrap_or_default();
            meta.insert(CHECKPOINT, text.as_str())
                .map_err(|x| e(x.into()))?;
        }
        txn.commit().map_err(|x| e(x.into()))?;
        let mut cache = self.cache.write();
        for (key, state) in touched {
            cache.insert(key.to_string(), Cached::new(state));
        }
        Ok(true)
    }

    /// The features of each key at `now`; `None` for a key with no events.
    pub fn lookup(
        &self,
        keys: &[&str],
        now: i64,
    ) -> Result<Vec<Option<FeatureRow>>, PipelineError> {
        keys.iter()
            .map(|key| Ok(self.state(key)?.map(|c| self.row(key, &c.state, now))))
            .collect()
    }

    /// What a lookup of `key` at `now` answers.
    fn row(&self, key: &str, state: &KeyState, now: i64) -> FeatureRow {
        FeatureRow {
            key: key.to_string(),
            features: state.values(&self.features, now),
            events: state.events,
            last_event_ms: state.last_event_ms,
        }
    }

    /// One key's answer as JSON (the [`FeatureRow`] serialized), `None` if the view has seen no
    /// event for it.
    pub fn lookup_json(&self, key: &str, now: i64) -> Result<Option<bytes::Bytes>, PipelineError> {
        let known = self
            .cache
            .read()
            .get(key)
            .and_then(|c| c.answer(self.id, now));
        if known.is_some() {
            return Ok(known);
        }
        let Some(cached) = self.state(key)? else {
            return Ok(None);
        };
        let row = self.row(key, &cached.state, now);
        // Bytes: the answer goes out as the response body without a copy.
        let json =
            bytes::Bytes::from(serde_json::to_vec(&row).map_err(|e| store_error(&self.name, e))?);
        *cached.answer.lock() = Some(Answer {
            store: self.id,
            until: cached.state.answer_stands_until(&self.features, now),
            json: json.clone(),
        });
        Ok(Some(json))
    }

    /// A key's state: from memory, else read from the file (and remembered).
    fn state(&self, key: &str) -> Result<Option<Arc<Cached>>, PipelineError> {
        if let Some(s) = self.cache.read().get(key) {
            return Ok(Some(s.clone()));
        }
        // Under the write lock, so a write cannot land between the read and the caching.
        let _w = self.write.lock();
        let state = self.read_one(STATE, key, |bytes| {
            postcard::from_bytes::<KeyState>(bytes).map_err(|x| {
                store_error(&self.name, format!("state of key '{key}' is unreadable: {x}; rebuild the view with `headwater rebuild {}`", self.name))
            })
        })?;
        let Some(state) = state else {
            return Ok(None);
        };
        let cached = Cached::new(state);
        self.cache.write().insert(key.to_string(), cached.clone());
        Ok(Some(cached))
    }

    /// How many keys the view holds.
    pub fn keys(&self) -> u64 {
        let Ok(txn) = self.db.begin_read() else {
            return 0;
        };
        txn.open_table(STATE)
            .ok()
            .and_then(|t| t.len().ok())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_files::StateFiles;
    use headwater_domains::{Aggregation, FeatureSpec};
    use serde_json::json;
    use std::path::Path;

    fn store(dir: &Path) -> ViewStore {
        let mut specs = BTreeMap::new();
        specs.insert(
            "n".to_string(),
            FeatureSpec {
                agg: Aggregation::Count,
                of: None,
                window: None,
            },
        );
        StateFiles::new(dir)
            .view("ml", "v", "customer_id", Feature::from_spec(&specs))
            .expect("open")
    }

    #[test]
    fn state_and_checkpoint_commit_together_and_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let positions: BTreeMap<String, Offsets> = [("p.s".to_string(), [(0, 2)].into())].into();
        {
            let s = store(dir.path());
            let events: Vec<ViewEvent> = ["a", "b", "a"]
                .iter()
                .map(|k| ViewEvent {
                    key: k.to_string(),
                    ts: 1_000,
                    record: json!({}),
                })
                .collect();
            assert!(s
                .apply(s.generation(), &events, &positions, 2_000)
                .expect("apply"));
        }
        let s = store(dir.path());
        let rows = s.lookup(&["a", "b", "c"], 3_000).expect("lookup");
        assert_eq!(
            rows[0].as_ref().map(|r| r.features["n"].clone()),
            Some(json!(2))
        );
        assert_eq!(rows[1].as_ref().map(|r| r.events), Some(1));
        assert!(rows[2].is_none());
        let cp = s.checkpoint().expect("cp").expect("some");
        assert_eq!(cp.positions, positions);
        assert_eq!(s.keys(), 2);
    }

    #[test]
    fn a_writer_from_before_a_clear_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(dir.path());
        let old = s.generation();
        s.clear().expect("clear");
        let ev = [ViewEvent {
            key: "a".into(),
            ts: 1,
            record: json!({}),
        }];
        assert!(!s.apply(old, &ev, &BTreeMap::new(), 2).expect("apply"));
        assert_eq!(s.keys(), 0);
        assert!(s.checkpoint().expect("cp").is_none());
    }

    #[test]
    fn answers_are_reused_until_a_write_or_a_bucket_leaves_its_window() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut specs = BTreeMap::new();
        let count = |window: Option<u64>| FeatureSpec {
            agg: Aggregation::Count,
            of: None,
            window: window.map(|millis| headwater_domains::HumanDuration { millis }),
        };
        specs.insert("n".to_string(), count(None));
        specs.insert("n_64s".to_string(), count(Some(64_000)));
        let s = StateFiles::new(dir.path())
            .view("ml", "v", "k", Feature::from_spec(&specs))
            .expect("open");
        let event = |ts| ViewEvent {
            key: "a".into(),
            ts,
            record: json!({}),
        };
        assert!(s
            .apply(s.generation(), &[event(1_000)], &BTreeMap::new(), 2_000)
            .expect("apply"));
        let as_lookup = |now| {
            let row = s.lookup(&["a"], now).expect("lookup").pop().flatten();
            serde_json::to_string(&row.expect("row")).expect("json")
        };
        let first = s.lookup_json("a", 2_000).expect("ok").expect("row");
        assert_eq!(&first[..], as_lookup(2_000).as_bytes());
        // The 1 s bucket at 1 000 counts until 1 000 + 1 000 + 64 000.
        let later = s.lookup_json("a", 65_999).expect("ok").expect("row");
        assert_eq!(
            first.as_ptr(),
            later.as_ptr(),
            "same answer while nothing changed"
        );
        let expired = s.lookup_json("a", 66_000).expect("ok").expect("row");
        let expired = String::from_utf8(expired.to_vec()).expect("utf-8");
        assert_eq!(expired, as_lookup(66_000));
        assert!(expired.contains(r#""n_64s":0"#), "{expired}");
        assert!(s
            .apply(s.generation(), &[event(66_000)], &BTreeMap::new(), 66_000)
            .expect("apply"));
        let written = s.lookup_json("a", 66_000).expect("ok").expect("row");
        let written = String::from_utf8(written.to_vec()).expect("utf-8");
        assert_eq!(written, as_lookup(66_000));
        assert!(written.contains(r#""n":2"#), "{written}");
        assert!(s.lookup_json("b", 66_000).expect("ok").is_none());
    }
}
