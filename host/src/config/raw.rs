//! Step one: the INI text as sections and keys with their line numbers.
//!
//! `rust-ini` decides the syntax and the values (quotes, `\` line
//! continuations, inline `; comments` through its `inline-comment` feature).
//! It does not report where a key was, so a light line scan of the same text
//! finds the line of every section header and key; the two readings are then
//! zipped together. The scan is also stricter than rust-ini in a few places
//! where rust-ini would silently misread a line (a stray word, an indented
//! comment, or `[name` without `]` all become part of the next key there), so
//! those get an error on the right line instead.
//!
//! Nothing here knows which sections or keys exist; that is `settings`' job.

use std::collections::HashMap;
use std::path::Path;

use super::ConfigError;

/// The INI file as written: sections in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawConfig {
    pub sections: Vec<RawSection>,
}

/// One `[name]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSection {
    /// The name between the brackets, trimmed.
    pub name: String,
    /// 1-based line of the `[name]` header.
    pub line: usize,
    /// Keys in file order.
    pub entries: Vec<RawEntry>,
}

/// One `key = value` (or `key: value`) line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// Trimmed key, case preserved.
    pub key: String,
    /// Trimmed value, inline comment and surrounding quotes removed.
    pub value: String,
    /// 1-based line of the key.
    pub line: usize,
}

/// Reads `text`; `file` only names the file in error messages.
pub fn parse(text: &str, file: &Path) -> Result<RawConfig, ConfigError> {
    // The scan goes first: its errors point at the offending line, where
    // rust-ini's would point at the end of the file or the next key.
    let scanned = scan(text, file)?;
    let options = ini::ParseOption {
        enabled_quote: true,
        // Keep backslashes literal: values are paths, URLs and plugin
        // settings (regexes...), not C strings.
        enabled_escape: false,
        ..Default::default()
    };
    let parsed = ini::Ini::load_from_str_opt(text, options).map_err(|e| {
        ConfigError::at(
            file,
            e.line,
            format!("{} (column {}); fix the INI syntax", e.msg, e.col),
        )
    })?;
    let raw = zip(&scanned, &parsed, file)?;
    check_duplicates(&raw, file)?;
    Ok(raw)
}

/// What the line scan saw of one section: its name, line and keys.
struct Scanned {
    name: String,
    line: usize,
    keys: Vec<ScannedKey>,
}

/// One key: its name, its line, and whether its value is empty but for a
/// comment (`trustedProxies =   ; nobody`), which rust-ini, trimming the
/// value before it looks for ` ;`, would read as the value `; nobody`.
struct ScannedKey {
    name: String,
    line: usize,
    empty: bool,
}

