//! Supervision with real processes, real signals and concurrent load from
//! the test (`load`): crashed and stuck workers are replaced, reloads drop
//! nothing, stops are graceful, log files reopen.

use crate::load::{Load, Mode};
use crate::support::{alive, children_of, eventually, plugin, Signal, Site};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

fn pid(raw: i32) -> Pid {
    Pid::from_raw(raw)
}

#[test]
fn kill_9_of_a_worker_is_replaced_within_a_second_and_the_others_keep_answering() {
    let server = Site::new(&["testkit"], "").start();
    let before = server.worker_pids();
    assert_eq!(before.len(), 2);
    let load = Load::start(
        server.addr(),
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
    let victim = before[0];
    let killed = Instant::now();
    nix::sys::signal::kill(pid(victim), Signal::SIGKILL).expect("kill");
    eventually(Duration::from_secs(2), "the victim to die", || {
        !alive(victim)
    });
    let dead = Instant::now();
    eventually(Duration::from_secs(2), "a replacement worker", || {
        let now = server.worker_pids();
        now.len() == 2 && !now.contains(&victim)
    });
    let replaced_in = killed.elapsed();
    std::thread::sleep(Duration::from_millis(700));
    let tally = load.finish();
    eprintln!(
        "kill -9: replaced in {}ms; {} answered, {} retried, {} lost",
        replaced_in.as_millis(),
        tally.answered(),
        tally.retried,
        tally.failures.len()
    );
    assert!(replaced_in < Duration::from_secs(1), "{replaced_in:?}");
    // Only requests in flight on the victim may be lost: on a connection
    // to it, or on a fresh one opened before it died.
    for f in &tally.failures {
        let on_victim = f.last_body.as_deref() == Some(victim.to_string().as_str());
        assert!(
            on_victim || (f.last_body.is_none() && f.opened < dead),
            "lost a request not in flight on the killed worker ({}): {f:?}",
            f.what
        );
    }
    assert!(tally.failures.len() <= 2, "{:?}", tally.failures);
    assert!(
        tally.answers.contains_key(&format!("200 {victim}")),
        "the victim was under load before it died: {:?}",
        tally.answers
    );
    let after = server.worker_pids();
    let replacement = after.iter().find(|p| !before.contains(p)).expect("new pid");
    assert!(
        tally.answers.contains_key(&format!("200 {replacement}")),
        "the replacement never answered: {:?}",
        tally.answers
    );
    assert!(tally.answered() > 100, "{tally:?}");
}

#[test]
fn hup_under_load_drops_nothing_and_every_worker_serves_the_new_config() {
    let server = Site::new(&["hello", "testkit"], "[plugin.hello]\ngreeting = Hello\n").start();
    let before = server.worker_pids();
    let mut modes = vec![Mode::KeepAlive; 4];
    modes.extend([Mode::Close; 4]);
    let load = Load::start(server.addr(), "/hello/you", &modes);
    std::thread::sleep(Duration::from_millis(800));
    let ini = server
        .site
        .ini()
        .replace("greeting = Hello", "greeting = Howdy");
    server.site.rewrite_ini(&ini);
    let hup = Instant::now();
    server.signal(Signal::SIGHUP);
    eventually(Duration::from_secs(10), "the reload to roll out", || {
        server.log().contains("generation 2 serves on all")
    });
    let rolled = hup.elapsed();
    std::thread::sleep(Duration::from_millis(1000));
    let tally = load.finish();
    eprintln!(
        "HUP under load: rolled out in {}ms; {} answered, {} retried, {} failed: {:?}",
        rolled.as_millis(),
        tally.answered(),
        tally.retried,
        tally.failures.len(),
        tally.answers
    );
    assert!(tally.failures.is_empty(), "{:?}", tally.failures);
    let old = tally.answers.get("200 Hello, you!").copied().unwrap_or(0);
    let new = tally.answers.get("200 Howdy, you!").copied().unwrap_or(0);
    assert_eq!(old + new, tally.answered(), "{:?}", tally.answers);
    assert!(old > 0 && new > 0, "{:?}", tally.answers);
    eventually(Duration::from_secs(5), "the old workers to exit", || {
        let now = server.worker_pids();
        now.len() == 2 && now.iter().all(|p| !before.contains(p))
    });
    for _ in 0..20 {
        assert_eq!(server.get("/hello/you").text(), "Howdy, you!");
    }
}

#[test]
fn a_broken_ini_on_hup_keeps_the_old_generation_and_restart_settings_are_named() {
    let server = Site::new(&["hello"], "").start();
    let before = server.worker_pids();
    let good = server.site.ini().to_owned();
    server.site.rewrite_ini("[server\nthis is not INI\n");
    server.signal(Signal::SIGHUP);
    eventually(
        Duration::from_secs(5),
        "the failed reload in the log",
        || server.log().contains("reload failed"),
    );
    assert!(
        server.log().contains("generation 1 keeps serving"),
        "{}",
        server.log()
    );
    assert_eq!(server.get("/hello").status, 200);
    assert_eq!(server.worker_pids(), before);

    server
        .site
        .rewrite_ini(&format!("{good}socketQueueSize = 64\n"));
    server.signal(Signal::SIGHUP);
    eventually(Duration::from_secs(5), "the reload to roll out", || {
        server.log().contains("generation 2 serves on all")
    });
    let log = server.log();
    assert!(
        log.contains("socketQueueSize (1024 -> 64) changed but only take effect after a restart"),
        "{log}"
    );
    assert_eq!(server.get("/hello").status, 200);
}

/// Writes `bytes` into the plugin directory under a temporary name, then
/// renames it to `name`: the way to drop a plugin into a watched folder.
fn drop_plugin(site: &Site, name: &str, bytes: &[u8]) {
    let dir = site.path("plugins.d");
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).expect("write plugin");
    std::fs::rename(&tmp, dir.join(name)).expect("rename plugin");
}

