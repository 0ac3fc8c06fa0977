//! What can go wrong talking to a registry or reading credentials. URLs in messages are
//! redacted; secrets never appear.

use std::path::PathBuf;

use oci::Digest;

use crate::ReferenceError;

/// An error from a registry operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An image reference or registry name does not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),

    /// The OCI image layout to push from or pull into cannot be used.
    #[error("cannot use the OCI image layout `{}`", path.display())]
    Layout {
        /// The layout directory.
        path: PathBuf,
        /// What the layout reported.
        #[source]
        source: oci::Error,
    },

    /// A local file cannot be read or written.
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Docker's `config.json` cannot be read or written.
    #[error("Docker's credential file `{}` {reason}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, as a phrase after the file name.
        reason: String,
    },

    /// A credential helper (`docker-credential-NAME`) failed.
    #[error("the credential helper `docker-credential-{helper}` failed to {action} credentials for {server}: {reason}")]
    Helper {
        /// The helper's name (after `docker-credential-`).
        helper: String,
        /// `get`, `store` or `erase`.
        action: &'static str,
        /// The server URL it was asked about.
        server: String,
        /// What went wrong.
        reason: String,
    },

    /// The registry refused our credentials (or wants some and we have none).
    #[error("{registry} refused access{}: {detail}", scope.as_ref().map(|s| format!(" to {s}")).unwrap_or_default())]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// The repository or scope asked for, if any.
        scope: Option<String>,
        /// What the registry said.
        detail: String,
    },

    /// The registry names a token server (the `realm` of its Bearer challenge) that our
    /// credentials and token requests may not go to: plain HTTP after an HTTPS registry,
    /// plain HTTP to a host that is neither loopback nor the registry the user marked
    /// insecure, or a URL that is not http(s).
    #[error("{registry} sends for tokens to {realm}, which is refused: {reason}")]
    TokenRealm {
        /// The registry host.
        registry: String,
        /// The realm, redacted.
        realm: String,
        /// Why it is refused.
        reason: String,
        /// What to do about it.
        hint: String,
    },

    /// The registry has no such manifest, tag or repository.
    #[error("{what} is not on {registry}")]
    NotFound {
        /// What was asked for: `manifest 127.0.0.1:5000/base:1`, ...
        what: String,
        /// The registry host.
        registry: String,
    },

    /// A request could not be sent or its reply not read, after retries.
    #[error("{method} {url} failed after {attempts} attempt(s): {reason}")]
    Request {
        /// The HTTP method.
        method: String,
        /// The redacted URL.
        url: String,
        /// How many times it was tried.
        attempts: u32,
        /// The transport error, with its causes.
        reason: String,
    },

    /// The registry answered with an error status.
    #[error("{method} {url} answered HTTP {status}{}{detail}", if *attempts > 1 { format!(" after {attempts} attempts") } else { String::new() })]
    Status {
        /// The HTTP method.
        method: String,
        /// The redacted URL.
        url: String,
        /// The status code.
        status: u16,
        /// The registry's error codes and messages (starting with `: `), or empty.
        detail: String,
        /// How many times it was tried.
        attempts: u32,
    },

    /// The registry's reply does not follow the distribution API.
    #[error("{url}: {reason}")]
    Protocol {
        /// The redacted URL.
        url: String,
        /// What is wrong with the reply.
        reason: String,
    },

    /// A reply held in memory (a manifest, a tag list, a token) is larger than we accept.
    #[error("the {what} from {url} is larger than {}, the limit for one {what}; stopped reading it", fetch::format_size(*limit))]
    TooLarge {
        /// `manifest`, `tag list page`, `token reply`, ...
        what: &'static str,
        /// The redacted URL.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },

    /// Content from the registry does not hash to the digest it should have.
    #[error(
        "{what} from {url} is corrupt: its content hashes to {actual}, not {expected}; nothing was written"
    )]
    DigestMismatch {
        /// `blob`, `manifest`, ...
        what: &'static str,
        /// The redacted URL.
        url: String,
        /// The digest it should have.
        expected: Digest,
        /// The digest of what arrived.
        actual: Digest,
    },

    /// A blob of the layout being pushed does not hash to its digest, and the registry
    /// refused it (`DIGEST_INVALID`): the layout was changed after it was written.
    #[error(
        "the blob `{}` of the layout is corrupt: its content hashes to {actual}, not {expected}, and the registry refused it",
        path.display()
    )]
    CorruptLocalBlob {
        /// The blob file.
        path: PathBuf,
        /// The digest it is stored under.
        expected: Digest,
        /// The digest of its content.
        actual: Digest,
    },

    /// Something we cannot handle: a schema 1 manifest, an unknown media type, a platform the
    /// image does not have.
    #[error("{0}")]
    Unsupported(String),

    /// An index lists something that is neither an image manifest nor an index (an
    /// artifact, a type we do not know): a copy of every image would point at it.
    #[error("{reference} lists {digest} of media type `{media_type}`, which is neither an image manifest nor an image index; it cannot be pulled whole")]
    UnknownChild {
        /// What was pulled.
        reference: String,
        /// The entry's digest.
        digest: Digest,
        /// The entry's media type.
        media_type: String,
    },

    /// Indexes nest deeper than [`crate::pull::MAX_INDEX_DEPTH`].
    #[error("{reference} nests image indexes more than {limit} deep (at {digest}); stopped following them")]
    TooDeep {
        /// What was pulled.
        reference: String,
        /// The index one level too deep.
        digest: Digest,
        /// The limit.
        limit: usize,
    },

    /// The layout a pull assembled does not hold every blob its index reaches; it was not
    /// moved into place.
    #[error("the pulled copy of {reference} would be incomplete")]
    IncompleteLayout {
        /// What was pulled.
        reference: String,
        /// What is missing.
        #[source]
        source: oci::Error,
    },

    /// Storing the signatures would make a signature manifest `verify` cannot read back.
    #[error("cannot add signatures to {target}: {reason}; nothing was signed and no tag was moved")]
    SignatureLimit {
        /// The signature manifest, `HOST/REPO:sha256-HEX.sig`.
        target: String,
        /// What limit it would pass.
        reason: String,
    },

    /// The cache directory cannot be used.
    #[error("cannot use the cache")]
    Cache(#[source] fetch::Error),
}

