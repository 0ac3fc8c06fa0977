//! The "simple signing" payload of a cosign signature: which manifest (by digest) was signed
//! for which repository.
//! `{"critical":{"identity":{"docker-reference":"HOST/REPO"},"image":{"docker-manifest-digest":
//! "sha256:…"},"type":"cosign container image signature"},"optional":null}`.

use content_digest::Digest;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The `critical.type` of every cosign image signature.
pub const PAYLOAD_TYPE: &str = "cosign container image signature";

/// The largest payload read: real ones are a few hundred bytes.
const MAX_PAYLOAD: usize = 64 * 1024;

/// What a signature says: the manifest digest and the reference it was signed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// `HOST/REPO` (cosign's form, and ours), or `HOST/REPO:TAG` (what skopeo writes when
    /// it signs a copy to a tag).
    pub docker_reference: String,
    /// The digest of the signed manifest or index.
    pub manifest_digest: Digest,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    critical: Critical,
    // Any JSON: creator, timestamp, annotations; covered by the signature, not interpreted.
    optional: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

impl Payload {
    /// The bytes to sign, as cosign writes them (`optional` null).
    pub fn to_bytes(&self) -> Vec<u8> {
        let doc = Document {
            critical: Critical {
                identity: Identity { docker_reference: self.docker_reference.clone() },
                image: Image { docker_manifest_digest: self.manifest_digest.to_string() },
                kind: PAYLOAD_TYPE.to_string(),
            },
            optional: None,
        };
        serde_json::to_vec(&doc).expect("a payload serializes")
    }

    /// Reads a payload; anything that is not a cosign image signature is an error. Only use
    /// its content once its signature is verified.
    pub fn parse(bytes: &[u8]) -> Result<Payload, Error> {
        if bytes.len() > MAX_PAYLOAD {
            return Err(Error::Payload(format!(
                "{} bytes is more than the {MAX_PAYLOAD} allowed",
                bytes.len()
            )));
        }
        let doc: Document = serde_json::from_slice(bytes)
            .map_err(|e| Error::Payload(format!("not the expected JSON: {e}")))?;
        if doc.critical.kind != PAYLOAD_TYPE {
            return Err(Error::Payload(format!("its type is `{}`, not `{PAYLOAD_TYPE}`", doc.critical.kind)));
        }
        let manifest_digest = Digest::parse(&doc.critical.image.docker_manifest_digest)
            .map_err(|e| Error::Payload(format!("its manifest digest is not a sha256 digest: {e}")))?;
        Ok(Payload { docker_reference: doc.critical.identity.docker_reference, manifest_digest })
    }

    /// The repository of [`Self::docker_reference`]: without a `:TAG` or `@DIGEST`.
    pub fn repository(&self) -> &str {
        let name = self.docker_reference.split('@').next().unwrap_or_default();
        match name.rsplit_once(':') {
            // A colon after the last `/` starts a tag; before it, a port.
            Some((repo, tag)) if !tag.contains('/') => repo,
            _ => name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PrivateKey;

    fn digest() -> Digest {
        Digest::of_bytes(b"manifest")
    }

    #[test]
    fn cosign_layout_round_trip() {
        let payload =
            Payload { docker_reference: "127.0.0.1:5000/team/base".into(), manifest_digest: digest() };
        let bytes = payload.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"127.0.0.1:5000/team/base\"}},\"image\":{{\"docker-manifest-digest\":\"{}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}",
                digest()
            )
        );
        assert_eq!(Payload::parse(&bytes).unwrap(), payload);
        assert_eq!(payload.repository(), "127.0.0.1:5000/team/base");
        let tagged = Payload { docker_reference: "127.0.0.1:5000/team/base:7".into(), ..payload.clone() };
        assert_eq!(tagged.repository(), "127.0.0.1:5000/team/base");
        let pinned = Payload { docker_reference: format!("ghcr.io/a/b@{}", digest()), ..payload };
        assert_eq!(pinned.repository(), "ghcr.io/a/b");
    }

    #[test]
    fn other_documents_are_refused() {
        assert!(Payload::parse(b"[]").is_err());
        let wrong_type = br#"{"critical":{"identity":{"docker-reference":"a/b"},"image":{"docker-manifest-digest":"sha256:00"},"type":"atomic container signature"},"optional":null}"#;
        assert!(Payload::parse(wrong_type).unwrap_err().to_string().contains("atomic"));
        let extra = br#"{"critical":{"identity":{"docker-reference":"a/b"},"image":{"docker-manifest-digest":"sha256:00"},"type":"cosign container image signature","x":1},"optional":null}"#;
        assert!(Payload::parse(extra).is_err());
        assert!(Payload::parse(&vec![b' '; MAX_PAYLOAD + 1]).is_err());
    }

    #[test]
    fn a_tampered_payload_does_not_verify() {
        let key = PrivateKey::generate().unwrap();
        let payload =
            Payload { docker_reference: "ghcr.io/a/b".into(), manifest_digest: digest() }.to_bytes();
        let signature = key.sign(&payload).unwrap();
        key.public_key().verify(&payload, &signature).unwrap();
        let other =
            Payload { docker_reference: "ghcr.io/a/b".into(), manifest_digest: Digest::of_bytes(b"x") };
        assert!(key.public_key().verify(&other.to_bytes(), &signature).is_err());
        let mut flipped = payload.clone();
        flipped[10] ^= 1;
        assert!(key.public_key().verify(&flipped, &signature).is_err());
    }
}
