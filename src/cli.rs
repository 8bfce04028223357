//! Command-line flags. Parsed here, turned into typed options, and never seen past `main`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use gatekeeper::commands::check::CheckOptions;
use gatekeeper::commands::offline::GateOverrides;
use gatekeeper::commands::profile::ProfileOptions;
use gatekeeper::commands::refresh::RefreshOptions;
use gatekeeper::commands::ReportPaths;
use gatekeeper::config::DEFAULT_CONFIG_FILE;
use gatekeeper::plan::{Selection, Shard};

#[derive(Debug, Parser)]
#[command(
    name = "gatekeeper",
    version,
    about = "Stops GPU-kernel correctness and performance regressions before they merge",
    after_help = concat!(
        "Examples:\n",
        "  gatekeeper check --against main\n",
        "  gatekeeper baseline refresh\n",
        "  gatekeeper profile --kernels attention\n",
        "  gatekeeper report runs/20261124T071757.226Z-1af185158638.json --markdown comment.md\n\n",
        "Exit codes:\n",
        "  0  every gate passed\n",
        "  1  a gate failed (a kernel regressed, is incorrect, or errored)\n",
        "  2  usage, configuration or environment error\n",
        "  130  interrupted (SIGINT, SIGTERM or SIGHUP)"
    ),
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
        "  gatekeeper check --kernels attention --shapes mission,long\n",
        "  gatekeeper check --against main --shard 2/4 --json shard-2.json   # then: gatekeeper merge\n\n",
        "Exit codes:\n  0  pass (always, with --shard: the merge decides)\n  1  a gate failed\n",
        "  2  usage, configuration or environment error"
    ))]
    Check(CheckArgs),

    /// Gate 4 on its own: profile every `cuda:` kernel × shape once with Nsight Compute, classify
    /// it (compute-, memory- or latency-bound), compare it with its floor, and check the
    /// gates.yaml `profile` limits. Without ncu, shows the static resources only.
    #[command(after_help = concat!(
        "Examples:\n",
        "  gatekeeper profile\n",
        "  gatekeeper profile --kernels attention --shapes mission --markdown profile.md\n\n",
        "Exit codes:\n  0  every limit met\n  1  a limit was missed or a shape errored\n",
        "  2  usage, configuration or environment error (a target names a metric the device lacks)"
    ))]
    Profile(ProfileArgs),

    /// Rank a kernel's candidates (its gates.yaml variants, CUDA source files, the stored
    /// elite) against it: compile and correctness on every shape, then timing in rounds
    /// interleaved with the incumbent, racing out candidates that cannot reach the Top-K; the
    /// geometric-mean speedup with its interval, and the elite.
    #[command(after_help = concat!(
        "Examples:\n",
        "  gatekeeper rank --kernels attention\n",
        "  gatekeeper rank --kernels attention --candidates 'gen/*.cu' --top 3 --json rank.json\n",
        "  gatekeeper rank --kernels attention --population population/h100.json\n\n",
        "Exit codes:\n  0  at least one candidate was ranked\n  1  every candidate failed\n",
        "  2  usage, configuration or environment error (the incumbent itself failing included)"
    ))]
    Rank(RankArgs),

    /// Each kernel × shape's baseline median at every commit that refreshed it, read from
    /// git, and the commits where the level moved (change points, with the step and its
    /// p-value). No GPU needed.
    #[command(after_help = concat!(
        "Examples:\n",
        "  gatekeeper history\n",
        "  gatekeeper history --kernels attention --since v1.2 --json history.json\n\n",
        "Exit codes:\n  0  the history was read\n  2  usage error (not a git repository, a bad --since)"
    ))]
    History(HistoryArgs),

    /// Manage the stored baselines.
    #[command(subcommand)]
    Baseline(BaselineCommand),

    /// Render a stored run record again, judged again when thresholds are given. No GPU needed.
    #[command(after_help = concat!(
        "Examples:\n",
        "  gatekeeper report runs/RUN.json --markdown comment.md --junit junit.xml\n",
        "  gatekeeper report runs/RUN.json --regression-threshold 0.05\n\n",
        "Exit codes:\n  0  pass\n  1  a gate failed\n  2  usage error or unreadable record"
    ))]
    Report {
        /// A run record (runs/*.json, or a --json report).
        run: PathBuf,
        #[command(flatten)]
        gate: GateArgs,
        #[command(flatten)]
        reports: ReportArgs,
    },

    /// Judge one run record's samples against another's, shape by shape. No GPU needed.
    #[command(after_help = concat!(
        "Examples:\n",
        "  gatekeeper compare before.json after.json\n",
        "  gatekeeper compare before.json after.json --markdown comment.md --alpha 0.01\n\n",
        "Exit codes:\n  0  pass\n  1  a gate failed\n  2  usage error or unreadable record"
    ))]
    Compare {
        /// The run whose samples are the baseline.
        baseline: PathBuf,
        /// The run judged against it.
        candidate: PathBuf,
        #[command(flatten)]
        gate: GateArgs,
        #[command(flatten)]
        reports: ReportArgs,
    },

    /// Combine the run records of `check --shard K/N` into one decision and one set of reports.
    #[command(after_help = concat!(
        "Examples:\n",
        "  gatekeeper merge shard-1.json shard-2.json --junit junit.xml --markdown comment.md\n\n",
        "Exit codes:\n  0  pass\n  1  a gate failed\n",
        "  2  usage error (a shard missing, repeated, or from another check)"
    ))]
    Merge {
        /// Every shard's run record.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        #[command(flatten)]
        reports: ReportArgs,
    },

    /// Check this machine for GPU timing: driver, GPU, NVRTC, ncu, clocks, other processes.
    #[command(after_help = concat!(
        "Examples:\n  gatekeeper doctor\n\n",
        "Exit codes:\n  0  CUDA kernels can run here\n  2  they cannot (the failing line says why)"
    ))]
    Doctor,

    /// Print the JSON Schema of gates.yaml, for editors that validate and complete YAML.
    #[command(after_help = concat!(
        "Examples:\n",
        "  gatekeeper schema > gates.schema.json\n",
        "  # then, first line of gates.yaml: # yaml-language-server: $schema=gates.schema.json"
    ))]
    Schema,

    /// Print a shell completion script.
    #[command(after_help = concat!(
        "Examples:\n",
        "  gatekeeper completions bash > ~/.local/share/bash-completion/completions/gatekeeper\n",
        "  gatekeeper completions zsh > ~/.zfunc/_gatekeeper"
    ))]
    Completions { shell: clap_complete::Shell },

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
pub struct ReportArgs {
    /// Write the run record as JSON here.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,

