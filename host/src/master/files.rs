//! The files workers write, made writable for `[server] user`, and the
//! start-up check of that setting.
//!
//! Workers run as `user` but write the access log, the error log (a reopen
//! after USR1 opens it by path) and the SQLite store. The master, still
//! root, creates those that do not exist and gives them to `user` (chown):
//! at start-up, on every reload (the paths may have changed) and on USR1,
//! after it reopened its own logs and before the workers reopen theirs —
//! so the files logrotate leaves behind are the workers' again. The
//! folders that hold them need not be writable by `user`. This is nginx's
//! way with its logs; opening every file before the drop instead would
//! still leave the reopen after a rotation to a process that may not
//! create files.

use crate::config::{Config, LogTarget};
use crate::sys::privileges::{self, Identity};
use std::path::{Path, PathBuf};

/// Refuses a `[server] user` that cannot be had, and warns, once, about
/// plugins running as root.
pub(super) fn check_privileges(config: &Config) -> Result<(), super::MasterError> {
    match crate::sys::privileges::resolve(&config.server).map_err(super::MasterError::Io)? {
        Some(id) => log::info!("workers and plugins run as user {} (uid {}, gid {}); the master stays root", id.user, id.uid, id.gid),
        None if crate::sys::privileges::is_root() => log::warn!(
            "RUNNING AS ROOT: every worker and plugin runs as root; set [server] user (e.g. nobody) so that only the master keeps root"
        ),
        None => {}
    }
    hand_over(config);
    Ok(())
}

/// Creates the workers' files and folders as needed and gives them to
/// `[server] user`; does nothing when no switch of user is configured.
/// Problems are logged: the worker that then cannot open a file says so.
pub(super) fn hand_over(config: &Config) {
    let Ok(Some(id)) = privileges::resolve(&config.server) else {
        return;
    };
    for target in [&config.log.access_log, &config.log.error_log] {
        if let LogTarget::File(path) = target {
            if let Err(e) = create_file(path).and_then(|()| privileges::hand_over(path, &id)) {
                log::warn!("{e}; workers running as {} may not write it", id.user);
            }
        }
    }
    if let Some(db) = config.store.url.strip_prefix("sqlite://") {
        if let Err(e) = store_files(Path::new(db), &id) {
            log::warn!("{e}; workers running as {} may not use the store", id.user);
        }
    }
}

fn create_file(path: &Path) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(drop)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))
}

/// SQLite writes the database and, beside it, its `-wal` and `-shm` files,
/// so the user needs the folder. The master gives it the folder only when
/// the folder is the store's own — made now, or holding nothing but the
/// store's files — never a shared one like `/var/lib`; then also the files
/// a run as root may have left in it.
fn store_files(db: &Path, id: &Identity) -> Result<(), String> {
    let Some(folder) = db.parent() else {
        return Ok(());
    };
    std::fs::create_dir_all(folder)
        .map_err(|e| format!("cannot create the store's folder {}: {e}", folder.display()))?;
    let files: Vec<PathBuf> = ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .collect();
    let own = std::fs::read_dir(folder)
        .map_err(|e| format!("cannot read the store's folder {}: {e}", folder.display()))?
        .all(|entry| entry.is_ok_and(|e| files.contains(&e.path())));
    if !own {
        return Err(format!(
            "the store's folder {} holds other files, so drupe leaves its owner alone; \
             give the store a folder of its own ([store] url), or chown it to {}",
            folder.display(),
            id.user
        ));
    }
    privileges::hand_over(folder, id)?;
    for file in files.iter().filter(|f| f.exists()) {
        privileges::hand_over(file, id)?;
    }
    Ok(())
}
