//! Forking: worker processes and the throwaway probe that loads the plugins
//! before any worker does.
//!
//! Everything a child does before it serves happens here: switch to
//! `[server] user` if drupe runs as root (`sys::privileges`), die with the
//! master, reset the signal mask the master uses for its signalfd, load the
//! generation's plugin snapshot. The child never returns into the master's
//! loop; it ends with `std::process::exit`.

use crate::config::Config;
use crate::plugin::{self, PluginSet};
use crate::sys::privileges::{self, Identity};
use crate::sys::process::{self, Forked};
use crate::worker::{self, link::Link, CallState};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::io::{self, Write};
use std::net::TcpListener;
use std::path::PathBuf;

/// A generation's plugin files: originals and their private copies.
pub type Snapshot = Vec<(PathBuf, PathBuf)>;

/// Forks a worker that serves `listener` with the plugins of `snapshot`,
/// and reports to the master through `link`.
pub fn worker(
    config: &Config,
    listener: &TcpListener,
    snapshot: &Snapshot,
    link: Link,
) -> io::Result<Pid> {
    let master = nix::unistd::getpid();
    let identity = privileges::resolve(&config.server).map_err(io::Error::other)?;
    match process::fork()? {
        Forked::Parent(pid) => Ok(pid),
        Forked::Child => {
            let code = child_setup(master, identity.as_ref()).and_then(|()| {
                let plugins = load(config, snapshot).map_err(|()| worker::exit::BOOT_FAILED)?;
                link.publish_plugins(plugins.plugins.iter().map(|p| p.decl.name.as_str()));
                let listener = listener.try_clone().map_err(|_| worker::exit::IO_ERROR)?;
                Ok(worker::run(config, listener, plugins, link))
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
/// Returns whether the plugins are fit to serve. Blocks until the probe is
/// done: for startup and `--check`; a reload uses [`probe_start`].
pub fn probe(config: &Config, snapshot: &Snapshot, mode: ProbeMode) -> io::Result<bool> {
    let pid = probe_start(config, snapshot, mode)?;
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code == 0),
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                log::error!("the plugin probe was killed by {signal:?} while loading plugins");
                return Ok(false);
            }
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Forks the probe and returns its pid at once; it exits 0 if the plugins
/// are fit to serve. The master reaps it like a worker, so a slow plugin
/// `init` never stalls its loop.
pub fn probe_start(config: &Config, snapshot: &Snapshot, mode: ProbeMode) -> io::Result<Pid> {
    let master = nix::unistd::getpid();
    let identity = privileges::resolve(&config.server).map_err(io::Error::other)?;
    match process::fork()? {
        Forked::Parent(pid) => Ok(pid),
        Forked::Child => {
            let ok = child_setup(master, identity.as_ref()).is_ok()
                && load(config, snapshot).is_ok_and(|plugins| {
                    let started = plugins.init::<CallState>();
                    if let Err(errors) = &started {
                        log::error!("{errors}");
                    }
                    plugins.shutdown();
                    // Credentials and TLS are checked here, not by each
                    // worker: the master stays without a store connection.
                    let store = crate::store::handshake::check(&config.store);
                    if let Err(why) = &store {
                        log::error!("{why}");
                    }
                    let started = started.map_err(drop).and(store.map_err(drop));
                    if started.is_ok() && mode == ProbeMode::Describe {
                        let mut out = io::stdout().lock();
                        let _ = out.write_all(plugins.describe().as_bytes());
                        let _ = out.flush();
                    }
                    started.is_ok()
                });
            std::process::exit(if ok { 0 } else { 1 })
        }
    }
}

fn load(config: &Config, snapshot: &Snapshot) -> Result<PluginSet, ()> {
    plugin::load(snapshot, config).map_err(|errors| {
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
    process::set_signal_mask(&[])
        .map(drop)
        .map_err(|_| worker::exit::IO_ERROR)
}
