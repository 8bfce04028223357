use std::process::ExitCode;

use clap::{CommandFactory, Parser};

mod cli;

use cli::{BaselineCommand, Cli, Command};
use gatekeeper::commands::{check, doctor, offline, profile, refresh};

fn main() -> ExitCode {
    let cli = Cli::parse();
    gatekeeper::measure::install_interrupt_handler();
    let result = match cli.command {
        Command::CudaRunner => return ExitCode::from(gatekeeper::cuda::runner::main(&cli.config)),
        Command::Doctor => return ExitCode::from(doctor::run()),
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&gatekeeper::config::json_schema())
                    .unwrap_or_default()
            );
            return ExitCode::SUCCESS;
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "gatekeeper",
                &mut std::io::stdout(),
            );
            return ExitCode::SUCCESS;
        }
        Command::Check(args) => check::run(&args.into_options(cli.config)),
        Command::Profile(args) => profile::run(&args.into_options(cli.config)),
        Command::Baseline(BaselineCommand::Refresh(args)) => {
            refresh::run(&args.into_options(cli.config))
        }
        Command::Report { run, gate, reports } => {
            offline::report(&run, &gate.into_overrides(), &reports.into_paths())
        }
        Command::Compare {
            baseline,
            candidate,
            gate,
            reports,
        } => offline::compare(
            &baseline,
            &candidate,
            &gate.into_overrides(),
            &reports.into_paths(),
        ),
        Command::Merge { shards, reports } => offline::merge(&shards, &reports.into_paths()),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
