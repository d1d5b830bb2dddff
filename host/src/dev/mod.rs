//! `drupe dev [CRATE_DIR...] [--port N] [--config FILE]`: edit, save, see
//! it live.
//!
//! Two processes. The **dev supervisor** (this module, the process the user
//! started) builds the crates with cargo ([`build`]), watches their
//! sources with `notify` ([`sources`]) and swaps each new library into a
//! plugin folder of its own. The **master** is an ordinary drupe master,
//! started by the supervisor as `drupe --config INI --dev-dir DIR
//! --dev-port N` (hidden flags that apply [`crate::config::Dev`]: one
//! worker on 127.0.0.1:N, error log on stderr, plugins from `DIR`).
//!
//! Why this shape: the master must stay single-threaded and fork before any
//! thread exists, while `notify` runs a thread and the build, the log and
//! the signals each want one. So the supervisor is the parent — it owns the
//! terminal, outlives every rebuild, and may use threads freely — and the
//! master is a child started with exec (a fresh process image: no thread,
//! lock or descriptor of the supervisor's comes along). The master runs in
//! its own process group, so Ctrl-C reaches the supervisor (and a running
//! cargo) only, and the supervisor stops the master once with TERM; the
//! master dies with the supervisor in any case (`PR_SET_PDEATHSIG`).
//!
//! A new library goes in the way a careful operator would drop one in:
//! copied under a temporary name, renamed into the plugin folder, then HUP
//! — the normal probe-and-reload path, which keeps the old code serving
//! until the new one is ready, so no request fails on the way. The
//! supervisor reads the master's error log (its stderr, passed on to the
//! terminal line by line) to learn when the new generation serves, or why
//! it did not load.
//!
//! While the last build (or probe) failed, every page is an error page
//! with the compiler's (or the probe's) message ([`page`]): the supervisor
//! writes it to a file named in the master's `Dev` settings, and workers
//! answer every request outside `/_drupe/` with it while it exists.
//! Outside dev mode that setting is `None` and costs one test per request.

mod build;
mod page;
mod sources;

use crate::config::{Config, Dev};
use build::{Built, Crate, Outcome, Running};
use nix::sys::signal::{kill, killpg, SigSet, Signal};
use nix::unistd::Pid;
use page::Failure;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// Editors save in bursts; build once the sources have been quiet this long.
const QUIET: Duration = Duration::from_millis(100);

/// The master's log lines the supervisor acts on (written in `master`).
const LISTENING: &str = "listening on http://";
const LIVE: &str = " serves on all ";
const NOT_LOADED: [&str; 2] = ["failed its probe", "reload abandoned"];
const ERROR: &str = "[ERROR] ";

/// The settings the master runs with under `drupe dev`, from the folder
/// the supervisor made and the port it was given.
pub fn master_settings(dir: &Path, port: u16) -> Dev {
    Dev {
        port,
        plugin_dir: dir.join("plugins.d"),
        error_page: dir.join("error.html"),
    }
}

/// What the supervisor waits for.
#[derive(Debug)]
enum Event {
    /// A source file of crate N changed.
    Changed(usize),
    /// A batch of builds is done: crate, when its change was saved, how
    /// the build went.
    Built(Vec<(usize, Option<Instant>, Built)>),
    /// A line of the master's error log.
    Master(String),
    /// The master and all its workers closed their stderr: they are gone.
    MasterGone,
    Signal(Signal),
}

