//! The access log: one line per request in Combined Log Format, followed by
//! the request time in microseconds and the worker's pid.
//!
//! ```text
//! 127.0.0.1 - - [27/Nov/2026:22:10:37 +0000] "GET /hello HTTP/1.1" 200 13 "-" "curl/8.0" 41 12345
//! ```
//!
//! Lines are formatted into a per-thread buffer and written with one
//! `write(2)` of whole lines on an `O_APPEND` file when the thread goes back
//! to waiting for events (or the buffer fills), so lines from several
//! threads and processes never interleave and a busy worker does not pay a
//! system call per request. `[log] accessLog = off` (the default) skips all
//! of it.
//!
//! Requests the HTTP layer refuses (400, 408, 413, 414, 431, 505, …) are
//! logged too, as nginx does: with their request line if the head was
//! parsed, else with the first line as it came (escaped, at most
//! [`RAW_LINE_MAX`] bytes), or `-` if there is none; referer and user
//! agent are then `-`. A connection that closes without sending anything
//! is no request and is not logged.
//!
//! The file goes through a [`LogSink`], like the error log, so USR1 reopens
//! it too: after logrotate renames the file, the next batch of each thread
//! goes to a fresh file at the configured path. A line is in a thread's
//! buffer or already written, never both, so a rotation loses and repeats
//! no line.

use crate::config::LogTarget;
use crate::http::{self, Head};
use crate::logging::LogSink;
use std::cell::RefCell;
use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Flush before the buffer grows past this.
const FLUSH_AT: usize = 32 * 1024;
/// Most bytes of an unparsed request line that are logged: enough to
/// recognise it, not enough for a 414 to flood the log.
pub const RAW_LINE_MAX: usize = 1024;

/// Where access log lines go: a reopenable sink (a file or stderr).
#[derive(Debug)]
pub struct AccessLog {
    sink: LogSink,
    /// ` <pid>\n`, the end of every line: the worker's pid, read once
    /// (the log is opened in the worker, after the fork), where a
    /// `getpid(2)` per line would cost a system call per request.
    tail: Vec<u8>,
}

impl AccessLog {
    /// Opens the log `[log] accessLog` names; `None` when it is off.
    pub fn open(target: &LogTarget) -> io::Result<Option<AccessLog>> {
        Ok(match target {
            LogTarget::Off => None,
            target => {
                let mut tail = vec![b' '];
                http::push_decimal(&mut tail, u64::from(std::process::id()));
                tail.push(b'\n');
                Some(AccessLog {
                    sink: LogSink::open(target, "accessLog")?,
                    tail,
                })
            }
        })
    }

    fn write_all(&self, bytes: &[u8]) {
        // One write of whole lines; a failure (disk full) must not take the
        // worker down, and there is nowhere better to report it.
        let _ = self.sink.write_whole(bytes);
    }
}

/// What the log needs to know about one exchange.
#[derive(Debug)]
pub struct Entry<'a> {
    pub peer: &'a str,
    pub request: Request<'a>,
    pub status: u16,
    pub body_bytes: usize,
    pub elapsed: Duration,
}

/// What is known of the request.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    /// A parsed head, and the buffer its ranges point into.
    Parsed { head: &'a Head, buf: &'a [u8] },
    /// Refused before its head was parsed: the bytes received so far.
    Unparsed(&'a [u8]),
}

struct Buffer {
    lines: Vec<u8>,
    /// The formatted `[dd/Mon/yyyy:HH:MM:SS +0000]` of `second`.
    stamp: Vec<u8>,
    second: u64,
}

thread_local! {
    static BUFFER: RefCell<Buffer> = const {
        RefCell::new(Buffer { lines: Vec::new(), stamp: Vec::new(), second: u64::MAX })
    };
}

