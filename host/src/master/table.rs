//! The worker table: one row per worker process the master is responsible
//! for, with its state and history (gunicorn's `WORKERS`, nginx's
//! `ngx_processes`), and the respawn bookkeeping of each pool position.
//!
//! A worker's state is also published in its scoreboard slot, for the
//! workers' balance and the status page: [`Worker::set_state`] is the one
//! way to change it, and writes both; [`Pool`] takes and frees the slots.

use crate::board::scoreboard::{self, Scoreboard};
use nix::unistd::Pid;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Forked; loading plugins. It has not said it is ready yet.
    Starting,
    /// Serving (it wrote "ready" on the notification pipe).
    Ready,
    /// Told to stop (or killed): finishing in-flight requests until
    /// `deadline`, after which the master kills it.
    Stopping { deadline: Instant },
}

impl State {
    /// The same state in the scoreboard's terms.
    fn published(self) -> u32 {
        match self {
            State::Starting => scoreboard::STATE_STARTING,
            State::Ready => scoreboard::STATE_READY,
            State::Stopping { .. } => scoreboard::STATE_STOPPING,
        }
    }
}

/// One worker process.
#[derive(Debug, Clone)]
pub struct Worker {
    pub pid: Pid,
    /// The generation (config and plugin snapshot) it loaded.
    pub generation: u64,
    /// Read with [`Worker::state`], written with [`Worker::set_state`].
    state: State,
    pub started: Instant,
    /// Which position of the pool it fills; a replacement inherits it.
    pub position: usize,
    /// Its slot in the scoreboard, if one was free.
    pub board: Option<usize>,
    /// It reached `maxRequests`: replace it (a replacement first).
    pub retiring: bool,
    /// Its `maxRequests` limit with jitter drawn in; 0 = none.
    pub max_requests: u64,
    /// Respawns of its position before it, for the log.
    pub restarts: u32,
    /// The master sent it SIGKILL (logged once, not sent again).
    pub killed: bool,
}

impl Worker {
    /// A worker just forked: starting.
    pub fn new(
        pid: Pid,
        generation: u64,
        position: usize,
        board: Option<usize>,
        started: Instant,
    ) -> Worker {
        Worker {
            pid,
            generation,
            state: State::Starting,
            started,
            position,
            board,
            retiring: false,
            max_requests: 0,
            restarts: 0,
            killed: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Moves the worker to `state`, here and in its scoreboard slot.
    pub fn set_state(&mut self, state: State, board: &Scoreboard) {
        self.state = state;
        if let Some(slot) = self.board {
            board.set_state(slot, state.published());
        }
    }

    /// The same worker in `state` (tests, without a scoreboard).
    #[cfg(test)]
    pub fn in_state(mut self, state: State) -> Worker {
        self.state = state;
        self
    }

    pub fn stopping(&self) -> bool {
        matches!(self.state, State::Stopping { .. })
    }
}

/// How a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

/// Respawn bookkeeping for one position of the pool.
///
/// Only a worker that dies before it is ready — a boot failure — makes the
/// next one wait, longer after each failure in a row: respawning it at once
/// would fail the same way, in a tight loop. A worker that dies after it
/// served (a request crashed it) is replaced at once, however often that
/// happens: backing off there would let a stream of crashing requests
/// empty the pool while the listener stays open.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    /// Boot failures in a row at this position.
    pub failures: u32,
    /// Do not respawn before this.
    pub not_before: Option<Instant>,
    /// Deaths at this position since the master started.
    pub restarts: u32,
}

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(10);

impl Backoff {
    /// Records a worker that died (or could not be forked) before it was
    /// ready; returns the delay before the next respawn: none after the
    /// first failure, then doubling from [`FIRST_DELAY`] to [`MAX_DELAY`].
    pub fn failed_boot(&mut self, now: Instant) -> Duration {
        let delay = if self.failures == 0 {
            Duration::ZERO
        } else {
            (FIRST_DELAY * 2u32.saturating_pow(self.failures - 1)).min(MAX_DELAY)
        };
        self.failures = self.failures.saturating_add(1);
        self.restarts = self.restarts.saturating_add(1);
        self.not_before = Some(now + delay);
        delay
    }

    /// Records a worker that died after it was ready: replaced at once.
    pub fn died_serving(&mut self) {
        self.restarts = self.restarts.saturating_add(1);
        self.not_before = None;
    }

