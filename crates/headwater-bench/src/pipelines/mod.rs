//! Benchmarks of issue 4, each against a baseline measured in the same run:
//!
//! - `view-lookup`: feature view lookups over HTTP vs Redis GET (a `redis-server` it starts);
//! - `view-latency`: produce -> view updated, end to end;
//! - `stream-throughput`: a streaming pipeline and a feature view working off a backlog vs the
//!   raw consume rate of their input;
//! - `batch-sql`: an aggregation over 10 M events in Parquet vs DuckDB over the same files.
//!
//! The node is the release binary in its own process, as Redis and DuckDB are, started on
//! free ports with the example domains.

mod batch_sql;
mod redis;
mod stream_throughput;
mod view_latency;
mod view_lookup;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use headwater_test_support::{batch, Client, Http};

pub(crate) use batch_sql::batch_sql;
pub(crate) use stream_throughput::stream_throughput;
pub(crate) use view_latency::view_latency;
pub(crate) use view_lookup::view_lookup;

pub(crate) fn settled(i: u64, customers: u64) -> Vec<u8> {
    let amount = (i * 7919 % 100_000) as f64 / 100.0;
    let currency = ["EUR", "USD", "GBP"][(i % 3) as usize];
    format!(
        r#"{{"transaction_id":"t-{i}","customer_id":"c-{}","merchant_id":"m-{}","amount":{amount},"currency":"{currency}","channel":"online","country":"DE","settled_at":"2026-11-30T08:00:00Z"}}"#,
        i % customers,
        i % 97
    )
    .into_bytes()
}

/// Produces `n` settled transactions for `customers` customers, spread over 6 partitions.
pub(crate) async fn produce_settled(
    kafka: SocketAddr,
    from: u64,
    n: u64,
    customers: u64,
) -> anyhow::Result<()> {
    let mut c = Client::connect(kafka).await?;
    let per_batch = 1000u64;
    let mut i = from;
    while i < from + n {
        let k = per_batch.min(from + n - i);
        let values: Vec<Vec<u8>> = (i..i + k).map(|j| settled(j, customers)).collect();
        let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        let (err, _) = c
            .produce(
                "payments.transaction_settled",
                ((i / per_batch) % 6) as i32,
                batch(&refs, None),
                1,
            )
            .await?;
        anyhow::ensure!(err == 0, "produce failed with error code {err}");
        i += k;
    }
    Ok(())
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Waits until the view holds `keys` keys and every pipeline reading the stream (marketing's
/// too) has read everything produced, so no catch-up work runs while lookups are measured.
pub(crate) fn wait_for_view(http: &mut Http, keys: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let views = http.json("GET", "/v1/views", "")?;
        let lag = http.json("GET", "/v1/status", "")?;
        let behind: i64 = lag["streams"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["stream"] == "payments.transaction_settled")
            .flat_map(|s| s["subscribers"].as_array().cloned().unwrap_or_default())
            .filter(|g| {
                g["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("_pipeline."))
            })
            .map(|g| g["lag_records"].as_i64().unwrap_or(i64::MAX))
            .sum();
        let have = views
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["view"] == "customer_spend")
            .and_then(|v| v["keys"].as_u64())
            .unwrap_or(0);
        if have >= keys && behind == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the view did not catch up: {have} keys, lag {behind}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
