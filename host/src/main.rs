//! The `drupe` binary: parse flags, run, map the result to an exit code.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = drupe::Cli::parse();
    match drupe::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("drupe: {e}");
            ExitCode::FAILURE
        }
    }
}
