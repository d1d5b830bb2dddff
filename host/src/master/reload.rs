//! Zero-downtime reload (HUP, or a changed `.so` when `[plugins] watch` is
//! on): read the INI file again, snapshot the plugin directory into a new
//! generation, load it in a throwaway probe process, and only if that
//! succeeds make it current. `manage_workers` then replaces the workers one
//! at a time, each new worker ready before an old one stops accepting; the
//! old workers finish what they have accepted, and connections still in the
//! shared listen backlog are taken by the workers that remain.
//!
//! Whatever goes wrong — an INI error, a plugin the probe refuses, a new
//! worker that cannot boot — the old generation keeps serving and the log
//! says why.

use super::generation::Generation;
use super::spawn::{self, ProbeFailure, ProbeMode, Progress};
use super::table::ExitStatus;
use super::watch::Watch;
use super::Master;
use crate::config::{Config, Server};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// A probe loads the plugins and calls their `init`; one that takes longer
/// than this is stuck, and the reload is abandoned.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// A reload waiting for its probe.
#[derive(Debug)]
pub(super) struct Probe {
    pub pid: Pid,
    /// What the probe was doing, to blame a file if it dies.
    progress: Progress,
    generation: Generation,
    why: String,
    started: Instant,
}

/// A generation being rolled through the pool.
#[derive(Debug)]
pub(super) struct Rollout {
    generation: u64,
    started: Instant,
}

/// Starts watching the plugin directory and the `[tls]` files if `config`
/// asks for it; keeps `old` if it already watches the same.
pub(super) fn watch_for(config: &Config, old: Option<Watch>) -> Option<Watch> {
    if !config.plugins.watch {
        return None;
    }
    let dir = &config.plugins.directory;
    let files: Vec<&std::path::Path> = config
        .tls
        .files()
        .map_or(Vec::new(), |(certificate, key)| vec![certificate, key]);
    if let Some(watch) = old.filter(|w| w.watches(dir, &files)) {
        return Some(watch);
    }
    match Watch::new(dir, &files) {
        Ok(watch) => Some(watch),
        Err(e) => {
            let tls = if files.is_empty() {
                ""
            } else {
                " and the folders of the [tls] files"
            };
            log::warn!(
                "[plugins] watch: cannot watch {}{tls}: {e}; reload with SIGHUP instead",
                dir.display()
            );
            None
        }
    }
}

/// The settings of `new` that differ from `bound`, the `[server]` the
/// socket was bound with, but only take effect when drupe is restarted:
/// the listening socket is bound once, by the master.
pub(super) fn needs_restart(bound: &Server, new: &Config) -> Vec<String> {
    let (o, n) = (bound, &new.server);
    let mut names = Vec::new();
    if o.socket_host != n.socket_host {
        names.push(format!(
            "socketHost ({} -> {})",
            o.socket_host, n.socket_host
        ));
    }
    if o.socket_port != n.socket_port {
        names.push(format!(
            "socketPort ({} -> {})",
            o.socket_port, n.socket_port
        ));
    }
    if o.socket_queue_size != n.socket_queue_size {
        names.push(format!(
            "socketQueueSize ({} -> {})",
            o.socket_queue_size, n.socket_queue_size
        ));
    }
    names
}

impl Master {
    /// Begins a reload: new config, new snapshot, probe. `why` is for the log.
    pub(super) fn reload(&mut self, why: &str) {
        if self.generations.probe.is_some() {
            log::info!("{why}: a newer reload replaces the one being probed");
            self.cancel_probe();
        }
        let serving = self.generations.current.number;
        let config = match self.generations.current.config.reread() {
            Ok(config) => config,
            Err(e) => {
                log::error!("{why}: reload failed: {e}; generation {serving} keeps serving");
                return;
            }
        };
        super::files::hand_over(&config); // its paths may be new
        let mut restart = needs_restart(&self.listener.bound, &config);
        restart.extend(self.status.needs_restart(&config));
        restart.extend(self.redirect.needs_restart(&config));
        if !restart.is_empty() {
            log::warn!(
                "{why}: {} changed but only take effect after a restart; still listening as before",
                restart.join(", ")
            );
        }
        if config.server.thread_pool > self.pool.board.threads() {
            log::warn!(
                "{why}: threadPool {} is more than the {} threads the scoreboard was sized for at startup; requestTimeout watches only the first {} threads of each worker until a restart",
                config.server.thread_pool,
                self.pool.board.threads(),
                self.pool.board.threads()
            );
        }
        let number = self.generations.next_number;
        self.generations.next_number += 1;
        let generation = match Generation::snapshot(
            config,
            number,
            &self.generations.snapshots,
            Some(&self.generations.current),
        ) {
            Ok(generation) => generation,
            Err(e) => {
                log::error!("{why}: reload failed: {e}; generation {serving} keeps serving");
                return;
            }
        };
        match spawn::probe_start(&generation.config, &generation.files, ProbeMode::Quiet) {
            Ok((pid, progress)) => {
                log::info!(
                    "{why}: reloading {}; probing generation {number} in process {pid}",
                    generation.config.source.display()
                );
                self.generations.probe = Some(Probe {
                    pid,
                    progress,
                    generation,
                    why: why.to_owned(),
                    started: Instant::now(),
                });
            }
            Err(e) => {
                log::error!(
                    "{why}: cannot fork the plugin probe: {e}; generation {serving} keeps serving"
                );
            }
        }
    }

