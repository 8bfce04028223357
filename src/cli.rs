//! Command-line flags. Parsed here, turned into typed options, and never seen past `main`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use gatekeeper::commands::check::CheckOptions;
use gatekeeper::commands::refresh::RefreshOptions;
use gatekeeper::config::DEFAULT_CONFIG_FILE;
use gatekeeper::plan::Selection;

const EXIT_CODES: &str = "\
Exit codes:
  0  every gate passed
  1  a gate failed (a kernel regressed, is incorrect, or errored)
  2  usage, configuration or environment error";

#[derive(Debug, Parser)]
#[command(
    name = "gatekeeper",
    version,
    about = "Stops GPU-kernel correctness and performance regressions before they merge",
    after_help = EXIT_CODES,
)]
pub struct Cli {
    /// The gates file to read.
    #[arg(long, global = true, value_name = "PATH", default_value = DEFAULT_CONFIG_FILE)]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure every kernel × shape and judge it against the baselines.
    #[command(after_help = concat!(
        "Examples:\n",
        "  gatekeeper check --against main\n",
        "  gatekeeper check --against main --junit junit.xml --markdown comment.md\n",
        "  gatekeeper check --kernels attention --shapes mission,long\n\n",
        "Exit codes:\n  0  pass\n  1  a gate failed\n  2  usage, configuration or environment error"
    ))]
    Check(CheckArgs),

    /// Manage the stored baselines.
    #[command(subcommand)]
    Baseline(BaselineCommand),

    /// Internal: measure one `cuda:` kernel × shape named by the GATEKEEPER_* environment, as a
    /// protocol v1 harness. gatekeeper starts it in a child process.
    #[command(name = "__cuda-runner", hide = true)]
    CudaRunner,
}

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Measure and write baselines/<device>/<kernel>.json for the selected kernels.
    #[command(after_help = concat!(
        "Examples:\n",
        "  gatekeeper baseline refresh\n",
        "  gatekeeper baseline refresh --kernels attention --shapes mission\n\n",
        "Exit codes:\n  0  every selected baseline written\n",
        "  1  a kernel was incorrect or errored; its baseline was not written\n",
        "  2  usage, configuration or environment error"
    ))]
    Refresh(RefreshArgs),
}

#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Only these kernels (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub kernels: Option<Vec<String>>,

    /// Only these shapes (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub shapes: Option<Vec<String>>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Read baselines from this git ref (tried as given, then as origin/REF) instead of the
    /// working tree.
    #[arg(long, value_name = "REF")]
    pub against: Option<String>,

    #[command(flatten)]
    pub select: SelectArgs,

    /// Write the run record as JSON here.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,

    /// Write a JUnit XML report here.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,

    /// Write a markdown report (for a pull-request comment) here.
    #[arg(long, value_name = "PATH")]
    pub markdown: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RefreshArgs {
    #[command(flatten)]
    pub select: SelectArgs,
}

impl SelectArgs {
    fn into_selection(self) -> Selection {
        Selection {
            kernels: self.kernels,
            shapes: self.shapes,
        }
    }
}

impl CheckArgs {
    pub fn into_options(self, config: PathBuf) -> CheckOptions {
        CheckOptions {
            config,
            against: self.against,
            selection: self.select.into_selection(),
            json: self.json,
            junit: self.junit,
            markdown: self.markdown,
        }
    }
}

impl RefreshArgs {
    pub fn into_options(self, config: PathBuf) -> RefreshOptions {
        RefreshOptions {
            config,
            selection: self.select.into_selection(),
        }
    }
}
