//! Checks of a pipeline declaration that need no node: its output names one target, its
//! schedule parses, its view features are complete, and its inputs may be read by its domain.

use std::str::FromStr;

use crate::manifest::{Aggregation, FeatureSpec, OutputSpec, PipelineMode, PipelineSpec};
use crate::OutputError;

/// A pipeline's one output.
#[derive(Debug, Clone, PartialEq)]
pub enum Output<'a> {
    /// A stream of the pipeline's domain, by its name under `streams`.
    Stream(&'a str),
    /// A Parquet table of the domain.
    Table {
        /// The table's name; SQL reads it as `<domain>.<name>`.
        name: &'a str,
        /// Columns that become hive partition directories.
        partition_by: &'a [String],
    },
    /// A keyed feature view, served over HTTP.
    View {
        /// The view's name.
        name: &'a str,
        /// The record field that keys it.
        key: &'a str,
        /// Feature name -> aggregation.
        features: &'a std::collections::BTreeMap<String, FeatureSpec>,
    },
}

impl Output<'_> {
    /// What a table or a view is (`table`, `view`) and its name, which becomes a directory or
    /// a file under the node's data dir; `None` for a stream, named under `streams`.
    pub fn stored_as(&self) -> Option<(&'static str, &str)> {
        match self {
            Output::Table { name, .. } => Some(("table", name)),
            Output::View { name, .. } => Some(("view", name)),
            Output::Stream(_) => None,
        }
    }
}

impl OutputSpec {
    /// The one target this output names, or why it does not name exactly one.
    pub fn target(&self) -> Result<Output<'_>, OutputError> {
        match (&self.stream, &self.table, &self.view) {
            (Some(s), None, None) => Ok(Output::Stream(s)),
            (None, Some(t), None) => Ok(Output::Table {
                name: t,
                partition_by: &self.partition_by,
            }),
            (None, None, Some(v)) => match &self.key {
                Some(key) => Ok(Output::View {
                    name: v,
                    key,
                    features: &self.features,
                }),
                None => Err(OutputError::ViewWithoutKey { view: v.clone() }),
            },
            (None, None, None) => Err(OutputError::NoTarget),
            _ => Err(OutputError::SeveralTargets),
        }
    }
}

/// One problem: the key path inside the pipeline where it is, what is wrong, the fix.
pub(crate) type Problem = (&'static str, String, String);

/// Checks a pipeline on its own (not its inputs).
pub(crate) fn check(spec: &PipelineSpec, own_streams: &[&str]) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(schedule) = &spec.schedule {
        if spec.mode != PipelineMode::Batch {
            out.push((
                "schedule",
                "only batch pipelines have a schedule; a streaming pipeline runs continuously"
                    .to_string(),
                "remove `schedule`, or set `mode: batch`".to_string(),
            ));
        } else if let Err(e) = croner::Cron::from_str(schedule) {
            out.push((
                "schedule",
                format!("schedule '{schedule}' is not a cron expression: {e}"),
                "write minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\" for 02:00 UTC daily".to_string(),
            ));
        }
    }
    if spec.inputs.is_empty() {
        out.push((
            "inputs",
            "the pipeline has no inputs".to_string(),
            "list the streams it reads, as <domain>.<stream>".to_string(),
        ));
    }
    let target = match spec.output.target() {
        Ok(t) => t,
        Err(e) => {
            out.push(("output", e.to_string(), "see docs/pipelines.md".to_string()));
            return out;
        }
    };
    if let Some((kind, name)) = target.stored_as() {
        if let Err(why) = crate::names::check_name(name) {
            out.push((
                "output",
                format!("{kind} name '{name}' is not valid: {why}"),
                format!(
                    "rename the {kind}; its name becomes a directory under the node's data dir"
                ),
            ));
        }
    }
    match (&target, spec.mode) {
        (Output::Table { .. }, PipelineMode::Batch)
        | (Output::Stream(_) | Output::View { .. }, PipelineMode::Streaming) => {}
        (Output::Table { .. }, PipelineMode::Streaming) => out.push((
            "output",
            "a table is written by a batch pipeline".to_string(),
            "set `mode: batch` (with a schedule, or run it with `headwater run`)".to_string(),
        )),
        (_, PipelineMode::Batch) => out.push((
            "output",
            "a batch pipeline writes a table".to_string(),
            "write `output: { table: <name> }`, or set `mode: streaming` for a stream or a view"
                .to_string(),
        )),
    }
    if let Some(w) = &spec.window {
        let fix_mode = "windows group a streaming pipeline's records; remove `window` or set `mode: streaming`";
        if spec.mode != PipelineMode::Streaming {
            out.push((
                "window",
                "a batch pipeline has no windows".to_string(),
                fix_mode.to_string(),
            ));
        } else if !matches!(target, Output::Stream(_)) {
            out.push((
                "window",
                "windows feed a stream output; a view has its own sliding windows per feature"
                    .to_string(),
                "write `output: { stream: <name> }`, or give the view's features a `window`"
                    .to_string(),
            ));
        }
        if spec.sql.is_none() {
            out.push((
                "sql",
                "a windowed pipeline needs `sql` to say what each window emits".to_string(),
                "e.g. SELECT window_start, window_end, campaign_id, count(*) AS clicks FROM marketing.ad_clicked GROUP BY 1, 2, 3".to_string(),
            ));
        }
        let hop = w.hop.unwrap_or(w.size).millis;
        if w.size.millis == 0 || hop == 0 || hop > w.size.millis || w.size.millis % hop != 0 {
            out.push((
                "window",
                format!("a window of {} ms hopping every {hop} ms does not tile event time", w.size.millis),
                "give `size` greater than zero and a `hop` that divides it (e.g. size: 10m, hop: 1m)".to_string(),
            ));
        }
    }
    if spec.mode == PipelineMode::Batch && spec.sql.is_none() {
        out.push((
            "sql",
            "a batch pipeline needs `sql`".to_string(),
            "add the query whose result becomes the table".to_string(),
        ));
    }
    match target {
        Output::Stream(s) if !own_streams.contains(&s) => out.push((
            "output",
            format!("output stream '{s}' is not a stream of this domain"),
            format!("declare '{s}' under `streams` (its contract checks what the pipeline writes)"),
        )),
        Output::View { features, .. } => {
            if features.is_empty() {
                out.push((
                    "output",
                    "the view has no features".to_string(),
                    "add `features: { name: { agg: count } }`".to_string(),
                ));
            }
            for (name, f) in features {
                if f.of.is_none() && f.agg != Aggregation::Count {
                    out.push((
                        "output",
                        format!("feature '{name}' aggregates nothing"),
                        "add `of: <field>` (only count needs none)".to_string(),
                    ));
                }
            }
        }
        _ => {}
    }
    out
}

/// Why `domain` may not read `input` whose stream admits `readers`, if it may not.
pub fn refuse_input(domain: &str, input: &str, readers: Option<&[String]>) -> Option<String> {
    let Some((owner, _)) = input.split_once('.') else {
        return Some(format!(
            "input '{input}' is not a stream name; write <domain>.<stream>"
        ));
    };
    if owner == domain {
        return None;
    }
    match readers {
        None => Some(format!("input '{input}' does not exist")),
        Some(r) if r.iter().any(|x| x == "*" || x == domain) => None,
        Some(r) => Some(format!(
            "domain '{domain}' may not read '{input}': its readers are [{}]; ask domain '{owner}' to add '{domain}' to the stream's `readers`",
            r.join(", ")
        )),
    }
}
