//! What can go wrong, each case naming the package, relation, architecture or file involved,
//! with a hint where one helps.

use std::path::PathBuf;

use crate::deb822::SyntaxError;
use crate::relation::RelationError;

/// An error from reading, verifying, resolving or unpacking Debian packages.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A deb822 file (Packages, Release, control, sources) does not parse.
    #[error("cannot parse {file}: {source}")]
    Syntax {
        /// The file (URL, path or `.deb` member) being parsed.
        file: String,
        /// Where and what.
        #[source]
        source: SyntaxError,
    },

    /// A paragraph lacks a field it must have, or has one we cannot use.
    #[error("{file}: package `{package}`: field {field}: {reason}")]
    Field {
        /// The file.
        file: String,
        /// The package (or paragraph) concerned.
        package: String,
        /// The field name.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },

    /// A relationship field of a package does not parse.
    #[error("package `{package}` ({arch}): cannot read its {field}")]
    Relation {
        /// The package.
        package: String,
        /// The architecture being resolved.
        arch: String,
        /// `Depends`, `Pre-Depends`, ...
        field: &'static str,
        /// The parse error.
        #[source]
        source: RelationError,
    },

    /// No usable apt source was found on this host.
    #[error("no Debian source for suite `{suite}` in {searched}")]
    NoHostSource {
        /// The suite asked for (or `any`).
        suite: String,
        /// The files looked at.
        searched: String,
        /// What to do.
        hint: &'static str,
    },

    /// The keyring cannot be read or used.
    #[error("cannot use the keyring {path}: {reason}")]
    Keyring {
        /// The keyring file.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// The OpenPGP signature of a Release file does not verify with the keyring.
    #[error("the signature of {url} does not verify with {keyring}: {detail}")]
    Signature {
        /// The redacted URL of the signed file.
        url: String,
        /// The keyring used.
        keyring: PathBuf,
        /// What gpgv said.
        detail: String,
        /// What to do.
        hint: &'static str,
    },

    /// gpgv (which verifies signatures, as apt does) could not be run.
    #[error("cannot run gpgv to verify {url}")]
    Gpgv {
        /// The file being verified.
        url: String,
        /// Why it failed to start.
        #[source]
        source: std::io::Error,
    },

    /// A verified Release file does not describe what we asked for.
    #[error("{url}: {reason}")]
    Release {
        /// The redacted URL of the Release file.
        url: String,
        /// What does not fit.
        reason: String,
        /// What to do.
        hint: String,
    },

    /// A download failed or its hash did not match.
    #[error("cannot fetch {what}")]
    Fetch {
        /// What was being fetched (`Packages for amd64 of bullseye/main`, `redis-server 5:6.0.16-1 (amd64)`).
        what: String,
        /// The client's error.
        #[source]
        source: fetch::Error,
    },

    /// A compressed file does not decompress.
    #[error("cannot decompress {file}")]
    Decompress {
        /// The file or `.deb` member.
        file: String,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },

    /// A requested package is not in the index for this architecture.
    #[error("no package `{package}` for {arch}")]
    NotFound {
        /// The name asked for.
        package: String,
        /// The architecture.
        arch: String,
        /// What to do: the providers to choose from, or why nothing of that name fits.
        hint: String,
    },

    /// No choice of packages satisfies a relation (boxed: the details are large).
    #[error("{0}")]
    Unsatisfiable(Box<Unsatisfiable>),

    /// Two selected packages conflict and no other choice avoids it.
    #[error("packages conflict on {arch}: {package} {kind} `{relation}`, which {other} matches")]
    Conflict {
        /// The architecture resolved.
        arch: String,
        /// The package declaring the relation, as `name version`.
        package: String,
        /// `conflicts with` or `breaks`.
        kind: &'static str,
        /// The relation as written.
        relation: String,
        /// The package it hits, as `name version`.
        other: String,
    },

    /// A `.deb` file is malformed.
    #[error("{path}: {reason}")]
    Deb {
        /// The `.deb` file (and package, when known).
        path: String,
        /// What is wrong.
        reason: String,
    },

    /// A `.deb` holds a path that would land outside the root (`..`, an absolute escape, a
    /// write through a symlink that leaves the root).
    #[error("package `{package}` ships the unsafe path `{path}`: {reason}")]
    UnsafePath {
        /// The package.
        package: String,
        /// The path as written in its data archive.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// A certificate to trust is not one (not PEM, not X.509, a key, several in one file).
    #[error("{file}: {reason}")]
    Certificate {
        /// The file, as the manifest names it.
        file: String,
        /// What is wrong.
        reason: String,
        /// What to do.
        hint: String,
    },

    /// A file could not be read or written.
    #[error("cannot {action} {path}")]
    Io {
        /// What we were doing.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// What to do about it, shown after the error and its causes.
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            Error::NoHostSource { hint, .. } | Error::Signature { hint, .. } => hint,
            Error::Release { hint, .. } | Error::NotFound { hint, .. } | Error::Certificate { hint, .. } => {
                hint.as_str()
            }
            Error::Unsatisfiable(details) => details.hint.as_str(),
            Error::Keyring { .. } => {
                "install debian-archive-keyring, or name the keyring (--keyring PATH, or in the manifest)"
            }
            Error::Gpgv { .. } => "install the gpgv package",
            Error::Conflict { .. } => "request one of them explicitly, or drop the one you do not need",
            Error::UnsafePath { .. } => "the package is broken or malicious; it was not unpacked",
            Error::Fetch { source: fetch::Error::HashMismatch { .. }, .. } => {
                "the mirror serves a file other than the one its signed index names (a mirror \
                 caught mid-update, or one that alters files): try again later, or use another mirror"
            }
            _ => return None,
        };
        Some(hint.to_string())
    }
}

/// Shorthand for an [`Error::Io`] mapper.
pub(crate) fn io_error(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { action, path, source }
}

/// The details of [`Error::Unsatisfiable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsatisfiable {
    /// The architecture resolved.
    pub arch: String,
    /// The package with the failing relation, as `name version`.
    pub package: String,
    /// `depends on`, `pre-depends on`, `recommends`.
    pub relation_kind: &'static str,
    /// The relation as written.
    pub relation: String,
    /// Why no alternative works.
    pub reason: String,
    /// How the package came in (`request` or a chain of packages).
    pub chain: String,
    /// What to do.
    pub hint: String,
}

impl std::fmt::Display for Unsatisfiable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no solution for {}: {} {} `{}`, but {}\n  needed by: {}",
            self.arch, self.package, self.relation_kind, self.relation, self.reason, self.chain
        )
    }
}
