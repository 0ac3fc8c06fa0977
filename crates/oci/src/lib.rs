//! OCI image-spec types and the places images live on disk.
//!
//! - [`Digest`]: `sha256:<hex>`, validated (the `content-digest` crate's, re-exported so
//!   image-side code needs only `oci`).
//! - [`media_type`]: OCI and Docker v2 schema 2 media types, and what kind each is.
//! - [`spec`]: [`Descriptor`], [`Platform`], [`ImageManifest`], [`ImageIndex`],
//!   [`ImageConfig`], with the spec's JSON names and deterministic serialization.
//! - [`OciLayout`]: an OCI image layout directory: atomic, content-addressed blob writes,
//!   refs in `index.json`, verified reads.
//! - [`write_docker_archive`]: one platform of a layout as a `docker load` tar.

mod atomic;
mod docker_archive;
mod error;
mod hashing;
mod layout;
pub mod media_type;
pub mod spec;
mod staged;

pub use content_digest::{Digest, DigestError};
pub use docker_archive::write_docker_archive;
pub use error::Error;
pub use layout::{Blob, BlobWriter, OciLayout, VerifiedBlob};
pub use spec::{
    Descriptor, History, ImageConfig, ImageIndex, ImageManifest, Platform, PlatformError, RootFs,
    RuntimeConfig, SCHEMA_VERSION,
};
pub use staged::{remove_active, remove_stale, StagedLayout, StagingDir};
