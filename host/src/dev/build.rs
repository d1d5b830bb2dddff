//! One `cargo build --lib` of a plugin crate, and where its `.so` landed.
//!
//! Cargo says where it put the library (`--message-format=json`, the
//! `compiler-artifact` message of the crate's `cdylib` target): a crate in
//! a workspace builds into the workspace's target folder, and
//! `CARGO_TARGET_DIR` or `.cargo/config.toml` may move it anywhere, so
//! guessing `./target/debug` would be wrong. With `-render-diagnostics`
//! the compiler's messages stay human text on stderr, which goes to the
//! terminal as it comes and, if the build fails, onto the error page.

use serde::Deserialize;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A plugin crate that `drupe dev` builds.
#[derive(Debug, Clone)]
pub struct Crate {
    /// The folder holding its Cargo.toml (canonical).
    pub dir: PathBuf,
}

impl Crate {
    pub fn manifest(&self) -> PathBuf {
        self.dir.join("Cargo.toml")
    }

    /// The folder's name, for messages.
    pub fn label(&self) -> String {
        self.dir.file_name().map_or_else(
            || self.dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }
}

/// How one build went.
#[derive(Debug)]
pub struct Built {
    pub took: Duration,
    pub finished: Instant,
    pub outcome: Outcome,
}

#[derive(Debug)]
pub enum Outcome {
    /// The library, and whether cargo found it up to date (nothing changed).
    Library { so: PathBuf, fresh: bool },
    /// What cargo and the compiler said.
    Failed(String),
}

/// The pid of the cargo running now, so that a stop can end it.
pub type Running = Arc<Mutex<Option<u32>>>;

/// Builds `krate`; the compiler's messages go to stderr as they come.
pub fn build(krate: &Crate, running: &Running) -> Built {
    let started = Instant::now();
    let outcome = run_cargo(krate, running).unwrap_or_else(Outcome::Failed);
    Built {
        took: started.elapsed(),
        finished: Instant::now(),
        outcome,
    }
}

#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    manifest_path: Option<PathBuf>,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    filenames: Vec<PathBuf>,
    #[serde(default)]
    fresh: bool,
}

#[derive(Deserialize)]
struct Target {
    crate_types: Vec<String>,
}

fn run_cargo(krate: &Crate, running: &Running) -> Result<Outcome, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = krate.manifest();
    let mut child = Command::new(&cargo)
        .args(["build", "--lib", "--message-format=json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(&manifest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", Path::new(&cargo).display()))?;
    if let Ok(mut pid) = running.lock() {
        *pid = Some(child.id());
    }
    let stderr = child.stderr.take().map(|stderr| {
        std::thread::spawn(move || {
            // Echo line by line, keep everything for the error page.
            let mut text = String::new();
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let _ = std::io::stderr().write_all(&line);
                text.push_str(&String::from_utf8_lossy(&line));
                line.clear();
            }
            text
        })
    });
    let mut json = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut json);
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if let Ok(mut pid) = running.lock() {
        *pid = None;
    }
    let said = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    if !status.success() {
        return Ok(Outcome::Failed(said));
    }
    library(&json, &manifest).ok_or_else(|| {
        format!(
            "{said}cargo built {} but made no cdylib: add `crate-type = [\"cdylib\", \"rlib\"]` under [lib] in its Cargo.toml",
            manifest.display()
        )
    })
}

/// The `.so` of the crate at `manifest` among cargo's JSON messages.
fn library(json: &str, manifest: &Path) -> Option<Outcome> {
    json.lines()
        .filter_map(|line| serde_json::from_str::<Message>(line).ok())
        .filter(|m| m.reason == "compiler-artifact")
        .filter(|m| m.manifest_path.as_deref() == Some(manifest))
        .filter(|m| {
            m.target
                .as_ref()
                .is_some_and(|t| t.crate_types.iter().any(|c| c == "cdylib"))
        })
        .find_map(|m| {
            let fresh = m.fresh;
            m.filenames
                .into_iter()
                .find(|f| f.extension().is_some_and(|e| e == "so"))
                .map(|so| Outcome::Library { so, fresh })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_is_the_cdylib_of_this_crate() {
        let json = r#"{"reason":"compiler-artifact","manifest_path":"/w/sdk/Cargo.toml","target":{"crate_types":["lib"]},"filenames":["/t/debug/libdrupe_sdk.rlib"],"fresh":true}
{"reason":"compiler-artifact","manifest_path":"/w/greeter/Cargo.toml","target":{"crate_types":["cdylib","rlib"]},"filenames":["/t/debug/libgreeter.so","/t/debug/libgreeter.rlib"],"fresh":false}
{"reason":"build-finished","success":true}"#;
        match library(json, Path::new("/w/greeter/Cargo.toml")) {
            Some(Outcome::Library { so, fresh }) => {
                assert_eq!(so, Path::new("/t/debug/libgreeter.so"));
                assert!(!fresh);
            }
            other => panic!("{other:?}"),
        }
        assert!(library(json, Path::new("/w/other/Cargo.toml")).is_none());
    }
}
