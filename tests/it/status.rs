//! The status listener: `/_drupe/status` (JSON) and `/_drupe/metrics`
//! (Prometheus) on `[status] socketPort`, served by the master, with
//! figures gathered from every worker through the scoreboard.

use crate::support::{eventually, request, Client, Response, Server, Signal, Site};
use nix::unistd::Pid;
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn status_site() -> Server {
    Site::new(&["hello", "testkit"], "[status]\nsocketPort = 0\n").start()
}

/// The status address, from the master's log line.
fn status_addr(server: &Server) -> SocketAddr {
    let log = server.log();
    let rest = log
        .split("status on http://")
        .nth(1)
        .unwrap_or_else(|| panic!("no status line in the log:\n{log}"));
    rest.split('/')
        .next()
        .unwrap_or_default()
        .parse()
        .expect("status address")
}

fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, &format!("GET {path} HTTP/1.1\r\nHost: s\r\n\r\n"))
}

fn status(server: &Server) -> Value {
    let resp = get(status_addr(server), "/_drupe/status");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    serde_json::from_slice(&resp.body).expect("valid JSON")
}

fn plugin<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["plugins"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no plugin {name} in {json}"))
}

#[test]
fn status_and_metrics_count_exactly_the_requests_sent() {
    let server = status_site();
    let mut client = server.connect();
    let mut send = |raw: &str, n: usize, want: u16| {
        for _ in 0..n {
            assert_eq!(client.roundtrip(raw).status, want, "{raw}");
        }
    };
    send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", 7, 200);
    send("GET /hello/a/b HTTP/1.1\r\nHost: t\r\n\r\n", 3, 404); // no route
    send("DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n", 1, 405); // no route either
    send("GET /testkit/panic HTTP/1.1\r\nHost: t\r\n\r\n", 2, 500);
    send("GET /testkit/sleep/x HTTP/1.1\r\nHost: t\r\n\r\n", 1, 400); // the plugin's 400
                                                                      // More from other connections, so both workers are likely to count.
    for _ in 0..5 {
        assert_eq!(server.get("/hello/x").status, 200);
    }

    let json = status(&server);
    let hello = plugin(&json, "hello");
    assert_eq!(hello["requests"], 12, "{json}");
    assert_eq!(hello["errors"], 0);
    assert_eq!(hello["status"]["2xx"], 12);
    for p in ["p50", "p90", "p99", "mean"] {
        let v = hello["latency_us"][p].as_f64().expect("a latency");
        assert!(v > 0.0 && v < 1_000_000.0, "{p} = {v}");
    }
    let testkit = plugin(&json, "testkit");
    assert_eq!(testkit["requests"], 3, "{json}");
    assert_eq!(testkit["errors"], 2);
    assert_eq!(testkit["status"]["4xx"], 1);
    assert_eq!(testkit["status"]["5xx"], 2);
    assert_eq!(json["unrouted"]["requests"], 4, "{json}");
    assert_eq!(json["unrouted"]["status"]["4xx"], 4);
    assert_eq!(json["master"]["pid"], server.pid());
    assert_eq!(json["master"]["generation"], 1);
    let workers = json["workers"].as_array().expect("workers");
    let mut pids: Vec<i64> = workers
        .iter()
        .map(|w| w["pid"].as_i64().unwrap_or(0))
        .collect();
    pids.sort_unstable();
    let live: Vec<i64> = server.worker_pids().into_iter().map(i64::from).collect();
    assert_eq!(pids, live);
    for w in workers {
        assert_eq!(w["state"], "ready", "{w}");
        assert_eq!(w["generation"], 1);
        assert!(w["uptime_s"].as_f64().is_some_and(|s| s > 0.0), "{w}");
    }
    let served: u64 = workers
        .iter()
        .map(|w| w["requests"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(served, 12 + 4 + 3);

    let metrics = get(status_addr(&server), "/_drupe/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("Content-Type")
        .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")));
    let text = metrics.text();
    for line in [
        "drupe_requests_total{plugin=\"hello\",class=\"2xx\"} 12",
        "drupe_requests_total{plugin=\"testkit\",class=\"5xx\"} 2",
        "drupe_requests_total{plugin=\"testkit\",class=\"4xx\"} 1",
        "drupe_unrouted_requests_total{class=\"4xx\"} 4",
        "drupe_handler_duration_seconds_count{plugin=\"hello\"} 12",
        "drupe_handler_duration_seconds_bucket{plugin=\"hello\",le=\"+Inf\"} 12",
        "drupe_workers{state=\"ready\"} 2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }

    // A worker that dies takes none of the counts with it.
    let victim = server.worker_pids()[0];
    nix::sys::signal::kill(Pid::from_raw(victim), Signal::SIGKILL).expect("kill");
    eventually(Duration::from_secs(5), "a replacement worker", || {
        let now = server.worker_pids();
        now.len() == 2 && !now.contains(&victim)
    });
    let json = status(&server);
    assert_eq!(plugin(&json, "hello")["requests"], 12, "{json}");
    assert_eq!(plugin(&json, "testkit")["requests"], 3);
    assert_eq!(json["unrouted"]["requests"], 4);

    // Neither route exists on the public port.
    assert_eq!(server.get("/_drupe/status").status, 404);
    assert_eq!(server.get("/_drupe/metrics").status, 404);
}

#[test]
fn status_is_off_unless_a_port_is_set() {
    let server = Site::new(&["hello"], "").start();
    assert!(!server.log().contains("status on"), "{}", server.log());
    assert_eq!(server.get("/_drupe/status").status, 404);
}

/// True once the peer has closed `stream` (EOF or reset) within `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).expect("timeout");
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn slow_or_greedy_status_clients_never_stall_the_master() {
    let server = status_site();
    let addr = status_addr(&server);
    // Silent, half a request, and a head that never ends.
    let mut silent = TcpStream::connect(addr).expect("connect");
    let mut partial = TcpStream::connect(addr).expect("connect");
    partial.write_all(b"GET /_drupe/sta").expect("write");
    let mut greedy = TcpStream::connect(addr).expect("connect");
    greedy.write_all(&[b'x'; 8192]).expect("write a long head");
    let started = Instant::now();
    assert_eq!(get(addr, "/_drupe/status").status, 200);
    assert!(started.elapsed() < Duration::from_secs(1));
    let mut answer = String::new();
    greedy.read_to_string(&mut answer).ok();
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer:?}"); // 400 or 431, then closed
                                                             // The master still supervises: TTIN adds a worker at once.
    server.signal(Signal::SIGTTIN);
    eventually(Duration::from_secs(5), "a third worker", || {
        server.worker_pids().len() == 3
    });
    // The idle ones are cut at the timeout (5 s after they connected).
    assert!(closed_within(&mut silent, Duration::from_secs(8)));
    assert!(closed_within(&mut partial, Duration::from_secs(2)));
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "closed too early"
    );
    let mut client = Client::connect(server.addr());
    assert_eq!(
        client
            .roundtrip("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            .status,
        200
    );
}
