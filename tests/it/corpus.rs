//! The raw-request corpus in `tests/requests/` against the real server.
//!
//! Each `.http` file is one request, named `STATUS-what-it-is.http`
//! (format in `tests/requests/README.md`). `valid/` holds requests after
//! which the connection stays usable, `invalid/` ones the HTTP layer
//! refuses, closing the connection. Every fixture is sent three ways, each
//! on a new connection: whole in one write; split into writes of 1–7 bytes
//! with pauses, so the server sees every kind of partial head and body; and
//! pipelined between two ordinary requests, which shows that a valid
//! request leaves the stream in step and that nothing after an invalid one
//! is served.

use crate::support::{root, Client, Response, Server, Site};
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// The limits the fixtures are written against (see the corpus README).
const LIMITS: &str = "[limits]\nmaxRequestLine = 256\nmaxHeaderBytes = 1024\n\
                      maxHeaders = 16\nmaxBodyBytes = 64\n";

const BEFORE: &[u8] = b"GET /hello HTTP/1.1\r\nHost: corpus\r\n\r\n";
const AFTER: &[u8] = b"GET /hello/after HTTP/1.1\r\nHost: corpus\r\n\r\n";

struct Fixture {
    name: String,
    valid: bool,
    status: u16,
    /// `# body:` — the expected response body, if the file says.
    body: Option<Vec<u8>>,
    raw: Vec<u8>,
}

impl Fixture {
    fn head_request(&self) -> bool {
        self.raw.starts_with(b"HEAD ")
    }
}

/// `\r`, `\n`, `\t`, `\0`, `\\` and `\xHH`; anything else after a backslash
/// is a mistake in the fixture.
fn unescape(text: &str, file: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let (byte, len) = match bytes.get(i + 1) {
            Some(b'r') => (b'\r', 2),
            Some(b'n') => (b'\n', 2),
            Some(b't') => (b'\t', 2),
            Some(b'0') => (0, 2),
            Some(b'\\') => (b'\\', 2),
            Some(b'x') => {
                let hex = text.get(i + 2..i + 4).unwrap_or_default();
                let byte = u8::from_str_radix(hex, 16)
                    .unwrap_or_else(|_| panic!("{file}: bad \\x escape at byte {i}"));
                (byte, 4)
            }
            other => panic!(
                "{file}: unknown escape \\{:?} at byte {i}",
                other.map(|b| *b as char)
            ),
        };
        out.push(byte);
        i += len;
    }
    out
}

fn load(dir: &str) -> Vec<Fixture> {
    let path = root().join("tests/requests").join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "http"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|file| parse_fixture(file, dir == "valid"))
        .collect()
}

fn parse_fixture(file: &Path, valid: bool) -> Fixture {
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("UTF-8 file name")
        .to_owned();
    let status: u16 = name
        .get(..3)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{name}: the file name must start with the expected status"));
    let text = std::fs::read_to_string(file).expect("read fixture");
    let mut body = None;
    let mut request = String::new();
    let mut in_comments = true;
    for line in text.lines() {
        if in_comments && line.starts_with('#') {
            if let Some(expected) = line.strip_prefix("# body:") {
                body = Some(unescape(
                    expected.strip_prefix(' ').unwrap_or(expected),
                    &name,
                ));
            }
            continue;
        }
        // Line breaks in the file are for reading only: the bytes on the
        // wire are spelled out with escapes.
        in_comments = false;
        request.push_str(line);
    }
    Fixture {
        raw: unescape(&request, &name),
        name,
        valid,
        status,
        body,
    }
}

fn corpus() -> Vec<Fixture> {
    let mut all = load("valid");
    all.extend(load("invalid"));
    all
}

fn server() -> Server {
    Site::new(&["hello", "testkit"], LIMITS).start()
}

