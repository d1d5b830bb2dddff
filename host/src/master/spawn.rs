//! Forking: worker processes and the throwaway probe that loads the plugins
//! (and prepares the store) before any worker does.
//!
//! Everything a child does before it serves happens here: switch to
//! `[server] user` if drupe runs as root (`sys::privileges`), die with the
//! master, reset the signal mask the master uses for its signalfd, load the
//! generation's plugin snapshot. The child never returns into the master's
//! loop; it ends with `std::process::exit`.
//!
//! The probe reports each step ("loading plugins.d/x.so") on a pipe
//! ([`Progress`]) before taking it: a library that kills the probe with a
//! signal while it is mapped or initialised (SIGBUS from a damaged file,
//! SIGSEGV in a constructor) cannot say so itself, but its last step names
//! the file to blame.

use super::table::ExitStatus;
use crate::config::Config;
use crate::plugin::{self, PluginSet};
use crate::sys::privileges::{self, Identity};
use crate::sys::process::{self, Forked};
use crate::worker::{self, link::Link, CallState};
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::io::{self, Write};
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// A generation's plugin files: originals and their private copies.
pub type Snapshot = Vec<(PathBuf, PathBuf)>;

/// Forks a worker that serves `listener` with the plugins of `snapshot`
/// (over TLS with `tls`), and reports to the master through `link`.
pub fn worker(
    config: &Config,
    listener: &TcpListener,
    snapshot: &Snapshot,
    tls: Option<&crate::tls::Tls>,
    link: Link,
) -> io::Result<Pid> {
    let master = nix::unistd::getpid();
    let identity = privileges::resolve(&config.server).map_err(io::Error::other)?;
    match process::fork()? {
        Forked::Parent(pid) => Ok(pid),
        Forked::Child => {
            let code = child_setup(master, identity.as_ref()).and_then(|()| {
                let plugins =
                    load(config, snapshot, |_| {}).map_err(|()| worker::exit::BOOT_FAILED)?;
                link.publish_plugins(plugins.plugins.iter().map(|p| p.decl.name.as_str()));
                // The worker's own descriptor, and none other: the one it
                // inherited is the master's, and a worker that stops closes
                // the socket for itself with a single close.
                let own = listener.try_clone().map_err(|_| worker::exit::IO_ERROR)?;
                crate::sys::net::close_listener(listener).map_err(|_| worker::exit::IO_ERROR)?;
                let tls = tls.map(|t| std::sync::Arc::clone(&t.server));
                Ok(worker::run(config, own, tls, plugins, link))
            });
            std::process::exit(code.unwrap_or_else(|code| code))
        }
    }
}

/// What the probe should do once the plugins are loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeMode {
    /// Only report success or failure (startup, reload).
    Quiet,
    /// Print the plugins and routes on stdout (`--check`).
    Describe,
}

