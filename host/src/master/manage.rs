//! What the master does to its workers (gunicorn's `manage_workers`,
//! `spawn_worker`, `reap_workers`, `kill_workers`): keep every pool
//! position filled with a worker of the current generation, replace
//! outdated ones one at a time, and decide what each exit means.

use super::table::{Backoff, ExitStatus, State, Worker};
use super::{spawn, watchdog, Master, MasterError};
use crate::worker::{self, link};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

impl Master {
    /// Keeps every pool position filled with a worker of the current
    /// generation: respawns empty positions (respecting backoff), replaces
    /// outdated or retiring workers one at a time — each replacement ready
    /// before the worker it replaces is told to stop — and stops the
    /// workers beyond the target.
    pub(super) fn manage_workers(&mut self) {
        if self.stop.is_some() || self.failure.is_some() {
            return;
        }
        let target = self.pool.target;
        if self.pool.positions.len() < target {
            self.pool.positions.resize(target, Backoff::default());
        }
        let now = Instant::now();
        let current = self.generations.current.number;
        let fresh = |w: &Worker| w.generation == current && !w.retiring;
        let table = &self.pool.table;
        // A replacement in progress: a fresh worker still starting where an
        // outdated one serves. Only one at a time, so a reload never takes
        // more than one extra worker's worth of memory and CPU.
        let replacing = (0..target).any(|p| {
            let live: Vec<&Worker> = table.live_at(p).collect();
            live.iter()
                .any(|w| fresh(w) && w.state() == State::Starting)
                && live.iter().any(|w| !fresh(w))
        });
        let mut to_spawn = Vec::new();
        let mut spawns_replacement = false;
        for position in 0..target {
            let live: Vec<&Worker> = table.live_at(position).collect();
            if live.iter().any(|w| fresh(w)) || !self.pool.positions[position].ready(now) {
                continue;
            }
            if !live.is_empty() {
                if replacing || spawns_replacement {
                    continue;
                }
                spawns_replacement = true;
            }
            to_spawn.push(position);
        }
        // Outdated workers whose replacement is ready stop now.
        let mut to_stop = Vec::new();
        for position in 0..target {
            let live: Vec<&Worker> = table.live_at(position).collect();
            if live.iter().any(|w| fresh(w) && w.state() == State::Ready) {
                to_stop.extend(live.iter().filter(|w| !fresh(w)).map(|w| w.pid));
            }
        }
        let beyond = table
            .workers
            .iter()
            .filter(|w| w.position >= target && !w.stopping())
            .map(|w| w.pid);
        to_stop.extend(beyond);
        for position in to_spawn {
            self.spawn_worker(position, now);
        }
        for pid in to_stop {
            self.retire(pid);
        }
        self.note_rollout_progress();
        self.announce();
    }

    /// Forks a worker of the current generation for `position`.
    fn spawn_worker(&mut self, position: usize, now: Instant) {
        let generation = &self.generations.current;
        // Closed only when the host stops, and then nothing is spawned.
        let Some(listener) = &self.listener.socket else {
            return;
        };
        let slot = self.pool.take_slot(generation.number);
        if slot.is_none() {
            log::warn!(
                "the scoreboard is full ({} workers): the new worker runs without requestTimeout and maxRequests",
                self.pool.board.capacity()
            );
        }
        let link = link::Link {
            notify: Some(self.inbox.sender()),
            board: slot.map(|slot| (std::sync::Arc::clone(&self.pool.board), slot)),
        };
        let config = &generation.config;
        match spawn::worker(
            config,
            listener,
            &generation.files,
            generation.tls.as_ref(),
            link,
        ) {
            Ok(pid) => {
                let mut worker = Worker::new(pid, generation.number, position, slot, now);
                worker.max_requests = watchdog::draw_max_requests(&config.server);
                worker.restarts = self.pool.positions[position].restarts;
                self.pool.insert(worker);
            }
            Err(e) => {
                log::error!("cannot fork a worker: {e}");
                if let Some(slot) = slot {
                    self.pool.give_back(slot);
                }
                self.pool.positions[position].failed_boot(now);
            }
        }
    }

    /// Asks one worker to finish its requests and exit.
    pub(super) fn retire(&mut self, pid: Pid) {
        let deadline = Instant::now() + self.graceful_timeout();
        let board = &self.pool.board;
        if let Some(worker) = self.pool.table.get_mut(pid) {
            if !worker.stopping() {
                worker.set_state(State::Stopping { deadline }, board);
                let _ = kill(pid, Signal::SIGTERM);
            }
        }
    }

