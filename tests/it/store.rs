//! The shared store through the real binary: counters that are exact under
//! concurrency on both backends, sessions shared by every worker and every
//! host, and a Redis outage that costs 503s on store pages only, and no
//! restart.
//!
//! Redis runs as a real `redis-server` that each test starts on a free port
//! and kills when it ends; a machine without one fails these tests with a
//! message saying to install it.

use crate::support::{eventually, Client, Response, Server, Site};
use drupe_tests::redis::RedisServer;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

const PLUGINS: &[&str] = &["counter", "session", "hello", "testkit"];

/// Held by the tests that load both cores (20,000 requests) and by the one
/// that measures how long a 503 takes, so the load never skews the clock
/// (one lock for the whole suite: see `support::exclusive`).
fn exclusive() -> MutexGuard<'static, ()> {
    crate::support::exclusive()
}

/// A site with two workers of two threads on the given `[store]` section
/// (empty: the default SQLite file beside the INI).
fn start(store: &str) -> Server {
    Site::new(PLUGINS, store).start()
}

fn redis_section(redis: &RedisServer, extra: &str) -> String {
    format!("[store]\nurl = {}\n{extra}", redis.url())
}

const POST_X: &str = "POST /counter/x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n";

fn pid_of(client: &mut Client) -> String {
    client
        .roundtrip("GET /testkit/pid HTTP/1.1\r\nHost: t\r\n\r\n")
        .text()
}

/// `per_worker` keep-alive connections on each of the two workers, with
/// the worker's pid.
///
/// Left alone, the kernel hands every new connection to the first worker
/// that has an idle thread (`EPOLLEXCLUSIVE`), so a burst of connects can
/// all land on one worker and a "two workers" test would test one. Once a
/// worker has its share, this keeps its threads busy with short sleeps, so
/// the next connections go to the other.
fn connections_on_both_workers(server: &Server, per_worker: usize) -> Vec<(String, Client)> {
    let mut kept: BTreeMap<String, Vec<Client>> = BTreeMap::new();
    let mut blockers = Vec::new();
    for _ in 0..20 * per_worker {
        if kept.len() == 2 && kept.values().all(|c| c.len() == per_worker) {
            break;
        }
        let mut client = server.connect();
        let pid = pid_of(&mut client);
        let share = kept.entry(pid).or_default();
        if share.len() < per_worker {
            share.push(client);
        } else {
            client.send(b"GET /testkit/sleep/200 HTTP/1.1\r\nHost: t\r\n\r\n");
            blockers.push(client);
        }
    }
    for mut blocker in blockers {
        assert_eq!(blocker.read_response(false).status, 200);
    }
    let shares: Vec<usize> = kept.values().map(Vec::len).collect();
    assert_eq!(
        shares,
        [per_worker, per_worker],
        "could not reach both workers"
    );
    kept.into_iter()
        .flat_map(|(pid, clients)| clients.into_iter().map(move |c| (pid.clone(), c)))
        .collect()
}

