//! Tests for `request.rs`: every rejection with its status, partial heads,
//! pipelining, keep-alive rules and the request-target forms.

#![allow(clippy::unwrap_used)]

use super::*;

fn parse(buf: &[u8]) -> Result<Option<usize>, HttpError> {
    Head::new().parse(buf, &HeadLimits::default())
}

/// Parse a complete head, panicking if it is not one.
fn head(buf: &[u8]) -> Head {
    let mut h = Head::new();
    let len = h.parse(buf, &HeadLimits::default()).unwrap();
    assert_eq!(len, Some(buf.len()), "{:?}", String::from_utf8_lossy(buf));
    h
}

fn status(buf: &[u8]) -> u16 {
    match parse(buf) {
        Err(e) => e.status,
        Ok(r) => panic!("accepted {:?}: {r:?}", String::from_utf8_lossy(buf)),
    }
}

const GET: &[u8] = b"GET /hello/world?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";

#[test]
fn parses_a_simple_get() {
    let h = head(GET);
    assert_eq!(h.method(GET), b"GET");
    assert_eq!(h.target(GET), b"/hello/world?x=1&y=2");
    assert_eq!(h.path(GET), b"/hello/world");
    assert_eq!(h.query(GET), b"x=1&y=2");
    assert_eq!(h.host(GET), Some(&b"example.com"[..]));
    assert_eq!(h.http_minor, 1);
    assert_eq!(h.body, BodyKind::None);
    assert!(h.keep_alive && !h.expect_continue && !h.is_head);
    assert_eq!(h.header(GET, b"ACCEPT"), Some(&b"*/*"[..]));
    assert_eq!(h.header(GET, b"missing"), None);
    let all: Vec<_> = h.headers(GET).collect();
    assert_eq!(
        all,
        [(&b"Host"[..], &b"example.com"[..]), (b"Accept", b"*/*")]
    );
}

#[test]
fn byte_by_byte_is_partial_until_complete() {
    let mut h = Head::new();
    for end in 0..GET.len() {
        assert_eq!(
            h.parse(&GET[..end], &HeadLimits::default()),
            Ok(None),
            "at {end}"
        );
    }
    assert_eq!(h.parse(GET, &HeadLimits::default()), Ok(Some(GET.len())));
}

#[test]
fn pipelined_requests_parse_one_after_another() {
    let two = [
        GET,
        b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    ]
    .concat();
    let mut h = Head::new();
    let first = h.parse(&two, &HeadLimits::default()).unwrap().unwrap();
    assert_eq!(first, GET.len());
    assert_eq!(h.path(&two), b"/hello/world");
    let rest = &two[first..];
    let second = h.parse(rest, &HeadLimits::default()).unwrap().unwrap();
    assert_eq!(h.method(rest), b"POST");
    assert_eq!(h.body, BodyKind::Length(3));
    assert_eq!(&rest[second..], b"abc");
    assert_eq!(
        h.headers(rest).count(),
        2,
        "headers of the first request are gone"
    );
}

#[test]
fn leading_empty_lines_are_skipped() {
    let buf = [&b"\r\n\r\n"[..], GET].concat();
    assert_eq!(head(&buf).path(&buf), b"/hello/world");
}

#[test]
fn keep_alive_rules() {
    let ka = |buf: &[u8]| head(buf).keep_alive;
    assert!(ka(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    ));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n"
    ));
    assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
    assert!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    assert!(ka(b"GET / HTTP/1.0\r\nConnection: foo,keep-alive\r\n\r\n"));
    assert!(!ka(
        b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"
    ));
    // "closed" is not "close": tokens, not substrings.
    assert!(ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n"
    ));
}