#[test]
fn a_plugin_dropped_into_the_watched_directory_is_live_within_seconds() {
    let server = Site::new(&["hello"], "").start();
    assert_eq!(server.get("/testkit/pid").status, 404);
    let bytes = std::fs::read(plugin("testkit")).expect("testkit.so");
    let dropped = Instant::now();
    drop_plugin(&server.site, "testkit.so", &bytes);
    eventually(Duration::from_secs(5), "testkit to be served", || {
        server.log().contains("generation 2 serves on all")
    });
    eprintln!(
        "watch: live {}ms after the rename",
        dropped.elapsed().as_millis()
    );
    for _ in 0..10 {
        assert_eq!(server.get("/testkit/pid").status, 200);
        assert_eq!(server.get("/hello").status, 200);
    }
}

#[test]
fn a_broken_plugin_dropped_in_leaves_the_old_generation_serving() {
    let server = Site::new(&["hello", "testkit"], "").start();
    let before = server.worker_pids();
    drop_plugin(&server.site, "broken.so", b"\x7fELF but not really");
    eventually(Duration::from_secs(5), "the probe to refuse it", || {
        server.log().contains("failed its probe")
    });
    let log = server.log();
    assert!(log.contains("broken.so"), "{log}");
    assert!(log.contains("generation 1 keeps serving"), "{log}");
    eventually(Duration::from_secs(2), "the probe to be reaped", || {
        server.worker_pids() == before
    });
    for _ in 0..10 {
        let resp = server.get("/testkit/pid");
        assert_eq!(resp.status, 200);
        assert!(before.contains(&resp.text().parse().expect("pid")));
    }
}

