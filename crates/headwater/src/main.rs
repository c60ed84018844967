//! The `headwater` command line: run a node, manage domains and streams on it, and read log
//! files offline.

mod audit_cmd;
mod auth_cmd;
mod catalog_cmd;
mod config;
mod domains_cmd;
mod generate;
mod lineage_cmd;
mod log_tools;
mod node_http;
mod pipelines_cmd;
mod serve;
mod streams_cmd;

/// Validation builds many small values per record; mimalloc measured 10 % faster than the
/// system allocator on it (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "headwater",
    version,
    about = "Domain-owned data pipelines on the Kafka protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node: the Kafka protocol over the embedded log.
    Serve(serve::ServeArgs),
    /// Show what applying the domain manifests in DIR would change on the node.
    Plan {
        dir: PathBuf,
        /// The node's HTTP API.
        #[arg(long, env = "HEADWATER_URL", default_value = "http://127.0.0.1:8081")]
        url: String,
    },
    /// Apply the domain manifests in DIR: only domains whose manifest changed are touched.
    Apply {
        dir: PathBuf,
        #[arg(long, env = "HEADWATER_URL", default_value = "http://127.0.0.1:8081")]
        url: String,
    },
    /// Publish JSON lines from stdin to DOMAIN.STREAM; prints each refused line and why.
    Publish {
        stream: String,
        #[arg(long, env = "HEADWATER_URL", default_value = "http://127.0.0.1:8081")]
        url: String,
    },
    /// Print a stream's events as JSON lines, decoded with their contract.
    Tail(streams_cmd::TailArgs),
    /// Dead-letter streams.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Domains, streams with their fields and classifications, pipelines, tables and views;
    /// with QUERY, what matches it by name, field or tag (`headwater catalog pii`).
    Catalog {
        query: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long, env = "HEADWATER_URL", default_value = "http://127.0.0.1:8081")]
        url: String,
    },
    /// Where NAME's data comes from (--upstream) or goes (--downstream, the default): streams,
    /// fields (<stream>.<field>), pipelines, tables, views, producers and consumer groups.
    Lineage {
        name: String,
        #[arg(long, conflicts_with = "downstream")]
        upstream: bool,
        #[arg(long)]
        downstream: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: lineage_cmd::LineageFormat,
        #[arg(long, env = "HEADWATER_URL", default_value = "http://127.0.0.1:8081")]
        url: String,
    },
    /// The audit trail: every change, who made it, and a hash chain that shows tampering.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Run SQL over streams (`payments.transaction_settled`) and tables (`finance.settlement_totals`).
    Sql {
        query: String,
        #[arg(long, value_enum, default_value = "table")]
        format: pipelines_cmd::SqlFormat,
        #[arg(long, env = "HEADWATER_URL", default_value = "http://127.0.0.1:8081")]
        url: String,
    },
    /// Run a batch pipeline now (DOMAIN.PIPELINE), with a progress bar.
    Run {
        pipeline: String,
        #[arg(long, env = "HEADWATER_URL", default_value = "http://127.0.0.1:8081")]
        url: String,
    },
    /// Rebuild a table or feature view (DOMAIN.NAME) by replaying its inputs, with a progress bar.
    Rebuild {
        name: String,
        #[arg(long, env = "HEADWATER_URL", default_value = "http://127.0.0.1:8081")]
        url: String,
    },
    /// Feature views.
    View {
        #[command(subcommand)]
        command: ViewCommand,
    },
    /// Publish realistic events to the example domains' streams (transactions, refunds, clicks).
    Generate(generate::GenerateArgs),
    /// Per domain: streams, their freshness and every subscriber's lag; pipelines' state.
    Status {
        /// Print the node's JSON answer instead of text.
        #[arg(long)]
        json: bool,
        #[arg(long, env = "HEADWATER_URL", default_value = "http://127.0.0.1:8081")]
        url: String,
    },
    /// List deployed pipelines and their state.
    Pipelines {
        #[arg(long, env = "HEADWATER_URL", default_value = "http://127.0.0.1:8081")]
        url: String,
    },
    /// Principals for a node's `[auth]` config.
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// Read segment files directly (no node needed).
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Every change, oldest first.
    Log {
        /// Only this domain's changes.
        #[arg(long)]
        domain: Option<String>,
        /// Only changes whose action starts with this (`schema`, `domain.apply`, `pipeline`).
        #[arg(long)]
        action: Option<String>,
        /// The entries as JSON lines, as stored: an export `audit verify --file` checks.
        #[arg(long)]
        json: bool,
        #[arg(long, env = "HEADWATER_URL", default_value = "http://127.0.0.1:8081")]
        url: String,
    },
    /// Check the hash chain; exits 1 naming each modified, removed or reordered entry.
    Verify {
        /// Check an export (`audit log --json` lines) instead of the node's trail.
        #[arg(long)]
        file: Option<PathBuf>,
        #[arg(long, env = "HEADWATER_URL", default_value = "http://127.0.0.1:8081")]
        url: String,
    },
}

