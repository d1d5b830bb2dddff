//! `[tls] redirectPort`: a plain-HTTP listener that answers every request
//! `308 Permanent Redirect` to the same URL on `https://` — the Host
//! header's name, the HTTPS port, the request's path and query. 308 rather
//! than 301: the client repeats the same method and body (RFC 9110
//! §15.4.9).
//!
//! The master serves it from its poll loop, as it serves the status
//! listener and with the same connection type (`status::Conn`): it never
//! runs plugin code and builds each answer from the request head alone, so
//! workers need no second listener. It cannot stall the master: every
//! socket is non-blocking, a head is at most `status::MAX_REQUEST` bytes,
//! a connection gets `status::TIMEOUT` in all and one response, and at
//! most [`MAX_CONNECTIONS`] are open (more are closed at accept).

use super::status::{self, Front};
use super::MasterError;
use crate::config::Config;
use nix::poll::{PollFd, PollFlags};
use std::time::Instant;

/// Redirect connections open at once. Each costs the master a poll entry
/// and a few KiB; a browser opens a handful.
pub const MAX_CONNECTIONS: usize = 256;

#[derive(Debug)]
pub(super) struct RedirectServer {
    front: Front,
    /// `redirectPort` as bound: changing it needs a restart.
    bound: Option<u16>,
    /// The HTTPS port clients are sent to (`socketPort` as bound).
    https_port: u16,
}

impl RedirectServer {
    /// Binds `[tls] redirectPort` on `[server] socketHost`, if set.
    pub fn bind(config: &Config, https_port: u16) -> Result<RedirectServer, MasterError> {
        let bound = config.tls.redirect_port;
        let listener = match bound {
            None => None,
            Some(port) => {
                let host = &config.server.socket_host;
                let listener = super::listen::bind("[tls] redirectPort on", host, port, None)?;
                if let Ok(addr) = listener.local_addr() {
                    log::info!("redirecting http://{addr} to https:// on port {https_port}");
                }
                Some(listener)
            }
        };
        Ok(RedirectServer {
            front: Front::new(listener, MAX_CONNECTIONS, "redirect"),
            bound,
            https_port,
        })
    }

    /// Why a reload to `config` cannot apply its `redirectPort`, if it changed.
    pub fn needs_restart(&self, config: &Config) -> Option<String> {
        let shown = |port: Option<u16>| port.map_or("off".to_owned(), |p| p.to_string());
        let new = config.tls.redirect_port;
        (new != self.bound).then(|| {
            format!(
                "[tls] redirectPort ({} -> {})",
                shown(self.bound),
                shown(new)
            )
        })
    }

    /// Adds the sockets to watch (see [`Front::poll_fds`]).
    pub fn poll_fds<'a>(&'a self, fds: &mut Vec<PollFd<'a>>) {
        self.front.poll_fds(fds);
    }

    /// When the oldest connection times out.
    pub fn deadline(&self) -> Option<Instant> {
        self.front.deadline()
    }

    /// Serves the connections; `ready` holds the poll results of the
    /// sockets [`RedirectServer::poll_fds`] added, in that order.
    pub fn serve(&mut self, ready: &[PollFlags]) {
        let now = Instant::now();
        let mut done = Vec::new();
        for (index, conn) in self.front.conns.iter_mut().enumerate() {
            // ready[0] is the listener's; connections follow in order.
            let readable = ready.get(1 + index).is_some_and(|r| !r.is_empty());
            let mut open = now < conn.deadline;
            if open && conn.output.is_none() && readable {
                open = conn.read();
                conn.output = answer(&conn.input, self.https_port);
                open |= conn.output.is_some();
            }
            if open && conn.output.is_some() {
                open = conn.write();
            }
            if !open {
                done.push(index);
            }
        }
        self.front.settle(done, ready, now);
    }
}

/// The response to a request head, once it is complete.
fn answer(input: &[u8], https_port: u16) -> Option<Vec<u8>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    let refuse = |status: u16, why: &str| Some(response(status, None, why, false));
    match request.parse(input) {
        Ok(httparse::Status::Partial) if input.len() < status::MAX_REQUEST => None,
        Ok(httparse::Status::Partial) => refuse(431, "Request Header Fields Too Large\n"),
        Err(_) => refuse(400, "Bad Request\n"),
        Ok(httparse::Status::Complete(_)) => {
            let host = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("host"))
                .and_then(|h| std::str::from_utf8(h.value).ok());
            let target = request.path.unwrap_or("");
            let Some(location) = host.and_then(|host| location(host, target, https_port)) else {
                return refuse(400, "Bad Request: this port redirects to https:// and needs a Host header and a path\n");
            };
            let head = request.method == Some("HEAD");
            let body = format!("Moved to {location}\n");
            Some(response(308, Some(&location), &body, head))
        }
    }
}

/// `https://` + the Host header's name + the HTTPS port (unless 443) +
/// the target; `None` if the host is not a plain name or address, or the
/// target is not a path.
fn location(host: &str, target: &str, https_port: u16) -> Option<String> {
    // `name`, `name:port`, `[v6]` or `[v6]:port` (RFC 9110 §7.2).
    let name = if host.starts_with('[') {
        &host[..=host.find(']')?]
    } else {
        host.split(':').next()?
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_[]:".contains(c);
    if name.is_empty() || !name.chars().all(allowed) || !target.starts_with('/') {
        return None;
    }
    let port = match https_port {
        443 => String::new(),
        port => format!(":{port}"),
    };
    Some(format!("https://{name}{port}{target}"))
}

fn response(status: u16, location: Option<&str>, body: &str, head: bool) -> Vec<u8> {
    let reason = crate::http::reason_phrase(status);
    let location = location.map_or(String::new(), |l| format!("Location: {l}\r\n"));
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\n{location}Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn text(input: &str, port: u16) -> Option<String> {
        answer(input.as_bytes(), port).map(|r| String::from_utf8(r).unwrap())
    }

    #[test]
    fn sends_the_same_path_and_query_to_the_https_port() {
        let out = text(
            "GET /a/b?c=1 HTTP/1.1\r\nHost: example.org:8080\r\n\r\n",
            8443,
        )
        .unwrap();
        assert!(
            out.starts_with("HTTP/1.1 308 Permanent Redirect\r\n"),
            "{out}"
        );
        assert!(out.contains("\r\nLocation: https://example.org:8443/a/b?c=1\r\n"));
        assert!(out.contains("Connection: close\r\n"));
        let out = text("POST /form HTTP/1.1\r\nHost: example.org\r\n\r\n", 443).unwrap();
        assert!(
            out.contains("\r\nLocation: https://example.org/form\r\n"),
            "{out}"
        );
        let out = text("HEAD / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 443).unwrap();
        assert!(out.contains("\r\nLocation: https://[::1]/\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\n"), "HEAD has no body");
    }

    #[test]
    fn waits_for_the_whole_head_and_refuses_what_it_cannot_redirect() {
        assert_eq!(text("GET / HTTP/1.1\r\nHost: x\r\n", 443), None);
        for refused in [
            "GET / HTTP/1.0\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: @evil\r\n\r\n",
            "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
            "\x16\x03\x01 not http\r\n\r\n",
        ] {
            let out = text(refused, 443).unwrap();
            assert!(out.starts_with("HTTP/1.1 400 "), "{refused:?}: {out}");
        }
    }
}
