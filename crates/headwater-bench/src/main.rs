//! `headwater-bench`: each subcommand measures one goal and a baseline in the same run and
//! prints both with their ratio. Run in release mode:
//!
//! ```text
//! cargo run --release -p headwater-bench -- log-append
//! cargo run --release -p headwater-bench -- produce-latency
//! cargo run --release -p headwater-bench -- restart --gib 10
//! ```
//!
//! Throughput through librdkafka is `scripts/bench-kafka` (it drives kcat, a librdkafka client).

mod latency;
mod log_append;
mod pipelines;
mod restart;
mod validation;

/// Validation builds many small values per record; mimalloc measured 10 % faster than the
/// system allocator on it (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "headwater-bench")]
struct Cli {
    /// Directory on the disk to measure (a temporary directory is made inside it).
    #[arg(long, global = true, default_value = ".")]
    dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Log append of 200-byte records vs a raw sequential write of the same bytes.
    LogAppend {
        #[arg(long, default_value_t = 5_000_000)]
        records: usize,
        #[arg(long, default_value_t = 200)]
        record_bytes: usize,
        /// Records per batch (a 1 MiB producer batch holds about 4,500 records of 200 bytes).
        #[arg(long, default_value_t = 4_500)]
        batch_records: usize,
        /// Alternating raw/log rounds; the median of each side is reported.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Produce latency at acks=-1, fsync always, N concurrent producers vs one fsync.
    ProduceLatency {
        #[arg(long, default_value_t = 8)]
        producers: usize,
        #[arg(long, default_value_t = 2000)]
        records_per_producer: usize,
    },
    /// Produce throughput to a contracted stream vs an uncontracted topic (JSON Schema, Avro).
    Validation {
        #[arg(long, default_value_t = 200_000)]
        records: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// JSON records a real producer (kcat, librdkafka) sends per round; 0 skips that part.
        #[arg(long, default_value_t = 1_000_000)]
        kcat_records: usize,
    },
    /// Feature view lookups over HTTP (p50/p99, concurrent) vs Redis GET of the same answers.
    ViewLookup {
        #[arg(long, default_value = "target/release/headwater")]
        bin: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        customers: u64,
        #[arg(long, default_value_t = 200_000)]
        events: u64,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        /// Seconds of load on each side, split into `rounds` alternating rounds: short rounds
        /// spread this shared machine's hiccups over both sides (5 rounds of 2 s gave p99
        /// ratios of 1.16x-1.71x on the same code; 10 rounds of 2 s, 1.07x-1.23x).
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
        #[arg(long, default_value_t = 10)]
        rounds: usize,
    },
    /// Produce -> feature view updated, end to end, one event at a time.
    ViewLatency {
        #[arg(long, default_value = "target/release/headwater")]
        bin: PathBuf,
        #[arg(long, default_value_t = 1_000)]
        samples: usize,
    },
    /// Streaming pipelines working off a backlog vs the raw consume rate of their input.
    StreamThroughput {
        #[arg(long, default_value = "target/release/headwater")]
        bin: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
    },
    /// An aggregation over N events in Parquet: `headwater sql` vs DuckDB on the same files.
    BatchSql {
        #[arg(long, default_value = "target/release/headwater")]
        bin: PathBuf,
        #[arg(long, default_value_t = 10_000_000)]
        rows: u64,
        /// A Python with duckdb (scripts/test creates .venv with it).
        #[arg(long, default_value = ".venv/bin/python")]
        python: PathBuf,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Time from process start to answering a Kafka request, on a data dir holding N GiB,
    /// vs the same on an empty data dir.
    Restart {
        #[arg(long, default_value_t = 10)]
        gib: u64,
        /// The headwater binary to start (build it with --release first).
        #[arg(long, default_value = "target/release/headwater")]
        bin: PathBuf,
        /// Keep the generated data dir here and reuse it on the next run.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::LogAppend {
            records,
            record_bytes,
            batch_records,
            rounds,
        } => log_append::run(&cli.dir, records, record_bytes, batch_records, rounds),
        Command::ProduceLatency {
            producers,
            records_per_producer,
        } => latency::run(&cli.dir, producers, records_per_producer),
        Command::ViewLookup {
            bin,
            customers,
            events,
            connections,
            seconds,
            rounds,
        } => pipelines::view_lookup(
            &cli.dir,
            &bin,
            customers,
            events,
            connections,
            (seconds, rounds),
        ),
        Command::ViewLatency { bin, samples } => pipelines::view_latency(&cli.dir, &bin, samples),
        Command::StreamThroughput { bin, records } => {
            pipelines::stream_throughput(&cli.dir, &bin, records)
        }
        Command::BatchSql {
            bin,
            rows,
            python,
            rounds,
        } => pipelines::batch_sql(&cli.dir, &bin, rows, &python, rounds),
        Command::Restart { gib, bin, keep } => restart::run(&cli.dir, gib, &bin, keep),
        Command::Validation {
            records,
            rounds,
            kcat_records,
        } => validation::run(&cli.dir, records, rounds, kcat_records),
    }
}
