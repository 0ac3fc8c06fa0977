//! What can go wrong while fetching or caching. Every URL in a message is redacted.

use std::path::PathBuf;

/// An error from the HTTP client or the cache.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Offline mode forbids every network request.
    #[error("cannot fetch {url}: network access is disabled (--offline)")]
    Offline {
        /// The redacted URL that was asked for.
        url: String,
    },

    /// The request could not be sent or its reply not read, even after retries.
    #[error("request to {url} failed after {attempts} attempt(s)")]
    Network {
        /// The redacted URL.
        url: String,
        /// How many times the request was tried.
        attempts: u32,
        /// What to do, when the cause suggests something.
        hint: Option<&'static str>,
        /// The last transport error (its own copy of the URL removed).
        #[source]
        source: reqwest::Error,
    },

    /// The server answered with a status we do not accept.
    #[error("{url} answered HTTP {status} after {attempts} attempt(s)")]
    Status {
        /// The redacted URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// How many times the request was tried.
        attempts: u32,
        /// What to do, when the cause suggests something.
        hint: Option<&'static str>,
    },

    /// The body of a reply was larger than we are willing to hold in memory (or, for a
    /// download of unknown size, to write).
    #[error("the {what} at {url} is larger than {}, the limit for one {what}; stopped reading it", format_size(*limit))]
    TooLarge {
        /// What the reply is: `index page`, `Release file`, `download`, ...
        what: &'static str,
        /// The redacted URL.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },

    /// A download went past the size the index or lock gives for it.
    #[error("the file at {url} should be {expected} bytes, but the server sent {sent} or more; stopped the download")]
    SizeMismatch {
        /// The redacted URL.
        url: String,
        /// The size we were told to expect.
        expected: u64,
        /// How many bytes had arrived (or the `Content-Length`) when we stopped.
        sent: u64,
    },

    /// A downloaded file does not have the digest that the index promised.
    #[error("the file at {url} has sha256 {actual}, but {expected} was expected")]
    HashMismatch {
        /// The redacted URL.
        url: String,
        /// The digest we were told to expect.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },

    /// A cached file did not match its digest and was removed, and `--offline` forbids
    /// fetching it again.
    #[error(
        "the cached copy of {url} ({}) was damaged and has been removed; --offline forbids fetching it again",
        path.display()
    )]
    DamagedOffline {
        /// The redacted URL it came from.
        url: String,
        /// The cache file that was removed.
        path: PathBuf,
    },

    /// A string that should be a sha256 hex digest is not one.
    #[error("`{value}` is not a sha256 digest (64 hex digits)")]
    InvalidDigest {
        /// The string given.
        value: String,
    },

    /// A `file://` URL that does not name a local path.
    #[error("{url} is not a local file path")]
    NotAFilePath {
        /// The redacted URL.
        url: String,
    },

    /// Reading a local file named by a `file://` URL failed.
    #[error("cannot read {path} (from {url})")]
    ReadFile {
        /// The redacted URL.
        url: String,
        /// The local path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A cache or temporary file could not be read or written.
    #[error("cannot {action} {path}")]
    Io {
        /// What we were doing (`write`, `rename into`, ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A CA bundle given by the user cannot be used.
    #[error("cannot use the CA bundle {path}: {reason}")]
    CaBundle {
        /// The bundle file.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },

    /// A cache namespace that is not a relative path of plain names (a bug in the caller).
    #[error("`{namespace}` is not a valid cache namespace")]
    InvalidNamespace {
        /// The namespace given.
        namespace: String,
    },

    /// The cache directory cannot be determined from the environment.
    #[error("cannot find a cache directory: none of MARQO_BASE_CACHE_DIR, XDG_CACHE_HOME, HOME is set")]
    NoCacheDir,

    /// A server redirected where the client does not follow (HTTPS to plain HTTP, or too
    /// many times); the URLs in `why` are redacted.
    #[error("{why}")]
    Redirect {
        /// What was refused, naming both URLs.
        why: String,
    },

    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client")]
    Build(#[source] reqwest::Error),
}

impl Error {
    /// Whether the failure is the network's or a server's (exit code 3), rather than bad
    /// input or local state: transport errors, unexpected HTTP statuses, oversized replies.
    /// Not `--offline` (the user asked for it), and not a file whose bytes differ from the
    /// digest it was asked for: retrying does not change what the server has, so the lock or
    /// manifest that names the digest is what to look at.
    pub fn is_network(&self) -> bool {
        matches!(self, Error::Network { .. } | Error::Status { .. } | Error::TooLarge { .. })
    }

    /// What to do about it, shown after the error and its causes. A hash mismatch has none
    /// here: what fits depends on who named the digest (an index page, a lock, a manifest),
    /// so the caller gives it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Network { hint, .. } | Error::Status { hint, .. } => hint.map(str::to_string),
            Error::TooLarge { .. } => Some(
                "no real server sends this much here: check that the URL points at the right \
                 server (not a proxy's or a captive portal's answer)"
                    .into(),
            ),
            Error::Offline { .. } => Some("run once without --offline to fill the cache".into()),
            Error::DamagedOffline { .. } => Some("run once without --offline to fetch it again".into()),
            Error::CaBundle { .. } => Some("pass a PEM file with --cert, or set SSL_CERT_FILE".into()),
            Error::NoCacheDir => Some("set MARQO_BASE_CACHE_DIR".into()),
            Error::Redirect { .. } => Some(
                "use the URL the server redirects to, if it is HTTPS; ask the server's owner to \
                 redirect to HTTPS only"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// A byte count for messages: `512 bytes`, `64 KiB`, `128 MiB`, `32 GiB` (exact multiples
/// print whole; others with one decimal).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            return if bytes % size == 0 {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{:.1} {unit}", bytes as f64 / size as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::format_size;

    #[test]
    fn sizes() {
        assert_eq!(format_size(512), "512 bytes");
        assert_eq!(format_size(64 << 10), "64 KiB");
        assert_eq!(format_size(128 << 20), "128 MiB");
        assert_eq!(format_size(3 << 29), "1.5 GiB");
        assert_eq!(format_size(u64::MAX), "17179869184.0 GiB");
    }
}
