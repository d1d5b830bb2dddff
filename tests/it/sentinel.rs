//! Redis past one node: with `[store] url = redis+sentinel://…` drupe asks
//! the Sentinels for the primary whenever a handler thread (re)connects,
//! so when the primary dies and the Sentinels promote its replica, counting
//! goes on, on the new primary, with no restart of drupe. While the
//! failover runs, store pages answer 503 (the contract for a store that
//! cannot be reached) or, for an increment in flight when the primary
//! died, 504 (its outcome is unknown), never anything else, and never hang.
//!
//! The primary, replica and Sentinels are real `redis-server` processes on
//! loopback (`drupe_tests::sentinel`), with short Sentinel timeouts.

use crate::support::{eventually, exclusive, request, Client, Site};
use drupe_tests::redis::free_port;
use drupe_tests::sentinel::SentinelGroup;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const POST: &str = "POST /counter/f HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n";
const GET: &str = "GET /counter/f HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

/// What one client saw: each answer's status, when it came.
type Seen = Vec<(Instant, u16)>;

/// Keep-alive clients POSTing `/counter/f` until stopped (or 60 s).
fn hammer(
    addr: std::net::SocketAddr,
    clients: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Seen>> {
    (0..clients)
        .map(|_| {
            let stop = Arc::clone(stop);
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut client = Client::connect(addr);
                let until = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    // A connection closed without an answer is recorded as
                    // status 0, which fails the test: only 200, 503 and 504
                    // are acceptable.
                    let answer = client
                        .try_send(POST.as_bytes())
                        .ok()
                        .and_then(|()| client.try_read_response(false));
                    let status = answer.map_or(0, |r| r.status);
                    seen.push((Instant::now(), status));
                    if status == 0 {
                        break;
                    }
                    if status != 200 {
                        // The store is down: no need to spin on it.
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                seen
            })
        })
        .collect()
}

#[test]
fn counting_goes_on_after_the_primary_dies_and_a_replica_takes_over() {
    let _alone = exclusive();
    let test_started = Instant::now();
    let mut group = SentinelGroup::start();
    let server = Site::new(
        &["counter"],
        &format!(
            "[store]\nurl = {}\nconnectTimeout = 0.3\ntimeout = 0.5\n",
            group.url()
        ),
    )
    .start();
    for expected in 1..=10 {
        let resp = request(
            server.addr(),
            &POST.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(resp.text(), expected.to_string(), "{}", server.log());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let clients = hammer(server.addr(), 4, &stop);
    std::thread::sleep(Duration::from_millis(300));
    let killed = Instant::now();
    group.kill_primary();
    let replica = group.replica_port();
    eventually(
        Duration::from_secs(15),
        "the Sentinels to promote the replica",
        || group.primary_port() == Some(replica),
    );
    let promoted = killed.elapsed();
    // Then drupe must find it by itself: POSTs succeed again for a while.
    eventually(Duration::from_secs(10), "POSTs to succeed again", || {
        (0..5).all(|_| request(server.addr(), GET).status == 200)
    });
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let seen: Seen = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client thread"))
        .collect();

    let failed: Vec<&(Instant, u16)> = seen.iter().filter(|(_, s)| *s != 200).collect();
    // 503 when the increment was never sent; 504 when it was in flight as
    // the primary died: it may have been applied.
    assert!(
        failed.iter().all(|(_, s)| matches!(s, 503 | 504)),
        "only 503 or 504 while the store fails over (0: no answer): {:?}\n{}",
        failed.iter().map(|(_, s)| s).collect::<Vec<_>>(),
        server.log()
    );
    let last_failure = failed.iter().map(|(at, _)| *at).max();
    let window = last_failure.map_or(Duration::ZERO, |at| at.saturating_duration_since(killed));
    let after = seen
        .iter()
        .filter(|(at, s)| *s == 200 && last_failure.is_none_or(|f| *at > f))
        .count();
    eprintln!(
        "Sentinel failover: replica promoted {}ms after the primary was killed; POSTs failed \
         (503) until {}ms; {} answered, {} of them 503, {} 200s after the failover; whole test {}ms",
        promoted.as_millis(),
        window.as_millis(),
        seen.len(),
        failed.len(),
        after,
        test_started.elapsed().as_millis()
    );
    assert!(
        after > 0,
        "no POST succeeded after the failover:\n{}",
        server.log()
    );
    assert!(
        window < Duration::from_secs(10),
        "{window:?}\n{}",
        server.log()
    );

    // Counting goes on, exactly, on the new primary.
    let mut client = server.connect();
    let before: i64 = request(server.addr(), GET)
        .text()
        .parse()
        .expect("a number");
    assert!(
        before >= after as i64,
        "{before} < {after} increments made after the failover"
    );
    for i in 1..=20 {
        let resp = client.roundtrip(POST);
        assert_eq!(resp.text(), (before + i).to_string(), "{}", server.log());
    }
    let log = server.log();
    assert!(
        log.contains(&format!("at 127.0.0.1:{replica} again")),
        "{log}"
    );
    assert!(test_started.elapsed() < Duration::from_secs(30));
}

#[test]
fn sentinels_that_cannot_be_reached_cost_a_503_in_time_and_name_themselves() {
    let ports = [free_port(), free_port()];
    let url = format!(
        "redis+sentinel://127.0.0.1:{},127.0.0.1:{}/drupe/0",
        ports[0], ports[1]
    );
    let server = Site::new(
        &["counter", "hello"],
        &format!("[store]\nurl = {url}\nconnectTimeout = 0.3\ntimeout = 0.5\n"),
    )
    .start();
    let started = Instant::now();
    let resp = request(
        server.addr(),
        &POST.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(resp.status, 503);
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_eq!(server.get("/hello").status, 200);
    let log = server.log();
    for port in ports {
        assert!(log.contains(&format!("Sentinel 127.0.0.1:{port}")), "{log}");
    }
    assert!(
        log.contains("cannot reach the Redis primary 'drupe' through Sentinel"),
        "{log}"
    );
}
