//! Reading a process's memory and CPU time, and the machine's CPU time, from Linux `/proc`.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Clock ticks per second of `/proc/*/stat` times (`USER_HZ`, 100 on every Linux we run on).
pub const CLK_TCK: f64 = 100.0;

/// A `kB` field of `/proc/PID/status`, e.g. `VmRSS` or `VmHWM`, in kB.
pub fn status_kb(pid: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// User plus system CPU time of a process (`self` or a pid), in ticks.
pub fn process_ticks(pid: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields after it start at state (field 3).
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Machine-wide (busy, total) CPU ticks over all cores, from `/proc/stat`.
pub fn machine_ticks() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// CPU use between two snapshots.
#[derive(Clone, Copy)]
pub struct CpuSnapshot {
    server: Option<u64>,
    loadgen: Option<u64>,
    machine: Option<(u64, u64)>,
}

/// Cores busy (1.0 = one core fully used) over a window.
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuUse {
    pub server_cores: Option<f64>,
    pub loadgen_cores: Option<f64>,
    pub machine_busy_pct: Option<f64>,
    /// Cores busy with anything but the server and this process (on PostgreSQL, that
    /// includes the database's backends).
    pub other_cores: Option<f64>,
}

impl CpuSnapshot {
    pub fn take(server_pid: Option<&str>) -> Self {
        Self {
            server: server_pid.and_then(process_ticks),
            loadgen: process_ticks("self"),
            machine: machine_ticks(),
        }
    }

    pub fn since(&self, earlier: &CpuSnapshot, secs: f64) -> CpuUse {
        let cores =
            |a: Option<u64>, b: Option<u64>| Some(a?.saturating_sub(b?) as f64 / CLK_TCK / secs);
        let (machine, machine_cores) = match (self.machine, earlier.machine) {
            (Some((b1, t1)), Some((b0, t0))) if t1 > t0 => (
                Some(100.0 * (b1 - b0) as f64 / (t1 - t0) as f64),
                Some((b1 - b0) as f64 / CLK_TCK / secs),
            ),
            _ => (None, None),
        };
        let server_cores = cores(self.server, earlier.server);
        let loadgen_cores = cores(self.loadgen, earlier.loadgen);
        let other_cores = machine_cores
            .map(|m| (m - server_cores.unwrap_or(0.0) - loadgen_cores.unwrap_or(0.0)).max(0.0));
        CpuUse {
            server_cores,
            loadgen_cores,
            machine_busy_pct: machine,
            other_cores,
        }
    }
}

/// Samples a process's `VmRSS` every 250 ms until stopped, keeping the largest value.
pub struct RssSampler {
    max_kb: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub fn start(pid: String) -> Self {
        let max_kb = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (max_kb.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            while !s.load(Ordering::Relaxed) {
                tick.tick().await;
                if let Some(kb) = status_kb(&pid, "VmRSS") {
                    m.fetch_max(kb, Ordering::Relaxed);
                }
            }
        });
        Self { max_kb, stop, task }
    }

    /// Stops sampling; the largest `VmRSS` seen, in kB.
    pub async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.ok();
        self.max_kb.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        assert!(status_kb("self", "VmRSS").is_some_and(|kb| kb > 0));
        assert!(process_ticks("self").is_some());
        let (busy, total) = machine_ticks().expect("/proc/stat");
        assert!(busy <= total);
    }
}
