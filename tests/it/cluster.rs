//! Redis Cluster through the real binary: `[store] url =
//! redis+cluster://…` on a local cluster of three primaries and three
//! replicas (`drupe_tests::cluster`). Counting over many keys (so over
//! every primary) is exact; and when a primary is killed under load, its
//! replica takes over and counting resumes with no restart of drupe, with
//! only 503 or 504 answered meanwhile.

use crate::counting::count_exactly;
use crate::support::{eventually, exclusive, request, Client, Site};
use drupe_tests::cluster::RedisCluster;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const POST: &str = "POST /counter/f HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n";
const GET: &str = "GET /counter/f HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

fn site(cluster: &RedisCluster) -> Site {
    Site::new(
        &["counter", "session"],
        &format!(
            "[store]\nurl = {}\nconnectTimeout = 0.3\ntimeout = 0.5\n",
            cluster.url("")
        ),
    )
}

#[test]
fn counting_is_exact_on_a_redis_cluster() {
    let _alone = exclusive();
    let cluster = RedisCluster::start(&[]);
    let server = site(&cluster).start();
    let took = count_exactly(&server, 32, 20_000, 100);
    eprintln!("cluster: 20000 POSTs over 100 keys from 32 clients in {took:?}");
    // Sessions too: one hash per visitor, wherever its slot is.
    let first = server.get("/session");
    let cookie = first.header("Set-Cookie").expect("a session").to_owned();
    let cookie = cookie.split(';').next().expect("the pair");
    let again = request(
        server.addr(),
        &format!(
            "GET /session HTTP/1.1\r\nHost: t\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(again.text(), "2");
}

#[test]
fn counting_resumes_after_a_primary_dies_and_its_replica_takes_over() {
    let _alone = exclusive();
    let started = Instant::now();
    let mut cluster = RedisCluster::start(&[]);
    let server = site(&cluster).start();
    for expected in 1..=10 {
        assert_eq!(
            request(
                server.addr(),
                &POST.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n")
            )
            .text(),
            expected.to_string()
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let addr = server.addr();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut seen: Vec<(Instant, u16)> = Vec::new();
                let mut client = Client::connect(addr);
                let until = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    // 0: the connection closed without an answer (the
                    // assertion below then shows the server's log).
                    client.send(POST.as_bytes());
                    let status = client.try_read_response(false).map_or(0, |r| r.status);
                    if status == 0 {
                        client = Client::connect(addr);
                    }
                    seen.push((Instant::now(), status));
                    if status != 200 {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                seen
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let killed = Instant::now();
    let dead = cluster.kill_primary_of("drupe:counter:f");
    eventually(Duration::from_secs(20), "a replica to take over", || {
        cluster.is_ok()
            && cluster
                .primary_of("drupe:counter:f")
                .is_some_and(|p| p != dead)
    });
    let promoted = killed.elapsed();
    eventually(Duration::from_secs(10), "POSTs to succeed again", || {
        (0..5).all(|_| request(server.addr(), GET).status == 200)
    });
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<(Instant, u16)> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client thread"))
        .collect();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for (_, status) in &seen {
        *statuses.entry(*status).or_default() += 1;
    }
    let last_failure = seen
        .iter()
        .filter(|(_, s)| *s != 200)
        .map(|(at, _)| *at)
        .max();
    let window = last_failure.map_or(Duration::ZERO, |at| at.saturating_duration_since(killed));
    let counter: usize = request(server.addr(), GET)
        .text()
        .parse()
        .expect("a number");
    let ok = statuses.get(&200).copied().unwrap_or(0) + 10;
    eprintln!(
        "cluster failover: replica promoted {}ms after the primary was killed; failures until \
         {}ms; answers {statuses:?}; counter {counter}; whole test {}ms",
        promoted.as_millis(),
        window.as_millis(),
        started.elapsed().as_millis()
    );
    assert!(
        statuses.keys().all(|s| [200, 503, 504].contains(s)),
        "only 503 or 504 while the cluster fails over: {statuses:?}\n{}",
        server.log()
    );
    assert!(counter >= ok, "counter {counter} < {ok} answered 200");
    // Counting goes on, exactly, on the new primary, with the same workers.
    let mut client = server.connect();
    for i in 1..=20 {
        assert_eq!(
            client.roundtrip(POST).text(),
            (counter + i).to_string(),
            "{}",
            server.log()
        );
    }
}
