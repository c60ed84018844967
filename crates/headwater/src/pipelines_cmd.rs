//! `headwater sql`, `headwater run` and `headwater pipelines`: queries and pipelines on a node.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use crate::node_http;
use crate::output::{Output, SqlOutput};

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Runs SQL over the node's streams and tables and prints the result.
pub(crate) fn sql(query: &str, format: SqlOutput, url: &str) -> anyhow::Result<ExitCode> {
    let answer = node_http::post(url, "/v1/sql", "text/plain", query.to_string())?;
    let columns: Vec<String> = answer["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["name"].as_str().unwrap_or("").to_string())
        .collect();
    let rows: Vec<&Vec<Value>> = answer["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        SqlOutput::Text => {
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::ASCII_MARKDOWN);
            table.set_header(&columns);
            for r in &rows {
                table.add_row(r.iter().map(cell).collect::<Vec<_>>());
            }
            writeln!(out, "{table}")?;
            writeln!(
                out,
                "({} row{})",
                rows.len(),
                if rows.len() == 1 { "" } else { "s" }
            )?;
        }
        SqlOutput::Csv => {
            let header: Vec<String> = columns.iter().map(|c| csv_field(c)).collect();
            writeln!(out, "{}", header.join(","))?;
            for r in &rows {
                let line: Vec<String> = r.iter().map(|v| csv_field(&cell(v))).collect();
                writeln!(out, "{}", line.join(","))?;
            }
        }
        SqlOutput::Json => {
            for r in &rows {
                let obj: serde_json::Map<String, Value> =
                    columns.iter().cloned().zip(r.iter().cloned()).collect();
                writeln!(out, "{}", Value::Object(obj))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `finance.daily_settlement_totals` -> `/v1/pipelines/finance/daily_settlement_totals`.
fn pipeline_path(pipeline: &str) -> anyhow::Result<String> {
    match pipeline.split_once('.') {
        Some((d, n)) if !d.is_empty() && !n.is_empty() => Ok(format!("/v1/pipelines/{d}/{n}")),
        _ => anyhow::bail!(
            "'{pipeline}' is not a pipeline name; write DOMAIN.PIPELINE, e.g. finance.daily_settlement_totals"
        ),
    }
}

/// Runs a batch pipeline now, with a progress bar, and prints what it wrote.
pub(crate) fn run(pipeline: &str, url: &str, output: Output) -> anyhow::Result<ExitCode> {
    let path = format!("{}/run", pipeline_path(pipeline)?);
    follow_progress(pipeline, &path, url, output, |r| {
        format!(
            "{pipeline}: wrote {} row(s) to table {} from {} input record(s) in {} ms",
            r["rows"],
            r["table"].as_str().unwrap_or("?"),
            r["records"],
            r["elapsed_ms"]
        )
    })
}

/// Rebuilds a table or view from its inputs, with a progress bar.
pub(crate) fn rebuild(name: &str, url: &str, output: Output) -> anyhow::Result<ExitCode> {
    let path = pipeline_path(name)?.replace("/v1/pipelines/", "/v1/rebuild/");
    follow_progress(name, &path, url, output, |r| {
        format!(
            "{name}: rebuilt {} from {} input record(s) by {} in {} ms ({} row(s) or keys)",
            r["table"].as_str().unwrap_or("?"),
            r["records"],
            r["pipeline"].as_str().unwrap_or("?"),
            r["elapsed_ms"],
            r["rows"],
        )
    })
}

/// POSTs to a progress endpoint and draws its `progress` events as a bar until `done`; then
/// prints the run's report (as `done` words it, or as JSON).
fn follow_progress(
    what: &str,
    path: &str,
    url: &str,
    output: Output,
    done: impl Fn(&Value) -> String,
) -> anyhow::Result<ExitCode> {
    let pipeline = what;
    let full = format!("{}{path}", url.trim_end_matches('/'));
    let mut resp = node_http::signed(node_http::agent().post(&full))
        .header("accept", "text/event-stream")
        .send("")
        .with_context(|| {
            format!("cannot reach the node at {url}; start it with `headwater serve` or pass --url")
        })?;
    if !resp.status().is_success() {
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        anyhow::bail!("the node answered {}: {text}", resp.status());
    }
    let reader = std::io::BufReader::new(resp.into_body().into_reader());
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:10} [{bar:40}] {pos}/{len} records ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message("loading");
    let finished = node_http::sse_events(reader, "the run's progress", |kind, data| {
        match kind {
            "progress" => {
                let p: Value = serde_json::from_str(data).unwrap_or_default();
                match p["phase"].as_str() {
                    Some("loading") => {
                        bar.set_length(p["total"].as_u64().unwrap_or(0));
                        bar.set_position(p["records"].as_u64().unwrap_or(0));
                    }
                    Some(phase) => bar.set_message(phase.to_string()),
                    None => {}
                }
            }
            "done" => {
                bar.finish_and_clear();
                let r: Value = serde_json::from_str(data).unwrap_or_default();
                match output {
                    Output::Text => println!("{}", done(&r)),
                    Output::Json => println!("{r}"),
                }
                return Ok(node_http::Next::Done(()));
            }
            "error" => {
                bar.abandon();
                anyhow::bail!("{pipeline} failed: {data}");
            }
            _ => {}
        }
        Ok(node_http::Next::More)
    })?;
    if finished.is_none() {
        bar.abandon();
        anyhow::bail!("the node closed the connection before {pipeline} finished");
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the features of `keys` in `view` (DOMAIN.VIEW), one JSON line per key; exits 1 if
/// any key has no events.
pub(crate) fn view_get(view: &str, keys: &[String], url: &str) -> anyhow::Result<ExitCode> {
    let path = pipeline_path(view)?.replace("/v1/pipelines/", "/v1/views/");
    let answer = node_http::post(
        url,
        &path,
        "application/json",
        serde_json::json!({ "keys": keys }).to_string(),
    )?;
    let mut missing = 0;
    for (key, row) in keys
        .iter()
        .zip(answer["results"].as_array().into_iter().flatten())
    {
        if row.is_null() {
            eprintln!("{view}: no events for key '{key}'");
            missing += 1;
        } else {
            println!("{row}");
        }
    }
    Ok(if missing == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Lists served views.
pub(crate) fn view_list(url: &str, output: Output) -> anyhow::Result<ExitCode> {
    let list = node_http::get_json(url, "/v1/views")?;
    if output == Output::Json {
        println!("{list}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::ASCII_MARKDOWN);
    table.set_header(["view", "pipeline", "key", "features", "keys"]);
    for v in list.as_array().into_iter().flatten() {
        let features: Vec<String> = v["features"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                let window = f["window_ms"]
                    .as_u64()
                    .map(|w| format!(" over {}", human_ms(w)))
                    .unwrap_or_default();
                match f["of"].as_str() {
                    Some(of) => format!("{}={}({of}){window}", cell(&f["name"]), cell(&f["agg"])),
                    None => format!("{}={}{window}", cell(&f["name"]), cell(&f["agg"])),
                }
            })
            .collect();
        table.add_row(vec![
            format!("{}.{}", cell(&v["domain"]), cell(&v["view"])),
            cell(&v["pipeline"]),
            cell(&v["key"]),
            features.join(", "),
            cell(&v["keys"]),
        ]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}

fn human_ms(ms: u64) -> String {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// A pipeline's state in words, with what the state carries.
fn state_text(p: &Value) -> String {
    match p["state"].as_str().unwrap_or("?") {
        "backing_off" => format!(
            "backing off (attempt {}): {}",
            p["attempt"],
            p["error"].as_str().unwrap_or("")
        ),
        "stopped" => format!("stopped: {}", p["reason"].as_str().unwrap_or("")),
        "stuck" => format!("stuck: {}", p["reason"].as_str().unwrap_or("")),
        "streaming" => {
            let late = match p["late_dropped"].as_u64() {
                Some(n) if n > 0 => format!(", {n} late dropped"),
                _ => String::new(),
            };
            format!(
                "streaming ({} in, {} out{late})",
                p["records_in"], p["records_out"]
            )
        }
        other => other.to_string(),
    }
}

/// Lists every deployed pipeline with its state.
pub(crate) fn list(url: &str, output: Output) -> anyhow::Result<ExitCode> {
    let answer = node_http::get_answer(url, "/v1/pipelines")?;
    if output == Output::Json {
        println!("{answer}");
        return Ok(ExitCode::SUCCESS);
    }
    let list: Vec<Value> = answer.as_array().cloned().unwrap_or_default();
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::ASCII_MARKDOWN);
    table.set_header([
        "pipeline",
        "mode",
        "state",
        "last run",
        "failures",
        "last error",
    ]);
    for p in &list {
        let state = state_text(p);
        let last = match &p["last_run"] {
            Value::Null => "never".to_string(),
            r => format!("{} rows from {} records", r["rows"], r["records"]),
        };
        table.add_row(vec![
            format!("{}.{}", cell(&p["domain"]), cell(&p["name"])),
            cell(&p["mode"]),
            state,
            last,
            cell(&p["failures"]),
            cell(&p["last_error"]),
        ]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}

/// Per domain: each stream's end, freshness and subscribers with their lag; then pipelines.
pub(crate) fn status(url: &str, output: Output) -> anyhow::Result<ExitCode> {
    let streams = node_http::get_json(url, "/v1/status")?;
    let pipelines = node_http::get_json(url, "/v1/pipelines")?;
    if output == Output::Json {
        println!(
            "{}",
            serde_json::json!({"streams": streams, "pipelines": pipelines})
        );
        return Ok(ExitCode::SUCCESS);
    }
    let now = headwater_log::now_ms();
    let mut breaches = Vec::new();
    let mut domain = String::new();
    for s in streams.as_array().into_iter().flatten() {
        let d = cell(&s["domain"]);
        if d != domain {
            println!("{d}");
            domain = d;
        }
        let end: i64 = s["end_offsets"]
            .as_object()
            .map(|o| o.values().filter_map(Value::as_i64).sum())
            .unwrap_or(0);
        let newest = match s["newest_ms"].as_i64() {
            Some(ms) => format!("newest {:.1} s ago", (now - ms).max(0) as f64 / 1000.0),
            None => "empty".into(),
        };
        let fresh = match (s["fresh"].as_bool(), s["freshness_ms"].as_i64()) {
            (Some(true), Some(f)) => format!(", fresh (SLA {} s)", f / 1000),
            (Some(false), Some(f)) => {
                breaches.push(cell(&s["stream"]));
                format!(", LATE: freshness SLA {} s breached", f / 1000)
            }
            _ => String::new(),
        };
        println!(
            "  {}: end offset {end}, {newest}{fresh}",
            cell(&s["stream"])
        );
        for sub in s["subscribers"].as_array().into_iter().flatten() {
            println!(
                "    {} {}: lag {} records, {:.1} s",
                cell(&sub["kind"]),
                cell(&sub["name"]),
                sub["lag_records"],
                sub["lag_seconds"].as_f64().unwrap_or(0.0)
            );
        }
    }
    println!("pipelines");
    for p in pipelines.as_array().into_iter().flatten() {
        println!(
            "  {}.{}: {} pipeline, {}, failures {}",
            cell(&p["domain"]),
            cell(&p["name"]),
            cell(&p["mode"]),
            state_text(p),
            p["failures"]
        );
    }
    if !breaches.is_empty() {
        println!("freshness breaches: {}", breaches.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