#[test]
fn overwriting_a_loaded_plugin_in_place_under_load_crashes_no_worker() {
    let server = Site::new(&["hello"], "").start();
    let load = Load::start(
        server.addr(),
        "/hello",
        &[Mode::KeepAlive, Mode::KeepAlive, Mode::Close, Mode::Close],
    );
    std::thread::sleep(Duration::from_millis(300));
    // `cp` over the file the workers loaded: truncate, then write. Without
    // a private snapshot per generation this is a SIGBUS in every worker.
    std::fs::copy(plugin("testkit"), server.site.path("plugins.d/hello.so")).expect("cp");
    eventually(Duration::from_secs(5), "the new plugin to roll out", || {
        server.log().contains("generation 2 serves on all")
    });
    std::thread::sleep(Duration::from_millis(300));
    let tally = load.finish();
    assert!(tally.failures.is_empty(), "{:?}", tally.failures);
    let log = server.log();
    assert!(
        !log.contains("was killed by") && !log.contains("exited with code"),
        "{log}"
    );
    assert_eq!(server.get("/testkit/pid").status, 200);
    assert_eq!(server.get("/hello").status, 404);
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_then_exits_0_leaving_nothing() {
    let mut server = Site::new(&["testkit"], "").with_started_file().start();
    let master = server.pid();
    let workers = server.worker_pids();
    let mut idle = server.connect();
    let hello = idle.roundtrip("GET /testkit/pid HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(hello.status, 200);
    let mut slow = server.connect();
    slow.send(b"GET /testkit/sleep/2000 HTTP/1.1\r\nHost: t\r\n\r\n");
    server.site.wait_started(1);
    let term = Instant::now();
    server.signal(Signal::SIGTERM);
    assert!(idle.closed(), "an idle keep-alive connection is closed");
    let idle_closed = term.elapsed();
    let resp = slow.read_response(false);
    assert_eq!((resp.status, resp.text().as_str()), (200, "slept 2000"));
    let answered = term.elapsed();
    assert!(slow.closed(), "the connection is closed after the response");
    assert_eq!(
        server.wait_exit(Duration::from_secs(5)),
        Some(0),
        "{}",
        server.log()
    );
    let exited = term.elapsed();
    eprintln!(
        "TERM: idle connection closed after {}ms, slow request answered after {}ms, master exited after {}ms",
        idle_closed.as_millis(),
        answered.as_millis(),
        exited.as_millis()
    );
    assert!(idle_closed < Duration::from_secs(1), "{idle_closed:?}");
    assert!(exited < answered + Duration::from_millis(800), "{exited:?}");
    for pid in workers {
        eventually(Duration::from_secs(2), "worker gone", || !alive(pid));
    }
    assert!(children_of(master).is_empty());
    let log = server.log();
    let copies = log
        .split("plugins loaded from copies in ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("the snapshot folder in the log");
    assert!(
        !std::path::Path::new(copies).exists(),
        "{copies} left behind"
    );
}

#[test]
fn sigquit_stops_at_once_and_a_second_sigint_too() {
    for signals in [&[Signal::SIGQUIT][..], &[Signal::SIGINT, Signal::SIGINT]] {
        let mut server = Site::new(&["testkit"], "").with_started_file().start();
        let mut slow = server.connect();
        slow.send(b"GET /testkit/sleep/5000 HTTP/1.1\r\nHost: t\r\n\r\n");
        server.site.wait_started(1);
        let start = Instant::now();
        for (i, &signal) in signals.iter().enumerate() {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(300));
                assert!(
                    server.child.try_wait().expect("wait").is_none(),
                    "still graceful"
                );
            }
            server.signal(signal);
        }
        assert_eq!(server.wait_exit(Duration::from_secs(2)), Some(0));
        assert!(start.elapsed() < Duration::from_secs(2), "{signals:?}");
        assert!(slow.try_read_response(false).is_none(), "{signals:?}: cut");
    }
}

#[test]
fn a_plugin_that_fails_to_load_at_startup_stops_the_master_naming_the_file() {
    let site = Site::new(&["hello"], "");
    std::fs::write(site.path("plugins.d/broken.so"), b"not a library").expect("write");
    let started = Instant::now();
    let out = site.run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("plugins.d/broken.so"), "{stderr}");
}

#[test]
fn a_request_past_request_timeout_is_answered_504_and_its_worker_replaced() {
    let server = Site::new(
        &["testkit"],
        "[server]\nsocketPort = 0\nfixedNumberOfProcesses = 2\nthreadPool = 2\nrequestTimeout = 1\n",
    )
    .start();
    let mut client = server.connect();
    let victim: i32 = client
        .roundtrip("GET /testkit/pid HTTP/1.1\r\nHost: t\r\n\r\n")
        .text()
        .parse()
        .expect("pid");
    let sent = Instant::now();
    client.send(b"GET /testkit/sleep/5000 HTTP/1.1\r\nHost: t\r\n\r\n");
    let answer = client
        .try_read_response(false)
        .expect("the stuck request gets an answer");
    let answered = sent.elapsed();
    eprintln!(
        "requestTimeout = 1: answered {} after {}ms",
        answer.status,
        answered.as_millis()
    );
    assert_eq!(answer.status, 504);
    assert_eq!(answer.header("Connection"), Some("close"));
    assert!(client.closed(), "the connection ends with the 504");
    assert!(
        answered >= Duration::from_secs(1) && answered < Duration::from_millis(2500),
        "{answered:?}"
    );
    let log = server.log();
    assert!(
        log.contains(&format!("worker {victim} "))
            && log.contains("GET /testkit/sleep/5000")
            && log.contains("past requestTimeout (1s)"),
        "{log}"
    );
    // The victim has nothing else to finish: it exits without waiting for
    // gracefulTimeout, its stuck thread left behind.
    eventually(Duration::from_secs(3), "a replacement", || {
        let now = server.worker_pids();
        now.len() == 2 && !now.contains(&victim)
    });
    assert_eq!(server.get("/testkit/pid").status, 200);
}

