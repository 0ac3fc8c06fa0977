//! The lock -> image pipeline of marqo-base, as library functions the commands call (as
//! cargo's `ops`): each stage takes typed options and a [`Reporter`] and returns data or an
//! [`Error`] with its context and hint; nothing here parses arguments or prints.
//!
//! - [`python`]: pip's index configuration, the shared index [`py_resolver::IndexSource`],
//!   resolution with progress.
//! - [`debian`]: a Debian suite's session: read, resolve, fetch and unpack.
//! - [`build_env`]: sdists' build environments installed without pip.
//! - [`compile`]: requirements.in -> pinned requirements.txt files for every target.
//! - [`plan`]: manifest + lock + platforms -> the layers of each platform (pure).
//! - [`build`]: the lock -> an OCI image layout or docker-archive, per platform.
//! - [`bytecode`]: the `.pyc` of wheel layers: which interpreter compiles, its workers.
//! - [`base`]: base images from a registry or an OCI layout, pinned by digest.
//! - [`files`]: `[[file]]` entries: locked by content, downloaded hash-checked, put in layers.
//! - [`cross`]: cross-built sdists: cross compilers, an ELF reader, the abi3 checks.
//! - [`layer_cache`]: built layers by the digest of their inputs.
//! - [`lock`]: the manifest -> `marqo-base.lock`, and `lock --check`.
//! - [`env`]: the process's one tokio runtime.
//! - [`remote`]: registries: stored credentials, clients, registry errors.
//! - [`sign`]: key pairs, signatures stored at push (`push --sign`), `verify`.
//! - [`report`]: the progress trait the binary implements.

pub mod base;
pub mod build;
pub mod build_env;
pub mod bytecode;
pub mod cache;
pub mod compile;
pub mod cross;
pub mod debian;
pub mod diff;
pub mod env;
mod error;
pub mod files;
pub mod graph;
pub mod layer_cache;
pub mod lock;
pub mod outdated;
pub mod plan;
pub mod push;
pub mod python;
pub mod registry_cache;
pub mod remote;
pub mod report;
pub mod sbom;
pub mod sign;

pub use error::Error;
pub use report::{Reporter, Silent};
