//! Handing a file or a stream body to the host (ABI 1.4), and what an
//! older host gets instead.
//!
//! A file crosses as its path: the host opens it. A stream crosses as an
//! [`abi::StreamBody`]: the boxed reader behind an opaque pointer, with
//! `read` and `drop` shims that catch every panic (a panicking reader
//! reads as an error, and the host ends the response). A host without
//! these functions (older than 1.4, a `HostApi` too short) gets the whole
//! body appended instead: the file read here (404 if missing, 403 if
//! unreadable), the stream read to its end. The plugin works the same,
//! only without the memory savings, ranges or validators.

use std::ffi::c_void;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use crate::abi::{self, Bytes, Call, Outcome, StreamBody};
use crate::body_source::{Source, Stream};

use super::Runtime;

/// What the host was given, for the caller to finish the response with.
pub(super) enum Handed {
    /// The host took the body (or nothing was to be taken).
    Done(Outcome),
    /// The host cannot take it; send this status and body instead.
    Fallback(u16, Vec<u8>),
}

/// Hands `source` to the host.
///
/// # Safety
/// `call` must be the host's state for the current `handle` call.
pub(super) unsafe fn hand_over(runtime: &Runtime, call: *mut Call, source: &Source) -> Handed {
    let host = &runtime.host;
    match source {
        Source::File(path) => match host.respond_file {
            // SAFETY: from the checked table; `call` is this call's (caller);
            // the path bytes outlive the callback.
            Some(f) => Handed::Done(unsafe { f(call, Bytes::new(path.as_os_str().as_bytes())) }),
            None => read_file(runtime, path),
        },
        Source::Stream(stream) => match host.respond_stream {
            Some(f) => {
                let Some(reader) = stream.take() else {
                    return Handed::Fallback(200, Vec::new());
                };
                let len = stream
                    .len
                    .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
                // SAFETY: as above; the host owns the reader from here on
                // and calls `drop_reader` once.
                Handed::Done(unsafe { f(call, into_raw(reader), len) })
            }
            None => read_stream(runtime, stream),
        },
    }
}

/// The file into memory, for a host without `respond_file`.
fn read_file(runtime: &Runtime, path: &Path) -> Handed {
    match std::fs::read(path) {
        Ok(body) => Handed::Fallback(200, body),
        Err(e) => {
            let status = match e.kind() {
                std::io::ErrorKind::PermissionDenied => 403,
                _ => 404,
            };
            runtime.log(
                abi::LOG_DEBUG,
                &format!("Response::file {}: {e}", path.display()),
            );
            Handed::Fallback(status, crate::reason_phrase(status).as_bytes().to_vec())
        }
    }
}

/// The stream into memory, for a host without `respond_stream`.
fn read_stream(runtime: &Runtime, stream: &Stream) -> Handed {
    let mut body = Vec::new();
    if let Some(mut reader) = stream.take() {
        if let Err(e) = reader.read_to_end(&mut body) {
            runtime.log(abi::LOG_ERROR, &format!("Response::stream: {e}"));
            return Handed::Fallback(500, b"Internal Server Error".to_vec());
        }
    }
    Handed::Fallback(200, body)
}

type Boxed = Box<dyn Read + Send>;

/// The reader as the ABI carries it: a thin pointer to the fat box.
fn into_raw(reader: Boxed) -> StreamBody {
    StreamBody {
        size: std::mem::size_of::<StreamBody>(),
        state: Box::into_raw(Box::new(reader)).cast::<c_void>(),
        read: read_reader,
        drop: drop_reader,
    }
}

/// [`abi::StreamBody::read`].
///
/// # Safety
/// `state` must come from [`into_raw`] and not be dropped yet; `buf` must
/// be valid for `len` bytes of writing, on one thread at a time.
unsafe extern "C" fn read_reader(state: *mut c_void, buf: *mut u8, len: usize) -> isize {
    if state.is_null() || (buf.is_null() && len > 0) {
        return -1;
    }
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the contract: a live `Boxed` from `into_raw`, and `len`
        // writable bytes at `buf` (null only when `len` is 0).
        let (reader, buf) = unsafe {
            (
                &mut *state.cast::<Boxed>(),
                if len == 0 {
                    &mut [][..]
                } else {
                    std::slice::from_raw_parts_mut(buf, len)
                },
            )
        };
        loop {
            match reader.read(buf) {
                Ok(n) => return isize::try_from(n).unwrap_or(-1),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::error!("Response::stream: reading the body: {e}");
                    return -1;
                }
            }
        }
    }));
    result.unwrap_or_else(|_| {
        log::error!("Response::stream: the reader panicked");
        -1
    })
}

/// [`abi::StreamBody::drop`].
///
/// # Safety
/// `state` must come from [`into_raw`]; called once.
unsafe extern "C" fn drop_reader(state: *mut c_void) {
    if state.is_null() {
        return;
    }
    // SAFETY: the contract: the box `into_raw` leaked, freed once.
    let reader = unsafe { Box::from_raw(state.cast::<Boxed>()) };
    // A panicking `Drop` of the reader must not unwind into the host.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(reader)));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    struct Panics;
    impl Read for Panics {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            panic!("reader panics")
        }
    }

    #[test]
    fn the_reader_shims_read_drop_and_catch_panics() {
        let raw = into_raw(Box::new(std::io::Cursor::new(b"abc".to_vec())));
        let mut buf = [0u8; 8];
        // SAFETY: a live reader from `into_raw` and a buffer of 8 bytes.
        let n = unsafe { (raw.read)(raw.state, buf.as_mut_ptr(), buf.len()) };
        assert_eq!(&buf[..n as usize], b"abc");
        // SAFETY: as above.
        assert_eq!(unsafe { (raw.read)(raw.state, buf.as_mut_ptr(), 8) }, 0);
        // SAFETY: dropped once.
        unsafe { (raw.drop)(raw.state) };

        let raw = into_raw(Box::new(Panics));
        // SAFETY: as above.
        assert_eq!(unsafe { (raw.read)(raw.state, buf.as_mut_ptr(), 8) }, -1);
        // SAFETY: dropped once.
        unsafe { (raw.drop)(raw.state) };
    }
}