/// `total` POSTs to `/counter/x` at once over keep-alive `connections`,
/// each connection sending its share back to back.
fn hammer(connections: Vec<(String, Client)>, total: usize) {
    let per_connection = total / connections.len();
    assert_eq!(per_connection * connections.len(), total);
    let threads: Vec<_> = connections
        .into_iter()
        .map(|(pid, mut client)| {
            std::thread::spawn(move || {
                for i in 0..per_connection {
                    let resp = client.roundtrip(POST_X);
                    assert_eq!(
                        resp.status,
                        200,
                        "request {i} on worker {pid}: {}",
                        resp.text()
                    );
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("client thread");
    }
}

fn exact_under_concurrency(server: &Server, backend: &str) {
    let connections = connections_on_both_workers(server, 16);
    let started = Instant::now();
    hammer(connections, 20_000);
    let took = started.elapsed();
    eprintln!("{backend}: 20000 POSTs over 32 connections (16 per worker) in {took:?}");
    assert_eq!(server.get("/counter/x").text(), "20000", "{}", server.log());
}

#[test]
fn counter_is_exact_under_concurrency_on_sqlite() {
    let _alone = exclusive();
    let server = start("");
    exact_under_concurrency(&server, "sqlite");
    assert!(server.site.path("drupe-data/shared.db").is_file());
}

#[test]
fn counter_is_exact_under_concurrency_on_redis() {
    let _alone = exclusive();
    let redis = RedisServer::start();
    let server = start(&redis_section(&redis, ""));
    exact_under_concurrency(&server, "redis");
}

#[test]
fn a_plugin_reaches_only_its_own_keys() {
    let redis = RedisServer::start();
    let server = start(&redis_section(&redis, "keyPrefix = site1/\n"));
    let mut client = server.connect();
    for _ in 0..3 {
        client.roundtrip(POST_X);
    }
    // The same key name in testkit is another key.
    let get = "GET /testkit/store/x HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_eq!(client.roundtrip(get).status, 404);
    let put = "PUT /testkit/store/x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello";
    assert_eq!(client.roundtrip(put).status, 204);
    assert_eq!(client.roundtrip(get).text(), "hello");
    assert_eq!(server.get("/counter/x").text(), "3");
    // Exactly `keyPrefix + plugin name + ":" + key`, decided by the host.
    assert_eq!(redis.keys(), ["site1/counter:x", "site1/testkit:x"]);
}

fn get_session(client: &mut Client, cookie: &str) -> Response {
    client.roundtrip(&format!(
        "GET /session HTTP/1.1\r\nHost: t\r\nCookie: theme=dark; {cookie}\r\n\r\n"
    ))
}

/// Starts a session with one request and returns its cookie
/// (`drupe_session=…`), checking the `Set-Cookie` the host sent.
fn new_session(server: &Server) -> String {
    let first = server.get("/session");
    assert_eq!((first.status, first.text().as_str()), (200, "1"));
    let set_cookie = first
        .header("Set-Cookie")
        .expect("Set-Cookie on a new session");
    let (cookie, attributes) = set_cookie.split_once("; ").expect("attributes");
    assert_eq!(attributes, "Path=/; HttpOnly; SameSite=Lax", "{set_cookie}");
    let id = cookie.strip_prefix("drupe_session=").expect("cookie name");
    assert!(
        id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "128 bits as 32 lowercase hex digits: {id}"
    );
    cookie.to_owned()
}

/// Every worker reads and updates the one session: each visit counts once,
/// wherever it lands, and the cookie is set only when the session starts.
fn session_is_shared_by_every_worker(server: &Server) {
    let cookie = new_session(server);
    let mut connections = connections_on_both_workers(server, 3);
    let mut expected = 2;
    let mut workers = BTreeSet::new();
    for _ in 0..3 {
        for (pid, client) in &mut connections {
            let resp = get_session(client, &cookie);
            assert_eq!(resp.text(), expected.to_string(), "visit on worker {pid}");
            assert_eq!(resp.header("Set-Cookie"), None);
            workers.insert(pid.clone());
            expected += 1;
        }
    }
    assert_eq!(workers.len(), 2, "both workers served the session");

    // Someone else has a session of their own.
    let other = new_session(server);
    assert_ne!(other, cookie);
    // A made-up id is not adopted: the visitor gets a fresh session.
    let forged = "drupe_session=0123456789abcdef0123456789abcdef";
    let resp = get_session(&mut server.connect(), forged);
    assert_eq!(resp.text(), "1");
    let set_cookie = resp.header("Set-Cookie").unwrap_or_default();
    assert!(!set_cookie.contains(&forged[14..]), "{set_cookie}");
}

#[test]
fn session_is_shared_by_every_worker_on_sqlite() {
    session_is_shared_by_every_worker(&start(""));
}

#[test]
fn session_is_shared_by_every_worker_on_redis() {
    let redis = RedisServer::start();
    session_is_shared_by_every_worker(&start(&redis_section(&redis, "")));
}

#[test]
fn an_idle_session_ends_after_session_timeout() {
    let server = start("[store]\nsessionTimeout = 1\n");
    let cookie = new_session(&server);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(get_session(&mut server.connect(), &cookie).text(), "2");
    std::thread::sleep(Duration::from_millis(600));
    // 1.2 s after the start, but only 0.6 s idle: a visit keeps it alive.
    assert_eq!(get_session(&mut server.connect(), &cookie).text(), "3");
    std::thread::sleep(Duration::from_millis(1300));
    let resp = get_session(&mut server.connect(), &cookie);
    assert_eq!(
        resp.text(),
        "1",
        "idle longer than sessionTimeout: a new session"
    );
    assert!(resp.header("Set-Cookie").is_some());
}

#[test]
fn two_hosts_on_one_redis_share_counters_and_sessions() {
    let redis = RedisServer::start();
    let a = start(&redis_section(&redis, ""));
    let b = start(&redis_section(&redis, ""));
    assert_ne!(a.addr(), b.addr());
    let cookie = new_session(&a);
    assert_eq!(get_session(&mut b.connect(), &cookie).text(), "2");
    assert_eq!(get_session(&mut a.connect(), &cookie).text(), "3");
    let mut client = a.connect();
    assert_eq!(client.roundtrip(POST_X).text(), "1");
    assert_eq!(b.connect().roundtrip(POST_X).text(), "2");
    assert_eq!(a.get("/counter/x").text(), "2");
}

/// A POST on a fresh connection, with how long it took.
fn timed_post(server: &Server) -> (Response, Duration) {
    let started = Instant::now();
    let resp = server.connect().roundtrip(POST_X);
    (resp, started.elapsed())
}

#[test]
fn redis_outage_costs_503_on_store_pages_only_and_needs_no_restart() {
    let _alone = exclusive();
    let mut redis = RedisServer::start();
    let timeout = Duration::from_millis(500);
    let server = start(&redis_section(
        &redis,
        "connectTimeout = 0.3\ntimeout = 0.5\n",
    ));
    let workers = server.worker_pids();
    assert_eq!(workers.len(), 2);
    assert_eq!(timed_post(&server).0.text(), "1");
    let cookie = new_session(&server);
    // Margin for scheduling on a busy 2-core machine (other test binaries
    // and builds may run beside this one). Without the timeout a request
    // would hang until the client gives up (20 s).
    let within = timeout + Duration::from_millis(700);

    // Hung (frozen, connections open, nothing answered): 503 once the
    // timeout runs out, never later; pages without the store are fine.
    redis.pause();
    for _ in 0..4 {
        let (resp, took) = timed_post(&server);
        // 503 when the increment was never sent; 504 when it was sent and
        // the reply did not come: it may have been applied.
        assert!(
            matches!(resp.status, 503 | 504),
            "{} {}",
            resp.status,
            resp.text()
        );
        assert!(
            took < within,
            "503 after {took:?}; the timeout is {timeout:?}"
        );
        assert_eq!(server.get("/hello").status, 200);
    }
    redis.resume();

    // Down (killed): 503 at once, sessions too; still no worker lost.
    redis.kill();
    for _ in 0..4 {
        let (resp, took) = timed_post(&server);
        assert_eq!(resp.status, 503);
        assert!(took < within, "503 after {took:?}");
        assert_eq!(server.get("/hello").text(), "Hello, World!");
    }
    assert_eq!(get_session(&mut server.connect(), &cookie).status, 503);
    assert_eq!(server.worker_pids(), workers, "no worker died or restarted");

    // Back on the same port (empty: it kept nothing): counting resumes with
    // no restart of drupe.
    redis.restart();
    // Every worker and thread must have noticed: a thread that failed just
    // before answers 503 at once for a short while (see store::redis).
    eventually(
        Duration::from_secs(5),
        "GET and POST /counter/x answer 200 ten times in a row",
        || {
            (0..10).all(|_| {
                timed_post(&server).0.status == 200 && server.get("/counter/x").status == 200
            })
        },
    );
    let first: i64 = server.get("/counter/x").text().parse().expect("a number");
    for i in 1..=20 {
        let (resp, _) = timed_post(&server);
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(resp.text(), (first + i).to_string());
    }
    assert_eq!(server.worker_pids(), workers, "the same workers throughout");
    let log = server.log();
    assert!(log.contains("cannot connect to Redis"), "{log}");
    assert!(log.contains("store unavailable"), "{log}");
}

/// Sends `POST /counter/x` from `clients` keep-alive connections until
/// `stop`; the statuses seen, by code.
fn post_load(
    server: &Server,
    clients: usize,
    stop: &std::sync::atomic::AtomicBool,
) -> BTreeMap<u16, usize> {
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    let mut seen: BTreeMap<u16, usize> = BTreeMap::new();
                    let mut client = server.connect();
                    // Bounded in count as well as by `stop`.
                    for _ in 0..100_000 {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            break;
                        }
                        client.send(POST_X.as_bytes());
                        let resp = client.read_response(false);
                        *seen.entry(resp.status).or_default() += 1;
                        if resp.header("Connection") == Some("close") {
                            client = server.connect();
                        }
                    }
                    seen
                })
            })
            .collect();
        let mut total = BTreeMap::new();
        for thread in threads {
            for (status, n) in thread.join().expect("client") {
                *total.entry(status).or_default() += n;
            }
        }
        total
    })
}

