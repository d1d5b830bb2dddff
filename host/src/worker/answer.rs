//! The responses the host writes itself, without calling a plugin: a path
//! that is not UTF-8 (400), `OPTIONS *`, no route (the index page or 404),
//! a path parameter a plugin must not see (400), a known path with another
//! method (405), a failed plugin call (500), and the reserved pages
//! (`reserved`, built from [`simple`]).
//!
//! `dispatch` decides which one applies; this module only writes it. It
//! depends on nothing else of the worker, so both `dispatch` and
//! `reserved` can use it without depending on each other.

use crate::http::{self, WriteOpts};

/// What was answered, for the access log and the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub status: u16,
    pub body_bytes: usize,
    /// The connection ends with this response, whatever the request asked
    /// ([`timed_out`]).
    pub closes: bool,
}

impl Sent {
    pub fn new(status: u16, body_bytes: usize) -> Sent {
        Sent {
            status,
            body_bytes,
            closes: false,
        }
    }
}

/// 400: the method or the path is not UTF-8, so no route can match it.
pub fn bad_encoding(out: &mut Vec<u8>, opts: WriteOpts) -> Sent {
    simple(out, 400, b"", b"Bad Request: the path is not UTF-8\n", opts)
}

/// `OPTIONS *` (asterisk-form, which the parser allows only for OPTIONS,
/// RFC 9112 §3.2.4) asks about the server as a whole: 200 with the methods
/// some route takes (RFC 9110 §9.3.7), no body.
pub fn server_options(allow: &str, out: &mut Vec<u8>, opts: WriteOpts) -> Sent {
    http::write_head(out, 200, &allow_header(allow), 0, opts);
    Sent::new(200, 0)
}

/// No route for the path: the index page for `GET /` or `HEAD /` when
/// `[server] showIndex` is on (`index_page`), else 404.
pub fn not_found(
    index_page: Option<&[u8]>,
    method: &str,
    path: &str,
    out: &mut Vec<u8>,
    opts: WriteOpts,
) -> Sent {
    match index_page {
        Some(page) if path == "/" && matches!(method, "GET" | "HEAD") => {
            html(out, 200, b"", page, opts)
        }
        _ => simple(out, 404, b"", b"Not Found\n", opts),
    }
}

/// `drupe dev`: the 500 page the dev supervisor wrote about a failed
/// build or probe, if it exists (read per request: there is one worker,
/// and the page comes and goes with the builds).
pub fn dev_error_page(page: &std::path::Path, out: &mut Vec<u8>, opts: WriteOpts) -> Option<Sent> {
    let page = std::fs::read(page).ok()?;
    Some(html(out, 500, b"Cache-Control: no-store\r\n", &page, opts))
}

/// An HTML page the host made.
fn html(
    out: &mut Vec<u8>,
    status: u16,
    extra_headers: &[u8],
    page: &[u8],
    opts: WriteOpts,
) -> Sent {
    let mut headers = b"Content-Type: text/html; charset=utf-8\r\n".to_vec();
    headers.extend_from_slice(extra_headers);
    http::write_head(out, status, &headers, page.len(), opts);
    if !opts.head_request {
        out.extend_from_slice(page);
    }
    Sent::new(status, page.len())
}

/// 400: a path parameter would decode to something a plugin must never be
/// handed (`plugin::routes::Lookup::Refused`).
pub fn refused(out: &mut Vec<u8>, opts: WriteOpts) -> Sent {
    simple(
        out,
        400,
        b"",
        b"Bad Request: invalid path parameter\n",
        opts,
    )
}

/// 405 with the methods the path does take.
pub fn method_not_allowed(allow: &str, out: &mut Vec<u8>, opts: WriteOpts) -> Sent {
    simple(
        out,
        405,
        &allow_header(allow),
        b"Method Not Allowed\n",
        opts,
    )
}

/// 500: the plugin failed; the caller has logged why.
pub fn plugin_failed(out: &mut Vec<u8>, opts: WriteOpts) -> Sent {
    simple(out, 500, b"", b"Internal Server Error\n", opts)
}

