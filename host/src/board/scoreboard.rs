//! The scoreboard: a table in shared memory, mapped by the master before it
//! forks any worker, so every worker inherits the same pages (Apache's
//! scoreboard, uWSGI's shared worker array).
//!
//! One [`WorkerSlot`] per worker process, and under it one [`ThreadSlot`]
//! per handler thread. A handler thread writes "busy since / route" into
//! its own thread slot around each plugin call and counts the requests it
//! served; the master reads the table every tick to find a request that
//! ran past `requestTimeout` or a worker past `maxRequests`. Each thread
//! slot has a single writer (its thread), so no lock is needed: the route
//! text is guarded by a sequence number (a seqlock), and every field is an
//! atomic, so a reader in another process can never see a torn value, only
//! a stale one, which the sequence number detects.
//!
//! One exception, a call past `requestTimeout`: the master marks it
//! [`ThreadSlot::expire`], and another thread of its worker answers it 504
//! on the connection the slot names ([`ThreadSlot::answer_expired`]) while
//! the handler still runs. The mark lives in `busy_since`, changed only by
//! compare-and-swap, so the handler thread ending its call
//! ([`ThreadSlot::end`]) and the thread answering for it agree on who
//! writes the response: exactly one of them.
//!
//! The request statistics of the status listener (per plugin counts and
//! latency buckets) live beside it, in [`StatsArea`], made and cleared
//! with the table. Both are a [`Grid`] of `sys::shm`, which holds the
//! only `unsafe` they need.

use super::stats::StatsArea;
use crate::sys::shm::Grid;
use std::io;
use std::sync::atomic::{fence, AtomicI32, AtomicU32, AtomicU64, Ordering};

/// Bytes of "METHOD /path" kept per busy thread; longer ones are cut.
pub const ROUTE_BYTES: usize = 96;
const ROUTE_WORDS: usize = ROUTE_BYTES / 8;

/// What the master knows about one worker, for whoever reads the table.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct WorkerSlot {
    // Fields are `pub(crate)` only so that `sys::shm` can check they are
    // all atomics; everyone else goes through `Scoreboard`.
    pub(crate) pid: AtomicI32,
    /// One of the `STATE_*` values, written by the master.
    pub(crate) state: AtomicU32,
    pub(crate) generation: AtomicU64,
    /// Open client connections, written by the worker on every accept and
    /// close; siblings read it to share new connections out evenly.
    pub(crate) connections: AtomicU32,
    /// 1 once the master stops the host: the worker serves on but answers
    /// `/_drupe/health` with 503, so load balancers move traffic away.
    pub(crate) draining: AtomicU32,
}

/// `WorkerSlot::state`: the slot is unused.
pub const STATE_FREE: u32 = 0;
/// Forked, not ready yet.
pub const STATE_STARTING: u32 = 1;
/// Serving.
pub const STATE_READY: u32 = 2;
/// Finishing in-flight requests.
pub const STATE_STOPPING: u32 = 3;

/// One handler thread of a worker. 128 bytes, so two threads never write
/// the same cache line.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct ThreadSlot {
    /// Odd while the thread rewrites `busy_since` and `route`.
    pub(crate) seq: AtomicU64,
    /// Monotonic milliseconds ([`now_ms`]) when the current plugin call
    /// began; 0 while idle.
    pub(crate) busy_since: AtomicU64,
    /// Requests this thread has answered.
    pub(crate) served: AtomicU64,
    /// "METHOD /path" of the current call, NUL-padded.
    pub(crate) route: [AtomicU64; ROUTE_WORDS],
    /// The descriptor of the connection the current call answers: valid
    /// while the call runs, since its thread owns the connection until
    /// then.
    pub(crate) conn_fd: AtomicI32,
}

/// `busy_since` of a call the master gave up on (past `requestTimeout`);
/// nobody has answered it yet. These marks are far above any clock value.
const EXPIRED: u64 = u64::MAX;
/// ... a thread of the worker is writing its 504 on the connection.
const ANSWERING: u64 = u64::MAX - 1;
/// ... its 504 is out and the connection shut down.
const ANSWERED: u64 = u64::MAX - 2;

