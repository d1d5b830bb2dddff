//! A generation: one reading of the INI file and one snapshot of the plugin
//! files, which every worker of that generation loads.
//!
//! Each generation copies the `.so` files into its own folder under the
//! master's [`Snapshots`] folder, so overwriting a file in the plugin
//! directory — `cp new.so plugins.d/hello.so` — never changes the code a
//! running worker has mapped. A reload makes a new generation; the old one
//! is removed once none of its workers is left.

use super::spawn::Snapshot;
use super::MasterError;
use crate::config::Config;
use crate::plugin;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::path::{Path, PathBuf};

/// The master's folder of snapshots, `$TMPDIR/drupe-<pid>-<random>`. The
/// random part matters: masters in other pid namespaces (containers, test
/// runs) share `/tmp` and may have the same pid, and a master killed with
/// SIGKILL leaves its folder behind for a later one with its pid.
#[derive(Debug)]
pub struct Snapshots {
    root: PathBuf,
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
                Ok(()) => return Ok(Snapshots { root }),
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

    /// Removes the folder; every generation must have been removed first.
    pub fn remove(&self) {
        let _ = std::fs::remove_dir(&self.root);
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[derive(Debug)]
pub struct Generation {
    pub number: u64,
    pub config: Config,
    dir: PathBuf,
    pub files: Snapshot,
}

impl Generation {
    /// Copies the plugin directory of `config` into a fresh folder.
    pub fn snapshot(
        config: Config,
        number: u64,
        snapshots: &Snapshots,
    ) -> Result<Generation, MasterError> {
        let dir = snapshots.root().join(format!("gen-{number}"));
        let files = plugin::snapshot(&config.plugins.directory, &dir).map_err(|e| {
            let _ = std::fs::remove_dir_all(&dir);
            MasterError::Io(e.to_string())
        })?;
        if files.is_empty() {
            log::warn!(
                "no plugins (*.so) in {}: every request will get 404",
                config.plugins.directory.display()
            );
        }
        Ok(Generation {
            number,
            config,
            dir,
            files,
        })
    }

    /// Deletes the snapshot. Workers that mapped it keep running: an
    /// unlinked file stays mapped.
    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