fn connect(server: &Server) -> (TcpStream, Client) {
    let stream = TcpStream::connect(server.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    let client = Client::from_stream(stream.try_clone().expect("clone"));
    (stream, client)
}

/// The next final response, skipping any `100 Continue`.
fn final_response(client: &mut Client, head_request: bool) -> Result<Response, String> {
    loop {
        match client.try_read_response(head_request) {
            Some(r) if r.status == 100 => continue,
            Some(r) => return Ok(r),
            None => return Err("no response: connection closed".to_owned()),
        }
    }
}

/// Checks the fixture's own response; `Ok(true)` if the connection is to
/// close after it.
fn check(f: &Fixture, resp: &Response) -> Result<bool, String> {
    if resp.status != f.status {
        return Err(format!("status {} (body {:?})", resp.status, resp.text()));
    }
    if let Some(body) = &f.body {
        if &resp.body != body {
            return Err(format!(
                "body {:?}, want {:?}",
                resp.text(),
                String::from_utf8_lossy(body)
            ));
        }
    }
    let close = resp.header("Connection") == Some("close");
    if !f.valid && !close {
        return Err("an invalid request must close the connection".to_owned());
    }
    Ok(close)
}

fn expect_closed(client: &mut Client) -> Result<(), String> {
    if client.closed() {
        Ok(())
    } else {
        Err("the connection was not closed".to_owned())
    }
}

fn whole(server: &Server, f: &Fixture) -> Result<(), String> {
    let (mut stream, mut client) = connect(server);
    stream.write_all(&f.raw).map_err(|e| format!("send: {e}"))?;
    let resp = final_response(&mut client, f.head_request())?;
    if check(f, &resp)? {
        expect_closed(&mut client)?;
    }
    Ok(())
}

fn split(server: &Server, f: &Fixture) -> Result<(), String> {
    let (mut stream, mut client) = connect(server);
    let mut at = 0;
    for size in [1, 3, 2, 7, 1, 5, 4, 1, 6].into_iter().cycle() {
        if at >= f.raw.len() {
            break;
        }
        let end = (at + size).min(f.raw.len());
        // The server may answer an invalid request before it has all of
        // it; it keeps reading (lingering close), so writes still succeed.
        stream
            .write_all(&f.raw[at..end])
            .map_err(|e| format!("send at byte {at}: {e}"))?;
        at = end;
        std::thread::sleep(Duration::from_micros(500));
    }
    let resp = final_response(&mut client, f.head_request())?;
    if check(f, &resp)? {
        expect_closed(&mut client)?;
    }
    Ok(())
}

/// `close_expected`: the fixture's response closes the connection (from
/// the whole run), so no request is sent after it unless it is invalid —
/// a client that asked to close may not send more (RFC 9112 §9.6).
fn pipelined(server: &Server, f: &Fixture, client_closes: bool) -> Result<(), String> {
    let (mut stream, mut client) = connect(server);
    let mut bytes = BEFORE.to_vec();
    bytes.extend_from_slice(&f.raw);
    if !client_closes {
        bytes.extend_from_slice(AFTER);
    }
    stream.write_all(&bytes).map_err(|e| format!("send: {e}"))?;
    let first = final_response(&mut client, false)?;
    if first.text() != "Hello, World!" {
        return Err(format!(
            "the request before got {} {:?}",
            first.status,
            first.text()
        ));
    }
    let resp = final_response(&mut client, f.head_request())?;
    if check(f, &resp)? {
        return expect_closed(&mut client).map_err(|e| format!("{e} (and a request followed)"));
    }
    let after =
        final_response(&mut client, false).map_err(|e| format!("the request after: {e}"))?;
    if after.text() != "Hello, after!" {
        return Err(format!(
            "the request after got {} {:?}",
            after.status,
            after.text()
        ));
    }
    Ok(())
}

/// Runs `way` over the corpus and reports every failure at once.
fn run_all(way: &str, mut run: impl FnMut(&Server, &Fixture) -> Result<(), String>) {
    let server = server();
    let failures: Vec<String> = corpus()
        .iter()
        .filter_map(|f| {
            let dir = if f.valid { "valid" } else { "invalid" };
            run(&server, f)
                .err()
                .map(|e| format!("{dir}/{}.http: {e}", f.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of the corpus failed sent {way}:\n{}\n--- server log:\n{}",
        failures.len(),
        failures.join("\n"),
        server.log()
    );
}

#[test]
fn the_corpus_is_large_and_well_formed() {
    let valid = load("valid");
    let invalid = load("invalid");
    assert!(
        valid.len() + invalid.len() >= 80,
        "{} + {}",
        valid.len(),
        invalid.len()
    );
    for f in &valid {
        assert!(!f.raw.is_empty(), "{}", f.name);
    }
    for f in &invalid {
        assert!(
            (400..=599).contains(&f.status),
            "{}: invalid means 4xx/5xx",
            f.name
        );
    }
}

#[test]
fn each_request_sent_whole() {
    run_all("whole", whole);
}

#[test]
fn each_request_sent_in_tiny_pieces() {
    run_all("in tiny pieces", split);
}

#[test]
fn each_request_pipelined_between_two_others() {
    run_all("pipelined", |server, f| {
        // Whether the fixture's own response closes: from a whole run.
        let (mut stream, mut client) = connect(server);
        stream.write_all(&f.raw).map_err(|e| format!("send: {e}"))?;
        let client_closes = f.valid && check(f, &final_response(&mut client, f.head_request())?)?;
        pipelined(server, f, client_closes)
    });
}
