//! `[plugins] watch`: notice a new, changed or removed `.so` in the plugin
//! directory, or a change of the `[tls]` certificate or key, and ask for a
//! reload once things have been quiet for a moment.
//!
//! The certificate files are watched through their folders, not as files:
//! renewal tools replace them (a rename, or a symlink swapped to a new
//! target, as certbot's `live/` folder does), and a watch on the old file
//! would see nothing of the new one.
//!
//! inotify reports every write, so copying a library shows up as many
//! `IN_MODIFY` events and a final `IN_CLOSE_WRITE`. A file that was written
//! to and not yet closed is still being copied: the reload waits for it
//! (up to `STALL`, in case the writer hangs), then for `QUIET` without any
//! event, so a half-copied library is never loaded. Writing to a temporary
//! name and renaming it into place (`IN_MOVED_TO`) is the clean way, and
//! costs only the quiet period. Even if a broken file were loaded, the
//! probe would refuse it and the old generation would keep serving.
//!
//! The watch lives in the master's single-threaded poll loop: [`Watch::fd`]
//! goes into the poll set, [`Watch::on_readable`] takes the events, and
//! [`Watch::due`] says when to reload.

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Quiet time after the last change before reloading.
pub const QUIET: Duration = Duration::from_millis(500);
/// How long a file may stay open for writing before we stop waiting.
const STALL: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Watch {
    inotify: Inotify,
    dir: PathBuf,
    /// Other files whose change asks for a reload (`[tls]`), by path.
    files: Vec<PathBuf>,
    /// What each watch descriptor watches: the plugin directory, or a
    /// folder of one of `files`.
    folders: Vec<(WatchDescriptor, PathBuf)>,
    /// `.so` names changed since the last reload.
    changed: BTreeSet<OsString>,
    /// `.so` names written to and not yet closed.
    writing: BTreeSet<OsString>,
    last_event: Option<Instant>,
}

impl Watch {
    /// Watches `dir` for changes to `*.so` files, and each of `files`.
    pub fn new(dir: &Path, files: &[&Path]) -> io::Result<Watch> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        let mut folders = Vec::new();
        let parents = files.iter().filter_map(|f| f.parent());
        for folder in std::iter::once(dir).chain(parents) {
            // One descriptor per folder: inotify hands back the same one
            // for a folder watched twice.
            let wd = inotify.add_watch(
                folder,
                AddWatchFlags::IN_CLOSE_WRITE
                    | AddWatchFlags::IN_MODIFY
                    | AddWatchFlags::IN_CREATE
                    | AddWatchFlags::IN_MOVED_TO
                    | AddWatchFlags::IN_MOVED_FROM
                    | AddWatchFlags::IN_DELETE
                    | AddWatchFlags::IN_ONLYDIR,
            )?;
            if !folders.iter().any(|(w, _)| *w == wd) {
                folders.push((wd, folder.to_owned()));
            }
        }
        Ok(Watch {
            inotify,
            dir: dir.to_owned(),
            files: files.iter().map(|f| f.to_path_buf()).collect(),
            folders,
            changed: BTreeSet::new(),
            writing: BTreeSet::new(),
            last_event: None,
        })
    }

    /// Whether this watches `dir` and exactly `files`.
    pub fn watches(&self, dir: &Path, files: &[&Path]) -> bool {
        self.dir == dir
            && self
                .files
                .iter()
                .map(PathBuf::as_path)
                .eq(files.iter().copied())
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    /// Takes the pending events.
    pub fn on_readable(&mut self, now: Instant) {
        while let Ok(events) = self.inotify.read_events() {
            if events.is_empty() {
                break;
            }
            for event in events {
                if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    // Events were lost: reload to be sure, once quiet.
                    self.changed.insert(OsString::from("*"));
                    self.writing.clear();
                    self.last_event = Some(now);
                    continue;
                }
                let Some(name) = event.name else { continue };
                if !self.concerns(event.wd, &name) {
                    continue; // `.hello.so.tmp` and other files
                }
                if event.mask.contains(AddWatchFlags::IN_MODIFY) {
                    self.writing.insert(name.clone());
                }
                if event.mask.contains(AddWatchFlags::IN_CLOSE_WRITE) {
                    self.writing.remove(&name);
                }
                if event
                    .mask
                    .intersects(AddWatchFlags::IN_MOVED_FROM | AddWatchFlags::IN_DELETE)
                {
                    self.writing.remove(&name);
                }
                self.changed.insert(name);
                self.last_event = Some(now);
            }
        }
    }

    /// Whether `name` in the folder of `wd` is a plugin or a watched file.
    fn concerns(&self, wd: WatchDescriptor, name: &OsString) -> bool {
        let Some((_, folder)) = self.folders.iter().find(|(w, _)| *w == wd) else {
            return false;
        };
        let plugin = *folder == self.dir && Path::new(name).extension().is_some_and(|e| e == "so");
        plugin
            || self
                .files
                .iter()
                .any(|f| f.parent() == Some(folder) && f.file_name() == Some(name))
    }

    /// When [`Watch::due`] will next have something to say.
    pub fn deadline(&self) -> Option<Instant> {
        let last = self.last_event?;
        if self.changed.is_empty() {
            return None;
        }
        Some(if self.writing.is_empty() {
            last + QUIET
        } else {
            last + STALL
        })
    }

    /// If a reload is due, the changed names (and forgets them).
    pub fn due(&mut self, now: Instant) -> Option<Vec<String>> {
        if now < self.deadline()? {
            return None;
        }
        if !self.writing.is_empty() {
            log::warn!(
                "{}: {} still open for writing after {}s; reloading anyway",
                self.dir.display(),
                names(&self.writing).join(", "),
                STALL.as_secs()
            );
            self.writing.clear();
        }
        let changed = names(&self.changed);
        self.changed.clear();
        self.last_event = None;
        Some(changed)
    }
}

