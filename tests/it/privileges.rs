//! `[server] user` and `group`: started as root, drupe binds the port and
//! keeps root only in the master; the workers and the plugin probe switch
//! users before any plugin loads, and what they write still works.

use crate::support::{eventually, Signal, Site};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

/// Field `n` (real, effective, saved, filesystem) of `Uid:` or `Gid:` in
/// `/proc/PID/status`.
fn ids(pid: &str, key: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .expect("an id line")
        .split_whitespace()
        .map(|n| n.parse().expect("an id"))
        .collect()
}

fn root() -> bool {
    ids("self", "Uid:")[1] == 0
}

/// `nobody`'s uid and gid from /etc/passwd.
fn nobody() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    let line = passwd
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .expect("a nobody user");
    let fields: Vec<&str> = line.split(':').collect();
    (
        fields[2].parse().expect("uid"),
        fields[3].parse().expect("gid"),
    )
}

/// Lets other users into the site folder, as a real site folder would be
/// (tempdir makes it 0700).
fn open_up(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
#[ignore = "needs root: `cargo xtask test` runs it when it is root"]
fn as_root_with_user_nobody_workers_and_probe_run_as_nobody_and_everything_still_works() {
    assert!(root(), "this test switches users: run it as root");
    let (uid, gid) = nobody();
    let dir = tempfile::tempdir().expect("temp dir");
    open_up(dir.path());
    let identities = dir.path().join("identities");
    std::fs::write(&identities, "").expect("identity log");
    std::fs::set_permissions(&identities, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let site = Site::new(
        &["hello", "counter", "testkit"],
        &format!(
            "[server]\nsocketPort = 0\nfixedNumberOfProcesses = 2\nthreadPool = 2\nuser = nobody\n\
             [plugin.testkit]\nidentityLog = {}\n[log]\naccessLog = access.log\n",
            identities.display()
        ),
    )
    .with_error_log("error.log");
    open_up(site.dir.path());
    let server = site.start();
    assert!(
        server
            .log()
            .contains("workers and plugins run as user nobody"),
        "{}",
        server.log()
    );

    // Every worker: real, effective, saved and file-system ids are nobody's.
    let workers = server.worker_pids();
    assert_eq!(workers.len(), 2);
    for pid in &workers {
        assert_eq!(ids(&pid.to_string(), "Uid:"), [uid; 4], "worker {pid}");
        assert_eq!(ids(&pid.to_string(), "Gid:"), [gid; 4], "worker {pid}");
    }
    assert_eq!(
        ids(&server.pid().to_string(), "Uid:"),
        [0; 4],
        "the master stays root"
    );
    // The probe and both workers loaded plugins as nobody.
    let seen = std::fs::read_to_string(&identities).expect("identity log");
    let uid_lines: Vec<&str> = seen.lines().filter(|l| l.starts_with("Uid:")).collect();
    assert!(uid_lines.len() >= 3, "{seen}");
    for line in uid_lines {
        let got: Vec<u32> = line[4..]
            .split_whitespace()
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        assert_eq!(got, [uid; 4], "{seen}");
    }

    // Serving, the SQLite store and the access log all work after the drop.
    assert_eq!(server.get("/hello").text(), "Hello, World!");
    let post = || {
        let mut client = server.connect();
        client.roundtrip("POST /counter/x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
    };
    assert_eq!(post().text(), "1");
    assert_eq!(post().text(), "2");
    let access = server.site.path("access.log");
    eventually(Duration::from_secs(5), "access log lines", || {
        std::fs::read_to_string(&access).is_ok_and(|t| t.lines().count() >= 3)
    });
    assert_eq!(std::fs::metadata(&access).expect("access.log").uid(), uid);

    // A rotation: the workers, as nobody, reopen both logs at their paths.
    std::fs::rename(&access, server.site.path("access.log.1")).expect("rotate");
    std::fs::rename(
        server.site.path("error.log"),
        server.site.path("error.log.1"),
    )
    .expect("rotate");
    server.signal(Signal::SIGUSR1);
    eventually(Duration::from_secs(5), "both workers to reopen", || {
        server.log().matches("reopened its log files").count() == 2
    });
    assert!(!server.log().contains("reopening logs"), "{}", server.log());
    assert_eq!(server.get("/hello/again").status, 200);
    eventually(
        Duration::from_secs(5),
        "a line in the new access log",
        || std::fs::read_to_string(&access).is_ok_and(|t| t.contains("/hello/again")),
    );
    assert_eq!(std::fs::metadata(&access).expect("access.log").uid(), uid);
}

#[test]
#[ignore = "needs root: `cargo xtask test` runs it when it is root"]
fn started_as_root_without_user_warns_once() {
    assert!(root(), "this test switches users: run it as root");
    let server = Site::new(&["hello"], "").start();
    server.signal(Signal::SIGHUP);
    eventually(Duration::from_secs(10), "the reload", || {
        server.log().contains("generation 2 serves on all")
    });
    assert_eq!(
        server.log().matches("RUNNING AS ROOT").count(),
        1,
        "{}",
        server.log()
    );
}

#[test]
fn a_user_drupe_cannot_become_is_an_error_that_says_what_to_do() {
    let site = Site::new(
        &["hello"],
        "[server]\nsocketPort = 0\nuser = no-such-user-drupe\n",
    );
    let out = site.run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no such user; create it"), "{stderr}");
}

#[test]
#[ignore = "needs root: `cargo xtask test` runs it when it is root"]
fn started_as_nobody_drupe_cannot_become_another_user_and_says_so() {
    assert!(root(), "this test starts drupe as nobody: run it as root");
    // Started as nobody, drupe cannot become daemon.
    let site = Site::new(&["hello"], "[server]\nsocketPort = 0\nuser = daemon\n");
    open_up(site.dir.path());
    std::fs::write(site.ini_path(), site.ini()).expect("ini");
    let (uid, gid) = nobody();
    // A copy nobody can execute: the checkout (and target/) may sit in a
    // folder only root can enter, as a CI clone in a private temp dir does.
    let binary = site.path("drupe");
    std::fs::copy(crate::support::drupe(), &binary).expect("copy drupe");
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = std::process::Command::new(&binary)
        .arg("--config")
        .arg(site.ini_path())
        .env("TMPDIR", site.dir.path())
        .uid(uid)
        .gid(gid)
        .output()
        .expect("run drupe as nobody");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("not root, so it cannot switch users; start it as root"),
        "{stderr}"
    );
}
