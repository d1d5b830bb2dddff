//! The request-target: its forms, its alphabet, and dot-segment removal.
//!
//! [`split`] tells the three forms a server must accept apart (RFC 9112
//! §3.2: origin-form, absolute-form, and asterisk-form for a server-wide
//! `OPTIONS`), checks each part against the RFC 3986 alphabet, and returns
//! byte ranges so [`super::Head`] keeps borrowing the read buffer.
//!
//! [`remove_dot_segments`] resolves `.` and `..` segments (RFC 3986
//! §5.2.4) before routing, counting `%2e` as a dot (§6.2.2.2: percent-encoded
//! unreserved characters are equivalent to the characters). Where RFC 3986
//! clamps `/..` to `/`, we refuse the request instead: a client that climbs
//! above the root is probing for a traversal bug, and answering a different
//! path than the one asked for helps no honest client. So no path a plugin
//! sees, and no `{*rest}` it is handed, ever holds a dot-segment.

use std::ops::Range;

use super::{eq_ignore_case, HttpError};

/// Where the parts of a request-target are, relative to the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Parts {
    /// The authority of an absolute-form target.
    pub authority: Option<Range<usize>>,
    /// Absolute path; empty for an absolute-form target without one (`/`).
    pub path: Range<usize>,
    /// After `?`, without it.
    pub query: Range<usize>,
}

const BAD_TARGET: HttpError = HttpError::bad("invalid request target");

/// Split `target` by its form (RFC 9112 §3.2) and check its characters.
pub(super) fn split(target: &[u8], method: &[u8]) -> Result<Parts, HttpError> {
    let (authority, rest_start) = if target.first() == Some(&b'/') {
        // origin-form = absolute-path [ "?" query ] (§3.2.1)
        (None, 0)
    } else if target == b"*" {
        // asterisk-form is only for a server-wide OPTIONS (§3.2.4).
        if method != b"OPTIONS" {
            return Err(HttpError::bad("asterisk-form target is only for OPTIONS"));
        }
        return Ok(Parts {
            authority: None,
            path: 0..1,
            query: 1..1,
        });
    } else if let Some(scheme_len) = scheme_len(target) {
        // absolute-form (§3.2.2): the authority names the host, and the
        // Host field is ignored for routing (but still required).
        let after = &target[scheme_len..];
        let end = after
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .unwrap_or(after.len());
        if end == 0 || !valid_host(&after[..end]) {
            return Err(BAD_TARGET);
        }
        (Some(scheme_len..scheme_len + end), scheme_len + end)
    } else {
        // authority-form (CONNECT) and anything else: we are no proxy.
        return Err(BAD_TARGET);
    };
    let rest = &target[rest_start..];
    let path_len = rest.iter().position(|&b| b == b'?').unwrap_or(rest.len());
    let (path, query) = (&rest[..path_len], rest.get(path_len + 1..).unwrap_or(&[]));
    if !valid_path(path) || !valid_query(query) {
        return Err(BAD_TARGET);
    }
    let query_start = (rest_start + path_len + 1).min(target.len());
    Ok(Parts {
        authority,
        path: rest_start..rest_start + path_len,
        query: query_start..target.len(),
    })
}

/// Length of a leading `http://` or `https://` (case-insensitive).
fn scheme_len(target: &[u8]) -> Option<usize> {
    ["http://".as_bytes(), b"https://"]
        .into_iter()
        .find(|scheme| {
            target
                .get(..scheme.len())
                .is_some_and(|p| eq_ignore_case(p, scheme))
        })
        .map(<[u8]>::len)
}

