//! The stale-read checker's command line: runs a randomized concurrent
//! workload against running instances of the app and judges every read
//! against the app's oracle (see `pixel_studio::checker`).
//!
//! ```text
//! cargo run -p pixel_studio --bin freshness_check -- \
//!     --instance http://127.0.0.1:3001 --instance http://127.0.0.1:3002 \
//!     --duration 20s --clients 32 --window 188ms
//! ```
//!
//! Exits 0 when no read was stale beyond the window and enough was checked,
//! 1 when some were stale (or too many requests failed, or too few reads,
//! writes, or writes changing state were checked), 2 when the run could not
//! happen or could not be checked (a write sent and never answered).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use pixel_studio::checker::{self, Config, Progress};

/// Checks that no read of the app is staler than the window allows.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Base URL of an instance; repeat for several.
    #[arg(long = "instance", required = true)]
    instances: Vec<String>,
    /// How long the workload runs (`20s`, `1m`).
    #[arg(long, default_value = "20s", value_parser = checker::parse_duration)]
    duration: Duration,
    /// Past `--duration`, the run goes on (up to `--max-duration`) until
    /// this many writes were carried out; a run with fewer fails. The
    /// default is what `tests/freshness.rs` requires.
    #[arg(long, default_value_t = Config::default().min_writes)]
    min_writes: u64,
    /// Likewise for writes that changed some read path's state (default:
    /// half of `--min-writes`).
    #[arg(long)]
    min_changing_writes: Option<u64>,
    /// A run with fewer reads fails.
    #[arg(long, default_value_t = Config::default().min_reads)]
    min_reads: u64,
    /// The longest the workload runs.
    #[arg(long, default_value = "60s", value_parser = checker::parse_duration)]
    max_duration: Duration,
    /// Concurrent readers.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Writer tasks (they take turns).
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// How stale a read on an instance other than the writer's may be: the
    /// local tier's announcement window (188ms with the default operation
    /// timeout); 0 without a local tier.
    #[arg(long, default_value = "0ms", value_parser = checker::parse_duration)]
    window: Duration,
    /// Seed of the random workload.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Users in the world.
    #[arg(long, default_value_t = 8)]
    users: usize,
    /// Bound of each read.
    #[arg(long, default_value = "5s", value_parser = checker::parse_duration)]
    read_timeout: Duration,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = Config {
        instances: args
            .instances
            .iter()
            .map(|i| i.trim_end_matches('/').to_owned())
            .collect(),
        duration: args.duration,
        min_writes: args.min_writes,
        min_changing_writes: args.min_changing_writes,
        min_reads: args.min_reads,
        max_duration: args.max_duration,
        clients: args.clients,
        writers: args.writers,
        window: args.window,
        seed: args.seed,
        users: args.users,
        read_timeout: args.read_timeout,
        ..Config::default()
    };
    match checker::run(config, Arc::new(Progress::default())).await {
        Ok(report) => {
            println!("{report}");
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(why) => {
            eprintln!("freshness_check: could not run: {why}");
            ExitCode::from(2)
        }
    }
}
