//! The master: binds the socket once, forks the workers, and supervises
//! them until it is told to stop.
//!
//! It stays single-threaded and never loads a plugin or opens a store
//! connection, so every fork starts from a clean process. Signals arrive
//! through a signalfd and are handled in the loop like any other event
//! (nginx's `ngx_master_process_cycle`, gunicorn's `Arbiter.run`): reap,
//! respawn, stop.

mod spawn;
mod table;

use crate::config::Config;
use crate::plugin;
use crate::worker;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use spawn::{ProbeMode, Snapshot};
use std::fmt;
use std::net::{TcpListener, ToSocketAddrs};
use std::os::fd::AsFd;
use std::path::PathBuf;
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
    let generation = Generation::snapshot(config, 0)?;
    let ok = spawn::probe(config, &generation.files, ProbeMode::Describe)
        .map_err(|e| MasterError::Io(format!("cannot fork the plugin probe: {e}")))?;
    generation.remove();
    if ok {
        Ok(())
    } else {
        Err(MasterError::Plugins)
    }
}

/// Runs the server in the foreground until TERM, INT or QUIT.
pub fn run(config: Config) -> Result<(), MasterError> {
    let listener = bind(&config)?;
    let address = listener
        .local_addr()
        .map_err(|e| MasterError::Io(e.to_string()))?;
    let signals =
        master_signals().map_err(|e| MasterError::Io(format!("cannot set up signals: {e}")))?;
    let generation = Generation::snapshot(&config, 1)?;
    let probed = spawn::probe(&config, &generation.files, ProbeMode::Quiet)
        .map_err(|e| MasterError::Io(format!("cannot fork the plugin probe: {e}")))?;
    if !probed {
        generation.remove();
        return Err(MasterError::Plugins);
    }
    let mut master = Master {
        target: config.server.processes,
        config,
        listener,
        generation,
        table: Table::default(),
        backoff: Vec::new(),
        stop: None,
        failure: None,
    };
    log::info!(
        "drupe {} listening on http://{address} with {} worker processes (master pid {})",
        env!("CARGO_PKG_VERSION"),
        master.target,
        std::process::id()
    );
    let result = master.supervise(&signals);
    master.generation.remove();
    result
}

/// The plugin files one generation of workers loads: a private copy, so
/// overwriting a `.so` in the plugin directory cannot crash them.
struct Generation {
    number: u64,
    dir: PathBuf,
    files: Snapshot,
}

impl Generation {
    fn snapshot(config: &Config, number: u64) -> Result<Generation, MasterError> {
        let dir = std::env::temp_dir()
            .join(format!("drupe-{}", std::process::id()))
            .join(format!("gen-{number}"));
        let files = plugin::snapshot(&config.plugins.directory, &dir)
            .map_err(|e| MasterError::Io(e.to_string()))?;
        if files.is_empty() {
            log::warn!(
                "no plugins (*.so) in {}: every request will get 404",
                config.plugins.directory.display()
            );
        }
        Ok(Generation { number, dir, files })
    }

    fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir(parent); // only if no generation is left
        }
    }
}

/// How the master is stopping.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// Workers finish in-flight requests until `deadline`, then are killed.
    Graceful {
        deadline: Instant,
    },
    Immediate,
}

struct Master {
    config: Config,
    listener: TcpListener,
    generation: Generation,
    table: Table,
    /// Number of workers wanted (TTIN / TTOU change it).
    target: usize,
    /// Respawn bookkeeping per pool position.
    backoff: Vec<Backoff>,
    stop: Option<Stop>,
    /// Set when a worker cannot boot: stop and report it.
    failure: Option<MasterError>,
}

