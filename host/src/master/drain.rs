//! Stopping a host that sits behind a load balancer without a client
//! seeing an error.
//!
//! A balancer learns that a host is going away from its health check
//! (`GET /_drupe/health`, see `worker::reserved`), and only after a check
//! or two has failed. So on the first TERM or INT the master first marks
//! every worker "draining" in the shared scoreboard — their health check
//! answers 503 from then on — and lets them serve as usual for `[server]
//! drainPeriod`, while the balancer moves traffic to the other hosts. Only
//! then does the graceful stop begin: the listening socket closes, so new
//! connections are refused at once (a balancer that missed the health
//! check moves on), and the workers serve what they have, the connections
//! already queued included. With `drainPeriod = 0` (the default) the graceful stop
//! begins at once, as it always did; the health check still fails during it.
//!
//! A second TERM or INT during the drain stops at once, as a second INT
//! does during the graceful stop; QUIT is immediate throughout.

use super::{Master, Stop};
use nix::sys::signal::Signal;
use std::time::Instant;

impl Master {
    /// The first TERM or INT: drain if `drainPeriod` asks for it, then stop
    /// gracefully.
    pub(super) fn begin_stop(&mut self, signal: Signal) {
        self.cancel_probe();
        super::notify::send("STOPPING=1");
        for slot in self.pool.table.workers.iter().filter_map(|w| w.board) {
            self.pool.board.set_draining(slot);
        }
        let server = &self.generations.current.config.server;
        let graceful = server.graceful_timeout.as_secs();
        if server.drain_period.is_zero() {
            log::info!("{signal:?}: graceful stop (gracefulTimeout {graceful}s)");
            self.begin_graceful_stop();
        } else {
            let drain = server.drain_period;
            log::info!(
                "{signal:?}: draining for {}s — still serving, but /_drupe/health answers 503 so \
                 load balancers move traffic away; then a graceful stop (gracefulTimeout \
                 {graceful}s). TERM or INT again stops at once",
                drain.as_secs()
            );
            self.stop = Some(Stop::Draining {
                until: Instant::now() + drain,
            });
        }
    }

    /// Whether the host is in its drain period.
    pub(super) fn draining(&self) -> bool {
        matches!(self.stop, Some(Stop::Draining { .. }))
    }

    /// When the drain ends, if the host is draining.
    pub(super) fn drain_deadline(&self) -> Option<Instant> {
        match self.stop {
            Some(Stop::Draining { until }) => Some(until),
            _ => None,
        }
    }

    /// Starts the graceful stop once the drain period is over.
    pub(super) fn end_drain_if_due(&mut self, now: Instant) {
        if self.drain_deadline().is_some_and(|until| now >= until) {
            log::info!(
                "drain over: graceful stop (gracefulTimeout {}s)",
                self.generations
                    .current
                    .config
                    .server
                    .graceful_timeout
                    .as_secs()
            );
            self.begin_graceful_stop();
        }
    }

    /// The graceful stop: the listening socket closes (see
    /// [`super::listen::Listener::close`]) and every worker finishes what
    /// it has, the connections already queued included.
    fn begin_graceful_stop(&mut self) {
        self.stop = Some(Stop::Graceful);
        self.listener.close();
        self.kill_all(Signal::SIGTERM);
    }
}
