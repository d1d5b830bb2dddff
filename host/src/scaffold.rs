//! `drupe new NAME [DIR]`: a plugin crate that builds and is served, as it
//! is, at `/NAME`.
//!
//! The crate depends on the `drupe-sdk` this binary was built with: by a
//! relative path when the SDK's source is still where it was compiled (a
//! checkout of drupe), so the crate can move with the checkout; otherwise
//! by version requirement (`"MAJOR.MINOR"` of that SDK) from the registry.
//! Created inside a cargo workspace, it adds itself to the workspace's
//! `members` (editing the file in place with `toml_edit`, so comments and
//! layout stay), and plugins share one target folder; anywhere else it
//! declares its own `[workspace]` so it builds standalone.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use toml_edit::{DocumentMut, Item, Value};

/// Why a plugin crate could not be created.
#[derive(Debug)]
pub enum ScaffoldError {
    BadName(String),
    Exists(PathBuf),
    Io(PathBuf, std::io::Error),
    /// The enclosing workspace's Cargo.toml could not be edited.
    Workspace(PathBuf, String),
}

impl fmt::Display for ScaffoldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScaffoldError::BadName(name) => write!(
                f,
                "`{name}` cannot name a plugin: use lowercase letters, digits, `_` and `-`, starting with a letter"
            ),
            ScaffoldError::Exists(dir) => {
                write!(f, "{} already exists; pick another name or directory", dir.display())
            }
            ScaffoldError::Io(path, e) => write!(f, "{}: {e}", path.display()),
            ScaffoldError::Workspace(path, e) => write!(
                f,
                "{}: cannot add the plugin to this workspace's members: {e}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ScaffoldError {}

/// Plugin names are crate names and URL segments at once.
fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// What `drupe new` made.
#[derive(Debug)]
pub struct Created {
    pub dir: PathBuf,
    /// The Cargo.toml of the workspace it joined, if any.
    pub workspace: Option<PathBuf>,
}

/// Creates the crate for plugin `name` in `dir` (default `./NAME`).
pub fn new_plugin(name: &str, dir: Option<&Path>) -> Result<Created, ScaffoldError> {
    if !valid_name(name) {
        return Err(ScaffoldError::BadName(name.to_owned()));
    }
    let dir = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(ScaffoldError::Exists(dir));
    }
    std::fs::create_dir_all(&dir).map_err(|e| ScaffoldError::Io(dir.clone(), e))?;
    let at = dir
        .canonicalize()
        .map_err(|e| ScaffoldError::Io(dir.clone(), e))?;
    let workspace = enclosing_workspace(&at);
    let write = |relative: &str, text: String| {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ScaffoldError::Io(parent.to_owned(), e))?;
        }
        std::fs::write(&path, text).map_err(|e| ScaffoldError::Io(path, e))
    };
    write("Cargo.toml", cargo_toml(name, &at, workspace.as_deref()))?;
    write("src/lib.rs", lib_rs(name))?;
    if workspace.is_none() {
        write(".gitignore", "/target\n".to_owned())?;
    }
    if let Some(manifest) = &workspace {
        join_workspace(manifest, &at)?;
    }
    Ok(Created { dir, workspace })
}

/// The SDK this binary was built with, if its source is still there.
fn sdk_checkout() -> Option<PathBuf> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sdk")
        .canonicalize()
        .ok()?;
    sdk.join("Cargo.toml").is_file().then_some(sdk)
}

/// `to` as seen from `from` (both absolute and canonical): `../../sdk`.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut path = PathBuf::new();
    for _ in common..from.len() {
        path.push("..");
    }
    for part in &to[common..] {
        path.push(part);
    }
    path
}

/// The `drupe-sdk` dependency of a crate at `dir`, with a comment saying
/// how to point it elsewhere.
fn sdk_dependency(dir: &Path) -> String {
    let version = drupe_sdk::export::SDK_VERSION;
    let requirement = version
        .rsplit_once('.')
        .map_or(version, |(major_minor, _)| major_minor);
    match sdk_checkout() {
        Some(sdk) => format!(
            "# The SDK of the drupe checkout this crate was created from, by a path\n\
             # relative to this file. To use another checkout, change the path; to use\n\
             # a release instead: drupe-sdk = \"{requirement}\"\n\
             drupe-sdk = {{ path = {:?} }}",
            relative(dir, &sdk).display().to_string()
        ),
        None => format!(
            "# To build against a checkout of drupe instead of the release, point at\n\
             # its sdk folder (a relative path keeps the crate movable):\n\
             # drupe-sdk = {{ path = \"../drupe/sdk\" }}\n\
             drupe-sdk = \"{requirement}\""
        ),
    }
}