    /// A worker at this position is ready: a later boot failure starts the
    /// backoff from zero again.
    pub fn booted(&mut self) {
        self.failures = 0;
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

    pub fn get_mut(&mut self, pid: Pid) -> Option<&mut Worker> {
        self.workers.iter_mut().find(|w| w.pid == pid)
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    pub fn pids(&self) -> Vec<Pid> {
        self.workers.iter().map(|w| w.pid).collect()
    }

    /// Workers that fill `position` and are not on their way out.
    pub fn live_at(&self, position: usize) -> impl Iterator<Item = &Worker> {
        self.workers
            .iter()
            .filter(move |w| w.position == position && !w.stopping())
    }

    /// Whether any worker (even a stopping one) runs `generation`.
    pub fn uses(&self, generation: u64) -> bool {
        self.workers.iter().any(|w| w.generation == generation)
    }

    /// A scoreboard slot below `capacity` that no worker holds.
    pub fn free_board_slot(&self, capacity: usize) -> Option<usize> {
        let mut used = vec![false; capacity];
        for w in &self.workers {
            if let Some(i) = w.board.filter(|&i| i < capacity) {
                used[i] = true;
            }
        }
        used.iter().position(|u| !u)
    }
}

/// The master's part that is its workers: the table, the scoreboard that
/// mirrors it, and the size and respawn bookkeeping of the pool.
#[derive(Debug)]
pub struct Pool {
    pub table: Table,
    pub board: Arc<Scoreboard>,
    /// Number of workers wanted (TTIN / TTOU and reloads change it).
    pub target: usize,
    /// Respawn bookkeeping per pool position.
    pub positions: Vec<Backoff>,
    /// When the watchdog must look at the scoreboard again.
    pub next_check: Option<Instant>,
}

impl Pool {
    pub fn new(board: Scoreboard, target: usize) -> Pool {
        Pool {
            table: Table::default(),
            board: Arc::new(board),
            target,
            positions: Vec::new(),
            next_check: None,
        }
    }

    /// Takes a free scoreboard slot for a worker of `generation` about to
    /// be forked, reset for it; `None` when the scoreboard is full.
    pub fn take_slot(&self, generation: u64) -> Option<usize> {
        let slot = self.table.free_board_slot(self.board.capacity())?;
        self.board.assign(slot, 0, generation);
        Some(slot)
    }

    /// Gives back a slot whose worker could not be forked.
    pub fn give_back(&self, slot: usize) {
        self.board.set_state(slot, scoreboard::STATE_FREE);
    }

    /// Adds a forked worker, and its pid to its slot.
    pub fn insert(&mut self, worker: Worker) {
        if let Some(slot) = worker.board {
            self.board.set_pid(slot, worker.pid.as_raw());
        }
        self.table.insert(worker);
    }

    /// Takes out a worker that exited and frees its slot. Its counts stay
    /// in the slot until another worker takes it.
    pub fn remove(&mut self, pid: Pid) -> Option<Worker> {
        let worker = self.table.remove(pid)?;
        if let Some(slot) = worker.board {
            self.give_back(slot);
        }
        Some(worker)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_boot_failures_back_off_and_a_boot_resets_them() {
        let now = Instant::now();
        let mut b = Backoff::default();
        assert_eq!(b.failed_boot(now), Duration::ZERO);
        assert_eq!(b.failed_boot(now), Duration::from_millis(100));
        assert_eq!(b.failed_boot(now), Duration::from_millis(200));
        for _ in 0..20 {
            b.failed_boot(now);
        }
        assert_eq!(b.failed_boot(now), MAX_DELAY);
        assert!(!b.ready(now));
        b.booted();
        assert_eq!(b.failed_boot(now), Duration::ZERO);
        assert!(b.ready(now));
        assert_eq!(b.restarts, 25);
    }

    #[test]
    fn a_worker_that_served_is_replaced_at_once_however_often_it_dies() {
        let now = Instant::now();
        let mut b = Backoff::default();
        b.failed_boot(now);
        b.failed_boot(now);
        assert!(!b.ready(now), "waiting after two boot failures");
        b.booted();
        for _ in 0..100 {
            b.died_serving();
            assert!(b.ready(now));
        }
        assert_eq!(b.restarts, 102);
    }

    fn worker(pid: i32, position: usize, board: Option<usize>, state: State) -> Worker {
        Worker::new(Pid::from_raw(pid), 1, position, board, Instant::now()).in_state(state)
    }

    #[test]
    fn board_slots_are_reused_once_free() {
        let mut table = Table::default();
        table.insert(worker(10, 0, Some(0), State::Ready));
        table.insert(worker(11, 1, Some(2), State::Ready));
        assert_eq!(table.free_board_slot(3), Some(1));
        table.insert(worker(12, 2, Some(1), State::Starting));
        assert_eq!(table.free_board_slot(3), None);
        table.remove(Pid::from_raw(11));
        assert_eq!(table.free_board_slot(3), Some(2));
    }

    #[test]
    fn stopping_workers_do_not_hold_their_position() {
        let mut table = Table::default();
        let deadline = Instant::now();
        table.insert(worker(10, 0, None, State::Stopping { deadline }));
        assert_eq!(table.live_at(0).count(), 0);
        table.insert(worker(11, 0, None, State::Starting));
        assert_eq!(
            table.live_at(0).map(|w| w.pid.as_raw()).collect::<Vec<_>>(),
            [11]
        );
        assert!(table.uses(1) && !table.uses(2));
    }
}
