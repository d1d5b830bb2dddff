//! Watching the crates' sources: `src/` (recursively) and `Cargo.toml` of
//! each crate, with the `notify` crate (inotify on Linux). Events arrive
//! on notify's own thread and are passed on as "crate N changed"; the
//! supervisor waits for a quiet moment before building (editors save in
//! bursts: a temporary file, a rename, a chmod).

use super::build::Crate;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::path::Path;

/// Watches `crates`, calling `changed(index)` for each relevant event.
/// Keep the watcher: dropping it stops the watch.
pub fn watch(
    crates: &[Crate],
    changed: impl Fn(usize) + Send + 'static,
) -> notify::Result<RecommendedWatcher> {
    let dirs: Vec<_> = crates.iter().map(|c| c.dir.clone()).collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return; // reading a file (the build itself) changes nothing
        }
        for (index, dir) in dirs.iter().enumerate() {
            if event.paths.iter().any(|p| is_source(dir, p)) {
                changed(index);
            }
        }
    })?;
    for krate in crates {
        // The crate folder itself only for Cargo.toml: a target/ inside it
        // must not trigger builds of its own.
        watcher.watch(&krate.dir, RecursiveMode::NonRecursive)?;
        let src = krate.dir.join("src");
        if src.is_dir() {
            watcher.watch(&src, RecursiveMode::Recursive)?;
        }
    }
    Ok(watcher)
}

/// Whether a change at `path` can change what the crate at `dir` builds.
fn is_source(dir: &Path, path: &Path) -> bool {
    if path == dir.join("Cargo.toml") {
        return true;
    }
    let Ok(inside) = path.strip_prefix(dir.join("src")) else {
        return false;
    };
    // Editors' swap and backup files (`.lib.rs.swp`, `lib.rs~`, `4913`).
    let name = inside
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    !(name.starts_with('.') || name.ends_with('~') || name.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_src_and_the_manifest_but_not_editor_litter() {
        let dir = Path::new("/w/greeter");
        for yes in [
            "/w/greeter/Cargo.toml",
            "/w/greeter/src/lib.rs",
            "/w/greeter/src/a/b.rs",
        ] {
            assert!(is_source(dir, Path::new(yes)), "{yes}");
        }
        for no in [
            "/w/greeter/Cargo.lock",
            "/w/greeter/target/debug/libgreeter.so",
            "/w/greeter/src/.lib.rs.swp",
            "/w/greeter/src/lib.rs~",
            "/w/greeter/src/4913",
            "/w/other/src/lib.rs",
        ] {
            assert!(!is_source(dir, Path::new(no)), "{no}");
        }
    }
}
