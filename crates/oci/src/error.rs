//! What can go wrong reading or writing an image on disk. Every error names the file or
//! blob it is about.

use std::path::PathBuf;

use crate::Digest;

/// An error from an OCI layout or a docker-archive.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory cannot be read, written, created or renamed.
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        /// What was being done: `read`, `write`, `create`, ...
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A JSON file or blob does not parse as the document it should be.
    #[error("`{}` is not a valid {what}: {source}", path.display())]
    Json {
        /// The file or blob.
        path: PathBuf,
        /// The document expected: `image index`, `image manifest`, ...
        what: &'static str,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },

    /// A value cannot be serialized to JSON (a map with non-string keys, for example).
    #[error("cannot serialize a {media_type} document: {source}")]
    Serialize {
        /// The media type it was to be stored as.
        media_type: String,
        /// The error.
        #[source]
        source: serde_json::Error,
    },

    /// A blob's content does not hash to its digest: it is corrupt.
    #[error("blob `{}` is corrupt: its content hashes to {actual}, not {expected}", path.display())]
    DigestMismatch {
        /// The blob file.
        path: PathBuf,
        /// The digest it is stored under.
        expected: Digest,
        /// The digest of its content.
        actual: Digest,
    },

    /// A blob's size differs from the size its descriptor gives.
    #[error("blob `{}` has {actual} bytes, but its descriptor says {expected}", path.display())]
    SizeMismatch {
        /// The blob file.
        path: PathBuf,
        /// The size in the descriptor.
        expected: u64,
        /// The size on disk.
        actual: u64,
    },

    /// A blob the layout should hold is missing.
    #[error("blob {digest} is missing from the layout `{}` (expected at `{}`)", layout.display(), path.display())]
    MissingBlob {
        /// The layout directory.
        layout: PathBuf,
        /// The blob's digest.
        digest: Digest,
        /// Where it should be.
        path: PathBuf,
    },

    /// A directory is not an OCI image layout (no `oci-layout` file) or has a version we do not read.
    #[error("`{}` is not an OCI image layout: {reason}", path.display())]
    NotALayout {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A new layout was to be created in a directory that already has files.
    #[error("cannot create an OCI image layout in `{}`: the directory is not empty", path.display())]
    NotEmpty {
        /// The directory.
        path: PathBuf,
    },

    /// A reference name is not in the layout's `index.json`.
    #[error("`{name}` is not in `{}` (refs: {available})", path.display())]
    RefNotFound {
        /// The layout's `index.json`.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// The names it has, comma-separated, or `none`.
        available: String,
    },

    /// A document has a `schemaVersion` other than 2.
    #[error("`{}` has schemaVersion {found}; only 2 is supported", path.display())]
    SchemaVersion {
        /// The file or blob.
        path: PathBuf,
        /// The version found.
        found: u32,
    },

    /// A descriptor points at a different kind of document than the one asked for.
    #[error("blob {digest} has media type `{found}`; expected {expected}")]
    MediaType {
        /// The blob's digest.
        digest: Digest,
        /// Its media type.
        found: String,
        /// What was expected.
        expected: &'static str,
    },

    /// Indexes nest deeper than the limit of the walk.
    #[error("image index {digest} is nested more than {limit} indexes deep")]
    TooDeep {
        /// The index too deep.
        digest: Digest,
        /// How many levels are followed.
        limit: usize,
    },

    /// A docker-archive entry cannot be written.
    #[error("cannot write `{entry}` into the docker-archive `{}`: {source}", path.display())]
    ArchiveEntry {
        /// The archive being written.
        path: PathBuf,
        /// The entry's name in the archive.
        entry: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { action, path, source }
    }
}
