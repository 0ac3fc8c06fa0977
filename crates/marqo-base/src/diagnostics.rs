//! Turning errors into what the user reads: the message, its causes, a hint, and the exit
//! code (0 ok, 1 a check found a difference, 2 user error or no solution, 3 network).

use std::process::ExitCode;

use crate::printer::Printer;

/// A failure of a command, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input, no solution, unsupported request: exit 2.
    #[error("{message}")]
    User {
        message: String,
        hint: Option<String>,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The network or an index failed after retries: exit 3.
    #[error("{message}")]
    Network {
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl CliError {
    pub fn user(message: impl Into<String>) -> CliError {
        CliError::User { message: message.into(), hint: None, source: None }
    }

    pub fn with_hint(self, hint: impl Into<String>) -> CliError {
        match self {
            CliError::User { message, source, .. } => {
                CliError::User { message, hint: Some(hint.into()), source }
            }
            other => other,
        }
    }

    /// Classifies any error: a network failure anywhere in its chain means exit 3.
    pub fn from_error(
        message: impl Into<String>,
        err: impl std::error::Error + Send + Sync + 'static,
    ) -> CliError {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        let mut network = false;
        while let Some(e) = cur {
            if let Some(f) = e.downcast_ref::<fetch::Error>() {
                network |= f.is_network();
            }
            cur = e.source();
        }
        let source = Some(Box::new(err) as Box<dyn std::error::Error + Send + Sync>);
        if network {
            CliError::Network { message: message.into(), source }
        } else {
            CliError::User { message: message.into(), hint: None, source }
        }
    }
}

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
