//! Conditional and range requests for a file of known length and
//! validators (RFC 9110 §13, §14): what to send — 304, the whole file, one
//! range (206), or 416.
//!
//! Decisions:
//! - `If-None-Match` (weak comparison, `*` matches) takes precedence over
//!   `If-Modified-Since`, which is only looked at without it (§13.2.2).
//!   Both apply to GET and HEAD only.
//! - `Range` applies to GET only (§14.2), one range: a list of several is
//!   answered with the whole file (allowed, and no multipart/byteranges to
//!   get wrong). A `Range` we cannot parse, or with another unit, is
//!   ignored, as §14.2 allows. `If-Range` that does not match (strong
//!   comparison for a tag, exact date otherwise) means the whole file.
//! - `If-Match` / `If-Unmodified-Since` (412) are not implemented: they
//!   matter for writes, and a file response is a read.

use super::{eq_ignore_case, list_items, trim_ows};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a file's response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// 304: the client's copy is current.
    NotModified,
    /// 200 with the whole file.
    Whole,
    /// 206 with bytes `start..end` (end exclusive, never past the length).
    Partial { start: u64, end: u64 },
    /// 416: the range starts past the end.
    Unsatisfiable,
}

/// A file's validators: its strong entity tag (quoted) and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    pub etag: String,
    pub modified: SystemTime,
}

impl Validators {
    /// From inode, length and modification time in nanoseconds: a file
    /// replaced or rewritten in place gets a new tag even within a second.
    pub fn new(inode: u64, len: u64, modified: SystemTime) -> Validators {
        let ns = modified
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos();
        Validators {
            etag: format!("\"{inode:x}-{len:x}-{ns:x}\""),
            modified,
        }
    }

    /// `Last-Modified`'s value.
    pub fn last_modified(&self) -> String {
        httpdate::fmt_http_date(self.modified)
    }

