//! Errors of the pipeline: what was being done, the cause it came from, and a hint. The
//! binary prints the chain and maps [`Error::is_network`] to its exit code.

/// A failure of an operation, with its context, its cause and a hint; [`Error::is_network`]
/// tells a network failure (worth retrying later) from bad input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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

impl Error {
    pub fn user(message: impl Into<String>) -> Error {
        Error::User { message: message.into(), hint: None, source: None }
    }

    /// The hint shown after the error and its causes, if any.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::User { hint, .. } => hint.as_deref(),
            Error::Network { .. } => None,
        }
    }

    /// Whether the network or an index failed (exit 3), rather than the input (exit 2).
    pub fn is_network(&self) -> bool {
        matches!(self, Error::Network { .. })
    }

    pub fn with_hint(self, hint: impl Into<String>) -> Error {
        match self {
            Error::User { message, source, .. } => Error::User { message, hint: Some(hint.into()), source },
            other => other,
        }
    }

    /// Classifies any error: a network failure anywhere in its chain means exit 3.
    pub fn from_error(
        message: impl Into<String>,
        err: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
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
            Error::Network { message: message.into(), source }
        } else {
            Error::User { message: message.into(), hint: None, source }
        }
    }
}
