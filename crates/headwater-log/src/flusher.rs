//! Group commit for producers that wait without blocking a thread.
//!
//! Under the `always` policy a producer's append must be synced before it is acknowledged. An
//! async caller asks [`Partition::wait_durable`]; the partition is queued for a small pool of
//! flusher threads, each of which takes every queued partition, syncs it once, and publishes the
//! new durable offset on a watch channel that wakes every waiting producer at once. Requests that
//! arrive while an fsync runs are served by the next one, so a burst of producers costs at most
//! two fsyncs, and no producer holds a thread while it waits.

use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::partition::Partition;

/// Threads that run fsyncs for waiting producers. More than one lets partitions sync in
/// parallel on devices that overlap fsyncs; two keeps a 2-core machine responsive.
const FLUSHER_THREADS: usize = 2;

/// Handle to the flusher pool; cloned into every partition.
#[derive(Debug, Clone)]
pub(crate) struct Flusher {
    tx: Sender<Arc<Partition>>,
}

impl Flusher {
    /// Starts the pool. Threads end when the last handle is dropped.
    pub(crate) fn start() -> Self {
        let (tx, rx) = channel::<Arc<Partition>>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..FLUSHER_THREADS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("log-group-commit-{i}"))
                .spawn(move || run(&rx));
            if let Err(e) = spawned {
                tracing::error!("cannot start a group-commit thread: {e}");
            }
        }
        Flusher { tx }
    }

    /// Queues `partition` for a sync. Returns false if the pool is gone (shutdown).
    pub(crate) fn request(&self, partition: Arc<Partition>) -> bool {
        self.tx.send(partition).is_ok()
    }
}

/// Longest a flusher waits for more appends before it syncs.
const MAX_GATHER: Duration = Duration::from_micros(60);
/// A partition that gained no append for this long is synced at once.
const QUIET: Duration = Duration::from_micros(12);

/// Lets appends that are arriving right now join the coming fsync. Producers that were answered
/// together send their next batches together; syncing on the first arrival would make the rest
/// wait for that fsync and then one more, while a few microseconds of patience covers them all.
fn gather(p: &Partition) {
    let start = Instant::now();
    let mut last_end = p.end_offset();
    let mut last_change = start;
    loop {
        std::thread::yield_now();
        let now = Instant::now();
        let end = p.end_offset();
        if end != last_end {
            last_end = end;
            last_change = now;
        }
        if now.duration_since(last_change) >= QUIET || now.duration_since(start) >= MAX_GATHER {
            return;
        }
    }
}

fn run(rx: &Mutex<Receiver<Arc<Partition>>>) {
    loop {
        // Take one request (blocking), then everything else already queued.
        let batch: Vec<Arc<Partition>> = {
            let Ok(guard) = rx.lock() else { return };
            let Ok(first) = guard.recv() else { return };
            let mut batch = vec![first];
            while let Ok(more) = guard.try_recv() {
                batch.push(more);
            }
            batch
        };
        let mut unique: HashMap<*const Partition, Arc<Partition>> = HashMap::new();
        for p in batch {
            unique.entry(Arc::as_ptr(&p)).or_insert(p);
        }
        for p in unique.into_values() {
            gather(&p);
            // Errors are published to the waiters by sync_through itself.
            let _ = p.sync_through(p.end_offset());
        }
    }
}
