use std::process::ExitCode;

use clap::{CommandFactory, Parser};

mod cli;

use cli::{BaselineCommand, Cli, Command};
use gatekeeper::commands::{check, doctor, history, offline, profile, rank, refresh};
use gatekeeper::report::neutralise;
use gatekeeper::{errln, outln, output};

fn main() -> ExitCode {
    let cli = Cli::parse();
    gatekeeper::measure::install_interrupt_handler();
    let result = match cli.command {
        Command::CudaRunner => return ExitCode::from(gatekeeper::cuda::runner::main(&cli.config)),
        Command::Doctor => return ExitCode::from(doctor::run()),
        Command::Schema => {
            outln!(
                "{}",
                serde_json::to_string_pretty(&gatekeeper::config::json_schema())
                    .unwrap_or_default()
            );
            return stdout_product();
        }
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics when its writer fails (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "gatekeeper", &mut script);
            output::print(&String::from_utf8_lossy(&script));
            return stdout_product();
        }
        Command::Check(args) => check::run(&args.into_options(cli.config)),
        Command::Profile(args) => profile::run(&args.into_options(cli.config)),
        Command::Rank(args) => rank::run(&args.into_options(cli.config)),
        Command::History(args) => history::run(&args.into_options(cli.config)),
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
            errln!("error: {}", neutralise(&err.to_string()));
            ExitCode::from(err.exit_code())
        }
    }
}

/// The exit code of a command whose only product is what it printed: a closed pipe is the
/// reader's choice, but output lost otherwise (a full disk) is an environment error.
fn stdout_product() -> ExitCode {
    if output::stdout_broke() {
        ExitCode::from(gatekeeper::exit::USAGE_OR_ENVIRONMENT)
    } else {
        ExitCode::SUCCESS
    }
}