fn names(set: &BTreeSet<OsString>) -> Vec<String> {
    set.iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    fn settle(watch: &mut Watch, now: Instant) {
        // inotify events are queued synchronously by the writing syscall.
        watch.on_readable(now);
    }

    #[test]
    fn a_rename_into_place_is_due_after_the_quiet_period() {
        let dir = tempfile::tempdir().unwrap();
        let mut watch = Watch::new(dir.path(), &[]).unwrap();
        let t0 = Instant::now();
        std::fs::write(dir.path().join(".hello.so.tmp"), b"elf").unwrap();
        settle(&mut watch, t0);
        assert_eq!(watch.deadline(), None, "a temp name is not a plugin");
        std::fs::rename(
            dir.path().join(".hello.so.tmp"),
            dir.path().join("hello.so"),
        )
        .unwrap();
        settle(&mut watch, t0);
        assert_eq!(watch.due(t0), None);
        assert_eq!(watch.due(t0 + QUIET).unwrap(), ["hello.so"]);
        assert_eq!(watch.due(t0 + QUIET * 2), None, "reported once");
    }

    #[test]
    fn a_file_still_being_written_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let mut watch = Watch::new(dir.path(), &[]).unwrap();
        let t0 = Instant::now();
        let mut file = std::fs::File::create(dir.path().join("big.so")).unwrap();
        file.write_all(b"first half").unwrap();
        settle(&mut watch, t0);
        assert_eq!(watch.due(t0 + QUIET * 4), None, "still open for writing");
        file.write_all(b"second half").unwrap();
        drop(file);
        let t1 = t0 + QUIET * 4;
        settle(&mut watch, t1);
        assert_eq!(watch.due(t1), None);
        assert_eq!(watch.due(t1 + QUIET).unwrap(), ["big.so"]);
    }

    #[test]
    fn a_certificate_replaced_by_a_rename_in_its_own_folder_is_due() {
        let plugins = tempfile::tempdir().unwrap();
        let tls = tempfile::tempdir().unwrap();
        let cert = tls.path().join("cert.pem");
        let key = tls.path().join("key.pem");
        let mut watch = Watch::new(plugins.path(), &[&cert, &key]).unwrap();
        let t0 = Instant::now();
        std::fs::write(tls.path().join("unrelated.pem"), b"x").unwrap();
        settle(&mut watch, t0);
        assert_eq!(watch.deadline(), None, "only the two files count");
        std::fs::write(tls.path().join("new.pem"), b"cert").unwrap();
        std::fs::rename(tls.path().join("new.pem"), &cert).unwrap();
        settle(&mut watch, t0);
        assert_eq!(watch.due(t0 + QUIET).unwrap(), ["cert.pem"]);
        assert!(watch.watches(plugins.path(), &[&cert, &key]));
        assert!(!watch.watches(plugins.path(), &[]));
    }

    #[test]
    fn removing_a_plugin_counts_and_other_files_do_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gone.so"), b"x").unwrap();
        let mut watch = Watch::new(dir.path(), &[]).unwrap();
        let t0 = Instant::now();
        std::fs::write(dir.path().join("README"), b"notes").unwrap();
        settle(&mut watch, t0);
        assert_eq!(watch.deadline(), None);
        std::fs::remove_file(dir.path().join("gone.so")).unwrap();
        settle(&mut watch, t0);
        assert_eq!(watch.due(t0 + QUIET).unwrap(), ["gone.so"]);
    }
}
