//! `headwater publish`, `headwater tail` and `headwater dlq replay`: streams for people, over the
//! node's HTTP API (`/v1/streams/...`), which validates and produces exactly as a Kafka produce.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use crate::node_http;
use crate::output::Output;

/// Lines sent per request: large enough to batch well, small enough to report early.
const CHUNK_LINES: usize = 1000;

/// `payments.transaction_settled` -> `/v1/streams/payments/transaction_settled`.
fn stream_path(stream: &str) -> anyhow::Result<String> {
    match stream.split_once('.') {
        Some((domain, name)) if !domain.is_empty() && !name.is_empty() => {
            Ok(format!("/v1/streams/{domain}/{name}"))
        }
        _ => anyhow::bail!(
            "'{stream}' is not a stream name; write DOMAIN.STREAM, e.g. payments.transaction_settled"
        ),
    }
}

fn lines_of<'a>(outcome: &'a Value, key: &str) -> impl Iterator<Item = (u64, &'a str)> {
    outcome[key].as_array().into_iter().flatten().map(|o| {
        (
            o["line"].as_u64().unwrap_or(0),
            o["error"].as_str().unwrap_or(""),
        )
    })
}

/// Reads JSON lines on stdin and publishes them; prints every refused line with its number.
pub(crate) fn publish(stream: &str, url: &str, output: Output) -> anyhow::Result<ExitCode> {
    let path = format!("{}/events", stream_path(stream)?);
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let (mut first, mut total, mut published, mut refused, mut dead) = (1usize, 0, 0, 0, 0);
    loop {
        let mut chunk = String::new();
        let mut n = 0;
        for line in lines.by_ref() {
            let line = line.context("reading stdin")?;
            chunk.push_str(&line);
            chunk.push('\n');
            n += 1;
            if n == CHUNK_LINES {
                break;
            }
        }
        if n == 0 {
            break;
        }
        let outcome = node_http::post(
            url,
            &format!("{path}?first_line={first}"),
            "application/x-ndjson",
            chunk,
        )?;
        let dlq = outcome["dead_letter_stream"].as_str().unwrap_or("");
        let dead_to = format!("dead-lettered to {dlq}");
        let mut report: Vec<(u64, &str, &str)> = lines_of(&outcome, "refused")
            .map(|(line, error)| (line, "refused", error))
            .collect();
        refused += report.len();
        let dead_lines: Vec<_> = lines_of(&outcome, "dead_lettered")
            .map(|(line, error)| (line, dead_to.as_str(), error))
            .collect();
        dead += dead_lines.len();
        report.extend(dead_lines);
        report.sort_by_key(|r| r.0);
        for (line, what, error) in report {
            eprintln!("line {line}: {what}: {error}");
        }
        published += outcome["published"].as_u64().unwrap_or(0);
        total += n;
        first += n;
    }
    match output {
        Output::Text => eprintln!(
            "published {published} event(s) to {stream} from {total} line(s); {refused} refused, {dead} dead-lettered"
        ),
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "stream": stream,
                "lines": total,
                "published": published,
                "refused": refused,
                "dead_lettered": dead,
            })
        ),
    }
    Ok(if refused + dead > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Debug, clap::Args)]
pub(crate) struct TailArgs {
    /// DOMAIN.STREAM, e.g. payments.transaction_settled (its dead letters: ...transaction_settled.dlq)
    stream: String,
    /// Where to start in each partition: earliest, latest or an offset.
    #[arg(long, default_value = "latest")]
    from: String,
    /// Resume from this consumer group's committed offsets and commit as events are printed.
    #[arg(long)]
    group: Option<String>,
    /// Only events with this key.
    #[arg(long)]
    key: Option<String>,
    /// Print partition, offset, timestamp, key and headers with each value.
    #[arg(long)]
    meta: bool,
    /// Stop after this many events.
    #[arg(long)]
    count: Option<usize>,
    /// Stop at the end of the stream instead of waiting for new events.
    #[arg(long)]
    no_follow: bool,
}

fn query(args: &TailArgs) -> String {
    let mut q = vec![format!("from={}", node_http::encode(&args.from))];
    if let Some(g) = &args.group {
        q.push(format!("group={}", node_http::encode(g)));
    }
    if let Some(k) = &args.key {
        q.push(format!("key={}", node_http::encode(k)));
    }
    if let Some(n) = args.count {
        q.push(format!("limit={n}"));
    }
    if args.no_follow {
        q.push("follow=false".into());
    }
    q.join("&")
}

/// Prints a stream's events as JSON lines (values decoded from Avro or JSON).
pub(crate) fn tail(args: &TailArgs, url: &str) -> anyhow::Result<ExitCode> {
    let path = format!("{}/events?{}", stream_path(&args.stream)?, query(args));
    let body = node_http::stream(url, &path)?;
    let reader = std::io::BufReader::new(body.into_reader());
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    node_http::sse_events(reader, "events from the node", |kind, data| {
        if kind == "error" {
            anyhow::bail!("{data}");
        }
        let shown = if args.meta {
            data.to_string()
        } else {
            let event: Value = serde_json::from_str(data)
                .with_context(|| format!("the node sent an event that is not JSON: {data}"))?;
            event["value"].to_string()
        };
        Ok(match writeln!(out, "{shown}").and_then(|_| out.flush()) {
            // The reader went away (`| head`): that is a normal end.
            Err(_) => node_http::Next::Done(()),
            Ok(()) => node_http::Next::More,
        })
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Re-submits a stream's dead letters; prints what is still invalid.
pub(crate) fn replay(
    stream: &str,
    from: Option<i64>,
    url: &str,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let mut path = format!("{}/dlq/replay", stream_path(stream)?);
    if let Some(f) = from {
        path.push_str(&format!("?from={f}"));
    }
    let o = node_http::post(url, &path, "application/json", String::new())?;
    let dlq = o["dead_letter_stream"].as_str().unwrap_or("?");
    let still: Vec<&Value> = o["still_invalid"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let code = if still.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    if output == Output::Json {
        println!("{o}");
        return Ok(code);
    }
    println!(
        "replayed {} dead letter(s) of {dlq} (offsets {}..{}) to {stream}; {} still invalid",
        o["replayed"],
        o["from"],
        o["to"],
        still.len()
    );
    for s in &still {
        println!(
            "  offset {}: {} (dead-lettered again)",
            s["offset"],
            s["error"].as_str().unwrap_or("")
        );
    }
    Ok(code)
}
