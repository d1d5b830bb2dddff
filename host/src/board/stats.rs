//! Request statistics in shared memory, part of the [scoreboard]: per
//! worker, per handler thread, per plugin, how many requests were answered
//! (by status class) and how long the handler took (a small fixed-bucket
//! histogram), for the status listener (`/_drupe/status`,
//! `/_drupe/metrics`).
//!
//! The hot path pays a few plain stores and one clock read (vDSO, no
//! system call) per request: every [`ThreadStats`] has a single writer, its
//! handler thread, so a counter is bumped with a relaxed load and store —
//! no locked instruction, no lock, no shared cache line between threads
//! (each entry is 64-byte aligned, and each thread has its own entries).
//! A reader (the master) sums the entries with relaxed loads. It can see
//! a request counted in its status class a moment before its latency
//! bucket, never a torn number.
//!
//! Entry 0 of each thread counts the requests the host answered without a
//! plugin (no route: 404, wrong method: 405, a path that is not UTF-8:
//! 400). Entry `1 + i` belongs to plugin `i` of the worker's set, whose
//! name the worker writes into its [`PluginNames`] before it serves, so a
//! reader can add up plugins by name across workers and generations.
//!
//! [scoreboard]: super::scoreboard

use crate::sys::shm::Grid;
use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Plugins counted per worker; a worker with more counts only the first
/// ones (and says so in its log).
pub const MAX_PLUGINS: usize = 31;
/// Entries per thread: the unrouted requests, then one per plugin.
const ENTRIES: usize = MAX_PLUGINS + 1;
/// The entry of requests no plugin answered.
pub const UNROUTED: usize = 0;
/// Bytes of a plugin name kept; plugin names are short (`[a-z0-9_-]`).
pub const NAME_BYTES: usize = 56;
const NAME_WORDS: usize = NAME_BYTES / 8;

/// Upper bounds of the latency buckets, in microseconds; one more bucket
/// holds everything slower. From 10 µs (a handler that answers from
/// memory) to 30 s (`requestTimeout`'s default).
pub const BOUNDS_US: [u64; 20] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000,
];
/// Latency buckets, the last one unbounded.
pub const BUCKETS: usize = BOUNDS_US.len() + 1;

/// Status classes counted: 2xx, 3xx, 4xx, 5xx, and anything else.
pub const CLASSES: [&str; 5] = ["2xx", "3xx", "4xx", "5xx", "other"];
const SERVER_ERROR: usize = 3;

/// The counters of one plugin on one thread.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct Counters {
    // Fields are `pub(crate)` only so that `sys::shm` can check they are
    // all atomics; everyone else goes through `ThreadStats` and `Totals`.
    pub(crate) classes: [AtomicU64; CLASSES.len()],
    /// Microseconds spent in the handler, all requests together.
    pub(crate) sum_us: AtomicU64,
    pub(crate) buckets: [AtomicU64; BUCKETS],
}

/// One handler thread's counters, written only by that thread.
#[repr(C)]
#[derive(Debug)]
pub struct ThreadStats {
    pub(crate) entries: [Counters; ENTRIES],
}

/// The names of a worker's plugins, written once by the worker before it
/// serves; `count` is stored last (release), so a reader that sees it sees
/// the names.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct PluginNames {
    pub(crate) count: AtomicU32,
    pub(crate) names: [[AtomicU64; NAME_WORDS]; MAX_PLUGINS],
}

/// Adds `by` to a counter that only the calling thread writes.
#[inline]
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

fn class_of(status: u16) -> usize {
    match status {
        200..=599 => usize::from(status / 100 - 2),
        _ => CLASSES.len() - 1,
    }
}

fn bucket_of(micros: u64) -> usize {
    BOUNDS_US
        .iter()
        .position(|&bound| micros <= bound)
        .unwrap_or(BUCKETS - 1)
}

impl ThreadStats {
    /// Counts one answer of entry `entry` ([`UNROUTED`] or 1 + plugin
    /// index) and, if the handler ran, its time. Only the thread that owns
    /// these stats may call this.
    #[inline]
    pub fn record(&self, entry: usize, status: u16, handler_us: Option<u64>) {
        let Some(c) = self.entries.get(entry) else {
            return; // a plugin past MAX_PLUGINS
        };
        bump(&c.classes[class_of(status)], 1);
        if let Some(us) = handler_us {
            bump(&c.sum_us, us);
            bump(&c.buckets[bucket_of(us)], 1);
        }
    }

