//! Parquet tables under `<data>/tables/<domain>/<table>/`, hive-partitioned
//! (`day=2026-11-25/part-0.parquet`), readable as they are by DuckDB, pyarrow or Spark.
//!
//! A table is replaced whole by each run of its pipeline. The new version is written beside the
//! table (`.staging-<table>-<run>/`) with its metadata file `_headwater.json` written last; then
//! the old directory is moved aside and the new one moved in. The metadata names the input
//! offsets the version was computed from, so a table and its pipeline's checkpoint change
//! together. After a crash, [`Tables::recover`] finishes a swap whose new version was complete
//! and removes anything incomplete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::source::Offsets;
use crate::PipelineError;

/// The metadata file of a table version, written last: a version without it is incomplete.
pub const META_FILE: &str = "_headwater.json";

/// What a table version holds and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableMeta {
    /// `<domain>.<pipeline>` that wrote it.
    pub pipeline: String,
    /// The run that wrote it.
    pub run: String,
    /// Input stream -> offsets read up to (exclusive), per partition.
    pub inputs: BTreeMap<String, Offsets>,
    /// Hive partition columns and their Arrow type.
    pub partition_by: Vec<(String, String)>,
    /// Rows in the version.
    pub rows: u64,
    /// When it was written, in milliseconds since the Unix epoch.
    pub written_at_ms: i64,
}

/// The node's Parquet tables, under `<data>/tables/`.
#[derive(Debug, Clone)]
pub struct Tables {
    root: PathBuf,
}

impl Tables {
    /// The tables of the node whose data directory is `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Tables {
            root: data_dir.join("tables"),
        }
    }

    /// The directory of the table's current version.
    pub fn dir(&self, domain: &str, table: &str) -> PathBuf {
        self.root.join(domain).join(table)
    }

    /// Where run `run` writes the table's next version.
    pub(crate) fn staging_dir(&self, domain: &str, table: &str, run: &str) -> PathBuf {
        self.root
            .join(domain)
            .join(format!(".staging-{table}-{run}"))
    }

    /// The metadata of the table's current version, if it has one.
    pub fn meta(&self, domain: &str, table: &str) -> Option<TableMeta> {
        let text = std::fs::read_to_string(self.dir(domain, table).join(META_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Every table with a complete version: (domain, table).
    pub fn list(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let Ok(domains) = std::fs::read_dir(&self.root) else {
            return out;
        };
        for d in domains.flatten() {
            let domain = d.file_name().to_string_lossy().into_owned();
            let Ok(tables) = std::fs::read_dir(d.path()) else {
                continue;
            };
            for t in tables.flatten() {
                let name = t.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') && t.path().join(META_FILE).is_file() {
                    out.push((domain.clone(), name));
                }
            }
        }
        out.sort();
        out
    }

    /// Makes the staged version at `staging` the table (its metadata must be written).
    pub(crate) fn commit(
        &self,
        domain: &str,
        table: &str,
        staging: &Path,
    ) -> Result<(), PipelineError> {
        let io = |what: &str, path: &Path, e: std::io::Error| {
            PipelineError::io(format!("{what} {}", path.display()), e)
        };
        let current = self.dir(domain, table);
        let retired = self.root.join(domain).join(format!(
            ".retired-{table}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        if current.exists() {
            std::fs::rename(&current, &retired).map_err(|e| io("retiring", &current, e))?;
        }
        std::fs::rename(staging, &current).map_err(|e| io("moving in", staging, e))?;
        sync_dir(&self.root.join(domain));
        if retired.exists() {
            std::fs::remove_dir_all(&retired).map_err(|e| io("removing", &retired, e))?;
        }
        Ok(())
    }

    /// Finishes or undoes swaps a crash interrupted; returns what it did, for the log.
    pub fn recover(&self) -> Vec<String> {
        let mut done = Vec::new();
        let Ok(domains) = std::fs::read_dir(&self.root) else {
            return done;
        };
        for d in domains.flatten() {
            let Ok(entries) = std::fs::read_dir(d.path()) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for name in &names {
                let path = d.path().join(name);
                let Some(rest) = name.strip_prefix(".staging-") else {
                    if name.starts_with(".retired-") {
                        let _ = std::fs::remove_dir_all(&path);
                        done.push(format!("removed {}", path.display()));
                    }
                    continue;
                };
                // `.staging-<table>-<run>`: the run id is a 32-hex-digit uuid.
                let table = rest
                    .get(..rest.len().saturating_sub(33))
                    .unwrap_or_default();
                let current = d.path().join(table);
                if !table.is_empty() && !current.exists() && path.join(META_FILE).is_file() {
                    if std::fs::rename(&path, &current).is_ok() {
                        done.push(format!(
                            "completed the new version of {}",
                            current.display()
                        ));
                    }
                } else {
                    let _ = std::fs::remove_dir_all(&path);
                    done.push(format!("removed the incomplete {}", path.display()));
                }
            }
        }
        done
    }
}

/// Makes renames in `dir` durable; a failure only weakens crash safety, so it is not fatal.
fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Writes `meta` into the staged version, durably: it marks the version complete.
pub(crate) fn write_meta(staging: &Path, meta: &TableMeta) -> Result<(), PipelineError> {
    let path = staging.join(META_FILE);
    let io = |e: std::io::Error| PipelineError::io(format!("writing {}", path.display()), e);
    std::fs::create_dir_all(staging).map_err(io)?;
    let text = serde_json::to_vec_pretty(meta).map_err(|e| io(std::io::Error::other(e)))?;
    std::fs::write(&path, text).map_err(io)?;
    if let Ok(f) = std::fs::File::open(&path) {
        let _ = f.sync_all();
    }
    sync_dir(staging);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(run: &str) -> TableMeta {
        TableMeta {
            pipeline: "finance.p".into(),
            run: run.into(),
            inputs: BTreeMap::new(),
            partition_by: vec![],
            rows: 1,
            written_at_ms: 0,
        }
    }

    #[test]
    fn commit_replaces_and_recover_finishes_or_cleans() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Tables::new(dir.path());
        let run1 = uuid::Uuid::new_v4().simple().to_string();
        let s1 = t.staging_dir("finance", "totals", &run1);
        write_meta(&s1, &meta(&run1)).expect("meta");
        t.commit("finance", "totals", &s1).expect("commit");
        assert_eq!(t.meta("finance", "totals").map(|m| m.run), Some(run1));
        // A crash after the old version moved aside, before the new one moved in.
        let run2 = uuid::Uuid::new_v4().simple().to_string();
        let s2 = t.staging_dir("finance", "totals", &run2);
        write_meta(&s2, &meta(&run2)).expect("meta");
        std::fs::rename(
            t.dir("finance", "totals"),
            dir.path().join("tables/finance/.retired-totals-x"),
        )
        .expect("retire");
        // And an incomplete run that never wrote its metadata.
        let run3 = uuid::Uuid::new_v4().simple().to_string();
        std::fs::create_dir_all(t.staging_dir("finance", "totals", &run3)).expect("mkdir");
        let done = t.recover();
        assert_eq!(done.len(), 3, "{done:?}");
        assert_eq!(t.meta("finance", "totals").map(|m| m.run), Some(run2));
        assert_eq!(
            t.list(),
            vec![("finance".to_string(), "totals".to_string())]
        );
    }
}