    /// Write a JUnit XML report here.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,

    /// Write a markdown report (for a pull-request comment) here.
    #[arg(long, value_name = "PATH")]
    pub markdown: Option<PathBuf>,

    /// Write a self-contained HTML report (charts of every shape's samples) here.
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GateArgs {
    /// Judge with this regression threshold instead of the record's (0.10 = 10 %).
    #[arg(long, value_name = "FRACTION")]
    pub regression_threshold: Option<f64>,

    /// Judge with this significance level instead of the record's.
    #[arg(long, value_name = "ALPHA")]
    pub alpha: Option<f64>,

    /// Fail a kernel at this many regressed shapes instead of the record's number.
    #[arg(long, value_name = "N")]
    pub min_regressed_shapes: Option<usize>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Read baselines from this git ref (tried as given, then as origin/REF) instead of the
    /// working tree.
    #[arg(long, value_name = "REF")]
    pub against: Option<String>,

    /// With --against: read the ref's tip instead of its merge-base with HEAD.
    #[arg(long, requires = "against")]
    pub against_tip: bool,

    /// Measure every shape beside the base build (the --against commit, built from git) in
    /// alternating processes, and judge it by those rounds; needs no stored baseline.
    #[arg(long)]
    pub ab: bool,

    /// Measure every kernel, also those whose `inputs:` are unchanged since the baseline.
    #[arg(long)]
    pub all: bool,

    #[command(flatten)]
    pub select: SelectArgs,

    /// Measure only slice K of N of the plan (jobs dealt round-robin); combine the slices'
    /// run records with `gatekeeper merge`.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,

    #[command(flatten)]
    pub reports: ReportArgs,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub select: SelectArgs,

    /// Only this device folder (e.g. nvidia-h100-80gb-hbm3).
    #[arg(long, value_name = "NAME")]
    pub device: Option<String>,

    /// Only commits after this revision.
    #[arg(long, value_name = "REV")]
    pub since: Option<String>,

    /// Write the series and change points as JSON here.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,

    /// Write a self-contained HTML page with each series' trend chart here.
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
}

impl HistoryArgs {
    pub fn into_options(self, config: PathBuf) -> gatekeeper::commands::history::HistoryOptions {
        gatekeeper::commands::history::HistoryOptions {
            config,
            kernels: self.select.kernels,
            shapes: self.select.shapes,
            device: self.device,
            since: self.since,
            json: self.json,
            html: self.html,
        }
    }
}

#[derive(Debug, Args)]
pub struct RankArgs {
    /// The kernel whose candidates are ranked (its gates.yaml definition is the incumbent).
    #[arg(long, value_name = "NAME")]
    pub kernels: String,

