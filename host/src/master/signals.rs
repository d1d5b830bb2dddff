//! Signals to the master (DESIGN "Signals to the master"), read from a
//! signalfd in the poll loop: no handler runs in signal context, so each
//! action below is ordinary code (nginx's `ngx_signal_handler` only sets
//! flags for the same reason).
//!
//! | signal | effect |
//! |---|---|
//! | TERM, INT | drain for `drainPeriod` (see [`super::drain`]), then graceful stop; a second TERM or INT while draining, or a second INT after, stops at once |
//! | QUIT | immediate stop |
//! | HUP | reload the INI file and the plugins |
//! | USR1 | reopen the log files, here and in every worker |
//! | TTIN / TTOU | one worker more / fewer |
//! | CHLD | (wakes the loop, which reaps after every turn) |

use super::{Master, Stop};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// The signals the master reads; a forked child gives them back their
/// default disposition (`spawn`).
pub(super) const HANDLED: [Signal; 8] = [
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
pub(super) fn master_signals() -> nix::Result<SignalFd> {
    let mask = crate::sys::process::set_signal_mask(&HANDLED)?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
}

impl Master {
    pub(super) fn on_signal(&mut self, signal: Signal) {
        match signal {
            Signal::SIGCHLD => {} // reaped after every wake-up
            Signal::SIGTERM | Signal::SIGINT if self.draining() => {
                log::warn!("{signal:?} again while draining: stopping now");
                self.stop_now();
            }
            Signal::SIGINT if self.stop.is_some() => {
                log::warn!("second interrupt: stopping now");
                self.stop_now();
            }
            Signal::SIGTERM | Signal::SIGINT if self.stop.is_none() => self.begin_stop(signal),
            Signal::SIGQUIT => {
                log::info!("SIGQUIT: immediate stop");
                self.stop_now();
            }
            Signal::SIGHUP if self.stop.is_none() => self.reload("SIGHUP"),
            Signal::SIGTTIN if self.stop.is_none() => {
                self.pool.target += 1;
                log::info!("SIGTTIN: {} worker processes", self.pool.target);
            }
            Signal::SIGTTOU if self.stop.is_none() && self.pool.target > 1 => {
                self.pool.target -= 1;
                log::info!("SIGTTOU: {} worker processes", self.pool.target);
            }
            Signal::SIGUSR1 => self.reopen_logs(),
            _ => {}
        }
    }

    fn stop_now(&mut self) {
        self.stop = Some(Stop::Immediate);
        self.listener.close();
        super::notify::send("STOPPING=1");
        self.cancel_probe();
        self.kill_all(Signal::SIGKILL);
    }

    /// USR1: reopen this process's logs, then have every worker reopen
    /// its own (they hold their own descriptors of the old file).
    fn reopen_logs(&mut self) {
        match crate::logging::reopen_all() {
            Ok(()) => log::info!("SIGUSR1: reopened the log files"),
            Err(e) => log::error!("SIGUSR1: {e}; still writing to the old file"),
        }
        // Fresh files (made by root just now) must be the workers' user's.
        super::files::hand_over(&self.generations.current.config);
        for pid in self.pool.table.pids() {
            let _ = kill(pid, Signal::SIGUSR1);
        }
    }
}
