//! The two files a marqo-base user keeps: the manifest `marqo-base.toml` (what goes into the
//! image) and the lock `marqo-base.lock` (every artifact by name, size and sha256, per
//! platform, and the fingerprint of the inputs it came from).
//!
//! - [`manifest`]: the manifest's types; [`Manifest::read`] reports unknown keys and bad
//!   values with file, line, column, key and a hint.
//! - [`lock`]: the lock's types, its canonical TOML, atomic writes.
//! - [`inputs`]: the inputs fingerprint and the freshness check behind `lock --check`.
//! - [`coverage`]: whether the lock's entries cover what the manifest asks (`lock --check`).
//! - [`TargetPlatform`]: `linux/amd64`, `linux/arm64`.
//! - [`Digest`]: the sha256 type of the lock, shared with the image side (`content-digest`).

pub mod coverage;
mod de;
mod diag;
mod error;
pub mod inputs;
pub mod lock;
pub mod manifest;
mod platform;
mod toml_out;

pub use content_digest::Digest;
pub use coverage::PythonRoot;
pub use error::{Error, ManifestError, ParseError};
pub use inputs::{inputs_fingerprint, read_ca_certificate, read_path_digest, Freshness, Inputs, PathDigest};
pub use lock::{
    FileRef, Lock, LockedBase, LockedDebian, LockedFile, LockedPython, LockedSource, LOCK_HEADER,
    LOCK_VERSION,
};
pub use manifest::{
    Debian, DebianSource, FileEntry, FileSource, Image, Index, Manifest, Python, ROLLING_SUITES,
};
pub use platform::{PlatformError, TargetPlatform};