/// How a call ended, for the thread that made it ([`ThreadSlot::end`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// In time: send its response.
    InTime,
    /// Past `requestTimeout`, and nobody answered for it: the caller
    /// answers 504 instead of the handler's response.
    Expired,
    /// Past `requestTimeout`, and another thread answered 504 and shut the
    /// connection down: write nothing more on it.
    Answered,
}

/// A busy thread as the master sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    /// The thread's index in its worker's row.
    pub thread: usize,
    /// [`now_ms`] when the call began.
    pub since_ms: u64,
    pub route: String,
    /// Past `requestTimeout` and given up ([`ThreadSlot::expire`]); its
    /// `since_ms` is lost.
    pub expired: bool,
}

/// Milliseconds on the monotonic clock, which every process on the
/// machine shares (unlike `Instant`, which cannot cross a process).
pub fn now_ms() -> u64 {
    now_us() / 1000
}

/// Microseconds on the same clock, for handler times. `clock_gettime` on
/// the monotonic clock is served by the vDSO: no system call.
pub fn now_us() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000)
        .unwrap_or(0)
}

impl ThreadSlot {
    /// Marks the thread busy with `method path` on connection `fd` from now
    /// on; returns now ([`now_us`]), from which the caller times the call.
    pub fn begin(&self, method: &[u8], path: &[u8], fd: i32) -> u64 {
        let mut text = [0u8; ROUTE_BYTES];
        let mut n = 0;
        for part in [method, b" ", path] {
            let take = part.len().min(ROUTE_BYTES - n);
            text[n..n + take].copy_from_slice(&part[..take]);
            n += take;
        }
        let seq = self.seq.load(Ordering::Relaxed).wrapping_add(1);
        self.seq.store(seq, Ordering::Relaxed);
        fence(Ordering::Release);
        for (word, bytes) in self.route.iter().zip(text.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(bytes);
            word.store(u64::from_ne_bytes(b), Ordering::Relaxed);
        }
        self.conn_fd.store(fd, Ordering::Relaxed);
        let now = now_us();
        self.busy_since
            .store((now / 1000).max(1), Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Release);
        now
    }

    /// The call is over: idle again. Says whether its response may be
    /// sent (see [`Ended`]).
    pub fn end(&self) -> Ended {
        loop {
            let since = self.busy_since.load(Ordering::Acquire);
            if since == ANSWERING {
                // Another thread is writing on this call's connection,
                // which must stay open (ours) until it is done: a few
                // microseconds, once in the life of a worker.
                std::thread::yield_now();
                continue;
            }
            if self
                .busy_since
                .compare_exchange(since, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return match since {
                    EXPIRED => Ended::Expired,
                    ANSWERED => Ended::Answered,
                    _ => Ended::InTime,
                };
            }
        }
    }

