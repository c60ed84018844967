//! `view-latency`: produce -> view updated, end to end.

use std::path::Path;
use std::time::{Duration, Instant};

use headwater_test_support::{batch, Client, Http, NodeProcess};

use super::{percentile, runtime};

pub(crate) fn view_latency(dir: &Path, bin: &Path, samples: usize) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir_in(dir)?;
    let node = NodeProcess::start(bin, tmp.path(), Some(Path::new("examples/domains")))?;
    let rt = runtime()?;
    let mut http = Http::connect(node.http)?;
    let mut lat = Vec::with_capacity(samples);
    rt.block_on(async {
        let mut c = Client::connect(node.kafka).await?;
        for i in 0..samples {
            let customer = format!("lat-{i}");
            let value = format!(
                r#"{{"transaction_id":"l-{i}","customer_id":"{customer}","merchant_id":"m-1","amount":10.0,"currency":"EUR","settled_at":"2026-11-30T08:00:00Z"}}"#
            );
            let path = format!("/v1/views/ml/customer_spend/{customer}");
            let t0 = Instant::now();
            let (err, _) = c
                .produce("payments.transaction_settled", (i % 6) as i32, batch(&[value.as_bytes()], None), 1)
                .await?;
            anyhow::ensure!(err == 0, "produce failed with error code {err}");
            loop {
                let (status, _) = http.request("GET", &path, "")?;
                if status == 200 {
                    break;
                }
                anyhow::ensure!(t0.elapsed() < Duration::from_secs(10), "the view never showed {customer}");
                std::thread::sleep(Duration::from_micros(200));
            }
            lat.push(t0.elapsed().as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        anyhow::Ok(())
    })?;
    lat.sort_by(f64::total_cmp);
    println!(
        "produce -> view updated ({samples} events, one at a time, acks=1, polled every 0.2 ms):"
    );
    println!(
        "  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms   (goal p99 <= 20 ms)",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0)
    );
    Ok(())
}
