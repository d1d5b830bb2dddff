//! Several drupe hosts behind a load balancer, sharing one Redis (README,
//! "Running several hosts"): a real `redis-server`, two real drupe hosts
//! and a real HAProxy (or nginx) running the committed config with the
//! test's ports, all on loopback, all started here and killed at the end.
//!
//! What must hold: counting through the balancer is exact whichever host
//! answers; a session started on one host is the same on the other; and a
//! host told to stop (TERM) leaves the rotation — its health check fails,
//! it drains, it stops — without one client seeing an error, and takes
//! traffic again once restarted.

use crate::balancer::{program, Haproxy, Nginx};
use crate::load::{Load, Mode};
use crate::proxy::{connect_from, CLIENT};
use crate::support::{exclusive, request, Client, Response, Server, Signal, Site};
use drupe_tests::redis::RedisServer;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

const PLUGINS: &[&str] = &["counter", "session", "testkit"];

/// How the balancer names the client to the hosts, as the site files say.
const BEHIND_HAPROXY: &str = "proxyProtocol = true\n";
const BEHIND_NGINX: &str = "trustedProxies = 127.0.0.1/32\n";

/// As `config/site-800N.ini`, on a free port and the test's Redis, with
/// `behind` (`BEHIND_HAPROXY` or `BEHIND_NGINX`) in `[server]`.
fn start_host(redis: &RedisServer, behind: &str) -> Server {
    Site::new(
        PLUGINS,
        &format!(
            "[server]\nsocketPort = 0\nfixedNumberOfProcesses = 2\nthreadPool = 4\n\
             drainPeriod = 2\n{behind}[store]\nurl = {}\n",
            redis.url()
        ),
    )
    .start()
}

/// Redis, two hosts, and HAProxy once it sees both hosts UP. Fields drop
/// in order: the balancer, the hosts, then Redis.
struct Cluster {
    haproxy: Haproxy,
    hosts: [Server; 2],
    _redis: RedisServer,
}

/// HAProxy's names for the two hosts (`server host8001 …` in the config).
const NAMES: [&str; 2] = ["host8001", "host8002"];

impl Cluster {
    fn start() -> Cluster {
        let redis = RedisServer::start();
        let hosts = [
            start_host(&redis, BEHIND_HAPROXY),
            start_host(&redis, BEHIND_HAPROXY),
        ];
        let haproxy = Haproxy::start([hosts[0].addr(), hosts[1].addr()]);
        for name in NAMES {
            haproxy.wait_for(name, "UP", Duration::from_secs(10));
        }
        Cluster {
            haproxy,
            hosts,
            _redis: redis,
        }
    }

    fn logs(&self) -> String {
        format!(
            "haproxy:\n{}\nhost8001:\n{}\nhost8002:\n{}",
            self.haproxy.balancer.log(),
            self.hosts[0].log(),
            self.hosts[1].log()
        )
    }
}

/// Which host answered, as the balancer says (`X-Drupe-Host`).
fn served_by(resp: &Response) -> String {
    resp.header("X-Drupe-Host").unwrap_or("?").to_owned()
}

const POST_X: &str = "POST /counter/x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n";

