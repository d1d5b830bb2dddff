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
        self.seq.fetch_add(1, Ordering::Relaxed);
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
    /// otherwise to the first thread that finishes its handler).
    fn promote(&self, epoch: u64) -> bool {
        let mut state = self.lock();
        if state.epoch != epoch || state.done {
            return false;
        }
        state.epoch += 1;
        state.led = false;
        self.standby.notify_one();
        true
    }

    /// The monitor thread's body: sample the leader every [`TICK`].
    pub fn monitor(&self) {
        let mut last_seq = u64::MAX;
        let mut last_refills = u64::MAX;
        let mut stalled_ticks = 0u32;
        let mut idle_ticks = 0u32;
        let cpu_stall_ticks = (CPU_STALL.as_millis() / TICK.as_millis()).max(1) as u32;
        loop {
            std::thread::sleep(TICK);
            let busy = self.busy.load(Ordering::Acquire);
            let seq = self.seq.load(Ordering::Relaxed);
            if busy != 0 && seq == last_seq {
                // The same handler call is still running since last tick.
                stalled_ticks += 1;
                let blocked =
                    !crate::sys::proc::thread_running(self.leader_tid.load(Ordering::Relaxed));
                if (blocked || stalled_ticks >= cpu_stall_ticks) && self.promote(busy) {
                    stalled_ticks = 0;
                }
            } else {
                stalled_ticks = 0;
            }
            last_seq = seq;
            let mut state = self.lock();
            if state.done {
                return;
            }
            let quiet = busy == 0 && state.refills == last_refills;
            last_refills = state.refills;
            idle_ticks = if quiet { idle_ticks + 1 } else { 0 };
            if idle_ticks >= IDLE_TICKS {
                self.monitor_parked.store(true, Ordering::Relaxed);
                while self.monitor_parked.load(Ordering::Relaxed) && !state.done {
                    state = self
                        .monitor_wake
                        .wait(state)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                idle_ticks = 0;
            }
        }
    }
}
