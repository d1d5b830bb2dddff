//! The request-head parser on arbitrary bytes: it must not panic, a
//! complete head must only hold ranges inside the buffer, and cutting the
//! bytes anywhere (as reads do) must not change the outcome — a complete
//! head is partial before its end and the same head after it, and a prefix
//! is refused only if the whole is, with the same status.
//!
//! Input: first byte picks the cut and the limits, the rest is the buffer.
#![no_main]

use drupe::http::{Head, HeadLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, buf)) = data.split_first() else {
        return;
    };
    let limits = if selector & 1 == 0 {
        HeadLimits::default()
    } else {
        HeadLimits {
            max_request_line: 40,
            max_header_bytes: 120,
            max_headers: 4,
        }
    };
    let mut whole = Head::new();
    let result = whole.parse(buf, &limits);
    if let Ok(Some(n)) = result {
        assert!(n <= buf.len());
        let path = whole.path(buf);
        assert!(!path.is_empty());
        // No dot-segment survives resolution (RFC 3986 §5.2.4).
        if path != b"*" {
            assert!(path.starts_with(b"/"));
            for segment in path.split(|&b| b == b'/') {
                assert!(segment != b"." && segment != b"..", "{path:?}");
            }
        }
    }
    let cut = (usize::from(selector >> 1) * buf.len()) / 127;
    let prefix = &buf[..cut.min(buf.len())];
    let mut part = Head::new();
    match (result, part.parse(prefix, &limits)) {
        (Ok(Some(n)), Ok(None)) => assert!(prefix.len() < n),
        (Ok(Some(n)), Ok(Some(m))) => {
            assert_eq!(n, m);
            assert_eq!(whole.summary(buf), part.summary(prefix));
        }
        (Ok(Some(_)) | Ok(None), Err(e)) => panic!("prefix of {cut} refused ({e}), whole not"),
        (Ok(None), Ok(Some(_))) => panic!("prefix of {cut} complete, whole partial"),
        (Err(a), Err(b)) => assert_eq!(a.status, b.status, "{a} whole, {b} at {cut}"),
        (Err(_), Ok(_)) | (Ok(None), Ok(None)) => {}
    }
});