/// Formats `entry` into this thread's buffer, flushing it if it is full.
/// Straight into the buffer, with no `fmt` and no allocation: a line
/// should cost a few percent of a request, not a fifth.
pub fn record(log: &AccessLog, entry: &Entry<'_>) {
    BUFFER.with(|buffer| {
        let buffer = &mut *buffer.borrow_mut();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        if now != buffer.second {
            buffer.second = now;
            buffer.stamp.clear();
            clf_time(now, &mut buffer.stamp);
        }
        let out = &mut buffer.lines;
        out.extend_from_slice(client_ip(entry.peer).as_bytes());
        out.extend_from_slice(b" - - ");
        out.extend_from_slice(&buffer.stamp);
        out.extend_from_slice(b" \"");
        let (referer, agent) = match entry.request {
            Request::Parsed { head, buf } => {
                escaped(out, head.method(buf));
                out.push(b' ');
                escaped(out, head.target(buf));
                out.extend_from_slice(if head.http_minor == 0 {
                    b" HTTP/1.0"
                } else {
                    b" HTTP/1.1"
                });
                referer_and_agent(head, buf)
            }
            Request::Unparsed(bytes) => {
                match http::first_line(bytes) {
                    [] => out.push(b'-'),
                    line => escaped(out, &line[..line.len().min(RAW_LINE_MAX)]),
                }
                (None, None)
            }
        };
        out.extend_from_slice(b"\" ");
        http::push_decimal(out, u64::from(entry.status));
        out.push(b' ');
        http::push_decimal(out, entry.body_bytes as u64);
        out.extend_from_slice(b" \"");
        escaped(out, referer.unwrap_or(b"-"));
        out.extend_from_slice(b"\" \"");
        escaped(out, agent.unwrap_or(b"-"));
        out.extend_from_slice(b"\" ");
        let micros = u64::try_from(entry.elapsed.as_micros()).unwrap_or(u64::MAX);
        http::push_decimal(out, micros);
        out.extend_from_slice(&log.tail);
        if out.len() >= FLUSH_AT {
            log.write_all(out);
            out.clear();
        }
    });
}

/// The address part of `ip:port` or `[ip6]:port`.
fn client_ip(peer: &str) -> &str {
    // The port is a few bytes from the end: a byte scan, not a str search.
    let ip = match peer.bytes().rposition(|b| b == b':') {
        Some(colon) => &peer[..colon],
        None => peer,
    };
    ip.strip_prefix('[')
        .and_then(|ip| ip.strip_suffix(']'))
        .unwrap_or(ip)
}

/// The `Referer` and `User-Agent` fields, found in one pass over the head.
fn referer_and_agent<'a>(head: &'a Head, buf: &'a [u8]) -> (Option<&'a [u8]>, Option<&'a [u8]>) {
    let (mut referer, mut agent) = (None, None);
    for (name, value) in head.headers(buf) {
        if referer.is_none() && name.eq_ignore_ascii_case(b"referer") {
            referer = Some(value);
        } else if agent.is_none() && name.eq_ignore_ascii_case(b"user-agent") {
            agent = Some(value);
        }
    }
    (referer, agent)
}

/// Writes out this thread's buffered lines.
pub fn flush(log: &AccessLog) {
    BUFFER.with(|buffer| {
        let lines = &mut buffer.borrow_mut().lines;
        if !lines.is_empty() {
            log.write_all(lines);
            lines.clear();
        }
    });
}

/// Copies client-controlled bytes into a log line so that they can never
/// forge a line or a field: quotes, backslashes, control and non-ASCII bytes
/// become `\xHH`. Runs of plain bytes are copied whole.
fn escaped(out: &mut Vec<u8>, mut bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let plain = |b: &u8| *b != b'"' && *b != b'\\' && (0x20..0x7f).contains(b);
    while let Some(i) = bytes.iter().position(|b| !plain(b)) {
        let b = bytes[i];
        out.extend_from_slice(&bytes[..i]);
        out.extend_from_slice(&[
            b'\\',
            b'x',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 15)],
        ]);
        bytes = &bytes[i + 1..];
    }
    out.extend_from_slice(bytes);
}

