//! A generation: one reading of the INI file and one snapshot of the plugin
//! files, which every worker of that generation loads.
//!
//! Each generation copies the `.so` files into its own folder under the
//! master's [`Snapshots`] folder, so overwriting a file in the plugin
//! directory — `cp new.so plugins.d/hello.so` — never changes the code a
//! running worker has mapped. A reload makes a new generation; the old one
//! is removed once none of its workers is left: a [`Folder`] deletes
//! itself when dropped, so dropping a generation (or the master's
//! [`Snapshots`]) is the whole clean-up, on every path out.

use super::reload::{Probe, Rollout};
use super::spawn::Snapshot;
use super::watch::Watch;
use super::MasterError;
use crate::config::Config;
use crate::plugin;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::path::{Path, PathBuf};

/// A folder the master made, deleted with everything in it when dropped —
/// but only by the process that made it: a forked child that unwinds
/// through the master's frames must not delete what the master still uses.
#[derive(Debug)]
pub struct Folder {
    path: PathBuf,
    owner: u32,
}

impl Folder {
    /// Takes charge of `path` (made or about to be made by the caller).
    pub fn new(path: PathBuf) -> Folder {
        Folder {
            path,
            owner: std::process::id(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        if std::process::id() == self.owner {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The master's folder of snapshots, `$TMPDIR/drupe-<pid>-<random>`. The
/// random part matters: masters in other pid namespaces (containers, test
/// runs) share `/tmp` and may have the same pid, and a master killed with
/// SIGKILL leaves its folder behind for a later one with its pid.
#[derive(Debug)]
pub struct Snapshots {
    root: Folder,
}

impl Snapshots {
    pub fn create() -> Result<Snapshots, MasterError> {
        for _ in 0..16 {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u32(std::process::id());
            let root = std::env::temp_dir().join(format!(
                "drupe-{}-{:08x}",
                std::process::id(),
                hasher.finish() as u32
            ));
            match std::fs::create_dir(&root) {
                Ok(()) => {
                    return Ok(Snapshots {
                        root: Folder::new(root),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(MasterError::Io(format!(
                        "cannot create {}: {e}",
                        root.display()
                    )))
                }
            }
        }
        Err(MasterError::Io(
            "cannot create a folder for plugin snapshots".into(),
        ))
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Removes the snapshot folders in the temporary directory that no
    /// running master owns: a master killed with SIGKILL cannot remove its
    /// own. A folder whose pid is alive is left alone, even if that pid
    /// belongs to some other program now: a copy too many is harmless, a
    /// live master's plugins pulled from under it are not.
    pub fn remove_left_behind() {
        let temp = std::env::temp_dir();
        let Ok(entries) = std::fs::read_dir(&temp) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(owner_pid) else {
                continue;
            };
            // Not through a symlink: only folders a master made.
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if !is_dir || crate::sys::process::exists(pid) {
                continue;
            }
            let path = entry.path();
            match std::fs::remove_dir_all(&path) {
                Ok(()) => log::info!(
                    "removed {}: plugin copies of master {pid}, which is no longer running",
                    path.display()
                ),
                Err(e) => log::warn!(
                    "cannot remove {} (plugin copies of master {pid}, no longer running): {e}",
                    path.display()
                ),
            }
        }
    }
}

/// The pid in a snapshot folder's name, `drupe-<pid>-<random>`.
fn owner_pid(name: &str) -> Option<i32> {
    let (pid, rest) = name.strip_prefix("drupe-")?.split_once('-')?;
    if rest.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// One generation; its snapshot is deleted when it is dropped. Workers
/// that mapped it keep running: an unlinked file stays mapped.
#[derive(Debug)]
pub struct Generation {
    pub number: u64,
    pub config: Config,
    pub files: Snapshot,
    /// `[tls]`, loaded by the master: what the workers serve HTTPS with.
    pub tls: Option<crate::tls::Tls>,
    /// Dropped last, after nothing refers to the copies any more.
    _dir: Folder,
}

impl Generation {
    /// Loads `[tls]` and copies the plugin directory of `config` into a
    /// fresh folder. `replaces` is the generation this one follows, whose
    /// session-ticket key it rotates (see `tls::ticket`).
    pub fn snapshot(
        config: Config,
        number: u64,
        snapshots: &Snapshots,
        replaces: Option<&Generation>,
    ) -> Result<Generation, MasterError> {
        let previous = replaces.and_then(|g| g.tls.as_ref()).map(|t| &t.tickets);
        let tls =
            crate::tls::load(&config.tls, previous).map_err(|e| MasterError::Io(e.to_string()))?;
        let dir = Folder::new(snapshots.root().join(format!("gen-{number}")));
        let files = plugin::snapshot(&config.plugins.directory, dir.path())
            .map_err(|e| MasterError::Io(e.to_string()))?;
        if files.is_empty() {
            log::warn!(
                "no plugins (*.so) in {}: every request will get 404",
                config.plugins.directory.display()
            );
        }
        Ok(Generation {
            number,
            config,
            files,
            tls,
            _dir: dir,
        })
    }
}

/// The master's part that says what its workers run: the current
/// generation, the older ones still running, and a reload on its way in
/// (changed by `reload`).
#[derive(Debug)]
pub(super) struct Generations {
    /// The generation new workers load.
    pub current: Generation,
    /// Older generations whose workers are still running.
    pub retired: Vec<Generation>,
    pub next_number: u64,
    /// A reload whose probe is still running.
    pub probe: Option<Probe>,
    /// A reload being rolled through the pool, for the log.
    pub rollout: Option<Rollout>,
    /// `[plugins] watch`: reload when the plugin directory changes.
    pub watch: Option<Watch>,
    /// Dropped after every generation (fields drop in order).
    pub snapshots: Snapshots,
}

#[cfg(test)]
mod tests {
    use super::owner_pid;

    #[test]
    fn only_snapshot_folder_names_have_an_owner() {
        assert_eq!(owner_pid("drupe-1234-0badcafe"), Some(1234));
        assert_eq!(owner_pid("drupe-1234-live"), Some(1234));
        for other in [
            "drupe-1234",
            "drupe-1234-",
            "drupe--x",
            "drupe-+12-x",
            "drupe-x1-y",
            "cargo-1-x",
        ] {
            assert_eq!(owner_pid(other), None, "{other}");
        }
    }
}