/// The nearest folder above `dir` whose Cargo.toml declares a
/// `[workspace]` that does not exclude `dir` (cargo looks the same way).
fn enclosing_workspace(dir: &Path) -> Option<PathBuf> {
    for folder in dir.ancestors().skip(1) {
        let manifest = folder.join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let Ok(doc) = text.parse::<DocumentMut>() else {
            continue;
        };
        let Some(workspace) = doc.get("workspace") else {
            continue;
        };
        let inside = relative(folder, dir);
        let excluded =
            strings(workspace.get("exclude")).any(|e| inside.starts_with(e.trim_end_matches('/')));
        return (!excluded).then_some(manifest);
    }
    None
}

/// The strings of a TOML array item (nothing if it is not one).
fn strings(item: Option<&Item>) -> impl Iterator<Item = &str> {
    item.and_then(Item::as_array)
        .into_iter()
        .flat_map(|a| a.iter().filter_map(Value::as_str))
}

/// Adds `dir` to the `members` of the workspace in `manifest`, unless a
/// member (or a `folder/*` pattern) already covers it. The new entry is
/// laid out like the last one, so a one-per-line list stays one per line.
fn join_workspace(manifest: &Path, dir: &Path) -> Result<(), ScaffoldError> {
    let fail = |e: String| ScaffoldError::Workspace(manifest.to_owned(), e);
    let text = std::fs::read_to_string(manifest).map_err(|e| fail(e.to_string()))?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| fail(e.to_string()))?;
    let root = manifest.parent().unwrap_or(Path::new("/"));
    let member = relative(root, dir).to_string_lossy().replace('\\', "/");
    let workspace = doc["workspace"]
        .as_table_like_mut()
        .ok_or_else(|| fail("[workspace] is not a table".into()))?;
    let members = workspace
        .entry("members")
        .or_insert(Item::Value(Value::Array(Default::default())))
        .as_array_mut()
        .ok_or_else(|| fail("`members` is not a list".into()))?;
    let covered = members.iter().filter_map(Value::as_str).any(|m| {
        m == member
            || m.strip_suffix("/*")
                .is_some_and(|folder| Path::new(&member).parent() == Some(Path::new(folder)))
    });
    if covered {
        return Ok(());
    }
    let prefix = members
        .iter()
        .last()
        .and_then(|v| v.decor().prefix())
        .and_then(|p| p.as_str())
        .map(str::to_owned);
    // What follows the last comma (a comment, the line break before `]`)
    // stays with the entry it followed.
    let trailing = members.trailing().as_str().unwrap_or_default().to_owned();
    members.push(member.as_str());
    let Some(prefix) = prefix else {
        // The first member: one per line if the brackets are on two lines.
        if trailing.contains('\n') {
            members.set_trailing_comma(true);
            if let Some(added) = members.iter_mut().last() {
                added.decor_mut().set_prefix("\n    ");
            }
        }
        return write_manifest(manifest, &doc);
    };
    let prefix = match (trailing.rfind('\n'), prefix.rfind('\n')) {
        (Some(end), Some(indent)) => {
            members.set_trailing(format!("\n{}", &trailing[end + 1..]));
            format!("{}{}", &trailing[..=end], &prefix[indent + 1..])
        }
        _ => prefix,
    };
    if let Some(added) = members.iter_mut().last() {
        added.decor_mut().set_prefix(prefix);
    }
    write_manifest(manifest, &doc)
}

fn write_manifest(manifest: &Path, doc: &DocumentMut) -> Result<(), ScaffoldError> {
    std::fs::write(manifest, doc.to_string())
        .map_err(|e| ScaffoldError::Workspace(manifest.to_owned(), e.to_string()))
}

fn cargo_toml(name: &str, dir: &Path, workspace: Option<&Path>) -> String {
    let workspace = match workspace {
        Some(manifest) => format!(
            "# A member of the workspace in {}: its plugins share one target folder.\n",
            relative(dir, manifest).display()
        ),
        None => "\n# A crate of its own, so it builds standalone.\n[workspace]\n".to_owned(),
    };
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"

[lib]
# cdylib: the .so that drupe loads; rlib: so unit tests can call handlers.
crate-type = ["cdylib", "rlib"]

[dependencies]
{sdk}
{workspace}"#,
        sdk = sdk_dependency(dir)
    )
}

