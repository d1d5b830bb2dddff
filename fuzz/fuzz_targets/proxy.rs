//! The PROXY protocol header parser on arbitrary bytes: it must not panic,
//! a complete header lies within the buffer, and cutting the bytes
//! anywhere (as reads do) must not change the outcome — a header is
//! partial before its end and the same header after it, and a prefix is
//! refused only if the whole is.
//!
//! Input: first byte picks the cut, the rest is the buffer.
#![no_main]

use drupe::http::proxy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, buf)) = data.split_first() else {
        return;
    };
    let whole = proxy::parse(buf);
    if let Ok(Some(h)) = whole {
        assert!(h.len <= buf.len());
    }
    let cut = (usize::from(selector) * buf.len()) / 255;
    let prefix = &buf[..cut.min(buf.len())];
    match (whole, proxy::parse(prefix)) {
        (Ok(Some(h)), Ok(None)) => assert!(prefix.len() < h.len),
        (Ok(Some(h)), Ok(Some(p))) => assert_eq!(h, p),
        (Ok(_), Err(e)) => panic!("prefix of {cut} refused ({e}), whole not"),
        (Ok(None), Ok(Some(_))) => panic!("prefix of {cut} complete, whole partial"),
        (Err(_), _) | (Ok(None), Ok(None)) => {}
    }
});
