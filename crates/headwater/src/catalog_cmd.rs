//! `headwater catalog [QUERY]`.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde_json::Value;

use crate::node_http;
use crate::output::Output;

/// Prints every domain with its streams, fields and pipelines; with a query, what matches it.
pub(crate) fn catalog(query: Option<&str>, output: Output, url: &str) -> anyhow::Result<ExitCode> {
    let path = match query {
        Some(q) => format!("/v1/catalog?q={}", node_http::encode(q)),
        None => "/v1/catalog".to_string(),
    };
    let answer = node_http::get_answer(url, &path)?;
    let mut out = String::new();
    if output == Output::Json {
        let _ = writeln!(out, "{answer}");
        return crate::node_http::print(&out, ExitCode::SUCCESS);
    }
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let list = |v: &Value| {
        v.as_array()
            .map(|a| a.iter().map(text).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    if let Some(matches) = answer.get("matches").and_then(Value::as_array) {
        if matches.is_empty() {
            let _ = writeln!(
                out,
                "nothing in the catalog matches '{}'",
                query.unwrap_or_default()
            );
            return crate::node_http::print(&out, ExitCode::from(1));
        }
        for m in matches {
            let _ = writeln!(
                out,
                "{:<9} {:<48} {}",
                text(&m["kind"]),
                text(&m["name"]),
                text(&m["why"])
            );
        }
        return crate::node_http::print(&out, ExitCode::SUCCESS);
    }
    for d in answer["domains"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{}  ({})  {}",
            text(&d["domain"]),
            text(&d["governance"]),
            text(&d["description"])
        );
        let _ = writeln!(
            out,
            "  owners: {}   stewards: {}",
            list(&d["owners"]),
            list(&d["stewards"])
        );
        for s in d["streams"].as_array().into_iter().flatten() {
            let versions = s["versions"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  stream {}  {} v{}  {}  readers: {}",
                text(&s["stream"]),
                text(&s["format"]),
                versions,
                text(&s["compatibility"]),
                list(&s["readers"])
            );
            let fields: Vec<String> = s["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| match f["classification"].as_str() {
                    Some(c) => format!("{} {} [{c}]", text(&f["name"]), text(&f["type"])),
                    None => format!("{} {}", text(&f["name"]), text(&f["type"])),
                })
                .collect();
            let _ = writeln!(out, "    fields: {}", fields.join(", "));
            let _ = writeln!(
                out,
                "    producers seen: {}   consumers seen: {}",
                or_none(list(&s["producers_seen"])),
                or_none(list(&s["consumers_seen"]))
            );
        }
        for p in d["pipelines"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "  pipeline {} ({}): {} -> {} {}",
                text(&p["pipeline"]),
                text(&p["mode"]),
                list(&p["inputs"]),
                text(&p["output_kind"]),
                text(&p["output"])
            );
        }
    }
    crate::node_http::print(&out, ExitCode::SUCCESS)
}

fn or_none(s: String) -> String {
    if s.is_empty() {
        "none".into()
    } else {
        s
    }
}
