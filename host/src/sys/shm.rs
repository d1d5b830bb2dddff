//! Memory shared with the processes forked afterwards: an anonymous
//! `MAP_SHARED` mapping, laid out as one typed [`Grid`] — a header per
//! worker and a cell per worker and handler thread. The scoreboard and the
//! request statistics (`crate::board`) are both such grids; this file holds
//! all the `unsafe` they need.

use nix::sys::mman::{mmap_anonymous, munmap, MapFlags, ProtFlags};
use std::io;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64};

/// A type that may live in memory shared between processes: all-zero
/// bytes are a valid value of it, and every access from another process
/// is race-free — in practice, it is made only of atomics.
///
/// # Safety
///
/// Implement it only for types whose every field is itself `Zeroable`
/// (atomics, arrays of them, structs of them): no references, no heap
/// pointers, no plain integers written while shared, nothing with `Drop`.
pub unsafe trait Zeroable: Sync {}

// SAFETY: an atomic integer is valid for any bits, zero included, and is
// the one kind of value two processes may access at once without a race.
unsafe impl Zeroable for AtomicI32 {}
// SAFETY: as above.
unsafe impl Zeroable for AtomicU32 {}
// SAFETY: as above.
unsafe impl Zeroable for AtomicU64 {}
// SAFETY: an array of zero-valid, race-free values is one too.
unsafe impl<T: Zeroable, const N: usize> Zeroable for [T; N] {}

/// Checks, at compile time, that a struct of the board is made of
/// [`Zeroable`] fields before declaring it `Zeroable`: the destructuring
/// names every field without `..`, so adding a field to the struct stops
/// the build here until it is listed (and is Zeroable).
fn must_be_zeroable<T: Zeroable>(_: &T) {}

macro_rules! zeroable_structs {
    ($($ty:path { $($field:ident),+ $(,)? })+) => {$(
        const _: fn(&$ty) = |value| {
            let $ty { $($field),+ } = value;
            $(must_be_zeroable($field);)+
        };
        // SAFETY: every field is Zeroable (checked just above), so the
        // struct is valid when zeroed and race-free to share.
        unsafe impl Zeroable for $ty {}
    )+};
}

zeroable_structs! {
    crate::board::scoreboard::WorkerSlot { pid, state, generation, connections, draining }
    crate::board::scoreboard::ThreadSlot { seq, busy_since, served, route, conn_fd }
    crate::board::stats::PluginNames { count, names }
    crate::board::stats::Counters { classes, sum_us, buckets }
    crate::board::stats::ThreadStats { entries }
}

/// Zero-filled pages that every child forked after [`SharedPages::new`]
/// shares with the parent. Unmapped on drop.
#[derive(Debug)]
struct SharedPages {
    base: NonNull<u8>,
    len: usize,
}

