//! Watching a TCP connection that a library owns: find its descriptor by
//! its two addresses, and ask the kernel, without waiting and without
//! sending anything, whether the other side has closed it.
//!
//! The store uses this for Redis connections, whose crate exposes no file
//! descriptor: a Redis restart closes every connection, and a command
//! written to one that the kernel already knows is closed would be lost
//! with an unknown outcome. Peeking costs one non-blocking `recv(2)`, not
//! a round trip.
//!
//! The descriptor is only a number here, never owned or closed: the caller
//! keeps it beside the connection that owns it and forgets both together.

use nix::errno::Errno;
use nix::sys::socket::{getpeername, getsockname, recv, MsgFlags, SockaddrStorage};
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// The descriptor of this process's TCP connection from `local` to `peer`,
/// if there is one. Reads `/proc/self/fd`: meant for the rare moment a
/// connection is made, not for every request.
pub fn find_tcp(local: SocketAddr, peer: SocketAddr) -> Option<RawFd> {
    let local = SockaddrStorage::from(local);
    let peer = SockaddrStorage::from(peer);
    std::fs::read_dir("/proc/self/fd")
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
        .find(|&fd| {
            getsockname::<SockaddrStorage>(fd).is_ok_and(|a| a == local)
                && getpeername::<SockaddrStorage>(fd).is_ok_and(|a| a == peer)
        })
}

/// Whether the connection on `fd` can no longer carry a request and its
/// answer: the peer closed it (end of file) or reset it, or bytes arrived
/// that nobody asked for (the connection is out of step). False while it
/// is open and quiet.
pub fn closed(fd: RawFd) -> bool {
    let mut byte = [0u8; 1];
    match recv(fd, &mut byte, MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT) {
        Err(Errno::EAGAIN | Errno::EINTR) => false,
        Ok(_) | Err(_) => true,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn finds_a_connection_and_sees_it_close() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let fd = find_tcp(client.local_addr().unwrap(), client.peer_addr().unwrap());
        assert_eq!(fd, Some(client.as_raw_fd()));
        assert!(!closed(client.as_raw_fd()), "open and quiet");
        server.write_all(b"x").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(closed(client.as_raw_fd()), "unexpected bytes");
        drop(server);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(closed(client.as_raw_fd()), "closed by the peer");
        let nobody: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(find_tcp(client.local_addr().unwrap(), nobody), None);
    }
}