/// Runs `drupe dev` until Ctrl-C (or TERM).
pub fn run(
    crate_dirs: &[PathBuf],
    port: u16,
    config: Option<&Path>,
) -> Result<(), Box<dyn std::error::Error>> {
    let crates = resolve(crate_dirs)?;
    let folder = DevFolder::create()?;
    let ini = match config {
        Some(path) => path.to_owned(),
        None => {
            let ini = folder.path.join("drupe.ini");
            std::fs::write(
                &ini,
                "; drupe dev without --config: every setting has its default.\n",
            )?;
            ini
        }
    };
    Config::load(&ini)?; // a broken INI file is reported here, once
    std::fs::create_dir_all(folder.path.join("plugins.d"))?;

    // Before any thread: every thread then has these blocked, and one
    // thread takes them with sigwait.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.thread_block()?;
    let (tx, rx) = mpsc::channel();
    let to_main = tx.clone();
    std::thread::spawn(move || {
        while let Ok(signal) = signals.wait() {
            if to_main.send(Event::Signal(signal)).is_err() {
                break;
            }
        }
    });

    let master = start_master(&ini, &folder.path, port, tx.clone())?;
    let to_main = tx.clone();
    let _watcher = sources::watch(&crates, move |index| {
        let _ = to_main.send(Event::Changed(index));
    })
    .map_err(|e| format!("cannot watch the sources: {e}"))?;
    let now = Instant::now();
    let mut supervisor = Supervisor {
        settings: master_settings(&folder.path, port),
        crates,
        master,
        tx,
        ready: false,
        dirty: BTreeMap::new(),
        last_change: now,
        building: false,
        cargo: Running::default(),
        waiting: Vec::new(),
        failed: BTreeMap::new(),
        probe_failure: None,
        reload: None,
        served: BTreeSet::new(),
        stopping: false,
    };
    for index in 0..supervisor.crates.len() {
        supervisor.dirty.insert(index, None);
    }
    supervisor.supervise(&rx)
}

/// The crate folders, canonical, each with a Cargo.toml.
fn resolve(dirs: &[PathBuf]) -> Result<Vec<Crate>, String> {
    let dirs = if dirs.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        dirs.to_vec()
    };
    dirs.iter()
        .map(|dir| {
            let dir = dir
                .canonicalize()
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            if !dir.join("Cargo.toml").is_file() {
                return Err(format!(
                    "{}: no Cargo.toml here; run drupe dev in a plugin crate (drupe new NAME makes one) or name its folder",
                    dir.display()
                ));
            }
            Ok(Crate { dir })
        })
        .collect()
}

/// The supervisor's folder in `$TMPDIR`: the INI file (without
/// `--config`), the plugin folder the master loads, the error page.
/// Removed when `drupe dev` ends.
struct DevFolder {
    path: PathBuf,
}

impl DevFolder {
    fn create() -> std::io::Result<DevFolder> {
        let path = std::env::temp_dir().join(format!("drupe-dev-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path); // left by a killed run with this pid
        std::fs::create_dir_all(&path)?;
        Ok(DevFolder { path })
    }
}

impl Drop for DevFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Starts the master on `ini` with the dev settings; its stderr comes back
/// to the terminal through a thread that also tells the supervisor.
fn start_master(ini: &Path, dir: &Path, port: u16, tx: Sender<Event>) -> std::io::Result<Child> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--config")
        .arg(ini)
        .arg("--dev-dir")
        .arg(dir)
        .arg("--dev-port")
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    if let Some(stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let _ = std::io::stderr().write_all(&line);
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                line.clear();
                if tx.send(Event::Master(text)).is_err() {
                    return;
                }
            }
            let _ = tx.send(Event::MasterGone);
        });
    }
    Ok(child)
}

/// A reload the supervisor asked for and waits on.
#[derive(Debug)]
struct Reload {
    crates: Vec<usize>,
    /// When the first change of this round was saved (none: the first build).
    saved: Option<Instant>,
    /// When cargo finished, and how long it took.
    finished: Instant,
    took: Duration,
    /// Error lines the master logged since the HUP.
    errors: Vec<String>,
}

/// A library built and not yet swapped in.
#[derive(Debug)]
struct Swap {
    crate_index: usize,
    so: PathBuf,
    saved: Option<Instant>,
    built: Built,
}

struct Supervisor {
    settings: Dev,
    crates: Vec<Crate>,
    master: Child,
    tx: Sender<Event>,
    /// The master is listening (and handles HUP).
    ready: bool,
    /// Crates to build, with when their first unbuilt change was saved.
    dirty: BTreeMap<usize, Option<Instant>>,
    last_change: Instant,
    building: bool,
    cargo: Running,
    /// Libraries built before the master was ready.
    waiting: Vec<Swap>,
    /// Crates whose last build failed, and how.
    failed: BTreeMap<usize, Failure>,
    /// The last reload did not load.
    probe_failure: Option<Failure>,
    reload: Option<Reload>,
    /// Crates whose library the master serves.
    served: BTreeSet<usize>,
    stopping: bool,
}

