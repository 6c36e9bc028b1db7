//! The `blockyard` binary: parses the command line and maps errors to exit codes
//! (0 ok, 1 failure, 2 usage; `exec` passes its program's code through).

use std::process::ExitCode;

use blockyard::cli::{Cli, OutputFormat, print_error, print_usage_error, run};
use clap::Parser;

fn main() -> ExitCode {
    // A shell asking for completions (`BLOCKYARD_COMPLETE=bash blockyard -- ...`): answered, exit.
    clap_complete::CompleteEnv::with_factory(blockyard::cli::command)
        .var(blockyard::cli::COMPLETE_VAR)
        .complete();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    let format = cli.global.output;
    // Opened secrets and tokens live in this process's memory: no core dump may hold
    // them. A program `exec` starts keeps its own ability to dump core.
    let exec = matches!(cli.command, blockyard::cli::Command::Exec(_));
    blockyard::process::protect_memory(exec);
    match run(cli, std::env::vars().collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            print_error(format, &err);
            ExitCode::from(err.exit_code())
        }
    }
}

/// `--help` and `--version` print as usual; a usage error is clap's text, or with JSON
/// output (`-o json` anywhere, or BLOCKYARD_OUTPUT=json) the JSON error shape; exit 2.
fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let json = json_requested(
        std::env::args().skip(1),
        std::env::var("BLOCKYARD_OUTPUT").ok(),
    );
    let informational = matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    );
    // A value our own parser refused (a block name, say): the library's code and exit
    // status, as if the command had run and refused it.
    if let Some(refused) = std::error::Error::source(&err).and_then(|e| e.downcast_ref()) {
        let format = match json {
            true => OutputFormat::Json,
            false => OutputFormat::Table,
        };
        print_error(format, refused);
        return ExitCode::from(blockyard::Error::exit_code(refused));
    }
    if informational || !json {
        err.exit()
    }
    print_usage_error(OutputFormat::Json, &err);
    ExitCode::from(2)
}

/// Whether the (unparsed) command line or the environment asks for JSON output.
fn json_requested(args: impl Iterator<Item = String>, env: Option<String>) -> bool {
    let mut format = env;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        if arg == "-o" || arg == "--output" {
            format = args.next();
        } else if let Some(v) = arg.strip_prefix("--output=").or(arg.strip_prefix("-o")) {
            format = Some(v.trim_start_matches('=').to_owned());
        }
    }
    format.is_some_and(|f| f.eq_ignore_ascii_case("json"))
}