    fn clear(&self) {
        for c in &self.entries {
            for a in c.classes.iter().chain([&c.sum_us]).chain(&c.buckets) {
                a.store(0, Ordering::Relaxed);
            }
        }
    }
}

/// Counts read back and summed: over threads, workers, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub classes: [u64; CLASSES.len()],
    pub sum_us: u64,
    pub buckets: [u64; BUCKETS],
}

impl Totals {
    fn read(c: &Counters) -> Totals {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Totals {
            classes: c.classes.each_ref().map(load),
            sum_us: load(&c.sum_us),
            buckets: c.buckets.each_ref().map(load),
        }
    }

    pub fn add(&mut self, other: &Totals) {
        let pairs = self.classes.iter_mut().zip(&other.classes);
        for (a, b) in pairs.chain(self.buckets.iter_mut().zip(&other.buckets)) {
            *a = a.wrapping_add(*b);
        }
        self.sum_us = self.sum_us.wrapping_add(other.sum_us);
    }

    /// Every answer counted.
    pub fn requests(&self) -> u64 {
        self.classes.iter().sum()
    }

    /// Answers with a 5xx status.
    pub fn errors(&self) -> u64 {
        self.classes[SERVER_ERROR]
    }

    /// Requests whose handler time was measured (the histogram's count).
    pub fn timed(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The `q`-quantile (0 < q ≤ 1) of the handler time in microseconds,
    /// estimated from the buckets as Prometheus' `histogram_quantile` does:
    /// linear within the bucket that holds the rank. In the last, unbounded
    /// bucket it is that bucket's lower bound. `None` without data.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        let count = self.timed();
        if count == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * count as f64;
        let mut below = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            if n > 0 && (below + n) as f64 >= rank {
                let low = if i == 0 { 0 } else { BOUNDS_US[i - 1] } as f64;
                let Some(&high) = BOUNDS_US.get(i) else {
                    return Some(low);
                };
                let within = (rank - below as f64).max(0.0) / n as f64;
                return Some(low + (high as f64 - low) * within);
            }
            below += n;
        }
        Some(BOUNDS_US[BOUNDS_US.len() - 1] as f64)
    }
}

/// The statistics region of the scoreboard: [`PluginNames`] per worker
/// slot, then [`ThreadStats`] per worker slot and thread. Its own shared
/// anonymous mapping, made before any fork.
#[derive(Debug)]
pub struct StatsArea {
    grid: Grid<PluginNames, ThreadStats>,
}

impl StatsArea {
    /// Maps a zeroed region for `workers` slots of `threads` threads.
    pub fn new(workers: usize, threads: usize) -> io::Result<StatsArea> {
        Ok(StatsArea {
            grid: Grid::new(workers, threads, "statistics area")?,
        })
    }

    /// The counters of thread `thread` of worker slot `worker`, or `None`
    /// past the table.
    #[inline]
    pub fn thread(&self, worker: usize, thread: usize) -> Option<&ThreadStats> {
        self.grid.cell(worker, thread)
    }

    /// Zeroes worker slot `worker` for a new worker (master, before fork).
    pub fn clear(&self, worker: usize) {
        if let Some(names) = self.grid.header(worker) {
            names.count.store(0, Ordering::Release);
        }
        for stats in self.grid.row(worker) {
            stats.clear();
        }
    }

