//! Errors of keys, payloads and signatures. None of them carries key material or a
//! passphrase.

/// What is wrong with a key, a passphrase, a payload or a signature.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not the PEM it should be.
    #[error("not a PEM {expected}: {reason}")]
    Pem { expected: &'static str, reason: String },
    /// The encrypted key's envelope (its JSON, KDF or cipher) is not one we read.
    #[error("the encrypted private key is malformed: {0}")]
    Envelope(String),
    /// The passphrase does not open the key (or the key was changed).
    #[error("the passphrase does not decrypt the private key (wrong passphrase, or a damaged key file)")]
    WrongPassphrase,
    /// The decrypted or encoded key is not an ECDSA P-256 key.
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    /// The signature payload is not a simple-signing document.
    #[error("the signature payload is malformed: {0}")]
    Payload(String),
    /// The signature does not verify with the key.
    #[error("the signature does not verify with this public key")]
    BadSignature,
    /// The system's random number generator failed.
    #[error("the system's random number generator failed")]
    Random,
}