/// Appends `[27/Nov/2026:22:10:37 +0000]` for a Unix time in seconds (UTC).
fn clf_time(unix: u64, out: &mut Vec<u8>) {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let Some(t) = i64::try_from(unix)
        .ok()
        .and_then(|unix| time::OffsetDateTime::from_unix_timestamp(unix).ok())
    else {
        out.extend_from_slice(b"[-]");
        return;
    };
    let two = |out: &mut Vec<u8>, n: u8| out.extend_from_slice(&[b'0' + n / 10, b'0' + n % 10]);
    out.push(b'[');
    two(out, t.day());
    out.push(b'/');
    out.extend_from_slice(MONTHS[usize::from(u8::from(t.month())) - 1]);
    out.push(b'/');
    // Four digits from year 1000 to 9999, all the time crate represents
    // by default after 1970.
    let year = t.year().unsigned_abs();
    two(out, (year / 100 % 100) as u8);
    two(out, (year % 100) as u8);
    out.push(b':');
    two(out, t.hour());
    out.push(b':');
    two(out, t.minute());
    out.push(b':');
    two(out, t.second());
    out.extend_from_slice(b" +0000]");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::http::HeadLimits;

    #[test]
    fn formats_combined_log_format_with_time_and_pid() {
        let raw =
            b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: t\"est\r\nReferer: http://r/\r\n\r\n";
        let mut head = Head::new();
        head.parse(raw, &HeadLimits::default()).unwrap().unwrap();
        let dir = tempfile_dir();
        let path = dir.join("access.log");
        let log = AccessLog::open(&LogTarget::File(path.clone()))
            .unwrap()
            .unwrap();
        let entry = Entry {
            peer: "127.0.0.1:5000",
            request: Request::Parsed {
                head: &head,
                buf: raw,
            },
            status: 200,
            body_bytes: 13,
            elapsed: Duration::from_micros(42),
        };
        record(&log, &entry);
        flush(&log);
        let line = std::fs::read_to_string(&path).unwrap();
        let expected_tail = format!(
            "\"GET /a?b=1 HTTP/1.1\" 200 13 \"http://r/\" \"t\\x22est\" 42 {}\n",
            std::process::id()
        );
        assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
        assert!(line.ends_with(&expected_tail), "{line}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_request_refused_before_its_head_was_parsed_logs_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let log = AccessLog::open(&LogTarget::File(path.clone()))
            .unwrap()
            .unwrap();
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(2 * RAW_LINE_MAX));
        for raw in [&b"\r\nGAR\"BAGE\r\n\r\n"[..], b"", long.as_bytes()] {
            record(
                &log,
                &Entry {
                    peer: "[::1]:5000",
                    request: Request::Unparsed(raw),
                    status: 400,
                    body_bytes: 12,
                    elapsed: Duration::from_micros(7),
                },
            );
        }
        flush(&log);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("::1 - - ["), "{}", lines[0]);
        assert!(
            lines[0].contains("] \"GAR\\x22BAGE\" 400 12 \"-\" \"-\" 7 "),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].contains("] \"-\" 400 12 \"-\" \"-\" 7 "),
            "{}",
            lines[1]
        );
        let logged = lines[2].split('"').nth(1).unwrap_or_default();
        assert_eq!(logged.len(), RAW_LINE_MAX, "{}", lines[2]);
    }

    #[test]
    fn clf_time_is_utc() {
        let clf = |unix| {
            let mut out = Vec::new();
            clf_time(unix, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(clf(0), "[01/Jan/1970:00:00:00 +0000]");
        assert_eq!(clf(1_795_817_437), "[27/Nov/2026:22:10:37 +0000]");
    }

    #[test]
    fn control_bytes_cannot_forge_lines() {
        let mut out = Vec::new();
        escaped(&mut out, b"a\nb\"c\\\x7f\xc3");
        assert_eq!(out, b"a\\x0Ab\\x22c\\x5C\\x7F\\xC3");
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("drupe-access-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
