//! Timing and process measurements shared by every row of the table: the
//! calling thread's CPU time (`/proc/thread-self/schedstat`, so per-core
//! figures do not depend on what else the machine runs), per-operation
//! costs, latency samples with percentiles, the load average and a
//! process's resident memory (`/proc/PID/status`). Linux first; where
//! `/proc` is missing, CPU time falls back to wall-clock time.

use std::time::{Duration, Instant};

/// CPU time in ns of the thread whose `/proc` task directory is `task`.
pub fn task_cpu_ns(task: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("{task}/schedstat")).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// `/proc/PID/task/TID` of the calling thread, if `/proc` is mounted.
pub fn this_task() -> Option<String> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    Some(format!("/proc/{}", link.display()))
}

/// A stopwatch of the calling thread's CPU time (wall time without `/proc`).
pub struct CpuTimer {
    task: Option<String>,
    cpu0: u64,
    wall0: Instant,
}

impl CpuTimer {
    /// Starts timing the calling thread.
    pub fn start() -> CpuTimer {
        let task = this_task();
        let cpu0 = task.as_deref().and_then(task_cpu_ns).unwrap_or(0);
        CpuTimer {
            task,
            cpu0,
            wall0: Instant::now(),
        }
    }

    /// CPU time spent by the thread since [`CpuTimer::start`] (must be read
    /// on the same thread).
    pub fn elapsed(&self) -> Duration {
        match self.task.as_deref().and_then(task_cpu_ns) {
            Some(now) => Duration::from_nanos(now.saturating_sub(self.cpu0)),
            None => self.wall0.elapsed(),
        }
    }
}

/// Mean CPU time of one call of `f`, over `iters` calls on this thread.
pub fn per_op(iters: usize, mut f: impl FnMut(usize)) -> Duration {
    let iters = iters.max(1);
    let t = CpuTimer::start();
    for i in 0..iters {
        f(i);
    }
    t.elapsed() / u32::try_from(iters).unwrap_or(u32::MAX)
}

/// Latency samples of one kind of operation.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    us: Vec<u64>,
    sorted: bool,
}

impl Latencies {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one sample.
    pub fn push(&mut self, d: Duration) {
        self.us
            .push(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.sorted = false;
    }

    /// Adds all samples of `other`.
    pub fn extend(&mut self, other: Latencies) {
        self.us.extend(other.us);
        self.sorted = false;
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.us.len()
    }

    /// True without samples.
    pub fn is_empty(&self) -> bool {
        self.us.is_empty()
    }

    /// The `p` quantile (0.0–1.0, nearest rank) in milliseconds; 0 when empty.
    pub fn pct_ms(&mut self, p: f64) -> f64 {
        if self.us.is_empty() {
            return 0.0;
        }
        if !self.sorted {
            self.us.sort_unstable();
            self.sorted = true;
        }
        let i = ((self.us.len() as f64 - 1.0) * p.clamp(0.0, 1.0)).round() as usize;
        self.us[i.min(self.us.len() - 1)] as f64 / 1000.0
    }
}

/// The 1-, 5- and 15-minute load averages.
pub fn load_average() -> Option<[f64; 3]> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = s.split_whitespace().map(str::parse::<f64>);
    Some([it.next()?.ok()?, it.next()?.ok()?, it.next()?.ok()?])
}

/// Resident memory of process `pid`: `(VmRSS, VmHWM)` in KiB.
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = s.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The CPU model name (`/proc/cpuinfo`) and the number of CPUs available.
pub fn machine() -> (String, usize) {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (model, cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut l = Latencies::new();
        for ms in 1..=100u64 {
            l.push(Duration::from_millis(ms));
        }
        assert_eq!(l.pct_ms(0.0), 1.0);
        assert_eq!(l.pct_ms(0.5), 51.0);
        assert_eq!(l.pct_ms(0.99), 99.0);
        assert_eq!(l.pct_ms(1.0), 100.0);
        assert_eq!(Latencies::new().pct_ms(0.5), 0.0);
    }

    #[test]
    fn cpu_timer_counts_work() {
        let t = CpuTimer::start();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        assert!(t.elapsed() > Duration::ZERO, "{x}");
    }
}
