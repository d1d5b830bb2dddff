//! The command line (DESIGN "Command line") and what each form does.

use crate::config::Config;
use crate::master;
use clap::Parser;
use std::path::PathBuf;

/// A pre-fork application server for Rust page-handler plugins.
#[derive(Debug, Parser)]
#[command(name = "drupe", version, about)]
pub struct Cli {
    /// The INI file to read (see config/drupe.ini for every setting).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,

    /// Validate the config, load every plugin in a probe process, print
    /// what would be served, and exit 0 (fit to serve) or 1.
    #[arg(long)]
    pub check: bool,
}

/// Runs drupe as the command line asks. Errors are returned with context
/// for `main` to print.
pub fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::load(&cli.config)?;
    crate::logging::init(&config)?;
    if cli.check {
        println!(
            "{}: OK; would listen on {}:{} with {} worker processes of {} threads",
            cli.config.display(),
            config.server.socket_host,
            config.server.socket_port,
            config.server.processes,
            config.server.thread_pool
        );
        master::check(&config)?;
        return Ok(());
    }
    master::run(config)?;
    Ok(())
}
