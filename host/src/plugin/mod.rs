//! Plugins: finding the `.so` files, snapshotting them for a generation,
//! loading them, and building the route table.
//!
//! Loading happens only in worker and probe processes (it runs the
//! library's code); the master only copies files. Every error names the
//! file as the operator knows it (`plugins.d/x.so`), not the snapshot copy.

mod elf;
pub mod index;
pub mod routes;

use crate::config::Config;
use crate::sys::dl::{self, CallSink, Declaration, Entry};
use routes::{Router, Target};
use std::io;
use std::path::{Path, PathBuf};

/// One loaded plugin.
#[derive(Debug)]
pub struct Plugin {
    pub entry: Entry,
    pub decl: Declaration,
    /// The file in the plugin directory it came from.
    pub file: PathBuf,
    /// Where it is mounted: `/hello`, or `` for the root.
    pub mount: String,
    /// `[plugin.NAME]` settings other than the host's (`mount`,
    /// `storeNamespace`).
    pub settings: Vec<(String, String)>,
    /// Its store namespace: its name unless `storeNamespace` says otherwise.
    pub store_namespace: String,
}

/// Every plugin of a generation and their routes.
#[derive(Debug, Default)]
pub struct PluginSet {
    pub plugins: Vec<Plugin>,
    pub router: Router,
    /// The index page for `GET /`, when `[server] showIndex` is on.
    pub index_page: Option<Vec<u8>>,
    /// `drupe dev` only: while this file exists, it is the answer (500)
    /// to every request outside `/_drupe/` (see `config::Dev`).
    pub dev_error_page: Option<PathBuf>,
}

/// Problems found while loading, all of them (not just the first), so that
/// `--check` and the startup error show everything at once.
#[derive(Debug, Default)]
pub struct LoadErrors(pub Vec<String>);

impl std::fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

impl std::error::Error for LoadErrors {}

/// The `.so` files in `dir`, sorted by name so load order is stable.
/// Other files (a README, a half-written `x.so.tmp`) are ignored. A `.so`
/// name that is not a file — a dangling link, a folder — is skipped with a
/// warning naming it: it looks like a plugin, and the operator would
/// otherwise wonder why it is not served. This runs in the master at
/// `--check` (the warning reaches the terminal), at start and at reload.
pub fn plugin_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "plugin directory {}: {e} (set [plugins] directory in the INI file)",
                dir.display()
            ),
        )
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|ext| ext != "so") {
            continue;
        }
        match not_a_file(&path) {
            None => files.push(path),
            Some(why) => log::warn!("{} {why}; not loaded", path.display()),
        }
    }
    files.sort();
    Ok(files)
}

/// Why `path` (named like a plugin) is not a file to load, if it is not.
fn not_a_file(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => None,
        Ok(meta) if meta.is_dir() => Some("is a folder, not a plugin file".to_owned()),
        Ok(_) => Some("is not a regular file".to_owned()),
        Err(e) => Some(match std::fs::read_link(path) {
            Ok(target) => format!(
                "is a link to {}, which cannot be read ({e})",
                target.display()
            ),
            Err(_) => format!("cannot be read ({e})"),
        }),
    }
}

/// Copies the plugin files into `dest` (created if needed) so that a
/// generation keeps running the code it loaded even when the operator
/// overwrites a file in the plugin directory. Returns `(original, copy)`.
pub fn snapshot(dir: &Path, dest: &Path) -> io::Result<Vec<(PathBuf, PathBuf)>> {
    std::fs::create_dir_all(dest)?;
    let mut pairs = Vec::new();
    for file in plugin_files(dir)? {
        let copy = dest.join(file.file_name().unwrap_or_default());
        std::fs::copy(&file, &copy)
            .map_err(|e| io::Error::new(e.kind(), format!("copying {}: {e}", file.display())))?;
        pairs.push((file, copy));
    }
    Ok(pairs)
}