/// Loads and initialises every plugin in a throwaway child process, so a
/// broken plugin is found once, with a clear message, before any worker is
/// replaced — and so that the master itself never runs plugin code.
/// Returns whether the plugins are fit to serve; when not, the reason has
/// been logged. Blocks until the probe is done: for startup and `--check`;
/// a reload uses [`probe_start`].
pub fn probe(config: &Config, snapshot: &Snapshot, mode: ProbeMode) -> io::Result<bool> {
    let (pid, progress) = probe_start(config, snapshot, mode)?;
    let status = loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => break ExitStatus::Code(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => break ExitStatus::Signal(signal as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    match progress.failure(status) {
        None => Ok(true),
        Some(ProbeFailure::Logged) => Ok(false),
        Some(ProbeFailure::Died(why)) => {
            log::error!("the plugin probe {why}");
            Ok(false)
        }
    }
}

/// The probe's exit code when it found problems and logged them.
const PROBE_LOGGED: i32 = 1;

/// Forks the probe and returns its pid at once, with the pipe on which it
/// reports its steps; it exits 0 if the plugins are fit to serve. The
/// master reaps it like a worker, so a slow plugin `init` never stalls its
/// loop.
pub fn probe_start(
    config: &Config,
    snapshot: &Snapshot,
    mode: ProbeMode,
) -> io::Result<(Pid, Progress)> {
    let master = nix::unistd::getpid();
    let identity = privileges::resolve(&config.server).map_err(io::Error::other)?;
    // Non-blocking at both ends: a probe must never wait for the master to
    // read, and the master reads only what is there once the probe is gone.
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    match process::fork()? {
        Forked::Parent(pid) => {
            drop(write); // so that workers forked later do not hold it
            Ok((pid, Progress { read }))
        }
        Forked::Child => {
            drop(read);
            let step = |what: &str| {
                let _ = nix::unistd::write(&write, format!("{what}\n").as_bytes());
            };
            // The store and the plugins are both checked, so that one
            // run of `--check` reports every problem.
            let ok = child_setup(master, identity.as_ref()).is_ok()
                && prepare_store(config)
                    & load(config, snapshot, step).is_ok_and(|plugins| {
                        let started = plugins.init_with::<CallState>(|p| {
                            step(&format!(
                                "starting plugin `{}` ({})",
                                p.decl.name,
                                p.file.display()
                            ));
                        });
                        if let Err(errors) = &started {
                            log::error!("{errors}");
                        }
                        step("shutting the plugins down");
                        plugins.shutdown();
                        if started.is_ok() && mode == ProbeMode::Describe {
                            let mut out = io::stdout().lock();
                            let _ = out.write_all(plugins.describe().as_bytes());
                            let _ = out.flush();
                        }
                        started.is_ok()
                    });
            std::process::exit(if ok { 0 } else { PROBE_LOGGED })
        }
    }
}

/// The read end of a probe's report: the steps it took, one per line.
#[derive(Debug)]
pub struct Progress {
    read: OwnedFd,
}

/// Why a probe did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeFailure {
    /// It found problems and logged each, naming the file.
    Logged,
    /// It died on the way; what to log after "the plugin probe " (which
    /// signal or exit code, and the file it was busy with).
    Died(String),
}

impl Progress {
    /// Judges a probe that exited with `status`: `None` if it passed.
    pub fn failure(&self, status: ExitStatus) -> Option<ProbeFailure> {
        let how = match status {
            ExitStatus::Code(0) => return None,
            ExitStatus::Code(PROBE_LOGGED) => return Some(ProbeFailure::Logged),
            ExitStatus::Code(code) => format!("exited with code {code}"),
            ExitStatus::Signal(signal) => {
                let name = Signal::try_from(signal).map_or("a signal", |s| s.as_str());
                format!("was killed by {name}")
            }
        };
        let doing = match self.last_step() {
            Some(step) => format!(" while {step}"),
            None => String::new(),
        };
        let hint = if status == ExitStatus::Signal(Signal::SIGBUS as i32) {
            " (SIGBUS while loading usually means the file is truncated or was overwritten as it was read)"
        } else {
            ""
        };
        Some(ProbeFailure::Died(format!("{how}{doing}{hint}")))
    }

    /// The last step the probe reported (it has exited: read what is there).
    fn last_step(&self) -> Option<String> {
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = nix::unistd::read(&self.read, &mut buf) {
            text.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&text)
            .lines()
            .rfind(|l| !l.is_empty())
            .map(str::to_owned)
    }
}

/// Creates what the store needs before workers open it (the SQLite file
/// and schema), in the probe so that the master opens nothing and the file
/// belongs to the workers' user; false, with the reason logged, if it
/// cannot.
fn prepare_store(config: &Config) -> bool {
    crate::store::prepare(&config.store)
        .map_err(|e| log::error!("{}", e.message()))
        .is_ok()
}

/// Loads the snapshot, calling `step` before each file; logs every error.
fn load(config: &Config, snapshot: &Snapshot, step: impl FnMut(&str)) -> Result<PluginSet, ()> {
    plugin::load(snapshot, config, step).map_err(|errors| {
        for error in &errors.0 {
            log::error!("{error}");
        }
    })
}

/// First steps of every child: drop root for `identity`, die with the
/// master, and take back the signals the master blocked for its signalfd.
/// `master` is the pid taken before the fork: asking `getppid()` here
/// would get the reaper's pid if the master had just died, and the worker
/// would outlive it.
fn child_setup(master: Pid, identity: Option<&Identity>) -> Result<(), i32> {
    if let Some(id) = identity {
        if let Err(e) = privileges::drop_to(id) {
            log::error!("{} (pid {})", e, std::process::id());
            return Err(worker::exit::BOOT_FAILED);
        }
    }
    // After the switch: a change of credentials clears the death signal.
    if process::die_with_parent(Signal::SIGKILL, master).is_err() {
        return Err(worker::exit::ORPHANED);
    }
    for signal in super::signals::HANDLED {
        let _ = process::default_signal(signal);
    }
    process::set_signal_mask(&[]).map(drop).map_err(|e| {
        log::error!(
            "cannot unblock signals in process {}: {e}",
            std::process::id()
        );
        worker::exit::IO_ERROR
    })
}
