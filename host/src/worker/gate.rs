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

/// What the gate opens and closes, and what it asks before opening: in the
/// worker, the listener in the epoll set and the worker's free slots and
/// share ([`Shared`]). A trait so that the gate's decisions can be tested
/// without sockets; generic, so it costs nothing.
pub trait Intake {
    /// Puts the listener into the epoll set; `false` if that failed.
    fn add_listener(&self) -> bool;
    /// Takes the listener out of the epoll set; `false` if that failed.
    fn remove_listener(&self) -> bool;
    /// A connection slot is free and the worker holds no more than its
    /// share (see `balance`).
    fn may_accept(&self) -> bool;
    /// The worker is stopping: the listener never goes back in.
    fn stopping(&self) -> bool;
}

impl Intake for Shared {
    fn add_listener(&self) -> bool {
        self.epoll.add(&self.listener, listener_event()).is_ok()
    }

    fn remove_listener(&self) -> bool {
        self.epoll.delete(&self.listener).is_ok()
    }

    fn may_accept(&self) -> bool {
        self.free.lock().is_ok_and(|free| !free.is_empty()) && !self.balance.over_share()
    }

    fn stopping(&self) -> bool {
        Shared::stopping(self)
    }
}

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
    pub fn pause_full(&self, intake: &impl Intake) {
        self.pause(intake, true);
    }

    /// Stop taking connections because `accept` failed (out of file
    /// descriptors): slots are free, so only the next close or sweep
    /// resumes, which bounds the retries to one per sweep.
    pub fn pause_failing(&self, intake: &impl Intake) {
        self.pause(intake, false);
    }

    fn pause(&self, intake: &impl Intake, recheck: bool) {
        let Ok(_guard) = self.lock.lock() else { return };
        if self.paused.load(Ordering::Acquire) || intake.stopping() {
            return;
        }
        if !intake.remove_listener() {
            return;
        }
        self.paused.store(true, Ordering::Release);
        log::debug!("worker {}: not accepting for now", std::process::id());
        // A slot freed between the caller's check and the delete saw
        // `paused == false` and did not resume: look again.
        if recheck && intake.may_accept() {
            self.add_listener(intake);
        }
    }

    /// Take connections again if paused and a slot is free. Cheap when not
    /// paused: called after every close. Returns whether it stays paused.
    pub fn resume(&self, intake: &impl Intake) -> bool {
        if !self.paused.load(Ordering::Acquire) {
            return false;
        }
        let Ok(_guard) = self.lock.lock() else {
            return true;
        };
        if self.paused.load(Ordering::Acquire) && !intake.stopping() && intake.may_accept() {
            self.add_listener(intake);
        }
        self.paused.load(Ordering::Acquire)
    }

    /// Moves this worker's wait entry to the back of the listener's wait
    /// queue (delete, add), unless the listener is out of the set.
    pub fn rotate(&self, intake: &impl Intake) {
        let Ok(_guard) = self.lock.lock() else { return };
        if !self.paused.load(Ordering::Acquire) && intake.remove_listener() {
            self.add_listener(intake);
            if self.paused.load(Ordering::Acquire) {
                log::error!(
                    "worker {}: cannot re-register the listener",
                    std::process::id()
                );
            }
        }
    }

    /// Stopping: the listener leaves the set for good; holding the lock
    /// keeps a concurrent resume from adding it back.
    pub fn stop(&self, intake: &impl Intake) {
        let Ok(_guard) = self.lock.lock() else { return };
        let _ = intake.remove_listener();
        self.paused.store(true, Ordering::Release);
    }

    /// Caller holds `lock`.
    fn add_listener(&self, intake: &impl Intake) {
        let added = intake.add_listener();
        self.paused.store(!added, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    /// A listener that is in the set or not, and a worker with room or not.
    #[derive(Default)]
    struct Fake {
        in_set: Cell<bool>,
        room: Cell<bool>,
        stopping: Cell<bool>,
        add_fails: Cell<bool>,
        calls: RefCell<Vec<&'static str>>,
    }

    impl Fake {
        /// A worker serving normally: listener in the set, slots free.
        fn serving() -> Fake {
            let fake = Fake::default();
            fake.in_set.set(true);
            fake.room.set(true);
            fake
        }

        fn calls(&self) -> Vec<&'static str> {
            self.calls.take()
        }
    }

    impl Intake for Fake {
        fn add_listener(&self) -> bool {
            self.calls.borrow_mut().push("add");
            // epoll_ctl(ADD) of a registered fd fails with EEXIST.
            let added = !self.add_fails.get() && !self.in_set.get();
            self.in_set.set(self.in_set.get() || added);
            added
        }

        fn remove_listener(&self) -> bool {
            self.calls.borrow_mut().push("remove");
            self.in_set.replace(false)
        }

        fn may_accept(&self) -> bool {
            self.room.get()
        }

        fn stopping(&self) -> bool {
            self.stopping.get()
        }
    }

    #[test]
    fn a_full_worker_stays_deaf_until_a_slot_frees() {
        let (gate, worker) = (Gate::default(), Fake::serving());
        worker.room.set(false);
        gate.pause_full(&worker);
        assert!(!worker.in_set.get());
        assert!(gate.resume(&worker), "no room yet: still paused");
        assert_eq!(worker.calls(), ["remove"]);
        worker.room.set(true);
        assert!(!gate.resume(&worker));
        assert!(worker.in_set.get());
    }

    #[test]
    fn a_slot_freed_during_the_pause_is_not_missed() {
        // The closing thread saw `paused == false` and did not resume; the
        // pause itself must notice the room.
        let (gate, worker) = (Gate::default(), Fake::serving());
        gate.pause_full(&worker);
        assert_eq!(worker.calls(), ["remove", "add"]);
        assert!(worker.in_set.get());
        assert!(!gate.resume(&worker));
    }

    #[test]
    fn a_failing_accept_pauses_until_the_next_resume() {
        // Slots are free (the failure was EMFILE): no re-check, else the
        // worker would spin on a listener it cannot accept from.
        let (gate, worker) = (Gate::default(), Fake::serving());
        gate.pause_failing(&worker);
        assert_eq!(worker.calls(), ["remove"]);
        assert!(!gate.resume(&worker));
        assert!(worker.in_set.get());
    }

    #[test]
    fn resume_does_nothing_unless_paused() {
        let (gate, worker) = (Gate::default(), Fake::serving());
        assert!(!gate.resume(&worker));
        assert!(worker.calls().is_empty(), "every close calls resume");
    }

    #[test]
    fn rotate_moves_the_listener_only_while_it_is_in_the_set() {
        let (gate, worker) = (Gate::default(), Fake::serving());
        gate.rotate(&worker);
        assert_eq!(worker.calls(), ["remove", "add"]);
        worker.room.set(false);
        gate.pause_full(&worker);
        let _ = worker.calls();
        gate.rotate(&worker);
        assert!(worker.calls().is_empty());
        assert!(!worker.in_set.get());
    }

    #[test]
    fn a_failed_rotation_leaves_the_gate_paused_for_resume_to_retry() {
        let (gate, worker) = (Gate::default(), Fake::serving());
        worker.add_fails.set(true);
        gate.rotate(&worker);
        assert!(!worker.in_set.get());
        worker.add_fails.set(false);
        assert!(!gate.resume(&worker));
        assert!(worker.in_set.get());
    }

    #[test]
    fn a_stopping_worker_never_takes_the_listener_back() {
        let (gate, worker) = (Gate::default(), Fake::serving());
        worker.stopping.set(true);
        gate.stop(&worker);
        assert!(!worker.in_set.get());
        assert!(gate.resume(&worker));
        gate.pause_full(&worker);
        gate.rotate(&worker);
        assert_eq!(worker.calls(), ["remove"]);
        assert!(!worker.in_set.get());
    }

    #[test]
    fn a_stopping_worker_does_not_pause() {
        // `stop` owns the listener from then on.
        let (gate, worker) = (Gate::default(), Fake::serving());
        worker.stopping.set(true);
        gate.pause_full(&worker);
        gate.pause_failing(&worker);
        assert!(worker.calls().is_empty());
    }
}
