//! Errors of the pipeline: what was being done, the cause it came from, and a hint. The
//! binary prints the chain and the hint, and maps the kind ([`Error::is_network`],
//! [`Error::is_internal`]) to its exit code.

type Source = Box<dyn std::error::Error + Send + Sync>;

/// A failure of an operation, with its context, its cause and a hint; the variant tells bad
/// input from a network failure (worth retrying later) from a bug.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input, no solution, unsupported request: exit 2.
    #[error("{message}")]
    User {
        message: String,
        hint: Option<String>,
        #[source]
        source: Option<Source>,
    },
    /// The network or an index failed after retries: exit 3.
    #[error("{message}")]
    Network {
        message: String,
        hint: Option<String>,
        #[source]
        source: Option<Source>,
    },
    /// A bug: a worker thread panicked or an invariant broke. Exit 101, as a Rust panic.
    #[error("{message}")]
    Internal {
        message: String,
        #[source]
        source: Option<Source>,
    },
}

impl Error {
    pub fn user(message: impl Into<String>) -> Error {
        Error::User { message: message.into(), hint: None, source: None }
    }

    /// A bug of ours, not the user's input: `internal("a build thread panicked")`.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::Internal { message: message.into(), source: None }
    }

    /// The hint shown after the error and its causes, if any.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::User { hint, .. } | Error::Network { hint, .. } => hint.as_deref(),
            Error::Internal { .. } => None,
        }
    }

    /// Whether the network or an index failed (exit 3), rather than the input (exit 2).
    pub fn is_network(&self) -> bool {
        matches!(self, Error::Network { .. })
    }

    /// Whether a download did not match the digest (or the size) it was asked for (somewhere
    /// in the chain): the caller knows who named the digest, and so which hint fits.
    pub fn is_hash_mismatch(&self) -> bool {
        let mut cur = std::error::Error::source(self);
        while let Some(e) = cur {
            if matches!(
                e.downcast_ref::<fetch::Error>(),
                Some(fetch::Error::HashMismatch { .. } | fetch::Error::SizeMismatch { .. })
            ) {
                return true;
            }
            cur = e.source();
        }
        false
    }

    /// Whether this is a bug of ours (exit 101) rather than the input's or the network's.
    pub fn is_internal(&self) -> bool {
        matches!(self, Error::Internal { .. })
    }

    /// Replaces the hint (a bug gets none: what to do about it is to report it).
    pub fn with_hint(self, hint: impl Into<String>) -> Error {
        match self {
            Error::User { message, source, .. } => Error::User { message, hint: Some(hint.into()), source },
            Error::Network { message, source, .. } => {
                Error::Network { message, hint: Some(hint.into()), source }
            }
            other => other,
        }
    }

    /// Wraps any error under `message`, classified by its chain: a bug anywhere in it (a
    /// panicked solver) means exit 101, a network failure exit 3, anything else exit 2. The
    /// hint is the first one a library error of the chain offers, the outermost being the
    /// most specific.
    pub fn from_error(
        message: impl Into<String>,
        err: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        let (mut network, mut internal, mut hint) = (false, false, None);
        while let Some(e) = cur {
            network |= is_network(e);
            internal |= is_bug(e);
            if hint.is_none() {
                hint = library_hint(e);
            }
            cur = e.source();
        }
        let (message, source) = (message.into(), Some(Box::new(err) as Source));
        if internal {
            Error::Internal { message, source }
        } else if network {
            Error::Network { message, hint, source }
        } else {
            Error::User { message, hint, source }
        }
    }
}

/// A manifest, lock or input file that cannot be read or is wrong: a user error whose message
/// points at the file, line and column, with the reader's hint.
impl From<lockfile::Error> for Error {
    fn from(e: lockfile::Error) -> Error {
        Error::from_error(e.to_string(), e)
    }
}

fn is_network(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(e) = e.downcast_ref::<fetch::Error>() {
        e.is_network()
    } else if let Some(e) = e.downcast_ref::<registry::Error>() {
        e.is_network()
    } else {
        false
    }
}

fn is_bug(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<py_resolver::ResolveError>().is_some_and(|e| e.is_bug())
}

/// The hint of one error of a chain, when it is a library error that offers one. Not
/// `py_resolver`'s: its "no solution" report prints its hints itself.
fn library_hint(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(e) = e.downcast_ref::<fetch::Error>() {
        e.hint()
    } else if let Some(e) = e.downcast_ref::<pypi_client::Error>() {
        e.hint()
    } else if let Some(e) = e.downcast_ref::<pypi_client::sdist::SdistError>() {
        e.hint()
    } else if let Some(e) = e.downcast_ref::<debian::Error>() {
        e.hint()
    } else if let Some(e) = e.downcast_ref::<registry::Error>() {
        e.hint()
    } else if let Some(e) = e.downcast_ref::<pypi_client::ConfigError>() {
        e.hint()
    } else if let Some(e) = e.downcast_ref::<lockfile::Error>() {
        e.hint().map(str::to_string)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_error_takes_the_outermost_hint_of_the_chain() {
        let fetch = fetch::Error::HashMismatch { url: "u".into(), expected: "a".into(), actual: "b".into() };
        let err = Error::from_error(
            "cannot fetch x",
            pypi_client::Error::File { filename: "x".into(), source: fetch },
        );
        // The bytes are not what the index says: not the network's fault, retrying with the
        // page read again is what helps.
        assert!(!err.is_network() && err.is_hash_mismatch());
        assert!(err.hint().is_some_and(|h| h.contains("--refresh")), "{:?}", err.hint());

        let offline = pypi_client::Error::Offline { package: "p".into(), url: "u".into() };
        let err = Error::from_error("no page", offline);
        assert_eq!(err.hint(), Some("run once without --offline to fill the cache"));
        assert!(!err.to_string().contains("hint"));
    }

    #[test]
    fn a_panicked_solver_is_a_bug() {
        let err = py_resolver::ResolveError::Panicked { target: "t".into() };
        assert!(Error::from_error(err.to_string(), err).is_internal());
        assert!(Error::internal("x").with_hint("y").hint().is_none());
    }
}
