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
    /// Writes (carried out) after which some read path's state differed
    /// from the one before: the writes the reads are checked against.
    pub changing_writes: u64,
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
    /// Failed reads above this share of all reads fail the run.
    pub max_error_ratio: f64,
    /// Failed writes above this share of all writes fail the run.
    pub max_failed_write_ratio: f64,
    /// Fewer reads, writes carried out, or changing writes fail the run
    /// (at least one of each in any case).
    pub min_reads: u64,
    pub min_writes: u64,
    pub min_changing_writes: u64,
}

/// `part / all`, 1 when nothing was sent (a run that sent nothing fails).
fn ratio(part: u64, all: u64) -> f64 {
    if all == 0 {
        1.0
    } else {
        part as f64 / all as f64
    }
}

impl Report {
    pub fn stale(&self) -> u64 {
        self.stale_within_window + self.stale_beyond_window
    }

    /// `reads 12345, writes 678, stale reads 0 (within window 0, beyond
    /// 0); writes changing state 600, refused 12, failed 0`.
    pub fn summary(&self) -> String {
        format!(
            "reads {}, writes {}, stale reads {} (within window {}, beyond {}); \
             writes changing state {}, refused {}, failed {}",
            self.reads,
            self.writes,
            self.stale(),
            self.stale_within_window,
            self.stale_beyond_window,
            self.changing_writes,
            self.refused_writes,
            self.failed_writes
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

    /// Failed reads over all reads sent.
    pub fn read_error_ratio(&self) -> f64 {
        let failed = self.read_errors + self.read_timeouts;
        ratio(failed, self.reads + failed)
    }

    /// Failed writes (5xx, not sent) over all writes sent (refused ones
    /// included).
    pub fn failed_write_ratio(&self) -> f64 {
        let all = self.writes + self.refused_writes + self.failed_writes;
        ratio(self.failed_writes, all)
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
        let mut too_few = |what: &str, n: u64, min: u64| {
            if n < min.max(1) {
                why.push(format!(
                    "too little was checked: {n} {what} (at least {min} needed)"
                ));
            }
        };
        too_few("reads", self.reads, self.min_reads);
        too_few("writes carried out", self.writes, self.min_writes);
        too_few(
            "writes changing state",
            self.changing_writes,
            self.min_changing_writes,
        );
        if self.read_error_ratio() > self.max_error_ratio {
            why.push(format!(
                "{:.1}% of the reads failed (at most {:.1}% allowed)",
                100.0 * self.read_error_ratio(),
                100.0 * self.max_error_ratio
            ));
        }
        if self.failed_write_ratio() > self.max_failed_write_ratio {
            why.push(format!(
                "{:.1}% of the writes failed (at most {:.1}% allowed)",
                100.0 * self.failed_write_ratio(),
                100.0 * self.max_failed_write_ratio
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
            "  writes refused {}, failed {} ({:.2}%); reads failed {}, timed out {} ({:.2}%)",
            self.refused_writes,
            self.failed_writes,
            100.0 * self.failed_write_ratio(),
            self.read_errors,
            self.read_timeouts,
            100.0 * self.read_error_ratio()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A run that checked enough, with nothing stale or failed.
    fn enough() -> Report {
        Report {
            reads: 1_000,
            writes: 150,
            changing_writes: 75,
            max_error_ratio: 0.02,
            max_failed_write_ratio: 0.02,
            min_reads: 1_000,
            min_writes: 150,
            min_changing_writes: 75,
            ..Report::default()
        }
    }

    #[test]
    fn a_run_passes_only_if_it_checked_enough() {
        assert!(enough().passed(), "{}", enough());
        for short in [
            Report {
                reads: 999,
                ..enough()
            },
            Report {
                writes: 149,
                ..enough()
            },
            Report {
                changing_writes: 74,
                ..enough()
            },
        ] {
            assert!(!short.passed(), "{short}");
            assert!(short.failures()[0].starts_with("too little was checked"));
        }
        // Refused writes are no writes carried out.
        let refused = Report {
            writes: 10,
            refused_writes: 140,
            ..enough()
        };
        assert!(!refused.passed());
        // Zero minimums still need one of each.
        let nothing = Report::default();
        assert_eq!(nothing.failures().len(), 5, "{:?}", nothing.failures());
    }

    #[test]
    fn failed_writes_are_bounded_apart_from_reads() {
        // 4 of 154 writes failed (2.6%): among 10 000 reads and writes it
        // would pass an overall 2% bound.
        let failing = Report {
            reads: 10_000,
            failed_writes: 4,
            ..enough()
        };
        assert!(failing.failed_write_ratio() > 0.02);
        assert_eq!(failing.failures().len(), 1, "{failing}");
        assert!(failing.failures()[0].contains("of the writes failed"));
        let some = Report {
            failed_writes: 3,
            ..enough()
        };
        assert!(some.passed(), "3 of 153 is under 2%: {some}");
        let reads = Report {
            read_timeouts: 30,
            ..enough()
        };
        assert!(
            reads.failures()[0].contains("of the reads failed"),
            "{reads}"
        );
    }

    #[test]
    fn the_summary_gives_the_write_counts_after_the_required_part() {
        let report = Report {
            stale_within_window: 2,
            refused_writes: 7,
            failed_writes: 1,
            ..enough()
        };
        assert_eq!(
            report.summary(),
            "reads 1000, writes 150, stale reads 2 (within window 2, beyond 0); \
             writes changing state 75, refused 7, failed 1"
        );
    }
}