#[test]
fn ten_thousand_concurrent_posts_through_haproxy_count_exactly() {
    let _alone = exclusive();
    let cluster = Cluster::start();
    let addr = cluster.haproxy.addr();
    // 40 keep-alive clients and 10 that connect anew for every request,
    // 200 POSTs each, all at once.
    let started = Instant::now();
    let clients: Vec<_> = (0..50)
        .map(|i| {
            std::thread::spawn(move || {
                let mut values = Vec::with_capacity(200);
                let mut hosts: BTreeMap<String, usize> = BTreeMap::new();
                let mut kept = (i < 40).then(|| Client::connect(addr));
                for n in 0..200 {
                    let resp = match &mut kept {
                        Some(client) => client.roundtrip(POST_X),
                        None => request(
                            addr,
                            &POST_X.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n"),
                        ),
                    };
                    assert_eq!(resp.status, 200, "client {i}, POST {n}: {}", resp.text());
                    *hosts.entry(served_by(&resp)).or_default() += 1;
                    values.push(resp.text().parse::<u32>().expect("the new value"));
                }
                (values, hosts)
            })
        })
        .collect();
    let mut values = Vec::new();
    let mut hosts: BTreeMap<String, usize> = BTreeMap::new();
    for client in clients {
        let (v, h) = client.join().expect("client thread");
        values.extend(v);
        for (host, n) in h {
            *hosts.entry(host).or_default() += n;
        }
    }
    let took = started.elapsed();
    eprintln!("10000 POSTs through HAProxy over 50 clients in {took:?}: {hosts:?}");
    // Every increment happened once: each value 1..=10000 came back once.
    values.sort_unstable();
    assert!(values.iter().copied().eq(1..=10_000), "{}", cluster.logs());
    let resp = request(
        addr,
        "GET /counter/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(resp.text(), "10000");
    for name in NAMES {
        assert!(
            hosts.get(name).is_some_and(|&n| n > 1000),
            "{name} took too little of the load: {hosts:?}"
        );
    }
}

/// Visits `/session` through `addr` with `cookie` until both hosts have
/// answered; every visit counts once, wherever it lands.
fn visits_on_both_hosts(
    addr: SocketAddr,
    cookie: &str,
    mut expected: u32,
) -> BTreeMap<String, u32> {
    let mut seen = BTreeMap::new();
    for _ in 0..20 {
        let resp = request(
            addr,
            &format!(
                "GET /session HTTP/1.1\r\nHost: t\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
            ),
        );
        assert_eq!(resp.text(), expected.to_string(), "{resp:?}");
        assert_eq!(resp.header("Set-Cookie"), None, "the session is known");
        *seen.entry(served_by(&resp)).or_default() += 1;
        expected += 1;
        if seen.len() == 2 && expected > 4 {
            break;
        }
    }
    seen
}

/// The first visit: its cookie and the host that started the session.
fn new_session(addr: SocketAddr) -> (String, String) {
    let first = request(
        addr,
        "GET /session HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((first.status, first.text().as_str()), (200, "1"));
    let cookie = first
        .header("Set-Cookie")
        .and_then(|c| c.split(';').next())
        .expect("Set-Cookie on a new session")
        .to_owned();
    assert!(cookie.starts_with("drupe_session="), "{cookie}");
    (cookie, served_by(&first))
}

#[test]
fn a_session_started_through_one_host_is_read_through_the_other() {
    let cluster = Cluster::start();
    let (cookie, started_on) = new_session(cluster.haproxy.addr());
    let seen = visits_on_both_hosts(cluster.haproxy.addr(), &cookie, 2);
    assert_eq!(seen.len(), 2, "both hosts served the session: {seen:?}");
    assert!(NAMES.contains(&started_on.as_str()), "{started_on}");
}

#[test]
fn term_of_a_host_under_load_costs_no_client_an_error_and_it_rejoins() {
    let _alone = exclusive();
    let mut cluster = Cluster::start();
    let addr = cluster.haproxy.addr();
    let load = Load::start(
        addr,
        "/testkit/pid",
        &[
            Mode::KeepAlive,
            Mode::KeepAlive,
            Mode::KeepAlive,
            Mode::Close,
            Mode::Close,
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    let before = cluster.hosts[0].worker_pids();
    let other = cluster.hosts[1].worker_pids();
    let port = cluster.hosts[0].addr().port();
    let term = Instant::now();
    cluster.hosts[0].signal(Signal::SIGTERM);
    let down = cluster
        .haproxy
        .wait_for(NAMES[0], "DOWN", Duration::from_secs(5));
    // The point of the drain: out of rotation while it still accepts.
    assert!(
        cluster.hosts[0].child.try_wait().expect("wait").is_none(),
        "the host stopped before HAProxy took it out of rotation:\n{}",
        cluster.logs()
    );
    assert_eq!(
        cluster.hosts[0].wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        cluster.logs()
    );
    let exited = term.elapsed();
    std::thread::sleep(Duration::from_millis(300)); // served by the other host alone
    let ini = cluster.hosts[0]
        .site
        .ini()
        .replace("socketPort = 0", &format!("socketPort = {port}"));
    cluster.hosts[0].site.rewrite_ini(&ini);
    let restarted = Instant::now();
    cluster.hosts[0].restart();
    let up = cluster
        .haproxy
        .wait_for(NAMES[0], "UP", Duration::from_secs(10));
    let rejoined = restarted.elapsed();
    let after = cluster.hosts[0].worker_pids();
    std::thread::sleep(Duration::from_millis(700));
    let tally = load.finish();
    eprintln!(
        "TERM of a host behind HAProxy: DOWN after {}ms, exited after {}ms; restarted and UP \
         again after {}ms ({}ms after listening); {} answered, {} retried, {} failed",
        down.as_millis(),
        exited.as_millis(),
        rejoined.as_millis(),
        up.as_millis(),
        tally.answered(),
        tally.retried,
        tally.failures.len()
    );
    assert!(
        tally.failures.is_empty() && tally.retried == 0,
        "{:?} ({} retried)\n{}",
        tally.failures,
        tally.retried,
        cluster.logs()
    );
    let by_pid = |pids: &[i32]| -> usize {
        pids.iter()
            .map(|p| tally.answers.get(&format!("200 {p}")).copied().unwrap_or(0))
            .sum()
    };
    let (old, kept, new) = (by_pid(&before), by_pid(&other), by_pid(&after));
    eprintln!("answers: stopped host {old}, other host {kept}, restarted host {new}");
    assert_eq!(
        old + kept + new,
        tally.answered(),
        "every answer is a 200 from a worker: {:?}",
        tally.answers
    );
    assert!(old > 0 && kept > 0, "{:?}", tally.answers);
    assert!(
        new > 0,
        "the restarted host took no traffic: {:?}",
        tally.answers
    );
}

#[test]
fn nginx_balances_over_both_hosts_and_they_share_sessions() {
    let redis = RedisServer::start();
    let hosts = [
        start_host(&redis, BEHIND_NGINX),
        start_host(&redis, BEHIND_NGINX),
    ];
    let nginx = Nginx::start([hosts[0].addr(), hosts[1].addr()]);
    let mut seen = BTreeMap::new();
    for _ in 0..10 {
        let resp = request(nginx.addr(), POST_X);
        assert_eq!(resp.status, 200, "{}", nginx.balancer.log());
        *seen.entry(served_by(&resp)).or_insert(0) += 1;
    }
    let mut upstreams: Vec<String> = hosts.iter().map(|h| h.addr().to_string()).collect();
    upstreams.sort();
    assert_eq!(
        seen.keys().cloned().collect::<Vec<_>>(),
        upstreams,
        "{seen:?}"
    );
    assert_eq!(hosts[1].get("/counter/x").text(), "10");
    let (cookie, _) = new_session(nginx.addr());
    assert_eq!(visits_on_both_hosts(nginx.addr(), &cookie, 2).len(), 2);
    // The hosts trust nginx's X-Forwarded-For, and only the address nginx
    // appended: not the one the client wrote itself.
    let mut client = connect_from(CLIENT, nginx.addr());
    for _ in 0..2 {
        let resp = client.roundtrip(
            "GET /testkit/remote HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 203.0.113.66\r\n\r\n",
        );
        assert_eq!(resp.text(), "127.0.0.5:0 http", "{}", nginx.balancer.log());
    }
}

/// Through HAProxy's send-proxy-v2, plugins and the access log see the
/// client, not HAProxy, on every request of a kept-alive connection (a
/// PROXY address lost after the first request was gunicorn #899).
#[test]
fn behind_haproxy_send_proxy_v2_the_client_address_reaches_plugins_and_the_access_log() {
    let redis = RedisServer::start();
    let hosts = [0, 1].map(|_| {
        Site::new(
            PLUGINS,
            &format!(
                "[server]\nsocketPort = 0\nfixedNumberOfProcesses = 2\nthreadPool = 2\n\
                 {BEHIND_HAPROXY}[store]\nurl = {}\n[log]\naccessLog = access.log\n",
                redis.url()
            ),
        )
        .start()
    });
    let haproxy = Haproxy::start([hosts[0].addr(), hosts[1].addr()]);
    // UP means HAProxy's checks, which send a PROXY header too, pass.
    for name in NAMES {
        haproxy.wait_for(name, "UP", Duration::from_secs(10));
    }
    let mut client = connect_from(CLIENT, haproxy.addr());
    let mut seen = BTreeMap::new();
    for n in 0..6 {
        let resp = client.roundtrip("GET /testkit/remote HTTP/1.1\r\nHost: t\r\n\r\n");
        let text = resp.text();
        assert!(
            text.starts_with("127.0.0.5:") && text.ends_with(" http"),
            "request {n}: {text}\n{}",
            haproxy.balancer.log()
        );
        *seen.entry(served_by(&resp)).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 2, "both hosts answered: {seen:?}");
    let lines = || -> Vec<String> {
        hosts
            .iter()
            .flat_map(|h| {
                std::fs::read_to_string(h.site.path("access.log"))
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.contains("/testkit/remote"))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    crate::support::eventually(Duration::from_secs(5), "6 access log lines", || {
        lines().len() == 6
    });
    {
        for line in lines() {
            assert!(line.starts_with("127.0.0.5 - - ["), "{line}");
        }
    }
}

#[test]
fn the_committed_haproxy_and_nginx_configs_are_valid() {
    let config = crate::support::root().join("config");
    let out = Command::new(program("haproxy"))
        .arg("-c")
        .arg("-f")
        .arg(config.join("haproxy.cfg"))
        .output()
        .expect("run haproxy -c");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "haproxy -c -f config/haproxy.cfg:\n{text}"
    );
    assert!(!text.contains("WARNING"), "{text}");
    let prefix = tempfile::tempdir().expect("temp dir");
    let out = Command::new(program("nginx"))
        .arg("-p")
        .arg(prefix.path())
        .args(["-e", "stderr", "-t", "-c"])
        .arg(config.join("nginx.conf"))
        .output()
        .expect("run nginx -t");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "nginx -t -c config/nginx.conf:\n{text}"
    );
    assert!(text.contains("test is successful"), "{text}");
}
