//! What can go wrong while talking to indexes. URLs in messages are redacted.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::simple::ParseError;

/// An error from the registry client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The index configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// An index page could not be fetched.
    #[error("cannot fetch the index page of `{package}` ({url})")]
    Page {
        /// The project asked for.
        package: String,
        /// The redacted page URL.
        url: String,
        /// Why.
        #[source]
        source: fetch::Error,
    },

    /// An index page could not be read.
    #[error("cannot read the index page of `{package}` ({url})")]
    Parse {
        /// The project asked for.
        package: String,
        /// The redacted page URL.
        url: String,
        /// Why.
        #[source]
        source: ParseError,
    },

    /// Offline, and the cache does not hold the page.
    #[error("`{package}` is not in the cache, and --offline forbids fetching {url}")]
    Offline {
        /// The project asked for.
        package: String,
        /// The redacted page URL.
        url: String,
    },

    /// A local find-links location could not be listed.
    #[error("cannot list the find-links location {path}")]
    FindLinks {
        /// The directory or file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// A distribution file (or its metadata) could not be fetched.
    #[error("cannot fetch {filename}")]
    File {
        /// The distribution's file name.
        filename: String,
        /// Why.
        #[source]
        source: fetch::Error,
    },

    /// Metadata was asked of a file that is not a wheel.
    #[error("{filename} is not a wheel; its metadata comes from building it")]
    NotAWheel {
        /// The distribution's file name.
        filename: String,
    },

    /// A PEP 658 metadata file does not match the hash the index gave for it.
    #[error("the metadata file of {filename} ({url}) has sha256 {actual}, but the index says {expected}")]
    MetadataHash {
        /// The distribution's file name.
        filename: String,
        /// The redacted `.metadata` URL.
        url: String,
        /// The digest the index gave.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },

    /// A wheel's zip structure cannot be used.
    #[error("{filename} is not a valid wheel: {reason}")]
    BadWheel {
        /// The distribution's file name.
        filename: String,
        /// What is wrong.
        reason: String,
    },

    /// The zip reader rejected a wheel.
    #[error("{filename} is not a valid wheel")]
    Zip {
        /// The distribution's file name.
        filename: String,
        /// Why.
        #[source]
        source: zip::result::ZipError,
    },

    /// Reading a downloaded or local wheel failed.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// A background task (hashing, unzipping) panicked or was cancelled.
    #[error("a background task failed")]
    Task(#[source] tokio::task::JoinError),
}

impl Error {
    /// What to do about it, shown after the error and its causes.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Config(e) => e.hint(),
            Error::Offline { .. } => Some("run once without --offline to fill the cache".into()),
            Error::MetadataHash { .. } => Some("retry with --refresh".into()),
            Error::File {
                source: fetch::Error::HashMismatch { .. } | fetch::Error::SizeMismatch { .. },
                ..
            } => Some(
                "the file differs from the sha256 or size the index page gives for it; if the page \
                 in the cache is old, retry with --refresh"
                    .into(),
            ),
            _ => None,
        }
    }
}
