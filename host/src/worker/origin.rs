//! Who a connection, and each of its requests, comes from: the client
//! address plugins (`req.remote_addr()`) and the access log see, and the
//! scheme (`req.scheme()`, the session cookie's `Secure`).
//!
//! Per connection ([`Origin`]): the socket's peer, replaced by the source
//! a PROXY protocol header names when `[server] proxyProtocol` is on
//! (`http::proxy`); that address then holds for every request of the
//! connection, keep-alive included. `secure` is the scheme requests start
//! from: false on plain TCP; the TLS transport sets it.
//!
//! Per request ([`Client::of`]): when the socket's peer — the machine that
//! actually connected, never an address from a header — is in `[server]
//! trustedProxies`, its forwarding headers (`http::forwarded`) may replace
//! the address and the scheme for that request only. The trust is decided
//! once, at accept, so with `trustedProxies` empty (the default) or an
//! untrusted peer a request costs one branch. With `proxyProtocol` on,
//! the socket's peer is the balancer: list it in `trustedProxies` only if
//! it sets or overwrites the forwarding headers, since otherwise it passes
//! on whatever its clients wrote.

use crate::config::TrustedProxies;
use crate::http::{forwarded, proxy, Head};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Connections this worker closed for want of a valid PROXY header.
static REFUSED: AtomicU64 = AtomicU64::new(0);

/// What the connection itself says about its client.
#[derive(Debug)]
pub struct Origin {
    /// The socket's peer: who connected.
    pub socket: SocketAddr,
    /// The peer is in `trustedProxies`: its forwarding headers count.
    pub trusted: bool,
    /// Requests arrive over TLS (set by the transport): they start as
    /// `https`.
    pub secure: bool,
    /// `proxyProtocol`: the header must still come before any HTTP.
    pub awaiting_proxy: bool,
}

impl Origin {
    pub fn new(socket: SocketAddr, proxy_protocol: bool, trusted: &TrustedProxies) -> Origin {
        Origin {
            socket,
            trusted: !trusted.is_empty() && trusted.contains(socket.ip()),
            secure: false,
            awaiting_proxy: proxy_protocol,
        }
    }

    /// Takes the PROXY header from the start of `buf`: `Ok(Some(length))`
    /// once it is all there, after putting the client it names (if any) in
    /// `peer`; `Ok(None)` to read more (the header deadline runs).
    /// `Err`: the connection must be closed, unanswered (logged and
    /// counted here).
    pub fn take_proxy_header(
        &mut self,
        buf: &[u8],
        peer: &mut String,
    ) -> Result<Option<usize>, proxy::ProxyError> {
        match proxy::parse(buf) {
            Ok(Some(header)) => {
                self.awaiting_proxy = false;
                if let Some(source) = header.source {
                    *peer = source.to_string();
                }
                Ok(Some(header.len))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                let n = REFUSED.fetch_add(1, Ordering::Relaxed) + 1;
                // A stray client or a scanner, most likely: the details at
                // debug, and at info often enough to be noticed (1st,
                // 10th, 100th, ...) without one line per connection.
                let line = format!(
                    "{}: closed without an answer: {e} (proxyProtocol is on; {n} such \
                     connection(s) in worker {})",
                    self.socket,
                    std::process::id()
                );
                if is_power_of_ten(n) {
                    log::info!("{line}");
                } else {
                    log::debug!("{line}");
                }
                Err(e)
            }
        }
    }
}

fn is_power_of_ten(mut n: u64) -> bool {
    while n >= 10 && n.is_multiple_of(10) {
        n /= 10;
    }
    n == 1
}

/// The client of one request.
#[derive(Debug)]
pub struct Client<'a> {
    /// `ip:port` (port 0 when a header named no port).
    pub addr: Cow<'a, str>,
    pub secure: bool,
}

impl<'a> Client<'a> {
    /// The connection's client (`peer`), unless a trusted peer's forwarding
    /// headers on this request say otherwise.
    #[inline]
    pub fn of(
        origin: &Origin,
        peer: &'a str,
        trusted: &TrustedProxies,
        head: &Head,
        buf: &[u8],
    ) -> Client<'a> {
        let mut client = Client {
            addr: Cow::Borrowed(peer),
            secure: origin.secure,
        };
        if origin.trusted {
            let said = forwarded::resolve(head.headers(buf), |ip| trusted.contains(ip));
            if let Some(addr) = said.client {
                client.addr = Cow::Owned(addr.to_string());
            }
            if let Some(secure) = said.secure {
                client.secure = secure;
            }
        }
        client
    }

    pub fn scheme(&self) -> &'static str {
        if self.secure {
            "https"
        } else {
            "http"
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::http::HeadLimits;

    fn origin(socket: &str, trusted: &TrustedProxies) -> Origin {
        Origin::new(socket.parse().unwrap(), true, trusted)
    }

    #[test]
    fn a_proxy_header_replaces_the_peer_once_and_unknown_keeps_it() {
        let none = TrustedProxies::default();
        let mut o = origin("127.0.0.1:4000", &none);
        let mut peer = "127.0.0.1:4000".to_owned();
        let raw = b"PROXY TCP4 127.0.0.5 127.0.0.1 5000 80\r\nGET";
        assert_eq!(o.take_proxy_header(&raw[..10], &mut peer), Ok(None));
        assert!(o.awaiting_proxy);
        assert_eq!(o.take_proxy_header(raw, &mut peer), Ok(Some(raw.len() - 3)));
        assert_eq!((peer.as_str(), o.awaiting_proxy), ("127.0.0.5:5000", false));
        let mut o = origin("127.0.0.1:4000", &none);
        let mut peer = "127.0.0.1:4000".to_owned();
        assert_eq!(
            o.take_proxy_header(b"PROXY UNKNOWN\r\n", &mut peer),
            Ok(Some(15))
        );
        assert_eq!(peer, "127.0.0.1:4000");
        assert!(o
            .take_proxy_header(b"GET / HTTP/1.1\r\n", &mut peer)
            .is_err());
    }

    #[test]
    fn forwarding_headers_count_only_from_a_trusted_socket_peer() {
        let trusted = TrustedProxies::parse("127.0.0.1").unwrap();
        let raw = b"GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 6.6.6.6, 198.51.100.2\r\nX-Forwarded-Proto: https\r\n\r\n";
        let mut head = Head::new();
        head.parse(raw, &HeadLimits::default()).unwrap().unwrap();
        let from = |socket: &str, peer: &'static str| {
            let o = origin(socket, &trusted);
            let c = Client::of(&o, peer, &trusted, &head, raw);
            (c.addr.to_string(), c.scheme())
        };
        assert_eq!(
            from("127.0.0.1:1", "127.0.0.1:1"),
            ("198.51.100.2:0".to_owned(), "https")
        );
        // Trust follows the socket, not the address a PROXY header gave.
        assert_eq!(
            from("127.0.0.1:1", "127.0.0.9:1"),
            ("198.51.100.2:0".to_owned(), "https")
        );
        assert_eq!(
            from("127.0.0.2:1", "127.0.0.1:1"),
            ("127.0.0.1:1".to_owned(), "http")
        );
        let nobody = TrustedProxies::default();
        let o = Origin::new("127.0.0.1:1".parse().unwrap(), false, &nobody);
        assert!(!o.trusted && !o.awaiting_proxy);
    }

    #[test]
    fn info_lines_at_powers_of_ten() {
        let logged: Vec<u64> = (1..=1000).filter(|&n| is_power_of_ten(n)).collect();
        assert_eq!(logged, [1, 10, 100, 1000]);
    }
}