fn lib_rs(name: &str) -> String {
    format!(
        r#"//! The `{name}` drupe plugin.
//!
//! `drupe dev` in this folder builds it, serves it at
//! http://127.0.0.1:8080/{name} and rebuilds on every save. To deploy,
//! `cargo build --release` and copy `lib{lib}.so` from the target folder
//! into drupe's plugin directory.

use drupe_sdk::prelude::*;

/// `GET /{name}`
pub fn index(_req: &Request, _ctx: &mut Context) -> Result<Response> {{
    Ok(Response::text("Hello from {name}!"))
}}

drupe_sdk::plugin! {{
    name: "{name}",
    routes: [
        GET "/" => index,
    ],
}}

#[cfg(test)]
mod tests {{
    use super::*;
    use drupe_sdk::testing::TestRequest;

    #[test]
    fn index_says_hello() {{
        let resp = TestRequest::get("/").mount("/{name}").call(index);
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.body_text(), "Hello from {name}!");
    }}
}}
"#,
        lib = name.replace('-', "_")
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_plugin_and_crate_names() {
        assert!(valid_name("blog") && valid_name("my_blog-2"));
        for bad in ["", "Blog", "2blog", "my blog", "-x", "a/b"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn paths_are_relative_between_canonical_folders() {
        let rel = |a: &str, b: &str| relative(Path::new(a), Path::new(b));
        assert_eq!(
            rel("/w/drupe/target/x", "/w/drupe/sdk"),
            Path::new("../../sdk")
        );
        assert_eq!(rel("/w", "/w/a/b"), Path::new("a/b"));
        assert_eq!(rel("/tmp/p", "/w/sdk"), Path::new("../../w/sdk"));
    }

    #[test]
    fn inside_a_workspace_the_crate_joins_its_members_keeping_the_layout() {
        let root = tempfile::tempdir().unwrap();
        let manifest = root.path().join("Cargo.toml");
        let before = "# my plugins\n[workspace]\nresolver = \"2\"\nmembers = [\n    \"blog\",  # the first\n]\n";
        std::fs::write(&manifest, before).unwrap();
        let dir = root.path().join("plugins").join("shop");
        let created = new_plugin("shop", Some(&dir)).unwrap();
        assert_eq!(
            created.workspace.as_deref(),
            Some(manifest.canonicalize().unwrap().as_path())
        );
        let after = std::fs::read_to_string(&manifest).unwrap();
        assert_eq!(
            after,
            "# my plugins\n[workspace]\nresolver = \"2\"\nmembers = [\n    \"blog\",  # the first\n    \"plugins/shop\",\n]\n"
        );
        let own = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(!own.contains("\n[workspace]"), "{own}");
        assert!(own.contains("drupe-sdk = { path = \""), "{own}");
        // The first member of an empty list, one per line.
        std::fs::write(&manifest, "[workspace]\nmembers = [\n]\n").unwrap();
        new_plugin("blog", Some(&root.path().join("blog"))).unwrap();
        assert_eq!(
            std::fs::read_to_string(&manifest).unwrap(),
            "[workspace]\nmembers = [\n    \"blog\",\n]\n"
        );
        // A second plugin in a folder a pattern covers is left alone.
        std::fs::write(&manifest, "[workspace]\nmembers = [\"plugins/*\"]\n").unwrap();
        new_plugin("cart", Some(&root.path().join("plugins/cart"))).unwrap();
        assert_eq!(
            std::fs::read_to_string(&manifest).unwrap(),
            "[workspace]\nmembers = [\"plugins/*\"]\n"
        );
    }

    #[test]
    fn an_excluded_folder_builds_standalone() {
        let root = tempfile::tempdir().unwrap();
        let manifest = root.path().join("Cargo.toml");
        let text = "[workspace]\nmembers = []\nexclude = [\"scratch\"]\n";
        std::fs::write(&manifest, text).unwrap();
        let created = new_plugin("x", Some(&root.path().join("scratch/x"))).unwrap();
        assert!(created.workspace.is_none());
        assert_eq!(std::fs::read_to_string(&manifest).unwrap(), text);
        let own = std::fs::read_to_string(created.dir.join("Cargo.toml")).unwrap();
        assert!(own.contains("\n[workspace]\n"), "{own}");
    }

    #[test]
    fn refuses_a_non_empty_directory() {
        let dir = std::env::temp_dir().join(format!("drupe-scaffold-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("keep"), "x").unwrap();
        assert!(matches!(
            new_plugin("x", Some(&dir)),
            Err(ScaffoldError::Exists(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
