//! The conformance suite: every case runs against every backend, SQLite on
//! a temp file, Redis on a `redis-server` this test starts on a free port,
//! and Redis Cluster on three primaries and three replicas it starts too,
//! so they behave as one [`Store`]. Backend-specific behaviour (timeouts,
//! reconnecting, lock contention) is tested at the end.

#![allow(clippy::unwrap_used)]

use super::call::CallStore;
use super::redis::RedisStore;
use super::sqlite::SqliteStore;
use super::{Op, Reply};
use super::{Store, StoreError};
use drupe_tests::redis::RedisServer;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(2);

/// A backend to test: each `open` is a new connection, as each handler
/// thread (or worker process) has its own.
enum Fixture {
    Sqlite(tempfile::TempDir),
    Redis(RedisServer),
    /// The URL of a cluster that the test owns.
    Cluster(String),
}

impl Fixture {
    fn sqlite() -> Fixture {
        Fixture::Sqlite(tempfile::tempdir().unwrap())
    }

    fn redis() -> Fixture {
        Fixture::Redis(RedisServer::start())
    }

    fn open(&self) -> Box<dyn Store + Send> {
        match self {
            Fixture::Sqlite(dir) => {
                // A folder that does not exist yet: the store creates it.
                let path = dir.path().join("data/shared.db");
                Box::new(SqliteStore::open(&path, TIMEOUT).unwrap())
            }
            Fixture::Redis(server) => {
                Box::new(RedisStore::new(&server.url(), TIMEOUT, TIMEOUT).unwrap())
            }
            Fixture::Cluster(url) => {
                let url = crate::config::ClusterUrl::parse(url).unwrap();
                Box::new(RedisStore::with_cluster(&url, TIMEOUT, TIMEOUT).unwrap())
            }
        }
    }
}

/// One `#[test]` per case and backend, so a failure names both.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $case() { super::$case(&super::Fixture::sqlite()) })*
        }
        mod redis {
            $(#[test] fn $case() { super::$case(&super::Fixture::redis()) })*
        }
        /// Every case on one Redis Cluster, in turn: a cluster takes
        /// seconds to form. The case that fails is the last one printed.
        #[test]
        fn cluster() {
            let cluster = drupe_tests::cluster::RedisCluster::start(&[]);
            let fixture = Fixture::Cluster(cluster.url(""));
            $(
                eprintln!("cluster: {}", stringify!($case));
                cluster.flush();
                $case(&fixture);
            )*
        }
    };
}

conformance!(
    values,
    ttls,
    incr,
    hashes,
    kinds_do_not_mix,
    hash_ttls,
    hincr,
    any_bytes,
    incr_is_atomic_across_connections,
    namespaces_and_sessions,
);