    /// Only these of its variants (comma-separated; default: all, unless --candidates).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub variants: Option<Vec<String>>,

    /// CUDA source files, each a candidate with the incumbent's launches (globs relative to
    /// the folder of gates.yaml; repeatable).
    #[arg(long, value_name = "GLOB")]
    pub candidates: Vec<String>,

    /// Only these shapes (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub shapes: Option<Vec<String>>,

    /// How many make the elite.
    #[arg(long, default_value_t = 3, value_name = "K")]
    pub top: usize,

    /// Rounds at most (default: gate.ab.max_rounds).
    #[arg(long, value_name = "N")]
    pub max_rounds: Option<usize>,

    /// A JSON file of the elite so far (per device): its members compete again, and the new
    /// elite is written back.
    #[arg(long, value_name = "PATH")]
    pub population: Option<PathBuf>,

    /// Write the ranking as JSON here (for a generator: elite, discarded, failed).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,

    /// Write the ranking as a markdown table here.
    #[arg(long, value_name = "PATH")]
    pub markdown: Option<PathBuf>,

    /// Write the ranking as a self-contained HTML page (a chart of the speedups) here.
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
}

impl RankArgs {
    pub fn into_options(self, config: PathBuf) -> gatekeeper::commands::rank::RankOptions {
        gatekeeper::commands::rank::RankOptions {
            config,
            kernel: self.kernels,
            variants: self.variants,
            candidates: self.candidates,
            shapes: self.shapes,
            top: self.top,
            population: self.population,
            json: self.json,
            markdown: self.markdown,
            html: self.html,
            max_rounds: self.max_rounds,
        }
    }
}

#[derive(Debug, Args)]
pub struct ProfileArgs {
    #[command(flatten)]
    pub select: SelectArgs,

    /// Write every shape's profile as JSON here.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,

    /// Write the profile table as markdown here.
    #[arg(long, value_name = "PATH")]
    pub markdown: Option<PathBuf>,
}

impl ProfileArgs {
    pub fn into_options(self, config: PathBuf) -> ProfileOptions {
        ProfileOptions {
            config,
            selection: self.select.into_selection(None),
            json: self.json,
            markdown: self.markdown,
        }
    }
}

#[derive(Debug, Args)]
pub struct RefreshArgs {
    #[command(flatten)]
    pub select: SelectArgs,
}

impl SelectArgs {
    fn into_selection(self, shard: Option<Shard>) -> Selection {
        Selection {
            kernels: self.kernels,
            shapes: self.shapes,
            shard,
        }
    }
}

impl ReportArgs {
    pub fn into_paths(self) -> ReportPaths {
        ReportPaths {
            json: self.json,
            junit: self.junit,
            markdown: self.markdown,
            html: self.html,
        }
    }
}

impl GateArgs {
    pub fn into_overrides(self) -> GateOverrides {
        GateOverrides {
            regression_threshold: self.regression_threshold,
            alpha: self.alpha,
            min_regressed_shapes: self.min_regressed_shapes,
        }
    }
}

impl CheckArgs {
    pub fn into_options(self, config: PathBuf) -> CheckOptions {
        CheckOptions {
            config,
            against: self.against,
            against_tip: self.against_tip,
            ab: self.ab,
            all: self.all,
            selection: self.select.into_selection(self.shard),
            reports: self.reports.into_paths(),
        }
    }
}

impl RefreshArgs {
    pub fn into_options(self, config: PathBuf) -> RefreshOptions {
        RefreshOptions {
            config,
            selection: self.select.into_selection(None),
        }
    }
}