#[test]
fn a_frozen_redis_never_turns_an_applied_increment_into_a_503() {
    let _alone = exclusive();
    let redis = RedisServer::start();
    let server = start(&redis_section(
        &redis,
        "connectTimeout = 0.3\ntimeout = 0.5\n",
    ));
    let stop = std::sync::atomic::AtomicBool::new(false);
    let seen = std::thread::scope(|scope| {
        let load = scope.spawn(|| post_load(&server, 8, &stop));
        std::thread::sleep(Duration::from_millis(500));
        redis.pause();
        std::thread::sleep(Duration::from_secs(3));
        redis.resume();
        std::thread::sleep(Duration::from_millis(1000));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        load.join().expect("load")
    });
    let counter: usize = server.get("/counter/x").text().parse().expect("a number");
    let ok = seen.get(&200).copied().unwrap_or(0);
    let unknown = seen.get(&504).copied().unwrap_or(0);
    eprintln!("frozen Redis under POST load: {seen:?}; counter {counter}");
    assert!(ok > 100, "{seen:?}");
    assert!(seen.keys().all(|s| [200, 503, 504].contains(s)), "{seen:?}");
    // Every 200 was applied; a 503 never was; a 504 may have been.
    assert!(counter >= ok, "counter {counter} < {ok} answered 200");
    assert!(
        counter <= ok + unknown,
        "counter {counter}: {} increments answered 503 (\"not done\") were applied",
        counter - ok - unknown
    );
}

