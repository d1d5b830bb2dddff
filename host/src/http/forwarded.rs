//! What forwarding headers say about a request's client: RFC 7239
//! `Forwarded` (`for=`, `proto=`), or the older `X-Forwarded-For` and
//! `X-Forwarded-Proto`. Only read for a request whose socket peer is in
//! `[server] trustedProxies` (the worker decides that); from anyone else
//! these headers are the client's own word and ignored.
//!
//! The rules, the same for both header families:
//!
//! - When a request has a `Forwarded` header, it alone is read, and any
//!   `X-Forwarded-*` is ignored: it is the standard, and one answer is
//!   better than a merge of two that may disagree.
//! - Each proxy appends the address it received the request from, so the
//!   list is walked from the right, past addresses that are themselves
//!   trusted proxies; the first other one is the client. If every one is
//!   trusted, the left-most is. Addresses to the left of the client were
//!   written by the client (or by proxies nobody vouches for) and are
//!   never believed.
//! - A value that is not an address (`unknown`, an obfuscated `_name`,
//!   garbage) stops the walk: the client cannot be known, and the request
//!   keeps its connection's address. Malformed headers are never an error.
//! - The scheme: `Forwarded`'s `proto` in the element the client was found
//!   in (that element was written by the proxy the client talked to);
//!   otherwise the right-most `X-Forwarded-Proto` item (proxies usually
//!   overwrite it, so there is one). Only `http` and `https` count.
//! - Headers give no port unless `Forwarded` quotes one
//!   (`for="[2001:db8::7]:4711"`); then the client's address is shown with
//!   port 0.

use super::{eq_ignore_case, list_items, trim_ows};
use std::net::{IpAddr, SocketAddr};

/// What the headers establish; `None` fields leave the connection's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Forwarded {
    pub client: Option<SocketAddr>,
    /// `Some(true)` for https, `Some(false)` for http.
    pub secure: Option<bool>,
}

/// Reads the forwarding headers among `headers`; `trusted` says whether an
/// address is one of the trusted proxies.
pub fn resolve<'h>(
    headers: impl Iterator<Item = (&'h [u8], &'h [u8])>,
    trusted: impl Fn(IpAddr) -> bool,
) -> Forwarded {
    let mut forwarded = Vec::new();
    let mut xff = Vec::new();
    let mut xfp = None;
    for (name, value) in headers {
        if eq_ignore_case(name, b"forwarded") {
            forwarded.push(value);
        } else if eq_ignore_case(name, b"x-forwarded-for") {
            xff.push(value);
        } else if eq_ignore_case(name, b"x-forwarded-proto") {
            xfp = Some(value);
        }
    }
    if !forwarded.is_empty() {
        return from_forwarded(&forwarded, &trusted);
    }
    // Several header lines of one list field are one list, in order
    // (RFC 9110 §5.3).
    let items: Vec<&[u8]> = xff.iter().flat_map(|v| list_items(v)).collect();
    Forwarded {
        client: walk(&items, node, &trusted).map(|(_, addr)| addr),
        secure: xfp
            .and_then(|v| list_items(v).filter(|i| !i.is_empty()).last())
            .and_then(scheme),
    }
}

/// RFC 7239 §4: `Forwarded: for=192.0.2.60;proto=http;by=203.0.113.43,
/// for="[2001:db8:cafe::17]:4711"` — elements separated by commas, pairs
/// by semicolons, each value a token or a quoted-string.
fn from_forwarded(values: &[&[u8]], trusted: &impl Fn(IpAddr) -> bool) -> Forwarded {
    let elements: Vec<&[u8]> = values
        .iter()
        .flat_map(|v| split_unquoted(v, b','))
        .map(trim_ows)
        .filter(|e| !e.is_empty())
        .collect();
    let param = |element: &[u8], wanted: &[u8]| -> Option<Vec<u8>> {
        split_unquoted(element, b';').find_map(|pair| {
            let pair = trim_ows(pair);
            let eq = pair.iter().position(|&b| b == b'=')?;
            eq_ignore_case(&pair[..eq], wanted)
                .then(|| unquote(&pair[eq + 1..]))
                .flatten()
        })
    };
    match walk(&elements, |element| node(&param(element, b"for")?), trusted) {
        Some((element, addr)) => Forwarded {
            client: Some(addr),
            secure: param(element, b"proto").and_then(|p| scheme(&p)),
        },
        None => Forwarded::default(),
    }
}

