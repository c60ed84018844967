//! The options every client command shares: where the node is (`--url`, declared here once)
//! and how a read command prints (`--output`).

use clap::{Args, ValueEnum};

/// Where the node's HTTP API is: every command but `serve`, `auth` and `log` talks to it.
#[derive(Debug, Clone, Args)]
pub(crate) struct NodeArgs {
    /// The node's HTTP API.
    #[arg(long, env = "HEADWATER_URL", default_value = "http://127.0.0.1:8081")]
    pub url: String,
}

/// How a read command prints its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum Output {
    /// For people: lines and tables.
    #[default]
    Text,
    /// For scripts: the node's answer as JSON.
    Json,
}

/// `--output text|json`.
#[derive(Debug, Clone, Args)]
pub(crate) struct OutputArgs {
    /// How to print: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// The same as `--output json`, for scripts written before `--output`.
    #[arg(long, hide = true)]
    json: bool,
}

impl OutputArgs {
    /// The format asked for.
    pub(crate) fn get(&self) -> Output {
        if self.json {
            Output::Json
        } else {
            self.output
        }
    }
}

/// How `headwater sql` prints rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SqlOutput {
    /// A table for people, with the row count.
    #[value(alias = "table")]
    Text,
    /// A header line and one line per row.
    Csv,
    /// One JSON object per row.
    Json,
}

/// How `headwater lineage` prints the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LineageOutput {
    /// One edge per line, for people.
    Text,
    /// The node's answer: every edge as JSON.
    Json,
    /// Graphviz (`dot -Tsvg`).
    Dot,
    /// A Mermaid flowchart (Markdown renders it).
    Mermaid,
}
