//! What one value may be: the parsers behind the settings table.
//!
//! Each takes the text as written in the INI file (or a default from the
//! table) and returns the typed value, or the end of a sentence saying what
//! is wrong with it ("is not a port number (0-65535)"); the caller puts the
//! key, the value and the line in front.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::LogTarget;

pub(super) fn int<T: TryFrom<u64>>(v: &str, min: u64, max: u64) -> Result<T, String> {
    v.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| format!("is not a whole number from {min} to {max}"))
}

pub(super) fn port(v: &str) -> Result<u16, String> {
    v.parse()
        .map_err(|_| "is not a port number (0-65535)".to_string())
}

pub(super) fn size(v: &str) -> Result<usize, String> {
    int(v, 1, usize::MAX as u64)
        .map_err(|_| "is not a size in bytes (a whole number above 0)".to_string())
}

pub(super) fn seconds(v: &str, min: u64) -> Result<Duration, String> {
    int(v, min, 86_400)
        .map(Duration::from_secs)
        .map_err(|_| format!("is not a number of seconds from {min} to 86400"))
}

/// Store timeouts are short, so they may have a fraction: `0.25`, from one
/// millisecond to a minute.
pub(super) fn fractional_seconds(v: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .filter(|s| (0.001..=60.0).contains(s))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| "is not a number of seconds from 0.001 to 60 (0.5 is allowed)".to_string())
}

pub(super) fn processes(v: &str) -> Result<usize, String> {
    if v.eq_ignore_ascii_case("auto") {
        // If the CPU count is unknown, one worker is the safe guess.
        return Ok(std::thread::available_parallelism().map_or(1, |n| n.get().min(256)));
    }
    int(v, 1, 256).map_err(|_| "is not a number of processes from 1 to 256, or auto".to_string())
}

pub(super) fn boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err("is not a boolean; use true or false".to_string()),
    }
}

pub(super) fn host(v: &str) -> Result<String, String> {
    if v.is_empty() || v.contains(char::is_whitespace) {
        return Err("is not a host name or address; use e.g. 127.0.0.1 or 0.0.0.0".to_string());
    }
    Ok(v.to_string())
}

/// A user or group name; `none` (or nothing) means no change of user.
pub(super) fn account(v: &str) -> Result<Option<String>, String> {
    if v.is_empty() || v == "none" {
        return Ok(None);
    }
    if v.contains(|c: char| c.is_whitespace() || c == ':' || c == '/') {
        return Err("is not a user or group name; use e.g. nobody, or none".to_string());
    }
    Ok(Some(v.to_string()))
}

pub(super) fn level(v: &str) -> Result<log::LevelFilter, String> {
    v.parse()
        .map_err(|_| "is not a log level; use off, error, warn, info, debug or trace".to_string())
}

/// Resolves `v` against the INI's folder `base`, dropping `.` components.
pub(super) fn path(v: &str, base: &Path) -> Result<PathBuf, String> {
    if v.is_empty() {
        return Err("is empty; give a path".to_string());
    }
    Ok(base
        .join(v)
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect())
}

/// A path, or `none` for no file.
pub(super) fn optional_path(v: &str, base: &Path) -> Result<Option<PathBuf>, String> {
    match v {
        "none" => Ok(None),
        _ => path(v, base).map(Some),
    }
}

pub(super) fn log_target(v: &str, base: &Path) -> Result<LogTarget, String> {
    match v {
        "off" => Ok(LogTarget::Off),
        "stderr" => Ok(LogTarget::Stderr),
        _ => path(v, base)
            .map(LogTarget::File)
            .map_err(|_| "is empty; give a path, stderr or off".to_string()),
    }
}

/// A mount is a literal path prefix: routes are matched below it, so it may
/// not hold route parameters (`{}`), empty segments, or a trailing `/`, and
/// it must be a path requests can reach as written (`http::unroutable`:
/// `/a/../hello` never matches, since request paths are resolved first).
pub(super) fn mount(v: &str) -> Result<String, String> {
    let problem = if !v.starts_with('/') {
        Some("must start with '/'")
    } else if v.len() > 1 && v.ends_with('/') {
        Some("must not end with '/' (except the root mount '/')")
    } else if v.contains("//") {
        Some("must not contain '//'")
    } else if v.contains(['{', '}']) {
        Some("must not contain '{' or '}'; parameters belong in the plugin's routes")
    } else if v.contains(char::is_whitespace) {
        Some("must not contain spaces")
    } else if v == "/_drupe" || v.starts_with("/_drupe/") {
        Some("must not be under /_drupe/, which the host keeps for its own pages (/_drupe/health)")
    } else {
        crate::http::unroutable(v)
    };
    match problem {
        Some(p) => Err(format!("is not a mount path: it {p}")),
        None => Ok(v.to_string()),
    }
}
