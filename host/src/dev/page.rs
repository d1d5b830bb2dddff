//! The page every request gets while the last build or probe failed: the
//! compiler's (or the probe's) own words, HTML-escaped, in a page that
//! looks again every two seconds, so a browser left open shows the fixed
//! code by itself.

use drupe_sdk::html_escape;
use std::path::Path;

/// What went wrong, for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// "The build of greeter failed".
    pub title: String,
    /// The compiler's output or the probe's error lines, as printed.
    pub text: String,
}

/// The page for `failures` (at least one).
pub fn render(failures: &[Failure]) -> String {
    let mut body = String::new();
    for failure in failures {
        body.push_str(&format!(
            "<h1>{}</h1>\n<pre>{}</pre>\n",
            html_escape(&failure.title),
            html_escape(failure.text.trim_end())
        ));
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="2">
<title>{title} — drupe dev</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
h1 {{ font-size: 1.3em; color: #b00020; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; line-height: 1.35; }}
</style>
</head>
<body>
{body}<p>drupe dev serves this page (status 500) for every path until the next build loads; fix the code and save.</p>
</body>
</html>
"#,
        title = html_escape(failures.first().map_or("", |f| f.title.as_str())),
    )
}

/// Writes the page for `failures` at `path`, or removes it when there are
/// none. The page is written under another name and renamed into place,
/// so a worker never reads half of it.
pub fn publish(path: &Path, failures: &[Failure]) -> std::io::Result<()> {
    if failures.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let tmp = path.with_extension("html.tmp");
    std::fs::write(&tmp, render(failures))?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_compiler_output_is_escaped() {
        let page = render(&[Failure {
            title: "The build of <x> failed".into(),
            text: "error: expected `;`, found `<script>`\n  --> src/lib.rs:3:5 && more\n".into(),
        }]);
        assert!(
            page.contains("<h1>The build of &lt;x&gt; failed</h1>"),
            "{page}"
        );
        assert!(page.contains("found `&lt;script&gt;`"), "{page}");
        assert!(page.contains("3:5 &amp;&amp; more</pre>"), "{page}");
        assert!(!page.contains("<script>"));
    }

    #[test]
    fn publishing_nothing_removes_the_page() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("error.html");
        let failure = Failure {
            title: "t".into(),
            text: "x".into(),
        };
        publish(&path, &[failure]).unwrap();
        assert!(path.is_file());
        publish(&path, &[]).unwrap();
        assert!(!path.exists());
        publish(&path, &[]).unwrap();
    }
}