/// Loads every `(original, copy)` file, checks names and routes, and builds
/// the route table. Does not call `init`. `step` hears "loading FILE"
/// before each file is mapped: a probe reports it, so that a library that
/// kills the process can be named.
pub fn load(
    files: &[(PathBuf, PathBuf)],
    config: &Config,
    mut step: impl FnMut(&str),
) -> Result<PluginSet, LoadErrors> {
    let mut errors = Vec::new();
    let mut set = PluginSet::default();
    for (file, copy) in files {
        step(&format!("loading {}", file.display()));
        // A cut-off library would be mapped and then fault (SIGBUS) when
        // the loader touches a page past its end: say so instead.
        if let Err(why) = elf::check_complete(copy) {
            errors.push(format!("{}: {why}", file.display()));
            continue;
        }
        match dl::open(copy, file) {
            Ok((entry, decl)) => {
                if let Some(other) = set.plugins.iter().find(|p| p.decl.name == decl.name) {
                    errors.push(format!(
                        "{} and {} both declare a plugin named `{}`; remove one of them",
                        other.file.display(),
                        file.display(),
                        decl.name
                    ));
                    continue;
                }
                let mount = routes::stored_mount(&config.mount_of(&decl.name)).to_owned();
                let settings = config
                    .plugin
                    .get(&decl.name)
                    .map(|s| s.settings.clone())
                    .unwrap_or_default();
                let store_namespace = config.store_namespace_of(&decl.name);
                set.plugins.push(Plugin {
                    entry,
                    decl,
                    file: file.clone(),
                    mount,
                    settings,
                    store_namespace,
                });
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    for name in config.plugin.keys() {
        if !set.plugins.iter().any(|p| &p.decl.name == name) {
            log::warn!(
                "{}: [plugin.{name}] is configured but no plugin named `{name}` was loaded",
                config.source.display()
            );
        }
    }
    for (index, plugin) in set.plugins.iter().enumerate() {
        let owner = format!("plugin `{}` ({})", plugin.decl.name, plugin.file.display());
        for (route, (method, pattern)) in plugin.decl.routes.iter().enumerate() {
            let target = Target {
                plugin: index,
                route,
            };
            if let Err(e) = set
                .router
                .add(&plugin.mount, method, pattern, target, &owner)
            {
                errors.push(e.to_string());
            }
        }
    }
    if errors.is_empty() {
        set.dev_error_page = config.dev.as_ref().map(|dev| dev.error_page.clone());
        if config.server.show_index {
            set.index_page = Some(index::render(&set));
        }
        Ok(set)
    } else {
        Err(LoadErrors(errors))
    }
}

impl PluginSet {
    /// Calls every plugin's `init` with its settings; `S` is the type that
    /// will receive responses in `handle` calls.
    pub fn init<S: CallSink>(&self) -> Result<(), LoadErrors> {
        self.init_with::<S>(|_| {})
    }

    /// [`PluginSet::init`], calling `before` ahead of each plugin's `init`
    /// (the probe reports it, as for [`load`]).
    pub fn init_with<S: CallSink>(
        &self,
        mut before: impl FnMut(&Plugin),
    ) -> Result<(), LoadErrors> {
        let errors: Vec<String> = self
            .plugins
            .iter()
            .filter_map(|p| {
                before(p);
                p.entry.init::<S>(&p.settings).err().map(|e| {
                    format!(
                        "{}: plugin `{}` failed to start: {e}",
                        p.file.display(),
                        p.decl.name
                    )
                })
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(LoadErrors(errors))
        }
    }

    /// Calls every plugin's `shutdown`.
    pub fn shutdown(&self) {
        for plugin in &self.plugins {
            plugin.entry.shutdown();
        }
    }

    /// A human-readable listing of what is served, for `--check`.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for p in &self.plugins {
            out.push_str(&format!(
                "plugin {} {} (sdk {}, abi {}.{}) from {} at {}\n",
                p.decl.name,
                p.decl.version,
                p.decl.sdk_version,
                p.decl.abi.0,
                p.decl.abi.1,
                p.file.display(),
                routes::shown_path(&p.mount)
            ));
        }
        for e in self.router.endpoints() {
            out.push_str(&format!(
                "  {:<7} {}  -> {}\n",
                e.shown_method(),
                routes::shown_path(&e.pattern),
                self.plugins[e.target.plugin].decl.name
            ));
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_files_named_so_are_plugins_and_lookalikes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("b.so"), b"elf").unwrap();
        std::fs::write(d.join("a.so"), b"elf").unwrap();
        std::fs::write(d.join("README"), b"text").unwrap();
        std::os::unix::fs::symlink(d.join("a.so"), d.join("link.so")).unwrap();
        std::os::unix::fs::symlink(d.join("gone"), d.join("gone.so")).unwrap();
        std::fs::create_dir(d.join("folder.so")).unwrap();
        let files = plugin_files(d).unwrap();
        assert_eq!(files, [d.join("a.so"), d.join("b.so"), d.join("link.so")]);
        assert_eq!(not_a_file(&d.join("a.so")), None);
        let why = not_a_file(&d.join("gone.so")).unwrap_or_default();
        assert!(
            why.starts_with("is a link to ") && why.contains("gone"),
            "{why}"
        );
        let why = not_a_file(&d.join("folder.so")).unwrap_or_default();
        assert_eq!(why, "is a folder, not a plugin file");
    }
}
