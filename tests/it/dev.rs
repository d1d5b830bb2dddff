//! `drupe dev` on a crate made by `drupe new`: it serves it, a saved edit
//! goes live with no failed request on the way, and a broken build makes
//! every page the compiler's message until the fix is live.
//!
//! Every test uses the same crate, `target/dev-test/greeter`, in a
//! workspace of its own there (so `drupe new` also shows that it joins a
//! workspace), and the same target folder: cargo builds the SDK once and
//! each test recompiles only the one-file crate. The tests take turns
//! ([`Dev::start`] holds a lock), since they edit the same source.

use crate::support::{drupe, root, Client, Response};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The first build compiles the SDK too; later ones one small crate.
const BUILD: Duration = Duration::from_secs(300);

/// `target/dev-test`: a workspace holding the `greeter` crate.
fn workspace() -> PathBuf {
    root().join("target").join("dev-test")
}

/// The crate, made afresh by `drupe new` once per test run, and the
/// scaffold's `src/lib.rs` as it was made.
fn greeter() -> &'static (PathBuf, String) {
    static GREETER: OnceLock<(PathBuf, String)> = OnceLock::new();
    GREETER.get_or_init(|| {
        let ws = workspace();
        std::fs::create_dir_all(&ws).expect("target/dev-test");
        let manifest = ws.join("Cargo.toml");
        if !manifest.is_file() {
            std::fs::write(&manifest, "[workspace]\nresolver = \"2\"\nmembers = [\n]\n")
                .expect("workspace");
            // The versions the main workspace locked: no registry look-up.
            std::fs::copy(root().join("Cargo.lock"), ws.join("Cargo.lock")).expect("lock");
        }
        let dir = ws.join("greeter");
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new(drupe())
            .args(["new", "greeter"])
            .arg(&dir)
            .output()
            .expect("drupe new");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let members = std::fs::read_to_string(&manifest).expect("read");
        assert!(members.contains("\"greeter\""), "not a member:\n{members}");
        let cargo_toml = std::fs::read_to_string(dir.join("Cargo.toml")).expect("read");
        assert!(
            cargo_toml.contains("drupe-sdk = { path = \"../../../sdk\" }"),
            "{cargo_toml}"
        );
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).expect("lib.rs");
        (dir, lib)
    })
}

