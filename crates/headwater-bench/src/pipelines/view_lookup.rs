//! `view-lookup`: feature view lookups over HTTP vs Redis GET of the same answers, closed-loop
//! from several connections, in alternating rounds.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use headwater_test_support::{connect, Http, NodeProcess};
use serde_json::json;

use super::redis::{start_redis, Redis};
use super::{percentile, produce_settled, runtime, wait_for_view};

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

pub(crate) fn view_lookup(
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
