//! The worker's line to its master: a pipe to say "ready", and its slot in
//! the shared-memory scoreboard.
//!
//! The master creates both before forking. A worker writes one message to
//! the pipe once its plugins are initialised and its epoll set is armed;
//! the pipe wakes the master's poll loop at once, which is what lets a
//! reload stop an old worker the moment its replacement can serve. Every
//! handler thread gets a [`Tracker`] for its scoreboard slot, through which
//! `dispatch` records the call in progress and counts requests, and its
//! request statistics; the worker publishes its plugins' names beside them
//! ([`Link::publish_plugins`]) so the master can add them up by name.

use crate::board::scoreboard::{Scoreboard, ThreadSlot};
use crate::board::stats::{self, ThreadStats};
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// Message: the worker is serving.
pub const READY: u32 = 1;

/// Bytes of one message: the worker's pid and the event, native-endian.
/// Far below `PIPE_BUF`, so messages from many workers never interleave.
pub const MESSAGE_LEN: usize = 8;

/// One message on the wire.
pub fn encode(pid: i32, event: u32) -> [u8; MESSAGE_LEN] {
    let mut msg = [0u8; MESSAGE_LEN];
    msg[..4].copy_from_slice(&pid.to_ne_bytes());
    msg[4..].copy_from_slice(&event.to_ne_bytes());
    msg
}

/// `(pid, event)` of one message.
pub fn decode(msg: [u8; MESSAGE_LEN]) -> (i32, u32) {
    let [a, b, c, d, e, f, g, h] = msg;
    (
        i32::from_ne_bytes([a, b, c, d]),
        u32::from_ne_bytes([e, f, g, h]),
    )
}

/// What a worker inherits from the master to report to it. `Default` is
/// no link at all (a worker nobody supervises).
#[derive(Debug, Clone, Default)]
pub struct Link {
    /// Write end of the master's notification pipe.
    pub notify: Option<Arc<OwnedFd>>,
    /// The scoreboard and this worker's slot in it (none if it was full).
    pub board: Option<(Arc<Scoreboard>, usize)>,
}

impl Link {
    /// Tells the master this worker serves now.
    pub fn report_ready(&self) {
        if let Some(fd) = &self.notify {
            let msg = encode(std::process::id() as i32, READY);
            // One write of 8 bytes to a pipe is atomic; if the master is
            // gone, PDEATHSIG ends this process anyway.
            let _ = nix::unistd::write(fd, &msg);
        }
    }

    /// Names this worker's plugins in the scoreboard, in load order, so
    /// the status listener can report their statistics (before serving).
    pub fn publish_plugins<'a>(&self, names: impl ExactSizeIterator<Item = &'a str>) {
        let Some((board, worker)) = &self.board else {
            return;
        };
        let total = names.len();
        let counted = board.stats().publish_names(*worker, names);
        if counted < total {
            log::warn!(
                "worker {}: only the first {} of {total} plugins are counted in the status figures",
                std::process::id(),
                stats::MAX_PLUGINS
            );
        }
    }

    /// The scoreboard slot of handler thread `thread`, if it has one.
    pub fn tracker(&self, thread: usize) -> Option<Tracker> {
        let (board, worker) = self.board.as_ref()?;
        board.thread(*worker, thread)?;
        Some(Tracker {
            board: Arc::clone(board),
            worker: *worker,
            thread,
        })
    }
}

/// One handler thread's slot in the scoreboard.
#[derive(Debug, Clone)]
pub struct Tracker {
    board: Arc<Scoreboard>,
    worker: usize,
    thread: usize,
}

impl Tracker {
    pub fn slot(&self) -> &ThreadSlot {
        // Checked in `Link::tracker`; the table never shrinks.
        self.board
            .thread(self.worker, self.thread)
            .unwrap_or_else(|| unreachable!("tracker outside the scoreboard"))
    }

    /// This thread's request statistics.
    pub fn stats(&self) -> &ThreadStats {
        // The statistics area has the scoreboard's shape (`Scoreboard::new`).
        self.board
            .stats()
            .thread(self.worker, self.thread)
            .unwrap_or_else(|| unreachable!("tracker outside the statistics"))
    }

    /// Whether the master is stopping this worker's host (its health
    /// check fails from then on).
    pub fn host_draining(&self) -> bool {
        self.board.draining(self.worker)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        assert_eq!(decode(encode(-7, READY)), (-7, READY));
        assert_eq!(decode(encode(123_456, 9)), (123_456, 9));
    }
}
