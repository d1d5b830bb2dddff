//! Whether this worker takes new connections: the listener is in the epoll
//! set only while a connection slot is free and the worker does not hold
//! more than its share of connections (see `balance`).
//!
//! At `maxConnectionsPerProcess` (or when `accept` fails for lack of file
//! descriptors) the worker takes the listener out of its epoll set instead
//! of accepting a connection it would have to drop. Connections then wait
//! in the kernel's backlog, or go to a sibling worker whose set still holds
//! the listener (`EPOLLEXCLUSIVE` wakes only waiters that have it). When a
//! connection closes, or at the next sweep, the listener goes back in.
//!
//! Pausing and resuming happen under one lock, and a pause re-checks for a
//! free slot after taking the listener out, so a slot freed meanwhile
//! cannot leave the worker deaf with room to spare.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::{listener_event, Shared};

/// How soon a paused worker looks again at whether it may accept: a
/// sibling's count changes without telling it.
pub const RECHECK: Duration = Duration::from_millis(5);

#[derive(Debug, Default)]
pub struct Gate {
    /// The listener is out of the epoll set. Read without the lock on the
    /// hot path (every close); changed only under `lock`.
    paused: AtomicBool,
    lock: Mutex<()>,
}

impl Gate {
    /// Stop taking connections until [`Gate::resume`] finds a free slot
    /// (and this worker within its share).
    pub fn pause_full(&self, shared: &Shared) {
        self.pause(shared, true);
    }

    /// Stop taking connections because `accept` failed (out of file
    /// descriptors): slots are free, so only the next close or sweep
    /// resumes, which bounds the retries to one per sweep.
    pub fn pause_failing(&self, shared: &Shared) {
        self.pause(shared, false);
    }

    fn pause(&self, shared: &Shared, recheck: bool) {
        let Ok(_guard) = self.lock.lock() else { return };
        if self.paused.load(Ordering::Acquire) || shared.stopping() {
            return;
        }
        if shared.epoll.delete(&shared.listener).is_err() {
            return;
        }
        self.paused.store(true, Ordering::Release);
        log::debug!("worker {}: not accepting for now", std::process::id());
        // A slot freed between the caller's check and the delete saw
        // `paused == false` and did not resume: look again.
        if recheck && may_accept(shared) {
            self.add_listener(shared);
        }
    }

    /// Take connections again if paused and a slot is free. Cheap when not
    /// paused: called after every close. Returns whether it stays paused.
    pub fn resume(&self, shared: &Shared) -> bool {
        if !self.paused.load(Ordering::Acquire) {
            return false;
        }
        let Ok(_guard) = self.lock.lock() else {
            return true;
        };
        if self.paused.load(Ordering::Acquire) && !shared.stopping() && may_accept(shared) {
            self.add_listener(shared);
        }
        self.paused.load(Ordering::Acquire)
    }

    /// Moves this worker's wait entry to the back of the listener's wait
    /// queue (delete, add), unless the listener is out of the set.
    pub fn rotate(&self, shared: &Shared) {
        let Ok(_guard) = self.lock.lock() else { return };
        if !self.paused.load(Ordering::Acquire) && shared.epoll.delete(&shared.listener).is_ok() {
            self.add_listener(shared);
            if self.paused.load(Ordering::Acquire) {
                log::error!(
                    "worker {}: cannot re-register the listener",
                    std::process::id()
                );
            }
        }
    }

    /// Stopping: the listener leaves the set for good (the caller deletes
    /// it); holding the lock keeps a concurrent resume from adding it back.
    pub fn stop(&self, shared: &Shared) {
        let Ok(_guard) = self.lock.lock() else { return };
        let _ = shared.epoll.delete(&shared.listener);
        self.paused.store(true, Ordering::Release);
    }

    /// Caller holds `lock`.
    fn add_listener(&self, shared: &Shared) {
        let added = shared.epoll.add(&shared.listener, listener_event()).is_ok();
        self.paused.store(!added, Ordering::Release);
    }
}

fn may_accept(shared: &Shared) -> bool {
    shared.free.lock().is_ok_and(|free| !free.is_empty()) && !shared.balance.over_share()
}
