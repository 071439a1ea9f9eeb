//! What a run found, and whether it passes.

use std::fmt;
use std::time::Duration;

/// A stale read beyond the window (or an unexplained one), in detail.
#[derive(Debug, Clone)]
pub struct Violation {
    pub path: String,
    /// The instance's base URL.
    pub instance: String,
    /// What the read returned (JSON, cut to a few hundred bytes).
    pub value: String,
    /// What states `k..=m` held for the path (the read may return any).
    pub expected: Vec<String>,
    /// Since the write that made the value obsolete completed; `None`
    /// when no state had the value (unexplained).
    pub age: Option<Duration>,
    /// When the read was sent and answered, since the run started.
    pub sent: Duration,
    pub answered: Duration,
    /// The write that made the value obsolete: number, action, instance,
    /// start and completion since the run started, and how long it took
    /// (`c - b`, its answer's receipt minus its send, client-side).
    pub obsoleted_by: Option<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.age {
            Some(age) => write!(f, "STALE by {age:?}")?,
            None => write!(f, "UNEXPLAINED")?,
        }
        writeln!(
            f,
            ": GET {} on {} (sent +{:?}, answered +{:?})",
            self.path, self.instance, self.sent, self.answered
        )?;
        writeln!(f, "    got      {}", self.value)?;
        for expected in &self.expected {
            writeln!(f, "    expected {expected}")?;
        }
        if let Some(write) = &self.obsoleted_by {
            writeln!(f, "    obsoleted by {write}")?;
        }
        Ok(())
    }
}

/// The figures of one run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Reads answered (200 or 404) and judged.
    pub reads: u64,
    /// Writes the app carried out (2xx).
    pub writes: u64,
    /// Writes the app refused (4xx; the state after them is recorded too).
    pub refused_writes: u64,
    /// Writes that failed (5xx, transport error, timeout).
    pub failed_writes: u64,
    /// Reads that failed (not 200/404, transport error), and that timed out.
    pub read_errors: u64,
    pub read_timeouts: u64,
    pub stale_within_window: u64,
    /// Including the unexplained ones.
    pub stale_beyond_window: u64,
    pub unexplained: u64,
    /// The oldest stale read's age.
    pub max_age: Option<Duration>,
    pub window: Duration,
    /// Read paths at the end of the run.
    pub paths: usize,
    /// How long the workload ran (seeding aside).
    pub elapsed: Duration,
    /// The first few stale reads beyond the window.
    pub violations: Vec<Violation>,
    /// The first few stale reads within the window.
    pub within_window: Vec<Violation>,
    /// The first few failed requests.
    pub errors: Vec<String>,
    /// Failed requests above this share of all fail the run.
    pub max_error_ratio: f64,
}

impl Report {
    pub fn stale(&self) -> u64 {
        self.stale_within_window + self.stale_beyond_window
    }

    /// `reads 12345, writes 678, stale reads 0 (within window 0, beyond 0)`.
    pub fn summary(&self) -> String {
        format!(
            "reads {}, writes {}, stale reads {} (within window {}, beyond {})",
            self.reads,
            self.writes,
            self.stale(),
            self.stale_within_window,
            self.stale_beyond_window
        )
    }

    /// Writes carried out per second of the workload.
    pub fn writes_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.writes as f64 / secs
        } else {
            0.0
        }
    }

    /// Failed requests over all requests.
    pub fn error_ratio(&self) -> f64 {
        let failed = self.read_errors + self.read_timeouts + self.failed_writes;
        let all = self.reads + self.writes + self.refused_writes + failed;
        if all == 0 {
            1.0
        } else {
            failed as f64 / all as f64
        }
    }

    /// Why the run fails; empty if it passes.
    pub fn failures(&self) -> Vec<String> {
        let mut why = Vec::new();
        if self.stale_beyond_window > 0 {
            why.push(format!(
                "{} stale reads beyond the window of {:?} ({} unexplained)",
                self.stale_beyond_window, self.window, self.unexplained
            ));
        }
        if self.reads == 0 || self.writes == 0 {
            why.push("nothing was checked (no read or no write)".into());
        }
        if self.error_ratio() > self.max_error_ratio {
            why.push(format!(
                "{:.1}% of the requests failed (at most {:.1}% allowed)",
                100.0 * self.error_ratio(),
                100.0 * self.max_error_ratio
            ));
        }
        why
    }

    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary())?;
        writeln!(
            f,
            "  unexplained {}, max age {}, window {:?}, {} read paths; ran {:.1}s ({:.1} writes/s)",
            self.unexplained,
            self.max_age.map_or("-".into(), |a| format!("{a:?}")),
            self.window,
            self.paths,
            self.elapsed.as_secs_f64(),
            self.writes_per_second()
        )?;
        writeln!(
            f,
            "  writes refused {}, failed {}; reads failed {}, timed out {} ({:.2}% of requests failed)",
            self.refused_writes,
            self.failed_writes,
            self.read_errors,
            self.read_timeouts,
            100.0 * self.error_ratio()
        )?;
        for error in &self.errors {
            writeln!(f, "  error: {error}")?;
        }
        for v in &self.within_window {
            write!(f, "  within the window: {v}")?;
        }
        for v in &self.violations {
            write!(f, "  {v}")?;
        }
        match self.failures().as_slice() {
            [] => write!(f, "PASS"),
            why => write!(f, "FAIL: {}", why.join("; ")),
        }
    }
}
