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

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use headwater_test_support::{batch, Client};
use serde_json::{json, Value};

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A headwater node in its own process.
pub struct NodeProcess {
    child: Child,
    pub kafka: SocketAddr,
    pub http: SocketAddr,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeProcess {
    pub fn start(bin: &Path, data: &Path, domains: Option<&Path>) -> anyhow::Result<Self> {
        let kafka: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data)
            .arg("--kafka-addr")
            .arg(kafka.to_string())
            .arg("--http-addr")
            .arg(http.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(d) = domains {
            cmd.arg("--domains").arg(d);
        }
        let child = cmd.spawn().with_context(|| {
            format!(
                "starting {}; build it with `cargo build --release -p headwater`",
                bin.display()
            )
        })?;
        let node = NodeProcess { child, kafka, http };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(http).is_err() || TcpStream::connect(kafka).is_err() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the node did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(node)
    }
}

/// A keep-alive HTTP/1.1 connection, enough for small JSON answers with a Content-Length.
/// A client connection with Nagle off: every benchmark client sends small requests and waits.
fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    Ok(s)
}

pub struct Http {
    stream: BufReader<TcpStream>,
}

impl Http {
    pub fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Http {
            stream: BufReader::new(connect(addr)?),
        })
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> anyhow::Result<(u16, String)> {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.get_mut().write_all(req.as_bytes())?;
        let mut line = String::new();
        self.stream.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut length = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse()?;
                }
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body)?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    pub fn json(&mut self, method: &str, path: &str, body: &str) -> anyhow::Result<Value> {
        let (status, text) = self.request(method, path, body)?;
        anyhow::ensure!(status < 300, "{method} {path}: {status} {text}");
        Ok(serde_json::from_str(&text)?)
    }
}

/// A Redis connection speaking RESP.
struct Redis {
    stream: BufReader<TcpStream>,
}

impl Redis {
    fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Redis {
            stream: BufReader::new(connect(addr)?),
        })
    }

    fn command(&mut self, args: &[&[u8]]) -> anyhow::Result<Vec<u8>> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        self.stream.get_mut().write_all(&req)?;
        let mut line = String::new();
        self.stream.read_line(&mut line)?;
        match line.as_bytes().first() {
            Some(b'$') => {
                let n: i64 = line[1..].trim().parse()?;
                if n < 0 {
                    return Ok(Vec::new());
                }
                let mut v = vec![0; n as usize + 2];
                self.stream.read_exact(&mut v)?;
                v.truncate(n as usize);
                Ok(v)
            }
            Some(b'+' | b':') => Ok(line.into_bytes()),
            _ => anyhow::bail!("redis answered {line:?}"),
        }
    }
}

/// The load generators' side of a lookup, as lean on both sides as it can be: one reused
/// request buffer, one write, the reply read from the connection's buffer without copying
/// lines. The clients share this machine's two cores with the server they measure, so a
/// heavier client on one side would take CPU from that side's server.
struct Lean {
    stream: BufReader<TcpStream>,
    request: Vec<u8>,
}

