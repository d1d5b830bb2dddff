//! The `Date` response header, formatted once a second per thread.
//!
//! Every response carries `Date` (RFC 9110 §6.6.1), and formatting an
//! IMF-fixdate costs more than the rest of a hello-world response. Each
//! handler thread keeps the finished line `Date: <IMF-fixdate>\r\n` and
//! rebuilds it only when the wall clock has moved to another second, so the
//! hot path is one clock read and one copy. Thread-local, so no lock.

use std::cell::RefCell;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n` — an IMF-fixdate is always 29 bytes.
pub const DATE_LINE_LEN: usize = 6 + 29 + 2;

#[derive(Debug)]
struct Cache {
    /// Unix second the line was built for; `u64::MAX` = never built.
    secs: u64,
    line: [u8; DATE_LINE_LEN],
}

thread_local! {
    static CACHE: RefCell<Cache> = const {
        RefCell::new(Cache { secs: u64::MAX, line: [0; DATE_LINE_LEN] })
    };
}

/// Append the current `Date: ...\r\n` line to `out`.
pub fn append_date_line(out: &mut Vec<u8>) {
    // A clock before 1970 is a broken host; answer with the epoch rather than panic.
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.secs != secs {
            format_line(secs, &mut cache.line);
            cache.secs = secs;
        }
        out.extend_from_slice(&cache.line);
    });
}

fn format_line(secs: u64, line: &mut [u8; DATE_LINE_LEN]) {
    let time = UNIX_EPOCH + Duration::from_secs(secs);
    let mut w: &mut [u8] = &mut line[..];
    // Writing a fixed-width date into a buffer of exactly that width cannot
    // fail; if httpdate ever changed its width the tail would stay stale,
    // which a test below would catch.
    let _ = write!(w, "Date: {}\r\n", httpdate::HttpDate::from(time));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn formats_imf_fixdate() {
        let mut line = [0; DATE_LINE_LEN];
        format_line(784_111_777, &mut line);
        assert_eq!(&line[..], b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n");
    }

    #[test]
    fn appends_a_whole_line_and_reuses_it() {
        let mut out = b"x".to_vec();
        append_date_line(&mut out);
        append_date_line(&mut out);
        assert_eq!(out.len(), 1 + 2 * DATE_LINE_LEN);
        let first = &out[1..1 + DATE_LINE_LEN];
        assert!(first.starts_with(b"Date: "));
        assert!(first.ends_with(b" GMT\r\n"));
        let text = std::str::from_utf8(&first[6..35]).unwrap();
        assert!(httpdate::parse_http_date(text).is_ok());
    }
}
