//! `stream-throughput`: a streaming pipeline and a feature view working off a backlog vs the raw
//! consume rate of their input.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use headwater_test_support::{Client, Http, NodeProcess};

use super::{produce_settled, runtime};

fn pipeline_records_in(http: &mut Http, name: &str) -> anyhow::Result<u64> {
    let list = http.json("GET", "/v1/pipelines", "")?;
    Ok(list
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["records_in"].as_u64())
        .unwrap_or(0))
}

/// Copies example domains to `to`, with or without their pipelines.
fn domains_subset(to: &Path, with: &[&str], pipelines: bool) -> anyhow::Result<()> {
    for d in with {
        let from = Path::new("examples/domains").join(d);
        let dest = to.join(d);
        std::fs::create_dir_all(dest.join("schemas"))?;
        let manifest = std::fs::read_to_string(from.join("domain.yaml"))?;
        let manifest = match manifest.find("\npipelines:") {
            Some(at) if !pipelines => &manifest[..at],
            _ => manifest.as_str(),
        };
        std::fs::write(dest.join("domain.yaml"), manifest)?;
        for f in std::fs::read_dir(from.join("schemas"))? {
            let f = f?;
            std::fs::copy(f.path(), dest.join("schemas").join(f.file_name()))?;
        }
    }
    Ok(())
}

fn apply(bin: &Path, dir: &Path, http: SocketAddr) -> anyhow::Result<()> {
    let out = Command::new(bin)
        .arg("apply")
        .arg(dir)
        .arg("--url")
        .arg(format!("http://{http}"))
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "apply failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(())
}

/// Time for pipeline `name` to read `total` records, from now.
fn backlog_time(http: &mut Http, name: &str, total: u64) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    while pipeline_records_in(http, name)? < total {
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(900),
            "{name} did not finish its backlog"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(t0.elapsed())
}

pub(crate) fn stream_throughput(dir: &Path, bin: &Path, records: u64) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir_in(dir)?;
    let domains = tmp.path().join("domains");
    domains_subset(&domains, &["payments", "marketing", "finance", "ml"], false)?;
    let node = NodeProcess::start(bin, &tmp.path().join("data"), Some(&domains))?;
    let rt = runtime()?;
    rt.block_on(produce_settled(node.kafka, 0, records, 10_000))?;
    // Baseline: the raw consume rate of the input, every partition read through Fetch.
    let t0 = Instant::now();
    let consumed = rt.block_on(async {
        let mut c = Client::connect(node.kafka).await?;
        let mut n = 0;
        for p in 0..6 {
            n += c
                .consume_all("payments.transaction_settled", p, 0)
                .await?
                .len();
        }
        anyhow::Ok(n)
    })?;
    let raw = t0.elapsed();
    anyhow::ensure!(
        consumed as u64 == records,
        "consumed {consumed} of {records}"
    );
    let mut http = Http::connect(node.http)?;
    domains_subset(&domains, &["marketing"], true)?;
    apply(bin, &domains, node.http)?;
    let filter = backlog_time(&mut http, "high_value_purchases", records)?;
    domains_subset(&domains, &["ml"], true)?;
    apply(bin, &domains, node.http)?;
    let view = backlog_time(&mut http, "customer_spend", records)?;
    let rate = |d: Duration| records as f64 / d.as_secs_f64();
    println!("streaming pipelines working off a backlog of {records} records (6 partitions):");
    println!(
        "  raw consume (Fetch, one client)          : {:>10.0} records/s",
        rate(raw)
    );
    println!(
        "  marketing.high_value_purchases (filter)  : {:>10.0} records/s   ({:.1} % of raw consume)",
        rate(filter),
        100.0 * raw.as_secs_f64() / filter.as_secs_f64()
    );
    println!(
        "  ml.customer_spend (7 features, view)     : {:>10.0} records/s   ({:.1} % of raw consume)",
        rate(view),
        100.0 * raw.as_secs_f64() / view.as_secs_f64()
    );
    Ok(())
}
