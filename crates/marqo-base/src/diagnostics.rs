//! Turning errors into what the user reads: the message, its causes, a hint, and the exit
//! code (0 ok, 1 a check found a difference, 2 user error or no solution, 3 network).

use std::process::ExitCode;

use crate::printer::Printer;

/// A failure of a command: the pipeline's error, which knows its exit code.
pub use ops::Error as CliError;

/// Prints `error: ...`, each cause as `Caused by: ...`, and the hint; returns the exit code.
pub fn report(err: &CliError, _printer: &Printer) -> ExitCode {
    eprintln!("error: {err}");
    let mut cur = std::error::Error::source(err);
    let mut last = err.to_string();
    while let Some(e) = cur {
        let msg = e.to_string();
        // Transparent wrappers repeat their inner message; print each text once.
        if msg != last && !last.ends_with(&msg) {
            eprintln!("  Caused by: {}", msg.replace('\n', "\n  "));
        }
        last = msg;
        cur = e.source();
    }
    match err {
        CliError::User { hint, .. } => {
            if let Some(hint) = hint {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(2)
        }
        CliError::Network { .. } => ExitCode::from(3),
    }
}
