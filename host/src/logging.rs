//! The error log: `log` records through `simplelog`, one `write(2)` per
//! line, so lines from the master and several workers never interleave.
//!
//! Log files are reopenable. Every file log goes through a [`LogSink`], a
//! handle whose file can be swapped while other threads write to it: USR1
//! calls [`reopen_all`] (after logrotate renamed the file, new lines go to
//! a fresh file at the configured path), and a reload that changes
//! `errorLog` points the error log elsewhere. The master reopens its own
//! sinks and forwards USR1 to the workers, which reopen theirs: a file
//! descriptor inherited across fork is a separate handle in each process.
//! The access log (`worker::access`) uses the same [`LogSink`], so the same
//! signal reopens it.

use crate::config::{Config, LogTarget};
use simplelog::{ConfigBuilder, LevelFilter, WriteLogger};
use std::fs::{File, OpenOptions};
use std::io::{self, LineWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Where log lines go, reopenable and retargetable while in use. Clones
/// share the destination.
#[derive(Debug, Clone)]
pub struct LogSink(Arc<Mutex<Destination>>);

#[derive(Debug)]
struct Destination {
    target: LogTarget,
    /// Open while `target` is a file.
    file: Option<File>,
}

/// Every sink created in this process, for [`reopen_all`].
static SINKS: Mutex<Vec<Weak<Mutex<Destination>>>> = Mutex::new(Vec::new());

/// The error log's sink, once [`init`] ran.
static ERROR_LOG: OnceLock<LogSink> = OnceLock::new();

impl LogSink {
    /// Opens `target` (a file is created if missing and appended to) and
    /// registers the sink so that [`reopen_all`] reopens it. `what` names
    /// the setting in errors (`errorLog`).
    pub fn open(target: &LogTarget, what: &str) -> io::Result<LogSink> {
        let file = open_target(target, what)?;
        let sink = LogSink(Arc::new(Mutex::new(Destination {
            target: target.clone(),
            file,
        })));
        if let Ok(mut sinks) = SINKS.lock() {
            sinks.retain(|s| s.strong_count() > 0);
            sinks.push(Arc::downgrade(&sink.0));
        }
        Ok(sink)
    }

    /// Opens the sink's path again. On failure the old file stays in use,
    /// so no line is lost because a directory was briefly unwritable.
    pub fn reopen(&self) -> io::Result<()> {
        let target = self.target();
        self.retarget(&target, "log file")
    }

    /// Sends lines to `target` from now on (first opening it: on failure
    /// nothing changes).
    pub fn retarget(&self, target: &LogTarget, what: &str) -> io::Result<()> {
        let file = open_target(target, what)?;
        let mut dest = self.0.lock().unwrap_or_else(|e| e.into_inner());
        dest.target = target.clone();
        dest.file = file;
        Ok(())
    }

    /// Writes `bytes` whole under one lock, so a batch of lines is one
    /// `write(2)` (barring a short write, which only a full disk causes)
    /// and a reopen cannot split it between two files.
    pub fn write_whole(&self, bytes: &[u8]) -> io::Result<()> {
        let mut dest = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Destination { target, file } = &mut *dest;
        match (target, file) {
            (_, Some(file)) => file.write_all(bytes),
            (LogTarget::Stderr, None) => io::stderr().lock().write_all(bytes),
            _ => Ok(()),
        }
    }

    /// Where lines go now.
    pub fn target(&self) -> LogTarget {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .target
            .clone()
    }
}

fn open_target(target: &LogTarget, what: &str) -> io::Result<Option<File>> {
    match target {
        LogTarget::File(path) => open_append(path)
            .map(Some)
            .map_err(|e| io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))),
        LogTarget::Stderr | LogTarget::Off => Ok(None),
    }
}

