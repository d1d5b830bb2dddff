//! The worker's threads: one leader runs the event loop, the rest stand by
//! until the leader blocks.
//!
//! Why: a request costs nginx about 12 µs of CPU, and handing each request
//! from an event thread to a pool thread costs about as much again in
//! wake-ups and cold caches; even several threads sharing one epoll set lose
//! 10–30% (DESIGN "Worker I/O"). So one thread — the leader — waits on the
//! epoll set and does everything inline: accept, read, run the handler,
//! write. As long as handlers are quick, the other threads sleep and
//! cost nothing.
//!
//! A handler that blocks (a store call, a sleep) must not stall the other
//! connections of its worker, including the ones already taken out of the
//! epoll set in the same batch. A monitor thread samples the leader every
//! [`TICK`]: if the same handler call is still running and its thread is
//! asleep in the kernel (not computing), leadership passes to a standby
//! thread, which picks up the rest of the batch and carries on. The old
//! leader finishes its request and becomes a standby. A handler that
//! computes is left alone for up to [`CPU_STALL`] — another thread would
//! only compete for the same cores — then it is treated like a blocked one.
//!
//! When every thread is stuck in a handler, nobody waits on the epoll set,
//! so (with `EPOLLEXCLUSIVE` on the listener) the kernel hands new
//! connections to sibling workers.

use nix::sys::epoll::EpollEvent;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How often the monitor samples the leader; a blocked handler delays the
/// other connections of its worker by at most about twice this.
pub const TICK: Duration = Duration::from_millis(2);
/// How long a computing handler may hold the event loop before it is
/// treated as stalled.
pub const CPU_STALL: Duration = Duration::from_millis(50);
/// Ticks without any work after which the monitor stops sampling until the
/// leader has work again, so an idle worker wakes up nobody.
const IDLE_TICKS: u32 = 50;
/// Events taken per `epoll_wait`.
pub const BATCH: usize = 64;

/// Leadership, the shared batch, and the monitor's view of the leader.
#[derive(Debug)]
pub struct Pool {
    state: Mutex<State>,
    /// Standby threads wait here for leadership.
    standby: Condvar,
    /// The monitor waits here while the worker is idle.
    monitor_wake: Condvar,
    monitor_parked: AtomicBool,
    /// The epoch of the leader while it is inside a handler, else 0.
    busy: AtomicU64,
    /// Incremented before every connection event the leader handles.
    seq: AtomicU64,
    /// Thread id of the current leader, for the monitor's blocked check.
    leader_tid: AtomicI32,
}

#[derive(Debug)]
struct State {
    /// Bumped each time leadership changes hands; 0 is never an epoch.
    epoch: u64,
    /// Whether some thread is leader of `epoch`.
    led: bool,
    /// Events of the current batch not yet handled.
    batch: Vec<EpollEvent>,
    next: usize,
    /// Non-empty batches published so far; the monitor parks only if none
    /// arrived since its last look (checked under the lock, so a batch
    /// published while it decides cannot be missed).
    refills: u64,
    done: bool,
}

/// What a leader does next.
pub enum Step {
    /// Handle this event.
    Event(EpollEvent),
    /// The batch is empty: wait on the epoll set for more.
    Refill,
    /// Leadership passed to another thread, or the worker is done.
    Resign,
}

