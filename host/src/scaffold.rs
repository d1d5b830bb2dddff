//! `drupe new NAME [DIR]`: a plugin crate that builds and is served, as it
//! is, at `/NAME`.
//!
//! The crate depends on the `drupe-sdk` this binary was built with: by path
//! when the SDK's source is still where it was compiled (a checkout of
//! drupe), otherwise by version from the registry.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a plugin crate could not be created.
#[derive(Debug)]
pub enum ScaffoldError {
    BadName(String),
    Exists(PathBuf),
    Io(PathBuf, std::io::Error),
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

/// Creates the crate for plugin `name` in `dir` (default `./NAME`) and
/// returns the directory.
pub fn new_plugin(name: &str, dir: Option<&Path>) -> Result<PathBuf, ScaffoldError> {
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
    let write = |relative: &str, text: String| {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ScaffoldError::Io(parent.to_owned(), e))?;
        }
        std::fs::write(&path, text).map_err(|e| ScaffoldError::Io(path, e))
    };
    write("Cargo.toml", cargo_toml(name))?;
    write("src/lib.rs", lib_rs(name))?;
    write(".gitignore", "/target\n".to_owned())?;
    Ok(dir)
}

fn sdk_dependency() -> String {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    match sdk.canonicalize() {
        Ok(path) if path.join("Cargo.toml").is_file() => {
            format!("drupe-sdk = {{ path = {:?} }}", path.display().to_string())
        }
        _ => format!("drupe-sdk = \"{}\"", drupe_sdk::export::SDK_VERSION),
    }
}

fn cargo_toml(name: &str) -> String {
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

# A crate of its own, even when created inside another workspace.
[workspace]
"#,
        sdk = sdk_dependency()
    )
}

fn lib_rs(name: &str) -> String {
    format!(
        r#"//! The `{name}` drupe plugin.
//!
//! Build it with `cargo build --release`, copy `target/release/lib{lib}.so`
//! into drupe's plugin directory, and drupe serves it at `/{name}`.

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
