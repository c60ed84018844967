//! Log append vs raw sequential write of the same bytes to the same disk.
//!
//! Both sides write the same pre-built record batches and end with one fsync, so the ratio is
//! the cost of the log's work (CRC check, offset assignment, index, producer state) per byte.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use headwater_log::{FsyncPolicy, Log, LogConfig};

pub(crate) fn run(
    dir: &Path,
    records: usize,
    record_bytes: usize,
    batch_records: usize,
    rounds: usize,
) -> anyhow::Result<()> {
    let rounds = rounds.max(1);
    let value = vec![b'x'; record_bytes];
    let values: Vec<&[u8]> = (0..batch_records).map(|_| value.as_slice()).collect();
    let batch = headwater_test_support::batch(&values, None);
    let batches = records.div_ceil(batch_records);
    let total_bytes = batch.len() * batches;
    println!(
        "log-append: {} records of {record_bytes} B in {batches} batches of {} B ({:.1} MiB)",
        batches * batch_records,
        batch.len(),
        total_bytes as f64 / (1 << 20) as f64
    );

    // Rounds alternate raw and log so neither side always gets the warmer page cache; the
    // median of each side is reported.
    let tmp = tempfile::tempdir_in(dir)?;
    let mut raws = Vec::new();
    let mut logs = Vec::new();
    for round in 0..rounds {
        // Baseline: the same bytes, written sequentially, one fsync at the end.
        let raw_path = tmp.path().join("raw.bin");
        let start = Instant::now();
        {
            let mut f = std::fs::File::create(&raw_path)?;
            for _ in 0..batches {
                f.write_all(&batch)?;
            }
            f.sync_all()?;
        }
        raws.push(start.elapsed());
        std::fs::remove_file(&raw_path)?;

        let cfg = LogConfig {
            fsync: FsyncPolicy::Never,
            ..LogConfig::default()
        };
        let log_dir = tmp.path().join(format!("log-{round}"));
        let log = Log::open(&log_dir, cfg)?;
        let topic = log.create_topic("bench", 1, Default::default())?;
        let p = topic
            .partition(0)
            .ok_or_else(|| anyhow::anyhow!("partition 0 missing"))?;
        let start = Instant::now();
        for _ in 0..batches {
            p.append(&batch)?;
        }
        p.sync_through(p.end_offset())?;
        logs.push(start.elapsed());
        log.close()?;
        drop(log);
        std::fs::remove_dir_all(&log_dir)?;
    }
    raws.sort();
    logs.sort();
    let raw = raws[raws.len() / 2];
    let appended = logs[logs.len() / 2];
    let mb = |d: std::time::Duration| total_bytes as f64 / d.as_secs_f64() / 1e6;
    let recs = |d: std::time::Duration| (batches * batch_records) as f64 / d.as_secs_f64();
    println!(
        "raw sequential write : {:>8.1} MB/s  {:>12.0} records/s  ({:.3} s)",
        mb(raw),
        recs(raw),
        raw.as_secs_f64()
    );
    println!(
        "log append           : {:>8.1} MB/s  {:>12.0} records/s  ({:.3} s)",
        mb(appended),
        recs(appended),
        appended.as_secs_f64()
    );
    println!(
        "ratio log/raw        : {:.1} %   (goal >= 70 %; median of {rounds} alternating rounds)",
        100.0 * raw.as_secs_f64() / appended.as_secs_f64()
    );
    Ok(())
}