#[test]
fn after_redis_restarts_the_first_write_on_every_stale_connection_succeeds() {
    let _alone = exclusive();
    let mut redis = RedisServer::start();
    let server = start(&redis_section(
        &redis,
        "connectTimeout = 0.3\ntimeout = 0.5\n",
    ));
    // Every thread of both workers opens its Redis connection.
    let warm = connections_on_both_workers(&server, 2);
    hammer(warm, 200);
    redis.kill();
    redis.restart();
    for i in 0..12 {
        let (resp, _) = timed_post(&server);
        assert_eq!(
            resp.status,
            200,
            "POST {i} after the restart: {}",
            resp.text()
        );
    }
}

#[test]
fn the_sqlite_file_and_schema_exist_before_the_first_request() {
    let server = start("");
    let db = server.site.path("drupe-data/shared.db");
    let bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    assert!(
        bytes > 0,
        "{} is missing or empty before any request",
        db.display()
    );
    // WAL mode is switched on once, at creation, not raced by workers.
    let header = std::fs::read(&db).expect("read the database");
    assert_eq!(&header[..16], b"SQLite format 3\0");
    assert_eq!((header[18], header[19]), (2, 2), "not in WAL mode");
}

#[test]
fn reading_a_session_creates_none() {
    let server = start("");
    for _ in 0..20 {
        let resp = server.get("/testkit/session-peek");
        assert_eq!(resp.text(), "none");
        assert_eq!(resp.header("Set-Cookie"), None, "a session was created");
    }
}
