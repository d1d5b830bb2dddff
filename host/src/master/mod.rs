//! The master: binds the socket once, forks the workers, and supervises
//! them until it is told to stop.
//!
//! It stays single-threaded and never loads a plugin or opens a store
//! connection, so every fork starts from a clean process. Everything it
//! reacts to is a file descriptor in one `poll` (nginx's
//! `ngx_master_process_cycle`, gunicorn's `Arbiter.run`): a signalfd for
//! signals ([`signals`]), a pipe on which workers say they are ready, and
//! an inotify watch of the plugin directory ([`watch`]). Each turn of the
//! loop ([`Master::supervise`]) keeps the pool full
//! ([`Master::manage_workers`], which also rolls a reload through one
//! worker at a time), sleeps in `poll`, handles what woke it, reaps exited
//! children ([`Master::reap_workers`]), kills workers whose request ran
//! past `requestTimeout` or that stop too slowly, and retires those past
//! `maxRequests` ([`Master::murder_workers`], in [`watchdog`]). The optional status
//! listener is served from the same loop ([`status`]).
//!
//! The master's state comes in parts, each changed by its own file: the
//! workers and their scoreboard ([`table::Pool`]; [`manage`]), the
//! generations and reloads ([`generation::Generations`]; [`reload`]), the
//! public socket ([`listen::Listener`]), the workers' pipe
//! ([`inbox::Inbox`]), the status listener ([`status`]), the redirect
//! listener ([`redirect`]), and how it stops
//! ([`Stop`]; [`signals`], [`drain`]).

mod drain;
mod files;
mod generation;
mod inbox;
mod listen;
mod manage;
mod notify;
mod redirect;
mod reload;
mod report;
mod signals;
mod spawn;
mod status;
mod table;
mod watch;
mod watchdog;

use crate::board::scoreboard::Scoreboard;
use crate::config::Config;
use generation::{Generation, Generations, Snapshots};
use inbox::Inbox;
use listen::Listener;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::unistd::Pid;
use spawn::ProbeMode;
use std::fmt;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};
use table::{Pool, State};

/// Why the master could not start or had to stop.
#[derive(Debug)]
pub enum MasterError {
    /// The listening socket could not be set up.
    Bind(String),
    /// The plugins or the store did not pass the probe (details were logged).
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
            MasterError::Plugins => f.write_str(
                "the plugins could not be loaded or the store failed its check \
                 (see the errors above)",
            ),
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
    let generation = Generation::snapshot(config.clone(), 0, &snapshots, None)?;
    if let Some((certificate, key)) = config.tls.files() {
        println!(
            "HTTPS: certificate {} and key {} belong together",
            certificate.display(),
            key.display()
        );
    }
    let ok = spawn::probe(config, &generation.files, ProbeMode::Describe)
        .map_err(|e| MasterError::Io(format!("cannot fork the plugin probe: {e}")))?;
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
    raise_open_files_limit();
    let listener = Listener::bind(&config.server)?;
    let status = status::StatusServer::bind(&config)?;
    let redirect = redirect::RedirectServer::bind(&config, listener.address.port())?;
    let signals = signals::master_signals()
        .map_err(|e| MasterError::Io(format!("cannot set up signals: {e}")))?;
    let inbox = Inbox::new()?;
    let board = Scoreboard::new(
        board_capacity(config.server.processes),
        config.server.thread_pool,
    )
    .map_err(|e| MasterError::Io(format!("cannot map the scoreboard: {e}")))?;
    let watch = reload::watch_for(&config, None);
    Snapshots::remove_left_behind();
    let snapshots = Snapshots::create()?;
    let current = Generation::snapshot(config, 1, &snapshots, None)?;
    match spawn::probe(&current.config, &current.files, ProbeMode::Quiet) {
        Ok(true) => {}
        Ok(false) => return Err(MasterError::Plugins),
        Err(e) => {
            return Err(MasterError::Io(format!(
                "cannot fork the plugin probe: {e}"
            )))
        }
    }
    let mut master = Master {
        pool: Pool::new(board, current.config.server.processes),
        generations: Generations {
            current,
            retired: Vec::new(),
            next_number: 2,
            probe: None,
            rollout: None,
            watch,
            snapshots,
        },
        listener,
        inbox,
        status,
        redirect,
        stop: None,
        failure: None,
    };
    master.supervise(&signals)
}

/// Raises the open-files limit before any worker is forked (they inherit
/// it): each connection is a descriptor. Logs the figure, which bounds
/// connections per worker whatever `maxConnectionsPerProcess` says.
fn raise_open_files_limit() {
    match crate::sys::process::raise_open_files_limit() {
        Ok(limit) if limit.now > limit.was => log::info!(
            "open files limit raised from {} to {} (the hard limit) for master and workers",
            limit.was,
            limit.now
        ),
        Ok(limit) => log::info!("open files limit: {} (the hard limit)", limit.now),
        Err(e) => log::warn!("cannot raise the open files limit: {e}"),
    }
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
    /// The workers, their scoreboard, the pool's size ([`manage`]).
    pool: Pool,
    /// What the workers run, and reloads ([`reload`]).
    generations: Generations,
    listener: Listener,
    /// Workers say "ready" here.
    inbox: Inbox,
    /// `[status]`: the status listener and the counts of exited workers.
    status: status::StatusServer,
    /// `[tls] redirectPort`: plain HTTP sent on to https:// ([`redirect`]).
    redirect: redirect::RedirectServer,
    stop: Option<Stop>,
    /// Set when a worker cannot boot: stop and report it.
    failure: Option<MasterError>,
}