/// O_APPEND: each line lands at the end of the file as one write, however
/// many processes write to it.
fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut dest = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Destination { target, file } = &mut *dest;
        match (target, file) {
            (_, Some(file)) => file.write(buf),
            (LogTarget::Stderr, None) => io::stderr().write(buf),
            _ => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reopens every log file of this process (USR1). Returns the first error;
/// the sinks that failed keep their old file.
pub fn reopen_all() -> io::Result<()> {
    let sinks: Vec<LogSink> = SINKS
        .lock()
        .map(|sinks| {
            sinks
                .iter()
                .filter_map(Weak::upgrade)
                .map(LogSink)
                .collect()
        })
        .unwrap_or_default();
    let mut first = Ok(());
    for sink in sinks {
        if let (Err(e), Ok(())) = (sink.reopen(), &first) {
            first = Err(e);
        }
    }
    first
}

/// Sets up the error log as `[log]` says. (Errors before this point, such
/// as a broken config, are returned to `main`, which prints them.)
pub fn init(config: &Config) -> io::Result<()> {
    let sink = LogSink::open(&config.log.error_log, "errorLog")?;
    install(sink.clone());
    let _ = ERROR_LOG.set(sink);
    log::set_max_level(level_of(config));
    Ok(())
}

/// Applies a reloaded config's `[log]` to the error log: its level, and
/// its destination if `errorLog` changed.
pub fn reconfigure(config: &Config) -> io::Result<()> {
    log::set_max_level(level_of(config));
    match ERROR_LOG.get() {
        Some(sink) if sink.target() != config.log.error_log => {
            sink.retarget(&config.log.error_log, "errorLog")
        }
        _ => Ok(()),
    }
}

fn level_of(config: &Config) -> LevelFilter {
    if config.log.error_log == LogTarget::Off {
        LevelFilter::Off
    } else {
        config.log.level
    }
}

fn install(sink: LogSink) {
    let config = ConfigBuilder::new()
        .set_thread_level(LevelFilter::Off)
        .set_target_level(LevelFilter::Off)
        .set_location_level(LevelFilter::Off)
        .set_time_format_rfc3339()
        .build();
    // The logger accepts every level; `log::set_max_level` filters, so a
    // reload can raise the level as well as lower it.
    // LineWriter: a whole record goes out in one write(2), and an O_APPEND
    // file gets whole lines from every process.
    let _ = WriteLogger::init(
        LevelFilter::Trace,
        config,
        LineWriter::with_capacity(64 * 1024, sink),
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn reopen_after_a_rename_writes_to_a_fresh_file_at_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("error.log");
        let rotated = dir.path().join("error.log.1");
        let mut sink = LogSink::open(&LogTarget::File(path.clone()), "errorLog").unwrap();
        sink.write_all(b"one\n").unwrap();
        std::fs::rename(&path, &rotated).unwrap();
        sink.write_all(b"two\n").unwrap(); // still the renamed file
                                           // Other tests' sinks are reopened too, and one of them fails on
                                           // purpose: judge by where this sink's lines went.
        let _ = reopen_all();
        sink.write_all(b"three\n").unwrap();
        assert_eq!(lines(&rotated), ["one", "two"]);
        assert_eq!(lines(&path), ["three"]);
    }

    #[test]
    fn a_failed_reopen_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("logs");
        std::fs::create_dir(&sub).unwrap();
        let path = sub.join("error.log");
        let mut sink = LogSink::open(&LogTarget::File(path.clone()), "errorLog").unwrap();
        let moved = dir.path().join("moved");
        std::fs::rename(&sub, &moved).unwrap(); // the path's folder is gone
        assert!(sink.reopen().is_err());
        sink.write_all(b"kept\n").unwrap();
        assert_eq!(lines(&moved.join("error.log")), ["kept"]);
    }

    #[test]
    fn retarget_moves_lines_and_clones_follow() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.log");
        let b = dir.path().join("b.log");
        let sink = LogSink::open(&LogTarget::File(a.clone()), "errorLog").unwrap();
        let mut clone = sink.clone();
        clone.write_all(b"first\n").unwrap();
        sink.retarget(&LogTarget::File(b.clone()), "errorLog")
            .unwrap();
        clone.write_all(b"second\n").unwrap();
        sink.retarget(&LogTarget::Off, "errorLog").unwrap();
        clone.write_all(b"dropped\n").unwrap();
        assert_eq!(lines(&a), ["first"]);
        assert_eq!(lines(&b), ["second"]);
        assert_eq!(sink.target(), LogTarget::Off);
    }
}
