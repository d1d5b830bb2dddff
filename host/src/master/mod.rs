//! The master: binds the socket once, forks the workers, and supervises
//! them until it is told to stop.
//!
//! It stays single-threaded and never loads a plugin or opens a store
//! connection, so every fork starts from a clean process. Everything it
//! reacts to is a file descriptor in one `poll` (nginx's
//! `ngx_master_process_cycle`, gunicorn's `Arbiter.run`): a signalfd for
//! signals ([`signals`]), a pipe on which workers say they are ready, and
//! an inotify watch of the plugin directory ([`watch`]). Each turn of the
//! loop reaps exited children, keeps the pool full ([`Master::manage_workers`],
//! which also rolls a reload through one worker at a time), and checks the
//! shared-memory scoreboard for requests past `requestTimeout` and workers
//! past `maxRequests` ([`watchdog`]). The optional status listener is
//! served from the same loop ([`status`]).

mod drain;
mod files;
mod generation;
mod listen;
mod notify;
mod reload;
mod report;
mod signals;
mod spawn;
mod status;
mod table;
mod watch;
mod watchdog;

use crate::board::scoreboard::{self, Scoreboard};
use crate::config::Config;
use crate::worker::{self, link};
use generation::{Generation, Snapshots};
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use spawn::ProbeMode;
use std::fmt;
use std::net::TcpListener;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};
use table::{Backoff, ExitStatus, State, Table, Worker};

/// Why the master could not start or had to stop.
#[derive(Debug)]
pub enum MasterError {
    /// The listening socket could not be set up.
    Bind(String),
    /// The plugins did not pass the probe (details were logged).
    Plugins,
    /// A worker could not boot (details were logged by the worker).
    WorkerBoot {
        pid: Pid,
    },
    Io(String),
}

