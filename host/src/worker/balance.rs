//! Sharing new connections out evenly between the workers.
//!
//! With `EPOLLEXCLUSIVE` the kernel wakes the first idle worker in the
//! listener's queue, so one worker can end up with nearly every keep-alive
//! connection while its sibling idles, and CPU-bound work then runs on one
//! core (DESIGN "pitfalls"). Each worker publishes its number of open
//! connections in the scoreboard; a worker that holds clearly more than its
//! share stops accepting for a moment, as nginx's `ngx_accept_disabled`
//! does — but only while some sibling can take the connections instead (a
//! sibling whose threads are all inside handlers cannot).

use crate::board::scoreboard::{Scoreboard, STATE_READY};
use std::sync::Arc;

/// Connections above the even share a worker may hold before it pauses:
/// enough that one connection of difference never flips a worker on and
/// off, few enough that 50 connections split within 27 / 23.
const SLACK: u32 = 2;

/// This worker's place in the scoreboard, if it has one.
#[derive(Debug, Default)]
pub struct Balance {
    board: Option<(Arc<Scoreboard>, usize)>,
}

impl Balance {
    pub fn new(board: Option<(Arc<Scoreboard>, usize)>) -> Balance {
        Balance { board }
    }

    /// Publishes this worker's number of open connections.
    pub fn publish(&self, open: usize) {
        if let Some((board, me)) = &self.board {
            board.set_connections(*me, u32::try_from(open).unwrap_or(u32::MAX));
        }
    }

    /// Whether this worker should leave new connections to its siblings:
    /// it holds more than the even share plus [`SLACK`], and some ready
    /// sibling has a free thread to accept with.
    pub fn over_share(&self) -> bool {
        let Some((board, me)) = &self.board else {
            return false;
        };
        let mine = board.connections(*me);
        let (mut total, mut ready) = (0u32, 0u32);
        let mut sibling_can_take = false;
        for index in 0..board.capacity() {
            if board.state(index) != STATE_READY && index != *me {
                continue;
            }
            total = total.saturating_add(board.connections(index));
            ready += 1;
            if index != *me && board.has_free_thread(index) {
                sibling_can_take = true;
            }
        }
        sibling_can_take && ready > 1 && mine > total.div_ceil(ready) + SLACK
    }

    /// The ready sibling with the fewest connections and a free thread:
    /// the one to nudge when this worker leaves queued connections to the
    /// others. With `EPOLLEXCLUSIVE` the kernel may have woken only this
    /// worker for them; the others would not look until the next arrival.
    pub fn least_loaded_sibling(&self) -> Option<i32> {
        let (board, me) = self.board.as_ref()?;
        (0..board.capacity())
            .filter(|&i| i != *me && board.state(i) == STATE_READY && board.has_free_thread(i))
            .min_by_key(|&i| board.connections(i))
            .map(|i| board.pid(i))
            .filter(|&pid| pid > 0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn board(workers: usize) -> Arc<Scoreboard> {
        let board = Arc::new(Scoreboard::new(workers, 2).unwrap());
        for i in 0..workers {
            board.assign(i, 100 + i as i32, 1);
            board.set_state(i, STATE_READY);
        }
        board
    }

    #[test]
    fn pauses_only_above_the_even_share_plus_slack() {
        let board = board(2);
        let me = Balance::new(Some((Arc::clone(&board), 0)));
        board.set_connections(1, 20);
        board.set_connections(0, 25); // 45 in all: share 23, limit 25
        assert!(!me.over_share());
        board.set_connections(0, 26); // 46: share 23, limit 25
        assert!(me.over_share());
    }

    #[test]
    fn never_pauses_alone_or_when_siblings_are_not_ready() {
        let board = board(2);
        let me = Balance::new(Some((Arc::clone(&board), 0)));
        board.set_connections(0, 50);
        board.set_state(1, crate::board::scoreboard::STATE_STOPPING);
        assert!(!me.over_share());
        assert!(!Balance::new(None).over_share());
    }

    #[test]
    fn never_pauses_when_no_sibling_thread_is_free() {
        let board = board(2);
        let me = Balance::new(Some((Arc::clone(&board), 0)));
        board.set_connections(0, 50);
        for t in 0..2 {
            board
                .thread(1, t)
                .unwrap()
                .begin(b"GET", b"/testkit/sleep/2000", 0);
        }
        assert!(!me.over_share());
        board.thread(1, 0).unwrap().end();
        assert!(me.over_share());
    }

    #[test]
    fn the_share_is_rounded_up_over_ready_workers_only() {
        let board = board(3);
        let me = Balance::new(Some((Arc::clone(&board), 0)));
        board.set_connections(1, 10);
        board.set_connections(2, 10);
        board.set_connections(0, 13); // 33 over 3: share 11, limit 13
        assert!(!me.over_share());
        board.set_connections(0, 14); // 34: share 12, limit 14
        assert!(!me.over_share());
        board.set_connections(0, 15); // 35: share 12, limit 14
        assert!(me.over_share());
        // A sibling that is not ready counts neither its connections nor
        // itself: 15 + 10 over 2 is a share of 13, limit 15.
        board.set_state(2, crate::board::scoreboard::STATE_STOPPING);
        assert!(!me.over_share());
    }

    #[test]
    fn the_nudge_goes_to_the_least_loaded_ready_sibling_with_a_free_thread() {
        let board = board(4);
        let me = Balance::new(Some((Arc::clone(&board), 0)));
        for (worker, open) in [(0, 0), (1, 9), (2, 3), (3, 5)] {
            board.set_connections(worker, open);
        }
        assert_eq!(me.least_loaded_sibling(), Some(102), "never itself");
        // Worker 2 has every thread inside a handler: it could not accept.
        for t in 0..2 {
            board.thread(2, t).unwrap().begin(b"GET", b"/slow", 0);
        }
        assert_eq!(me.least_loaded_sibling(), Some(103));
        board.set_state(3, crate::board::scoreboard::STATE_STOPPING);
        assert_eq!(me.least_loaded_sibling(), Some(101));
        board.set_state(1, crate::board::scoreboard::STATE_STOPPING);
        assert_eq!(me.least_loaded_sibling(), None);
        assert_eq!(Balance::new(None).least_loaded_sibling(), None);
    }
}