impl Pool {
    pub fn new() -> Pool {
        Pool {
            state: Mutex::new(State {
                epoch: 1,
                led: false,
                batch: Vec::with_capacity(BATCH),
                next: 0,
                refills: 0,
                done: false,
            }),
            standby: Condvar::new(),
            monitor_wake: Condvar::new(),
            monitor_parked: AtomicBool::new(false),
            busy: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            leader_tid: AtomicI32::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock would be a bug in this module;
        // the state stays consistent at every unlock, so carry on.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Blocks until this thread is the leader; returns its epoch, or `None`
    /// once the worker is done.
    pub fn lead(&self) -> Option<u64> {
        let mut state = self.lock();
        loop {
            if state.done {
                return None;
            }
            if !state.led {
                state.led = true;
                self.leader_tid
                    .store(nix::unistd::gettid().as_raw(), Ordering::Relaxed);
                return Some(state.epoch);
            }
            state = self
                .standby
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// The leader of `epoch` asks for its next step.
    pub fn next(&self, epoch: u64) -> Step {
        let mut state = self.lock();
        if state.epoch != epoch || state.done {
            return Step::Resign;
        }
        match state.batch.get(state.next).copied() {
            Some(event) => {
                state.next += 1;
                Step::Event(event)
            }
            None => Step::Refill,
        }
    }

    /// The leader of `epoch` publishes a fresh batch from `epoll_wait`.
    pub fn refill(&self, epoch: u64, events: &[EpollEvent]) {
        {
            let mut state = self.lock();
            // Leadership only moves while the leader is inside a handler,
            // never while it waits on the epoll set, so this is its batch.
            debug_assert_eq!(state.epoch, epoch);
            state.batch.clear();
            state.batch.extend_from_slice(events);
            state.next = 0;
            if !events.is_empty() {
                state.refills += 1;
            }
        }
        if !events.is_empty() && self.monitor_parked.load(Ordering::Relaxed) {
            let _state = self.lock();
            self.monitor_parked.store(false, Ordering::Relaxed);
            self.monitor_wake.notify_one();
        }
    }

    /// Marks the start of a connection event handled by the leader of
    /// `epoch` (the part that may run a plugin).
    pub fn enter(&self, epoch: u64) {
        self.seq.fetch_add(1, Ordering::AcqRel);
        self.busy.store(epoch, Ordering::Release);
    }

    /// Marks its end. If leadership moved meanwhile, the new leader's mark
    /// is left alone.
    pub fn leave(&self, epoch: u64) {
        let _ = self
            .busy
            .compare_exchange(epoch, 0, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// Ends the worker: every thread returns from [`Pool::lead`].
    pub fn finish(&self) {
        let mut state = self.lock();
        state.done = true;
        self.standby.notify_all();
        self.monitor_parked.store(false, Ordering::Relaxed);
        self.monitor_wake.notify_all();
    }

    /// Hands leadership of `epoch` to a standby thread (if any is free;
    /// otherwise to the first thread that finishes its handler), if its
    /// leader is still inside handler call `call` (`seq` when it was
    /// sampled).
    ///
    /// The monitor's verdict rests on a sample that may be stale: under
    /// load it can be descheduled between reading `busy` and deciding,
    /// while the leader leaves its handler, finds the batch empty and
    /// waits on the epoll set — asleep in the kernel, as a blocked handler
    /// is. Promoting then would make two leaders: the old one would come
    /// back from `epoll_wait` and overwrite the new one's batch, and the
    /// connections of the lost events (edge-triggered, never reported
    /// again) would wait for an answer that never comes. So the check is
    /// made again under the lock: a leader must take the lock (`next`)
    /// after leaving a handler before it may wait on the epoll set, so if
    /// it is still in the call here, it will see the new epoch and resign.
    fn promote(&self, epoch: u64, call: u64) -> bool {
        let mut state = self.lock();
        let in_call =
            self.busy.load(Ordering::Acquire) == epoch && self.seq.load(Ordering::Acquire) == call;
        if state.epoch != epoch || state.done || !in_call {
            return false;
        }
        state.epoch += 1;
        state.led = false;
        self.standby.notify_one();
        true
    }

    /// The monitor thread's body: sample the leader every [`TICK`].
    /// `while_stalled` runs on every sample that finds the leader's call
    /// stalled: if every thread is inside a handler, nobody waits on the
    /// epoll set, and the worker still has to hear its signals (a stop
    /// must close the listener at once).
    pub fn monitor(&self, while_stalled: impl Fn()) {
        let mut watch = Watch::new();
        loop {
            std::thread::sleep(TICK);
            let busy = self.busy.load(Ordering::Acquire);
            let seq = self.seq.load(Ordering::Relaxed);
            let stalled = watch.stalled(busy, seq, || {
                !crate::sys::proc::thread_running(self.leader_tid.load(Ordering::Relaxed))
            });
            if let Some(epoch) = stalled {
                if self.promote(epoch, seq) {
                    watch.handed_over();
                }
                while_stalled();
            }
            let mut state = self.lock();
            if state.done {
                return;
            }
            if watch.idle(busy, state.refills) {
                self.monitor_parked.store(true, Ordering::Relaxed);
                while self.monitor_parked.load(Ordering::Relaxed) && !state.done {
                    state = self
                        .monitor_wake
                        .wait(state)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                watch.woken();
            }
        }
    }
}

/// The monitor's decisions, from one sample of the leader per [`TICK`].
#[derive(Debug)]
struct Watch {
    /// `Pool::seq` at the last sample: unchanged means the same call.
    last_seq: u64,
    /// `State::refills` at the last sample.
    last_refills: u64,
    /// Samples in a row that found the same handler call running.
    stalled_ticks: u32,
    /// Samples in a row with no handler running and no new batch.
    idle_ticks: u32,
    /// [`CPU_STALL`] in samples.
    cpu_stall_ticks: u32,
}

impl Watch {
    fn new() -> Watch {
        Watch {
            last_seq: u64::MAX,
            last_refills: u64::MAX,
            stalled_ticks: 0,
            idle_ticks: 0,
            cpu_stall_ticks: (CPU_STALL.as_millis() / TICK.as_millis()).max(1) as u32,
        }
    }

    /// The epoch whose leader should hand over, given the leader's `busy`
    /// epoch (0: not in a handler) and call `seq`: the same call as at the
    /// last sample, and either asleep in the kernel (`blocked`, asked only
    /// then: it reads `/proc`) or computing for [`CPU_STALL`].
    fn stalled(&mut self, busy: u64, seq: u64, blocked: impl FnOnce() -> bool) -> Option<u64> {
        let verdict = if busy != 0 && seq == self.last_seq {
            self.stalled_ticks += 1;
            (blocked() || self.stalled_ticks >= self.cpu_stall_ticks).then_some(busy)
        } else {
            self.stalled_ticks = 0;
            None
        };
        self.last_seq = seq;
        verdict
    }

    /// Leadership was handed over: the count starts again for the new
    /// leader. (If the hand-over failed — leadership already moved, or the
    /// worker is done — the count goes on.)
    fn handed_over(&mut self) {
        self.stalled_ticks = 0;
    }

    /// Whether to stop sampling until the next batch: [`IDLE_TICKS`]
    /// samples in a row with no handler running and no batch published.
    fn idle(&mut self, busy: u64, refills: u64) -> bool {
        let quiet = busy == 0 && refills == self.last_refills;
        self.last_refills = refills;
        self.idle_ticks = if quiet { self.idle_ticks + 1 } else { 0 };
        self.idle_ticks >= IDLE_TICKS
    }

    /// Woken from parking by a new batch (or the end).
    fn woken(&mut self) {
        self.idle_ticks = 0;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use nix::sys::epoll::EpollFlags;
    use std::sync::Arc;

    fn events(tokens: &[u64]) -> Vec<EpollEvent> {
        tokens
            .iter()
            .map(|&t| EpollEvent::new(EpollFlags::EPOLLIN, t))
            .collect()
    }

    /// The token of an `Event` step; `None` for `Refill`, panics on `Resign`.
    fn token(step: Step) -> Option<u64> {
        match step {
            Step::Event(event) => Some(event.data()),
            Step::Refill => None,
            Step::Resign => panic!("resigned"),
        }
    }

    /// The handler call running now, as the monitor samples it.
    fn call(pool: &Pool) -> u64 {
        pool.seq.load(Ordering::Relaxed)
    }

    fn resigns(step: Step) -> bool {
        matches!(step, Step::Resign)
    }

    #[test]
    fn the_leader_works_through_its_batch_then_refills() {
        let pool = Pool::new();
        let epoch = pool.lead().unwrap();
        assert_eq!(token(pool.next(epoch)), None, "no batch yet");
        pool.refill(epoch, &events(&[7, 8]));
        assert_eq!(token(pool.next(epoch)), Some(7));
        assert_eq!(token(pool.next(epoch)), Some(8));
        assert_eq!(token(pool.next(epoch)), None);
    }

    #[test]
    fn a_hand_over_passes_the_rest_of_the_batch_to_the_new_leader() {
        let pool = Pool::new();
        let old = pool.lead().unwrap();
        pool.refill(old, &events(&[1, 2, 3]));
        assert_eq!(token(pool.next(old)), Some(1));
        pool.enter(old); // event 1's handler blocks
        assert!(pool.promote(old, call(&pool)));
        // A standby (here the same thread) leads the next epoch and picks
        // up events 2 and 3; the old leader resigns after its handler.
        let new = pool.lead().unwrap();
        assert_ne!(new, old);
        assert_eq!(token(pool.next(new)), Some(2));
        pool.enter(new);
        pool.leave(old); // the old leader's mark is gone already
        assert_eq!(pool.busy.load(Ordering::Relaxed), new);
        assert!(resigns(pool.next(old)));
        pool.leave(new);
        assert_eq!(pool.busy.load(Ordering::Relaxed), 0);
        assert_eq!(token(pool.next(new)), Some(3));
        assert_eq!(token(pool.next(new)), None);
    }

    #[test]
    fn only_the_current_leader_can_be_replaced() {
        let pool = Pool::new();
        let old = pool.lead().unwrap();
        pool.enter(old);
        assert!(pool.promote(old, call(&pool)));
        assert!(
            !pool.promote(old, call(&pool)),
            "a second verdict on the same stall"
        );
        let new = pool.lead().unwrap();
        pool.enter(new);
        pool.finish();
        assert!(!pool.promote(new, call(&pool)), "the worker is done");
    }

    /// The hang under load: the monitor sampled a blocked handler, was
    /// descheduled, and by the time it acted the leader had left the
    /// handler and was waiting on the epoll set, as asleep as a blocked
    /// handler. That leader must stay the only one.
    #[test]
    fn a_leader_that_left_its_handler_since_the_sample_keeps_leading() {
        let pool = Pool::new();
        let epoch = pool.lead().unwrap();
        pool.refill(epoch, &events(&[1]));
        assert_eq!(token(pool.next(epoch)), Some(1));
        pool.enter(epoch);
        let sampled = call(&pool);
        pool.leave(epoch);
        assert_eq!(token(pool.next(epoch)), None, "off to epoll_wait");
        assert!(!pool.promote(epoch, sampled));
        // Nor when it is already inside the next call.
        pool.refill(epoch, &events(&[2]));
        assert_eq!(token(pool.next(epoch)), Some(2));
        pool.enter(epoch);
        assert!(!pool.promote(epoch, sampled));
        pool.leave(epoch);
        assert_eq!(token(pool.next(epoch)), None);
    }

    #[test]
    fn a_standby_waits_for_leadership_and_finish_releases_everyone() {
        let pool = Arc::new(Pool::new());
        let first = pool.lead().unwrap();
        let standby = {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || {
                let epoch = pool.lead();
                (epoch, pool.lead())
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        assert!(!standby.is_finished(), "one leader at a time");
        pool.enter(first);
        assert!(pool.promote(first, call(&pool)));
        // The standby leads the next epoch, then (as a thread that lost
        // the lead would) waits again until the worker is done.
        while !pool.lock().led {
            std::thread::yield_now();
        }
        pool.finish();
        assert_eq!(standby.join().unwrap(), (Some(first + 1), None));
        assert!(pool.lead().is_none());
        assert!(resigns(pool.next(first + 1)));
    }

    #[test]
    fn a_blocked_handler_is_handed_over_on_the_second_sample() {
        let mut watch = Watch::new();
        assert_eq!(watch.stalled(3, 10, || panic!("first sight")), None);
        assert_eq!(watch.stalled(3, 10, || true), Some(3));
        // A new call since the last sample: not stalled, whatever it does.
        assert_eq!(watch.stalled(3, 11, || true), None);
        // Not in a handler: nothing to hand over, and /proc is not read.
        assert_eq!(watch.stalled(0, 11, || panic!("not busy")), None);
        assert_eq!(watch.stalled(0, 11, || panic!("not busy")), None);
    }

    #[test]
    fn a_computing_handler_is_handed_over_after_cpu_stall() {
        let mut watch = Watch::new();
        let ticks = (CPU_STALL.as_millis() / TICK.as_millis()) as u32;
        assert_eq!(watch.stalled(5, 1, || false), None);
        for _ in 1..ticks {
            assert_eq!(watch.stalled(5, 1, || false), None);
        }
        assert_eq!(watch.stalled(5, 1, || false), Some(5));
        // If the hand-over failed, the verdict stands on the next sample;
        // after one, the new leader's count starts from zero.
        assert_eq!(watch.stalled(5, 1, || false), Some(5));
        watch.handed_over();
        assert_eq!(watch.stalled(6, 1, || false), None);
    }

    #[test]
    fn the_monitor_parks_after_idle_ticks_without_work() {
        let mut watch = Watch::new();
        assert!(!watch.idle(0, 0), "the first sample sees a 'new' count");
        for _ in 1..IDLE_TICKS {
            assert!(!watch.idle(0, 0));
        }
        assert!(watch.idle(0, 0));
        watch.woken();
        // A batch or a running handler restarts the count.
        for _ in 0..IDLE_TICKS - 1 {
            assert!(!watch.idle(0, 0));
        }
        assert!(!watch.idle(0, 1));
        assert!(!watch.idle(4, 1));
        assert!(!watch.idle(0, 1));
    }
}
