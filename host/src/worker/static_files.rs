//! File responses: a plugin's `Response::file`, and the `[static]`
//! folders the host serves itself, before any plugin route.
//!
//! [`send_file`] turns an open file into a response: validators (`ETag`
//! from inode, length and modification time in nanoseconds;
//! `Last-Modified`), the conditional and range decision (`http::range`),
//! the head into the connection's output buffer, and the bytes as a
//! [`BodyOut::File`] that the connection sends with `sendfile(2)` as the
//! client takes them. HEAD stops after the `fstat`: nothing is read.
//!
//! `[static]` folders: a URL below a prefix is percent-decoded and split
//! into segments; a segment starting with `.` (`..`, `.env`, `.git`) or
//! holding a NUL is a 404, so dotfiles are never served and no `%2e%2e`
//! reaches the file system. The rest is opened with `openat2` and
//! `RESOLVE_BENEATH` from the folder's descriptor: the kernel itself
//! refuses a path that resolves outside the folder (a symlink to `/etc`),
//! in the same call that opens it, so no symlink swapped in between a
//! check and the open can escape; symlinks within the folder work. On a
//! kernel without `openat2` the path is canonicalised and must stay below
//! the canonical folder (racy against someone who can write into the
//! folder, who could serve their own files anyway). A folder URL with a
//! trailing `/` serves its `index.html`; without the slash it is a 301 to
//! the slash form, so relative links in the page resolve. There are no
//! directory listings.

use super::answer::{self, Sent};
use super::body_out::BodyOut;
use super::dispatch::Exchange;
use crate::config::StaticDir;
use crate::http::range::{self, Plan, Validators};
use crate::http::{self, Framing, WriteOpts};
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The `[static]` folders of a worker, open.
#[derive(Debug, Default)]
pub struct Statics {
    /// Longest prefix first, so `/assets/img` wins over `/assets`.
    dirs: Vec<Folder>,
}

#[derive(Debug)]
struct Folder {
    prefix: String,
    /// Canonical, for the check without `openat2`.
    path: PathBuf,
    /// The folder itself, opened once: the anchor of `openat2`.
    dir: File,
}

