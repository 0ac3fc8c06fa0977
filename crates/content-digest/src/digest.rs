//! Content digests: `sha256:<64 lowercase hex>`, the only algorithm we write and accept.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// The algorithm prefix of every digest we handle.
const SHA256_PREFIX: &str = "sha256:";

/// A validated content digest, `sha256:` followed by 64 lowercase hex digits.
///
/// Parsing refuses other algorithms (the OCI spec also allows `sha512`, which no image we
/// read or write uses) and upper-case hex (the spec's grammar is lower-case only). Its text
/// (and serde) form is the whole `sha256:<hex>`; files that store the bare hex (the lock's
/// `sha256 = "<hex>"`, the cache's blob names) go through [`Digest::from_hex`] and
/// [`Digest::hex`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

/// Why a string is not a [`Digest`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The algorithm is not `sha256` (or there is no `algorithm:` prefix).
    #[error("`{0}` is not a sha256 digest: expected `sha256:<64 hex digits>`")]
    Algorithm(String),
    /// The part after `sha256:` is not 64 lowercase hex digits.
    #[error("`{0}` has a malformed sha256: expected 64 lowercase hex digits after `sha256:`")]
    Hex(String),
}

impl Digest {
    /// Parses and validates `sha256:<64 lowercase hex>`.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let Some(hex) = s.strip_prefix(SHA256_PREFIX) else {
            return Err(DigestError::Algorithm(s.to_string()));
        };
        if !is_lower_hex64(hex) {
            return Err(DigestError::Hex(s.to_string()));
        }
        Ok(Self(s.to_string()))
    }

    /// Validates a bare sha256, 64 lowercase hex digits, as the lock and the cache store it.
    pub fn from_hex(hex: &str) -> Result<Self, DigestError> {
        if !is_lower_hex64(hex) {
            return Err(DigestError::Hex(hex.to_string()));
        }
        Ok(Self(format!("{SHA256_PREFIX}{hex}")))
    }

    /// The digest of `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self::from_sha256(Sha256::digest(bytes).into())
    }

    /// The digest with this raw sha256 value.
    pub fn from_sha256(sum: [u8; 32]) -> Self {
        Self(format!("{SHA256_PREFIX}{}", hex::encode(sum)))
    }

    /// The algorithm, always `sha256`.
    pub fn algorithm(&self) -> &str {
        "sha256"
    }

    /// The 64 hex digits after `sha256:`: the blob's file name in a layout or the cache, and
    /// the lock's `sha256`.
    pub fn hex(&self) -> &str {
        &self.0[SHA256_PREFIX.len()..]
    }

    /// The whole digest, `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_lower_hex64(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Compares the whole text, `sha256:<hex>`: what a test computes with `sha256sum` or reads
/// from a document is checked without parsing it first.
impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Digest {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Digest {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let d = Digest::of_bytes(b"");
        assert_eq!(d.as_str(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert_eq!(d.hex().len(), 64);
        assert!(matches!(Digest::parse("md5:abc"), Err(DigestError::Algorithm(_))));
        assert!(matches!(Digest::parse("sha256:abc"), Err(DigestError::Hex(_))));
        let upper = format!("sha256:{}", d.hex().to_uppercase());
        assert!(matches!(Digest::parse(&upper), Err(DigestError::Hex(_))));
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"sha256:zz\"").is_err());
    }

    #[test]
    fn bare_hex_round_trips() {
        let d = Digest::of_bytes(b"x");
        assert_eq!(Digest::from_hex(d.hex()).unwrap(), d);
        assert!(Digest::from_hex(d.as_str()).is_err());
        assert!(Digest::from_hex(&d.hex().to_uppercase()).is_err());
        assert!(Digest::from_hex("abc").is_err());
        assert_eq!(d, d.as_str());
        assert_eq!(d, d.to_string());
    }
}
