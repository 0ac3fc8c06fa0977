//! Signing container images the way sigstore's clients (cosign, skopeo, podman) read it,
//! with keys the user holds: no certificate, no transparency log. Pure: no I/O.
//!
//! - [`PrivateKey`]: an ECDSA P-256 key, generated here or read from the encrypted PEM that
//!   cosign and skopeo write (`ENCRYPTED SIGSTORE PRIVATE KEY`: scrypt + NaCl secretbox over
//!   PKCS#8); [`PublicKey`]: its PKIX `PUBLIC KEY` PEM.
//! - [`Payload`]: the "simple signing" document a signature covers: the image's manifest
//!   digest and the repository it was signed for.
//! - [`Error`]: what is wrong with a key, a passphrase, a payload or a signature.

mod encrypted;
mod error;
mod keys;
mod payload;
mod pem;

pub use error::Error;
pub use keys::{PrivateKey, PublicKey};
pub use payload::{Payload, PAYLOAD_TYPE};