/// Finds the line of every section header and key.
fn scan(text: &str, file: &Path) -> Result<Vec<Scanned>, ConfigError> {
    let mut sections: Vec<Scanned> = Vec::new();
    // Set while a value goes on to the next line: after a trailing `\`, or
    // inside a quote that has not been closed yet (opened on `.1`).
    let mut continued: Option<Continuation> = None;
    for (index, full) in text.lines().enumerate() {
        let number = index + 1;
        if let Some(state) = continued.take() {
            continued = value_continues(full, state);
            continue;
        }
        let line = full.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with(';') || line.starts_with('#') {
            if full.starts_with([' ', '\t']) {
                // rust-ini reads an indented comment as the start of a key.
                return Err(ConfigError::at(
                    file,
                    number,
                    "indented comment; start comment lines in the first column",
                ));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some((name, after)) = rest.split_once(']') else {
                return Err(ConfigError::at(
                    file,
                    number,
                    format!("section header '{line}' has no closing ']'"),
                ));
            };
            let after = after.trim_start();
            if !(after.is_empty() || after.starts_with([';', '#'])) {
                return Err(ConfigError::at(
                    file,
                    number,
                    format!("unexpected '{after}' after [{name}]; put settings on their own lines"),
                ));
            }
            sections.push(Scanned {
                name: name.trim().to_string(),
                line: number,
                keys: Vec::new(),
            });
            continue;
        }
        let Some(split) = line.find(['=', ':']) else {
            return Err(ConfigError::at(
                file,
                number,
                format!(
                    "'{line}' is not a setting; write 'key = value', or start a comment with ';'"
                ),
            ));
        };
        let key = line[..split].trim();
        let Some(section) = sections.last_mut() else {
            return Err(ConfigError::at(
                file,
                number,
                format!("'{key}' is outside any section; put it under a [section] header"),
            ));
        };
        let value = line[split + 1..].trim_start();
        section.keys.push(ScannedKey {
            name: key.to_string(),
            line: number,
            empty: value.is_empty() || value.starts_with([';', '#']),
        });
        continued = value_continues(&line[split + 1..], Continuation::Plain { opened: number });
    }
    if let Some(Continuation::Quoted { opened, .. }) = continued {
        return Err(ConfigError::at(
            file,
            opened,
            "a quote in this value is never closed; close it",
        ));
    }
    Ok(sections)
}

/// How a value that spans lines goes on.
#[derive(Debug, Clone, Copy)]
enum Continuation {
    /// Outside quotes (a trailing `\` carried us here).
    Plain { opened: usize },
    /// Inside a quote of this character, opened on line `opened`.
    Quoted { quote: char, opened: usize },
}

/// Follows rust-ini's value rules far enough to know whether the value goes
/// on past this line: a quote opens only where a value (part) starts, `\`
/// takes the next character along (a line break too), and ` ;` or ` #`
/// outside quotes starts a comment.
fn value_continues(text: &str, state: Continuation) -> Option<Continuation> {
    let opened = match state {
        Continuation::Plain { opened } | Continuation::Quoted { opened, .. } => opened,
    };
    let mut quote = match state {
        Continuation::Quoted { quote, .. } => Some(quote),
        Continuation::Plain { .. } => None,
    };
    // A quote may open at the start of the value or right after a closed one.
    let mut at_part_start =
        matches!(state, Continuation::Plain { .. }) && text.trim().starts_with(['"', '\'']);
    let mut chars = text.trim_start().chars().peekable();
    let mut prev_blank = true;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                if chars.next().is_none() {
                    // `\` at the end of the line joins the next line.
                    return Some(match quote {
                        Some(q) => Continuation::Quoted { quote: q, opened },
                        None => Continuation::Plain { opened },
                    });
                }
            }
            (Some(q), c) if c == q => {
                quote = None;
                at_part_start = chars.peek().is_some_and(|n| *n == '"' || *n == '\'');
            }
            (Some(_), _) => {}
            (None, '"' | '\'') if at_part_start => quote = Some(c),
            (None, ';' | '#') if prev_blank => return None,
            (None, _) => at_part_start = false,
        }
        prev_blank = c == ' ' || c == '\t';
    }
    quote.map(|q| Continuation::Quoted { quote: q, opened })
}

/// Pairs rust-ini's sections and values with the scanned lines.
fn zip(scanned: &[Scanned], parsed: &ini::Ini, file: &Path) -> Result<RawConfig, ConfigError> {
    let mut sections = Vec::new();
    let mut rest = scanned.iter();
    for (name, props) in parsed.iter() {
        let Some(name) = name else {
            // The general section; the scan already refused keys in it.
            if let Some((key, _)) = props.iter().next() {
                return Err(mismatch(file, 1, key));
            }
            continue;
        };
        let Some(seen) = rest.next() else {
            return Err(mismatch(file, scanned.last().map_or(1, |s| s.line), name));
        };
        if seen.name != name {
            return Err(mismatch(file, seen.line, name));
        }
        let mut entries = Vec::new();
        let mut keys = seen.keys.iter();
        for (key, value) in props.iter() {
            match keys.next() {
                Some(k) if k.name == key => {
                    entries.push(RawEntry {
                        key: key.to_string(),
                        value: if k.empty { "" } else { value }.to_string(),
                        line: k.line,
                    });
                }
                other => return Err(mismatch(file, other.map_or(seen.line, |k| k.line), key)),
            }
        }
        if let Some(k) = keys.next() {
            return Err(mismatch(file, k.line, name));
        }
        sections.push(RawSection {
            name: name.to_string(),
            line: seen.line,
            entries,
        });
    }
    if let Some(extra) = rest.next() {
        return Err(mismatch(file, extra.line, &extra.name));
    }
    Ok(RawConfig { sections })
}

/// The scan and rust-ini disagree: a construct neither side expected.
fn mismatch(file: &Path, line: usize, what: &str) -> ConfigError {
    ConfigError::at(
        file,
        line,
        format!(
            "cannot tell where '{what}' is; write plain 'key = value' lines and [section] headers"
        ),
    )
}