    /// Signals every worker; SIGTERM also starts its graceful deadline.
    pub(super) fn kill_all(&mut self, signal: Signal) {
        let deadline = Instant::now() + self.graceful_timeout();
        let board = &self.pool.board;
        for worker in &mut self.pool.table.workers {
            if signal == Signal::SIGTERM && !worker.stopping() {
                worker.set_state(State::Stopping { deadline }, board);
            }
            let _ = kill(worker.pid, signal);
        }
    }

    /// Waits for every worker after a SIGKILL.
    pub(super) fn wait_all(&mut self) {
        for pid in self.pool.table.pids() {
            let _ = waitpid(pid, None);
        }
        self.pool.table.workers.clear();
    }

    /// A worker said it serves.
    pub(super) fn on_ready(&mut self, pid: Pid) {
        let board = &self.pool.board;
        let Some(worker) = self.pool.table.get_mut(pid) else {
            return;
        };
        if worker.state() != State::Starting {
            return;
        }
        worker.set_state(State::Ready, board);
        if let Some(position) = self.pool.positions.get_mut(worker.position) {
            position.booted();
        }
        log::debug!(
            "worker {pid} (generation {}) ready after {}ms",
            worker.generation,
            worker.started.elapsed().as_millis()
        );
    }

    /// Logs the "listening" line once the first workers all serve, so the
    /// line means "ready" (tests and scripts wait for it).
    fn announce(&mut self) {
        if self.listener.announced {
            return;
        }
        let table = &self.pool.table;
        let ready = table
            .workers
            .iter()
            .filter(|w| w.state() == State::Ready)
            .count();
        if ready >= self.pool.target {
            self.listener.announced = true;
            let scheme = match self.generations.current.tls {
                Some(_) => "https",
                None => "http",
            };
            log::info!(
                "drupe {} listening on {scheme}://{} with {} worker processes (master pid {}; plugins loaded from copies in {})",
                env!("CARGO_PKG_VERSION"),
                self.listener.address,
                self.pool.target,
                std::process::id(),
                self.generations.snapshots.root().display()
            );
            super::notify::send("READY=1");
        }
    }

    /// Collects every exited child and decides what each exit means.
    pub(super) fn reap_workers(&mut self) {
        // A worker that said "ready" and died at once (its first request
        // crashed it) died serving, not booting: read what the pipe holds
        // before judging the exits.
        for pid in self.inbox.ready() {
            self.on_ready(pid);
        }
        loop {
            let (pid, status) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, ExitStatus::Code(code)),
                Ok(WaitStatus::Signaled(pid, signal, _)) => {
                    (pid, ExitStatus::Signal(signal as i32))
                }
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            if self.is_probe(pid) {
                self.on_probe_exit(status);
                continue;
            }
            let Some(worker) = self.pool.remove(pid) else {
                continue;
            };
            // Before the slot is reused: its counts, and what it was doing.
            let mut serving = Vec::new();
            if let Some(slot) = worker.board {
                self.status.absorb(&self.pool.board, slot);
                serving.extend(self.pool.board.busy(slot).map(|b| b.route));
            }
            self.on_exit(worker, status, &serving);
        }
    }

    /// `serving`: the requests the worker had under way ("METHOD /path"),
    /// which name the culprit when a request crashed it.
    fn on_exit(&mut self, worker: Worker, status: ExitStatus, serving: &[String]) {
        let lived = worker.started.elapsed();
        if self.stop.is_some() || worker.stopping() {
            log::debug!("worker {} exited ({status:?})", worker.pid);
            return;
        }
        if status == ExitStatus::Code(worker::exit::BOOT_FAILED) {
            if !self.abandon_reload(&worker) {
                log::error!("worker {} could not load its plugins; stopping", worker.pid);
                self.failure = Some(MasterError::WorkerBoot { pid: worker.pid });
            }
            return;
        }
        let booted = worker.state() == State::Ready;
        let position = &mut self.pool.positions[worker.position];
        let delay = if booted {
            position.died_serving();
            Duration::ZERO
        } else {
            position.failed_boot(Instant::now())
        };
        let how = match status {
            ExitStatus::Code(code) => format!("exited with code {code}"),
            ExitStatus::Signal(signal) => format!(
                "was killed by {}",
                Signal::try_from(signal)
                    .map(|s| s.as_str())
                    .unwrap_or("a signal")
            ),
        };
        let serving = if serving.is_empty() {
            String::new()
        } else {
            format!(" while serving {}", serving.join(", "))
        };
        log::error!(
            "worker {} (generation {}) {how}{serving} after {:.1}s{}; respawning{} (restart {} of its position)",
            worker.pid,
            worker.generation,
            lived.as_secs_f64(),
            if booted { "" } else { ", before it was ready" },
            if delay.is_zero() {
                String::new()
            } else {
                format!(" in {}ms", delay.as_millis())
            },
            worker.restarts + 1
        );
    }
}
