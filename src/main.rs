use std::process::ExitCode;

use clap::Parser;

mod cli;

use cli::{BaselineCommand, Cli, Command};
use gatekeeper::commands::{check, refresh};

fn main() -> ExitCode {
    let cli = Cli::parse();
    gatekeeper::measure::install_interrupt_handler();
    let result = match cli.command {
        Command::CudaRunner => return ExitCode::from(gatekeeper::cuda::runner::main(&cli.config)),
        Command::Check(args) => check::run(&args.into_options(cli.config)),
        Command::Baseline(BaselineCommand::Refresh(args)) => {
            refresh::run(&args.into_options(cli.config))
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
