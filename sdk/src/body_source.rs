//! Response bodies that are not bytes in memory: a file the host sends
//! with `sendfile(2)`, or a reader the host drains as the client reads.
//!
//! [`Response`](crate::Response) keeps one of these next to its (then
//! empty) byte body. A reader is shared behind an `Arc` so that a
//! `Response` stays `Clone` and `PartialEq`; it is taken out exactly once,
//! when the response is handed to the host (or read in a test).

use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Where the body of a response comes from, when not from memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// The host opens, stats and sends this file.
    File(PathBuf),
    /// The host reads this as the client takes it.
    Stream(Stream),
}

/// A reader, taken out once; with its length if known.
#[derive(Clone)]
pub(crate) struct Stream {
    reader: Arc<Mutex<Option<Box<dyn Read + Send>>>>,
    /// `Some(n)`: sent with `Content-Length: n`; `None`: chunked.
    pub(crate) len: Option<u64>,
}

impl Stream {
    pub(crate) fn new(reader: impl Read + Send + 'static, len: Option<u64>) -> Stream {
        Stream {
            reader: Arc::new(Mutex::new(Some(Box::new(reader)))),
            len,
        }
    }

    /// The reader, unless a clone of this response took it already.
    pub(crate) fn take(&self) -> Option<Box<dyn Read + Send>> {
        self.reader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Two responses stream the same body only if they share its reader.
impl PartialEq for Stream {
    fn eq(&self, other: &Stream) -> bool {
        Arc::ptr_eq(&self.reader, &other.reader) && self.len == other.len
    }
}

impl Eq for Stream {}
