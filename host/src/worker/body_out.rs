//! A response body that follows its head from somewhere other than the
//! output buffer: a file, sent with `sendfile(2)`, or a plugin's reader,
//! sent through one bounded buffer per connection. Over TLS a file cannot
//! go from the page cache to the socket (it must be encrypted on the way):
//! it is read in record-sized pieces and written through the connection's
//! transport like any other output.
//!
//! The connection writes the head (in its output buffer) first, then
//! calls [`BodyOut::pump`] whenever the socket is writable: it moves as
//! much as the socket takes and reports [`Pumped::Blocked`] at the first
//! `EAGAIN`, so the thread goes on to other connections and the next
//! writable edge resumes it. A slow client therefore costs one open file
//! or one 64 KiB buffer, never a thread; the connection's send deadline
//! (`sendTimeout`, time without progress) applies as for any response.
//! Pumping stops only at `EAGAIN` or the end: with edge-triggered epoll,
//! stopping earlier would wait for an edge that never comes.
//!
//! A stream's `read` runs on the thread serving the connection. A reader
//! that blocks is handled like a handler that blocks: the pool's monitor
//! sees the thread asleep in the kernel and lets a standby lead (see
//! `pool`); only that connection waits.

use super::answer::Sent;
use super::transport::Transport;
use crate::http::{self, Framing, WriteOpts};
use crate::sys::bodies::{sendfile, PluginReader};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

/// Bytes of a stream read ahead per connection.
pub const STREAM_BUFFER: usize = 64 * 1024;
/// Room before the data for a chunk-size line (`ffff\r\n`, padded).
const CHUNK_HEAD: usize = 10;
/// Most bytes one `sendfile` call is asked for (the kernel caps a call
/// near 2 GiB anyway).
const SENDFILE_MAX: usize = 1 << 30;
/// A file's piece per write over TLS: one full TLS record (RFC 8446 §5.1).
const TLS_FILE_PIECE: usize = 16 * 1024;

/// What follows the head.
#[derive(Debug)]
pub enum BodyOut {
    /// Bytes `offset..end` of `file`.
    File {
        file: File,
        offset: u64,
        end: u64,
    },
    Stream(Stream),
}

/// A plugin's reader and the buffer it is read into.
#[derive(Debug)]
pub struct Stream {
    reader: PluginReader,
    /// `buf[pos..filled]` is ready to send (framing included).
    buf: Box<[u8]>,
    pos: usize,
    filled: usize,
    /// Bytes still owed with a `Content-Length`; `None`: chunked.
    remaining: Option<u64>,
    /// `true` once the last bytes (and, chunked, the last chunk) are in `buf`.
    finished: bool,
}

/// How far [`BodyOut::pump`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pumped {
    /// All of it is out.
    Done,
    /// The socket is full; `progressed`: bytes moved before it was.
    Blocked { progressed: bool },
}

impl Stream {
    /// A stream of `len` bytes if known, else chunked; with `len` 0 (or a
    /// HEAD) the caller sends no stream at all.
    pub fn new(reader: PluginReader, len: Option<u64>) -> Stream {
        Stream {
            reader,
            buf: vec![0; CHUNK_HEAD + STREAM_BUFFER + 2].into_boxed_slice(),
            pos: 0,
            filled: 0,
            remaining: len,
            finished: false,
        }
    }

