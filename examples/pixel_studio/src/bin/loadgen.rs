//! A small load generator for the README figures: `--concurrency` clients
//! send one request after another to one loopback URL for `--duration`
//! (or until `--max-requests`), and it prints requests/s, p50 and p99.
//!
//! ```text
//! cargo run -p pixel_studio --release --bin loadgen -- \
//!     --url 'http://127.0.0.1:3000/users/1/profile?page=1&page_size=10' \
//!     --duration 10s --concurrency 32
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use clap::Parser;
use pixel_studio::checker::parse_duration;

/// Load on one loopback URL: requests/s and latency percentiles.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The URL (loopback only).
    #[arg(long)]
    url: String,
    /// How long to send for, after the warm-up.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Stop after this many requests, whatever the duration.
    #[arg(long, default_value_t = 5_000_000)]
    max_requests: u64,
    /// Unmeasured requests first (fills caches and connection pools).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// A JSON body: sends POST instead of GET (e.g. the app's oracle).
    #[arg(long)]
    body: Option<String>,
    /// Bound of each request.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
}

/// What one client measured: latencies in µs, and failures.
#[derive(Default)]
struct Sample {
    micros: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

async fn one(client: &reqwest::Client, args: &Args) -> Result<(), String> {
    let request = match &args.body {
        Some(body) => client
            .post(&args.url)
            .header("content-type", "application/json")
            .body(body.clone()),
        None => client.get(&args.url),
    };
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    response.bytes().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

async fn client_loop(
    client: reqwest::Client,
    args: Arc<Args>,
    warm_until: Instant,
    until: Instant,
    sent: Arc<AtomicU64>,
) -> Sample {
    let mut sample = Sample::default();
    loop {
        let t0 = Instant::now();
        if t0 >= until {
            break;
        }
        let measured = t0 >= warm_until;
        if measured && sent.fetch_add(1, Relaxed) >= args.max_requests {
            break;
        }
        let result = one(&client, &args).await;
        if !measured {
            continue;
        }
        match result {
            Ok(()) => {
                let micros = t0.elapsed().as_micros();
                sample
                    .micros
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
            }
            Err(e) => {
                sample.errors += 1;
                sample.first_error.get_or_insert(e);
            }
        }
    }
    sample
}

fn loopback(url: &str) -> bool {
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    host.is_some_and(|h| {
        h == "localhost"
            || h.trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Arc::new(Args::parse());
    if !loopback(&args.url) {
        eprintln!("loadgen: {} is not a loopback URL", args.url);
        return ExitCode::from(2);
    }
    let client = match reqwest::Client::builder()
        .timeout(args.timeout)
        .pool_max_idle_per_host(args.concurrency)
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let warm_until = Instant::now() + args.warmup;
    let until = warm_until + args.duration;
    let sent = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            tokio::spawn(client_loop(
                client.clone(),
                args.clone(),
                warm_until,
                until,
                sent.clone(),
            ))
        })
        .collect();
    let mut micros = Vec::new();
    let (mut errors, mut first_error) = (0, None);
    for client in clients {
        let Ok(sample) = client.await else { continue };
        micros.extend(sample.micros);
        errors += sample.errors;
        first_error = first_error.or(sample.first_error);
    }
    let elapsed = (Instant::now().min(until) - warm_until).as_secs_f64();
    micros.sort_unstable();
    println!(
        "{} requests in {elapsed:.1}s, concurrency {}: {:.0} requests/s, p50 {:.3} ms, p99 {:.3} ms, errors {errors}",
        micros.len(),
        args.concurrency,
        micros.len() as f64 / elapsed,
        percentile(&micros, 50.0),
        percentile(&micros, 99.0),
    );
    if let Some(e) = first_error {
        eprintln!("first error: {e}");
    }
    if micros.is_empty() || errors * 100 > micros.len() as u64 {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
