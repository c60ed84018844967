//! Talking to a running node's HTTP API from the CLI.

use anyhow::Context;
use serde_json::Value;

pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// `Authorization: Bearer $HEADWATER_TOKEN` when the variable is set: a node with an `[auth]`
/// config answers 401 without it.
pub(crate) fn signed<B>(req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
    match std::env::var("HEADWATER_TOKEN") {
        Ok(token) if !token.is_empty() => req.header("authorization", format!("Bearer {token}")),
        _ => req,
    }
}

fn unreachable(url: &str) -> String {
    format!("cannot reach the node at {url}; start it with `headwater serve` or pass --url")
}

/// POSTs `body` to `url` + `path` and returns the JSON answer; a non-2xx answer is an error
/// carrying the node's message.
pub(crate) fn post(
    url: &str,
    path: &str,
    content_type: &str,
    body: String,
) -> anyhow::Result<Value> {
    let full = format!("{}{path}", url.trim_end_matches('/'));
    let mut resp = signed(agent().post(&full))
        .header("content-type", content_type)
        .send(body)
        .with_context(|| unreachable(url))?;
    let status = resp.status();
    let text = resp
        .body_mut()
        .read_to_string()
        .context("reading the node's answer")?;
    let json: Option<Value> = serde_json::from_str(&text).ok();
    if !status.is_success() {
        let message = json
            .as_ref()
            .and_then(|j| j.get("error").or_else(|| j.get("message")))
            .and_then(|m| m.as_str())
            .map(String::from)
            .unwrap_or(text);
        anyhow::bail!("the node answered {status}: {message}");
    }
    json.with_context(|| format!("the node's answer is not JSON: {text}"))
}

/// GETs `url` + `path` and returns the JSON answer, whatever its status.
pub(crate) fn get_json(url: &str, path: &str) -> anyhow::Result<Value> {
    let full = format!("{}{path}", url.trim_end_matches('/'));
    let text = signed(agent().get(&full))
        .call()
        .with_context(|| unreachable(url))?
        .body_mut()
        .read_to_string()?;
    serde_json::from_str(&text).with_context(|| format!("the node's answer is not JSON: {text}"))
}

/// [`get_json`], with an answer carrying `error` (the node's refusal) turned into an error.
pub(crate) fn get_answer(url: &str, path: &str) -> anyhow::Result<Value> {
    let answer = get_json(url, path)?;
    if let Some(e) = answer.get("error").and_then(Value::as_str) {
        anyhow::bail!("{e}");
    }
    Ok(answer)
}

/// Opens a GET whose body is read as it arrives (server-sent events).
pub(crate) fn stream(url: &str, path: &str) -> anyhow::Result<ureq::Body> {
    let full = format!("{}{path}", url.trim_end_matches('/'));
    let mut resp = signed(agent().get(&full))
        .header("accept", "text/event-stream")
        .call()
        .with_context(|| unreachable(url))?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|j| j["error"].as_str().map(String::from))
            .unwrap_or(text);
        anyhow::bail!("the node answered {status}: {message}");
    }
    Ok(resp.into_body())
}

/// What to do after one server-sent event.
pub(crate) enum Next<T> {
    /// Read the next event.
    More,
    /// Stop reading, with this result.
    Done(T),
}

/// Reads server-sent events (`event:` and `data:` lines, a blank line ending each) from
/// `reader` and hands each to `on` as (type, data) until it says `Done`; `None` when the stream
/// ended first. `what` names the stream in errors.
pub(crate) fn sse_events<T>(
    reader: impl std::io::BufRead,
    what: &str,
    mut on: impl FnMut(&str, &str) -> anyhow::Result<Next<T>>,
) -> anyhow::Result<Option<T>> {
    let (mut kind, mut data) = (String::new(), String::new());
    for line in reader.lines() {
        let line = line.with_context(|| format!("reading {what}"))?;
        if let Some(rest) = line.strip_prefix("event:") {
            kind = rest.trim().to_string();
        } else if let Some(rest) = line.strip_prefix("data:") {
            data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
        } else if line.is_empty() && !(kind.is_empty() && data.is_empty()) {
            if let Next::Done(result) = on(&kind, &data)? {
                return Ok(Some(result));
            }
            kind.clear();
            data.clear();
        }
    }
    Ok(None)
}

/// Writes a command's whole output to stdout; a reader that went away (`| head`) is not an
/// error.
pub(crate) fn print(
    text: &str,
    code: std::process::ExitCode,
) -> anyhow::Result<std::process::ExitCode> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(code),
    }
}

/// Percent-encodes a query value.
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