#[test]
fn http10_needs_no_host() {
    let h = head(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(h.http_minor, 0);
    assert_eq!(h.host(b"GET / HTTP/1.0\r\n\r\n"), None);
}

#[test]
fn expect_continue_only_on_http11() {
    assert!(
        head(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")
            .expect_continue
    );
    assert!(
        !head(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
            .expect_continue
    );
}

#[test]
fn head_method() {
    assert!(head(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").is_head);
    assert!(!head(b"head / HTTP/1.1\r\nHost: a\r\n\r\n").is_head); // methods are case-sensitive
}

#[test]
fn body_framing() {
    let kind = |buf: &[u8]| head(buf).body;
    assert_eq!(
        kind(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"),
        BodyKind::None
    );
    assert_eq!(
        kind(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n"),
        BodyKind::Length(42)
    );
    assert_eq!(
        kind(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n"),
        BodyKind::Length(u64::MAX)
    );
    assert_eq!(
        kind(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
        BodyKind::Chunked
    );
    assert_eq!(
        kind(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED , \r\n\r\n"),
        BodyKind::Chunked
    );
}

#[test]
fn rejects_bad_content_length() {
    for value in [
        "-5",
        "+5",
        "5 5",
        "abc",
        "",
        "0x5",
        "5, 6",
        "5,,5",
        // A list of identical values: RFC 9110 §8.6 allows rejecting it,
        // and we do (see `Fields::note`).
        "5, 5",
        "5,5",
        "18446744073709551616",
        "1.0",
    ] {
        let req = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {value}\r\n\r\n");
        assert_eq!(status(req.as_bytes()), 400, "Content-Length: {value}");
    }
    // Repeated fields, differing or identical (the list form spread over
    // lines, RFC 9110 §5.3).
    for second in ["6", "5"] {
        let req = format!(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: {second}\r\n\r\n"
        );
        assert_eq!(
            status(req.as_bytes()),
            400,
            "Content-Length: 5 then {second}"
        );
    }
}

#[test]
fn rejects_bad_transfer_encoding() {
    let te = |v: &str, version: &str| {
        status(
            format!("POST / HTTP/1.{version}\r\nHost: a\r\nTransfer-Encoding: {v}\r\n\r\n")
                .as_bytes(),
        )
    };
    assert_eq!(te("gzip", "1"), 400); // final coding is not chunked (RFC 9112 §6.3)
    assert_eq!(te("chunked, gzip", "1"), 400);
    assert_eq!(te("chunked, chunked", "1"), 400);
    assert_eq!(te("", "1"), 400);
    assert_eq!(te("gzip, chunked", "1"), 501); // we implement chunked only
    assert_eq!(te("chunked", "0"), 400); // Transfer-Encoding on HTTP/1.0 (§6.1)
                                         // Content-Length with Transfer-Encoding, in either order (§6.1).
    assert_eq!(status(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
    assert_eq!(status(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"), 400);
    // Split over two fields, chunked not last.
    assert_eq!(status(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"), 400);
}

#[test]
fn rejects_obsolete_line_folding() {
    let err = parse(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  continued\r\n\r\n").unwrap_err();
    assert_eq!(err, HttpError::bad("obsolete line folding"));
    assert_eq!(
        status(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\tcontinued\r\n\r\n"),
        400
    );
}

#[test]
fn rejects_control_characters() {
    assert_eq!(
        status(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\0b\r\n\r\n"),
        400
    );
    assert_eq!(
        status(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x01b\r\n\r\n"),
        400
    );
    assert_eq!(
        status(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x7fb\r\n\r\n"),
        400
    );
    assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\r\nX\0A: 1\r\n\r\n"), 400);
    assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\r\nX A: 1\r\n\r\n"), 400);
    assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\r\nX-A : 1\r\n\r\n"), 400);
    assert_eq!(
        status(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n"),
        400
    );
    assert_eq!(status(b"GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

#[test]
fn host_rules() {
    assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), 400);
    assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), 400);
    assert_eq!(status(b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
    assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
    assert_eq!(status(b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"), 400);
    assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
    head(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    head(b"GET / HTTP/1.1\r\nHost:\r\n\r\n");
}

#[test]
fn versions() {
    assert_eq!(status(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
    assert_eq!(status(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n"), 505);
    assert_eq!(status(b"GET / HTTP/2"), 505); // detected while partial
    assert_eq!(status(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505);
    assert_eq!(status(b"GET / FOO/1.1\r\n\r\n"), 400);
    assert_eq!(status(b"GET / http/1.1\r\n\r\n"), 400);
    assert_eq!(status(b"GET / HTTP/x.1\r\n\r\n"), 400);
    assert_eq!(status(b"GET /\r\n\r\n"), 400); // HTTP/0.9
    assert_eq!(status(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), 400); // TLS
}

#[test]
fn request_target_forms() {
    let buf = b"GET http://Example.com:8080/a/b?c=d HTTP/1.1\r\nHost: other\r\n\r\n";
    let h = head(buf);
    assert_eq!(h.target(buf), b"http://Example.com:8080/a/b?c=d");
    assert_eq!(h.path(buf), b"/a/b");
    assert_eq!(h.query(buf), b"c=d");
    assert_eq!(h.host(buf), Some(&b"Example.com:8080"[..]));

    let buf = b"GET HTTPS://example.com?q HTTP/1.1\r\nHost: example.com\r\n\r\n";
    let h = head(buf);
    assert_eq!((h.path(buf), h.query(buf)), (&b"/"[..], &b"q"[..]));

    let buf = b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(head(buf).path(buf), b"*");

    let buf = b"GET /? HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(
        (head(buf).path(buf), head(buf).query(buf)),
        (&b"/"[..], &b""[..])
    );

    for bad in [
        &b"GET * HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        b"GET ftp://example.com/ HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET http:///path HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET http://user@host/ HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET hello HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        assert_eq!(status(bad), 400, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn limits() {
    let limits = HeadLimits {
        max_request_line: 32,
        max_header_bytes: 128,
        max_headers: 3,
    };
    let check = |buf: &[u8]| Head::new().parse(buf, &limits).map_err(|e| e.status);

    // Request line: exactly at the limit is fine, one more is 414, complete or partial.
    // "GET /" + n + " HTTP/1.1" is 14 + n bytes.
    let at = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(32 - 14));
    assert_eq!(check(at.as_bytes()), Ok(Some(at.len())));
    let over = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(32 - 13));
    assert_eq!(check(over.as_bytes()), Err(414));
    assert_eq!(
        check(format!("GET /{}", "a".repeat(40)).as_bytes()),
        Err(414)
    );
    // A partial line of exactly the limit plus its CR is still fine.
    let line = format!("GET /{} HTTP/1.1\r", "a".repeat(32 - 14));
    assert_eq!(check(line.as_bytes()), Ok(None));
    assert_eq!(check(&over.as_bytes()[..33]), Err(414));
    assert_eq!(check(&over.as_bytes()[..32]), Ok(None));

    // Header count.
    assert_eq!(
        check(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n").map(|_| ()),
        Ok(())
    );
    assert_eq!(
        check(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"),
        Err(431)
    );

    // Head size, complete or partial.
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "v".repeat(100)
    );
    assert_eq!(check(big.as_bytes()), Err(431));
    assert_eq!(check(&big.as_bytes()[..big.len() - 2]), Err(431));
    assert_eq!(check(&[b'\n'; 129]), Err(431));
}

#[test]
fn max_headers_is_capped_by_the_stack_array() {
    let limits = HeadLimits {
        max_headers: 10_000,
        max_header_bytes: 1 << 20,
        ..HeadLimits::default()
    };
    let mut req = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..MAX_HEADERS_CAP {
        req.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    assert_eq!(Head::new().parse(&req, &limits).unwrap_err().status, 431);
}

#[test]
fn accessors_do_not_panic_on_the_wrong_buffer() {
    let h = head(GET);
    assert_eq!(h.path(b"short"), b"/");
    assert_eq!(h.header(b"", b"host"), None);
}

#[test]
fn never_panics_on_prefixes_and_mutations() {
    // A cheap stand-in for a fuzzer: every prefix of a few requests with each
    // byte replaced by a handful of troublesome values.
    let samples: [&[u8]; 3] = [
        GET,
        b"POST http://a/b?c HTTP/1.0\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc",
        b"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
    ];
    let mut h = Head::new();
    for sample in samples {
        for i in 0..sample.len() {
            for b in [0u8, b'\r', b'\n', b' ', b':', b',', b'?', b'/', 0xff] {
                let mut buf = sample.to_vec();
                buf[i] = b;
                for end in [i + 1, buf.len()] {
                    if let Ok(Some(len)) = h.parse(&buf[..end], &HeadLimits::default()) {
                        let _ = (h.path(&buf), h.query(&buf), h.headers(&buf).count(), len);
                    }
                }
            }
        }
    }
}

#[test]
fn expectations_other_than_100_continue_are_417() {
    assert_eq!(
        status(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n"),
        417
    );
    assert_eq!(
        status(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, x=y\r\n\r\n"),
        417
    );
    // An empty list element is no expectation (RFC 9110 §5.6.1).
    assert!(
        head(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: ,100-continue\r\nContent-Length: 1\r\n\r\n")
            .expect_continue
    );
}

#[test]
fn dot_segments_are_resolved_before_anyone_sees_the_path() {
    let buf = b"GET /a/b/../%2e/c?x=/../ HTTP/1.1\r\nHost: a\r\n\r\n";
    let h = head(buf);
    assert_eq!(h.path(buf), b"/a/c");
    assert_eq!(h.query(buf), b"x=/../");
    assert_eq!(
        h.target(buf),
        b"/a/b/../%2e/c?x=/../",
        "the target stays as sent"
    );
    let buf = b"GET http://h/x/.. HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(head(buf).path(buf), b"/");
    // Reusing the head for a request without dot-segments forgets the copy.
    let mut h = Head::new();
    h.parse(
        b"GET /a/../b HTTP/1.1\r\nHost: a\r\n\r\n",
        &HeadLimits::default(),
    )
    .unwrap();
    let buf = b"GET /c HTTP/1.1\r\nHost: a\r\n\r\n";
    h.parse(buf, &HeadLimits::default()).unwrap();
    assert_eq!(h.path(buf), b"/c");
    for bad in [
        &b"GET /.. HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"GET /a/../../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /%2e%2E/x HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET http://h/../x HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        assert_eq!(status(bad), 400, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn target_characters_outside_rfc_3986_are_400() {
    for bad in [
        &b"GET /a\\b HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /?\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a:b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",
    ] {
        assert_eq!(status(bad), 400, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn status_does_not_depend_on_where_the_bytes_are_split() {
    // Found by proptest: read in pieces, the request line crossed
    // maxRequestLine (414) before the bad version arrived; read whole,
    // httparse reported the version (400).
    let limits = HeadLimits {
        max_request_line: 40,
        max_header_bytes: 120,
        max_headers: 4,
    };
    let buf = b"OPTIONS http://h:80/http://h:80Connection: close\r\n";
    let status = |b: &[u8]| Head::new().parse(b, &limits).unwrap_err().status;
    assert_eq!(status(&buf[..43]), 414);
    assert_eq!(status(buf), 414);
    // A bad byte before the limit is still reported as itself.
    let buf = b"GET /\x01aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n";
    assert_eq!(status(buf), 400);
    assert_eq!(status(&buf[..10]), 400);
    // The same for the head size: 431 from the prefix, not the later error.
    let mut big = b"GET / HTTP/1.1\r\nHost: h\r\nX: ".to_vec();
    big.extend_from_slice(&[b'v'; 100]);
    big.extend_from_slice(b"\r\nBad Name: 1\r\n\r\n");
    assert_eq!(status(&big[..121]), 431);
    assert_eq!(status(&big), 431);
}
