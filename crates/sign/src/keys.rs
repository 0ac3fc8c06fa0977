//! ECDSA P-256 keys as sigstore's tools store them: the private key as PKCS#8 inside the
//! encrypted envelope, PEM `ENCRYPTED SIGSTORE PRIVATE KEY` (cosign's older label
//! `ENCRYPTED COSIGN PRIVATE KEY` is read too); the public key as PKIX SubjectPublicKeyInfo,
//! PEM `PUBLIC KEY`. Signatures are ASN.1 DER over SHA-256, as cosign makes them.

use content_digest::Digest;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use zeroize::Zeroizing;

use crate::{encrypted, pem, Error};

/// The label sigstore's tools write.
const PRIVATE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The label cosign wrote before; read, never written.
const COSIGN_PRIVATE_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
const PUBLIC_LABEL: &str = "PUBLIC KEY";

/// The SubjectPublicKeyInfo of every P-256 key up to its point: SEQUENCE { SEQUENCE {
/// ecPublicKey, prime256v1 }, BIT STRING (66 bytes: no unused bits, then the point) }.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
    0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// An uncompressed P-256 point: 0x04, X, Y.
const POINT_LEN: usize = 65;

/// An ECDSA P-256 signing key. Its `Debug` shows the public key's fingerprint only.
pub struct PrivateKey {
    pkcs8: Zeroizing<Vec<u8>>,
    pair: EcdsaKeyPair,
}

/// An ECDSA P-256 public key (an uncompressed point).
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    point: [u8; POINT_LEN],
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey(public {})", self.public_key().fingerprint())
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

impl PrivateKey {
    /// A new random key.
    pub fn generate() -> Result<PrivateKey, Error> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| Error::Random)?;
        PrivateKey::from_pkcs8(Zeroizing::new(doc.as_ref().to_vec()))
    }

    /// The key of PKCS#8 DER `pkcs8` (with its public key inside, as Go's
    /// `x509.MarshalPKCS8PrivateKey` and ring write it).
    fn from_pkcs8(pkcs8: Zeroizing<Vec<u8>>) -> Result<PrivateKey, Error> {
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|e| {
            Error::UnsupportedKey(format!("the private key is not an ECDSA P-256 PKCS#8 key ({e})"))
        })?;
        Ok(PrivateKey { pkcs8, pair })
    }

    /// The key in the PEM `text` (as [`Self::to_encrypted_pem`], cosign or skopeo wrote it),
    /// decrypted with `passphrase`.
    pub fn from_encrypted_pem(text: &str, passphrase: &[u8]) -> Result<PrivateKey, Error> {
        let (_, envelope) =
            pem::decode(text, &[PRIVATE_LABEL, COSIGN_PRIVATE_LABEL], "encrypted private key")?;
        PrivateKey::from_pkcs8(encrypted::open(&envelope, passphrase)?)
    }

    /// The key encrypted with `passphrase`, as PEM `ENCRYPTED SIGSTORE PRIVATE KEY`.
    pub fn to_encrypted_pem(&self, passphrase: &[u8]) -> Result<String, Error> {
        Ok(pem::encode(PRIVATE_LABEL, &encrypted::seal(&self.pkcs8, passphrase)?))
    }

    /// Its public key.
    pub fn public_key(&self) -> PublicKey {
        let mut point = [0u8; POINT_LEN];
        point.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey { point }
    }

    /// The ECDSA signature (ASN.1 DER) of SHA-256 over `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let signature = self.pair.sign(&SystemRandom::new(), message).map_err(|_| Error::Random)?;
        Ok(signature.as_ref().to_vec())
    }
}

impl PublicKey {
    /// The key of the PEM `PUBLIC KEY` in `text`; any key but ECDSA P-256 is an error.
    pub fn from_pem(text: &str) -> Result<PublicKey, Error> {
        let (_, der) = pem::decode(text, &[PUBLIC_LABEL], "public key")?;
        PublicKey::from_spki(&der)
    }

    /// The key of the SubjectPublicKeyInfo DER `der`.
    pub fn from_spki(der: &[u8]) -> Result<PublicKey, Error> {
        match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
            Some(point) if point.len() == POINT_LEN && point[0] == 0x04 => {
                let mut out = [0u8; POINT_LEN];
                out.copy_from_slice(point);
                Ok(PublicKey { point: out })
            }
            _ => Err(Error::UnsupportedKey(format!(
                "the public key is {}; only ECDSA P-256 keys are supported",
                key_kind(der)
            ))),
        }
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn to_spki(&self) -> Vec<u8> {
        [&P256_SPKI_PREFIX[..], &self.point[..]].concat()
    }

