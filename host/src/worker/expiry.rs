//! Requests past `requestTimeout`, on the worker's side.
//!
//! A handler that never returns holds its thread, and the connection it
//! answers, for good; plugin code cannot be interrupted safely. Killing the
//! worker would cut every other request it serves. Instead the master marks
//! the call given up in the scoreboard (`ThreadSlot::expire`) and stops this
//! worker gracefully, starting its replacement at once. On that SIGTERM the
//! worker answers each given-up call 504 on its connection, from whichever
//! thread reads the signal ([`Expiry::answer_expired`]), stops accepting,
//! and lets its other requests finish. It exits once only given-up calls
//! are left ([`Expiry::given_up`]), or the master kills it at
//! `gracefulTimeout`. Should a given-up handler return after all, its
//! response is discarded (`dispatch`, `ThreadSlot::end`).

use super::answer;
use crate::board::scoreboard::Scoreboard;
use nix::sys::socket::{send, shutdown, MsgFlags, Shutdown};
use std::sync::Arc;

/// This worker's row of the scoreboard, if it has one (without one, the
/// master cannot time its requests out).
#[derive(Debug, Default)]
pub struct Expiry {
    board: Option<(Arc<Scoreboard>, usize)>,
}

impl Expiry {
    pub fn new(board: Option<(Arc<Scoreboard>, usize)>) -> Expiry {
        Expiry { board }
    }

    /// Answers 504 on the connection of every call of this worker that the
    /// master gave up on and nobody answered yet; returns how many.
    pub fn answer_expired(&self) -> usize {
        let Some((board, me)) = &self.board else {
            return 0;
        };
        let answered = (0..board.threads())
            .filter_map(|thread| board.thread(*me, thread))
            .filter(|slot| slot.answer_expired(send_timed_out))
            .count();
        if answered > 0 {
            log::warn!(
                "worker {}: answered 504 to {answered} request(s) past requestTimeout; \
                 stopping (a replacement is on its way)",
                std::process::id()
            );
        }
        answered
    }

    /// Connections held by calls that were given up and answered: their
    /// threads may never return, so a stopping worker does not wait for
    /// them.
    pub fn given_up(&self) -> usize {
        self.board
            .as_ref()
            .map_or(0, |(board, me)| board.answered(*me))
    }
}

/// Writes the 504 on connection `fd` and shuts it down both ways: the
/// client reads a complete response and then the end of the stream; the
/// handler thread, should it return, finds nothing more to read or write.
/// One `send` of a small response to a client that waits for it (so its
/// send buffer is empty); best effort. A TLS connection (published as
/// `!fd`, see `dispatch`) only ends: its TLS state is with the stuck
/// handler's thread, and plaintext would be garbage to the client.
fn send_timed_out(fd: i32) {
    if fd < 0 {
        let _ = shutdown(!fd, Shutdown::Both);
        return;
    }
    let mut out = Vec::new();
    answer::timed_out(&mut out);
    let _ = send(fd, &out, MsgFlags::MSG_NOSIGNAL);
    let _ = shutdown(fd, Shutdown::Both);
}