fn is_other(r: Result<impl std::fmt::Debug, StoreError>) -> bool {
    matches!(r, Err(StoreError::Other(_)))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn values(f: &Fixture) {
    let mut s = f.open();
    assert_eq!(s.get(b"k").unwrap(), None);
    assert!(!s.exists(b"k").unwrap());
    s.set(b"k", b"one", None).unwrap();
    assert_eq!(s.get(b"k").unwrap().as_deref(), Some(&b"one"[..]));
    assert!(s.exists(b"k").unwrap());
    s.set(b"k", b"two", None).unwrap();
    assert_eq!(s.get(b"k").unwrap().as_deref(), Some(&b"two"[..]));
    assert!(s.delete(b"k").unwrap());
    assert!(!s.delete(b"k").unwrap());
    assert_eq!(s.get(b"k").unwrap(), None);
    // Another connection sees the same data.
    s.set(b"shared", b"yes", None).unwrap();
    assert_eq!(
        f.open().get(b"shared").unwrap().as_deref(),
        Some(&b"yes"[..])
    );
}

fn ttls(f: &Fixture) {
    let mut s = f.open();
    s.set(b"short", b"x", Some(ms(100))).unwrap();
    s.set(b"long", b"x", Some(ms(100))).unwrap();
    s.set(b"long", b"y", None).unwrap(); // a plain set drops the TTL
    s.set(b"later", b"x", None).unwrap();
    assert!(s.expire(b"later", ms(100)).unwrap());
    assert!(!s.expire(b"missing", ms(100)).unwrap());
    s.set(b"now", b"x", None).unwrap();
    assert!(s.expire(b"now", Duration::ZERO).unwrap());
    assert!(!s.exists(b"now").unwrap(), "a zero TTL expires at once");
    assert!(s.exists(b"short").unwrap());
    std::thread::sleep(ms(250));
    assert_eq!(s.get(b"short").unwrap(), None);
    assert!(!s.exists(b"short").unwrap());
    assert!(!s.exists(b"later").unwrap());
    assert!(
        !s.delete(b"short").unwrap(),
        "an expired key is not there to delete"
    );
    assert!(!s.expire(b"short", ms(100)).unwrap(), "nor to revive");
    assert_eq!(s.get(b"long").unwrap().as_deref(), Some(&b"y"[..]));
}

fn incr(f: &Fixture) {
    let mut s = f.open();
    assert_eq!(s.incr(b"n", 1).unwrap(), 1);
    assert_eq!(s.incr(b"n", 41).unwrap(), 42);
    assert_eq!(s.incr(b"n", -50).unwrap(), -8);
    assert_eq!(
        s.get(b"n").unwrap().as_deref(),
        Some(&b"-8"[..]),
        "decimal text"
    );
    s.set(b"text", b"abc", None).unwrap();
    assert!(is_other(s.incr(b"text", 1)));
    s.set(b"big", i64::MAX.to_string().as_bytes(), None)
        .unwrap();
    assert!(
        is_other(s.incr(b"big", 1)),
        "overflow is an error, not a wrap"
    );
    assert_eq!(
        s.get(b"big").unwrap(),
        Some(i64::MAX.to_string().into_bytes())
    );
    // INCR keeps the TTL; once it runs out, the count starts again.
    s.set(b"window", b"5", Some(ms(150))).unwrap();
    assert_eq!(s.incr(b"window", 1).unwrap(), 6);
    std::thread::sleep(ms(300));
    assert_eq!(s.incr(b"window", 1).unwrap(), 1);
    std::thread::sleep(ms(50));
    assert!(s.exists(b"window").unwrap(), "the new count has no TTL");
}

fn hashes(f: &Fixture) {
    let mut s = f.open();
    assert_eq!(s.hget(b"h", b"a").unwrap(), None);
    assert_eq!(s.hget_all(b"h").unwrap(), vec![]);
    s.hset(b"h", b"b", b"2", None).unwrap();
    s.hset(b"h", b"a", b"1", None).unwrap();
    s.hset(b"h", b"a", b"one", None).unwrap();
    assert_eq!(s.hget(b"h", b"a").unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(s.hget(b"h", b"zz").unwrap(), None);
    assert_eq!(
        s.hget_all(b"h").unwrap(),
        vec![
            (b"a".to_vec(), b"one".to_vec()),
            (b"b".to_vec(), b"2".to_vec())
        ]
    );
    assert!(s.exists(b"h").unwrap());
    assert!(s.hdel(b"h", b"a").unwrap());
    assert!(!s.hdel(b"h", b"a").unwrap());
    assert!(!s.hdel(b"missing", b"a").unwrap());
    assert!(s.hdel(b"h", b"b").unwrap());
    assert!(
        !s.exists(b"h").unwrap(),
        "the last field takes the hash with it"
    );
    // Deleting a hash deletes its fields.
    s.hset(b"h2", b"x", b"1", None).unwrap();
    assert!(s.delete(b"h2").unwrap());
    s.hset(b"h2", b"y", b"2", None).unwrap();
    assert_eq!(
        s.hget_all(b"h2").unwrap(),
        vec![(b"y".to_vec(), b"2".to_vec())]
    );
}

fn kinds_do_not_mix(f: &Fixture) {
    let mut s = f.open();
    s.hset(b"h", b"f", b"v", None).unwrap();
    s.set(b"s", b"v", None).unwrap();
    assert!(is_other(s.get(b"h")));
    assert!(is_other(s.incr(b"h", 1)));
    assert!(is_other(s.hget(b"s", b"f")));
    assert!(is_other(s.hset(b"s", b"f", b"v", None)));
    assert!(is_other(s.hdel(b"s", b"f")));
    assert!(is_other(s.hget_all(b"s")));
    assert!(is_other(s.hincr(b"s", b"f", 1, None)));
    // SET replaces a hash, fields and all.
    s.set(b"h", b"now a string", None).unwrap();
    assert_eq!(s.get(b"h").unwrap().as_deref(), Some(&b"now a string"[..]));
    assert!(s.delete(b"h").unwrap());
    assert_eq!(s.hget_all(b"h").unwrap(), vec![], "no fields left behind");
}

fn hash_ttls(f: &Fixture) {
    let mut s = f.open();
    s.hset(b"h", b"a", b"1", Some(ms(150))).unwrap();
    s.hset(b"h", b"b", b"2", None).unwrap(); // keeps the TTL
    s.hset(b"keep", b"a", b"1", Some(ms(150))).unwrap();
    s.hset(b"keep", b"a", b"2", Some(Duration::from_secs(60)))
        .unwrap(); // refreshed
    std::thread::sleep(ms(300));
    assert_eq!(s.hget(b"h", b"b").unwrap(), None);
    assert_eq!(s.hget_all(b"h").unwrap(), vec![]);
    assert!(!s.exists(b"h").unwrap());
    // A field written after expiry starts a fresh hash.
    s.hset(b"h", b"c", b"3", None).unwrap();
    assert_eq!(
        s.hget_all(b"h").unwrap(),
        vec![(b"c".to_vec(), b"3".to_vec())]
    );
    assert_eq!(s.hget(b"keep", b"a").unwrap().as_deref(), Some(&b"2"[..]));
}

fn hincr(f: &Fixture) {
    let mut s = f.open();
    assert_eq!(s.hincr(b"h", b"n", 2, None).unwrap(), 2);
    assert_eq!(s.hincr(b"h", b"n", -3, Some(ms(150))).unwrap(), -1);
    assert_eq!(s.hget(b"h", b"n").unwrap().as_deref(), Some(&b"-1"[..]));
    s.hset(b"h", b"t", b"x", None).unwrap();
    assert!(is_other(s.hincr(b"h", b"t", 1, None)));
    std::thread::sleep(ms(300));
    assert_eq!(
        s.hincr(b"h", b"n", 1, None).unwrap(),
        1,
        "expired with its TTL"
    );
}

fn any_bytes(f: &Fixture) {
    let mut s = f.open();
    let all: Vec<u8> = (0..=255).collect();
    s.set(&all, &all, None).unwrap();
    assert_eq!(s.get(&all).unwrap(), Some(all.clone()));
    s.set(b"empty", b"", None).unwrap();
    assert_eq!(s.get(b"empty").unwrap(), Some(vec![]), "empty, not missing");
    s.hset(b"h", &all, b"", None).unwrap();
    assert_eq!(s.hget_all(b"h").unwrap(), vec![(all, vec![])]);
}

fn incr_is_atomic_across_connections(f: &Fixture) {
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let mut s = f.open();
            std::thread::spawn(move || {
                for _ in 0..250 {
                    s.incr(b"n", 1).unwrap();
                    s.hincr(b"h", b"n", 1, None).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut s = f.open();
    assert_eq!(s.get(b"n").unwrap().as_deref(), Some(&b"1000"[..]));
    assert_eq!(s.hget(b"h", b"n").unwrap().as_deref(), Some(&b"1000"[..]));
}

fn namespaces_and_sessions(f: &Fixture) {
    let mut s = f.open();
    let session_ttl = ms(200);
    let mut call = CallStore::default();
    let mut run = |call: &mut CallStore, op| call.run(&mut *s, op, session_ttl).unwrap();

    call.begin("alpha", std::iter::empty());
    assert_eq!(run(&mut call, Op::Incr(b"k", 5)), Reply::Int(5));
    call.begin("beta", std::iter::empty());
    assert_eq!(
        run(&mut call, Op::Get(b"k")),
        Reply::NotFound,
        "beta cannot see alpha's k"
    );
    // Reading a session never creates one.
    assert_eq!(run(&mut call, Op::SessionGet(b"visits")), Reply::NotFound);
    assert_eq!(call.take_created(), None);
    // The first write does, once.
    assert_eq!(run(&mut call, Op::SessionIncr(b"visits", 1)), Reply::Int(1));
    assert_eq!(run(&mut call, Op::SessionSet(b"name", b"Ana")), Reply::Done);
    let id = call.take_created().expect("a new session");
    assert_eq!(call.take_created(), None);
    let cookie = format!("x=1; drupe_session={}", id.hex());
    let headers = || std::iter::once((&b"Cookie"[..], cookie.as_bytes()));

    // The next request brings the cookie back: same session, nothing new.
    call.begin("beta", headers());
    assert_eq!(run(&mut call, Op::SessionIncr(b"visits", 1)), Reply::Int(2));
    assert_eq!(
        run(&mut call, Op::SessionGet(b"name")),
        Reply::Bytes(b"Ana".to_vec())
    );
    assert_eq!(call.take_created(), None);
    // Another plugin shares the session but not the fields.
    call.begin("alpha", headers());
    assert_eq!(run(&mut call, Op::SessionGet(b"name")), Reply::NotFound);
    assert_eq!(run(&mut call, Op::SessionRemove(b"name")), Reply::NotFound);
    call.begin("beta", headers());
    assert_eq!(run(&mut call, Op::SessionRemove(b"name")), Reply::Done);

    // Use keeps it alive past its idle timeout …
    for _ in 0..3 {
        std::thread::sleep(ms(100));
        call.begin("beta", headers());
        assert!(matches!(
            run(&mut call, Op::SessionGet(b"visits")),
            Reply::Bytes(_)
        ));
    }
    // … and idleness ends it; the old cookie then gets a new session.
    std::thread::sleep(ms(400));
    call.begin("beta", headers());
    assert_eq!(run(&mut call, Op::SessionGet(b"visits")), Reply::NotFound);
    assert_eq!(run(&mut call, Op::SessionIncr(b"visits", 1)), Reply::Int(1));
    assert_ne!(call.take_created(), Some(id));

    // A made-up id is never adopted (session fixation).
    let forged = "drupe_session=0123456789abcdef0123456789abcdef";
    call.begin("beta", std::iter::once((&b"cookie"[..], forged.as_bytes())));
    assert_eq!(run(&mut call, Op::SessionSet(b"k", b"v")), Reply::Done);
    assert_ne!(
        call.take_created().map(|id| id.hex()).as_deref(),
        Some(&forged[14..])
    );
}

// ---- backend-specific ----

#[test]
fn sqlite_lock_held_too_long_is_unavailable_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db");
    let mut store = SqliteStore::open(&path, ms(200)).unwrap();
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    let result = store.incr(b"n", 1);
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < ms(1000), "{:?}", started.elapsed());
    blocker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(
        store.incr(b"n", 1).unwrap(),
        1,
        "fine once the lock is gone"
    );
}

#[test]
fn sqlite_folder_that_cannot_be_created_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"not a folder").unwrap();
    let result = SqliteStore::open(&file.join("x.db"), TIMEOUT);
    assert!(matches!(result, Err(StoreError::Unavailable(ref m)) if m.contains("folder")));
}

#[test]
fn redis_down_hung_and_back() {
    let mut server = RedisServer::start();
    let timeout = ms(300);
    let mut store = RedisStore::new(&server.url(), ms(200), timeout).unwrap();
    assert_eq!(store.incr(b"n", 1).unwrap(), 1);

    // Hung: every call gives up within its budget, connecting included.
    server.pause();
    for _ in 0..3 {
        let started = Instant::now();
        let result = store.incr(b"n", 1);
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{result:?}"
        );
        assert!(
            started.elapsed() < timeout + ms(200),
            "{:?}",
            started.elapsed()
        );
    }
    server.resume();
    std::thread::sleep(super::redis::RECONNECT_BACKOFF);
    // An INCR that reached the frozen server's socket ran when it woke: a
    // timed-out command may have been applied, which is why INCR is never
    // retried (that could count twice).
    let n = store.incr(b"n", 1).unwrap();
    assert!((2..=5).contains(&n), "{n}");

    // Down: refused at once.
    server.kill();
    let started = Instant::now();
    assert!(matches!(store.get(b"n"), Err(StoreError::Unavailable(_))));
    assert!(started.elapsed() < timeout, "{:?}", started.elapsed());

    // Back (empty: nothing persists), with no new store object.
    server.restart();
    std::thread::sleep(super::redis::RECONNECT_BACKOFF);
    assert_eq!(store.incr(b"n", 1).unwrap(), 1);
}

#[test]
fn redis_restart_while_idle_does_not_fail_the_next_incr() {
    let mut server = RedisServer::start();
    let mut store = RedisStore::new(&server.url(), TIMEOUT, TIMEOUT).unwrap();
    assert_eq!(store.incr(b"n", 1).unwrap(), 1);
    // The connection dies while nobody uses it; INCR is not retried, so
    // the idle check must catch it first.
    server.restart();
    std::thread::sleep(super::redis::IDLE_CHECK);
    assert_eq!(store.incr(b"n", 1).unwrap(), 1);
}