    /// As PEM `PUBLIC KEY`.
    pub fn to_pem(&self) -> String {
        pem::encode(PUBLIC_LABEL, &self.to_spki())
    }

    /// The SHA-256 of the SubjectPublicKeyInfo DER: how messages name a key.
    pub fn fingerprint(&self) -> Digest {
        Digest::of_bytes(&self.to_spki())
    }

    /// Whether `signature` (ASN.1 DER) is this key's over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), Error> {
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &self.point[..])
            .verify(message, signature)
            .map_err(|_| Error::BadSignature)
    }
}

/// What kind of key a SubjectPublicKeyInfo that is not P-256 holds, for the error.
fn key_kind(der: &[u8]) -> &'static str {
    let has = |oid: &[u8]| der.windows(oid.len()).any(|w| w == oid);
    if has(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]) {
        "an RSA key"
    } else if has(&[0x06, 0x03, 0x2b, 0x65, 0x70]) {
        "an Ed25519 key"
    } else if has(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]) {
        "an elliptic-curve key on another curve"
    } else {
        "not a public key this tool knows"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_encrypt_decrypt_sign_verify() {
        let key = PrivateKey::generate().unwrap();
        let pem_text = key.to_encrypted_pem(b"correct horse").unwrap();
        assert!(pem_text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        let back = PrivateKey::from_encrypted_pem(&pem_text, b"correct horse").unwrap();
        assert_eq!(back.public_key(), key.public_key());
        let public = PublicKey::from_pem(&key.public_key().to_pem()).unwrap();
        assert_eq!(public, key.public_key());
        assert_eq!(public.to_spki().len(), 91);

        let signature = back.sign(b"payload").unwrap();
        public.verify(b"payload", &signature).unwrap();
        assert!(matches!(public.verify(b"payloaD", &signature), Err(Error::BadSignature)));
        let other = PrivateKey::generate().unwrap().public_key();
        assert!(matches!(other.verify(b"payload", &signature), Err(Error::BadSignature)));
        assert!(public.verify(b"payload", b"\x30\x00").is_err());
        // Nothing secret in Debug.
        assert!(format!("{back:?}").starts_with("PrivateKey(public sha256:"));
    }

    #[test]
    fn wrong_passphrase_and_corrupt_files() {
        let key = PrivateKey::generate().unwrap();
        let pem_text = key.to_encrypted_pem(b"right").unwrap();
        assert!(matches!(PrivateKey::from_encrypted_pem(&pem_text, b"wrong"), Err(Error::WrongPassphrase)));
        assert!(matches!(PrivateKey::from_encrypted_pem("hello", b"right"), Err(Error::Pem { .. })));
        let public = key.public_key().to_pem();
        assert!(PrivateKey::from_encrypted_pem(&public, b"right")
            .unwrap_err()
            .to_string()
            .contains("PUBLIC KEY"));
        let body = pem::encode(PRIVATE_LABEL, b"{\"not\":\"an envelope\"}");
        assert!(matches!(PrivateKey::from_encrypted_pem(&body, b"right"), Err(Error::Envelope(_))));
        // A sealed plaintext that is not PKCS#8.
        let junk = pem::encode(PRIVATE_LABEL, &encrypted::seal(b"junk", b"right").unwrap());
        assert!(matches!(PrivateKey::from_encrypted_pem(&junk, b"right"), Err(Error::UnsupportedKey(_))));
        // The older cosign label is read.
        let cosign = pem_text.replace("SIGSTORE", "COSIGN");
        assert_eq!(PrivateKey::from_encrypted_pem(&cosign, b"right").unwrap().public_key(), key.public_key());
    }

    #[test]
    fn public_keys_are_parsed_strictly() {
        let key = PrivateKey::generate().unwrap().public_key();
        let mut der = key.to_spki();
        der.push(0);
        assert!(PublicKey::from_spki(&der).is_err());
        assert!(PublicKey::from_spki(&der[..50]).is_err());
        // An RSA SubjectPublicKeyInfo's start.
        let rsa = [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
        assert!(PublicKey::from_spki(&rsa).unwrap_err().to_string().contains("RSA"));
    }
}