impl Supervisor {
    fn supervise(&mut self, rx: &mpsc::Receiver<Event>) -> Result<(), Box<dyn std::error::Error>> {
        loop {
            self.build_if_quiet();
            let wait = if self.dirty.is_empty() || self.building {
                Duration::from_secs(3600)
            } else {
                QUIET.saturating_sub(self.last_change.elapsed())
            };
            match rx.recv_timeout(wait) {
                Ok(Event::Changed(index)) => {
                    let now = Instant::now();
                    self.dirty.entry(index).or_insert(Some(now));
                    self.last_change = now;
                }
                Ok(Event::Built(results)) => self.on_built(results),
                Ok(Event::Master(line)) => self.on_master_line(&line),
                Ok(Event::MasterGone) => {
                    let status = self.master.wait()?;
                    return if self.stopping {
                        Ok(())
                    } else {
                        Err(format!("the server stopped ({status}); see its log above").into())
                    };
                }
                Ok(Event::Signal(signal)) => self.stop(signal),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    /// Ctrl-C: stop the master (and a running build); a second one kills
    /// the master's whole group.
    fn stop(&mut self, signal: Signal) {
        let master = Pid::from_raw(self.master.id() as i32);
        if self.stopping {
            eprintln!("drupe dev: {signal} again: stopping at once");
            let _ = killpg(master, Signal::SIGKILL);
            return;
        }
        eprintln!("drupe dev: {signal}: stopping");
        self.stopping = true;
        let _ = kill(master, Signal::SIGTERM);
        if let Some(cargo) = self.cargo.lock().ok().and_then(|pid| *pid) {
            let _ = kill(Pid::from_raw(cargo as i32), Signal::SIGTERM);
        }
    }

    /// Starts building the crates that changed, once the sources are quiet.
    fn build_if_quiet(&mut self) {
        if self.building
            || self.stopping
            || self.dirty.is_empty()
            || self.last_change.elapsed() < QUIET
        {
            return;
        }
        self.building = true;
        let batch: Vec<(usize, Option<Instant>, Crate)> = std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|(index, saved)| (index, saved, self.crates[index].clone()))
            .collect();
        let tx = self.tx.clone();
        let running = self.cargo.clone();
        std::thread::spawn(move || {
            let results = batch
                .into_iter()
                .map(|(index, saved, krate)| (index, saved, build::build(&krate, &running)))
                .collect();
            let _ = tx.send(Event::Built(results));
        });
    }

    fn on_built(&mut self, results: Vec<(usize, Option<Instant>, Built)>) {
        self.building = false;
        let mut swaps = Vec::new();
        for (index, saved, built) in results {
            let label = self.crates[index].label();
            match &built.outcome {
                Outcome::Failed(text) => {
                    eprintln!(
                        "drupe dev: the build of {label} failed after {:.2} s; every page shows the error until it builds",
                        built.took.as_secs_f64()
                    );
                    self.failed.insert(
                        index,
                        Failure {
                            title: format!("The build of {label} failed"),
                            text: text.clone(),
                        },
                    );
                }
                Outcome::Library { so, fresh } => {
                    let was_failing = self.failed.remove(&index).is_some();
                    if *fresh && self.served.contains(&index) && !was_failing {
                        eprintln!("drupe dev: {label} is up to date; nothing to reload");
                        continue;
                    }
                    swaps.push(Swap {
                        crate_index: index,
                        so: so.clone(),
                        saved,
                        built,
                    });
                }
            }
        }
        if !self.failed.is_empty() {
            self.publish();
        }
        if self.stopping || swaps.is_empty() {
            return;
        }
        if self.ready {
            self.swap_in(swaps);
        } else {
            self.waiting.extend(swaps);
        }
    }

    /// Copies each library into the plugin folder under a temporary name,
    /// renames it into place, and asks the master to reload.
    fn swap_in(&mut self, swaps: Vec<Swap>) {
        let mut reload: Option<Reload> = None;
        for swap in swaps {
            let name = swap
                .so
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = name.strip_prefix("lib").unwrap_or(&name).to_owned();
            let dest = self.settings.plugin_dir.join(&name);
            let tmp = self.settings.plugin_dir.join(format!(".{name}.tmp"));
            if let Err(e) = std::fs::copy(&swap.so, &tmp).and_then(|_| std::fs::rename(&tmp, &dest))
            {
                eprintln!(
                    "drupe dev: cannot copy {} to {}: {e}",
                    swap.so.display(),
                    dest.display()
                );
                continue;
            }
            let r = reload.get_or_insert_with(|| Reload {
                crates: Vec::new(),
                saved: swap.saved,
                finished: swap.built.finished,
                took: Duration::ZERO,
                errors: Vec::new(),
            });
            r.crates.push(swap.crate_index);
            r.saved = match (r.saved, swap.saved) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            r.finished = r.finished.max(swap.built.finished);
            r.took += swap.built.took;
        }
        if let Some(reload) = reload {
            let _ = kill(Pid::from_raw(self.master.id() as i32), Signal::SIGHUP);
            self.reload = Some(reload);
        }
    }

    fn on_master_line(&mut self, line: &str) {
        if !self.ready && line.contains(LISTENING) {
            self.ready = true;
            if let Some(addr) = line
                .split(LISTENING)
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
            {
                eprintln!(
                    "drupe dev: serving http://{addr}/ — edit and save to rebuild; Ctrl-C stops"
                );
            }
            let waiting = std::mem::take(&mut self.waiting);
            if !waiting.is_empty() {
                self.swap_in(waiting);
            }
            return;
        }
        let not_loaded = NOT_LOADED.iter().any(|phrase| line.contains(phrase));
        let Some(reload) = &mut self.reload else {
            return;
        };
        if let Some(error) = line.split_once(ERROR).map(|(_, e)| e) {
            if !not_loaded {
                reload.errors.push(error.to_owned());
            }
        }
        let names = |crates: &[usize], all: &[Crate]| {
            crates
                .iter()
                .map(|&i| all[i].label())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if line.contains(LIVE) {
            let Some(reload) = self.reload.take() else {
                return;
            };
            let live = reload.finished.elapsed();
            let after_save = reload
                .saved
                .map(|saved| format!(" ({:.2} s after the save)", saved.elapsed().as_secs_f64()))
                .unwrap_or_default();
            eprintln!(
                "drupe dev: {} {} in {:.2} s, live {} ms after the build{after_save}",
                if reload.saved.is_some() {
                    "rebuilt"
                } else {
                    "built"
                },
                names(&reload.crates, &self.crates),
                reload.took.as_secs_f64(),
                live.as_millis(),
            );
            self.served.extend(&reload.crates);
            self.probe_failure = None;
            self.publish();
        } else if not_loaded {
            let Some(reload) = self.reload.take() else {
                return;
            };
            let what = names(&reload.crates, &self.crates);
            eprintln!(
                "drupe dev: the new build of {what} did not load; every page shows why until a build loads"
            );
            let mut text = reload.errors.join("\n");
            if let Some(summary) = line.split_once(ERROR).map(|(_, e)| e) {
                text.push_str(&format!("\n{summary}"));
            }
            self.probe_failure = Some(Failure {
                title: format!("The new build of {what} did not load"),
                text,
            });
            self.publish();
        }
    }

    /// Writes the error page for what is failing now, or removes it.
    fn publish(&self) {
        let failures: Vec<Failure> = if self.failed.is_empty() {
            self.probe_failure.iter().cloned().collect()
        } else {
            self.failed.values().cloned().collect()
        };
        if let Err(e) = page::publish(&self.settings.error_page, &failures) {
            eprintln!(
                "drupe dev: cannot write the error page {}: {e}",
                self.settings.error_page.display()
            );
        }
    }
}
