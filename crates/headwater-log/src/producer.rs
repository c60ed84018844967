//! Idempotent-producer state of one partition: which sequence numbers each producer has written.
//!
//! Kafka's idempotent producers number their batches per partition; the log refuses gaps and
//! answers a resent batch with the offset it got the first time instead of writing it twice. The
//! state is derived from the batch headers in the log, so after a restart it is rebuilt from a
//! snapshot (`<offset, 20 digits>.producers`, JSON, written when a segment rolls and at shutdown)
//! plus the headers appended after that snapshot's offset.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::batch::BatchHeader;
use crate::LogError;

/// Kafka keeps the last five batches per producer for duplicate detection: a producer never has
/// more than five requests in flight per partition when idempotence is on.
const RECENT_BATCHES: usize = 5;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct ProducerEntry {
    pub epoch: i16,
    pub recent: VecDeque<BatchMeta>,
}

/// What the producer state says about a batch about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SequenceCheck {
    /// Not from an idempotent producer, or the next in sequence: append it.
    Append,
    /// Already written: answer with the original offsets, write nothing.
    Duplicate(BatchMeta),
}

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct ProducerStates {
    pub producers: HashMap<i64, ProducerEntry>,
}

pub(crate) fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

impl ProducerStates {
    /// Checks a batch from the wire against the state, without changing it.
    pub(crate) fn check(
        &self,
        topic: &str,
        partition: i32,
        h: &BatchHeader,
    ) -> Result<SequenceCheck, LogError> {
        if h.producer_id < 0 || h.base_sequence < 0 {
            return Ok(SequenceCheck::Append);
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            // Unknown producer: its earlier batches may have been removed by retention, so any
            // starting sequence is accepted, as Kafka does.
            return Ok(SequenceCheck::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(LogError::ProducerFenced {
                topic: topic.to_string(),
                partition,
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                current: entry.epoch,
            });
        }
        if h.producer_epoch > entry.epoch {
            // A new epoch restarts the sequence at zero.
            if h.base_sequence != 0 {
                return Err(LogError::OutOfOrderSequence {
                    topic: topic.to_string(),
                    partition,
                    producer_id: h.producer_id,
                    got: h.base_sequence,
                    expected: 0,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        let last_seq = h.last_sequence();
        if let Some(dup) = entry
            .recent
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
        {
            return Ok(SequenceCheck::Duplicate(dup.clone()));
        }
        let expected = entry
            .recent
            .back()
            .map(|b| next_seq(b.last_seq))
            .unwrap_or(0);
        if h.base_sequence != expected {
            return Err(LogError::OutOfOrderSequence {
                topic: topic.to_string(),
                partition,
                producer_id: h.producer_id,
                got: h.base_sequence,
                expected,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Records a batch that is now in the log (with its assigned offsets).
    pub(crate) fn record(&mut self, h: &BatchHeader) {
        if h.producer_id < 0 || h.base_sequence < 0 {
            return;
        }
        let entry = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: h.producer_epoch,
                recent: VecDeque::new(),
            });
        if h.producer_epoch > entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.recent.clear();
        }
        entry.recent.push_back(BatchMeta {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
        });
        while entry.recent.len() > RECENT_BATCHES {
            entry.recent.pop_front();
        }
    }

    pub(crate) fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
        dir.join(format!("{offset:020}.producers"))
    }

    /// Writes the state as of `offset` (the partition's end offset) and syncs it.
    pub(crate) fn save(&self, dir: &Path, offset: i64) -> Result<(), LogError> {
        let path = Self::snapshot_path(dir, offset);
        let tmp = path.with_extension("producers.tmp");
        let json = serde_json::to_vec(self).map_err(|e| LogError::Io {
            op: "encode producer snapshot",
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        crate::fsutil::write_synced(&tmp, &json)?;
        std::fs::rename(&tmp, &path).map_err(LogError::io("rename producer snapshot", &path))?;
        Ok(())
    }

    /// Loads the newest snapshot at or below `max_offset`, returning it and its offset.
    pub(crate) fn load_latest(dir: &Path, max_offset: i64) -> Option<(Self, i64)> {
        let mut best: Option<(i64, PathBuf)> = None;
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Some(stem) = name.strip_suffix(".producers") else {
                continue;
            };
            let Ok(off) = stem.parse::<i64>() else {
                continue;
            };
            if off <= max_offset && best.as_ref().is_none_or(|b| off > b.0) {
                best = Some((off, entry.path()));
            }
        }
        let (off, path) = best?;
        let bytes = std::fs::read(&path).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(state) => Some((state, off)),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "ignoring unreadable producer snapshot; rebuilding from the log");
                None
            }
        }
    }

    /// Deletes snapshots older than the newest `keep`, and any above `max_offset` (stale after a
    /// truncation).
    pub(crate) fn prune(dir: &Path, keep: usize, max_offset: i64) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut snaps: Vec<(i64, PathBuf)> = rd
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let off = name.strip_suffix(".producers")?.parse::<i64>().ok()?;
                Some((off, e.path()))
            })
            .collect();
        snaps.sort();
        let n = snaps.len();
        for (i, (off, path)) in snaps.into_iter().enumerate() {
            if off > max_offset || i + keep < n {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{set_base_offset, test_batches::batch};

    fn header(pid: i64, epoch: i16, seq: i32, count: i32, offset: i64) -> BatchHeader {
        let mut b = batch(count, 1, Some((pid, epoch, seq)));
        set_base_offset(&mut b, offset);
        BatchHeader::parse(&b).expect("valid")
    }

    #[test]
    fn dedups_and_refuses_gaps() {
        let mut s = ProducerStates::default();
        let h0 = header(1, 0, 0, 3, 0);
        assert_eq!(s.check("t", 0, &h0).expect("ok"), SequenceCheck::Append);
        s.record(&h0);
        let h1 = header(1, 0, 3, 2, 3);
        assert_eq!(s.check("t", 0, &h1).expect("ok"), SequenceCheck::Append);
        s.record(&h1);
        // Resent first batch: duplicate with original offsets.
        match s.check("t", 0, &header(1, 0, 0, 3, 99)).expect("dup") {
            SequenceCheck::Duplicate(m) => assert_eq!(m.base_offset, 0),
            other => panic!("expected duplicate, got {other:?}"),
        }
        // Gap.
        assert!(matches!(
            s.check("t", 0, &header(1, 0, 9, 1, 5)),
            Err(LogError::OutOfOrderSequence { expected: 5, .. })
        ));
        // Old epoch fenced; new epoch restarts at 0.
        let mut s2 = s.clone();
        s2.record(&header(1, 2, 0, 1, 5));
        assert!(matches!(
            s2.check("t", 0, &header(1, 1, 5, 1, 6)),
            Err(LogError::ProducerFenced { .. })
        ));
    }

    #[test]
    fn snapshot_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = ProducerStates::default();
        s.record(&header(7, 0, 0, 3, 0));
        s.save(dir.path(), 3).expect("save");
        s.save(dir.path(), 10).expect("save");
        let (loaded, off) = ProducerStates::load_latest(dir.path(), 5).expect("load");
        assert_eq!(off, 3);
        assert_eq!(loaded, s);
    }
}
