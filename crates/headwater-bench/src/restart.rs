//! Time from starting `headwater serve` to its first answered Kafka request, on a data dir
//! holding N GiB, after a clean stop and after SIGKILL, vs the same on an empty data dir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use headwater_log::{FsyncPolicy, Log, LogConfig};
use kafka_protocol::messages::ApiVersionsRequest;

fn fill(dir: &Path, gib: u64) -> anyhow::Result<()> {
    let marker = dir.join("bench-filled");
    if marker.exists() {
        println!("reusing {} ({gib} GiB)", dir.display());
        return Ok(());
    }
    println!("writing {gib} GiB into {} ...", dir.display());
    let cfg = LogConfig {
        fsync: FsyncPolicy::Never,
        ..LogConfig::default()
    };
    let log = Log::open(dir, cfg)?;
    let partitions = 8;
    let topic = log.create_topic("bulk", partitions, Default::default())?;
    let value = vec![b'x'; 200];
    let values: Vec<&[u8]> = (0..4_500).map(|_| value.as_slice()).collect();
    let batch = headwater_test_support::batch(&values, None);
    let target = gib << 30;
    let mut written = 0u64;
    let mut i = 0;
    while written < target {
        let p = topic
            .partition(i % partitions)
            .ok_or_else(|| anyhow::anyhow!("partition missing"))?;
        p.append(&batch)?;
        written += batch.len() as u64;
        i += 1;
    }
    log.close()?;
    std::fs::write(&marker, b"")?;
    Ok(())
}

fn start(bin: &Path, dir: &Path) -> anyhow::Result<(Child, Duration)> {
    let port = headwater_test_support::free_port()?;
    let t = Instant::now();
    let child = Command::new(bin)
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--kafka-addr", &format!("127.0.0.1:{port}")])
        .args(["--http-addr", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        loop {
            if t.elapsed() > Duration::from_secs(120) {
                anyhow::bail!("node did not answer within 120 s");
            }
            if let Ok(mut c) =
                headwater_test_support::Client::connect(([127, 0, 0, 1], port).into()).await
            {
                if c.send(&ApiVersionsRequest::default(), 3).await.is_ok() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })?;
    Ok((child, t.elapsed()))
}

fn stop(mut child: Child, kill: bool) -> anyhow::Result<()> {
    if kill {
        child.kill()?;
    } else {
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()?;
    }
    child.wait()?;
    Ok(())
}

/// Empties the page cache (needs root); false when not allowed.
fn drop_caches() -> bool {
    let _ = Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", b"3\n").is_ok()
}

pub(crate) fn run(dir: &Path, gib: u64, bin: &Path, keep: Option<PathBuf>) -> anyhow::Result<()> {
    anyhow::ensure!(
        bin.exists(),
        "{} not found: run `cargo build --release` first",
        bin.display()
    );
    let tmp = tempfile::tempdir_in(dir)?;
    let empty = tmp.path().join("empty");
    let full = keep.unwrap_or_else(|| tmp.path().join("full"));
    fill(&full, gib)?;
    // Warm both once so the measurements compare like with like (binary in page cache).
    let (c, _) = start(bin, &empty)?;
    stop(c, false)?;
    let (c, empty_clean) = start(bin, &empty)?;
    stop(c, false)?;
    let (c, _) = start(bin, &full)?;
    stop(c, false)?;
    let (c, full_clean) = start(bin, &full)?;
    stop(c, true)?;
    let (c, full_crash) = start(bin, &full)?;
    stop(c, true)?;
    // The same after SIGKILL with an empty page cache, where the machine lets us drop it.
    let cold = if drop_caches() {
        let (c, t) = start(bin, &full)?;
        stop(c, false)?;
        Some(t)
    } else {
        let (c, _) = start(bin, &full)?;
        stop(c, false)?;
        None
    };
    let s = |d: Duration| d.as_secs_f64();
    println!("restart: time from process start to an answered ApiVersions request");
    println!("empty data dir, clean stop   : {:.3} s", s(empty_clean));
    println!(
        "{gib} GiB, clean stop            : {:.3} s  ({:.1}x the empty node; goal < 2 s)",
        s(full_clean),
        s(full_clean) / s(empty_clean)
    );
    println!(
        "{gib} GiB, after SIGKILL         : {:.3} s  ({:.1}x the empty node; goal < 2 s)",
        s(full_crash),
        s(full_crash) / s(empty_clean)
    );
    match cold {
        Some(t) => println!(
            "{gib} GiB, SIGKILL + cold cache : {:.3} s  ({:.1}x the empty node; goal < 2 s)",
            s(t),
            s(t) / s(empty_clean)
        ),
        None => println!(
            "{gib} GiB, SIGKILL + cold cache : not measured (cannot write /proc/sys/vm/drop_caches)"
        ),
    }
    Ok(())
}