impl SharedPages {
    /// Maps `len` zeroed bytes; `what` names them in errors.
    fn new(len: usize, what: &str) -> io::Result<SharedPages> {
        let size =
            NonZeroUsize::new(len).ok_or_else(|| io::Error::other(format!("empty {what}")))?;
        // SAFETY: a fresh anonymous mapping at an address the kernel picks
        // cannot overlap any Rust object. MAP_SHARED keeps the pages shared
        // with children after fork; the kernel zero-fills them, and the
        // only values placed there are Zeroable (see `Grid`).
        let base = unsafe {
            mmap_anonymous(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .map_err(|e| io::Error::other(format!("cannot map the {what}: {e}")))?;
        Ok(SharedPages {
            base: base.cast(),
            len,
        })
    }
}

impl Drop for SharedPages {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` are exactly what mmap returned, and no
        // reference into the mapping outlives `self` (they borrow it).
        let _ = unsafe { munmap(self.base.cast(), self.len) };
    }
}

/// A table in shared memory: one `H` per worker, then `workers × threads`
/// cells `C`, row by row, each zeroed at first. Whoever holds it reads and
/// writes the entries through shared references; since they are
/// [`Zeroable`] (atomics), a reader in another process sees stale values at
/// worst, never torn ones.
#[derive(Debug)]
pub struct Grid<H, C> {
    pages: SharedPages,
    workers: usize,
    threads: usize,
    /// Byte offset of the first cell: past the headers, aligned for `C`.
    cells: usize,
    _entries: PhantomData<(H, C)>,
}

// SAFETY: the grid owns its mapping, which lives as long as the value, and
// hands out only shared references to Zeroable (so Sync) entries: sending
// or sharing the handle between threads cannot cause a data race.
unsafe impl<H: Zeroable, C: Zeroable> Send for Grid<H, C> {}
// SAFETY: as above.
unsafe impl<H: Zeroable, C: Zeroable> Sync for Grid<H, C> {}

impl<H: Zeroable, C: Zeroable> Grid<H, C> {
    /// Maps a zeroed grid of `workers` rows of `threads` cells; `what`
    /// names it in errors. Call before forking: only processes forked
    /// afterwards share it.
    pub fn new(workers: usize, threads: usize, what: &str) -> io::Result<Grid<H, C>> {
        let too_large = || io::Error::other(format!("{what} too large"));
        let cells = workers
            .checked_mul(size_of::<H>())
            .and_then(|n| n.checked_next_multiple_of(align_of::<C>()))
            .ok_or_else(too_large)?;
        let len = workers
            .checked_mul(threads)
            .and_then(|n| n.checked_mul(size_of::<C>()))
            .and_then(|n| n.checked_add(cells))
            .ok_or_else(too_large)?;
        // The mapping is page-aligned; the entries must not ask for more.
        assert!(align_of::<H>() <= 4096 && align_of::<C>() <= 4096);
        Ok(Grid {
            pages: SharedPages::new(len, what)?,
            workers,
            threads,
            cells,
            _entries: PhantomData,
        })
    }

    /// Number of rows (workers).
    #[inline]
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Cells per row (handler threads).
    #[inline]
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The header of row `worker`, or `None` past the grid.
    #[inline]
    pub fn header(&self, worker: usize) -> Option<&H> {
        if worker >= self.workers {
            return None;
        }
        // SAFETY: `worker` is in range, so the header lies inside the
        // mapping (see `new`), at a multiple of its size — hence of its
        // alignment — from a page-aligned base. The mapping lives as long
        // as `self`, was zeroed by the kernel, and H is Zeroable, so the
        // bytes are a valid H that anyone may share.
        Some(unsafe { &*self.pages.base.as_ptr().cast::<H>().add(worker) })
    }

    /// Cell `thread` of row `worker`, or `None` past the grid.
    #[inline]
    pub fn cell(&self, worker: usize, thread: usize) -> Option<&C> {
        if worker >= self.workers || thread >= self.threads {
            return None;
        }
        let offset = self.cells + (worker * self.threads + thread) * size_of::<C>();
        // SAFETY: both indices are in range, so the cell lies inside the
        // mapping (see `new`); `cells` is a multiple of C's alignment from
        // a page-aligned base, and so is every cell after it. Valid and
        // shareable as for `header`.
        Some(unsafe { &*self.pages.base.as_ptr().add(offset).cast::<C>() })
    }

    /// Every cell of row `worker` (empty past the grid).
    #[inline]
    pub fn row(&self, worker: usize) -> impl Iterator<Item = &C> + '_ {
        let threads = if worker < self.workers {
            self.threads
        } else {
            0
        };
        (0..threads).filter_map(move |thread| self.cell(worker, thread))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn entries_are_disjoint_and_zeroed() {
        let grid: Grid<AtomicU32, [AtomicU64; 3]> = Grid::new(3, 2, "test grid").unwrap();
        for w in 0..3 {
            assert_eq!(grid.header(w).unwrap().load(Ordering::Relaxed), 0);
            grid.header(w)
                .unwrap()
                .store(w as u32 + 1, Ordering::Relaxed);
            for t in 0..2 {
                let cell = grid.cell(w, t).unwrap();
                assert!(cell.iter().all(|a| a.load(Ordering::Relaxed) == 0));
                cell[2].store((w * 10 + t) as u64, Ordering::Relaxed);
            }
        }
        for w in 0..3 {
            assert_eq!(
                grid.header(w).unwrap().load(Ordering::Relaxed),
                w as u32 + 1
            );
            let row: Vec<u64> = grid.row(w).map(|c| c[2].load(Ordering::Relaxed)).collect();
            assert_eq!(row, [w as u64 * 10, w as u64 * 10 + 1]);
        }
        assert!(grid.header(3).is_none());
        assert!(grid.cell(0, 2).is_none() && grid.cell(3, 0).is_none());
        assert_eq!(grid.row(3).count(), 0);
    }
}
