//! `[limits]` end to end: timeouts, slow and idle clients, the connection
//! cap. Timeouts are set to 1 s in these sites so the suite stays fast; the
//! worker checks deadlines every 500 ms, so "on time" means within ~1.6 s.

use crate::support::{Client, Response, Server, Site};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One worker with one thread: anything that held a thread would block
/// every other client.
fn single_thread_site(limits: &str) -> Server {
    Site::new(
        &["hello", "testkit"],
        &format!(
            "[server]\nsocketPort = 0\nfixedNumberOfProcesses = 1\nthreadPool = 1\n[limits]\n{limits}"
        ),
    )
    .start()
}

/// Reads one response on a raw stream, `None` on EOF, reset or timeout.
fn try_response(stream: &TcpStream) -> Option<Response> {
    let mut client = Client::from_stream(stream.try_clone().ok()?);
    client.try_read_response(false)
}

#[test]
fn a_slow_client_is_cut_off_at_header_timeout_and_holds_no_thread() {
    let server = single_thread_site("headerTimeout = 1\n");
    let slow = TcpStream::connect(server.addr()).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set timeout");
    let mut writer = slow.try_clone().expect("clone stream");
    let first_byte = Instant::now();
    // One byte every 100 ms, for longer than the timeout: if each byte
    // extended the deadline the connection would outlive the trickle.
    let trickle = std::thread::spawn(move || {
        for byte in b"GET /hello HTTP/1.1\r\nHost: slow\r\nX-Pad: 0123456789\r\n" {
            if writer.write_all(&[*byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    // Meanwhile the only handler thread serves everybody else at once.
    for i in 0..5 {
        let start = Instant::now();
        assert_eq!(server.get(&format!("/hello/c{i}")).status, 200);
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "request {i} waited {:?} behind a slow client",
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let resp = try_response(&slow);
    let cut_after = first_byte.elapsed();
    if let Some(resp) = resp {
        assert_eq!(resp.status, 408);
        assert_eq!(resp.header("Connection"), Some("close"));
    }
    assert!(
        cut_after >= Duration::from_millis(900) && cut_after < Duration::from_millis(2500),
        "cut off after {cut_after:?}, want headerTimeout (1 s) from the first byte"
    );
    trickle.join().expect("trickle thread");
}

#[test]
fn a_stalled_body_gets_408_at_body_timeout() {
    let server = single_thread_site("bodyTimeout = 1\n");
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("send");
    stream
        .write_all(b"POST /testkit/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        .expect("send");
    let start = Instant::now();
    let resp = try_response(&stream).expect("a 408");
    assert_eq!(resp.status, 408);
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn idle_connections_are_closed_quietly_at_their_timeouts() {
    let server = single_thread_site("headerTimeout = 1\nkeepAliveTimeout = 1\n");
    // Connected but silent: closed at headerTimeout, with no 408 (no
    // request was under way).
    let silent = TcpStream::connect(server.addr()).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("send");
    // Idle after a request: closed at keepAliveTimeout.
    let mut idle = server.connect();
    assert_eq!(
        idle.roundtrip("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            .status,
        200
    );
    let start = Instant::now();
    assert_eq!(try_response(&silent), None);
    assert!(idle.closed());
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn max_keep_alive_requests_closes_after_the_last_one() {
    let server = single_thread_site("maxKeepAliveRequests = 3\n");
    let mut client = server.connect();
    for i in 1..=3 {
        let resp = client.roundtrip("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(resp.status, 200);
        let close = resp.header("Connection") == Some("close");
        assert_eq!(close, i == 3, "request {i}");
    }
    assert!(client.closed());
}

/// Raises this process's open-file limit (the server inherits it): 2,000
/// connections need 4,000 descriptors on loopback, more than a default
/// soft limit of 1,024.
fn raise_nofile(want: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft >= want {
        return;
    }
    // Raising the hard limit needs root (CI runs as root); else take what
    // the hard limit allows.
    if setrlimit(Resource::RLIMIT_NOFILE, want, want.max(hard)).is_err() {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.min(want), hard);
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    assert!(soft >= want, "need {want} open files, the limit is {soft}");
}

#[test]
fn two_thousand_idle_keep_alive_connections_do_not_delay_other_clients() {
    const IDLE: usize = 2000;
    raise_nofile(8192);
    let server = Site::new(&["hello"], "").start();
    let started = Instant::now();
    let idle: Vec<TcpStream> = (0..IDLE)
        .map(|_| TcpStream::connect(server.addr()).expect("connect"))
        .collect();
    // One request each, all sent before any answer is read, so they are
    // served in parallel; then every connection sits idle, kept alive.
    for mut stream in &idle {
        stream
            .write_all(b"GET /hello HTTP/1.1\r\nHost: idle\r\n\r\n")
            .expect("send");
    }
    for stream in &idle {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("send");
        let resp = try_response(stream).expect("a response");
        assert_eq!(resp.status, 200);
    }
    let setup = started.elapsed();
    let mut worst = Duration::ZERO;
    for i in 0..50 {
        let start = Instant::now();
        assert_eq!(server.get(&format!("/hello/n{i}")).status, 200);
        worst = worst.max(start.elapsed());
    }
    assert!(
        worst < Duration::from_millis(500),
        "with {IDLE} idle connections open a request took {worst:?}"
    );
    // The idle ones are still open and served.
    for mut stream in [&idle[0], &idle[IDLE - 1]] {
        stream
            .write_all(b"GET /hello/again HTTP/1.1\r\nHost: idle\r\n\r\n")
            .expect("send");
        assert_eq!(
            try_response(stream).expect("served").text(),
            "Hello, again!"
        );
    }
    assert!(setup < Duration::from_secs(20), "setup took {setup:?}");
}

#[test]
fn at_max_connections_a_worker_leaves_new_ones_in_the_backlog() {
    let server = single_thread_site("maxConnectionsPerProcess = 2\n");
    let mut a = server.connect();
    let mut b = server.connect();
    for client in [&mut a, &mut b] {
        assert_eq!(
            client
                .roundtrip("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
                .status,
            200
        );
    }
    // The third connects (the kernel completes the handshake into the
    // backlog) but is neither served nor dropped while both slots are taken.
    let mut c = TcpStream::connect(server.addr()).expect("connect");
    c.write_all(b"GET /hello/third HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    c.set_read_timeout(Some(Duration::from_millis(700)))
        .expect("send");
    let mut byte = [0u8; 1];
    match c.read(&mut byte) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("the third connection was not left waiting: {other:?}"),
    }
    // A slot frees: the worker takes the third from the backlog.
    drop(a);
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set timeout");
    let resp = try_response(&c).expect("served once a slot is free");
    assert_eq!(resp.text(), "Hello, third!");
    assert!(!server.log().contains("closing a new connection"));
    drop(b);
}

/// Reads `stream` to its end in `chunk`-byte reads with `pause` between
/// them; the number of bytes read before EOF or an error.
fn read_slowly(mut stream: &TcpStream, chunk: usize, pause: Duration) -> usize {
    let mut buf = vec![0u8; chunk];
    let mut total = 0;
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return total,
            Ok(n) => total += n,
        }
        std::thread::sleep(pause);
    }
}

/// A small receive buffer, so the server's writes stall as soon as the
/// client stops reading (loopback buffers are otherwise megabytes).
fn small_buffer_stream(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.addr()).expect("connect");
    nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::RcvBuf, &4096)
        .expect("SO_RCVBUF");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream
}

#[test]
fn send_timeout_is_time_without_progress_so_a_steady_slow_reader_gets_everything() {
    let server =
        single_thread_site("sendTimeout = 1\nkeepAliveTimeout = 1\nmaxBodyBytes = 8388608\n");
    // 384 KiB read 4 KiB at a time with 20 ms pauses: at least ~2 s in all
    // (twice sendTimeout), never a second without progress.
    let body = vec![b'x'; 384 << 10];
    let mut stream = small_buffer_stream(&server);
    let head = format!(
        "POST /testkit/echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("head");
    stream.write_all(&body).expect("body");
    let started = Instant::now();
    let read = read_slowly(&stream, 4 << 10, Duration::from_millis(20));
    eprintln!(
        "slow reader: {read} bytes in {} ms",
        started.elapsed().as_millis()
    );
    assert!(
        started.elapsed() > Duration::from_secs(1),
        "not slow enough to test"
    );
    assert!(read > body.len(), "cut after {read} bytes");
}

#[test]
fn a_client_that_never_reads_is_cut_at_send_timeout_and_delays_no_one() {
    let server =
        single_thread_site("sendTimeout = 1\nkeepAliveTimeout = 30\nmaxBodyBytes = 8388608\n");
    let body = vec![b'x'; 4 << 20];
    let mut stream = small_buffer_stream(&server);
    let head = format!(
        "POST /testkit/echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("head");
    stream.write_all(&body).expect("body");
    let sent = Instant::now();
    // Meanwhile another client is served by the same (only) thread.
    assert_eq!(server.get("/hello").text(), "Hello, World!");
    // Not reading for well over sendTimeout: the server gives up on us.
    std::thread::sleep(Duration::from_millis(2500));
    let read = read_slowly(&stream, 1 << 20, Duration::ZERO);
    eprintln!(
        "never-reading client: cut after {read} bytes, {} ms",
        sent.elapsed().as_millis()
    );
    assert!(read < body.len(), "the whole response was delivered");
    assert!(sent.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_request_and_its_fin_in_one_burst_are_answered_and_closed_at_once() {
    let server = single_thread_site("keepAliveTimeout = 10\n");
    for trial in 0..50 {
        let mut stream = TcpStream::connect(server.addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        stream
            .write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("send");
        stream.shutdown(std::net::Shutdown::Write).expect("FIN");
        let sent = Instant::now();
        let mut all = Vec::new();
        let _ = stream.read_to_end(&mut all);
        let text = String::from_utf8_lossy(&all);
        assert!(text.ends_with("Hello, World!"), "trial {trial}: {text:?}");
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "trial {trial}: closed only after {:?}",
            sent.elapsed()
        );
    }
}

#[test]
fn the_largest_max_body_bytes_still_accepts_ordinary_bodies() {
    let server = single_thread_site("maxBodyBytes = 18446744073709551615\n");
    let body = vec![b'y'; 100_000];
    let mut client = server.connect();
    let head = format!(
        "POST /testkit/echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    client.send(head.as_bytes());
    client.send(&body);
    let resp = client.read_response(false);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), body.len());
}