/// The right-most item whose address is not trusted (or the left-most, if
/// all are), with that address; `None` if an item that is not an address
/// comes first, or there are none.
fn walk<'i>(
    items: &[&'i [u8]],
    address: impl Fn(&[u8]) -> Option<SocketAddr>,
    trusted: &impl Fn(IpAddr) -> bool,
) -> Option<(&'i [u8], SocketAddr)> {
    let mut found = None;
    for &item in items.iter().rev() {
        let addr = address(item)?;
        found = Some((item, addr));
        if !trusted(addr.ip()) {
            break;
        }
    }
    found
}

/// RFC 7239 §6: `192.0.2.43`, `192.0.2.43:47011`, `[2001:db8::17]`,
/// `[2001:db8::17]:4711`; also a bare IPv6 address, as `X-Forwarded-For`
/// writes it. An obfuscated port (`_abc`) reads as 0; `unknown` and
/// obfuscated names are not addresses.
fn node(text: &[u8]) -> Option<SocketAddr> {
    let text = std::str::from_utf8(text).ok()?;
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 0));
    }
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']')?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':')?)),
            }
        }
        None => {
            let (host, port) = text.split_once(':')?;
            (host, Some(port))
        }
    };
    let ip: IpAddr = host.parse().ok()?;
    if text.starts_with('[') != ip.is_ipv6() {
        return None;
    }
    let port = match port {
        None => 0,
        Some(p) if p.starts_with('_') && p.len() > 1 => 0,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse().ok()?
        }
        Some(_) => return None,
    };
    Some(SocketAddr::new(ip, port))
}

fn scheme(value: &[u8]) -> Option<bool> {
    if eq_ignore_case(value, b"https") {
        Some(true)
    } else if eq_ignore_case(value, b"http") {
        Some(false)
    } else {
        None
    }
}

/// Splits at `sep` outside quoted-strings (RFC 9110 §5.6.4), where a
/// backslash escapes the next byte.
fn split_unquoted(value: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    let mut quoted = false;
    let mut escaped = false;
    value.split(move |&b| {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == sep && !quoted {
            return true;
        }
        false
    })
}

