//! Standard output and error, written so that a reader who stops reading
//! (`gatekeeper report run.json | head -1`) ends the printing quietly. `println!` panics there
//! (exit 101); here the command carries on, writes its files and exits with the code its verdict
//! calls for.

use std::io::{ErrorKind, Write};
use std::sync::Mutex;

/// Why stdout stopped taking output, once it has. Every later print is skipped.
static STDOUT_FAILED: Mutex<Option<ErrorKind>> = Mutex::new(None);

/// Prints on stdout, unless stdout has already failed. A closed pipe is the reader's choice and
/// is not reported; any other error is said once on stderr.
pub fn print(text: &str) {
    let Ok(mut failed) = STDOUT_FAILED.lock() else {
        return;
    };
    if failed.is_some() {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        *failed = Some(err.kind());
        if err.kind() != ErrorKind::BrokenPipe {
            eprint(&format!("gatekeeper: cannot write to stdout: {err}\n"));
        }
    }
}

/// Prints on stderr. An error there has nowhere to be reported, so it is ignored.
pub fn eprint(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Whether stdout failed for a reason other than a closed pipe (a full disk, say): commands
/// whose only product is stdout (`schema`, `completions`) fail then.
pub fn stdout_broke() -> bool {
    STDOUT_FAILED
        .lock()
        .map(|failed| failed.is_some_and(|kind| kind != ErrorKind::BrokenPipe))
        .unwrap_or(true)
}

/// `println!` for stdout that may be a closed pipe: see [`print`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::print(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` for stderr that may be a closed pipe (`2>&1 | head`): see [`eprint`].
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::eprint(&format!("{}\n", format_args!($($arg)*)))
    };
}