    /// The probe of a pending reload exited.
    pub(super) fn on_probe_exit(&mut self, status: ExitStatus) {
        let Some(probe) = self.generations.probe.take() else {
            return;
        };
        let serving = self.generations.current.number;
        if let Some(failure) = probe.progress.failure(status) {
            let why = match failure {
                ProbeFailure::Logged => "(see the errors above)".to_owned(),
                ProbeFailure::Died(how) => format!("because the plugin probe {how}"),
            };
            log::error!(
                "{}: generation {} failed its probe {why}; generation {serving} keeps serving",
                probe.why,
                probe.generation.number
            );
            return; // dropping the probe deletes its snapshot
        }
        let generation = probe.generation;
        if let Err(e) = crate::logging::reconfigure(&generation.config) {
            log::error!("{}: {e}; the error log stays where it was", probe.why);
        }
        if generation.config.server.processes != self.generations.current.config.server.processes {
            self.pool.target = generation.config.server.processes;
        }
        self.generations.watch =
            super::reload::watch_for(&generation.config, self.generations.watch.take());
        log::info!(
            "{}: generation {} probed in {}ms; replacing {} worker(s) one at a time",
            probe.why,
            generation.number,
            probe.started.elapsed().as_millis(),
            self.pool
                .table
                .workers
                .iter()
                .filter(|w| !w.stopping())
                .count()
        );
        self.generations.rollout = Some(Rollout {
            generation: generation.number,
            started: Instant::now(),
        });
        let old = std::mem::replace(&mut self.generations.current, generation);
        self.generations.retired.push(old);
    }

    /// Kills a pending probe (a newer reload, or the master stops).
    pub(super) fn cancel_probe(&mut self) {
        if let Some(probe) = self.generations.probe.take() {
            let _ = kill(probe.pid, Signal::SIGKILL);
            let _ = waitpid(probe.pid, None);
        }
    }

    /// A worker of the current generation could not boot. If an older
    /// generation still serves, go back to it and return true; with
    /// nothing to fall back on, the caller stops the master.
    pub(super) fn abandon_reload(&mut self, failed: &super::table::Worker) -> bool {
        if failed.generation != self.generations.current.number {
            return true; // an outdated generation: it is being replaced anyway
        }
        let Some(index) = self.generations.retired.iter().rposition(|g| {
            self.pool
                .table
                .workers
                .iter()
                .any(|w| w.generation == g.number && !w.stopping())
        }) else {
            return false;
        };
        let previous = self.generations.retired.remove(index);
        log::error!(
            "worker {} of generation {} could not start (see the errors above); reload abandoned: generation {} keeps serving",
            failed.pid,
            self.generations.current.number,
            previous.number
        );
        if let Err(e) = crate::logging::reconfigure(&previous.config) {
            log::error!("{e}");
        }
        let abandoned = std::mem::replace(&mut self.generations.current, previous);
        self.generations.retired.push(abandoned);
        self.generations.rollout = None;
        true
    }

    /// A reload asked for by the plugin directory watch, once it is quiet.
    pub(super) fn reload_if_watched(&mut self, now: Instant) {
        if let Some(probe) = &self.generations.probe {
            if probe.started.elapsed() > PROBE_TIMEOUT {
                log::error!(
                    "{}: the plugin probe did not finish within {}s; killing it",
                    probe.why,
                    PROBE_TIMEOUT.as_secs()
                );
                let _ = kill(probe.pid, Signal::SIGKILL); // reaped as a failed probe
            }
        }
        if self.stop.is_some() {
            return;
        }
        let Some(changed) = self.generations.watch.as_mut().and_then(|w| w.due(now)) else {
            return;
        };
        let plugins = changed.iter().all(|name| name.ends_with(".so"));
        self.reload(&format!(
            "{} changed ({})",
            if plugins {
                "plugin directory"
            } else {
                "watched files"
            },
            changed.join(", ")
        ));
    }

    /// Drops, and so deletes the snapshots of, the generations no worker
    /// runs any more.
    pub(super) fn drop_unused_generations(&mut self) {
        let table = &self.pool.table;
        self.generations.retired.retain(|generation| {
            let used = table.uses(generation.number);
            if !used {
                log::debug!("generation {} retired; snapshot removed", generation.number);
            }
            used
        });
    }

    /// Logs when a reload has replaced every worker.
    pub(super) fn note_rollout_progress(&mut self) {
        let Some(rollout) = &self.generations.rollout else {
            return;
        };
        if rollout.generation != self.generations.current.number {
            self.generations.rollout = None;
            return;
        }
        let done = self.pool.table.workers.iter().all(|w| {
            w.stopping() || (w.generation == rollout.generation && w.state() == super::State::Ready)
        });
        if done {
            log::info!(
                "generation {} serves on all {} workers (rolled out in {}ms)",
                rollout.generation,
                self.pool.target,
                rollout.started.elapsed().as_millis()
            );
            self.generations.rollout = None;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(text: &str) -> Config {
        Config::parse(text.as_bytes(), Path::new("/srv/drupe.ini")).unwrap()
    }

    #[test]
    fn the_listening_address_and_backlog_need_a_restart() {
        let old = config("[server]\nsocketPort = 8080\n");
        let same = config("[server]\nsocketPort = 8080\nthreadPool = 3\ngracefulTimeout = 5\n");
        assert!(needs_restart(&old.server, &same).is_empty());
        let moved =
            config("[server]\nsocketHost = 0.0.0.0\nsocketPort = 9090\nsocketQueueSize = 64\n");
        assert_eq!(
            needs_restart(&old.server, &moved),
            [
                "socketHost (127.0.0.1 -> 0.0.0.0)",
                "socketPort (8080 -> 9090)",
                "socketQueueSize (1024 -> 64)"
            ]
        );
    }
}
