//! What an attacker or an unlucky operator does to the supervisor: a
//! stream of requests that crash their worker, a stop with a long request
//! in flight, a request stuck past `requestTimeout`. Each must leave the
//! host serving (or, for a stop, refusing at once), and nothing that was
//! accepted may be lost.

use crate::load::{Load, Mode};
use crate::support::{eventually, Client, Signal, Site};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A site of `processes` workers of `threads` threads with testkit, which
/// announces its sleeping handlers in `started.txt`.
fn site(processes: usize, threads: usize, extra: &str) -> Site {
    Site::new(
        &["testkit"],
        &format!(
            "[server]\nsocketPort = 0\nfixedNumberOfProcesses = {processes}\n\
             threadPool = {threads}\n{extra}"
        ),
    )
    .with_started_file()
}

#[test]
fn a_stream_of_crashing_requests_never_leaves_the_host_without_workers() {
    let _alone = crate::support::exclusive();
    let server = site(2, 2, "").start();
    let storm = Instant::now();
    let mut aborted = 0;
    // One crashing request every 100 ms for 4 s: with exponential backoff
    // on every death the host ran out of workers after ~20 of these.
    while storm.elapsed() < Duration::from_secs(4) {
        if let Ok(mut c) = Client::try_connect(server.addr()) {
            let _ = c.try_send(b"GET /testkit/abort HTTP/1.1\r\nHost: t\r\n\r\n");
            if c.try_read_response(false).is_none() {
                aborted += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(aborted >= 20, "only {aborted} requests crashed a worker");
    let calm = Instant::now();
    eventually(Duration::from_secs(2), "a 200 after the storm", || {
        server.get("/testkit/pid").status == 200
    });
    let first_200 = calm.elapsed();
    eventually(Duration::from_secs(2), "two workers again", || {
        server.worker_pids().len() == 2
    });
    eprintln!(
        "crash storm: {aborted} aborts in 4 s; first 200 {} ms after the last",
        first_200.as_millis()
    );
    let log = server.log();
    assert!(
        log.contains("GET /testkit/abort"),
        "the crashing route is not named in the log:\n{log}"
    );
    assert!(!log.contains("not respawning"), "{log}");
}

#[test]
fn a_graceful_stop_refuses_new_connections_at_once_and_serves_the_queued_ones() {
    // One worker that takes one connection at a time: while that one
    // sleeps in a handler, new connections wait in the kernel's accept
    // queue (the gate leaves them there rather than accept and drop).
    let mut server = site(
        1,
        2,
        "gracefulTimeout = 10\n[limits]\nmaxConnectionsPerProcess = 1\n",
    )
    .start();
    let mut slow = server.connect();
    slow.send(b"GET /testkit/sleep/1500 HTTP/1.1\r\nHost: t\r\n\r\n");
    server.site.wait_started(1);
    // Queued before the stop: accepted by the kernel, not yet by drupe.
    let mut queued: Vec<Client> = (0..3)
        .map(|_| {
            let mut c = server.connect();
            c.send(b"GET /testkit/pid HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            c
        })
        .collect();
    let term = Instant::now();
    server.signal(Signal::SIGTERM);
    // New connections are refused promptly, not left hanging.
    let refused_after = refused_after(&server, term);
    eprintln!(
        "graceful stop: new connections refused {} ms after TERM",
        refused_after.as_millis()
    );
    assert!(
        refused_after < Duration::from_millis(1000),
        "refused only {refused_after:?} after TERM"
    );
    assert_eq!(slow.read_response(false).text(), "slept 1500");
    for c in &mut queued {
        let resp = c
            .try_read_response(false)
            .expect("a connection queued before TERM was dropped");
        assert_eq!(resp.status, 200);
    }
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
}

/// Waits up to 5 s for a new connection to be refused; returns how long
/// after `since` that happened.
fn refused_after(server: &crate::support::Server, since: Instant) -> Duration {
    while since.elapsed() < Duration::from_secs(5) {
        match TcpStream::connect_timeout(&server.addr(), Duration::from_millis(200)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return since.elapsed();
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    panic!("a new connection was never refused")
}

#[test]
fn a_graceful_stop_refuses_new_connections_even_with_every_thread_in_a_handler() {
    // Nobody waits on the epoll set, so the worker's monitor thread must
    // hear the TERM.
    let mut server = site(1, 2, "gracefulTimeout = 10\n").start();
    let mut slow: Vec<Client> = (0..2)
        .map(|_| {
            let mut c = server.connect();
            c.send(b"GET /testkit/sleep/1500 HTTP/1.1\r\nHost: t\r\n\r\n");
            c
        })
        .collect();
    server.site.wait_started(2);
    let term = Instant::now();
    server.signal(Signal::SIGTERM);
    let refused = refused_after(&server, term);
    eprintln!(
        "graceful stop, every thread busy: refused {} ms after TERM",
        refused.as_millis()
    );
    assert!(refused < Duration::from_millis(1000), "{refused:?}");
    for c in &mut slow {
        assert_eq!(c.read_response(false).text(), "slept 1500");
    }
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn request_timeout_answers_504_and_cuts_no_other_request() {
    let _alone = crate::support::exclusive();
    let server = site(1, 8, "requestTimeout = 1\ngracefulTimeout = 5\n").start();
    // Innocent requests, each well inside requestTimeout, all the time.
    let load = Load::start(
        server.addr(),
        "/testkit/sleep/200",
        &[Mode::KeepAlive, Mode::KeepAlive, Mode::Close, Mode::Close],
    );
    let mut stuck = Vec::new();
    for _ in 0..3 {
        let mut c = server.connect();
        c.send(b"GET /testkit/sleep/30000 HTTP/1.1\r\nHost: t\r\n\r\n");
        let resp = c
            .try_read_response(false)
            .expect("the stuck request got no answer");
        stuck.push(resp.status);
    }
    let tally = load.finish();
    eprintln!(
        "requestTimeout: stuck answered {stuck:?}; others {:?}, {} retried, {} failed",
        tally.answers,
        tally.retried,
        tally.failures.len()
    );
    assert_eq!(stuck, [504, 504, 504]);
    assert!(tally.failures.is_empty(), "{:?}", tally.failures);
    assert_eq!(tally.retried, 0, "keep-alive connections were cut");
    assert_eq!(
        tally.answers.keys().collect::<Vec<_>>(),
        ["200 slept 200"],
        "{:?}",
        tally.answers
    );
    let log = server.log();
    assert!(log.contains("GET /testkit/sleep/30000"), "{log}");
}
