//! Log rotation as logrotate does it: rename the file, then USR1 to the
//! master, which reopens its logs and has every worker reopen theirs.

use crate::support::{eventually, Signal, Site};
use std::path::Path;
use std::time::Duration;

/// How many lines of `path` hold each of the `n` request paths `/hello/r{i}`.
fn tally(path: &Path, n: usize) -> Vec<usize> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    (0..n)
        .map(|i| {
            let needle = format!("\"GET /hello/r{i} HTTP/1.1\"");
            text.lines().filter(|l| l.contains(&needle)).count()
        })
        .collect()
}

#[test]
fn usr1_after_a_rename_reopens_the_access_log_and_every_request_is_logged_once() {
    let server = Site::new(&["hello"], "[log]\naccessLog = access.log\n").start();
    let log = server.site.path("access.log");
    let rotated = server.site.path("access.log.1");
    let send = |range: std::ops::Range<usize>| {
        for i in range {
            assert_eq!(server.get(&format!("/hello/r{i}")).status, 200);
        }
    };
    const N: usize = 60;
    send(0..20);
    eventually(Duration::from_secs(5), "the first lines", || {
        tally(&log, N).iter().take(20).all(|&c| c == 1)
    });
    std::fs::rename(&log, &rotated).expect("rotate");
    send(20..40); // written to the renamed file until the workers reopen
    server.signal(Signal::SIGUSR1);
    eventually(Duration::from_secs(5), "every process to reopen", || {
        let text = server.log();
        text.contains("SIGUSR1: reopened the log files")
            && text.matches("reopened its log files").count() == 2
    });
    send(40..N);
    let mut counts = Vec::new();
    eventually(
        Duration::from_secs(5),
        "every request in one of the files",
        || {
            let (old, new) = (tally(&rotated, N), tally(&log, N));
            counts = old.iter().zip(&new).map(|(a, b)| a + b).collect();
            counts.iter().all(|&c| c >= 1)
        },
    );
    std::thread::sleep(Duration::from_millis(200)); // a duplicate would show now
    let (old, new) = (tally(&rotated, N), tally(&log, N));
    for i in 0..N {
        assert_eq!(old[i] + new[i], 1, "request {i}: {} + {}", old[i], new[i]);
    }
    assert!(
        old[..20].iter().all(|&c| c == 1),
        "before the rename: {old:?}"
    );
    assert!(new[40..].iter().all(|&c| c == 1), "after USR1: {new:?}");
}

#[test]
fn requests_the_http_layer_refuses_are_access_logged_and_counted() {
    let server = Site::new(
        &["hello"],
        "[log]\naccessLog = access.log\n[status]\nsocketPort = 0\n\
         [limits]\nmaxRequestLine = 256\n",
    )
    .start();
    let refused: [(&str, u16); 3] = [
        ("GARBAGE\r\n\r\n", 400),
        ("GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("GET /hello HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    ];
    for (raw, status) in refused {
        let resp = crate::support::request(server.addr(), raw);
        assert_eq!(resp.status, status, "{raw:?}");
    }
    let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(400));
    assert_eq!(crate::support::request(server.addr(), &long).status, 414);
    let log = server.site.path("access.log");
    let lines = || std::fs::read_to_string(&log).unwrap_or_default();
    eventually(
        Duration::from_secs(5),
        "four refused requests logged",
        || {
            let text = lines();
            text.matches("\" 400 ").count() == 2
                && text.matches("\" 505 ").count() == 1
                && text.matches("\" 414 ").count() == 1
        },
    );
    let status_addr: std::net::SocketAddr = server
        .log()
        .split("status on http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .expect("status address in the log");
    let metrics = crate::support::request(
        status_addr,
        "GET /_drupe/metrics HTTP/1.1\r\nHost: s\r\n\r\n",
    )
    .text();
    assert!(
        metrics
            .lines()
            .any(|l| l == "drupe_unrouted_requests_total{class=\"4xx\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == "drupe_unrouted_requests_total{class=\"5xx\"} 1"),
        "{metrics}"
    );
}
