//! The `headwater` command line: run a node, and read log files offline.

mod config;
mod domains_cmd;
mod log_tools;
mod serve;

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
    /// Read segment files directly (no node needed).
    Log {
        #[command(subcommand)]
        command: LogCommand,
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