/// 504: the handler ran past `requestTimeout` and its response, if it
/// ever comes, is discarded. The connection closes after it: its handler
/// thread is lost, and with it the connection's state.
pub fn timed_out(out: &mut Vec<u8>) -> Sent {
    let opts = WriteOpts {
        http_minor: 1,
        keep_alive: false,
        head_request: false,
    };
    let body = b"Gateway Timeout: the handler ran past requestTimeout\n";
    Sent {
        closes: true,
        ..simple(out, 504, b"", body, opts)
    }
}

/// A response the host makes itself, `text/plain`.
pub fn simple(
    out: &mut Vec<u8>,
    status: u16,
    extra_headers: &[u8],
    body: &[u8],
    opts: WriteOpts,
) -> Sent {
    let mut headers = Vec::with_capacity(extra_headers.len() + 48);
    headers.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
    headers.extend_from_slice(extra_headers);
    http::write_head(out, status, &headers, body.len(), opts);
    if http::body_allowed(status, opts.head_request) {
        out.extend_from_slice(body);
    }
    Sent::new(status, body.len())
}

/// The `Allow` header line for a list of methods.
fn allow_header(allow: &str) -> Vec<u8> {
    let mut header = Vec::with_capacity(allow.len() + 9);
    header.extend_from_slice(b"Allow: ");
    header.extend_from_slice(allow.as_bytes());
    header.extend_from_slice(b"\r\n");
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(head_request: bool) -> WriteOpts {
        WriteOpts {
            http_minor: 1,
            keep_alive: true,
            head_request,
        }
    }

    fn text(write: impl FnOnce(&mut Vec<u8>) -> Sent) -> (Sent, String) {
        let mut out = Vec::new();
        let sent = write(&mut out);
        (sent, String::from_utf8_lossy(&out).into_owned())
    }

    #[test]
    fn the_index_page_answers_only_get_and_head_of_the_root() {
        let page: &[u8] = b"<h1>index</h1>";
        let (sent, get) = text(|out| not_found(Some(page), "GET", "/", out, opts(false)));
        assert_eq!(sent.status, 200);
        assert!(
            get.contains("Content-Type: text/html; charset=utf-8\r\n"),
            "{get}"
        );
        assert!(get.ends_with("\r\n\r\n<h1>index</h1>"), "{get}");
        let (sent, head) = text(|out| not_found(Some(page), "HEAD", "/", out, opts(true)));
        assert_eq!((sent.status, sent.body_bytes), (200, page.len()));
        assert!(head.ends_with("\r\n\r\n"), "{head}");
        for (method, path, index) in [
            ("POST", "/", Some(page)),
            ("GET", "/x", Some(page)),
            ("GET", "/", None),
        ] {
            let (sent, _) = text(|out| not_found(index, method, path, out, opts(false)));
            assert_eq!(sent.status, 404, "{method} {path}");
        }
    }

    #[test]
    fn allow_lists_the_methods_for_405_and_options_star() {
        let (sent, text405) = text(|out| method_not_allowed("GET, HEAD", out, opts(false)));
        assert_eq!(sent.status, 405);
        assert!(text405.contains("\r\nAllow: GET, HEAD\r\n"), "{text405}");
        assert!(text405.ends_with("Method Not Allowed\n"), "{text405}");
        let (sent, star) = text(|out| server_options("GET, OPTIONS", out, opts(false)));
        assert_eq!(sent, Sent::new(200, 0));
        assert!(star.contains("\r\nAllow: GET, OPTIONS\r\n"), "{star}");
        assert!(!star.contains("Content-Type"), "{star}");
    }

    #[test]
    fn simple_answers_are_plain_text_without_a_body_for_head() {
        let (sent, get) = text(|out| bad_encoding(out, opts(false)));
        assert_eq!(sent.status, 400);
        assert!(
            get.contains("Content-Type: text/plain; charset=utf-8\r\n"),
            "{get}"
        );
        assert!(get.ends_with("not UTF-8\n"), "{get}");
        let (sent, head) = text(|out| plugin_failed(out, opts(true)));
        assert_eq!(sent.status, 500);
        assert!(head.ends_with("\r\n\r\n"), "{head}");
    }

    #[test]
    fn a_timed_out_request_gets_a_complete_504_that_closes() {
        let (sent, text) = text(timed_out);
        assert_eq!((sent.status, sent.closes), (504, true));
        assert!(
            text.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        assert!(
            text.contains(&format!("Content-Length: {}\r\n", body.len())),
            "{text}"
        );
    }
}
