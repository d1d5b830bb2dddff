//! Accepting connections with one system call, and aborting one.

use nix::sys::socket::{SockaddrLike, SockaddrStorage};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};

/// Accepts one connection, already non-blocking and close-on-exec:
/// `accept4` saves the two `fcntl` calls `set_nonblocking` would cost per
/// connection, which shows when every request opens a connection.
pub fn accept_nonblocking(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let mut storage: nix::libc::sockaddr_storage = unsafe_zeroed_storage();
    let mut len = std::mem::size_of::<nix::libc::sockaddr_storage>() as nix::libc::socklen_t;
    // SAFETY: `storage` and `len` are valid for writes and `len` holds the
    // buffer's size, as accept4(2) requires.
    let fd = unsafe {
        nix::libc::accept4(
            listener.as_raw_fd(),
            (&mut storage as *mut nix::libc::sockaddr_storage).cast(),
            &mut len,
            nix::libc::SOCK_NONBLOCK | nix::libc::SOCK_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    // SAFETY: the kernel filled `len` bytes of `storage` with an address.
    let address = unsafe {
        SockaddrStorage::from_raw(
            (&storage as *const nix::libc::sockaddr_storage).cast(),
            Some(len),
        )
    };
    let peer = address
        .and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| SocketAddr::from((v4.ip(), v4.port())))
                .or_else(|| {
                    a.as_sockaddr_in6()
                        .map(|v6| SocketAddr::from((v6.ip(), v6.port())))
                })
        })
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    Ok((stream, peer))
}

fn unsafe_zeroed_storage() -> nix::libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain data for which all-zero bytes is a
    // valid value.
    unsafe { std::mem::zeroed() }
}

/// Closes this process's descriptor of a listening socket that other
/// threads may still use: the descriptor number is pointed at a
/// placeholder (an unconnected Unix socket) in one `dup3`, which closes
/// the listening socket's file here at the same instant. A late `accept`
/// or `epoll_ctl` on `listener` then fails cleanly, where after a plain
/// `close` it could reach whatever connection reused the number. The
/// socket itself closes — new connections are refused — once every
/// process that shares it has done this (or exited). The placeholder is
/// closed with `listener`.
pub fn close_listener(listener: &TcpListener) -> io::Result<()> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let placeholder = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: dup3 only works on descriptor numbers: `listener`'s number
    // stays open and owned by `listener` (now naming the placeholder), and
    // `placeholder` keeps its own, closed when it drops below.
    let done = unsafe {
        nix::libc::dup3(
            placeholder.as_raw_fd(),
            listener.as_raw_fd(),
            nix::libc::O_CLOEXEC,
        )
    };
    if done < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes closing `stream` abort the connection with a reset, dropping what
/// the kernel still holds to send, instead of sending it on after the
/// close (nginx's `reset_timedout_connection`): for a client that stopped
/// reading, whose send buffer may hold megabytes.
pub fn reset_on_close(stream: &TcpStream) -> io::Result<()> {
    let abort = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    nix::sys::socket::setsockopt(stream, nix::sys::socket::sockopt::Linger, &abort)
        .map_err(io::Error::from)
}
