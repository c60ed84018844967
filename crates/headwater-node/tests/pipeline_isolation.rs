//! One domain's broken pipelines must not hurt another domain's: a pipeline that panics every
//! 100th record, one that spins on the CPU and one that blocks forever run beside a healthy
//! one, whose throughput and lag are compared with a run without them, while the node keeps
//! serving produce and fetch.
//!
//! The misbehaviour comes from SQL functions registered the way an embedding application adds
//! its own (`Engine::functions`), so the broken pipelines are real pipelines running real SQL.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use headwater_governance::{Actor, DomainService, PipelineService};
use headwater_pipelines::datafusion::arrow::datatypes::DataType;
use headwater_pipelines::datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
use headwater_pipelines::State;
use headwater_test_support::{batch, Client, TestNode};

struct Node {
    addr: std::net::SocketAddr,
    pipelines: Arc<PipelineService>,
    domains: Arc<DomainService>,
    _node: TestNode,
}

async fn start_node() -> anyhow::Result<Node> {
    let node = TestNode::start().await?;
    let services = node.services();
    Ok(Node {
        addr: node.addr,
        pipelines: services.pipelines.clone(),
        domains: services.domains.clone(),
        _node: node,
    })
}

const SCHEMA: &str = r#"{"type":"object","required":["n"],"properties":{"n":{"type":"integer"}}}"#;

fn write_domain(root: &std::path::Path, name: &str, manifest: &str) -> anyhow::Result<()> {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("schemas"))?;
    std::fs::write(dir.join("schemas/event.json"), SCHEMA)?;
    std::fs::write(dir.join("domain.yaml"), manifest)?;
    Ok(())
}

const LOAD: &str = "domain: load
owners: [team:load]
streams:
  events:
    partitions: 2
    contract: { format: json-schema, schema: schemas/event.json }
    readers: ['*']
  copy:
    partitions: 2
    contract: { format: json-schema, schema: schemas/event.json }
pipelines:
  copier:
    mode: streaming
    inputs: [load.events]
    sql: SELECT n FROM load.events WHERE n >= 0
    output: { stream: copy }
";

const CHAOS: &str = "domain: chaos
owners: [team:chaos]
streams:
  out:
    contract: { format: json-schema, schema: schemas/event.json }
pipelines:
  panics:
    mode: streaming
    inputs: [load.events]
    sql: SELECT panic_every_100th(n) AS n FROM load.events
    output: { stream: out }
  spins:
    mode: streaming
    inputs: [load.events]
    sql: SELECT spin_forever(n) AS n FROM load.events
    output: { stream: out }
  blocks:
    mode: streaming
    inputs: [load.events]
    sql: SELECT block_forever(n) AS n FROM load.events
    output: { stream: out }
";

async fn apply(node: &Node, root: &std::path::Path) -> anyhow::Result<()> {
    let loaded = headwater_domains::load_dir(root)
        .map_err(|e| anyhow::anyhow!("manifests do not load: {e:?}"))?;
    let specs: Vec<_> = loaded.iter().map(|d| d.spec()).collect();
    for outcome in node.domains.apply(&specs, &Actor::Node("test")).await {
        anyhow::ensure!(
            outcome.errors.is_empty(),
            "apply refused: {:?}",
            outcome.errors
        );
    }
    Ok(())
}

/// Registers the three broken functions: each passes its input through, after misbehaving.
fn register_broken_functions(node: &Node) {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let functions = node.pipelines.engine().functions();
    let through = |name: &str, f: fn(usize)| {
        create_udf(
            name,
            vec![DataType::Int64],
            DataType::Int64,
            Volatility::Volatile,
            Arc::new(move |args: &[ColumnarValue]| {
                let rows = match &args[0] {
                    ColumnarValue::Array(a) => a.len(),
                    ColumnarValue::Scalar(_) => 1,
                };
                f(rows);
                Ok(args[0].clone())
            }),
        )
    };
    functions.add(through("panic_every_100th", |rows| {
        let before = SEEN.fetch_add(rows as u64, Ordering::SeqCst);
        if (before + rows as u64) / 100 > before / 100 {
            panic!(
                "record {} of this function: the 100th",
                before + rows as u64
            );
        }
    }));
    functions.add(through("spin_forever", |_| loop {
        std::hint::spin_loop();
    }));
    functions.add(through("block_forever", |_| loop {
        std::thread::park();
    }));
}

/// What a phase measured for the healthy pipeline and the node.
#[derive(Debug)]
struct Phase {
    produced: u64,
    copied_per_s: f64,
    lag_p95: u64,
    lag_max: u64,
    produce_p99_ms: f64,
}

fn copier_in(node: &Node) -> u64 {
    node.pipelines
        .supervisor()
        .statuses()
        .into_iter()
        .find(|s| s.name == "copier")
        .and_then(|s| match s.state {
            State::Streaming { records_in, .. } => Some(records_in),
            _ => None,
        })
        .unwrap_or(0)
}

