//! The error log: `log` records through `simplelog`, one `write(2)` per
//! line, so lines from the master and several workers never interleave.

use crate::config::{Config, LogTarget};
use simplelog::{ConfigBuilder, LevelFilter, WriteLogger};
use std::fs::OpenOptions;
use std::io::{self, LineWriter, Write};

/// Sets up the error log as `[log]` says. (Errors before this point, such
/// as a broken config, are returned to `main`, which prints them.)
pub fn init(config: &Config) -> io::Result<()> {
    let writer: Box<dyn Write + Send> = match &config.log.error_log {
        LogTarget::Off => return Ok(()),
        LogTarget::Stderr => Box::new(io::stderr()),
        LogTarget::File(path) => Box::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("errorLog {}: {e}", path.display()))
                })?,
        ),
    };
    install(config.log.level, writer);
    Ok(())
}

fn install(level: LevelFilter, writer: Box<dyn Write + Send>) {
    let config = ConfigBuilder::new()
        .set_thread_level(LevelFilter::Off)
        .set_target_level(LevelFilter::Off)
        .set_location_level(LevelFilter::Off)
        .set_time_format_rfc3339()
        .build();
    // LineWriter: a whole record goes out in one write(2), and an O_APPEND
    // file gets whole lines from every process.
    let _ = WriteLogger::init(level, config, LineWriter::with_capacity(64 * 1024, writer));
}