    /// Whole seconds since the epoch: HTTP dates have no finer grain.
    fn modified_secs(&self) -> u64 {
        self.modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// Decides the response to a request whose headers `find` looks up by
/// lower-case name (`get`: the method is GET; `head`: HEAD) for a file of
/// `len` bytes.
pub fn plan<'a>(
    find: impl Fn(&[u8]) -> Option<&'a [u8]>,
    get: bool,
    head: bool,
    len: u64,
    validators: &Validators,
) -> Plan {
    if get || head {
        if let Some(tags) = find(b"if-none-match") {
            if none_match_fails(tags, &validators.etag) {
                return Plan::NotModified;
            }
        } else if let Some(since) = find(b"if-modified-since").and_then(http_date) {
            if validators.modified_secs() <= since {
                return Plan::NotModified;
            }
        }
    }
    if !get {
        return Plan::Whole;
    }
    let Some(range) = find(b"range") else {
        return Plan::Whole;
    };
    if let Some(if_range) = find(b"if-range") {
        if !if_range_matches(trim_ows(if_range), validators) {
            return Plan::Whole;
        }
    }
    single_range(range, len)
}

/// `If-None-Match`: true if any listed tag matches ours, weakly (§13.1.2).
fn none_match_fails(tags: &[u8], etag: &str) -> bool {
    let ours = etag.as_bytes();
    list_items(tags).any(|tag| tag == b"*" || tag.strip_prefix(b"W/").unwrap_or(tag) == ours)
}

/// `If-Range`: a strong tag equal to ours, or exactly our date (§13.1.5).
fn if_range_matches(value: &[u8], validators: &Validators) -> bool {
    if value.starts_with(b"\"") {
        return value == validators.etag.as_bytes();
    }
    http_date(value) == Some(validators.modified_secs())
}

/// An HTTP date as whole seconds since the epoch.
fn http_date(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(trim_ows(value)).ok()?;
    let time = httpdate::parse_http_date(text).ok()?;
    time.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// One `bytes=` range against `len` (§14.1.2).
fn single_range(value: &[u8], len: u64) -> Plan {
    let value = trim_ows(value);
    let Some(unit_end) = value.iter().position(|&b| b == b'=') else {
        return Plan::Whole;
    };
    if !eq_ignore_case(trim_ows(&value[..unit_end]), b"bytes") {
        return Plan::Whole;
    }
    let mut specs = list_items(&value[unit_end + 1..]).filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return Plan::Whole; // none, or several: the whole file
    };
    let Some(dash) = spec.iter().position(|&b| b == b'-') else {
        return Plan::Whole;
    };
    let (first, last) = (&spec[..dash], &spec[dash + 1..]);
    match (number(first), number(last)) {
        // `-N`: the last N bytes.
        (None, Some(n)) if first.is_empty() => {
            if n == 0 || len == 0 {
                Plan::Unsatisfiable
            } else {
                Plan::Partial {
                    start: len.saturating_sub(n),
                    end: len,
                }
            }
        }
        (Some(start), last_pos) if last.is_empty() || last_pos.is_some() => {
            if let Some(last) = last_pos {
                if last < start {
                    return Plan::Whole; // invalid: ignored
                }
            }
            if start >= len {
                return Plan::Unsatisfiable;
            }
            let end = last_pos.map_or(len, |last| last.saturating_add(1).min(len));
            Plan::Partial { start, end }
        }
        _ => Plan::Whole,
    }
}

/// A run of ASCII digits as a number (`None` if empty, other bytes, or
/// too large).
fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validators() -> Validators {
        Validators::new(7, 100, UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    }

    fn plan_for(headers: &[(&str, &str)], get: bool) -> Plan {
        let pairs: Vec<(&[u8], &[u8])> = headers
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        let find = |name: &[u8]| {
            pairs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        };
        plan(find, get, !get, 100, &validators())
    }

    fn range(value: &str) -> Plan {
        plan_for(&[("Range", value)], true)
    }

    #[test]
    fn single_ranges() {
        assert_eq!(range("bytes=0-9"), Plan::Partial { start: 0, end: 10 });
        assert_eq!(
            range("bytes=90-"),
            Plan::Partial {
                start: 90,
                end: 100
            }
        );
        assert_eq!(
            range("bytes=-10"),
            Plan::Partial {
                start: 90,
                end: 100
            }
        );
        assert_eq!(range("bytes=-1000"), Plan::Partial { start: 0, end: 100 });
        assert_eq!(
            range("bytes=50-1000"),
            Plan::Partial {
                start: 50,
                end: 100
            }
        );
        assert_eq!(range("BYTES = 1-1"), Plan::Partial { start: 1, end: 2 });
    }

    #[test]
    fn unsatisfiable_ignored_and_multiple_ranges() {
        assert_eq!(range("bytes=100-"), Plan::Unsatisfiable);
        assert_eq!(range("bytes=-0"), Plan::Unsatisfiable);
        for ignored in [
            "bytes=5-1",
            "items=0-1",
            "bytes=x-1",
            "bytes=",
            "0-1",
            "bytes=1",
        ] {
            assert_eq!(range(ignored), Plan::Whole, "{ignored}");
        }
        assert_eq!(range("bytes=0-1, 5-6"), Plan::Whole);
        // HEAD: no ranges.
        assert_eq!(plan_for(&[("Range", "bytes=0-1")], false), Plan::Whole);
    }

    #[test]
    fn conditionals() {
        let tag = validators().etag;
        let date = validators().last_modified();
        assert_eq!(
            plan_for(&[("If-None-Match", &tag)], true),
            Plan::NotModified
        );
        let weak = format!("\"x\", W/{tag}");
        assert_eq!(
            plan_for(&[("If-None-Match", &weak)], false),
            Plan::NotModified
        );
        assert_eq!(plan_for(&[("If-None-Match", "*")], true), Plan::NotModified);
        assert_eq!(
            plan_for(&[("If-Modified-Since", &date)], true),
            Plan::NotModified
        );
        let earlier = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(1_600_000_000));
        assert_eq!(
            plan_for(&[("If-Modified-Since", &earlier)], true),
            Plan::Whole
        );
        // If-None-Match that fails wins over a matching date.
        let both = [("If-None-Match", "\"other\""), ("If-Modified-Since", &date)];
        assert_eq!(plan_for(&both, true), Plan::Whole);
        assert_eq!(
            plan_for(&[("If-Modified-Since", "garbage")], true),
            Plan::Whole
        );
    }

    #[test]
    fn if_range_needs_a_strong_match() {
        let tag = validators().etag;
        let with =
            |if_range: &str| plan_for(&[("Range", "bytes=0-0"), ("If-Range", if_range)], true);
        assert_eq!(with(&tag), Plan::Partial { start: 0, end: 1 });
        assert_eq!(with(&format!("W/{tag}")), Plan::Whole);
        assert_eq!(with("\"stale\""), Plan::Whole);
        assert_eq!(
            with(&validators().last_modified()),
            Plan::Partial { start: 0, end: 1 }
        );
    }
}