/// unreserved / sub-delims (RFC 3986 §2.2, §2.3).
fn is_unreserved_or_sub_delim(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

/// Every `%` starts a `pct-encoded` triplet (RFC 3986 §2.1) and every other
/// byte satisfies `allowed`.
fn all_pct_or(s: &[u8], allowed: impl Fn(u8) -> bool) -> bool {
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b == b'%' {
            match s.get(i + 1..i + 3) {
                Some([h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => i += 3,
                _ => return false,
            }
        } else if allowed(b) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// `absolute-path = 1*( "/" segment )` of pchars (RFC 9112 §3.2, RFC 3986
/// §3.3). Strict: this is what gets routed, so nothing the RFC does not
/// allow — no raw non-ASCII, `\`, `"`, `{`, or broken `%` escapes — reaches
/// the router.
fn valid_path(path: &[u8]) -> bool {
    all_pct_or(path, |b| {
        is_unreserved_or_sub_delim(b) || matches!(b, b':' | b'@' | b'/')
    })
}

/// The query is handed to plugins undecoded, so we are lenient about the
/// characters clients send unencoded in practice (`{`, `|`, `"`, …; httparse
/// has already refused controls and spaces) but refuse non-ASCII bytes,
/// which RFC 3986 never allows raw and which plugins would see as
/// non-UTF-8.
fn valid_query(query: &[u8]) -> bool {
    query.is_ascii()
}

/// `uri-host [ ":" port ]` (RFC 9112 §3.2, RFC 3986 §3.2.2–3.2.3): an
/// IP-literal in brackets or a reg-name, then an optional decimal port; no
/// userinfo. An empty Host is allowed (a target without authority sends one).
pub(super) fn valid_host(h: &[u8]) -> bool {
    let (host, port) = if let Some(inner) = h.strip_prefix(b"[") {
        let Some(close) = inner.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = &inner[..close];
        if literal.is_empty()
            || !literal
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
        {
            return false;
        }
        (&h[..0], &inner[close + 1..])
    } else {
        match h.iter().position(|&b| b == b':') {
            Some(colon) => (&h[..colon], &h[colon..]),
            None => (h, &h[h.len()..]),
        }
    };
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => digits.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    port_ok && all_pct_or(host, is_unreserved_or_sub_delim)
}

/// How many dots a segment stands for: 1 for `.`, 2 for `..`, counting
/// `%2e` / `%2E` as a dot; 0 for any other segment.
fn dot_count(segment: &[u8]) -> usize {
    let mut dots = 0;
    let mut rest = segment;
    while !rest.is_empty() {
        rest = match rest {
            [b'.', tail @ ..] => tail,
            [b'%', b'2', b'e' | b'E', tail @ ..] => tail,
            _ => return 0,
        };
        dots += 1;
    }
    if dots <= 2 {
        dots
    } else {
        0
    }
}

/// Resolve `.` and `..` segments of an absolute path (RFC 3986 §5.2.4).
///
/// `Ok(false)`: the path has none and is used as it is (`out` untouched,
/// the common case, no copy). `Ok(true)`: `out` holds the resolved path.
/// A `..` that would climb above `/` is a 400 (see the module doc).
pub fn remove_dot_segments(path: &[u8], out: &mut Vec<u8>) -> Result<bool, HttpError> {
    if !path.split(|&b| b == b'/').any(|s| dot_count(s) > 0) {
        return Ok(false);
    }
    out.clear();
    // The input starts with '/', so the first split item is the empty
    // string before it. `out` is a sequence of "/segment" pieces.
    let mut ends_in_dir = false;
    for segment in path.split(|&b| b == b'/').skip(1) {
        match dot_count(segment) {
            1 => ends_in_dir = true,
            2 => {
                if out.is_empty() {
                    return Err(HttpError::bad("path climbs above the root"));
                }
                let last = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(last);
                ends_in_dir = true;
            }
            _ => {
                out.push(b'/');
                out.extend_from_slice(segment);
                ends_in_dir = false;
            }
        }
    }
    // "/a/b/.." is the directory "/a/", not the file "/a".
    if ends_in_dir || out.is_empty() {
        out.push(b'/');
    }
    Ok(true)
}

/// Why no request could ever be routed to `path` as written (a mount, for
/// the config check), or `None` if requests can reach it: it must pass the
/// same alphabet check as a request's path ([`valid_path`]) and already be
/// in the form paths are routed in — no `.` or `..` segment, which
/// [`remove_dot_segments`] resolves away first, and no empty segment.
pub fn unroutable(path: &str) -> Option<&'static str> {
    let path = path.as_bytes();
    let Some(rest) = path.strip_prefix(b"/") else {
        return Some("does not start with '/'");
    };
    if !valid_path(path) {
        return Some("holds characters a request path cannot (percent-encode them as %XX)");
    }
    if rest.is_empty() {
        return None; // the root
    }
    for segment in rest.split(|&b| b == b'/') {
        if segment.is_empty() {
            return Some("has an empty segment");
        }
        if dot_count(segment) > 0 {
            return Some(
                "has a '.' or '..' segment, which requests never reach: their paths are resolved before routing",
            );
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn resolved(path: &str) -> Result<String, u16> {
        let mut out = Vec::new();
        match remove_dot_segments(path.as_bytes(), &mut out) {
            Ok(false) => Ok(path.to_owned()),
            Ok(true) => Ok(String::from_utf8(out).unwrap()),
            Err(e) => Err(e.status),
        }
    }

    #[test]
    fn dot_segments_are_resolved() {
        for (input, want) in [
            ("/", "/"),
            ("/a/b/c", "/a/b/c"),
            ("/a/./b", "/a/b"),
            ("/a/b/../c", "/a/c"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/.", "/"),
            ("/a/..", "/"),
            ("/a/%2e%2E/b", "/b"),
            ("/a/.%2e/b", "/b"),
            ("/a/%2e/b", "/a/b"),
            ("/a//../b", "/a/b"),
            ("/a/.../b", "/a/.../b"),
            ("/a/..b/c", "/a/..b/c"),
            ("/a/%2e%2e%2e", "/a/%2e%2e%2e"),
            ("/a/b/../../c/./d", "/c/d"),
        ] {
            assert_eq!(resolved(input), Ok(want.to_owned()), "{input}");
        }
    }

    #[test]
    fn only_paths_in_routed_form_are_routable() {
        for path in ["/", "/hello", "/a/b-c_d.e~f", "/caf%C3%A9", "/a:b@c,d;e=f"] {
            assert_eq!(unroutable(path), None, "{path}");
        }
        for (path, why) in [
            ("hello", "start with '/'"),
            ("/a/../hello", "'..' segment"),
            ("/a/./b", "'..' segment"),
            ("/%2e%2E/b", "'..' segment"),
            ("/a/..", "'..' segment"),
            ("/a//b", "empty segment"),
            ("/a/", "empty segment"),
            ("/a?b", "percent-encode"),
            ("/a#b", "percent-encode"),
            ("/caf\u{e9}", "percent-encode"),
            ("/a%zz", "percent-encode"),
        ] {
            let got = unroutable(path).unwrap_or_default();
            assert!(got.contains(why), "{path}: {got}");
        }
    }

    #[test]
    fn climbing_above_the_root_is_refused() {
        for input in [
            "/..",
            "/../a",
            "/a/../..",
            "/%2e%2e/etc/passwd",
            "/a/./../../b",
        ] {
            assert_eq!(resolved(input), Err(400), "{input}");
        }
    }

    #[test]
    fn target_forms() {
        let p = split(b"/a/b?c=d", b"GET").unwrap();
        assert_eq!((p.authority, p.path, p.query), (None, 0..4, 5..8));
        let p = split(b"/", b"GET").unwrap();
        assert_eq!((p.path, p.query), (0..1, 1..1));
        let p = split(b"http://h:80/x?", b"GET").unwrap();
        assert_eq!(
            (p.authority, p.path, p.query),
            (Some(7..11), 11..13, 14..14)
        );
        let p = split(b"HTTP://h", b"GET").unwrap();
        assert_eq!((p.path, p.query), (8..8, 8..8));
        assert_eq!(split(b"*", b"OPTIONS").unwrap().path, 0..1);
        assert!(split(b"*", b"GET").is_err());
    }

    #[test]
    fn target_alphabet() {
        for good in [
            &b"/a-b_c.d~e!$&'()*+,;=:@/%41"[..],
            b"/?q={\"a\"|b}^`<>\\",
            b"/?%zz",
        ] {
            assert!(
                split(good, b"GET").is_ok(),
                "{:?}",
                String::from_utf8_lossy(good)
            );
        }
        for bad in [
            &b"/a\\b"[..],
            b"/a\"b",
            b"/{x}",
            b"/a%",
            b"/a%4",
            b"/a%zz",
            b"/\xc3\xa9",
            b"/?\xff",
            b"/a|b",
            b"http://a b/",
            b"http://[::1/",
            b"http://h:8x/",
            b"hello",
        ] {
            assert!(
                split(bad, b"GET").is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn host_syntax() {
        for good in [
            &b""[..],
            b"example.com",
            b"example.com:8080",
            b"a:",
            b"[::1]",
            b"[::1]:80",
            b"127.0.0.1:1",
            b"xn--bcher-kva.example",
            b"%41.example",
        ] {
            assert!(valid_host(good), "{:?}", String::from_utf8_lossy(good));
        }
        for bad in [
            &b"a b"[..],
            b"user@a",
            b"a/b",
            b"a:b",
            b"a:1:2",
            b"[::1",
            b"[]",
            b"[::1]x",
            b"[::g]",
            b"a%zz",
            b"\xc3\xa9",
        ] {
            assert!(!valid_host(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
