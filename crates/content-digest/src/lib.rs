//! The content digest every crate passes around: `sha256:<64 lowercase hex>`, validated
//! once where text comes in (a lock, a layer cache entry, a registry reply, an OCI
//! document) and typed from there on.
//!
//! Its own crate so that the lock (`lockfile`, which knows nothing of images) and the image
//! side (`oci`, which re-exports it, `image`, `registry`) share one type without either
//! depending on the other.

mod digest;

pub use digest::{Digest, DigestError};
