//! The envelope sigstore's tools put around a private key: scrypt derives a 32-byte key from
//! the passphrase, NaCl's secretbox (XSalsa20-Poly1305, tag first) seals the PKCS#8 bytes,
//! and a JSON document records the parameters, with byte strings in padded base64:
//! `{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":…},
//!   "cipher":{"name":"nacl/secretbox","nonce":…},"ciphertext":…}`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::Error;

/// What cosign and skopeo write: N = 2^15, r = 8, p = 1 (32 MiB, a fraction of a second).
const LOG_N: u8 = 15;
const R: u32 = 8;
const P: u32 = 1;
/// The most memory (128·r·N bytes) and work a key file may ask of us: 256 MiB.
const MAX_SCRYPT_MEMORY: u64 = 256 * 1024 * 1024;

#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// Seals `plaintext` under `passphrase`: the envelope's JSON bytes.
pub(crate) fn seal(plaintext: &[u8], passphrase: &[u8]) -> Result<Vec<u8>, Error> {
    let rng = SystemRandom::new();
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    rng.fill(&mut salt).map_err(|_| Error::Random)?;
    rng.fill(&mut nonce).map_err(|_| Error::Random)?;
    let key = derive(passphrase, &salt, LOG_N, R, P)?;
    let cipher = XSalsa20Poly1305::new(key.as_ref().into());
    let sealed = cipher
        .encrypt(&nonce.into(), plaintext)
        .map_err(|_| Error::Envelope("the key cannot be encrypted".into()))?;
    let envelope = Envelope {
        kdf: Kdf {
            name: "scrypt".into(),
            params: ScryptParams { n: 1 << LOG_N, r: R, p: P },
            salt: STANDARD.encode(salt),
        },
        cipher: Cipher { name: "nacl/secretbox".into(), nonce: STANDARD.encode(nonce) },
        ciphertext: STANDARD.encode(sealed),
    };
    Ok(serde_json::to_vec(&envelope).expect("the envelope serializes"))
}

/// Opens the envelope `json` with `passphrase`: the plaintext.
pub(crate) fn open(json: &[u8], passphrase: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    let bad = |reason: String| Error::Envelope(reason);
    let envelope: Envelope =
        serde_json::from_slice(json).map_err(|e| bad(format!("not the expected JSON: {e}")))?;
    if envelope.kdf.name != "scrypt" {
        return Err(bad(format!("key derivation `{}` is not supported (only scrypt)", envelope.kdf.name)));
    }
    if envelope.cipher.name != "nacl/secretbox" {
        return Err(bad(format!("cipher `{}` is not supported (only nacl/secretbox)", envelope.cipher.name)));
    }
    let ScryptParams { n, r, p } = envelope.kdf.params;
    if n < 2 || !n.is_power_of_two() {
        return Err(bad(format!("scrypt N = {n} is not a power of two")));
    }
    let memory = 128u64.saturating_mul(u64::from(r)).saturating_mul(n);
    if r == 0 || p == 0 || memory > MAX_SCRYPT_MEMORY || p > 16 {
        return Err(bad(format!(
            "scrypt parameters N = {n}, r = {r}, p = {p} ask for more work than allowed"
        )));
    }
    let b64 = |what: &str, text: &str| {
        STANDARD.decode(text).map_err(|e| bad(format!("the {what} is not base64: {e}")))
    };
    let salt = b64("salt", &envelope.kdf.salt)?;
    let nonce: [u8; 24] = b64("nonce", &envelope.cipher.nonce)?
        .try_into()
        .map_err(|_| bad("the nonce is not 24 bytes".into()))?;
    let sealed = b64("ciphertext", &envelope.ciphertext)?;
    let key = derive(passphrase, &salt, n.trailing_zeros() as u8, r, p)?;
    let cipher = XSalsa20Poly1305::new(key.as_ref().into());
    let plaintext = cipher.decrypt(&nonce.into(), sealed.as_slice()).map_err(|_| Error::WrongPassphrase)?;
    Ok(Zeroizing::new(plaintext))
}

fn derive(passphrase: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32) -> Result<Zeroizing<[u8; 32]>, Error> {
    let params = scrypt::Params::new(log_n, r, p, 32)
        .map_err(|e| Error::Envelope(format!("scrypt parameters rejected: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(passphrase, salt, &params, key.as_mut())
        .map_err(|e| Error::Envelope(format!("scrypt failed: {e}")))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open() {
        let sealed = seal(b"secret bytes", b"pass").unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&sealed).unwrap();
        assert_eq!(doc["kdf"]["params"], serde_json::json!({"N": 32768, "r": 8, "p": 1}));
        assert_eq!(doc["cipher"]["name"], "nacl/secretbox");
        // Tag (16) + plaintext.
        assert_eq!(STANDARD.decode(doc["ciphertext"].as_str().unwrap()).unwrap().len(), 16 + 12);
        assert_eq!(open(&sealed, b"pass").unwrap().as_slice(), b"secret bytes");
        assert!(matches!(open(&sealed, b"other"), Err(Error::WrongPassphrase)));
    }

    #[test]
    fn hostile_envelopes_are_errors() {
        let sealed = seal(b"x", b"pass").unwrap();
        let mut doc: serde_json::Value = serde_json::from_slice(&sealed).unwrap();
        doc["kdf"]["params"]["N"] = serde_json::json!(1u64 << 40);
        let text = serde_json::to_vec(&doc).unwrap();
        assert!(open(&text, b"pass").unwrap_err().to_string().contains("more work"));
        doc["kdf"]["params"]["N"] = serde_json::json!(1000);
        assert!(open(&serde_json::to_vec(&doc).unwrap(), b"pass")
            .unwrap_err()
            .to_string()
            .contains("power of two"));
        assert!(open(b"{}", b"pass").is_err());
        assert!(open(b"\xff", b"pass").is_err());
    }
}