    /// The master gives up on the call that began at `since_ms`, if it
    /// still runs; returns whether it did.
    pub fn expire(&self, since_ms: u64) -> bool {
        self.busy_since
            .compare_exchange(since_ms, EXPIRED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// If the current call was given up ([`ThreadSlot::expire`]) and still
    /// runs, calls `answer` with its connection's descriptor, which stays
    /// open meanwhile (the call cannot end until `answer` returns); from
    /// then on the call's own response is discarded. Returns whether it
    /// answered.
    pub fn answer_expired(&self, answer: impl FnOnce(i32)) -> bool {
        if self
            .busy_since
            .compare_exchange(EXPIRED, ANSWERING, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        answer(self.conn_fd.load(Ordering::Relaxed));
        self.busy_since.store(ANSWERED, Ordering::Release);
        true
    }

    /// Whether the current call was given up and answered for: its thread
    /// may never come back, and its connection is done.
    pub fn answered(&self) -> bool {
        self.busy_since.load(Ordering::Acquire) == ANSWERED
    }

    /// Counts one request answered.
    pub fn count(&self) {
        self.served.fetch_add(1, Ordering::Relaxed);
    }

    /// The current call, if any; `None` while idle. A reader racing with
    /// the thread retries a few times, then reports idle (the next tick
    /// will look again).
    pub fn busy(&self, thread: usize) -> Option<Busy> {
        for _ in 0..4 {
            let before = self.seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let since_ms = self.busy_since.load(Ordering::Relaxed);
            let mut text = [0u8; ROUTE_BYTES];
            for (word, bytes) in self.route.iter().zip(text.chunks_exact_mut(8)) {
                bytes.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
            }
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) != before {
                continue;
            }
            if since_ms == 0 {
                return None;
            }
            let len = text.iter().position(|&b| b == 0).unwrap_or(ROUTE_BYTES);
            return Some(Busy {
                thread,
                since_ms,
                route: String::from_utf8_lossy(&text[..len]).into_owned(),
                expired: since_ms >= ANSWERED,
            });
        }
        None
    }

    fn clear(&self) {
        self.seq.store(0, Ordering::Relaxed);
        self.busy_since.store(0, Ordering::Relaxed);
        self.served.store(0, Ordering::Relaxed);
        self.conn_fd.store(0, Ordering::Relaxed);
        for word in &self.route {
            word.store(0, Ordering::Relaxed);
        }
    }
}

/// The whole table, mapped shared and anonymous: it exists only in the
/// master and the processes it forks.
#[derive(Debug)]
pub struct Scoreboard {
    grid: Grid<WorkerSlot, ThreadSlot>,
    stats: StatsArea,
}

impl Scoreboard {
    /// Maps a zeroed table for `workers` workers of `threads` threads.
    /// Call before forking: only processes forked afterwards share it.
    pub fn new(workers: usize, threads: usize) -> io::Result<Scoreboard> {
        let workers = workers.max(1);
        let threads = threads.max(1);
        Ok(Scoreboard {
            grid: Grid::new(workers, threads, "scoreboard")?,
            stats: StatsArea::new(workers, threads)?,
        })
    }

    /// Number of worker slots.
    pub fn capacity(&self) -> usize {
        self.grid.workers()
    }

    /// Thread slots per worker.
    pub fn threads(&self) -> usize {
        self.grid.threads()
    }

    fn worker(&self, index: usize) -> &WorkerSlot {
        self.grid
            .header(index)
            .unwrap_or_else(|| panic!("worker slot {index} out of range"))
    }

    /// Thread `thread` of worker slot `worker`, or `None` past the table's
    /// width (a reload raised `threadPool`: those threads go untracked).
    #[inline]
    pub fn thread(&self, worker: usize, thread: usize) -> Option<&ThreadSlot> {
        self.grid.cell(worker, thread)
    }

    /// The request statistics, laid out like the table.
    pub fn stats(&self) -> &StatsArea {
        &self.stats
    }

    /// Resets slot `index` for a new worker. Only the master calls this,
    /// before forking that worker, while no live process writes the slot.
    pub fn assign(&self, index: usize, pid: i32, generation: u64) {
        self.stats.clear(index);
        for t in self.grid.row(index) {
            t.clear();
        }
        let slot = self.worker(index);
        slot.pid.store(pid, Ordering::Relaxed);
        slot.generation.store(generation, Ordering::Relaxed);
        slot.connections.store(0, Ordering::Relaxed);
        slot.draining.store(0, Ordering::Relaxed);
        slot.state.store(STATE_STARTING, Ordering::Release);
    }

    /// Records the pid once `fork` returned it.
    pub fn set_pid(&self, index: usize, pid: i32) {
        self.worker(index).pid.store(pid, Ordering::Release);
    }

    pub fn set_state(&self, index: usize, state: u32) {
        self.worker(index).state.store(state, Ordering::Release);
    }

    pub fn state(&self, index: usize) -> u32 {
        self.worker(index).state.load(Ordering::Acquire)
    }

    /// Tells worker slot `index` its host is stopping (see `draining`).
    pub fn set_draining(&self, index: usize) {
        self.worker(index).draining.store(1, Ordering::Release);
    }

    /// Whether the master has told worker slot `index` that its host is
    /// stopping.
    pub fn draining(&self, index: usize) -> bool {
        self.worker(index).draining.load(Ordering::Acquire) != 0
    }

    pub fn pid(&self, index: usize) -> i32 {
        self.worker(index).pid.load(Ordering::Acquire)
    }

    /// Records worker slot `index`'s number of open connections.
    pub fn set_connections(&self, index: usize, open: u32) {
        self.worker(index)
            .connections
            .store(open, Ordering::Relaxed);
    }

    /// Open connections of worker slot `index`.
    pub fn connections(&self, index: usize) -> u32 {
        self.worker(index).connections.load(Ordering::Relaxed)
    }

    /// Whether some handler thread of worker slot `index` is free, i.e.
    /// not inside a plugin call; a worker with none cannot take new
    /// connections right now.
    pub fn has_free_thread(&self, index: usize) -> bool {
        self.grid
            .row(index)
            .any(|t| t.busy_since.load(Ordering::Relaxed) == 0)
    }

    /// Requests worker slot `index` has answered, over all its threads.
    pub fn requests_served(&self, index: usize) -> u64 {
        self.grid
            .row(index)
            .map(|t| t.served.load(Ordering::Relaxed))
            .sum()
    }

    /// The calls running in worker slot `index` now.
    pub fn busy(&self, index: usize) -> impl Iterator<Item = Busy> + '_ {
        self.grid
            .row(index)
            .enumerate()
            .filter_map(|(thread, slot)| slot.busy(thread))
    }

    /// Handler threads of worker slot `index` whose call was given up and
    /// answered for (see [`ThreadSlot::answer_expired`]).
    pub fn answered(&self, index: usize) -> usize {
        self.grid.row(index).filter(|t| t.answered()).count()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn slots_do_not_overlap_and_start_idle() {
        let board = Scoreboard::new(3, 2).unwrap();
        assert_eq!(size_of::<ThreadSlot>(), 128);
        assert_eq!(size_of::<WorkerSlot>(), 64);
        for w in 0..3 {
            for t in 0..2 {
                let slot = board.thread(w, t).unwrap();
                assert_eq!(slot.busy(0), None);
                slot.begin(b"GET", format!("/w{w}/t{t}").as_bytes(), 0);
            }
        }
        for w in 0..3 {
            let routes: Vec<String> = board.busy(w).map(|b| b.route).collect();
            assert_eq!(routes, [format!("GET /w{w}/t0"), format!("GET /w{w}/t1")]);
        }
        assert!(board.thread(0, 2).is_none());
        assert!(board.thread(3, 0).is_none());
    }

    #[test]
    fn begin_end_and_count() {
        let board = Scoreboard::new(1, 1).unwrap();
        let slot = board.thread(0, 0).unwrap();
        let before = now_ms();
        slot.begin(b"POST", b"/counter/x", 0);
        let busy = slot.busy(0).unwrap();
        assert_eq!(busy.route, "POST /counter/x");
        assert!(busy.since_ms >= before);
        slot.end();
        slot.count();
        slot.count();
        assert_eq!(slot.busy(0), None);
        assert_eq!(board.requests_served(0), 2);
        board.set_draining(0);
        assert!(board.draining(0));
        board.assign(0, 42, 7);
        assert!(!board.draining(0), "a new worker in the slot starts afresh");
        assert_eq!(board.requests_served(0), 0);
        assert_eq!((board.pid(0), board.state(0)), (42, STATE_STARTING));
    }

    #[test]
    fn a_long_route_is_cut_not_overflowed() {
        let board = Scoreboard::new(1, 1).unwrap();
        let slot = board.thread(0, 0).unwrap();
        let path = format!("/{}", "x".repeat(300));
        slot.begin(b"GET", path.as_bytes(), 0);
        let route = slot.busy(0).unwrap().route;
        assert_eq!(route.len(), ROUTE_BYTES);
        assert!(route.starts_with("GET /xxx"));
    }

    #[test]
    fn a_forked_child_writes_what_the_parent_reads() {
        let board = Scoreboard::new(2, 1).unwrap();
        // The test harness has other threads; the child only stores to
        // atomics and `_exit`s, which is safe after fork regardless.
        match crate::sys::process::fork().unwrap() {
            crate::sys::process::Forked::Child => {
                let slot = board.thread(1, 0).unwrap();
                slot.begin(b"GET", b"/from/child", 0);
                slot.count();
                crate::sys::process::exit_now(0);
            }
            crate::sys::process::Forked::Parent(pid) => {
                nix::sys::wait::waitpid(pid, None).unwrap();
                assert_eq!(board.busy(1).next().unwrap().route, "GET /from/child");
                assert_eq!(board.requests_served(1), 1);
            }
        }
    }
}
