//! The PROXY protocol header (`[server] proxyProtocol`): the few bytes a
//! load balancer (HAProxy's `send-proxy`/`send-proxy-v2`, nginx's stream
//! `proxy_protocol on`) writes at the very start of a connection to say
//! which client it is relaying, before any HTTP.
//!
//! Spec: haproxy's `doc/proxy-protocol.txt` (version 1 and 2, "the spec"
//! below). Both versions are accepted on the same listener, told apart by
//! their first bytes (§2.3 "Detection": `PROXY ` for v1, a 12-byte
//! signature for v2). As in the HTTP parser, `Ok(None)` means "read more",
//! and nothing here panics or trusts a length it has not checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A complete header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// Bytes the header takes at the start of the connection; HTTP starts
    /// right after.
    pub len: usize,
    /// The client the balancer relays, or `None` when the header names no
    /// usable one (v1 `UNKNOWN`, v2 `LOCAL` — a balancer's own health
    /// check —, or an address family other than TCP over IPv4/IPv6): the
    /// spec says to use the connection's real endpoints then.
    pub source: Option<SocketAddr>,
}

/// Why a connection's first bytes are not a PROXY header; the connection
/// is closed (§2: the receiver "MUST NOT try to guess whether the protocol
/// header is present or not").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyError(pub &'static str);

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

const V1_PREFIX: &[u8] = b"PROXY ";
/// §2.1: "a 108-byte buffer is always enough to store all the line and a
/// trailing zero": at most 107 bytes, CRLF included.
const V1_MAX: usize = 107;
/// §2.2: the v2 signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version/command, family/transport, 2-byte length.
const V2_FIXED: usize = 16;

/// Parses the header at the start of `buf`. `Ok(None)`: what is there is
/// the start of a header (or nothing yet); read more.
pub fn parse(buf: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    match buf.first() {
        None => Ok(None),
        Some(b'P') => parse_v1(buf),
        Some(b'\r') => parse_v2(buf),
        Some(_) => Err(ProxyError("no PROXY protocol header")),
    }
}

/// §2.1, the human-readable form:
/// `PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n`, `PROXY TCP6 …`, or
/// `PROXY UNKNOWN[ anything]\r\n`. Fields are separated by exactly one
/// space.
fn parse_v1(buf: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    let shared = buf.len().min(V1_PREFIX.len());
    if buf[..shared] != V1_PREFIX[..shared] {
        return Err(ProxyError("no PROXY protocol header"));
    }
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if buf.len() >= V1_MAX {
            Err(ProxyError("PROXY v1 line longer than 107 bytes"))
        } else {
            Ok(None)
        };
    };
    // §2.1: the line ends with CR LF; a bare LF is not a header.
    let Some(line) = lf
        .checked_sub(1)
        .and_then(|cr| (buf[cr] == b'\r').then_some(&buf[V1_PREFIX.len().min(cr)..cr]))
    else {
        return Err(ProxyError("PROXY v1 line not ended by CR LF"));
    };
    let len = lf + 1;
    let mut fields = line.split(|&b| b == b' ');
    let family = fields.next().unwrap_or_default();
    // §2.1: with UNKNOWN "the receiver must ignore anything presented
    // before the CRLF" and use the connection's own addresses.
    if family == b"UNKNOWN" {
        return Ok(Some(ProxyHeader { len, source: None }));
    }
    let v4 = match family {
        b"TCP4" => true,
        b"TCP6" => false,
        _ => return Err(ProxyError("PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN")),
    };
    let (Some(src), Some(dst), Some(sport), Some(dport), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(ProxyError(
            "PROXY v1 line does not have 4 addresses and ports",
        ));
    };
    let ip = |field: &[u8]| -> Option<IpAddr> {
        let text = std::str::from_utf8(field).ok()?;
        if v4 {
            text.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
        } else {
            text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
        }
    };
    let (Some(src), Some(_), Some(sport), Some(_)) = (ip(src), ip(dst), port(sport), port(dport))
    else {
        return Err(ProxyError("PROXY v1 address or port is malformed"));
    };
    Ok(Some(ProxyHeader {
        len,
        source: Some(SocketAddr::new(src, sport)),
    }))
}