    /// Reads the next piece into the (empty) buffer, framed.
    fn refill(&mut self) -> io::Result<()> {
        let (pos, filled) = match self.remaining {
            Some(remaining) => {
                let want = STREAM_BUFFER.min(usize::try_from(remaining).unwrap_or(usize::MAX));
                let n = read_some(&mut self.reader, &mut self.buf[..want])?;
                if n == 0 {
                    // Fewer bytes than the Content-Length promised: the
                    // client must not take a short body for a whole one.
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the plugin's stream ended {remaining} bytes short of its length"),
                    ));
                }
                self.remaining = Some(remaining - n as u64);
                self.finished = remaining == n as u64;
                (0, n)
            }
            None => {
                let data = CHUNK_HEAD..CHUNK_HEAD + STREAM_BUFFER;
                let n = read_some(&mut self.reader, &mut self.buf[data])?;
                if n == 0 {
                    self.finished = true;
                    let last = b"0\r\n\r\n";
                    self.buf[..last.len()].copy_from_slice(last);
                    (0, last.len())
                } else {
                    // RFC 9112 §7.1: hex size, CRLF, data, CRLF.
                    let size = format!("{n:x}\r\n");
                    let start = CHUNK_HEAD - size.len();
                    self.buf[start..CHUNK_HEAD].copy_from_slice(size.as_bytes());
                    self.buf[CHUNK_HEAD + n..CHUNK_HEAD + n + 2].copy_from_slice(b"\r\n");
                    (start, CHUNK_HEAD + n + 2)
                }
            }
        };
        self.pos = pos;
        self.filled = filled;
        Ok(())
    }
}

fn read_some(reader: &mut PluginReader, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

impl BodyOut {
    /// Sends what the socket takes. An error ends the connection.
    pub fn pump(&mut self, socket: &mut Transport) -> io::Result<Pumped> {
        let mut progressed = false;
        match self {
            BodyOut::File { file, offset, end } if socket.is_tls() => {
                let mut piece = [0u8; TLS_FILE_PIECE];
                while *offset < *end {
                    let want =
                        usize::try_from(*end - *offset).map_or(piece.len(), |n| n.min(piece.len()));
                    let n = match file.read_at(&mut piece[..want], *offset) {
                        Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    };
                    // What the write does not take is read again next time.
                    match socket.write(&piece[..n]) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(written) => {
                            *offset += written as u64;
                            progressed = true;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return Ok(Pumped::Blocked { progressed })
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(Pumped::Done)
            }
            BodyOut::File { file, offset, end } => {
                while *offset < *end {
                    let count = usize::try_from(*end - *offset).unwrap_or(SENDFILE_MAX);
                    match sendfile(socket.tcp(), file, offset, count.min(SENDFILE_MAX)) {
                        // The file shrank under us: what was promised
                        // cannot be sent.
                        Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                        Ok(_) => progressed = true,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return Ok(Pumped::Blocked { progressed })
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(Pumped::Done)
            }
            BodyOut::Stream(stream) => loop {
                if stream.pos == stream.filled {
                    if stream.finished {
                        return Ok(Pumped::Done);
                    }
                    stream.refill()?;
                    continue;
                }
                match socket.write(&stream.buf[stream.pos..stream.filled]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        stream.pos += n;
                        progressed = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok(Pumped::Blocked { progressed })
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            },
        }
    }
}

/// The head of a streamed response into `out`, and the stream into
/// `tail`: with `Content-Length` when the plugin gave a length, chunked to
/// an HTTP/1.1 client otherwise, and delimited by closing the connection
/// for an HTTP/1.0 one (which knows no chunks).
pub fn start_stream(
    reader: PluginReader,
    len: Option<u64>,
    status: u16,
    headers: &[u8],
    mut opts: WriteOpts,
    out: &mut Vec<u8>,
    tail: &mut Option<BodyOut>,
) -> Sent {
    let has_body = http::body_allowed(status, false);
    let framing = match len {
        Some(n) => Framing::Length(n),
        None if !has_body => Framing::Length(0),
        None if opts.http_minor >= 1 => Framing::Chunked,
        None => {
            opts.keep_alive = false;
            Framing::Close
        }
    };
    http::write_head_framed(out, status, headers, framing, opts);
    if has_body && !opts.head_request && len != Some(0) {
        *tail = Some(BodyOut::Stream(Stream::new(reader, len)));
    }
    Sent {
        closes: framing == Framing::Close,
        ..Sent::new(
            status,
            len.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX)),
        )
    }
}