impl fmt::Display for MasterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterError::Bind(e) => f.write_str(e),
            MasterError::Plugins => {
                f.write_str("the plugins could not be loaded (see the errors above)")
            }
            MasterError::WorkerBoot { pid } => {
                write!(
                    f,
                    "worker {pid} could not start (see the errors above); not respawning"
                )
            }
            MasterError::Io(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for MasterError {}

/// `--check`: load the plugins in a probe and print what would be served.
pub fn check(config: &Config) -> Result<(), MasterError> {
    let snapshots = Snapshots::create()?;
    let probed = Generation::snapshot(config.clone(), 0, &snapshots).and_then(|generation| {
        let ok = spawn::probe(config, &generation.files, ProbeMode::Describe)
            .map_err(|e| MasterError::Io(format!("cannot fork the plugin probe: {e}")));
        generation.remove();
        ok
    });
    snapshots.remove();
    let ok = probed?;
    if ok {
        Ok(())
    } else {
        Err(MasterError::Plugins)
    }
}

/// Scoreboard rows: room for the pool to double during a reload, with
/// workers still finishing their requests, and for some TTIN.
fn board_capacity(processes: usize) -> usize {
    (processes * 4).max(32)
}

/// Runs the server in the foreground until TERM, INT or QUIT.
pub fn run(config: Config) -> Result<(), MasterError> {
    files::check_privileges(&config)?;
    let server = &config.server;
    let listener = listen::bind(
        "[server]",
        &server.socket_host,
        server.socket_port,
        Some(server.socket_queue_size),
    )?;
    let status = status::StatusServer::bind(&config)?;
    let address = listener
        .local_addr()
        .map_err(|e| MasterError::Io(e.to_string()))?;
    let signals = signals::master_signals()
        .map_err(|e| MasterError::Io(format!("cannot set up signals: {e}")))?;
    let (notify_read, notify_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
        .map_err(|e| MasterError::Io(format!("cannot create the worker pipe: {e}")))?;
    let board = Scoreboard::new(
        board_capacity(config.server.processes),
        config.server.thread_pool,
    )
    .map_err(|e| MasterError::Io(format!("cannot map the scoreboard: {e}")))?;
    let watch = reload::watch_for(&config, None);
    let snapshots = Snapshots::create()?;
    let current = match Generation::snapshot(config, 1, &snapshots) {
        Ok(current) => current,
        Err(e) => {
            snapshots.remove();
            return Err(e);
        }
    };
    let probed = spawn::probe(&current.config, &current.files, ProbeMode::Quiet);
    if !matches!(probed, Ok(true)) {
        current.remove();
        snapshots.remove();
        return Err(match probed {
            Err(e) => MasterError::Io(format!("cannot fork the plugin probe: {e}")),
            Ok(_) => MasterError::Plugins,
        });
    }
    let mut master = Master {
        target: current.config.server.processes,
        bound: current.config.server.clone(),
        current,
        retired: Vec::new(),
        next_generation: 2,
        snapshots,
        listener,
        table: Table::default(),
        board: Arc::new(board),
        notify_read,
        notify_write: Arc::new(notify_write),
        notify_partial: Vec::new(),
        positions: Vec::new(),
        stop: None,
        failure: None,
        probe: None,
        watch,
        rollout: None,
        next_check: None,
        address,
        announced: false,
        status,
    };
    let result = master.supervise(&signals);
    master.current.remove();
    for generation in &master.retired {
        generation.remove();
    }
    master.snapshots.remove();
    result
}

/// How the master is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Workers serve on, failing their health check, until `until`; then
    /// the stop is graceful (see [`drain`]).
    Draining {
        until: Instant,
    },
    /// Workers finish in-flight requests within `gracefulTimeout`.
    Graceful,
    Immediate,
}

struct Master {
    /// The generation new workers load.
    current: Generation,
    /// Older generations whose workers are still running.
    retired: Vec<Generation>,
    next_generation: u64,
    snapshots: Snapshots,
    listener: TcpListener,
    table: Table,
    board: Arc<Scoreboard>,
    /// Workers write "ready" here (see `worker::link`).
    notify_read: OwnedFd,
    notify_write: Arc<OwnedFd>,
    /// Bytes of a message not yet complete (never expected: messages are
    /// written whole; kept so a short read cannot misalign the stream).
    notify_partial: Vec<u8>,
    /// Number of workers wanted (TTIN / TTOU change it).
    target: usize,
    /// Respawn bookkeeping per pool position.
    positions: Vec<Backoff>,
    stop: Option<Stop>,
    /// Set when a worker cannot boot: stop and report it.
    failure: Option<MasterError>,
    /// A reload whose probe is still running.
    probe: Option<reload::Probe>,
    watch: Option<watch::Watch>,
    /// A reload being rolled through the pool, for the log.
    rollout: Option<reload::Rollout>,
    /// When the watchdog must look at the scoreboard again.
    next_check: Option<Instant>,
    address: std::net::SocketAddr,
    /// `[server]` as the socket was bound: what a reload cannot change.
    bound: crate::config::Server,
    /// The "listening" line was logged (once every first worker is ready).
    announced: bool,
    /// `[status]`: the status listener and the counts of exited workers.
    status: status::StatusServer,
}

impl Master {
    fn supervise(&mut self, signals: &SignalFd) -> Result<(), MasterError> {
        loop {
            self.manage_workers();
            if let Some(failure) = self.failure.take() {
                self.kill_all(Signal::SIGKILL);
                self.cancel_probe();
                self.wait_all();
                return Err(failure);
            }
            if self.stop.is_some() && self.table.is_empty() && self.probe.is_none() {
                log::info!("all workers stopped; master {} exits", std::process::id());
                return Ok(());
            }
            let timeout = self.next_wakeup();
            let (signalled, notified, watched, status) = {
                let mut fds = vec![
                    PollFd::new(signals.as_fd(), PollFlags::POLLIN),
                    PollFd::new(self.notify_read.as_fd(), PollFlags::POLLIN),
                ];
                if let Some(watch) = &self.watch {
                    fds.push(PollFd::new(watch.fd(), PollFlags::POLLIN));
                }
                let first_status = fds.len();
                self.status.poll_fds(&mut fds);
                match poll(&mut fds, timeout) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(MasterError::Io(format!("poll: {e}"))),
                }
                let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
                let status: Vec<PollFlags> = fds[first_status..]
                    .iter()
                    .map(|fd| fd.revents().unwrap_or(PollFlags::empty()))
                    .collect();
                (
                    ready(&fds[0]),
                    ready(&fds[1]),
                    self.watch.is_some() && ready(&fds[2]),
                    status,
                )
            };
            let now = Instant::now();
            if signalled {
                while let Ok(Some(info)) = signals.read_signal() {
                    if let Ok(signal) = Signal::try_from(info.ssi_signo as i32) {
                        self.on_signal(signal);
                    }
                }
            }
            if notified {
                self.read_notifications();
            }
            self.end_drain_if_due(now);
            if watched {
                if let Some(watch) = &mut self.watch {
                    watch.on_readable(now);
                }
            }
            self.serve_status(&status);
            self.reap();
            self.watchdog();
            self.reload_if_watched(Instant::now());
            self.drop_unused_generations();
        }
    }

    fn next_wakeup(&self) -> PollTimeout {
        let now = Instant::now();
        // maxRequests is read from the scoreboard: look often enough that a
        // busy worker does not run far past its limit.
        let tick = if self.current.config.server.max_requests > 0 {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        };
        let mut wake = now + tick;
        let deadlines = self
            .table
            .workers
            .iter()
            .filter_map(|w| match w.state {
                State::Stopping { deadline } => Some(deadline),
                _ => None,
            })
            .chain(self.positions.iter().filter_map(|b| b.not_before))
            .chain(self.watch.as_ref().and_then(watch::Watch::deadline))
            .chain(self.status.deadline())
            .chain(self.drain_deadline())
            .chain(self.next_check);
        for deadline in deadlines {
            wake = wake.min(deadline);
        }
        let ms = wake
            .saturating_duration_since(now)
            .as_millis()
            .clamp(1, 1000) as u16;
        PollTimeout::from(ms)
    }

    /// Signals every worker; SIGTERM also starts its graceful deadline.
    fn kill_all(&mut self, signal: Signal) {
        let deadline = Instant::now() + self.current.config.server.graceful_timeout;
        for worker in &mut self.table.workers {
            if signal == Signal::SIGTERM && !worker.stopping() {
                worker.state = State::Stopping { deadline };
            }
            let _ = kill(worker.pid, signal);
        }
    }

    /// Asks one worker to finish its requests and exit.
    fn retire(&mut self, pid: Pid) {
        let deadline = Instant::now() + self.current.config.server.graceful_timeout;
        if let Some(worker) = self.table.get_mut(pid) {
            if !worker.stopping() {
                worker.state = State::Stopping { deadline };
                if let Some(slot) = worker.board {
                    self.board.set_state(slot, scoreboard::STATE_STOPPING);
                }
                let _ = kill(pid, Signal::SIGTERM);
            }
        }
    }

    /// Takes the workers' "ready" messages.
    fn read_notifications(&mut self) {
        let mut buf = [0u8; 64 * link::MESSAGE_LEN];
        loop {
            let n = match nix::unistd::read(&self.notify_read, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            self.notify_partial.extend_from_slice(&buf[..n]);
            let whole = self.notify_partial.len() / link::MESSAGE_LEN * link::MESSAGE_LEN;
            let messages: Vec<u8> = self.notify_partial.drain(..whole).collect();
            for chunk in messages.chunks_exact(link::MESSAGE_LEN) {
                let mut msg = [0u8; link::MESSAGE_LEN];
                msg.copy_from_slice(chunk);
                let (pid, event) = link::decode(msg);
                if event == link::READY {
                    self.on_ready(Pid::from_raw(pid));
                }
            }
        }
    }

    fn on_ready(&mut self, pid: Pid) {
        let Some(worker) = self.table.get_mut(pid) else {
            return;
        };
        if worker.state != State::Starting {
            return;
        }
        worker.state = State::Ready;
        if let Some(slot) = worker.board {
            self.board.set_state(slot, scoreboard::STATE_READY);
        }
        log::debug!(
            "worker {pid} (generation {}) ready after {}ms",
            worker.generation,
            worker.started.elapsed().as_millis()
        );
    }

    /// Collects every exited child and decides what each exit means.
    fn reap(&mut self) {
        loop {
            let (pid, status) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, ExitStatus::Code(code)),
                Ok(WaitStatus::Signaled(pid, signal, _)) => {
                    (pid, ExitStatus::Signal(signal as i32))
                }
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            if self.probe.as_ref().is_some_and(|p| p.pid == pid) {
                self.on_probe_exit(status);
                continue;
            }
            let Some(worker) = self.table.remove(pid) else {
                continue;
            };
            if let Some(slot) = worker.board {
                self.status.absorb(&self.board, slot); // before the slot is reused
                self.board.set_state(slot, scoreboard::STATE_FREE);
            }
            self.on_exit(worker, status);
        }
    }

    fn on_exit(&mut self, worker: Worker, status: ExitStatus) {
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
        let delay = self.positions[worker.position].crashed(lived, Instant::now());
        let how = match status {
            ExitStatus::Code(code) => format!("exited with code {code}"),
            ExitStatus::Signal(signal) => format!(
                "was killed by {}",
                Signal::try_from(signal)
                    .map(|s| s.as_str())
                    .unwrap_or("a signal")
            ),
        };
        log::error!(
            "worker {} (generation {}) {how} after {:.1}s; respawning{} (restart {} of its position)",
            worker.pid,
            worker.generation,
            lived.as_secs_f64(),
            if delay.is_zero() {
                String::new()
            } else {
                format!(" in {}ms", delay.as_millis())
            },
            worker.restarts + 1
        );
    }

    /// Keeps every pool position filled with a worker of the current
    /// generation: respawns empty positions (respecting backoff), replaces
    /// outdated or retiring workers one at a time — each replacement ready
    /// before the worker it replaces is told to stop — and stops the
    /// workers beyond the target.
    fn manage_workers(&mut self) {
        if self.stop.is_some() || self.failure.is_some() {
            return;
        }
        if self.positions.len() < self.target {
            self.positions.resize(self.target, Backoff::default());
        }
        let now = Instant::now();
        let current = self.current.number;
        let fresh = |w: &Worker| w.generation == current && !w.retiring;
        // A replacement in progress: a fresh worker still starting where an
        // outdated one serves. Only one at a time, so a reload never takes
        // more than one extra worker's worth of memory and CPU.
        let replacing = (0..self.target).any(|p| {
            let live: Vec<&Worker> = self.table.live_at(p).collect();
            live.iter().any(|w| fresh(w) && w.state == State::Starting)
                && live.iter().any(|w| !fresh(w))
        });
        let mut spawned_replacement = false;
        for position in 0..self.target {
            let live: Vec<&Worker> = self.table.live_at(position).collect();
            if live.iter().any(|w| fresh(w)) || !self.positions[position].ready(now) {
                continue;
            }
            if !live.is_empty() {
                if replacing || spawned_replacement {
                    continue;
                }
                spawned_replacement = true;
            }
            self.spawn(position, now);
        }
        // Outdated workers whose replacement is ready stop now.
        let mut outdated = Vec::new();
        for position in 0..self.target {
            let live: Vec<&Worker> = self.table.live_at(position).collect();
            if live.iter().any(|w| fresh(w) && w.state == State::Ready) {
                outdated.extend(live.iter().filter(|w| !fresh(w)).map(|w| w.pid));
            }
        }
        let beyond = self
            .table
            .workers
            .iter()
            .filter(|w| w.position >= self.target && !w.stopping())
            .map(|w| w.pid);
        let to_stop: Vec<Pid> = outdated.into_iter().chain(beyond).collect();
        for pid in to_stop {
            self.retire(pid);
        }
        self.note_rollout_progress();
        self.announce();
    }

    /// Logs the "listening" line once the first workers all serve, so the
    /// line means "ready" (tests and scripts wait for it).
    fn announce(&mut self) {
        if self.announced {
            return;
        }
        let ready = self
            .table
            .workers
            .iter()
            .filter(|w| w.state == State::Ready)
            .count();
        if ready >= self.target {
            self.announced = true;
            log::info!(
                "drupe {} listening on http://{} with {} worker processes (master pid {}; plugins loaded from copies in {})",
                env!("CARGO_PKG_VERSION"),
                self.address,
                self.target,
                std::process::id(),
                self.snapshots.root().display()
            );
            notify::send("READY=1");
        }
    }

    fn spawn(&mut self, position: usize, now: Instant) {
        let config = &self.current.config;
        let board = self.table.free_board_slot(self.board.capacity());
        if let Some(slot) = board {
            self.board.assign(slot, 0, self.current.number);
        } else {
            log::warn!(
                "the scoreboard is full ({} workers): the new worker runs without requestTimeout and maxRequests",
                self.board.capacity()
            );
        }
        let link = link::Link {
            notify: Some(Arc::clone(&self.notify_write)),
            board: board.map(|slot| (Arc::clone(&self.board), slot)),
        };
        match spawn::worker(config, &self.listener, &self.current.files, link) {
            Ok(pid) => {
                if let Some(slot) = board {
                    self.board.set_pid(slot, pid.as_raw());
                }
                self.table.insert(Worker {
                    pid,
                    generation: self.current.number,
                    state: State::Starting,
                    started: now,
                    position,
                    board,
                    retiring: false,
                    max_requests: watchdog::draw_max_requests(&config.server),
                    restarts: self.positions[position].restarts,
                    killed: false,
                });
            }
            Err(e) => {
                log::error!("cannot fork a worker: {e}");
                if let Some(slot) = board {
                    self.board.set_state(slot, scoreboard::STATE_FREE);
                }
                self.positions[position].crashed(Duration::ZERO, now);
            }
        }
    }

    fn wait_all(&mut self) {
        for pid in self.table.pids() {
            let _ = waitpid(pid, None);
        }
        self.table.workers.clear();
    }
}
