//! The host's own pages under `/_drupe/` and the drain before a stop, on
//! one host with no balancer: `GET /_drupe/health` is 200 while the host
//! serves and 503 from the first TERM on; with `drainPeriod` the host
//! serves everything else as usual for that long, then stops gracefully;
//! a second TERM or INT during the drain, or a QUIT, stops at once.

use crate::support::{eventually, Server, Signal, Site};
use std::time::{Duration, Instant};

fn start(drain_seconds: u64, extra: &str) -> Server {
    Site::new(
        &["hello", "testkit"],
        &format!(
            "[server]\nsocketPort = 0\nfixedNumberOfProcesses = 2\nthreadPool = 2\n\
             drainPeriod = {drain_seconds}\n{extra}"
        ),
    )
    .with_started_file()
    .start()
}

fn health(server: &Server) -> (u16, String) {
    let resp = server.get("/_drupe/health");
    (resp.status, resp.text())
}

#[test]
fn health_is_ok_then_503_through_the_drain_while_everything_else_is_served() {
    let mut server = start(1, "");
    assert_eq!(health(&server), (200, "ok".to_owned()));
    let resp = server.get("/_drupe/health");
    assert_eq!(resp.header("Cache-Control"), Some("no-store"));
    let workers = server.worker_pids();
    let term = Instant::now();
    server.signal(Signal::SIGTERM);
    eventually(Duration::from_secs(2), "the health check to fail", || {
        health(&server) == (503, "draining".to_owned())
    });
    let failing = term.elapsed();
    // Still serving during the drain, on the same workers.
    for _ in 0..10 {
        assert_eq!(server.get("/hello").text(), "Hello, World!");
        let pid: i32 = server.get("/testkit/pid").text().parse().expect("pid");
        assert!(workers.contains(&pid), "{pid} not in {workers:?}");
    }
    assert!(
        server.child.try_wait().expect("wait").is_none(),
        "the master drains before it stops"
    );
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    let exited = term.elapsed();
    eprintln!(
        "drainPeriod = 1: health failing after {}ms, master exited after {}ms",
        failing.as_millis(),
        exited.as_millis()
    );
    assert!(failing < Duration::from_millis(1000), "{failing:?}");
    assert!(
        exited >= Duration::from_secs(1),
        "stopped before the drain was over"
    );
    assert!(exited < Duration::from_secs(4), "{exited:?}");
    let log = server.log();
    assert!(log.contains("SIGTERM: draining for 1s"), "{log}");
    assert!(log.contains("drain over: graceful stop"), "{log}");
}

#[test]
fn without_a_drain_the_health_check_fails_during_the_graceful_stop() {
    let mut server = start(0, "");
    let mut kept = server.connect();
    let get = "GET /_drupe/health HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_eq!(kept.roundtrip(get).status, 200);
    let mut slow = server.connect();
    slow.send(b"GET /testkit/sleep/1000 HTTP/1.1\r\nHost: t\r\n\r\n");
    server.site.wait_started(1);
    server.signal(Signal::SIGTERM);
    eventually(Duration::from_secs(2), "the stop to begin", || {
        server.log().contains("SIGTERM")
    });
    // An open connection is still answered during the graceful stop: the
    // host is going away, and says so.
    assert_eq!(kept.roundtrip(get).status, 503);
    assert_eq!(slow.read_response(false).status, 200);
    assert_eq!(server.wait_exit(Duration::from_secs(5)), Some(0));
}

#[test]
fn a_second_term_or_int_during_the_drain_and_quit_stop_at_once() {
    for signals in [
        [Signal::SIGTERM, Signal::SIGTERM],
        [Signal::SIGINT, Signal::SIGTERM],
        [Signal::SIGTERM, Signal::SIGINT],
        [Signal::SIGTERM, Signal::SIGQUIT],
    ] {
        let mut server = start(30, "");
        let mut slow = server.connect();
        slow.send(b"GET /testkit/sleep/5000 HTTP/1.1\r\nHost: t\r\n\r\n");
        server.site.wait_started(1);
        server.signal(signals[0]);
        eventually(Duration::from_secs(2), "the drain to begin", || {
            health(&server).0 == 503
        });
        let second = Instant::now();
        server.signal(signals[1]);
        assert_eq!(
            server.wait_exit(Duration::from_secs(3)),
            Some(0),
            "{signals:?}"
        );
        assert!(second.elapsed() < Duration::from_secs(2), "{signals:?}");
        assert!(slow.try_read_response(false).is_none(), "{signals:?}: cut");
    }
}

#[test]
fn the_reserved_prefix_is_the_hosts_even_under_a_plugin_mounted_at_the_root() {
    let server = start(0, "[plugin.testkit]\nmount = /\n");
    // testkit at / echoes every other path...
    assert_eq!(server.get("/anything").status, 200);
    // ...but /_drupe/ is answered by the host before any plugin route.
    assert_eq!(health(&server), (200, "ok".to_owned()));
    for path in ["/_drupe", "/_drupe/", "/_drupe/other"] {
        assert_eq!(server.get(path).status, 404, "{path}");
    }
    let post = crate::support::request(
        server.addr(),
        "POST /_drupe/health HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(post.status, 405);
    assert_eq!(post.header("Allow"), Some("GET, HEAD"));
}

#[test]
fn a_plugin_cannot_be_mounted_under_the_reserved_prefix() {
    let site = Site::new(&["hello"], "[plugin.hello]\nmount = /_drupe/hello\n");
    let out = site.run(&["--check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("must not be under /_drupe/"), "{stderr}");
}