    /// Records the names of worker slot `worker`'s plugins, in load order
    /// (the worker, once, before it serves). Returns how many fit.
    pub fn publish_names<'a>(&self, worker: usize, names: impl Iterator<Item = &'a str>) -> usize {
        let Some(table) = self.grid.header(worker) else {
            return 0;
        };
        let mut count = 0;
        for (slot, name) in table.names.iter().zip(names) {
            let mut bytes = [0u8; NAME_BYTES];
            let take = name.len().min(NAME_BYTES);
            bytes[..take].copy_from_slice(&name.as_bytes()[..take]);
            for (word, chunk) in slot.iter().zip(bytes.chunks_exact(8)) {
                let mut b = [0u8; 8];
                b.copy_from_slice(chunk);
                word.store(u64::from_ne_bytes(b), Ordering::Relaxed);
            }
            count += 1;
        }
        table.count.store(count as u32, Ordering::Release);
        count
    }

    /// What worker slot `worker` has counted, summed over its threads:
    /// the unrouted requests, then each plugin by name.
    pub fn worker_totals(&self, worker: usize) -> (Totals, Vec<(String, Totals)>) {
        let sum = |entry: usize| {
            let mut t = Totals::default();
            for stats in self.grid.row(worker) {
                t.add(&Totals::read(&stats.entries[entry]));
            }
            t
        };
        let Some(table) = self.grid.header(worker) else {
            return (Totals::default(), Vec::new());
        };
        let count = (table.count.load(Ordering::Acquire) as usize).min(MAX_PLUGINS);
        let plugins = table.names[..count]
            .iter()
            .enumerate()
            .map(|(i, words)| {
                let mut bytes = [0u8; NAME_BYTES];
                for (chunk, word) in bytes.chunks_exact_mut(8).zip(words) {
                    chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
                }
                let len = bytes.iter().position(|&b| b == 0).unwrap_or(NAME_BYTES);
                let name = String::from_utf8_lossy(&bytes[..len]).into_owned();
                (name, sum(1 + i))
            })
            .collect();
        (sum(UNROUTED), plugins)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_cache_line_aligned_and_small() {
        assert_eq!(align_of::<Counters>(), 64);
        assert_eq!(size_of::<Counters>(), 256);
        assert_eq!(size_of::<ThreadStats>() % 64, 0);
    }

    #[test]
    fn records_sum_by_plugin_name_over_threads() {
        let area = StatsArea::new(2, 2).unwrap();
        assert_eq!(area.publish_names(1, ["hello", "testkit"].into_iter()), 2);
        let (t0, t1) = (area.thread(1, 0).unwrap(), area.thread(1, 1).unwrap());
        t0.record(1, 200, Some(5));
        t1.record(1, 200, Some(40));
        t1.record(2, 500, Some(2_000_000));
        t1.record(2, 404, Some(7));
        t0.record(UNROUTED, 404, None);
        t0.record(ENTRIES, 200, Some(1)); // past the table: ignored
        let (unrouted, plugins) = area.worker_totals(1);
        assert_eq!(unrouted.requests(), 1);
        assert_eq!(unrouted.timed(), 0);
        assert_eq!(plugins[0].0, "hello");
        assert_eq!(plugins[0].1.requests(), 2);
        assert_eq!(plugins[0].1.sum_us, 45);
        assert_eq!(plugins[1].0, "testkit");
        assert_eq!(plugins[1].1.classes, [0, 0, 1, 1, 0]);
        assert_eq!(plugins[1].1.errors(), 1);
        assert_eq!(area.worker_totals(0), (Totals::default(), Vec::new()));
        area.clear(1);
        assert_eq!(area.worker_totals(1), (Totals::default(), Vec::new()));
    }

    #[test]
    fn status_classes_and_buckets() {
        assert_eq!(
            [200, 204, 301, 404, 500, 503, 600, 999, 100].map(class_of),
            [0, 0, 1, 2, 3, 3, 4, 4, 4]
        );
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(10), 0);
        assert_eq!(bucket_of(11), 1);
        assert_eq!(bucket_of(30_000_000), BUCKETS - 2);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_interpolate_within_the_bucket() {
        let mut t = Totals::default();
        assert_eq!(t.quantile_us(0.5), None);
        t.buckets[0] = 50; // ≤ 10 µs
        t.buckets[3] = 50; // 50..100 µs
        assert_eq!(t.quantile_us(0.5), Some(10.0));
        assert_eq!(t.quantile_us(0.75), Some(75.0));
        assert_eq!(t.quantile_us(1.0), Some(100.0));
        t.buckets[BUCKETS - 1] = 900; // slower than the last bound
        assert_eq!(t.quantile_us(0.99), Some(30_000_000.0));
    }

    #[test]
    fn a_forked_child_counts_what_the_parent_reads() {
        let area = StatsArea::new(1, 1).unwrap();
        // The child only stores to atomics and `_exit`s.
        match crate::sys::process::fork().unwrap() {
            crate::sys::process::Forked::Child => {
                area.publish_names(0, ["hello"].into_iter());
                area.thread(0, 0).unwrap().record(1, 200, Some(3));
                crate::sys::process::exit_now(0);
            }
            crate::sys::process::Forked::Parent(pid) => {
                nix::sys::wait::waitpid(pid, None).unwrap();
                let (_, plugins) = area.worker_totals(0);
                assert_eq!(plugins[0].0, "hello");
                assert_eq!(plugins[0].1.requests(), 1);
            }
        }
    }
}
