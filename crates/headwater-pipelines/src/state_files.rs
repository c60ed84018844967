//! The redb files pipelines keep state in: a feature view's (`<data>/views/<domain>/<view>.redb`)
//! and a windowed pipeline's (`<data>/pipelines/<domain>/<name>.redb`).
//!
//! redb allows one open per file per process, and a redeployed pipeline's new unit starts
//! while the old one may still be finishing a write. So each file is opened once and shared,
//! with a generation counter: the new unit takes the next generation, and a writer holding an
//! older one writes nothing more (it is fenced).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use redb::Database;

use crate::error::Fault;
use crate::features::Feature;
use crate::view_store::{StateCache, ViewStore};
use crate::PipelineError;

/// The node's open state files, by path.
#[derive(Debug, Default, Clone)]
pub(crate) struct StateFiles {
    open: Arc<Mutex<HashMap<PathBuf, OpenFile>>>,
    data_dir: PathBuf,
}

/// One open file, shared by every unit that used it since the node started.
#[derive(Debug, Clone)]
pub(crate) struct OpenFile {
    pub(crate) db: Arc<Database>,
    /// The generation allowed to write.
    pub(crate) generation: Arc<AtomicU64>,
    /// Held across a write and the generation check before it.
    pub(crate) write: Arc<Mutex<()>>,
    /// A view's decoded key states (unused by a windowed pipeline's file).
    pub(crate) cache: StateCache,
}

/// A windowed pipeline's state file, held by one generation of its unit.
#[derive(Debug, Clone)]
pub(crate) struct StateFile {
    pub(crate) db: Arc<Database>,
    generation: u64,
    current: Arc<AtomicU64>,
    write: Arc<Mutex<()>>,
}

impl StateFile {
    /// Runs `write` unless a newer unit has taken the file (`None` then).
    pub(crate) fn write<T>(&self, write: impl FnOnce(&Database) -> T) -> Option<T> {
        let _w = self.write.lock();
        (self.current.load(Ordering::SeqCst) == self.generation).then(|| write(&self.db))
    }
}

impl StateFiles {
    pub(crate) fn new(data_dir: &Path) -> Self {
        StateFiles {
            open: Default::default(),
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// The state file of a windowed pipeline, fenced: whoever wrote it before (a unit being
    /// replaced) writes no more.
    pub(crate) fn pipeline_state(
        &self,
        domain: &str,
        name: &str,
    ) -> Result<StateFile, PipelineError> {
        let path = self.path("pipelines", domain, name);
        let f = self.file(&path, |reason| Fault::WindowState {
            pipeline: format!("{domain}.{name}"),
            reason,
        })?;
        let generation = {
            let _w = f.write.lock();
            f.generation.fetch_add(1, Ordering::SeqCst) + 1
        };
        Ok(StateFile {
            db: f.db,
            generation,
            current: f.generation,
            write: f.write,
        })
    }

    /// The feature view `<domain>.<view>`, keyed by `key`, computing `features`. Not fenced:
    /// the caller fences it ([`ViewStore::fence`]) when it replaces a running unit.
    pub(crate) fn view(
        &self,
        domain: &str,
        view: &str,
        key: &str,
        features: Vec<Feature>,
    ) -> Result<ViewStore, PipelineError> {
        let name = format!("{domain}.{view}");
        let path = self.path("views", domain, view);
        let file = self.file(&path, |reason| Fault::ViewStore {
            view: name.clone(),
            reason,
        })?;
        Ok(ViewStore::new(name, key, features, file))
    }

    /// `<data>/<kind>/<domain>/<name>.redb`.
    fn path(&self, kind: &str, domain: &str, name: &str) -> PathBuf {
        self.data_dir
            .join(kind)
            .join(domain)
            .join(format!("{name}.redb"))
    }

    /// The open file at `path`, opened (and created) if it is not yet; `fault` names the state
    /// a failure is of.
    fn file(
        &self,
        path: &Path,
        fault: impl FnOnce(String) -> Fault,
    ) -> Result<OpenFile, PipelineError> {
        let mut open = self.open.lock();
        if let Some(f) = open.get(path) {
            return Ok(f.clone());
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| PipelineError::io(format!("creating {}", dir.display()), e))?;
        }
        let db = Database::create(path)
            .map_err(|e| fault(format!("opening {}: {e}", path.display())))?;
        let f = OpenFile {
            db: Arc::new(db),
            generation: Arc::new(AtomicU64::new(0)),
            write: Arc::new(Mutex::new(())),
            cache: Default::default(),
        };
        open.insert(path.to_path_buf(), f.clone());
        Ok(f)
    }
}