/// What woke the master from `poll`.
struct Woken {
    signals: bool,
    inbox: bool,
    watch: bool,
    /// Poll results of the status sockets ([`status::StatusServer::poll_fds`]).
    status: Vec<PollFlags>,
    /// Poll results of the redirect sockets, likewise.
    redirect: Vec<PollFlags>,
}

impl Master {
    /// The master loop (gunicorn's `Arbiter.run`): until every worker has
    /// stopped, or one could not boot.
    fn supervise(&mut self, signals: &SignalFd) -> Result<(), MasterError> {
        loop {
            self.manage_workers();
            if let Some(failure) = self.failure.take() {
                self.kill_all(Signal::SIGKILL);
                self.cancel_probe();
                self.wait_all();
                return Err(failure);
            }
            if self.stop.is_some() && self.pool.table.is_empty() && self.generations.probe.is_none()
            {
                log::info!("all workers stopped; master {} exits", std::process::id());
                return Ok(());
            }
            let woken = self.sleep(signals)?;
            self.handle(woken, signals);
            self.reap_workers();
            self.murder_workers();
            self.reload_if_watched(Instant::now());
            self.drop_unused_generations();
        }
    }

    /// Waits in `poll` for a signal, a worker's message, the plugin
    /// directory, a status client, or the next deadline.
    fn sleep(&self, signals: &SignalFd) -> Result<Woken, MasterError> {
        let mut fds = vec![
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.inbox.fd(), PollFlags::POLLIN),
        ];
        if let Some(watch) = &self.generations.watch {
            fds.push(PollFd::new(watch.fd(), PollFlags::POLLIN));
        }
        let first_status = fds.len();
        self.status.poll_fds(&mut fds);
        let first_redirect = fds.len();
        self.redirect.poll_fds(&mut fds);
        match poll(&mut fds, self.next_wakeup()) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(MasterError::Io(format!("poll: {e}"))),
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        let revents = |fds: &[PollFd]| {
            fds.iter()
                .map(|fd| fd.revents().unwrap_or(PollFlags::empty()))
                .collect()
        };
        Ok(Woken {
            signals: ready(&fds[0]),
            inbox: ready(&fds[1]),
            watch: first_status > 2 && ready(&fds[2]),
            status: revents(&fds[first_status..first_redirect]),
            redirect: revents(&fds[first_redirect..]),
        })
    }

    fn handle(&mut self, woken: Woken, signals: &SignalFd) {
        let now = Instant::now();
        if woken.signals {
            while let Ok(Some(info)) = signals.read_signal() {
                if let Ok(signal) = Signal::try_from(info.ssi_signo as i32) {
                    self.on_signal(signal);
                }
            }
        }
        if woken.inbox {
            for pid in self.inbox.ready() {
                self.on_ready(pid);
            }
        }
        self.end_drain_if_due(now);
        if woken.watch {
            if let Some(watch) = &mut self.generations.watch {
                watch.on_readable(now);
            }
        }
        self.serve_status(&woken.status);
        self.redirect.serve(&woken.redirect);
    }

    fn next_wakeup(&self) -> PollTimeout {
        let now = Instant::now();
        // maxRequests is read from the scoreboard: look often enough that a
        // busy worker does not run far past its limit.
        let tick = if self.generations.current.config.server.max_requests > 0 {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        };
        let mut wake = now + tick;
        let deadlines = self
            .pool
            .table
            .workers
            .iter()
            .filter_map(|w| match w.state() {
                State::Stopping { deadline } => Some(deadline),
                _ => None,
            })
            .chain(self.pool.positions.iter().filter_map(|b| b.not_before))
            .chain(
                self.generations
                    .watch
                    .as_ref()
                    .and_then(watch::Watch::deadline),
            )
            .chain(self.status.deadline())
            .chain(self.redirect.deadline())
            .chain(self.drain_deadline())
            .chain(self.pool.next_check);
        for deadline in deadlines {
            wake = wake.min(deadline);
        }
        let ms = wake
            .saturating_duration_since(now)
            .as_millis()
            .clamp(1, 1000) as u16;
        PollTimeout::from(ms)
    }

    /// `gracefulTimeout` of the current generation.
    fn graceful_timeout(&self) -> Duration {
        self.generations.current.config.server.graceful_timeout
    }

    /// Whether `pid` is the probe of a pending reload.
    fn is_probe(&self, pid: Pid) -> bool {
        self.generations
            .probe
            .as_ref()
            .is_some_and(|p| p.pid == pid)
    }
}
