//! Turning errors into what the user reads: the message, its causes, a hint, and the exit
//! code (0 ok, 1 a check found a difference, 2 user error or no solution, 3 network, 101 a
//! bug, as a Rust panic exits).

use std::process::ExitCode;

use crate::printer::Printer;

/// A failure of a command: the pipeline's error, which knows its exit code.
pub use ops::Error as CliError;

/// Prints `error: ...`, each cause as `Caused by: ...`, then the hint (or, for a bug, a
/// request to report it); returns the exit code.
pub fn report(err: &CliError, printer: &Printer) -> ExitCode {
    printer.labelled("error:", 31, err.to_string());
    let mut cur = std::error::Error::source(err);
    let mut last = err.to_string();
    while let Some(e) = cur {
        let msg = e.to_string();
        // Transparent wrappers repeat their inner message; print each text once.
        if msg != last && !last.ends_with(&msg) {
            printer.stderr(format!("  Caused by: {}", msg.replace('\n', "\n  ")));
        }
        last = msg;
        cur = e.source();
    }
    if err.is_internal() {
        printer.labelled(
            "note:",
            33,
            "this is a bug in marqo-base; please report it with the command and this output",
        );
    } else if let Some(hint) = err.hint() {
        printer.labelled("hint:", 36, hint);
    }
    ExitCode::from(exit_code(err))
}

/// The one place error kinds become exit codes.
fn exit_code(err: &CliError) -> u8 {
    match err {
        CliError::User { .. } => 2,
        CliError::Network { .. } => 3,
        CliError::Internal { .. } => 101,
    }
}
