//! Bodies that do not go through memory: the ABI 1.4 callbacks that hand
//! the host a file or a plugin's reader, the reader's safe wrapper, and
//! the system calls behind them (`sendfile(2)`, `mmap(2)` of a spooled
//! request body).
//!
//! As for the other callbacks (`dl`), each `extern "C"` function only
//! turns raw pointers into Rust values and delegates to the [`CallSink`];
//! nothing unwinds into the plugin.

use super::dl::{abort_on_panic, sink, CallSink};
use drupe_sdk::abi::{self, Bytes, Call, HostApi, Outcome, StreamBody};
use std::ffi::c_void;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// `table` with the body entries for sink type `S`.
pub(super) const fn with_bodies<S: CallSink>(table: HostApi) -> HostApi {
    HostApi {
        respond_file: Some(respond_file::<S>),
        respond_stream: Some(respond_stream::<S>),
        ..table
    }
}

/// `HostApi::respond_file`.
///
/// # Safety
/// `call` must be the `*mut S` of the current `handle` call; `path` is
/// borrowed for this call.
unsafe extern "C" fn respond_file<S: CallSink>(call: *mut Call, path: Bytes) -> Outcome {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `call` comes from `Entry::handle`; the bytes are borrowed.
        let ok = unsafe { sink::<S>(call).respond_file(path.as_slice()) };
        if ok {
            abi::OUTCOME_OK
        } else {
            abi::OUTCOME_ERROR
        }
    }));
    abort_on_panic(result)
}

/// `HostApi::respond_stream`. The reader is the host's from here on, even
/// when this fails (dropping the wrapper calls the plugin's `drop`).
///
/// # Safety
/// `call` must be the `*mut S` of the current `handle` call; `reader` must
/// be a live reader as `abi::StreamBody` describes.
unsafe extern "C" fn respond_stream<S: CallSink>(
    call: *mut Call,
    reader: StreamBody,
    len: i64,
) -> Outcome {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let reader = PluginReader(reader);
        let len = u64::try_from(len).ok();
        // SAFETY: `call` comes from `Entry::handle`.
        let ok = unsafe { sink::<S>(call) }.respond_stream(reader, len);
        if ok {
            abi::OUTCOME_OK
        } else {
            abi::OUTCOME_ERROR
        }
    }));
    abort_on_panic(result)
}

/// A plugin's body reader, owned by the host: `read` calls the plugin's
/// (panic-catching) shim, dropping calls its `drop` once.
#[derive(Debug)]
pub struct PluginReader(StreamBody);

// SAFETY: the ABI lets the host call `read` from any one thread at a time
// (`Response::stream` requires `Read + Send`); `&mut self` gives that.
unsafe impl Send for PluginReader {}

impl io::Read for PluginReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `state` is live until `drop` (only in `Drop`), and `buf`
        // is valid for `buf.len()` bytes of writing.
        let n = unsafe { (self.0.read)(self.0.state, buf.as_mut_ptr(), buf.len()) };
        match usize::try_from(n) {
            Ok(n) if n <= buf.len() => Ok(n),
            _ => Err(io::Error::other("the plugin's body reader failed")),
        }
    }
}

impl Drop for PluginReader {
    fn drop(&mut self) {
        // SAFETY: called once, here; never read after.
        unsafe { (self.0.drop)(self.0.state) }
    }
}

/// Sends up to `count` bytes of `file` from `*offset` to `socket`,
/// advancing `offset`: the kernel copies from the page cache, and the
/// bytes never enter this process.
pub fn sendfile(
    socket: impl AsFd,
    file: &File,
    offset: &mut u64,
    count: usize,
) -> io::Result<usize> {
    let mut off =
        i64::try_from(*offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let n = nix::sys::sendfile::sendfile64(socket, file, Some(&mut off), count)?;
    *offset = off as u64;
    Ok(n)
}

/// A read-only, shared mapping of a whole file: a spooled request body
/// handed to a plugin as `req.body()` without reading it into memory
/// (pages come from the file as they are touched, and can be reclaimed).
#[derive(Debug)]
pub struct Mapped {
    ptr: std::ptr::NonNull<c_void>,
    len: usize,
}

// SAFETY: a read-only mapping of a file nobody writes any more; the bytes
// never change, so sharing or moving the view between threads is sound.
unsafe impl Send for Mapped {}
// SAFETY: as above.
unsafe impl Sync for Mapped {}

impl Mapped {
    /// Maps `len` bytes of `file` (which must hold at least that many and
    /// not shrink while mapped: the spool is unlinked and only ours).
    pub fn new(file: &File, len: usize) -> io::Result<Mapped> {
        let Some(length) = std::num::NonZeroUsize::new(len) else {
            return Ok(Mapped {
                ptr: std::ptr::NonNull::dangling(),
                len: 0,
            });
        };
        // SAFETY: a fresh read-only shared mapping; no existing memory is
        // touched. The file is ours alone and never truncated while
        // mapped, so reading the mapping cannot fault.
        let ptr = unsafe {
            nix::sys::mman::mmap(
                None,
                length,
                nix::sys::mman::ProtFlags::PROT_READ,
                nix::sys::mman::MapFlags::MAP_SHARED,
                file,
                0,
            )
        }?;
        Ok(Mapped { ptr, len })
    }

    pub fn as_slice(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` maps `len` readable bytes until `Drop`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: the mapping made in `new`, unmapped once; no slice of
            // it outlives `self` (`as_slice` borrows `self`).
            let _ = unsafe { nix::sys::mman::munmap(self.ptr, self.len) };
        }
    }
}

/// Opens `relative` (no leading `/`) for reading strictly beneath the
/// folder `dir`: the kernel refuses (`EXDEV`) any resolution that leaves
/// it — `..`, an absolute symlink, a symlink pointing outside — while
/// symlinks that stay inside work, and no magic links (`/proc/…/fd`) are
/// followed. One system call, and no window between a check and the open
/// for a swapped symlink to slip through. `Ok(None)` when the kernel has
/// no `openat2` (before Linux 5.6): the caller checks another way.
pub fn open_beneath(dir: &File, relative: &std::path::Path) -> io::Result<Option<File>> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(dir, relative, how) {
        Ok(fd) => Ok(Some(File::from(fd))),
        Err(nix::errno::Errno::ENOSYS) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