/// A running `drupe dev` (and the master it started).
struct Dev {
    child: Child,
    log: PathBuf,
    addr: SocketAddr,
    lib: PathBuf,
    _tmp: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl Dev {
    /// Starts `drupe dev` on the greeter crate as scaffolded and waits
    /// until its first build is live.
    fn start() -> Dev {
        static TURN: Mutex<()> = Mutex::new(());
        let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let (dir, pristine) = greeter();
        let lib = dir.join("src/lib.rs");
        std::fs::write(&lib, pristine).expect("reset lib.rs");
        let tmp = tempfile::tempdir().expect("temp dir");
        let log = tmp.path().join("dev.log");
        let child = Command::new(drupe())
            .arg("dev")
            .arg(dir)
            .args(["--port", "0"])
            .env("TMPDIR", tmp.path())
            .env_remove("CARGO_TARGET_DIR")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .process_group(0)
            .spawn()
            .expect("start drupe dev");
        let mut dev = Dev {
            child,
            log,
            addr: "127.0.0.1:1".parse().expect("addr"),
            lib,
            _tmp: tmp,
            _turn: turn,
        };
        let line = dev.wait_for("drupe dev: serving http://", 1, Duration::from_secs(30));
        dev.addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line}"));
        dev.wait_for("ms after the build", 1, BUILD);
        dev
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the `n`-th line containing `text`; returns it.
    fn wait_for(&mut self, text: &str, n: usize, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let log = self.log();
            if let Some(line) = log.lines().filter(|l| l.contains(text)).nth(n - 1) {
                return line.to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("drupe dev exited ({status}) waiting for {text:?}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} (#{n}) within {within:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Saves `src/lib.rs` with `from` replaced by `to` (everywhere).
    fn edit(&self, from: &str, to: &str) -> Instant {
        let text = std::fs::read_to_string(&self.lib).expect("read lib.rs");
        assert!(text.contains(from), "{from:?} not in lib.rs");
        let mut file = std::fs::File::create(&self.lib).expect("open lib.rs");
        file.write_all(text.replace(from, to).as_bytes())
            .expect("save lib.rs");
        Instant::now()
    }

    fn get(&self, path: &str) -> Option<Response> {
        let mut client = Client::try_connect(self.addr).ok()?;
        client
            .try_send(
                format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .ok()?;
        client.try_read_response(false)
    }

    /// GETs `path` until `accept` likes the answer; returns it.
    fn poll(&self, path: &str, within: Duration, accept: impl Fn(&Response) -> bool) -> Response {
        let deadline = Instant::now() + within;
        loop {
            if let Some(resp) = self.get(path).filter(&accept) {
                return resp;
            }
            assert!(
                Instant::now() < deadline,
                "{path} never gave the expected answer within {within:?}; last: {:?}\n{}",
                self.get(path).map(|r| (r.status, r.text())),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The master's pid, from its "listening" line.
    fn master_pid(&self) -> i32 {
        let log = self.log();
        log.split("master pid ")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no master pid in\n{log}"))
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

#[test]
fn dev_serves_a_new_crate_and_a_saved_edit_goes_live_with_no_failed_request() {
    let mut dev = Dev::start();
    let first = dev.poll("/greeter", Duration::from_secs(5), |r| r.status == 200);
    assert_eq!(first.text(), "Hello from greeter!");

    // A client polls all along; every answer must be the old page or the new.
    let stop = Arc::new(AtomicBool::new(false));
    let addr = dev.addr;
    let poller = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut bad = Vec::new();
            let mut seen_new: Option<Instant> = None;
            let mut count = 0;
            while !stop.load(Ordering::Relaxed) {
                count += 1;
                let resp = Client::try_connect(addr).ok().and_then(|mut c| {
                    c.try_send(b"GET /greeter HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                        .ok()?;
                    c.try_read_response(false)
                });
                match resp.map(|r| (r.status, r.text())) {
                    Some((200, text)) if text == "Hello from greeter!" => {}
                    Some((200, text)) if text == "Hello, edited!" => {
                        seen_new.get_or_insert_with(Instant::now);
                    }
                    other => bad.push(format!("{other:?}")),
                }
            }
            (bad, seen_new, count)
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let saved = dev.edit("Hello from greeter!", "Hello, edited!");
    let line = dev.wait_for("ms after the build", 2, BUILD);
    dev.poll("/greeter", Duration::from_secs(5), |r| {
        r.text() == "Hello, edited!"
    });
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let (bad, seen_new, count) = poller.join().expect("poller");
    assert!(
        bad.is_empty(),
        "{} of {count} requests failed: {bad:?}",
        bad.len()
    );
    let seen_new = seen_new.expect("the poller saw the edit");
    eprintln!(
        "drupe dev: edit-to-live {} ms from the save ({count} requests, none failed); {}",
        seen_new.duration_since(saved).as_millis(),
        line.trim()
    );
    assert!(line.contains("rebuilt greeter in"), "{line}");

    // Ctrl-C stops the supervisor, the master and its worker.
    let master = dev.master_pid();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(dev.child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = dev.child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "drupe dev did not stop:\n{}",
            dev.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}:\n{}", dev.log());
    crate::support::eventually(Duration::from_secs(5), "the master to be gone", || {
        !crate::support::alive(master)
    });
}

#[test]
fn a_syntax_error_shows_the_compiler_message_on_every_page_until_the_fix_is_live() {
    let mut dev = Dev::start();
    dev.edit(
        "Ok(Response::text(\"Hello from greeter!\"))",
        "Ok(Response::text(\"Hello, broken!\")",
    );
    dev.wait_for("the build of greeter failed", 1, BUILD);
    let page = dev.poll("/greeter", Duration::from_secs(5), |r| r.status == 500);
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    let html = page.text();
    assert!(html.contains("The build of greeter failed"), "{html}");
    assert!(html.contains("src/lib.rs"), "{html}");
    assert!(
        html.contains("delimiter"),
        "not the compiler's text:\n{html}"
    );
    assert!(
        html.contains("&amp;Request") && !html.contains("&Request"),
        "not escaped:\n{html}"
    );
    assert!(dev.log().contains("delimiter"), "not on the terminal");
    // Every page, but not the host's own.
    assert_eq!(dev.get("/anything/else").map(|r| r.status), Some(500));
    assert_eq!(dev.get("/_drupe/health").map(|r| r.status), Some(200));

    dev.edit(
        "Ok(Response::text(\"Hello, broken!\")",
        "Ok(Response::text(\"Hello, fixed!\"))",
    );
    dev.wait_for("ms after the build", 2, BUILD);
    let fixed = dev.poll("/greeter", Duration::from_secs(5), |r| r.status == 200);
    assert_eq!(fixed.text(), "Hello, fixed!");
    assert_eq!(dev.get("/anything/else").map(|r| r.status), Some(404));
}

/// `drupe dev` refuses a folder that is not a crate, saying what to do.
#[test]
fn dev_outside_a_crate_says_what_to_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(drupe())
        .arg("dev")
        .arg(dir.path())
        .output()
        .expect("drupe dev");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no Cargo.toml") && stderr.contains("drupe new"),
        "{stderr}"
    );
}

#[test]
fn a_plugin_that_fails_to_load_shows_why_on_every_page_until_one_loads() {
    let mut dev = Dev::start();
    let text = std::fs::read_to_string(&dev.lib).expect("read lib.rs");
    let text = text.replace(
        "drupe_sdk::plugin! {\n    name: \"greeter\",\n",
        "fn refuse(_: &Settings) -> std::result::Result<(), String> {\n    \
         Err(\"no <database> configured\".into())\n}\n\n\
         drupe_sdk::plugin! {\n    name: \"greeter\",\n    init: refuse,\n",
    );
    assert!(
        text.contains("init: refuse"),
        "the scaffold changed:\n{text}"
    );
    std::fs::write(&dev.lib, text).expect("save lib.rs");
    dev.wait_for("did not load", 1, BUILD);
    let page = dev.poll("/greeter", Duration::from_secs(5), |r| r.status == 500);
    let html = page.text();
    assert!(
        html.contains("The new build of greeter did not load"),
        "{html}"
    );
    assert!(
        html.contains("plugin `greeter` failed to start: no &lt;database&gt; configured"),
        "{html}"
    );
    dev.edit("    Err(\"no <database> configured\".into())", "    Ok(())");
    dev.wait_for("ms after the build", 2, BUILD);
    let fixed = dev.poll("/greeter", Duration::from_secs(5), |r| r.status == 200);
    assert_eq!(fixed.text(), "Hello from greeter!");
}