/// A token as it is, a quoted-string without its quotes and escapes;
/// `None` if a quote is left open.
fn unquote(value: &[u8]) -> Option<Vec<u8>> {
    let value = trim_ows(value);
    let Some(inner) = value.strip_prefix(b"\"") else {
        return (!value.contains(&b'"')).then(|| value.to_vec());
    };
    let inner = inner.strip_suffix(b"\"")?;
    let mut out = Vec::with_capacity(inner.len());
    let mut bytes = inner.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => out.push(*bytes.next()?),
            b'"' => return None,
            _ => out.push(b),
        }
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Trusted: 127.0.0.0/8 and 10.0.0.0/8, as a test stand-in.
    fn trusted(ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => matches!(v4.octets()[0], 127 | 10),
            IpAddr::V6(v6) => v6.is_loopback(),
        }
    }

    fn read(headers: &[(&str, &str)]) -> (Option<String>, Option<bool>) {
        let got = resolve(
            headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            trusted,
        );
        (got.client.map(|a| a.to_string()), got.secure)
    }

    #[test]
    fn x_forwarded_for_gives_the_right_most_untrusted_address() {
        let some = |s: &str| Some(s.to_owned());
        // The client wrote 1.1.1.1 itself; the proxy appended what it saw.
        assert_eq!(
            read(&[("X-Forwarded-For", "1.1.1.1, 203.0.113.7")]).0,
            some("203.0.113.7:0")
        );
        // Past a chain of trusted proxies.
        assert_eq!(
            read(&[(
                "x-forwarded-for",
                "1.1.1.1, 203.0.113.7, 10.0.0.2,127.0.0.1"
            )])
            .0,
            some("203.0.113.7:0")
        );
        // Two header lines are one list.
        assert_eq!(
            read(&[
                ("X-Forwarded-For", "1.1.1.1"),
                ("X-Forwarded-For", "2001:db8::9")
            ])
            .0,
            some("[2001:db8::9]:0")
        );
        // All trusted: the left-most.
        assert_eq!(
            read(&[("X-Forwarded-For", "10.1.1.1, 127.0.0.1")]).0,
            some("10.1.1.1:0")
        );
        // With ports, as some proxies write them.
        assert_eq!(
            read(&[("X-Forwarded-For", "[2001:db8::9]:443, 198.51.100.1:8080")]).0,
            some("198.51.100.1:8080")
        );
    }

    #[test]
    fn a_value_that_is_not_an_address_keeps_the_connection_address() {
        for value in [
            "unknown",
            "1.1.1.1, garbage",
            "1.1.1.1, ",
            "",
            "300.1.1.1",
            "::1]:80",
            "[1.2.3.4]",
        ] {
            assert_eq!(read(&[("X-Forwarded-For", value)]).0, None, "{value:?}");
        }
        // A bad item left of the client does not matter.
        assert_eq!(
            read(&[("X-Forwarded-For", "garbage, 203.0.113.7")])
                .0
                .as_deref(),
            Some("203.0.113.7:0")
        );
    }

    #[test]
    fn x_forwarded_proto_is_http_or_https_from_the_nearest_proxy() {
        assert_eq!(read(&[("X-Forwarded-Proto", "https")]).1, Some(true));
        assert_eq!(read(&[("X-Forwarded-Proto", "HTTP")]).1, Some(false));
        assert_eq!(read(&[("X-Forwarded-Proto", "http, https")]).1, Some(true));
        assert_eq!(read(&[("X-Forwarded-Proto", "wss")]).1, None);
        assert_eq!(read(&[("X-Forwarded-Proto", "")]).1, None);
    }

    #[test]
    fn forwarded_follows_rfc_7239() {
        let got = read(&[(
            "Forwarded",
            "for=1.1.1.1;proto=http, for=\"[2001:db8:cafe::17]:4711\";proto=https;by=10.0.0.1, For=10.0.0.3",
        )]);
        assert_eq!(
            got,
            (Some("[2001:db8:cafe::17]:4711".to_owned()), Some(true))
        );
        // Case-insensitive names, quoted IPv4 with a port, obfuscated port.
        assert_eq!(
            read(&[("Forwarded", "FOR=\"192.0.2.43:47011\";PROTO=HTTPS")]),
            (Some("192.0.2.43:47011".to_owned()), Some(true))
        );
        assert_eq!(
            read(&[("Forwarded", "for=\"192.0.2.43:_abc\"")])
                .0
                .as_deref(),
            Some("192.0.2.43:0")
        );
        // A comma inside quotes does not split elements.
        assert_eq!(
            read(&[("Forwarded", "for=192.0.2.1;ext=\"a,b\";proto=https")]),
            (Some("192.0.2.1:0".to_owned()), Some(true))
        );
    }

    #[test]
    fn forwarded_wins_over_x_forwarded() {
        let got = read(&[
            ("X-Forwarded-For", "198.51.100.9"),
            ("X-Forwarded-Proto", "https"),
            ("Forwarded", "for=192.0.2.1"),
        ]);
        assert_eq!(got, (Some("192.0.2.1:0".to_owned()), None));
    }

    #[test]
    fn malformed_forwarded_is_ignored() {
        for value in [
            "for=unknown",
            "for=_hidden",
            "for=\"[2001:db8::1\"",
            "for=\"192.0.2.1",
            "for=192.0.2.1:99999",
            "for=\"[::1]:x\"",
            "proto=https",
            ";;,,",
            "for",
            "\"",
        ] {
            assert_eq!(read(&[("Forwarded", value)]), (None, None), "{value:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(
            name in prop::sample::select(vec!["Forwarded", "X-Forwarded-For", "X-Forwarded-Proto"]),
            value in "[ -~]{0,80}",
        ) {
            let _ = read(&[(name, value.as_str())]);
        }
    }
}