/// §2.1: a port is a decimal number from 0 to 65535.
fn port(field: &[u8]) -> Option<u16> {
    if field.is_empty() || field.len() > 5 || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// §2.2, the binary form: the signature, then version and command, address
/// family and transport, the length of what follows (big endian), the
/// addresses, and optional TLVs (§2.2.7), which are skipped.
fn parse_v2(buf: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    let shared = buf.len().min(V2_SIGNATURE.len());
    if buf[..shared] != V2_SIGNATURE[..shared] {
        return Err(ProxyError("no PROXY protocol header"));
    }
    let Some(&[ver_cmd, family, hi, lo]) = buf.get(12..V2_FIXED) else {
        return Ok(None);
    };
    // §2.2: the high nibble is the version, which must be 2; the low one
    // the command: LOCAL (0) or PROXY (1); anything else is refused.
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError("PROXY v2 header of another version"));
    }
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        _ => return Err(ProxyError("PROXY v2 command is neither LOCAL nor PROXY")),
    };
    let len = V2_FIXED + usize::from(u16::from_be_bytes([hi, lo]));
    // §2.2: the address block's size by family; the length must leave
    // room for it. The seven family/transport pairs the spec lists are
    // the only valid ones: "other values ... must be rejected".
    let needed = match family {
        0x00 => 0,
        0x11 | 0x12 => 12,
        0x21 | 0x22 => 36,
        0x31 | 0x32 => 216,
        _ => {
            return Err(ProxyError(
                "PROXY v2 address family or transport is invalid",
            ))
        }
    };
    if len - V2_FIXED < needed {
        return Err(ProxyError(
            "PROXY v2 length too short for its address family",
        ));
    }
    let Some(block) = buf.get(V2_FIXED..len) else {
        return Ok(None);
    };
    // §2.2: LOCAL (a balancer's own connection, health checks) and
    // families the receiver does not use fall back to the real endpoints.
    let source = match family {
        _ if local => None,
        0x11 => {
            let ip = Ipv4Addr::new(block[0], block[1], block[2], block[3]);
            Some(SocketAddr::new(
                IpAddr::V4(ip),
                u16::from_be_bytes([block[8], block[9]]),
            ))
        }
        0x21 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&block[..16]);
            Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(octets)),
                u16::from_be_bytes([block[32], block[33]]),
            ))
        }
        _ => None,
    };
    Ok(Some(ProxyHeader { len, source }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(source: Option<&str>, len: usize) -> ProxyHeader {
        ProxyHeader {
            len,
            source: source.map(|s| s.parse().unwrap()),
        }
    }

    /// A v2 header as HAProxy's `send-proxy-v2` writes it.
    fn v2(ver_cmd: u8, family: u8, addresses: &[u8], tlvs: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(ver_cmd);
        out.push(family);
        let len = (addresses.len() + tlvs.len()) as u16;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(addresses);
        out.extend_from_slice(tlvs);
        out
    }

    fn tcp4() -> Vec<u8> {
        // 127.0.0.5:50000 -> 127.0.0.1:8080
        let mut a = vec![127, 0, 0, 5, 127, 0, 0, 1];
        a.extend_from_slice(&50000u16.to_be_bytes());
        a.extend_from_slice(&8080u16.to_be_bytes());
        a
    }

    #[test]
    fn v1_names_the_client_and_leaves_http_after_it() {
        let raw = b"PROXY TCP4 127.0.0.5 127.0.0.1 50000 8080\r\nGET / HTTP/1.1\r\n\r\n";
        let got = parse(raw).unwrap().unwrap();
        assert_eq!(got, header(Some("127.0.0.5:50000"), 43));
        assert!(raw[got.len..].starts_with(b"GET /"));
        let raw = b"PROXY TCP6 2001:db8::7 ::1 65535 0\r\n";
        assert_eq!(
            parse(raw).unwrap(),
            Some(header(Some("[2001:db8::7]:65535"), raw.len()))
        );
    }

    #[test]
    fn v1_unknown_keeps_the_socket_peer() {
        for raw in [
            &b"PROXY UNKNOWN\r\n"[..],
            b"PROXY UNKNOWN ffff::1 ::1 1 2\r\n",
        ] {
            assert_eq!(parse(raw).unwrap(), Some(header(None, raw.len())));
        }
    }

    #[test]
    fn v1_partial_lines_wait_for_more() {
        let full = b"PROXY TCP4 127.0.0.5 127.0.0.1 50000 8080\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]), Ok(None), "{cut} bytes");
        }
    }

    #[test]
    fn v1_malformed_lines_are_refused() {
        for raw in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"PROXI TCP4",
            b"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n",
            b"PROXY\r\n",
            b"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n",
            b"PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n",
            b"PROXY TCP4 ::1 1.2.3.4 1 2\r\n",
            b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 +1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 -1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n",
            b"PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 \xff\r\n",
        ] {
            assert!(parse(raw).is_err(), "{:?}", String::from_utf8_lossy(raw));
        }
        // No end of line within 107 bytes.
        let long = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 100]].concat();
        assert_eq!(
            parse(&long),
            Err(ProxyError("PROXY v1 line longer than 107 bytes"))
        );
    }

    #[test]
    fn v2_names_the_client_and_skips_tlvs() {
        let raw = v2(0x21, 0x11, &tcp4(), &[]);
        assert_eq!(
            parse(&raw).unwrap(),
            Some(header(Some("127.0.0.5:50000"), 28))
        );
        // HAProxy may append TLVs (§2.2.7): skipped, HTTP follows them.
        let mut raw = v2(0x21, 0x11, &tcp4(), &[0x04, 0x00, 0x02, 0xab, 0xcd]);
        let len = raw.len();
        raw.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(
            parse(&raw).unwrap(),
            Some(header(Some("127.0.0.5:50000"), len))
        );
        let mut six = Vec::new();
        six.extend_from_slice(&"2001:db8::5".parse::<Ipv6Addr>().unwrap().octets());
        six.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        six.extend_from_slice(&[0x12, 0x34, 0x00, 0x50]);
        let raw = v2(0x21, 0x21, &six, &[]);
        assert_eq!(
            parse(&raw).unwrap(),
            Some(header(Some("[2001:db8::5]:4660"), raw.len()))
        );
    }

    #[test]
    fn v2_local_and_other_families_keep_the_socket_peer() {
        for raw in [
            v2(0x20, 0x00, &[], &[]),       // LOCAL: a health check
            v2(0x20, 0x11, &tcp4(), &[]),   // LOCAL with addresses: ignored
            v2(0x21, 0x00, &[], &[]),       // UNSPEC
            v2(0x21, 0x12, &tcp4(), &[]),   // UDP over IPv4
            v2(0x21, 0x31, &[0; 216], &[]), // UNIX stream
        ] {
            assert_eq!(parse(&raw).unwrap(), Some(header(None, raw.len())));
        }
    }

    #[test]
    fn v2_partial_headers_wait_for_more() {
        let raw = v2(0x21, 0x11, &tcp4(), &[0x04, 0x00, 0x01, 0x00]);
        for cut in 0..raw.len() {
            assert_eq!(parse(&raw[..cut]), Ok(None), "{cut} bytes");
        }
    }

    #[test]
    fn v2_malformed_headers_are_refused() {
        let mut bad_signature = v2(0x21, 0x11, &tcp4(), &[]);
        bad_signature[6] = b'X';
        for raw in [
            bad_signature,
            v2(0x11, 0x11, &tcp4(), &[]),       // version 1 in binary
            v2(0x22, 0x11, &tcp4(), &[]),       // command 2
            v2(0x21, 0x13, &tcp4(), &[]),       // transport 3
            v2(0x21, 0x41, &tcp4(), &[]),       // family 4
            v2(0x21, 0x11, &tcp4()[..11], &[]), // too short for IPv4
            v2(0x21, 0x21, &[0; 35], &[]),      // too short for IPv6
            v2(0x21, 0x31, &[0; 100], &[]),     // too short for UNIX
        ] {
            assert!(parse(&raw).is_err(), "{raw:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

        /// Whatever arrives, the parser answers (never panics), and a
        /// header it accepts lies within the bytes it was given.
        #[test]
        fn never_panics_on_any_input(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(Some(h)) = parse(&raw) {
                prop_assert!(h.len <= raw.len());
            }
        }

        /// Nearly valid input (a real header with bytes changed, cut, or
        /// appended) is where bugs hide: mutate both versions.
        #[test]
        fn never_panics_on_mutated_headers(
            v1 in any::<bool>(),
            flips in proptest::collection::vec((0usize..64, any::<u8>()), 0..4),
            cut in 0usize..80,
            tail in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut raw = if v1 {
                b"PROXY TCP6 2001:db8::7 ::1 65535 80\r\n".to_vec()
            } else {
                v2(0x21, 0x11, &tcp4(), &[0x04, 0x00, 0x01, 0x00])
            };
            for (at, byte) in flips {
                if let Some(b) = raw.get_mut(at) {
                    *b = byte;
                }
            }
            raw.truncate(cut);
            raw.extend_from_slice(&tail);
            if let Ok(Some(h)) = parse(&raw) {
                prop_assert!(h.len <= raw.len());
            }
        }
    }
}