/// Produces `rate` records/s for `secs` seconds through the Kafka front end while sampling the
/// healthy pipeline's progress.
async fn phase(
    node: &Node,
    client: &mut Client,
    sent: &mut u64,
    rate: u64,
    secs: u64,
) -> anyhow::Result<Phase> {
    let start_in = copier_in(node);
    let started = Instant::now();
    let tick = Duration::from_millis(50);
    let per_tick = (rate / 20).max(1);
    let mut lags = Vec::new();
    let mut produce_ms = Vec::new();
    let mut produced = 0;
    let mut next = Instant::now();
    while started.elapsed() < Duration::from_secs(secs) {
        let values: Vec<Vec<u8>> = (0..per_tick)
            .map(|i| format!("{{\"n\":{}}}", *sent + i).into_bytes())
            .collect();
        let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        let t = Instant::now();
        let (err, _) = client
            .produce("load.events", (*sent % 2) as i32, batch(&refs, None), -1)
            .await?;
        produce_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(err == 0, "produce failed with error code {err}");
        *sent += per_tick;
        produced += per_tick;
        lags.push(sent.saturating_sub(copier_in(node)));
        next += tick;
        tokio::time::sleep_until(next.into()).await;
    }
    // Let the pipeline finish what was produced before measuring its rate over the phase.
    let deadline = Instant::now() + Duration::from_secs(20);
    while copier_in(node) < *sent && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let copied = copier_in(node) - start_in;
    lags.sort_unstable();
    produce_ms.sort_by(f64::total_cmp);
    Ok(Phase {
        produced,
        copied_per_s: copied as f64 / started.elapsed().as_secs_f64(),
        lag_p95: lags[lags.len() * 95 / 100],
        lag_max: *lags.last().unwrap_or(&0),
        produce_p99_ms: produce_ms[produce_ms.len() * 99 / 100],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_pipelines_do_not_slow_a_healthy_one() -> anyhow::Result<()> {
    let node = start_node().await?;
    node.pipelines
        .supervisor()
        .set_stuck_after(Duration::from_secs(2));
    register_broken_functions(&node);
    let manifests = tempfile::tempdir()?;
    write_domain(manifests.path(), "load", LOAD)?;
    apply(&node, manifests.path()).await?;
    let mut client = Client::connect(node.addr).await?;
    let mut sent = 0;
    let rate = 4_000;
    // Warm up until the healthy pipeline streams.
    phase(&node, &mut client, &mut sent, rate, 2).await?;
    let base = phase(&node, &mut client, &mut sent, rate, 8).await?;
    let deployed = |node: &Node| {
        node.pipelines
            .supervisor()
            .statuses()
            .into_iter()
            .find(|s| s.name == "copier")
            .map(|s| s.deployed_at_ms)
    };
    let copier_deployed = deployed(&node);

    write_domain(manifests.path(), "chaos", CHAOS)?;
    apply(&node, manifests.path()).await?;
    let broken = phase(&node, &mut client, &mut sent, rate, 8).await?;

    for (name, p) in [
        ("without broken pipelines", &base),
        ("with broken pipelines", &broken),
    ] {
        eprintln!(
            "{name}: produced {} records, healthy pipeline {:.0} records/s, lag p95 {} max {} records, produce p99 {:.2} ms",
            p.produced, p.copied_per_s, p.lag_p95, p.lag_max, p.produce_p99_ms
        );
    }
    let ratio = broken.copied_per_s / base.copied_per_s;
    eprintln!("healthy pipeline throughput ratio: {ratio:.3}");
    assert!(
        ratio >= 0.9,
        "throughput fell to {ratio:.3} of the run without broken pipelines"
    );
    assert!(
        broken.lag_p95 as f64 <= base.lag_p95 as f64 * 1.1 + (rate / 20) as f64,
        "lag p95 rose from {} to {} records",
        base.lag_p95,
        broken.lag_p95
    );
    assert_eq!(broken.produced, base.produced, "the producer kept its pace");
    assert_eq!(
        deployed(&node),
        copier_deployed,
        "the healthy pipeline was not restarted"
    );

    // The node still fetches: the healthy pipeline's output is all there.
    let copied = client.consume_all("load.copy", 0, 0).await?.len()
        + client.consume_all("load.copy", 1, 0).await?.len();
    assert_eq!(copied as u64, sent);

    let states: std::collections::BTreeMap<String, State> = node
        .pipelines
        .supervisor()
        .statuses()
        .into_iter()
        .map(|s| (s.name, s.state))
        .collect();
    eprintln!("broken pipelines: {states:#?}");
    assert!(
        matches!(&states["panics"], State::BackingOff { error, .. } if error.contains("panicked")),
        "{:?}",
        states["panics"]
    );
    assert!(
        matches!(states["spins"], State::Stuck { .. }),
        "{:?}",
        states["spins"]
    );
    assert!(
        matches!(states["blocks"], State::Stuck { .. }),
        "{:?}",
        states["blocks"]
    );
    Ok(())
}
