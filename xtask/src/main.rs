//! Project tasks that need more than one cargo command (the `cargo xtask`
//! convention; the alias lives in `.cargo/config.toml`).
//!
//! - `cargo xtask run [DRUPE ARGS…]`: build drupe and the example plugins
//!   (release), copy the plugins into `config/plugins.d/`, and serve
//!   `config/drupe.ini` in the foreground.
//! - `cargo xtask test [CARGO TEST ARGS…]`: install what the tests need if
//!   it is missing (redis-server, and haproxy and nginx for the tests of
//!   several hosts behind a load balancer), build the binary and every
//!   plugin, and run the whole test suite.
//! - `cargo xtask bench [BENCH ARGS…]`: install wrk, nginx, redis-server
//!   and perf if missing, build everything in release mode (and the peers
//!   in `bench/peers`, a workspace of their own), and run the benchmark in
//!   `bench/` (drupe side by side with nginx, axum and actix-web; writes
//!   `bench/RESULTS.md`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    let result = match task.as_deref() {
        Some("run") => run(&rest),
        Some("test") => test(&rest),
        Some("bench") => bench(&rest),
        _ => Err(
            "usage: cargo xtask run [DRUPE ARGS…] | test [CARGO TEST ARGS…] | \
             bench [--rounds N] [--seconds S] [--out FILE] [--quick]"
                .to_owned(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command.current_dir(root());
    command
}

fn status(mut command: Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let status = command.status().map_err(|e| format!("{shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

/// The example plugins: every crate under `plugins/`.
fn example_plugins() -> Result<Vec<String>, String> {
    let dir = root().join("plugins");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.join("Cargo.toml").is_file() {
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

fn run(drupe_args: &[String]) -> Result<(), String> {
    let plugins = example_plugins()?;
    let mut build = cargo();
    build.args(["build", "--release", "--package", "drupe"]);
    for name in &plugins {
        build.args(["--package", name]);
    }
    status(build)?;
    let release = target_dir().join("release");
    let dest = root().join("config").join("plugins.d");
    std::fs::create_dir_all(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    for name in &plugins {
        let built = release.join(format!("lib{name}.so"));
        // Write under a temporary name, then rename: a running drupe that
        // watches the directory never sees a half-copied library.
        let tmp = dest.join(format!(".{name}.so.tmp"));
        std::fs::copy(&built, &tmp).map_err(|e| format!("{}: {e}", built.display()))?;
        std::fs::rename(&tmp, dest.join(format!("{name}.so"))).map_err(|e| e.to_string())?;
    }
    let mut drupe = Command::new(release.join("drupe"));
    drupe.current_dir(root());
    if drupe_args.is_empty() {
        drupe.args(["--config", "config/drupe.ini"]);
    } else {
        drupe.args(drupe_args);
    }
    status(drupe)
}

fn test(cargo_test_args: &[String]) -> Result<(), String> {
    // Real components the tests start themselves: Redis (also as a
    // cluster, with redis-cli), HAProxy and nginx; openssl makes throwaway
    // certificates and curl is an HTTPS client.
    ensure_installed(&[
        "redis-server",
        "redis-cli",
        "haproxy",
        "nginx",
        "openssl",
        "curl",
    ])?;
    let mut build = cargo();
    build.args(["build", "--workspace"]);
    status(build)?;
    let mut test = cargo();
    test.args(["test", "--workspace"]).args(cargo_test_args);
    // The tests that switch users are `#[ignore = "needs root"]`: run them
    // too when we are root (as CI is), and say so when we are not.
    if is_root() {
        if !cargo_test_args.iter().any(|a| a == "--") {
            test.arg("--");
        }
        test.arg("--include-ignored");
    } else {
        eprintln!("xtask: not root, so the tests marked \"needs root\" are left out (ignored)");
    }
    status(test)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn bench(bench_args: &[String]) -> Result<(), String> {
    ensure_installed(&["wrk", "nginx", "redis-server"])?;
    // perf only counts system calls per request; without it the benchmark
    // says so in its report and measures everything else.
    if let Err(e) = ensure_installed(&["perf"]) {
        eprintln!("xtask: {e}; the benchmark will not count system calls");
    }
    let mut build = cargo();
    build.args(["build", "--release", "--workspace"]);
    status(build)?;
    // The peers (axum, actix-web) are kept out of drupe's workspace so that
    // `cargo build --workspace` never compiles them; they have their own
    // lock file and target folder, built here only.
    let peers = root().join("bench").join("peers");
    let peers_target = peers.join("target");
    let mut build_peers = cargo();
    build_peers
        .args(["build", "--release", "--manifest-path"])
        .arg(peers.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&peers_target);
    status(build_peers)?;
    let release = target_dir().join("release");
    let mut bench = Command::new(release.join("drupe-bench"));
    bench
        .current_dir(root())
        .env("DRUPE_RELEASE_DIR", &release)
        .env("DRUPE_PEERS_RELEASE_DIR", peers_target.join("release"))
        .args(bench_args);
    status(bench)
}

/// Installs missing Debian packages that the tests need (as root, or via
/// sudo). The tests themselves never skip for a missing program: they fail
/// and say what to install.
fn ensure_installed(programs: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> = programs.iter().copied().filter(|p| !on_path(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|p| package_of(p)).collect();
    eprintln!(
        "xtask: installing {} (needed by the tests)",
        packages.join(" ")
    );
    let root_user = is_root();
    let apt = |args: &[&str]| {
        let mut command = if root_user {
            Command::new("apt-get")
        } else {
            Command::new("sudo")
        };
        if !root_user {
            command.arg("apt-get");
        }
        command.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        command
    };
    status(apt(&["update", "-qq"]))?;
    let mut install = apt(&["install", "-y", "-qq", "--no-install-recommends"]);
    install.args(&packages);
    status(install)
        .map_err(|e| format!("{e}; install {} by hand and try again", packages.join(" ")))?;
    // The Debian package starts a system-wide service; the tests start
    // their own servers on free ports and do not need it.
    Ok(())
}

fn package_of(program: &str) -> &str {
    match program {
        "redis-server" => "redis-server",
        "redis-cli" => "redis-tools",
        "perf" => "linux-perf",
        other => other,
    }
}

/// Whether `program` is installed: on PATH, or in the sbin folders where
/// Debian puts haproxy and nginx (not on a normal user's PATH).
fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .any(|dir| dir.join(program).is_file())
}
