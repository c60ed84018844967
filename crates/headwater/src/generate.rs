//! `headwater generate`: realistic events for the example domains, published through the
//! node's HTTP API like any producer's (so contracts and quality rules apply): settled card
//! transactions, refunds of some of them, and campaign clicks by the same customers.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::node_http;

#[derive(Debug, clap::Args)]
pub(crate) struct GenerateArgs {
    /// Settled transactions to publish (refunds and clicks follow in proportion).
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Transactions per second; 0 publishes as fast as the node takes them.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Share of transactions that break a quality rule (negative amount or unknown currency),
    /// to see dead-lettering at work.
    #[arg(long, default_value_t = 0.01)]
    invalid: f64,
    /// Seed of the random generator: the same seed gives the same events.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

const CHUNK: usize = 500;
const CURRENCIES: [(&str, f64); 3] = [("EUR", 0.5), ("USD", 0.35), ("GBP", 0.15)];
const CHANNELS: [&str; 4] = ["email", "push", "web", "social"];

struct Gen {
    rng: fastrand::Rng,
    /// Event time: starts a day ago and advances a little per event.
    at_ms: i64,
}

impl Gen {
    fn timestamp(&mut self) -> String {
        self.at_ms += self.rng.i64(5..400);
        chrono_like(self.at_ms)
    }

    fn customer(&mut self) -> String {
        // A few customers buy far more than most, as in real shops.
        let n = (self.rng.f64().powi(3) * 5000.0) as u32;
        format!("c-{n:05}")
    }

    fn transaction(&mut self, i: usize, invalid: f64) -> Value {
        let mut amount = (self.rng.f64().powi(2) * 900.0 + 1.0) * 100.0;
        amount = amount.round() / 100.0;
        let pick = self.rng.f64();
        let mut currency = CURRENCIES
            .iter()
            .scan(0.0, |acc, (c, w)| {
                *acc += w;
                Some((c, *acc))
            })
            .find(|(_, acc)| pick <= *acc)
            .map(|(c, _)| *c)
            .unwrap_or("EUR");
        if self.rng.f64() < invalid {
            if self.rng.bool() {
                amount = -amount;
            } else {
                currency = "JPY";
            }
        }
        let channel = ["card_present", "online", "wallet"][self.rng.usize(0..3)];
        let country = ["FR", "DE", "GB", "US", "ES"][self.rng.usize(0..5)];
        json!({
            "transaction_id": format!("t-{i:08}"),
            "customer_id": self.customer(),
            "merchant_id": format!("m-{:04}", self.rng.u32(0..800)),
            "card_last4": format!("{:04}", self.rng.u32(0..10_000)),
            "amount": amount,
            "currency": currency,
            "channel": channel,
            "country": country,
            "settled_at": self.timestamp(),
        })
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the epoch (UTC).
pub(crate) fn chrono_like(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

fn publish(url: &str, stream: &str, events: &[Value]) -> anyhow::Result<(u64, u64)> {
    if events.is_empty() {
        return Ok((0, 0));
    }
    let (domain, name) = stream.split_once('.').unwrap_or((stream, ""));
    let body: String = events.iter().map(|e| format!("{e}\n")).collect();
    let o = node_http::post(
        url,
        &format!("/v1/streams/{domain}/{name}/events"),
        "application/x-ndjson",
        body,
    )?;
    let refused = o["refused"].as_array().map_or(0, Vec::len) as u64;
    let dead = o["dead_lettered"].as_array().map_or(0, Vec::len) as u64;
    Ok((o["published"].as_u64().unwrap_or(0), refused + dead))
}

pub(crate) fn run(args: &GenerateArgs, url: &str) -> anyhow::Result<ExitCode> {
    let now_ms = headwater_log::now_ms();
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(args.seed),
        at_ms: now_ms - 86_400_000,
    };
    let bar = indicatif::ProgressBar::new(args.count as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} transactions ({per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut totals = [(0u64, 0u64); 3];
    let mut i = 0;
    while i < args.count {
        let n = CHUNK.min(args.count - i);
        let (mut txns, mut refunds, mut clicks) = (Vec::new(), Vec::new(), Vec::new());
        for k in 0..n {
            let t = g.transaction(i + k, args.invalid);
            if g.rng.f64() < 0.03 && t["amount"].as_f64().unwrap_or(0.0) > 0.0 {
                refunds.push(json!({
                    "refund_id": format!("r-{:08}", i + k),
                    "transaction_id": t["transaction_id"],
                    "customer_id": t["customer_id"],
                    "amount_cents": ((t["amount"].as_f64().unwrap_or(1.0) * 100.0) as i64).max(1),
                    "currency": if t["currency"] == "JPY" { json!("EUR") } else { t["currency"].clone() },
                    "reason": if g.rng.bool() { json!("damaged") } else { Value::Null },
                    "issued_at": g.at_ms,
                }));
            }
            for _ in 0..g.rng.usize(0..3) {
                clicks.push(json!({
                    "campaign_id": format!("cmp-{:03}", g.rng.u32(0..40)),
                    "customer_id": t["customer_id"],
                    "channel": CHANNELS[g.rng.usize(0..CHANNELS.len())],
                    "url": "https://shop.example.com/offer",
                    "clicked_at": g.timestamp(),
                }));
            }
            txns.push(t);
        }
        for (slot, (stream, events)) in [
            ("payments.transaction_settled", &txns),
            ("payments.refund_issued", &refunds),
            ("marketing.campaign_click", &clicks),
        ]
        .into_iter()
        .enumerate()
        {
            let (ok, bad) = publish(url, stream, events)?;
            totals[slot].0 += ok;
            totals[slot].1 += bad;
        }
        i += n;
        bar.set_position(i as u64);
        if args.rate > 0 {
            let due = Duration::from_secs_f64(i as f64 / args.rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    bar.finish_and_clear();
    for (stream, (ok, bad)) in [
        "payments.transaction_settled",
        "payments.refund_issued",
        "marketing.campaign_click",
    ]
    .iter()
    .zip(totals)
    {
        println!("{stream}: {ok} published, {bad} refused or dead-lettered");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(super::chrono_like(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::chrono_like(1_795_598_100_050),
            "2026-11-25T09:15:00.050Z"
        );
        assert_eq!(
            super::chrono_like(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
