//! Pages the host answers itself, under the reserved prefix `/_drupe/`,
//! before any plugin route is looked up: a plugin can neither be mounted
//! there (the config refuses it) nor shadow these pages with a route.
//!
//! `GET /_drupe/health` is what a load balancer asks to decide whether to
//! send this host traffic: `200 ok` while the host serves, `503 draining`
//! once the master is stopping it. With `[server] drainPeriod` the host
//! keeps serving for that long after TERM while this fails, so HAProxy
//! (`option httpchk`) takes it out of rotation before it stops accepting,
//! and no client sees an error. The master says "stopping" through the
//! scoreboard, which every worker shares (`worker::link`).

use super::answer::{simple, Sent};
use crate::http::WriteOpts;

/// The prefix, without its trailing slash (`/_drupe` itself is reserved too).
pub const PREFIX: &str = "/_drupe";

/// The health check's path.
pub const HEALTH: &str = "/_drupe/health";

/// Whether `path` belongs to the host rather than to a plugin.
pub fn claims(path: &str) -> bool {
    path.strip_prefix(PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Answers a request for a reserved path; `draining` is whether the host
/// is stopping.
pub fn answer(
    method: &str,
    path: &str,
    draining: bool,
    out: &mut Vec<u8>,
    opts: WriteOpts,
) -> Sent {
    // A health check must never be answered from a cache.
    const NO_STORE: &[u8] = b"Cache-Control: no-store\r\n";
    if path != HEALTH {
        return simple(out, 404, b"", b"Not Found\n", opts);
    }
    if method != "GET" && method != "HEAD" {
        return simple(
            out,
            405,
            b"Allow: GET, HEAD\r\n",
            b"Method Not Allowed\n",
            opts,
        );
    }
    if draining {
        simple(out, 503, NO_STORE, b"draining", opts)
    } else {
        simple(out, 200, NO_STORE, b"ok", opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_claimed_whole_segments_only() {
        for path in ["/_drupe", "/_drupe/", "/_drupe/health", "/_drupe/x/y"] {
            assert!(claims(path), "{path}");
        }
        for path in ["/", "/_drupeX", "/_drup", "/hello/_drupe/health"] {
            assert!(!claims(path), "{path}");
        }
    }

    fn text(method: &str, path: &str, draining: bool) -> String {
        let mut out = Vec::new();
        let opts = WriteOpts {
            http_minor: 1,
            keep_alive: true,
            head_request: method == "HEAD",
        };
        answer(method, path, draining, &mut out, opts);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn health_is_ok_until_draining() {
        let ok = text("GET", HEALTH, false);
        assert!(ok.starts_with("HTTP/1.1 200 "), "{ok}");
        assert!(ok.contains("Cache-Control: no-store\r\n") && ok.ends_with("\r\n\r\nok"));
        let draining = text("GET", HEALTH, true);
        assert!(draining.starts_with("HTTP/1.1 503 "), "{draining}");
        assert!(draining.ends_with("\r\n\r\ndraining"), "{draining}");
        let head = text("HEAD", HEALTH, false);
        assert!(head.starts_with("HTTP/1.1 200 ") && head.ends_with("\r\n\r\n"));
    }

    #[test]
    fn other_reserved_paths_and_methods() {
        assert!(text("GET", "/_drupe/status", false).starts_with("HTTP/1.1 404 "));
        let post = text("POST", HEALTH, false);
        assert!(post.starts_with("HTTP/1.1 405 ") && post.contains("Allow: GET, HEAD\r\n"));
    }
}
