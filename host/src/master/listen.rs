//! The sockets the master binds, once, before it forks: the public
//! listener that every worker inherits (`[server]`) and the status
//! listener it serves itself (`[status]`).

use super::MasterError;
use nix::sys::socket::Backlog;
use std::io::ErrorKind;
use std::net::{TcpListener, ToSocketAddrs};

/// Binds `host:port` non-blocking, with a listen queue of `backlog` if
/// given (std's bind picks its own). `section` names the INI section of
/// the setting in errors, which say what to change.
pub(super) fn bind(
    section: &str,
    host: &str,
    port: u16,
    backlog: Option<u32>,
) -> Result<TcpListener, MasterError> {
    let shown = format!("{host}:{port}");
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| MasterError::Bind(format!("{section} socketHost {shown}: {e}")))?
        .collect();
    let listener = TcpListener::bind(&addrs[..]).map_err(|e| {
        let hint = match e.kind() {
            ErrorKind::AddrInUse => {
                format!("; another server is using it: stop it or set {section} socketPort")
            }
            ErrorKind::PermissionDenied => {
                "; ports below 1024 need root (or CAP_NET_BIND_SERVICE)".to_owned()
            }
            _ => String::new(),
        };
        MasterError::Bind(format!("cannot listen on {shown}: {e}{hint}"))
    })?;
    if let Some(backlog) = backlog {
        let backlog = Backlog::new(backlog.min(i32::MAX as u32) as i32).unwrap_or(Backlog::MAXCONN);
        nix::sys::socket::listen(&listener, backlog)
            .map_err(|e| MasterError::Bind(format!("listen on {shown}: {e}")))?;
    }
    listener
        .set_nonblocking(true)
        .map_err(|e| MasterError::Bind(e.to_string()))?;
    // Accepted sockets inherit TCP_NODELAY from the listener (Linux), so
    // no connection needs a setsockopt(2) of its own: a response goes out
    // at once, not after the client's delayed ACK.
    nix::sys::socket::setsockopt(&listener, nix::sys::socket::sockopt::TcpNoDelay, &true)
        .map_err(|e| MasterError::Bind(format!("TCP_NODELAY on {shown}: {e}")))?;
    Ok(listener)
}

/// The master's part that is its public socket: bound once, inherited by
/// every worker, and announced once the first workers serve.
#[derive(Debug)]
pub(super) struct Listener {
    /// `None` once the host stops: see [`Listener::close`].
    pub socket: Option<TcpListener>,
    pub address: std::net::SocketAddr,
    /// `[server]` as the socket was bound: what a reload cannot change.
    pub bound: crate::config::Server,
    /// The "listening" line was logged (once every first worker is ready).
    pub announced: bool,
}

impl Listener {
    /// Binds `[server]`.
    pub fn bind(server: &crate::config::Server) -> Result<Listener, MasterError> {
        let socket = bind(
            "[server]",
            &server.socket_host,
            server.socket_port,
            Some(server.socket_queue_size),
        )?;
        let address = socket
            .local_addr()
            .map_err(|e| MasterError::Io(e.to_string()))?;
        Ok(Listener {
            socket: Some(socket),
            address,
            bound: server.clone(),
            announced: false,
        })
    }

    /// The whole host stops: the master gives up its copy of the socket
    /// (it forks no worker from now on), so that the socket closes — and
    /// new connections are refused rather than left waiting — as soon as
    /// every worker has taken what was queued and closed its own copy.
    /// Workers that stop for a reload, `maxRequests` or `requestTimeout`
    /// close only their own copy: this one keeps the socket open for the
    /// others.
    pub fn close(&mut self) {
        if self.socket.take().is_some() {
            log::debug!("master closed its copy of the listening socket");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use nix::sys::socket::{getsockopt, sockopt::TcpNoDelay};

    #[test]
    fn accepted_connections_inherit_tcp_nodelay_from_the_listener() {
        // Workers no longer set it per connection; were the kernel to stop
        // copying it, every response would wait for a delayed ACK.
        let listener = bind("[server]", "127.0.0.1", 0, None).unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        listener.set_nonblocking(false).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(getsockopt(&accepted, TcpNoDelay).unwrap());
    }
}
