//! The worker table: one slot per worker process the master is responsible
//! for, with its state and history (gunicorn's `WORKERS`, nginx's
//! `ngx_processes`).

use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// Where a worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Forked; loading plugins, then serving.
    Starting,
    /// Sent SIGTERM; finishing in-flight requests.
    Stopping,
}

/// One worker process.
#[derive(Debug, Clone)]
pub struct Worker {
    pub pid: Pid,
    /// The plugin generation it loaded (bumped by each reload).
    pub generation: u64,
    pub state: State,
    pub started: Instant,
    /// Which position of the pool it fills; a respawn inherits it.
    pub slot: usize,
}

/// How a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

/// Respawn bookkeeping for one position of the pool.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    /// Crashes in a row, each within `STABLE` of starting.
    pub failures: u32,
    /// Do not respawn before this.
    pub not_before: Option<Instant>,
}

/// A worker that lived this long counts as healthy; its next crash starts
/// the backoff from zero again.
pub const STABLE: Duration = Duration::from_secs(10);
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(10);

impl Backoff {
    /// Records a crash of a worker that ran for `lived`; returns the delay
    /// before the next respawn.
    pub fn crashed(&mut self, lived: Duration, now: Instant) -> Duration {
        if lived >= STABLE {
            self.failures = 0;
        }
        let delay = if self.failures == 0 {
            Duration::ZERO
        } else {
            (FIRST_DELAY * 2u32.saturating_pow(self.failures - 1)).min(MAX_DELAY)
        };
        self.failures = self.failures.saturating_add(1);
        self.not_before = Some(now + delay);
        delay
    }

    pub fn ready(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|t| now >= t)
    }
}

/// All workers of the master.
#[derive(Debug, Default)]
pub struct Table {
    pub workers: Vec<Worker>,
}

impl Table {
    pub fn insert(&mut self, worker: Worker) {
        self.workers.push(worker);
    }

    pub fn remove(&mut self, pid: Pid) -> Option<Worker> {
        let index = self.workers.iter().position(|w| w.pid == pid)?;
        Some(self.workers.swap_remove(index))
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Workers that fill `slot` and are not on their way out.
    pub fn serving(&self, slot: usize) -> bool {
        self.workers
            .iter()
            .any(|w| w.slot == slot && w.state != State::Stopping)
    }

    pub fn pids(&self) -> Vec<Pid> {
        self.workers.iter().map(|w| w.pid).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_resets_after_a_stable_run() {
        let now = Instant::now();
        let mut b = Backoff::default();
        let quick = Duration::from_millis(5);
        assert_eq!(b.crashed(quick, now), Duration::ZERO);
        assert_eq!(b.crashed(quick, now), Duration::from_millis(100));
        assert_eq!(b.crashed(quick, now), Duration::from_millis(200));
        for _ in 0..20 {
            b.crashed(quick, now);
        }
        assert_eq!(b.crashed(quick, now), MAX_DELAY);
        assert!(!b.ready(now));
        assert_eq!(b.crashed(STABLE, now), Duration::ZERO);
        assert!(b.ready(now));
    }
}
