//! The chunked body decoder on arbitrary bytes: it must not panic, must
//! never consume more than it is given or produce more than the body
//! limit, and feeding the input in two reads (cut anywhere) or byte by
//! byte must give the same body, consumption and verdict as one read.
//!
//! Input: first byte picks the cut, the rest is the chunked body.
#![no_main]

use drupe::http::ChunkedDecoder;
use libfuzzer_sys::fuzz_target;

const MAX_BODY: usize = 1024;

/// Decode `input` fed in the given pieces; (status or body, consumed, done).
fn decode(
    input: &[u8],
    pieces: &mut dyn Iterator<Item = usize>,
) -> (Result<Vec<u8>, u16>, usize, bool) {
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < input.len() {
        let end = (pos + pieces.next().unwrap_or(input.len()).max(1)).min(input.len());
        match d.decode(&input[pos..end], &mut out, MAX_BODY) {
            Err(e) => return (Err(e.status), pos, false),
            Ok(r) => {
                assert!(r.consumed <= end - pos);
                assert!(out.len() <= MAX_BODY);
                pos += r.consumed;
                if r.done {
                    return (Ok(out), pos, true);
                }
                assert_eq!(pos, end, "a decoder that is not done consumes everything");
            }
        }
    }
    (Ok(out), pos, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let whole = decode(input, &mut std::iter::empty());
    let cut = (usize::from(selector) * input.len()) / 255;
    let two = decode(input, &mut [cut, input.len()].into_iter());
    // An error's position may differ with the pieces; its status may not.
    match (&whole, &two) {
        ((Err(a), _, _), (Err(b), _, _)) => assert_eq!(a, b),
        _ => assert_eq!(whole, two, "cut at {cut}"),
    }
    if input.len() <= 256 {
        let bytes = decode(input, &mut std::iter::repeat(1));
        match (&whole, &bytes) {
            ((Err(a), _, _), (Err(b), _, _)) => assert_eq!(a, b),
            _ => assert_eq!(whole, bytes, "byte by byte"),
        }
    }
});
