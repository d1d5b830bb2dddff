//! Memory shared with the processes forked afterwards: an anonymous
//! `MAP_SHARED` mapping, the backing of the scoreboard and the statistics.

use nix::sys::mman::{mmap_anonymous, munmap, MapFlags, ProtFlags};
use std::io;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

/// Zero-filled pages that every child forked after [`SharedPages::new`]
/// shares with the parent. Unmapped on drop.
#[derive(Debug)]
pub struct SharedPages {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory that lives as long as the value; the
// types built on it only hand out references to atomics, so sharing the
// handle between threads cannot cause a data race.
unsafe impl Send for SharedPages {}
// SAFETY: as above.
unsafe impl Sync for SharedPages {}

impl SharedPages {
    /// Maps `len` zeroed bytes; `what` names them in errors.
    pub fn new(len: usize, what: &str) -> io::Result<SharedPages> {
        let size =
            NonZeroUsize::new(len).ok_or_else(|| io::Error::other(format!("empty {what}")))?;
        // SAFETY: a fresh anonymous mapping at an address the kernel picks
        // cannot overlap any Rust object. MAP_SHARED keeps the pages shared
        // with children after fork; the kernel zero-fills them, and the
        // callers only place atomics there, for which all-zero is valid.
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

    /// The first byte; page-aligned.
    pub fn base(&self) -> NonNull<u8> {
        self.base
    }
}

impl Drop for SharedPages {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` are exactly what mmap returned, and no
        // reference into the mapping outlives `self` (they borrow it).
        let _ = unsafe { munmap(self.base.cast(), self.len) };
    }
}
