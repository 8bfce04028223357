//! Errors that stop a command before any gate is judged. Each one maps to exit code 2 and names
//! the file, key, flag or ref at fault.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// gates.yaml (or another config) could not be read or is invalid. All problems found are
    /// listed, not just the first.
    #[error("{}: invalid configuration:\n{}", path.display(), bullet_list(problems))]
    Config {
        path: PathBuf,
        problems: Vec<String>,
    },

    /// A flag names something that does not exist or cannot be combined.
    #[error("{0}")]
    Usage(String),

    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A git repository or ref could not be used.
    #[error("{0}")]
    Git(String),

    /// The machine lacks something a command needs (a GPU driver, a library).
    #[error("{0}")]
    Environment(String),

    /// A file gatekeeper wrote earlier (a baseline) cannot be read back.
    #[error("{}: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
}

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub fn exit_code(&self) -> u8 {
        crate::exit::USAGE_OR_ENVIRONMENT
    }
}

fn bullet_list(items: &[String]) -> String {
    items
        .iter()
        .map(|item| format!("  - {item}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