/// A repeated section or key is almost always a leftover; which one wins
/// would be a guess, so name both lines and let the user pick.
fn check_duplicates(raw: &RawConfig, file: &Path) -> Result<(), ConfigError> {
    let mut headers: HashMap<&str, usize> = HashMap::new();
    for section in &raw.sections {
        if let Some(first) = headers.insert(&section.name, section.line) {
            return Err(ConfigError::at(
                file,
                section.line,
                format!(
                    "section [{}] appears twice (lines {first} and {}); merge them into one",
                    section.name, section.line
                ),
            ));
        }
        let mut keys: HashMap<&str, usize> = HashMap::new();
        for entry in &section.entries {
            if let Some(first) = keys.insert(&entry.key, entry.line) {
                return Err(ConfigError::at(
                    file,
                    entry.line,
                    format!(
                        "'{}' is set twice in [{}] (lines {first} and {}); keep one",
                        entry.key, section.name, entry.line
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawConfig {
        parse(text, Path::new("t.ini")).unwrap()
    }

    fn err(text: &str) -> String {
        parse(text, Path::new("t.ini")).unwrap_err().to_string()
    }

    fn entries(section: &RawSection) -> Vec<(&str, &str, usize)> {
        section
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect()
    }

    #[test]
    fn sections_keys_and_lines() {
        let r = raw("; top comment\n\n[server]\nsocketPort = 8080\n  socketHost: ::1 \n\n[log]\n# c\nlevel=debug\n");
        assert_eq!(r.sections.len(), 2);
        assert_eq!(
            (r.sections[0].name.as_str(), r.sections[0].line),
            ("server", 3)
        );
        assert_eq!(
            entries(&r.sections[0]),
            [("socketPort", "8080", 4), ("socketHost", "::1", 5)]
        );
        assert_eq!(entries(&r.sections[1]), [("level", "debug", 9)]);
    }

    #[test]
    fn inline_comments_are_stripped() {
        let r = raw("[server]   ; the server\nsocketQueueSize = 1024        ; listen backlog\nhost = a;b\nx = \"q ; r\"  # c\nnone =    ; empty\nalso =# empty\n");
        assert_eq!(
            entries(&r.sections[0]),
            [
                ("socketQueueSize", "1024", 2),
                ("host", "a;b", 3),
                ("x", "q ; r", 4),
                ("none", "", 5),
                ("also", "", 6)
            ]
        );
    }

    #[test]
    fn backslashes_stay_and_continue_lines() {
        let r = raw("[p]\nre = a\\d+\nlong = one \\\n  two\nnext = 3\n");
        assert_eq!(
            entries(&r.sections[0]),
            [
                ("re", "a\\d+", 2),
                ("long", "one   two", 3),
                ("next", "3", 5)
            ]
        );
    }

    #[test]
    fn quoted_value_over_two_lines_keeps_lines_right() {
        let r = raw("[p]\nmsg = \"one\ntwo\"\nnext = 3\n");
        assert_eq!(
            entries(&r.sections[0]),
            [("msg", "one\ntwo", 2), ("next", "3", 4)]
        );
        assert_eq!(
            err("[p]\nmsg = \"open\nnext = 3\n"),
            "t.ini line 2: a quote in this value is never closed; close it"
        );
    }

    #[test]
    fn empty_section_and_empty_value() {
        let r = raw("[plugin.hello]\n[store]\nkeyPrefix =\n");
        assert!(r.sections[0].entries.is_empty());
        assert_eq!(entries(&r.sections[1]), [("keyPrefix", "", 3)]);
    }

    #[test]
    fn duplicate_key_names_both_lines() {
        assert_eq!(
            err("[server]\nsocketPort = 1\n\nsocketPort = 2\n"),
            "t.ini line 4: 'socketPort' is set twice in [server] (lines 2 and 4); keep one"
        );
    }

    #[test]
    fn duplicate_section_names_both_lines() {
        assert_eq!(
            err("[log]\n[server]\n[log]\n"),
            "t.ini line 3: section [log] appears twice (lines 1 and 3); merge them into one"
        );
    }

    #[test]
    fn key_outside_section() {
        assert_eq!(
            err("; c\nsocketPort = 1\n[server]\n"),
            "t.ini line 2: 'socketPort' is outside any section; put it under a [section] header"
        );
    }

    #[test]
    fn broken_lines_point_at_themselves() {
        assert_eq!(
            err("[server]\nsocketPort 8080\nx = 1\n"),
            "t.ini line 2: 'socketPort 8080' is not a setting; write 'key = value', or start a comment with ';'"
        );
        assert_eq!(
            err("[server\nx = 1\n"),
            "t.ini line 1: section header '[server' has no closing ']'"
        );
        assert!(err("[server]\n   ; note\nx = 1\n").starts_with("t.ini line 2: indented comment"));
        assert!(err("[a] x = 1\n").starts_with("t.ini line 1: unexpected 'x = 1' after [a]"));
    }

    #[test]
    fn rust_ini_errors_keep_their_line() {
        let e = parse("[server]\n\n= 1\n", Path::new("t.ini")).unwrap_err();
        assert_eq!(e.line(), Some(3));
        assert!(e.to_string().contains("missing key"), "{e}");
    }

    #[test]
    fn crlf_line_endings() {
        let r = raw("[server]\r\nsocketPort = 1\r\n");
        assert_eq!(entries(&r.sections[0]), [("socketPort", "1", 2)]);
    }
}
