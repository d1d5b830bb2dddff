//! Dropping root: `[server] user` and `group`.
//!
//! Started as root (to bind port 80), drupe keeps root only in the master,
//! which runs no plugin code — it binds, forks, signals, reopens logs and
//! re-reads the config, as nginx's master does. Every process that loads a
//! plugin (the workers and the probe) switches to the configured user in
//! its first steps after fork, before any plugin is opened, and checks that
//! the switch cannot be undone. Names are resolved in the master, before
//! the fork, so the child calls no NSS code.

use crate::config::Server;
use nix::unistd::{Gid, Group, Uid, User};
use std::ffi::CString;
use std::path::Path;

/// Who the workers run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub uid: Uid,
    pub gid: Gid,
    /// Supplementary groups: the user's, as `initgroups` would set them.
    pub groups: Vec<Gid>,
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Uid::effective().is_root()
}

/// Who `[server] user` / `group` say the workers run as; `None` when they
/// keep the identity drupe started with (no `user`, or already that user).
/// Errors say what to change.
pub fn resolve(server: &Server) -> Result<Option<Identity>, String> {
    let Some(name) = server.user.as_deref() else {
        return match &server.group {
            Some(group) => Err(format!(
                "[server] group = {group} needs [server] user as well; set user, or remove group"
            )),
            None => Ok(None),
        };
    };
    let user = User::from_name(name)
        .map_err(|e| format!("[server] user = {name}: cannot look it up: {e}"))?
        .ok_or_else(|| {
            format!("[server] user = {name}: no such user; create it (useradd --system {name}) or name another")
        })?;
    let gid = match server.group.as_deref() {
        None => user.gid,
        Some(group) => {
            Group::from_name(group)
                .map_err(|e| format!("[server] group = {group}: cannot look it up: {e}"))?
                .ok_or_else(|| format!("[server] group = {group}: no such group; name another, or remove it to use {name}'s own"))?
                .gid
        }
    };
    if !is_root() {
        if user.uid == Uid::effective() && gid == Gid::effective() {
            return Ok(None); // already who we should be
        }
        return Err(format!(
            "[server] user = {name}: drupe runs as uid {}, not root, so it cannot switch users; \
             start it as root (the master binds the port, then workers and plugins run as {name}), \
             or remove `user` to run everything as the current user",
            Uid::effective()
        ));
    }
    if user.uid.is_root() {
        return Ok(None); // `user = root` asks for no change
    }
    let c_name = CString::new(name).map_err(|_| format!("[server] user = {name}: not a name"))?;
    let mut groups = nix::unistd::getgrouplist(&c_name, gid)
        .map_err(|e| format!("[server] user = {name}: cannot list its groups: {e}"))?;
    if !groups.contains(&gid) {
        groups.push(gid);
    }
    Ok(Some(Identity {
        user: name.to_owned(),
        uid: user.uid,
        gid,
        groups,
    }))
}

/// Switches this process to `id` for good: supplementary groups, then the
/// group, then the user (real, effective and saved ids, so nothing is kept
/// to switch back with), and checks the result. Call in a forked child
/// before it loads any plugin.
pub fn drop_to(id: &Identity) -> Result<(), String> {
    let fail =
        |what: &str, e: nix::Error| format!("cannot switch to user {}: {what}: {e}", id.user);
    nix::unistd::setgroups(&id.groups).map_err(|e| fail("setgroups", e))?;
    nix::unistd::setresgid(id.gid, id.gid, id.gid).map_err(|e| fail("setgid", e))?;
    nix::unistd::setresuid(id.uid, id.uid, id.uid).map_err(|e| fail("setuid", e))?;
    check_dropped(id)
}

/// Proves the switch: every uid and gid is the new one, and root cannot
/// be taken back.
fn check_dropped(id: &Identity) -> Result<(), String> {
    let uids = nix::unistd::getresuid().map_err(|e| e.to_string())?;
    let gids = nix::unistd::getresgid().map_err(|e| e.to_string())?;
    let all_uid = [uids.real, uids.effective, uids.saved]
        .iter()
        .all(|&u| u == id.uid);
    let all_gid = [gids.real, gids.effective, gids.saved]
        .iter()
        .all(|&g| g == id.gid);
    if !all_uid || !all_gid {
        return Err(format!(
            "switching to user {} left uids {uids:?} and gids {gids:?}; refusing to load plugins",
            id.user
        ));
    }
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(format!(
            "after switching to user {}, setuid(0) still works; refusing to load plugins",
            id.user
        ));
    }
    Ok(())
}

/// Makes `path` belong to `id`, so a worker running as that user can write
/// (and reopen) it.
pub fn hand_over(path: &Path, id: &Identity) -> Result<(), String> {
    nix::unistd::chown(path, Some(id.uid), Some(id.gid))
        .map_err(|e| format!("cannot give {} to user {}: {e}", path.display(), id.user))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn server(user: Option<&str>, group: Option<&str>) -> Server {
        let mut s = crate::config::Config::default_for(Path::new("/x/drupe.ini"))
            .unwrap()
            .server;
        s.user = user.map(str::to_owned);
        s.group = group.map(str::to_owned);
        s
    }

    #[test]
    fn names_resolve_or_say_what_to_do() {
        assert_eq!(resolve(&server(None, None)), Ok(None));
        let e = resolve(&server(None, Some("adm"))).unwrap_err();
        assert!(e.contains("needs [server] user"), "{e}");
        let e = resolve(&server(Some("no-such-user-drupe"), None)).unwrap_err();
        assert!(e.contains("no such user; create it"), "{e}");
        let e = resolve(&server(Some("root"), Some("no-such-group-drupe"))).unwrap_err();
        assert!(e.contains("no such group"), "{e}");
        if is_root() {
            let id = resolve(&server(Some("nobody"), None)).unwrap().unwrap();
            assert!(!id.uid.is_root());
            assert!(id.groups.contains(&id.gid));
            assert_eq!(resolve(&server(Some("root"), None)), Ok(None));
        } else {
            let e = resolve(&server(Some("root"), None)).unwrap_err();
            assert!(e.contains("not root, so it cannot switch users"), "{e}");
        }
    }

    #[test]
    #[ignore = "needs root: `cargo xtask test` runs it when it is root"]
    fn a_forked_child_drops_root_for_good() {
        assert!(is_root(), "this test drops privileges: run it as root");
        let id = resolve(&server(Some("nobody"), None)).unwrap().unwrap();
        // The child only makes system calls and `_exit`s.
        match crate::sys::process::fork().unwrap() {
            crate::sys::process::Forked::Child => {
                let ok = drop_to(&id).is_ok() && Uid::current() == id.uid;
                crate::sys::process::exit_now(if ok { 0 } else { 1 });
            }
            crate::sys::process::Forked::Parent(pid) => {
                let status = nix::sys::wait::waitpid(pid, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(pid, 0));
            }
        }
    }
}