impl Lean {
    fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Lean {
            stream: BufReader::with_capacity(64 * 1024, connect(addr)?),
            request: Vec::with_capacity(256),
        })
    }

    /// Sends `request` and reads until `done` says how many bytes of the buffered reply
    /// complete it (`None`: not yet).
    fn round_trip(
        &mut self,
        done: impl Fn(&[u8]) -> anyhow::Result<Option<usize>>,
    ) -> anyhow::Result<()> {
        self.stream.get_mut().write_all(&self.request)?;
        let mut reply: Vec<u8> = Vec::new();
        loop {
            let buf = self.stream.fill_buf()?;
            anyhow::ensure!(!buf.is_empty(), "the server closed the connection");
            if reply.is_empty() {
                if let Some(n) = done(buf)? {
                    self.stream.consume(n);
                    return Ok(());
                }
            }
            // A reply split over reads: gather it (rare for answers this small).
            reply.extend_from_slice(buf);
            let n = buf.len();
            self.stream.consume(n);
            if let Some(total) = done(&reply)? {
                anyhow::ensure!(total == reply.len(), "more than one reply buffered");
                return Ok(());
            }
        }
    }

    /// `GET path` over HTTP/1.1 keep-alive; fails unless the answer is 200 with a body.
    fn http_get(&mut self, path: &str) -> anyhow::Result<()> {
        self.request.clear();
        self.request.extend_from_slice(b"GET ");
        self.request.extend_from_slice(path.as_bytes());
        self.request
            .extend_from_slice(b" HTTP/1.1\r\nhost: bench\r\n\r\n");
        self.round_trip(|b| {
            let Some(end) = b.windows(4).position(|w| w == b"\r\n\r\n") else {
                return Ok(None);
            };
            let head = &b[..end];
            anyhow::ensure!(
                head.starts_with(b"HTTP/1.1 200"),
                "lookup answered {:?}",
                String::from_utf8_lossy(head)
            );
            let length = head
                .split(|c| *c == b'\n')
                .find_map(|line| {
                    let line = std::str::from_utf8(line).ok()?;
                    let (k, v) = line.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .context("no content-length")?;
            anyhow::ensure!(length > 0, "empty answer");
            let total = end + 4 + length;
            Ok((b.len() >= total).then_some(total))
        })
    }

    /// Redis `GET key`; fails unless the key has a value.
    fn redis_get(&mut self, key: &str) -> anyhow::Result<()> {
        self.request.clear();
        self.request.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$");
        self.request
            .extend_from_slice(key.len().to_string().as_bytes());
        self.request.extend_from_slice(b"\r\n");
        self.request.extend_from_slice(key.as_bytes());
        self.request.extend_from_slice(b"\r\n");
        self.round_trip(|b| {
            let Some(end) = b.windows(2).position(|w| w == b"\r\n") else {
                return Ok(None);
            };
            anyhow::ensure!(
                b.first() == Some(&b'$'),
                "redis answered {:?}",
                String::from_utf8_lossy(&b[..end])
            );
            let n: i64 = std::str::from_utf8(&b[1..end])?.parse()?;
            anyhow::ensure!(n > 0, "redis has no such key");
            let total = end + 2 + n as usize + 2;
            Ok((b.len() >= total).then_some(total))
        })
    }
}

struct RedisProcess {
    child: Child,
    addr: SocketAddr,
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_redis() -> anyhow::Result<RedisProcess> {
    let port = free_port()?;
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .context("starting redis-server; install it with `apt-get install redis-server`")?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(RedisProcess { child, addr })
}

fn settled(i: u64, customers: u64) -> Vec<u8> {
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
async fn produce_settled(
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

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Waits until the view holds `keys` keys and every pipeline reading the stream (marketing's
/// too) has read everything produced, so no catch-up work runs while lookups are measured.
fn wait_for_view(http: &mut Http, keys: u64) -> anyhow::Result<()> {
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

/// Closed-loop load: `connections` threads each send requests back to back for `secs`;
/// returns sorted latencies in ms and requests per second.
fn load<C: Send + 'static>(
    connections: usize,
    secs: f64,
    connect: impl Fn() -> anyhow::Result<C> + Send + Sync + Clone + 'static,
    request: impl Fn(&mut C, u64) -> anyhow::Result<()> + Send + Sync + Clone + 'static,
) -> anyhow::Result<(Vec<f64>, f64)> {
    let started = Instant::now();
    let threads: Vec<_> = (0..connections)
        .map(|t| {
            let (connect, request) = (connect.clone(), request.clone());
            std::thread::spawn(move || -> anyhow::Result<Vec<f64>> {
                let mut c = connect()?;
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (t as u64 + 1);
                let mut out = Vec::new();
                let end = Instant::now() + Duration::from_secs_f64(secs);
                while Instant::now() < end {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let t0 = Instant::now();
                    request(&mut c, x)?;
                    out.push(t0.elapsed().as_secs_f64() * 1000.0);
                }
                Ok(out)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        all.extend(
            t.join()
                .map_err(|_| anyhow::anyhow!("a load thread panicked"))??,
        );
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    Ok((all, rate))
}

pub fn view_lookup(
    dir: &Path,
    bin: &Path,
    customers: u64,
    events: u64,
    connections: usize,
    (secs, rounds): (f64, usize),
) -> anyhow::Result<()> {
    let rounds = rounds.max(1);
    let tmp = tempfile::tempdir_in(dir)?;
    let node = NodeProcess::start(bin, tmp.path(), Some(Path::new("examples/domains")))?;
    runtime()?.block_on(produce_settled(node.kafka, 0, events, customers))?;
    let mut http = Http::connect(node.http)?;
    wait_for_view(&mut http, customers)?;
    let redis = start_redis()?;
    // Redis holds the same answers: each key's features as the view serves them.
    let mut r = Redis::connect(redis.addr)?;
    for chunk in (0..customers).collect::<Vec<_>>().chunks(500) {
        let keys: Vec<String> = chunk.iter().map(|i| format!("c-{i}")).collect();
        let answer = http.json(
            "POST",
            "/v1/views/ml/customer_spend",
            &json!({ "keys": keys }).to_string(),
        )?;
        for row in answer["results"].as_array().into_iter().flatten() {
            let key = row["key"].as_str().unwrap_or_default().to_string();
            r.command(&[b"SET", key.as_bytes(), row.to_string().as_bytes()])?;
        }
    }
    println!(
        "view lookup: {customers} keys from {events} events, {connections} connections, {secs} s each side in {rounds} alternating rounds, closed loop"
    );
    let http_addr = node.http;
    // Alternating rounds, pooled: drift in this shared machine's speed lands on both sides.
    let redis_addr = redis.addr;
    let (mut ours, mut theirs) = ((Vec::new(), 0.0), (Vec::new(), 0.0));
    for _ in 0..rounds {
        let (lat, rate) = load(
            connections,
            secs / rounds as f64,
            move || Lean::connect(http_addr),
            move |c: &mut Lean, x| {
                c.http_get(&format!("/v1/views/ml/customer_spend/c-{}", x % customers))
            },
        )?;
        ours.0.extend(lat);
        ours.1 += rate / rounds as f64;
        let (lat, rate) = load(
            connections,
            secs / rounds as f64,
            move || Lean::connect(redis_addr),
            move |c: &mut Lean, x| c.redis_get(&format!("c-{}", x % customers)),
        )?;
        theirs.0.extend(lat);
        theirs.1 += rate / rounds as f64;
    }
    ours.0.sort_by(f64::total_cmp);
    theirs.0.sort_by(f64::total_cmp);
    for (name, (lat, rate)) in [("headwater view (HTTP)", &ours), ("redis GET", &theirs)] {
        println!(
            "  {name:22}: p50 {:.3} ms  p99 {:.3} ms  {:.0} lookups/s",
            percentile(lat, 0.5),
            percentile(lat, 0.99),
            rate
        );
    }
    let p99 = percentile(&ours.0, 0.99);
    println!(
        "  p99 ratio              : {:.2}x redis   (goal p99 <= 1 ms and <= 1.5x redis)",
        p99 / percentile(&theirs.0, 0.99)
    );
    Ok(())
}

pub fn view_latency(dir: &Path, bin: &Path, samples: usize) -> anyhow::Result<()> {
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

pub fn stream_throughput(dir: &Path, bin: &Path, records: u64) -> anyhow::Result<()> {
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

pub fn batch_sql(
    dir: &Path,
    bin: &Path,
    rows: u64,
    python: &Path,
    rounds: usize,
) -> anyhow::Result<()> {
    use headwater_pipelines::datafusion::arrow::array::{
        ArrayRef, Float64Array, Int64Array, StringArray,
    };
    use headwater_pipelines::datafusion::arrow::record_batch::RecordBatch;
    use headwater_pipelines::datafusion::parquet::arrow::ArrowWriter;
    use std::sync::Arc;

    let tmp = tempfile::tempdir_in(dir)?;
    let data = tmp.path().join("data");
    let table = data.join("tables").join("bench").join("events");
    std::fs::create_dir_all(&table)?;
    let files = 8u64;
    let per_file = rows / files;
    let currencies = ["EUR", "USD", "GBP", "CHF", "JPY"];
    let countries = ["DE", "FR", "GB", "US", "NL", "ES", "IT", "PL"];
    for f in 0..files {
        let file = std::fs::File::create(table.join(format!("part-{f}.parquet")))?;
        let mut writer: Option<ArrowWriter<std::fs::File>> = None;
        let chunk = 1_000_000u64.min(per_file);
        let mut done = 0;
        while done < per_file {
            let k = chunk.min(per_file - done);
            let base = f * per_file + done;
            let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(
                (base..base + k).map(|i| i as i64),
            ));
            let customer: ArrayRef = Arc::new(StringArray::from_iter_values(
                (base..base + k).map(|i| format!("c-{}", i * 2_654_435_761 % 100_000)),
            ));
            let currency: ArrayRef = Arc::new(StringArray::from_iter_values(
                (base..base + k).map(|i| currencies[(i % 5) as usize]),
            ));
            let country: ArrayRef = Arc::new(StringArray::from_iter_values(
                (base..base + k).map(|i| countries[(i * 7 % 8) as usize]),
            ));
            let amount: ArrayRef = Arc::new(Float64Array::from_iter_values(
                (base..base + k).map(|i| (i * 7919 % 100_000) as f64 / 100.0),
            ));
            let b = RecordBatch::try_from_iter([
                ("transaction_id", ids),
                ("customer_id", customer),
                ("currency", currency),
                ("country", country),
                ("amount", amount),
            ])?;
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(ArrowWriter::try_new(file.try_clone()?, b.schema(), None)?),
            };
            w.write(&b)?;
            done += k;
        }
        if let Some(w) = writer {
            w.close()?;
        }
    }
    let meta = headwater_pipelines::TableMeta {
        pipeline: "bench.generated".into(),
        run: "bench".into(),
        inputs: Default::default(),
        partition_by: vec![],
        rows,
        written_at_ms: 0,
    };
    std::fs::write(
        table.join(headwater_pipelines::TABLE_META_FILE),
        serde_json::to_vec(&meta)?,
    )?;
    let node = NodeProcess::start(bin, &data, None)?;
    let query = "SELECT currency, country, count(*) AS n, sum(amount) AS total, avg(amount) AS mean, count(DISTINCT customer_id) AS customers FROM bench.events GROUP BY currency, country ORDER BY currency, country";
    let mut http = Http::connect(node.http)?;
    let mut ours = Vec::new();
    let mut our_rows = 0;
    for _ in 0..rounds {
        let t0 = Instant::now();
        let answer = http.json("POST", "/v1/sql", &json!({ "sql": query }).to_string())?;
        ours.push(t0.elapsed().as_secs_f64());
        our_rows = answer["rows"].as_array().map_or(0, Vec::len);
    }
    let duck_query = query.replace(
        "bench.events",
        &format!("read_parquet('{}/*.parquet')", table.display()),
    );
    let script = format!(
        "import duckdb, time\ncon = duckdb.connect()\nfor _ in range({rounds}):\n    t = time.perf_counter()\n    rows = con.sql({duck_query:?}).fetchall()\n    print(time.perf_counter() - t, len(rows))\n"
    );
    let out = Command::new(python)
        .arg("-c")
        .arg(&script)
        .output()
        .with_context(|| {
            format!(
                "running {}; create it with scripts/test (it installs duckdb)",
                python.display()
            )
        })?;
    anyhow::ensure!(
        out.status.success(),
        "duckdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut duck = Vec::new();
    let mut duck_rows = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut parts = line.split_whitespace();
        duck.push(parts.next().unwrap_or("nan").parse::<f64>()?);
        duck_rows = parts.next().unwrap_or("0").parse::<usize>()?;
    }
    anyhow::ensure!(
        duck_rows == our_rows,
        "duckdb gave {duck_rows} groups, headwater {our_rows}"
    );
    ours.sort_by(f64::total_cmp);
    duck.sort_by(f64::total_cmp);
    let (o, d) = (percentile(&ours, 0.5), percentile(&duck, 0.5));
    println!("batch SQL over {rows} events in {files} Parquet files ({our_rows} groups), median of {rounds}:");
    println!("  query: {query}");
    println!("  headwater sql (DataFusion, over HTTP): {o:.3} s   (all runs: {ours:.3?})");
    println!("  duckdb (python, in-process)          : {d:.3} s   (all runs: {duck:.3?})");
    println!("  ratio: {:.2}x duckdb   (goal <= 1.2x)", o / d);
    Ok(())
}
