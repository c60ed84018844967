//! Model test: random appends, clean and unclean restarts, recovery checkpoints and torn tails,
//! checked against a plain list of what was acknowledged.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;

use crate::batch::test_batches::batch;
use crate::batch::{BatchHeader, BatchIter};
use crate::{Log, LogConfig};

const SEGMENT_BYTES: u64 = 4096;

#[derive(Debug, Clone)]
enum Op {
    Append {
        count: i32,
        value_len: usize,
    },
    Checkpoint,
    Restart {
        clean: bool,
    },
    /// Crash, then cut this many bytes off the active segment (a torn write).
    Tear {
        bytes: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1..12i32, 0..300usize).prop_map(|(count, value_len)| Op::Append { count, value_len }),
        1 => Just(Op::Checkpoint),
        1 => any::<bool>().prop_map(|clean| Op::Restart { clean }),
        1 => (1..200u64).prop_map(|bytes| Op::Tear { bytes }),
    ]
}

/// What the log must hold: batches per segment as (base offset, record count, bytes).
#[derive(Debug, Default)]
struct Model {
    segments: BTreeMap<i64, Vec<(i64, i32, u64)>>,
    end: i64,
}

impl Model {
    fn active(&mut self) -> (&i64, &mut Vec<(i64, i32, u64)>) {
        if self.segments.is_empty() {
            self.segments.insert(0, Vec::new());
        }
        self.segments.iter_mut().next_back().expect("a segment")
    }

    fn append(&mut self, count: i32, len: u64) {
        let end = self.end;
        let (_, batches) = self.active();
        let size: u64 = batches.iter().map(|b| b.2).sum();
        if size > 0 && size + len > SEGMENT_BYTES {
            self.segments.insert(end, Vec::new());
        }
        let (_, batches) = self.active();
        batches.push((end, count, len));
        self.end += i64::from(count);
    }

    /// Keeps the active segment's batches that end within `len` bytes.
    fn cut_active(&mut self, len: u64) {
        let (_, batches) = self.active();
        let mut at = 0;
        batches.retain(|b| {
            at += b.2;
            at <= len
        });
        self.end = batches
            .last()
            .map(|b| b.0 + i64::from(b.1))
            .unwrap_or(*self.active().0);
    }
}

fn open(dir: &Path) -> Arc<Log> {
    let cfg = LogConfig {
        segment_bytes: SEGMENT_BYTES,
        ..LogConfig::default()
    };
    Log::open(dir, cfg).expect("open")
}

fn check(log: &Log, model: &Model) {
    let p = log.partition("m", 0).expect("partition");
    assert_eq!(p.end_offset(), model.end, "end offset");
    let mut offset = 0;
    while offset < model.end {
        let data = p.read(offset, 1 << 16).expect("read");
        assert!(
            !data.is_empty(),
            "no data at offset {offset} below end {}",
            model.end
        );
        for (_, h) in BatchIter::new(&data) {
            let h = h.expect("whole batch");
            BatchHeader::parse_checked(&data[..]).expect("crc");
            assert!(
                h.base_offset <= offset && offset <= h.last_offset(),
                "batch {h:?} for {offset}"
            );
            offset = h.last_offset() + 1;
        }
    }
    assert_eq!(offset, model.end);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path());
        log.create_topic("m", 1, Default::default()).expect("topic");
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Append { count, value_len } => {
                    let b = batch(count, value_len, None);
                    let out = log.partition("m", 0).expect("p").append(&b).expect("append");
                    prop_assert_eq!(out.base_offset, model.end);
                    model.append(count, b.len() as u64);
                }
                Op::Checkpoint => log.partition("m", 0).expect("p").checkpoint().expect("checkpoint"),
                Op::Restart { clean } => {
                    if clean {
                        log.close().expect("close");
                    }
                    drop(log);
                    log = open(dir.path());
                }
                Op::Tear { bytes } => {
                    let active = log.partition("m", 0).expect("p").segments().pop().expect("active");
                    let (path, size) = (active.path().to_path_buf(), active.size());
                    drop(active);
                    drop(log);
                    if size > bytes {
                        let f = std::fs::OpenOptions::new().write(true).open(&path).expect("open");
                        f.set_len(size - bytes).expect("tear");
                        model.cut_active(size - bytes);
                    }
                    log = open(dir.path());
                }
            }
            check(&log, &model);
        }
    }
}
