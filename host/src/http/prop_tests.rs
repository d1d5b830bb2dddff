//! Property tests: the head parser and the chunked decoder never panic,
//! and how the bytes are split across reads never changes the outcome.
//!
//! Inputs are built from request-shaped fragments (methods, targets, field
//! lines, framing headers, chunk syntax, and the bytes that break them) so
//! that most cases get deep into the parser instead of failing on byte one;
//! fully arbitrary bytes are covered too. The fuzz targets in `fuzz/`
//! check the same properties for much longer.

#![allow(clippy::unwrap_used)]

use super::{ChunkedDecoder, Head, HeadLimits, HttpError};
use proptest::prelude::*;

fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"GET ".to_vec()),
        Just(b"POST ".to_vec()),
        Just(b"OPTIONS ".to_vec()),
        Just(b"/".to_vec()),
        Just(b"/a/../b".to_vec()),
        Just(b"/%2e%2E/".to_vec()),
        Just(b"*".to_vec()),
        Just(b"http://h:80".to_vec()),
        Just(b"?q=1".to_vec()),
        Just(b" HTTP/1.1".to_vec()),
        Just(b" HTTP/1.0".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"Host: h\r\n".to_vec()),
        Just(b"Content-Length: 5\r\n".to_vec()),
        Just(b"Content-Length: 5, 6\r\n".to_vec()),
        Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
        Just(b"Transfer-Encoding: gzip, chunked\r\n".to_vec()),
        Just(b"Expect: 100-continue\r\n".to_vec()),
        Just(b"Connection: close\r\n".to_vec()),
        Just(b" folded\r\n".to_vec()),
        Just(b": ".to_vec()),
        Just(vec![0]),
        Just(vec![0xff]),
        "[ -~]{0,12}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..6),
    ]
}

fn request_like() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(fragment(), 0..24).prop_map(|parts| parts.concat())
}

/// Small limits, so the limit checks are reached often.
const LIMITS: HeadLimits = HeadLimits {
    max_request_line: 40,
    max_header_bytes: 120,
    max_headers: 4,
};

fn parse(buf: &[u8]) -> (Result<Option<usize>, HttpError>, Head) {
    let mut head = Head::new();
    let result = head.parse(buf, &LIMITS);
    (result, head)
}

/// A head is parsed the same from the whole buffer as it would be from a
/// stream cut at `cut`: a complete head is `Partial` in every shorter
/// prefix and the same head in every longer one, and a prefix is never an
/// error unless the whole buffer is one too, with the same status.
fn check_split(buf: &[u8], cut: usize) {
    let (whole, whole_head) = parse(buf);
    let prefix = &buf[..cut.min(buf.len())];
    let (part, part_head) = parse(prefix);
    match (whole, part) {
        (Ok(Some(n)), Ok(None)) => assert!(prefix.len() < n),
        (Ok(Some(n)), Ok(Some(m))) => {
            assert_eq!(n, m);
            assert_eq!(whole_head.summary(buf), part_head.summary(prefix));
        }
        (Ok(Some(n)), Err(e)) => panic!("prefix {cut} refused ({e}), whole accepted ({n})"),
        (Ok(None), Ok(Some(m))) => panic!("prefix {cut} complete ({m}), whole partial"),
        (Ok(None), Err(e)) => panic!("prefix {cut} refused ({e}), whole partial"),
        (Err(a), Err(b)) => assert_eq!(a.status, b.status, "{a} whole, {b} at {cut}"),
        (Err(_), Ok(_)) | (Ok(None), Ok(None)) => {}
    }
}

fn decode_in(input: &[u8], cuts: &[usize]) -> Result<(Vec<u8>, usize, bool), u16> {
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
    bounds.push(input.len());
    bounds.sort_unstable();
    for end in bounds {
        if end <= pos {
            continue;
        }
        let r = d
            .decode(&input[pos..end], &mut out, 64)
            .map_err(|e| e.status)?;
        pos += r.consumed;
        if r.done {
            return Ok((out, pos, true));
        }
    }
    Ok((out, pos, false))
}

fn chunked_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"5\r\nhello\r\n".to_vec()),
        Just(b"0\r\n\r\n".to_vec()),
        Just(b"0\r\n".to_vec()),
        Just(b"1;a=b\r\nx\r\n".to_vec()),
        Just(b"2 ; a=\"q\\\"\"\r\nxy\r\n".to_vec()),
        Just(b"X-T: 1\r\n".to_vec()),
        Just(b"Host: h\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"ffffffffffffffff".to_vec()),
        "[0-9a-fA-F;= \"\\\\\r\n]{0,8}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..4),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn head_parse_never_panics_on_any_bytes(buf in prop::collection::vec(any::<u8>(), 0..300)) {
        let (result, head) = parse(&buf);
        if let Ok(Some(n)) = result {
            prop_assert!(n <= buf.len());
            let _ = head.summary(&buf);
        }
    }

    #[test]
    fn head_parse_is_the_same_however_the_bytes_are_split(
        buf in request_like(),
        cut in any::<prop::sample::Index>(),
    ) {
        check_split(&buf, cut.index(buf.len() + 1));
    }

    #[test]
    fn chunked_decoding_is_the_same_however_the_bytes_are_split(
        input in chunked_like(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let whole = decode_in(&input, &[]);
        let cuts: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        prop_assert_eq!(&decode_in(&input, &cuts), &whole);
        if let Ok((body, consumed, _)) = &whole {
            prop_assert!(*consumed <= input.len());
            prop_assert!(body.len() <= 64);
        }
    }
}

/// Every cut of a few real requests, not just sampled ones.
#[test]
fn every_cut_of_sample_requests() {
    for buf in [
        &b"GET /a/./b?x HTTP/1.1\r\nHost: h\r\nX: 1\r\n\r\n"[..],
        b"POST http://h/ HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello",
        b"\r\nOPTIONS * HTTP/1.1\nHost: h\n\n",
        b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n",
    ] {
        for cut in 0..=buf.len() {
            check_split(buf, cut);
        }
    }
}