fn bind(config: &Config) -> Result<TcpListener, MasterError> {
    let server = &config.server;
    let shown = format!("{}:{}", server.socket_host, server.socket_port);
    let addrs: Vec<_> = (server.socket_host.as_str(), server.socket_port)
        .to_socket_addrs()
        .map_err(|e| MasterError::Bind(format!("socketHost {shown}: {e}")))?
        .collect();
    let listener = TcpListener::bind(&addrs[..]).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "; another server is using it: stop it or set [server] socketPort"
            }
            std::io::ErrorKind::PermissionDenied => {
                "; ports below 1024 need root (or CAP_NET_BIND_SERVICE)"
            }
            _ => "",
        };
        MasterError::Bind(format!("cannot listen on {shown}: {e}{hint}"))
    })?;
    // std's bind picks its own backlog; apply socketQueueSize.
    let backlog =
        nix::sys::socket::Backlog::new(server.socket_queue_size.min(i32::MAX as u32) as i32)
            .unwrap_or(nix::sys::socket::Backlog::MAXCONN);
    nix::sys::socket::listen(&listener, backlog)
        .map_err(|e| MasterError::Bind(format!("listen on {shown}: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| MasterError::Bind(e.to_string()))?;
    Ok(listener)
}

const HANDLED: [Signal; 8] = [
    Signal::SIGCHLD,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
];

/// Blocks the master's signals and returns a signalfd that reads them.
fn master_signals() -> nix::Result<SignalFd> {
    let mut mask = SigSet::empty();
    for signal in HANDLED {
        mask.add(signal);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
}

impl Master {
    fn supervise(&mut self, signals: &SignalFd) -> Result<(), MasterError> {
        loop {
            self.manage_workers();
            if let Some(failure) = self.failure.take() {
                self.kill_all(Signal::SIGKILL);
                self.wait_all();
                return Err(failure);
            }
            if self.stop.is_some() && self.table.is_empty() {
                log::info!("all workers stopped; master {} exits", std::process::id());
                return Ok(());
            }
            let timeout = self.next_wakeup();
            let mut fds = [PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(MasterError::Io(format!("poll: {e}"))),
            }
            while let Ok(Some(info)) = signals.read_signal() {
                if let Ok(signal) = Signal::try_from(info.ssi_signo as i32) {
                    self.on_signal(signal);
                }
            }
            self.reap();
            if let Some(Stop::Graceful { deadline }) = self.stop {
                if Instant::now() >= deadline && !self.table.is_empty() {
                    log::warn!(
                        "gracefulTimeout passed; killing {} worker(s)",
                        self.table.workers.len()
                    );
                    self.kill_all(Signal::SIGKILL);
                }
            }
        }
    }

    fn next_wakeup(&self) -> PollTimeout {
        let now = Instant::now();
        let mut wake = now + Duration::from_secs(1);
        if let Some(Stop::Graceful { deadline }) = self.stop {
            wake = wake.min(deadline);
        }
        for backoff in &self.backoff {
            if let Some(t) = backoff.not_before {
                wake = wake.min(t);
            }
        }
        let ms = wake
            .saturating_duration_since(now)
            .as_millis()
            .clamp(1, 1000) as u16;
        PollTimeout::from(ms)
    }

    fn on_signal(&mut self, signal: Signal) {
        match signal {
            Signal::SIGCHLD => {} // reaped after every wake-up
            Signal::SIGINT if self.stop.is_some() => {
                log::warn!("second interrupt: stopping now");
                self.stop_now();
            }
            Signal::SIGTERM | Signal::SIGINT if self.stop.is_none() => {
                let timeout = self.config.server.graceful_timeout;
                log::info!(
                    "{signal:?}: graceful stop (gracefulTimeout {}s)",
                    timeout.as_secs()
                );
                self.stop = Some(Stop::Graceful {
                    deadline: Instant::now() + timeout,
                });
                self.kill_all(Signal::SIGTERM);
            }
            Signal::SIGQUIT => {
                log::info!("SIGQUIT: immediate stop");
                self.stop_now();
            }
            Signal::SIGTTIN => {
                self.target += 1;
                log::info!("SIGTTIN: {} worker processes", self.target);
            }
            Signal::SIGTTOU if self.target > 1 => {
                self.target -= 1;
                log::info!("SIGTTOU: {} worker processes", self.target);
            }
            Signal::SIGHUP => log::warn!(
                "SIGHUP: reloading is not supported by this build; restart drupe instead"
            ),
            Signal::SIGUSR1 => self.reopen_logs(),
            _ => {}
        }
    }

    /// USR1: reopen this process's logs, then have every worker reopen
    /// its own (they hold their own descriptors of the old file).
    fn reopen_logs(&mut self) {
        match crate::logging::reopen_all() {
            Ok(()) => log::info!("SIGUSR1: reopened the log files"),
            Err(e) => log::error!("SIGUSR1: {e}; still writing to the old file"),
        }
        for pid in self.table.pids() {
            let _ = kill(pid, Signal::SIGUSR1);
        }
    }

    fn stop_now(&mut self) {
        self.stop = Some(Stop::Immediate);
        self.kill_all(Signal::SIGKILL);
    }

    fn kill_all(&mut self, signal: Signal) {
        for worker in &mut self.table.workers {
            if signal == Signal::SIGTERM {
                worker.state = State::Stopping;
            }
            let _ = kill(worker.pid, signal);
        }
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
            let Some(worker) = self.table.remove(pid) else {
                continue;
            };
            self.on_exit(worker, status);
        }
    }

    fn on_exit(&mut self, worker: Worker, status: ExitStatus) {
        let lived = worker.started.elapsed();
        if self.stop.is_some() || worker.state == State::Stopping {
            log::debug!("worker {} exited ({status:?})", worker.pid);
            return;
        }
        if status == ExitStatus::Code(worker::exit::BOOT_FAILED) {
            log::error!("worker {} could not load its plugins; stopping", worker.pid);
            self.failure = Some(MasterError::WorkerBoot { pid: worker.pid });
            return;
        }
        let delay = self.backoff[worker.slot].crashed(lived, Instant::now());
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
            "worker {} (generation {}) {how} after {:.1}s; respawning{}",
            worker.pid,
            worker.generation,
            lived.as_secs_f64(),
            if delay.is_zero() {
                String::new()
            } else {
                format!(" in {}ms", delay.as_millis())
            }
        );
    }

    /// Forks workers until every pool position is filled (respecting
    /// backoff), and stops the ones beyond the target.
    fn manage_workers(&mut self) {
        if self.stop.is_some() || self.failure.is_some() {
            return;
        }
        if self.backoff.len() < self.target {
            self.backoff.resize(self.target, Backoff::default());
        }
        let now = Instant::now();
        for slot in 0..self.target {
            if self.table.serving(slot) || !self.backoff[slot].ready(now) {
                continue;
            }
            match spawn::worker(&self.config, &self.listener, &self.generation.files) {
                Ok(pid) => self.table.insert(Worker {
                    pid,
                    generation: self.generation.number,
                    state: State::Starting,
                    started: now,
                    slot,
                }),
                Err(e) => {
                    log::error!("cannot fork a worker: {e}");
                    self.backoff[slot].crashed(Duration::ZERO, now);
                }
            }
        }
        for worker in &mut self.table.workers {
            if worker.slot >= self.target && worker.state != State::Stopping {
                worker.state = State::Stopping;
                let _ = kill(worker.pid, Signal::SIGTERM);
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
