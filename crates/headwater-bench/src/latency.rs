//! Produce latency at acks=-1 with fsync `always` and concurrent producers, vs the latency of
//! one small write + fdatasync on the same disk.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use headwater_log::{FsyncPolicy, LogConfig};
use headwater_node::NodeConfig;
use headwater_test_support::{batch, TestNode};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) fn run(dir: &Path, producers: usize, per_producer: usize) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir_in(dir)?;
    // Baseline: append 200 bytes and fdatasync, once before and once after the produce runs so
    // a drift in the disk's speed during the run shows in both.
    let fsync_run = |n: usize| -> anyhow::Result<Vec<Duration>> {
        let mut out = Vec::with_capacity(n);
        let mut f = std::fs::File::create(tmp.path().join("fsync.bin"))?;
        let rec = vec![b'x'; 200];
        for _ in 0..n {
            let t = Instant::now();
            f.write_all(&rec)?;
            f.sync_data()?;
            out.push(t.elapsed());
        }
        Ok(out)
    };
    let mut fsyncs = fsync_run(per_producer)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut lat = measure(&rt, FsyncPolicy::Always, producers, per_producer)?;
    let mut floor = measure(&rt, FsyncPolicy::Never, producers, per_producer)?;
    fsyncs.extend(fsync_run(per_producer)?);
    fsyncs.sort();
    floor.sort();
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (f50, f99) = (percentile(&fsyncs, 0.5), percentile(&fsyncs, 0.99));
    let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    let (n50, n99) = (percentile(&floor, 0.5), percentile(&floor, 0.99));
    println!("produce-latency: {producers} producers x {per_producer} records, acks=-1, one partition, clients in-process on loopback");
    println!(
        "one write+fdatasync          : p50 {:>7.3} ms  p99 {:>7.3} ms",
        ms(f50),
        ms(f99)
    );
    println!(
        "produce, fsync always        : p50 {:>7.3} ms  p99 {:>7.3} ms",
        ms(p50),
        ms(p99)
    );
    println!(
        "produce, fsync never (floor) : p50 {:>7.3} ms  p99 {:>7.3} ms",
        ms(n50),
        ms(n99)
    );
    println!(
        "ratio p99 produce / p99 fsync: {:.2}x   (goal <= 2x); p50 ratio {:.2}x",
        ms(p99) / ms(f99),
        ms(p50) / ms(f50)
    );
    Ok(())
}

fn measure(
    rt: &tokio::runtime::Runtime,
    fsync: FsyncPolicy,
    producers: usize,
    per_producer: usize,
) -> anyhow::Result<Vec<Duration>> {
    rt.block_on(async {
        let log_cfg = LogConfig {
            fsync,
            ..LogConfig::default()
        };
        let node = TestNode::start_with(NodeConfig {
            log: log_cfg,
            ..NodeConfig::default()
        })
        .await?;
        let mut admin = node.client().await?;
        admin.create_topic("latency", 1, &[]).await?;
        let mut tasks = Vec::new();
        for _ in 0..producers {
            let mut c = node.client().await?;
            tasks.push(tokio::spawn(async move {
                let value = vec![b'x'; 200];
                let mut out = Vec::with_capacity(per_producer);
                for _ in 0..per_producer {
                    let b = batch(&[&value], None);
                    let t = Instant::now();
                    let (err, _) = c.produce("latency", 0, b, -1).await?;
                    anyhow::ensure!(err == 0, "produce failed with error code {err}");
                    out.push(t.elapsed());
                }
                Ok::<_, anyhow::Error>(out)
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await??);
        }
        node.stop().await?;
        Ok::<_, anyhow::Error>(all)
    })
}
