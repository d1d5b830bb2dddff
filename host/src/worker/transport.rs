//! A connection's byte stream: plain TCP, or TLS over it (`[tls]`), behind
//! one non-blocking `read` / `write` that [`conn`](super::conn) uses alike.
//!
//! TLS is rustls, sans-I/O: it never touches the socket itself, so no
//! thread ever waits on a handshake. Each `read` moves what the socket has
//! into rustls, lets it process the records, sends whatever it has to say
//! (handshake flights, tickets, alerts), and returns the plaintext; a
//! handshake simply makes `read` return `WouldBlock` until a request's
//! bytes arrive. Two rules keep the edge-triggered loop correct:
//!
//! - A `read` that returns less than asked means the *socket* was drained
//!   (it returned short, `WouldBlock` or EOF), exactly as for plain TCP:
//!   `conn` waits for the next edge only then. Record boundaries never end
//!   a read early.
//! - Output rustls could not send yet (the socket was full) goes out
//!   before anything else is read or written, and the socket's next
//!   writable edge brings the connection back to do it. A closing
//!   connection waits for it ([`Transport::end_output`]).
//!
//! Plain TCP costs one `Option` test per read or write and nothing else:
//! the same system calls, no allocation.

use rustls::{ServerConfig, ServerConnection};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;

/// The response to plain HTTP on the TLS port, so that a client that
/// forgot the `https://` learns why instead of seeing a reset.
const PLAIN_HTTP_ON_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Length: 44\r\nConnection: close\r\n\r\n\
This port speaks HTTPS: use an https:// URL\n";

#[derive(Debug)]
pub struct Transport {
    tcp: TcpStream,
    /// `Some` on the TLS port. Boxed: rustls's state is large, and plain
    /// connections should not carry its size.
    tls: Option<Box<ServerConnection>>,
}

impl Transport {
    pub fn plain(tcp: TcpStream) -> Transport {
        Transport { tcp, tls: None }
    }

    /// A connection that starts with a TLS handshake.
    pub fn tls(tcp: TcpStream, config: &Arc<ServerConfig>) -> io::Result<Transport> {
        let conn = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
        Ok(Transport {
            tcp,
            tls: Some(Box::new(conn)),
        })
    }

    /// Whether this is the TLS port: `req.scheme()` is `https`.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The socket underneath, for what is not a read or write of the
    /// stream: `peek`, `shutdown`, the descriptor.
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Reads plaintext; `Ok(0)` is the end of the stream. Fewer bytes than
    /// `buf` holds only if the socket was drained (see the module doc).
    #[inline]
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.tls {
            None => (&self.tcp).read(buf),
            Some(tls) => read_tls(tls, &self.tcp, buf),
        }
    }

    /// Writes plaintext; `WouldBlock` when the socket is full.
    #[inline]
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            None => (&self.tcp).write(buf),
            Some(tls) => write_tls(tls, &self.tcp, buf),
        }
    }

    /// The connection is about to close after its last response: for TLS,
    /// say so (`close_notify`, RFC 8446 §6.1) and send what is still
    /// buffered. `Ok(false)` while the socket is full: wait until writable.
    pub fn end_output(&mut self) -> io::Result<bool> {
        let Some(tls) = &mut self.tls else {
            return Ok(true);
        };
        if !tls.is_handshaking() {
            // Queued once: rustls ignores a second call.
            tls.send_close_notify();
        }
        push(tls, &self.tcp)
    }

    /// Whether output is waiting in rustls for room in the socket.
    pub fn has_pending_output(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.wants_write())
    }
}

impl AsFd for Transport {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.tcp.as_fd()
    }
}

impl AsRawFd for Transport {
    fn as_raw_fd(&self) -> RawFd {
        self.tcp.as_raw_fd()
    }
}

/// The socket as rustls reads it, noting whether a read came back short:
/// the socket was drained then, and what arrives later raises a new edge.
struct Socket<'a> {
    tcp: &'a TcpStream,
    drained: bool,
}

impl Read for Socket<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.tcp.read(buf)?;
        self.drained = n < buf.len();
        Ok(n)
    }
}

fn read_tls(tls: &mut ServerConnection, tcp: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    let mut drained = false;
    loop {
        // The plaintext rustls holds already (`buf[n..]` is never empty).
        loop {
            match tls.reader().read(&mut buf[n..]) {
                Ok(0) => return Ok(n), // close_notify: the end
                Ok(k) if n + k == buf.len() => return Ok(n + k),
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // EOF without close_notify: the end all the same (HTTP's
                // own framing tells a cut-off request).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(n),
                Err(e) => return Err(e),
            }
        }
        let would_block = || {
            if n > 0 {
                Ok(n)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            }
        };
        if drained {
            return would_block();
        }
        // During the handshake rustls reads nothing more until its own
        // output is out.
        if tls.wants_write() && !push(tls, tcp)? && !tls.wants_read() {
            return would_block();
        }
        let mut socket = Socket {
            tcp,
            drained: false,
        };
        match tls.read_tls(&mut socket) {
            Ok(0) => drained = true, // EOF: the reader reports it next
            Ok(_) => drained = socket.drained,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => drained = true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let handshaking = tls.is_handshaking();
        if let Err(e) = tls.process_new_packets() {
            let not_tls = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
            if handshaking && e == not_tls {
                // "GET / HTTP/1.1" where a ClientHello belongs.
                let _ = (&*tcp).write(PLAIN_HTTP_ON_TLS);
            } else {
                let _ = push(tls, tcp); // the alert rustls queued
            }
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        // The handshake's next flight, tickets, a key update's answer.
        if tls.wants_write() {
            push(tls, tcp)?;
        }
    }
}

fn write_tls(tls: &mut ServerConnection, tcp: &TcpStream, buf: &[u8]) -> io::Result<usize> {
    // What an earlier write left goes first: records stay in order and
    // rustls's buffer bounded.
    if tls.wants_write() && !push(tls, tcp)? {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    let n = tls.writer().write(buf)?;
    // One writev for all the records; a rest waits for the next write or
    // the socket's writable edge.
    push(tls, tcp)?;
    if n == 0 && !buf.is_empty() {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    Ok(n)
}

/// Sends what rustls has buffered; `Ok(true)` once all of it is out.
fn push(tls: &mut ServerConnection, mut tcp: &TcpStream) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(&mut tcp) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_plain_http_answer_declares_its_body_length() {
        let text = String::from_utf8_lossy(super::PLAIN_HTTP_ON_TLS);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
    }
}