impl Statics {
    /// Opens every folder; an error names the one that failed.
    pub fn open(dirs: &[StaticDir]) -> io::Result<Statics> {
        let mut open = dirs
            .iter()
            .map(|d| {
                let dir = File::open(&d.folder).map_err(|e| {
                    io::Error::new(e.kind(), format!("[static] {}: {e}", d.folder.display()))
                })?;
                Ok(Folder {
                    prefix: d.prefix.clone(),
                    path: d.folder.clone(),
                    dir,
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        open.sort_by_key(|f| std::cmp::Reverse(f.prefix.len()));
        Ok(Statics { dirs: open })
    }

    /// Whether `path` is below one of the prefixes (cheap: a worker
    /// without `[static]` compares nothing).
    #[inline]
    pub fn claims(&self, path: &str) -> bool {
        !self.dirs.is_empty() && self.find(path).is_some()
    }

    /// The folder and the rest of the path (`""` or starting with `/`).
    fn find<'p>(&self, path: &'p str) -> Option<(&Folder, &'p str)> {
        self.dirs.iter().find_map(|f| {
            let rest = if f.prefix == "/" {
                path
            } else {
                path.strip_prefix(f.prefix.as_str())?
            };
            (rest.is_empty() || rest.starts_with('/')).then_some((f, rest))
        })
    }

    /// Answers a request below a prefix ([`Statics::claims`] said so).
    pub fn serve(
        &self,
        method: &str,
        path: &str,
        ex: &Exchange<'_>,
        opts: WriteOpts,
        out: &mut Vec<u8>,
        tail: &mut Option<BodyOut>,
    ) -> Sent {
        let Some((folder, rest)) = self.find(path) else {
            return not_found(out, opts);
        };
        if !matches!(method, "GET" | "HEAD") {
            return answer::method_not_allowed("GET, HEAD", out, opts);
        }
        let Some(relative) = relative_path(rest) else {
            return not_found(out, opts);
        };
        let file = match open_in(folder, &relative) {
            Ok(file) => file,
            Err(e) => return open_failed(&e, out, opts),
        };
        let is_dir = file.metadata().is_ok_and(|m| m.is_dir());
        if is_dir {
            // `/assets/docs` is a folder: `/assets/docs/` serves its index.
            let query = ex.head.query(ex.buf);
            return moved_to_slash(path, query, out, opts);
        }
        send_file(file, &relative, 200, b"", ex, opts, out, tail)
    }
}

/// The file path below the folder for the rest of a URL, or `None` if a
/// segment is hidden (starts with `.`) or holds a NUL; a trailing slash
/// means the folder's `index.html`.
fn relative_path(rest: &str) -> Option<PathBuf> {
    let decoded = drupe_sdk::routing::percent_decode(rest);
    let mut relative = PathBuf::new();
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        if segment.starts_with('.') || segment.contains('\0') {
            return None;
        }
        relative.push(segment);
    }
    if decoded.is_empty() || decoded.ends_with('/') {
        relative.push("index.html");
    }
    Some(relative)
}

/// Opens `relative` strictly inside the folder.
fn open_in(folder: &Folder, relative: &Path) -> io::Result<File> {
    if let Some(file) = crate::sys::bodies::open_beneath(&folder.dir, relative)? {
        return Ok(file);
    }
    let real = folder.path.join(relative).canonicalize()?;
    if !real.starts_with(&folder.path) {
        return Err(io::ErrorKind::NotFound.into());
    }
    File::open(real)
}

/// 404 for what does not exist or may not be shown (leaving the folder is
/// `EXDEV`, a symlink loop `ELOOP`: to the client they are all "no such
/// file"); 403 for a file the worker may not read.
fn open_failed(e: &io::Error, out: &mut Vec<u8>, opts: WriteOpts) -> Sent {
    match e.kind() {
        io::ErrorKind::PermissionDenied => answer::simple(out, 403, b"", b"Forbidden\n", opts),
        _ => not_found(out, opts),
    }
}

fn not_found(out: &mut Vec<u8>, opts: WriteOpts) -> Sent {
    answer::simple(out, 404, b"", b"Not Found\n", opts)
}

/// 301 to `path/` (with the query): a folder is served by its index.
fn moved_to_slash(path: &str, query: &[u8], out: &mut Vec<u8>, opts: WriteOpts) -> Sent {
    let mut location = b"Location: ".to_vec();
    location.extend_from_slice(path.as_bytes());
    location.push(b'/');
    if !query.is_empty() {
        location.push(b'?');
        location.extend_from_slice(query);
    }
    location.extend_from_slice(b"\r\n");
    answer::simple(out, 301, &location, b"Moved Permanently\n", opts)
}

/// A plugin's `Response::file(path)`: opened here, once the handler has
/// returned; `headers` are the plugin's, `status` its status.
pub fn respond_file(
    path: &Path,
    status: u16,
    headers: &[u8],
    ex: &Exchange<'_>,
    opts: WriteOpts,
    out: &mut Vec<u8>,
    tail: &mut Option<BodyOut>,
) -> Sent {
    match File::open(path) {
        Ok(file) if file.metadata().is_ok_and(|m| m.is_file()) => {
            send_file(file, path, status, headers, ex, opts, out, tail)
        }
        Ok(_) => not_found(out, opts),
        Err(e) => {
            log::debug!("{}: Response::file {}: {e}", ex.client.addr, path.display());
            open_failed(&e, out, opts)
        }
    }
}

/// The response for an open file named `name` (for its type). With status
/// 200 the request's conditionals and range apply; any other status (a
/// 404 page from a file) sends the whole file with it.
#[allow(clippy::too_many_arguments)] // one call site each; a struct would only rename them
fn send_file(
    file: File,
    name: &Path,
    status: u16,
    plugin_headers: &[u8],
    ex: &Exchange<'_>,
    opts: WriteOpts,
    out: &mut Vec<u8>,
    tail: &mut Option<BodyOut>,
) -> Sent {
    let meta = match file.metadata() {
        Ok(meta) if meta.is_file() => meta,
        Ok(_) => return not_found(out, opts),
        Err(e) => return open_failed(&e, out, opts),
    };
    let len = meta.len();
    let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
    let validators = Validators::new(meta.ino(), len, modified);
    let plan = if status == 200 {
        let get = ex.head.method(ex.buf) == b"GET";
        let find = |name: &[u8]| ex.head.header(ex.buf, name);
        range::plan(find, get, ex.head.is_head, len, &validators)
    } else {
        Plan::Whole
    };
    let mut headers = Vec::with_capacity(plugin_headers.len() + 200);
    headers.extend_from_slice(plugin_headers);
    if !has_header(plugin_headers, b"content-type") {
        headers.extend_from_slice(b"Content-Type: ");
        headers.extend_from_slice(content_type(name).as_bytes());
        headers.extend_from_slice(b"\r\n");
    }
    for (field, value) in [
        (
            &b"Last-Modified: "[..],
            validators.last_modified().as_bytes(),
        ),
        (b"ETag: ", validators.etag.as_bytes()),
        (b"Accept-Ranges: ", b"bytes"),
    ] {
        headers.extend_from_slice(field);
        headers.extend_from_slice(value);
        headers.extend_from_slice(b"\r\n");
    }
    let (status, start, end) = match plan {
        Plan::NotModified => {
            http::write_head_framed(out, 304, &headers, Framing::Length(0), opts);
            return Sent::new(304, 0);
        }
        Plan::Unsatisfiable => {
            // RFC 9110 §15.5.17: say how long the file is.
            let line = format!("Content-Range: bytes */{len}\r\n");
            let body = b"Range Not Satisfiable\n";
            return answer::simple(out, 416, line.as_bytes(), body, opts);
        }
        Plan::Whole => (status, 0, len),
        Plan::Partial { start, end } => {
            let line = format!("Content-Range: bytes {start}-{}/{len}\r\n", end - 1);
            headers.extend_from_slice(line.as_bytes());
            (206, start, end)
        }
    };
    http::write_head_framed(out, status, &headers, Framing::Length(end - start), opts);
    if http::body_allowed(status, opts.head_request) && end > start {
        *tail = Some(BodyOut::File {
            file,
            offset: start,
            end,
        });
    }
    Sent::new(status, usize::try_from(end - start).unwrap_or(usize::MAX))
}

/// Whether serialised `Name: value\r\n` lines hold a field `name`.
fn has_header(lines: &[u8], name: &[u8]) -> bool {
    lines.split(|&b| b == b'\n').any(|line| {
        line.len() > name.len()
            && line[name.len()] == b':'
            && line[..name.len()].eq_ignore_ascii_case(name)
    })
}

/// The type for a file name's extension; text is assumed UTF-8.
fn content_type(name: &Path) -> std::borrow::Cow<'static, str> {
    match mime_guess::from_path(name).first_raw() {
        Some(mime) if mime.starts_with("text/") => format!("{mime}; charset=utf-8").into(),
        Some(mime) => mime.into(),
        None => "application/octet-stream".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_segments_and_nul_are_refused_and_folders_get_their_index() {
        let rel = |rest: &str| relative_path(rest).map(|p| p.to_string_lossy().into_owned());
        assert_eq!(rel("/a/b.css").as_deref(), Some("a/b.css"));
        assert_eq!(rel("/a/").as_deref(), Some("a/index.html"));
        assert_eq!(rel("").as_deref(), Some("index.html"));
        assert_eq!(rel("/a%20b.txt").as_deref(), Some("a b.txt"));
        for refused in [
            "/.env",
            "/a/.git/config",
            "/%2e%2e/secret",
            "/%2E%2e",
            "/a/..",
            "/a%00b",
        ] {
            assert_eq!(rel(refused), None, "{refused}");
        }
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type(Path::new("a.css")), "text/css; charset=utf-8");
        assert_eq!(content_type(Path::new("a.png")), "image/png");
        assert_eq!(content_type(Path::new("a")), "application/octet-stream");
    }

    #[test]
    fn a_plugin_content_type_is_found_in_its_headers() {
        assert!(has_header(
            b"X-A: 1\r\ncontent-type: text/csv\r\n",
            b"content-type"
        ));
        assert!(!has_header(b"X-Content-Type: 1\r\n", b"content-type"));
    }
}
