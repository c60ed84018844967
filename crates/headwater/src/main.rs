//! The `headwater` command line: run a node, manage domains and streams on it, and read log
//! files offline.

mod audit_cmd;
mod auth_cmd;
mod catalog_cmd;
mod domains_cmd;
mod generate;
mod lineage_cmd;
mod log_tools;
mod node_http;
mod output;
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
use output::{NodeArgs, OutputArgs};

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
        #[command(flatten)]
        node: NodeArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Apply the domain manifests in DIR: only domains whose manifest changed are touched.
    Apply {
        dir: PathBuf,
        #[command(flatten)]
        node: NodeArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Publish JSON lines from stdin to DOMAIN.STREAM; prints each refused line and why.
    Publish {
        stream: String,
        #[command(flatten)]
        node: NodeArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Print a stream's events as JSON lines, decoded with their contract.
    Tail {
        #[command(flatten)]
        args: streams_cmd::TailArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Dead-letter streams.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Domains, streams with their fields and classifications, pipelines, tables and views;
    /// with QUERY, what matches it by name, field or tag (`headwater catalog pii`).
    Catalog {
        query: Option<String>,
        #[command(flatten)]
        node: NodeArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Where NAME's data comes from (--upstream) or goes (--downstream, the default): streams,
    /// fields (`<stream>.<field>`), pipelines, tables, views, producers and consumer groups.
    Lineage {
        name: String,
        #[arg(long, conflicts_with = "downstream")]
        upstream: bool,
        #[arg(long)]
        downstream: bool,
        /// How to print the graph.
        #[arg(long, alias = "format", value_enum, default_value = "text")]
        output: output::LineageOutput,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// The audit trail: every change, who made it, and a hash chain that shows tampering.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Run SQL over streams (`payments.transaction_settled`) and tables (`finance.settlement_totals`).
    Sql {
        query: String,
        /// How to print the rows.
        #[arg(long, alias = "format", value_enum, default_value = "text")]
        output: output::SqlOutput,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Run a batch pipeline now (DOMAIN.PIPELINE), with a progress bar.
    Run {
        pipeline: String,
        #[command(flatten)]
        node: NodeArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Rebuild a table or feature view (DOMAIN.NAME) by replaying its inputs, with a progress bar.
    Rebuild {
        name: String,
        #[command(flatten)]
        node: NodeArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Feature views.
    View {
        #[command(subcommand)]
        command: ViewCommand,
    },
    /// Publish realistic events to the example domains' streams (transactions, refunds, clicks).
    Generate {
        #[command(flatten)]
        args: generate::GenerateArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Per domain: streams, their freshness and every subscriber's lag; pipelines' state.
    Status {
        #[command(flatten)]
        node: NodeArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// List deployed pipelines and their state.
    Pipelines {
        #[command(flatten)]
        node: NodeArgs,
        #[command(flatten)]
        output: OutputArgs,
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
    /// Every change, oldest first (`--output json`: the entries as stored, one per line: an
    /// export `audit verify --file` checks).
    Log {
        /// Only this domain's changes.
        #[arg(long)]
        domain: Option<String>,
        /// Only changes whose action starts with this (`schema`, `domain.apply`, `pipeline`).
        #[arg(long)]
        action: Option<String>,
        #[command(flatten)]
        node: NodeArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Check the hash chain; exits 1 naming each modified, removed or reordered entry.
    Verify {
        /// Check an export (`audit log --output json` lines) instead of the node's trail.
        #[arg(long)]
        file: Option<PathBuf>,
        #[command(flatten)]
        node: NodeArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
}

#[derive(Debug, Subcommand)]
enum AuthCommand {
    /// Print a `[[auth.principals]]` entry for NAME to append to the node's config: its
    /// password as SCRAM-SHA-256/512 credentials and a bearer token's SHA-256. The password and
    /// token themselves go to stderr, once (`--output json`: one object with all three).
    Principal {
        name: String,
        /// A group it belongs to, as manifests' `owners` name it (`team:payments`); repeatable.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Take the password from this environment variable instead of making a random one.
        #[arg(long)]
        password_env: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
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
        #[command(flatten)]
        node: NodeArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
}

#[derive(Debug, Subcommand)]
enum ViewCommand {
    /// Print the features of one or more keys of view DOMAIN.VIEW, a JSON line per key.
    Get {
        view: String,
        #[arg(required = true)]
        keys: Vec<String>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// List the served views with their features and key counts.
    List {
        #[command(flatten)]
        node: NodeArgs,
        #[command(flatten)]
        output: OutputArgs,
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
        Command::Plan { dir, node, output } => {
            domains_cmd::run(&dir, &node.url, false, output.get())
        }
        Command::Apply { dir, node, output } => {
            domains_cmd::run(&dir, &node.url, true, output.get())
        }
        Command::Publish {
            stream,
            node,
            output,
        } => streams_cmd::publish(&stream, &node.url, output.get()),
        Command::Tail { args, node } => streams_cmd::tail(&args, &node.url),
        Command::Dlq {
            command:
                DlqCommand::Replay {
                    stream,
                    from,
                    node,
                    output,
                },
        } => streams_cmd::replay(&stream, from, &node.url, output.get()),
        Command::Lineage {
            name,
            upstream,
            output,
            node,
            ..
        } => lineage_cmd::lineage(&name, upstream, output, &node.url),
        Command::Catalog {
            query,
            node,
            output,
        } => catalog_cmd::catalog(query.as_deref(), output.get(), &node.url),
        Command::Audit {
            command:
                AuditCommand::Log {
                    domain,
                    action,
                    node,
                    output,
                },
        } => audit_cmd::log(
            domain.as_deref(),
            action.as_deref(),
            output.get(),
            &node.url,
        ),
        Command::Audit {
            command: AuditCommand::Verify { file, node, output },
        } => audit_cmd::check(file.as_deref(), &node.url, output.get()),
        Command::Sql {
            query,
            output,
            node,
        } => pipelines_cmd::sql(&query, output, &node.url),
        Command::Run {
            pipeline,
            node,
            output,
        } => pipelines_cmd::run(&pipeline, &node.url, output.get()),
        Command::Rebuild { name, node, output } => {
            pipelines_cmd::rebuild(&name, &node.url, output.get())
        }
        Command::View {
            command: ViewCommand::Get { view, keys, node },
        } => pipelines_cmd::view_get(&view, &keys, &node.url),
        Command::View {
            command: ViewCommand::List { node, output },
        } => pipelines_cmd::view_list(&node.url, output.get()),
        Command::Pipelines { node, output } => pipelines_cmd::list(&node.url, output.get()),
        Command::Status { node, output } => pipelines_cmd::status(&node.url, output.get()),
        Command::Generate { args, node } => generate::run(&args, &node.url),
        Command::Auth {
            command:
                AuthCommand::Principal {
                    name,
                    groups,
                    password_env,
                    output,
                },
        } => auth_cmd::principal(&name, &groups, password_env.as_deref(), output.get()),
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
