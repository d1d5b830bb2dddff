//! The one error type of the config layer, and the "did you mean" helper.
//!
//! Every message names the file and, when there is one, the line, and ends
//! with what the user can do about it: the nearest valid key, the accepted
//! range, or the list of valid choices.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why a configuration could not be read or is not valid.
#[derive(Debug)]
pub struct ConfigError {
    file: PathBuf,
    line: Option<usize>,
    message: String,
    io: Option<io::Error>,
}

impl ConfigError {
    /// An error at `line` of `file` (1-based).
    pub(crate) fn at(file: &Path, line: usize, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: Some(line),
            message: message.into(),
            io: None,
        }
    }

    /// An error about the whole file (e.g. a bad default), without a line.
    pub(crate) fn file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: None,
            message: message.into(),
            io: None,
        }
    }

    /// The file could not be opened or read.
    pub(crate) fn io(file: &Path, err: io::Error) -> Self {
        Self {
            file: file.to_path_buf(),
            line: None,
            message: format!("cannot read the config file: {err}"),
            io: Some(err),
        }
    }

    /// The INI file the error is about, as it was named to drupe.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The 1-based line, if the error is about one line.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The message without the "file line N: " prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} line {line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.io.as_ref().map(|e| e as _)
    }
}

/// The candidate nearest to `typed`, if one is close enough to be a typo.
///
/// A case-insensitive match wins outright (`socketport` → `socketPort`).
/// Otherwise the optimal-string-alignment distance (so a swapped pair of
/// letters counts as one edit) must be small relative to the word, or the
/// Jaro-Winkler similarity high (a shared long prefix, `maxBodySize` →
/// `maxBodyBytes`). Far-off words get no suggestion rather than a silly one.
pub(crate) fn suggest<'a>(typed: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = typed.to_lowercase();
    if let Some(exact) = candidates.iter().find(|c| c.to_lowercase() == lower) {
        return Some(exact);
    }
    let max_edits = (lower.chars().count() / 3).clamp(1, 3);
    let by_edits = candidates
        .iter()
        .map(|c| (strsim::osa_distance(&lower, &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= max_edits)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c);
    by_edits.or_else(|| {
        candidates
            .iter()
            .map(|c| (strsim::jaro_winkler(&lower, &c.to_lowercase()), *c))
            .filter(|(s, _)| *s >= 0.88)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, c)| c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggest_prefers_case_insensitive_match() {
        assert_eq!(
            suggest("socketport", &["socketHost", "socketPort"]),
            Some("socketPort")
        );
    }

    #[test]
    fn suggest_finds_typos_and_swaps() {
        let keys = ["directory", "watch"];
        assert_eq!(suggest("direcotry", &keys), Some("directory"));
        assert_eq!(suggest("wacth", &keys), Some("watch"));
        assert_eq!(suggest("sever", &["server", "store"]), Some("server"));
    }

    #[test]
    fn suggest_stays_quiet_when_nothing_is_close() {
        assert_eq!(suggest("colour", &["server", "store", "log"]), None);
        assert_eq!(suggest("x", &["url", "keyPrefix"]), None);
    }

    #[test]
    fn display_names_file_and_line() {
        let e = ConfigError::at(Path::new("drupe.ini"), 7, "unknown key");
        assert_eq!(e.to_string(), "drupe.ini line 7: unknown key");
        assert_eq!(e.line(), Some(7));
    }
}