#[test]
fn max_requests_replaces_workers_without_dropping_a_request() {
    let server = Site::new(
        &["testkit"],
        "[server]\nsocketPort = 0\nfixedNumberOfProcesses = 2\nthreadPool = 2\nmaxRequests = 20\nmaxRequestsJitter = 5\n",
    )
    .start();
    let before = server.worker_pids();
    let load = Load::start(
        server.addr(),
        "/testkit/pid",
        &[Mode::KeepAlive, Mode::Close],
    );
    eventually(Duration::from_secs(10), "both workers replaced", || {
        let now = server.worker_pids();
        now.len() == 2 && now.iter().all(|p| !before.contains(p))
    });
    std::thread::sleep(Duration::from_millis(200));
    let tally = load.finish();
    assert!(server.log().contains("(maxRequests 2"), "{}", server.log());
    assert!(tally.failures.is_empty(), "{:?}", tally.failures);
    assert!(
        tally.answers.len() >= 3,
        "pids seen: {:?}\n{}",
        tally.answers,
        server.log()
    );
}

#[test]
fn ttin_and_ttou_add_and_remove_a_worker() {
    let server = Site::new(&["hello"], "").start();
    server.signal(Signal::SIGTTIN);
    eventually(Duration::from_secs(3), "three workers", || {
        server.worker_pids().len() == 3
    });
    // Signals of one kind do not queue: wait for each to take effect.
    server.signal(Signal::SIGTTOU);
    eventually(Duration::from_secs(3), "two workers", || {
        server.worker_pids().len() == 2
    });
    server.signal(Signal::SIGTTOU);
    eventually(Duration::from_secs(3), "one worker", || {
        server.worker_pids().len() == 1
    });
    assert_eq!(server.get("/hello").status, 200);
}

#[test]
fn usr1_reopens_the_error_log_at_its_path_and_loses_no_line() {
    let server = Site::new(&["testkit"], "")
        .with_error_log("error.log")
        .start();
    let log = server.site.path("error.log");
    let rotated = server.site.path("error.log.1");
    let panic = |n: usize| {
        for _ in 0..n {
            assert_eq!(server.get("/testkit/panic").status, 500);
        }
    };
    let count = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .matches("testkit: panic on request")
            .count()
    };
    panic(5);
    std::fs::rename(&log, &rotated).expect("rotate");
    panic(5); // still written to the renamed file
    server.signal(Signal::SIGUSR1);
    eventually(
        Duration::from_secs(3),
        "master and workers to reopen",
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            text.contains("SIGUSR1: reopened the log files")
                && text.matches("reopened its log files").count() == 2
        },
    );
    panic(5);
    assert_eq!(count(&rotated), 10, "before the reopen");
    assert_eq!(count(&log), 5, "after the reopen");
}

/// `[plugin.testkit]` settings that make every `init` after the
/// `after`-th fail (see the testkit plugin).
fn failing_init(site_dir: &std::path::Path, after: u32) -> String {
    format!(
        "[plugin.testkit]\ninitCounter = {}\nfailInitAfter = {after}\n",
        site_dir.join("init-calls").display()
    )
}

#[test]
fn a_worker_that_cannot_boot_stops_the_master_instead_of_respawning_forever() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The startup probe (init call 1) passes; every worker fails.
    let site = Site::new(&["testkit"], &failing_init(dir.path(), 1));
    let started = Instant::now();
    let out = site.run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(started.elapsed() < Duration::from_secs(5), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("fails on purpose"), "{stderr}");
    assert!(
        stderr.contains("could not start") && stderr.contains("not respawning"),
        "{stderr}"
    );
    let calls = std::fs::metadata(dir.path().join("init-calls"))
        .expect("counter")
        .len();
    assert!(calls <= 3, "respawned {calls} times");
}

#[test]
fn a_reload_whose_new_workers_cannot_boot_keeps_the_old_generation() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Calls 1-4 pass: startup probe, two workers, the reload's probe. The
    // reload's first worker (call 5) cannot boot.
    let mut server = Site::new(&["testkit"], &failing_init(dir.path(), 4)).start();
    let before = server.worker_pids();
    let load = Load::start(
        server.addr(),
        "/testkit/pid",
        &[Mode::KeepAlive, Mode::Close],
    );
    server.signal(Signal::SIGHUP);
    eventually(Duration::from_secs(5), "the reload to be abandoned", || {
        server
            .log()
            .contains("reload abandoned: generation 1 keeps serving")
    });
    std::thread::sleep(Duration::from_millis(300));
    let tally = load.finish();
    assert!(tally.failures.is_empty(), "{:?}", tally.failures);
    assert_eq!(server.worker_pids(), before, "{}", server.log());
    assert!(
        server.child.try_wait().expect("wait").is_none(),
        "the master runs on"
    );
    let pid: i32 = server.get("/testkit/pid").text().parse().expect("pid");
    assert!(before.contains(&pid));
}