impl Error {
    /// Whether the network or the registry failed (exit 3), rather than the user's input,
    /// files or credentials (exit 2).
    pub fn is_network(&self) -> bool {
        matches!(
            self,
            Error::Request { .. }
                | Error::Status { .. }
                | Error::Protocol { .. }
                | Error::TooLarge { .. }
                | Error::DigestMismatch { .. }
        )
    }

    /// Advice to print with this error, if any.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Unauthorized { registry, .. } => Some(format!(
                "log in with `echo \"$TOKEN\" | marqo-base login {registry} --username NAME --password-stdin`, \
                 or check that the account may push to / pull from this repository"
            )),
            Error::TokenRealm { hint, .. } => Some(hint.clone()),
            Error::Reference(_) => Some("write HOST[:PORT]/REPOSITORY[:TAG], such as 127.0.0.1:5000/marqo-base:1".into()),
            Error::Request { url, .. } if url.starts_with("https://") => Some(
                "check that the registry is up; a registry with a private CA needs SSL_CERT_FILE; a \
                 plain-HTTP registry on another host needs --insecure"
                    .into(),
            ),
            Error::Request { .. } | Error::Status { .. } => Some("check that the registry is up and retry".into()),
            Error::DigestMismatch { .. } => Some("retry; if it persists the registry or a proxy alters content".into()),
            Error::TooLarge { .. } => Some(
                "no registry sends this much here: check that the reference names a real registry \
                 (not a proxy's or a captive portal's answer)"
                    .into(),
            ),
            Error::UnknownChild { .. } => Some(
                "pass --platform OS/ARCH (once per platform) to pull only the images it holds; nothing was written"
                    .into(),
            ),
            Error::TooDeep { .. } => {
                Some("no image needs indexes nested this deep: ask who pushed it to flatten the index".into())
            }
            Error::IncompleteLayout { .. } => Some(
                "the registry's index points at content the pull did not bring; nothing was written \
                 (pass --platform OS/ARCH to pull only some images)"
                    .into(),
            ),
            Error::SignatureLimit { .. } => Some(format!(
                "a manifest keeps at most {} signatures (docs/signing.md): remove signatures no \
                 one checks any more (cosign clean, or delete the .sig manifest and sign again), \
                 or push a new image",
                crate::signature::MAX_SIGNATURES
            )),
            Error::CorruptLocalBlob { .. } => {
                Some("the layout was altered after it was written: build or pull it again, then push".into())
            }
            Error::Layout { source: oci::Error::DigestMismatch { .. }, .. } => Some(
                "a file changed on disk after it was checked; run the command again (a damaged \
                 cache file was removed and is fetched afresh)"
                    .into(),
            ),
            _ => None,
        }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { action, path, source }
    }
}
