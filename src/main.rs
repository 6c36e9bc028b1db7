//! The `blockyard` binary: parses the command line and maps errors to exit codes
//! (0 ok, 1 failure, 2 usage).

use std::process::ExitCode;

use blockyard::cli::{Cli, run};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = cli.global.output;
    match run(cli, std::env::vars().collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            blockyard::cli::print_error(format, &err);
            ExitCode::from(1)
        }
    }
}
