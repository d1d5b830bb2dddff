//! The command line (DESIGN "Command line") and what each form does.

use crate::config::Config;
use crate::master;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// A pre-fork application server for Rust page-handler plugins.
#[derive(Debug, Parser)]
#[command(name = "drupe", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// The INI file to read (see config/drupe.ini for every setting).
    #[arg(long, short = 'c', value_name = "FILE", required = true)]
    pub config: Option<PathBuf>,

    /// Validate the config, load every plugin in a probe process, print
    /// what would be served, and exit 0 (fit to serve) or 1.
    #[arg(long)]
    pub check: bool,

    /// `drupe dev`'s master: serve the plugins of this folder with the dev
    /// settings (`config::Dev`). Set by `drupe dev` only.
    #[arg(long, hide = true, value_name = "DIR")]
    pub dev_dir: Option<PathBuf>,

    /// `drupe dev`'s master: the port (with `--dev-dir`).
    #[arg(long, hide = true, default_value_t = 8080)]
    pub dev_port: u16,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a plugin crate that builds and is served at /NAME.
    New {
        /// The plugin's name (and crate name, and default mount point).
        name: String,
        /// Where to create it (default: ./NAME).
        dir: Option<PathBuf>,
    },
    /// Build plugin crates, serve them with one worker, and rebuild and
    /// reload on every saved change. A failed build or load makes every
    /// page an error page that says why.
    Dev {
        /// The plugin crates (default: the current directory).
        #[arg(value_name = "CRATE_DIR")]
        crates: Vec<PathBuf>,
        /// Serve on 127.0.0.1:PORT.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Take every other setting ([plugin.NAME], [store], [limits], …)
        /// from this INI file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// Runs drupe as the command line asks. Errors are returned with context
/// for `main` to print.
pub fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(Command::New { name, dir }) = &cli.command {
        let created = crate::scaffold::new_plugin(name, dir.as_deref())?;
        let joined = created.workspace.map_or_else(String::new, |w| {
            format!(" (a member of the workspace in {})", w.display())
        });
        println!(
            "created plugin `{name}` in {0}{joined}\n\n  cd {0} && drupe dev\n\nbuilds it, serves it at http://127.0.0.1:8080/{name} and rebuilds it on every save",
            created.dir.display(),
        );
        return Ok(());
    }
    if let Some(Command::Dev {
        crates,
        port,
        config,
    }) = &cli.command
    {
        return crate::dev::run(crates, *port, config.as_deref());
    }
    let Some(config_path) = &cli.config else {
        return Err("--config FILE is required (see config/drupe.ini)".into());
    };
    let mut config = Config::load(config_path)?;
    if let Some(dir) = &cli.dev_dir {
        config.apply_dev(crate::dev::master_settings(dir, cli.dev_port));
        // Gone with `drupe dev`, however it ends.
        let parent = nix::unistd::getppid();
        crate::sys::process::die_with_parent(nix::sys::signal::Signal::SIGTERM, parent)?;
    }
    if cli.check {
        // What is wrong goes to the terminal that asked, whatever
        // `errorLog` says: the operator is looking there.
        let mut terminal = config.clone();
        terminal.log.error_log = crate::config::LogTarget::Stderr;
        crate::logging::init(&terminal)?;
        println!(
            "{}: OK; would listen on {}:{} with {} worker processes of {} threads",
            config_path.display(),
            config.server.socket_host,
            config.server.socket_port,
            config.server.processes,
            config.server.thread_pool
        );
        master::check(&config)?;
        return Ok(());
    }
    crate::logging::init(&config)?;
    master::run(config)?;
    Ok(())
}