#[derive(Debug, Subcommand)]
enum AuthCommand {
    /// Print a `[[auth.principals]]` entry for NAME to append to the node's config: its
    /// password as SCRAM-SHA-256/512 credentials and a bearer token's SHA-256. The password and
    /// token themselves go to stderr, once.
    Principal {
        name: String,
        /// A group it belongs to, as manifests' `owners` name it (`team:payments`); repeatable.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Take the password from this environment variable instead of making a random one.
        #[arg(long)]
        password_env: Option<String>,
        /// One JSON object with the entry, the password and the token (for scripts).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// Re-submit STREAM's dead letters after a fix; those still invalid are dead-lettered
    /// again. Without --from, continues after the last replay.
    Replay {
        stream: String,
        /// Dead-letter offset to start from.
        #[arg(long)]
        from: Option<i64>,
        #[arg(long, env = "HEADWATER_URL", default_value = "http://127.0.0.1:8081")]
        url: String,
    },
}

#[derive(Debug, Subcommand)]
enum ViewCommand {
    /// Print the features of one or more keys of view DOMAIN.VIEW, a JSON line per key.
    Get {
        view: String,
        #[arg(required = true)]
        keys: Vec<String>,
        #[arg(long, env = "HEADWATER_URL", default_value = "http://127.0.0.1:8081")]
        url: String,
    },
    /// List the served views with their features and key counts.
    List {
        #[arg(long, env = "HEADWATER_URL", default_value = "http://127.0.0.1:8081")]
        url: String,
    },
}

#[derive(Debug, Subcommand)]
enum LogCommand {
    /// Print every record batch of a segment file, partition directory or data directory.
    Inspect { path: PathBuf },
    /// Check every batch's header and CRC; exit 1 naming file and byte position on damage.
    Verify { path: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Plan { dir, url } => domains_cmd::run(&dir, &url, false),
        Command::Apply { dir, url } => domains_cmd::run(&dir, &url, true),
        Command::Publish { stream, url } => streams_cmd::publish(&stream, &url),
        Command::Tail(args) => streams_cmd::tail(&args),
        Command::Dlq {
            command: DlqCommand::Replay { stream, from, url },
        } => streams_cmd::replay(&stream, from, &url),
        Command::Lineage {
            name,
            upstream,
            format,
            url,
            ..
        } => lineage_cmd::lineage(&name, upstream, format, &url),
        Command::Catalog { query, json, url } => catalog_cmd::catalog(query.as_deref(), json, &url),
        Command::Audit {
            command:
                AuditCommand::Log {
                    domain,
                    action,
                    json,
                    url,
                },
        } => audit_cmd::log(domain.as_deref(), action.as_deref(), json, &url),
        Command::Audit {
            command: AuditCommand::Verify { file, url },
        } => audit_cmd::check(file.as_deref(), &url),
        Command::Sql { query, format, url } => pipelines_cmd::sql(&query, format, &url),
        Command::Run { pipeline, url } => pipelines_cmd::run(&pipeline, &url),
        Command::Rebuild { name, url } => pipelines_cmd::rebuild(&name, &url),
        Command::View {
            command: ViewCommand::Get { view, keys, url },
        } => pipelines_cmd::view_get(&view, &keys, &url),
        Command::View {
            command: ViewCommand::List { url },
        } => pipelines_cmd::view_list(&url),
        Command::Pipelines { url } => pipelines_cmd::list(&url),
        Command::Status { json, url } => pipelines_cmd::status(&url, json),
        Command::Generate(args) => generate::run(&args),
        Command::Auth {
            command:
                AuthCommand::Principal {
                    name,
                    groups,
                    password_env,
                    json,
                },
        } => auth_cmd::principal(&name, &groups, password_env.as_deref(), json),
        Command::Log { command } => match command {
            LogCommand::Inspect { path } => log_tools::inspect(&path),
            LogCommand::Verify { path } => log_tools::verify(&path),
        },
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
