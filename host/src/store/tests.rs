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
        let dir = tempfile::tempdir().unwrap();
        // As the probe does before the workers start. A folder that does
        // not exist yet: `create` makes it.
        SqliteStore::create(&sqlite_path(&dir), TIMEOUT).unwrap();
        Fixture::Sqlite(dir)
    }

    fn redis() -> Fixture {
        Fixture::Redis(RedisServer::start())
    }

    fn open(&self) -> Box<dyn Store + Send> {
        match self {
            Fixture::Sqlite(dir) => {
                Box::new(SqliteStore::open(&sqlite_path(dir), TIMEOUT).unwrap())
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

fn sqlite_path(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("data/shared.db")
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
    lists,
    lists_do_not_mix_with_other_kinds,
    keys_by_prefix,
    rename,
    sessions_regenerate_and_destroy,
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

/// The session id in a `Set-Cookie` value the call produced.
fn cookie_id(set_cookie: Option<String>) -> Option<String> {
    let value = set_cookie?.strip_prefix("drupe_session=")?.to_owned();
    Some(value.split(';').next()?.to_owned())
}

fn namespaces_and_sessions(f: &Fixture) {
    let mut s = f.open();
    let session_ttl = ms(200);
    let mut call = CallStore::default();
    let mut run = |call: &mut CallStore, op| call.run(&mut *s, op, session_ttl).unwrap();

    call.begin("alpha", std::iter::empty(), false);
    assert_eq!(run(&mut call, Op::Incr(b"k", 5)), Reply::Int(5));
    call.begin("beta", std::iter::empty(), false);
    assert_eq!(
        run(&mut call, Op::Get(b"k")),
        Reply::NotFound,
        "beta cannot see alpha's k"
    );
    assert_eq!(run(&mut call, Op::Keys(b"", 10)), Reply::List(vec![]));
    // A plugin whose namespace is "alpha" (storeNamespace) shares it.
    call.begin("alpha", std::iter::empty(), false);
    assert_eq!(
        run(&mut call, Op::Keys(b"", 10)),
        Reply::List(vec![b"k".to_vec()]),
        "names without the namespace"
    );
    call.begin("beta", std::iter::empty(), false);
    // Reading a session never creates one.
    assert_eq!(run(&mut call, Op::SessionGet(b"visits")), Reply::NotFound);
    assert_eq!(call.take_set_cookie(), None);
    // The first write does, once.
    assert_eq!(run(&mut call, Op::SessionIncr(b"visits", 1)), Reply::Int(1));
    assert_eq!(run(&mut call, Op::SessionSet(b"name", b"Ana")), Reply::Done);
    let id = cookie_id(call.take_set_cookie()).expect("a new session");
    assert_eq!(call.take_set_cookie(), None);
    let cookie = format!("x=1; drupe_session={id}");
    let headers = || std::iter::once((&b"Cookie"[..], cookie.as_bytes()));

    // The next request brings the cookie back: same session, nothing new.
    call.begin("beta", headers(), false);
    assert_eq!(run(&mut call, Op::SessionIncr(b"visits", 1)), Reply::Int(2));
    assert_eq!(
        run(&mut call, Op::SessionGet(b"name")),
        Reply::Bytes(b"Ana".to_vec())
    );
    assert_eq!(call.take_set_cookie(), None);
    // Another plugin shares the session but not the fields.
    call.begin("alpha", headers(), false);
    assert_eq!(run(&mut call, Op::SessionGet(b"name")), Reply::NotFound);
    assert_eq!(run(&mut call, Op::SessionRemove(b"name")), Reply::NotFound);
    call.begin("beta", headers(), false);
    assert_eq!(run(&mut call, Op::SessionRemove(b"name")), Reply::Done);

    // Use keeps it alive past its idle timeout …
    for _ in 0..3 {
        std::thread::sleep(ms(100));
        call.begin("beta", headers(), false);
        assert!(matches!(
            run(&mut call, Op::SessionGet(b"visits")),
            Reply::Bytes(_)
        ));
    }
    // … and idleness ends it; the old cookie then gets a new session.
    std::thread::sleep(ms(400));
    call.begin("beta", headers(), false);
    assert_eq!(run(&mut call, Op::SessionGet(b"visits")), Reply::NotFound);
    assert_eq!(run(&mut call, Op::SessionIncr(b"visits", 1)), Reply::Int(1));
    assert_ne!(cookie_id(call.take_set_cookie()), Some(id));

    // A made-up id is never adopted (session fixation).
    let forged = "drupe_session=0123456789abcdef0123456789abcdef";
    call.begin(
        "beta",
        std::iter::once((&b"cookie"[..], forged.as_bytes())),
        false,
    );
    assert_eq!(run(&mut call, Op::SessionSet(b"k", b"v")), Reply::Done);
    assert_ne!(
        cookie_id(call.take_set_cookie()).as_deref(),
        Some(&forged[14..])
    );
}

fn lists(f: &Fixture) {
    let mut s = f.open();
    assert_eq!(s.len(b"l").unwrap(), 0);
    assert_eq!(s.range(b"l", 0, -1).unwrap(), Vec::<Vec<u8>>::new());
    for (i, item) in [&b"a"[..], b"b", b"", b"d"].iter().enumerate() {
        assert_eq!(s.push(b"l", item).unwrap(), i as i64 + 1);
    }
    assert_eq!(s.len(b"l").unwrap(), 4);
    let items = |v: &[&[u8]]| v.iter().map(|i| i.to_vec()).collect::<Vec<_>>();
    assert_eq!(
        s.range(b"l", 0, -1).unwrap(),
        items(&[b"a", b"b", b"", b"d"])
    );
    assert_eq!(
        s.range(b"l", 1, 2).unwrap(),
        items(&[b"b", b""]),
        "stop included"
    );
    assert_eq!(s.range(b"l", -2, -1).unwrap(), items(&[b"", b"d"]));
    assert_eq!(s.range(b"l", -100, 0).unwrap(), items(&[b"a"]), "clamped");
    assert_eq!(s.range(b"l", 3, 100).unwrap(), items(&[b"d"]));
    assert_eq!(s.range(b"l", 2, 1).unwrap(), items(&[]));
    assert_eq!(s.range(b"l", 4, 10).unwrap(), items(&[]));
    assert!(s.exists(b"l").unwrap());
    // A list keeps its TTL as it grows, and goes with it.
    assert!(s.expire(b"l", ms(150)).unwrap());
    assert_eq!(s.push(b"l", b"e").unwrap(), 5);
    std::thread::sleep(ms(300));
    assert_eq!(s.len(b"l").unwrap(), 0);
    assert_eq!(s.push(b"l", b"new").unwrap(), 1, "a fresh list");
    assert!(s.delete(b"l").unwrap());
    assert_eq!(s.range(b"l", 0, -1).unwrap(), items(&[]));
}

fn lists_do_not_mix_with_other_kinds(f: &Fixture) {
    let mut s = f.open();
    s.push(b"l", b"x").unwrap();
    s.set(b"s", b"v", None).unwrap();
    s.hset(b"h", b"f", b"v", None).unwrap();
    for key in [&b"s"[..], b"h"] {
        assert!(is_other(s.push(key, b"x")), "push");
        assert!(is_other(s.range(key, 0, -1)), "range");
        assert!(is_other(s.len(key)), "len");
    }
    assert!(is_other(s.get(b"l")));
    assert!(is_other(s.incr(b"l", 1)));
    assert!(is_other(s.hget(b"l", b"f")));
    assert!(is_other(s.hset(b"l", b"f", b"v", None)));
    assert!(is_other(s.hget_all(b"l")));
    assert!(is_other(s.hincr(b"l", b"f", 1, None)));
    // SET replaces a list, items and all.
    s.set(b"l", b"text", None).unwrap();
    assert_eq!(s.get(b"l").unwrap().as_deref(), Some(&b"text"[..]));
    s.delete(b"l").unwrap();
    assert_eq!(s.push(b"l", b"y").unwrap(), 1, "no items left behind");
}

fn keys_by_prefix(f: &Fixture) {
    let mut s = f.open();
    assert_eq!(s.keys(b"p:", 10).unwrap(), Vec::<Vec<u8>>::new());
    s.set(b"p:b", b"1", None).unwrap();
    s.hset(b"p:a", b"f", b"1", None).unwrap();
    s.push(b"p:c", b"1").unwrap();
    s.set(b"p:\xff", b"1", None).unwrap();
    s.set(b"p:*", b"glob", None).unwrap();
    s.set(b"q:a", b"other prefix", None).unwrap();
    s.set(b"p", b"shorter", None).unwrap();
    s.set(b"p:gone", b"1", Some(ms(50))).unwrap();
    std::thread::sleep(ms(150));
    let keys = |v: &[&[u8]]| v.iter().map(|k| k.to_vec()).collect::<Vec<_>>();
    assert_eq!(
        s.keys(b"p:", 100).unwrap(),
        keys(&[b"p:*", b"p:a", b"p:b", b"p:c", b"p:\xff"]),
        "every kind, sorted bytewise, live only"
    );
    assert_eq!(
        s.keys(b"p:", 2).unwrap(),
        keys(&[b"p:*", b"p:a"]),
        "the first 2"
    );
    assert_eq!(
        s.keys(b"p:*", 10).unwrap(),
        keys(&[b"p:*"]),
        "a glob is a literal"
    );
    assert_eq!(s.keys(b"p:", 0).unwrap(), keys(&[]));
    assert_eq!(s.keys(b"", 100).unwrap().len(), 7);
}

fn rename(f: &Fixture) {
    let mut s = f.open();
    assert!(!s.rename(b"missing", b"to").unwrap());
    assert!(!s.exists(b"to").unwrap());
    s.hset(b"from", b"f", b"v", Some(Duration::from_secs(60)))
        .unwrap();
    s.set(b"to", b"old", None).unwrap();
    assert!(s.rename(b"from", b"to").unwrap());
    assert!(!s.exists(b"from").unwrap());
    assert_eq!(s.hget(b"to", b"f").unwrap().as_deref(), Some(&b"v"[..]));
    s.push(b"list", b"x").unwrap();
    assert!(s.rename(b"list", b"list2").unwrap());
    assert_eq!(s.len(b"list2").unwrap(), 1);
    assert_eq!(s.len(b"list").unwrap(), 0);
}

fn sessions_regenerate_and_destroy(f: &Fixture) {
    let mut s = f.open();
    let ttl = Duration::from_secs(60);
    let mut call = CallStore::default();
    let mut run = |call: &mut CallStore, op| call.run(&mut *s, op, ttl).unwrap();
    let begin = |call: &mut CallStore, id: &str| {
        let cookie = format!("drupe_session={id}");
        call.begin(
            "p",
            std::iter::once((&b"Cookie"[..], cookie.as_bytes())),
            false,
        );
    };

    // Without a session, both do nothing and send no cookie.
    call.begin("p", std::iter::empty(), false);
    assert_eq!(run(&mut call, Op::SessionRegenerate), Reply::Done);
    assert_eq!(run(&mut call, Op::SessionDestroy), Reply::Done);
    assert_eq!(call.take_set_cookie(), None);

    call.begin("p", std::iter::empty(), false);
    run(&mut call, Op::SessionSet(b"user", b"ana"));
    let old = cookie_id(call.take_set_cookie()).unwrap();

    // Regenerate: same data under a new id; the old id is dead.
    begin(&mut call, &old);
    assert_eq!(run(&mut call, Op::SessionRegenerate), Reply::Done);
    let new = cookie_id(call.take_set_cookie()).expect("the new id's cookie");
    assert_ne!(new, old);
    begin(&mut call, &new);
    assert_eq!(
        run(&mut call, Op::SessionGet(b"user")),
        Reply::Bytes(b"ana".to_vec())
    );
    assert_eq!(call.take_set_cookie(), None);
    begin(&mut call, &old);
    assert_eq!(run(&mut call, Op::SessionGet(b"user")), Reply::NotFound);

    // Destroy: the data is gone and the cookie expires; a later write in
    // the same call starts a new session instead.
    begin(&mut call, &new);
    assert_eq!(run(&mut call, Op::SessionDestroy), Reply::Done);
    assert_eq!(run(&mut call, Op::SessionGet(b"user")), Reply::NotFound);
    let removal = call.take_set_cookie().unwrap();
    assert!(removal.starts_with("drupe_session=;"), "{removal}");
    assert!(removal.contains("; Max-Age=0"), "{removal}");
    begin(&mut call, &new);
    assert_eq!(run(&mut call, Op::SessionGet(b"user")), Reply::NotFound);
    assert_eq!(run(&mut call, Op::SessionDestroy), Reply::Done);
    assert_eq!(run(&mut call, Op::SessionSet(b"user", b"bo")), Reply::Done);
    let fresh = cookie_id(call.take_set_cookie()).expect("one cookie: the new session");
    assert_ne!(fresh, new);
}

// ---- backend-specific ----

#[test]
fn sqlite_lock_held_too_long_is_unavailable_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db");
    SqliteStore::create(&path, ms(200)).unwrap();
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
fn sqlite_a_store_that_cannot_be_created_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"not a folder").unwrap();
    let path = file.join("x.db");
    let e = SqliteStore::create(&path, TIMEOUT).unwrap_err();
    assert!(e.message().contains(&path.display().to_string()), "{e}");
    assert!(e.message().contains("folder"), "{e}");
    let e = SqliteStore::create(std::path::Path::new("/proc/x.db"), TIMEOUT).unwrap_err();
    assert!(e.message().contains("/proc/x.db"), "{e}");
}

#[test]
fn sqlite_workers_only_open_and_never_race_to_create() {
    let dir = tempfile::tempdir().unwrap();
    let path = sqlite_path(&dir);
    // Before the probe made it: open creates nothing and says so.
    let e = SqliteStore::open(&path, TIMEOUT).unwrap_err();
    assert!(e.message().contains(&path.display().to_string()), "{e}");
    assert!(!path.exists());
    SqliteStore::create(&path, TIMEOUT).unwrap();
    SqliteStore::create(&path, TIMEOUT).unwrap(); // a reload's probe: no change
                                                  // Many first opens and first writes at once, as workers starting
                                                  // under their first requests.
    let start = std::sync::Barrier::new(16);
    std::thread::scope(|scope| {
        for _ in 0..16 {
            scope.spawn(|| {
                start.wait();
                let mut store = SqliteStore::open(&path, TIMEOUT).unwrap();
                store.incr(b"n", 1).unwrap();
            });
        }
    });
    let mut store = SqliteStore::open(&path, TIMEOUT).unwrap();
    assert_eq!(store.get(b"n").unwrap().as_deref(), Some(&b"16"[..]));
}

#[test]
fn redis_down_hung_and_back() {
    let mut server = RedisServer::start();
    let timeout = ms(300);
    let mut store = RedisStore::new(&server.url(), ms(200), timeout).unwrap();
    assert_eq!(store.incr(b"n", 1).unwrap(), 1);

    // Hung: every call gives up within its budget, connecting included.
    // The first INCR goes out on the open connection and gets no answer:
    // its outcome is unknown. The next ones fail fast without sending
    // (the thread backs off), or, connecting into the frozen server's
    // backlog, are sent and unanswered again; never "unavailable" once sent.
    server.pause();
    for i in 0..3 {
        let started = Instant::now();
        let result = store.incr(b"n", 1);
        match result {
            Err(StoreError::OutcomeUnknown(_)) => {}
            Err(StoreError::Unavailable(_)) if i > 0 => {}
            other => panic!("INCR {i} on a frozen Redis: {other:?}"),
        }
        assert!(
            started.elapsed() < timeout + ms(200),
            "{:?}",
            started.elapsed()
        );
    }
    // A read that times out was not worth an unknown outcome: repeating it
    // is harmless.
    std::thread::sleep(super::redis::RECONNECT_BACKOFF);
    assert!(matches!(store.get(b"n"), Err(StoreError::Unavailable(_))));
    server.resume();
    std::thread::sleep(super::redis::RECONNECT_BACKOFF);
    // An INCR that reached the frozen server's socket ran when it woke: a
    // timed-out command may have been applied, which is why INCR is never
    // retried (that could count twice) and reported as unknown.
    let n = store.incr(b"n", 1).unwrap();
    assert!((3..=5).contains(&n), "{n}");

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

/// A fake Redis on a free port that answers every command on a connection
/// with `:N` (N counting commands across connections), and resets the
/// first connection (RST, not FIN) after its first answer. It refuses
/// `CLIENT INFO`, as a Redis older than 6.2 does, so the store cannot
/// find the socket to watch and must learn from the failed write.
fn resetting_server() -> (u16, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        let mut answered = 0;
        for (i, stream) in listener.incoming().take(2).enumerate() {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 512];
            while let Ok(n @ 1..) = stream.read(&mut buf) {
                if buf[..n].windows(6).any(|w| w == b"CLIENT") {
                    stream.write_all(b"-ERR unknown command\r\n").unwrap();
                    continue;
                }
                answered += 1;
                stream
                    .write_all(format!(":{answered}\r\n").as_bytes())
                    .unwrap();
                if i == 0 {
                    // Linger 0: close() sends RST, so the client's next
                    // write fails instead of reaching a closed socket.
                    let linger = nix::libc::linger {
                        l_onoff: 1,
                        l_linger: 0,
                    };
                    nix::sys::socket::setsockopt(
                        &stream,
                        nix::sys::socket::sockopt::Linger,
                        &linger,
                    )
                    .unwrap();
                    break;
                }
            }
        }
    });
    (port, thread)
}

#[test]
fn redis_a_failed_write_is_not_sent_so_even_incr_is_retried() {
    let (port, server) = resetting_server();
    let url = format!("redis://127.0.0.1:{port}");
    let mut store = RedisStore::new(&url, TIMEOUT, TIMEOUT).unwrap();
    assert_eq!(store.incr(b"n", 1).unwrap(), 1);
    // The reset has arrived well before the next command (loopback), and
    // the connection is fresh enough to skip the idle check.
    std::thread::sleep(ms(20));
    assert_eq!(
        store.incr(b"n", 1).unwrap(),
        2,
        "retried on a new connection"
    );
    drop(store);
    server.join().unwrap();
}

#[test]
fn redis_restart_between_two_busy_increments_does_not_fail_the_second() {
    let mut server = RedisServer::start();
    let mut store = RedisStore::new(&server.url(), TIMEOUT, TIMEOUT).unwrap();
    assert_eq!(store.incr(b"n", 1).unwrap(), 1);
    // Faster than the idle check: the closed socket itself must tell.
    let started = Instant::now();
    server.restart();
    let restart = started.elapsed();
    let n = store.incr(b"n", 1);
    assert_eq!(n, Ok(1), "the restart took {restart:?}");
}
