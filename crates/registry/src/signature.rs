//! Signatures stored as cosign stores them, so that cosign, skopeo and podman (with
//! `use-sigstore-attachments`) find them: the signatures of manifest `sha256:HEX` are the
//! layers of an OCI image manifest tagged `sha256-HEX.sig` in the same repository; each layer
//! is a payload blob (media type [`SIMPLE_SIGNING`]) with its base64 signature in the
//! annotation [`SIGNATURE_ANNOTATION`]. Adding a signature appends a layer: the signatures
//! others made stay.

use std::collections::BTreeMap;

use bytes::Bytes;
use oci::{media_type, Descriptor, Digest, ImageManifest};
use serde::Serialize;

use crate::client::read_limited;
use crate::{Error, RegistryClient};

/// The media type of a signature payload layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The largest signature payload read: real ones are a few hundred bytes.
pub const MAX_PAYLOAD: u64 = 64 * 1024;
/// The most signatures one manifest may have: [`read_signatures`] (and so `verify`) reads no
/// more, and [`plan_signatures`] refuses to store more, so a release we sign stays one our
/// `verify` can judge. (A signature manifest of this many layers is far below
/// [`crate::MAX_MANIFEST`]; a larger one is refused on both sides as well.)
pub const MAX_SIGNATURES: usize = 1024;

/// One signature: the payload bytes and the signature over them (base64 of ASN.1 DER, as
/// in the annotation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The simple-signing payload, exactly as signed.
    pub payload: Bytes,
    /// The annotation's value.
    pub signature: String,
}

/// The signatures to store for one manifest.
#[derive(Debug, Clone)]
pub struct ToSign {
    /// The manifest (or index) signed.
    pub signed: Digest,
    /// Its new signatures.
    pub signatures: Vec<Signature>,
    /// Tells whether a stored signature of the same payload is by the same signer, so that
    /// signing again adds nothing (ECDSA signatures differ each time they are made).
    pub same_signer: Option<SameSigner>,
}

/// A check of a stored [`Signature`]: whether it is by the signer of a [`ToSign`].
#[derive(Clone)]
pub struct SameSigner(pub std::sync::Arc<dyn Fn(&Signature) -> bool + Send + Sync>);

impl std::fmt::Debug for SameSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SameSigner(..)")
    }
}

/// A signature manifest as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureRecord {
    /// The manifest (or index) signed.
    pub signed: Digest,
    /// The digest of the signature manifest.
    pub signature_manifest: Digest,
    /// Its tag, `sha256-HEX.sig`.
    pub tag: String,
}

/// The tag of the signatures of `signed`: `sha256-HEX.sig`.
pub fn signature_tag(signed: &Digest) -> String {
    format!("{}-{}.sig", signed.algorithm(), signed.hex())
}

/// The signatures stored for `signed` in `repository` (none without a signature manifest).
/// Layers of other media types, or without a signature annotation, are skipped; every
/// payload is checked against its digest.
pub async fn read_signatures(
    client: &RegistryClient,
    repository: &str,
    signed: &Digest,
    scope: &str,
) -> Result<Vec<Signature>, Error> {
    let Some((manifest, url)) = signature_manifest(client, repository, signed, scope).await? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for layer in &manifest.layers {
        let Some(signature) = layer.annotations.as_ref().and_then(|a| a.get(SIGNATURE_ANNOTATION)) else {
            continue;
        };
        if layer.media_type != SIMPLE_SIGNING {
            continue;
        }
        if layer.size > MAX_PAYLOAD {
            return Err(Error::TooLarge { what: "signature payload", url, limit: MAX_PAYLOAD });
        }
        let payload = read_payload(client, repository, &layer.digest, scope).await?;
        out.push(Signature { payload, signature: signature.clone() });
    }
    Ok(out)
}

/// A signature manifest to store: what [`plan_signatures`] found and checked, for
/// [`write_signatures`].
#[derive(Debug, Clone)]
pub struct SignaturePlan {
    signed: Digest,
    tag: String,
    /// Whether a signature manifest is there already.
    existing: bool,
    /// The payloads to upload.
    payloads: Vec<(Digest, Bytes)>,
    config: Bytes,
    manifest: Bytes,
}

/// Reads the signature manifest of `to_sign.signed` and builds the one that adds its
/// signatures after those it holds, without writing anything. A signature it holds
/// already, or (with `same_signer`) one of the same payload by the same signer, is not
/// added again. Refuses one that [`read_signatures`] could not
/// read back (more than [`MAX_SIGNATURES`], or larger than [`crate::MAX_MANIFEST`]).
pub async fn plan_signatures(
    client: &RegistryClient,
    repository: &str,
    to_sign: &ToSign,
    scope: &str,
) -> Result<SignaturePlan, Error> {
    let tag = signature_tag(&to_sign.signed);
    let existing = signature_manifest(client, repository, &to_sign.signed, scope).await?;
    let mut layers = existing.as_ref().map(|(m, _)| m.layers.clone()).unwrap_or_default();
    let stored = layers.len();
    let mut payloads = Vec::new();
    for signature in &to_sign.signatures {
        let digest = Digest::of_bytes(&signature.payload);
        let present = layers.iter().any(|l| {
            let Some(stored) = l.annotations.as_ref().and_then(|a| a.get(SIGNATURE_ANNOTATION)) else {
                return false;
            };
            // The same digest: the same payload bytes, which are ours.
            l.digest == digest
                && (stored == &signature.signature
                    || to_sign.same_signer.as_ref().is_some_and(|same| {
                        (same.0)(&Signature { payload: signature.payload.clone(), signature: stored.clone() })
                    }))
        });
        if present {
            continue;
        }
        payloads.push((digest.clone(), signature.payload.clone()));
        layers.push(
            Descriptor::new(SIMPLE_SIGNING, digest, signature.payload.len() as u64)
                .with_annotation(SIGNATURE_ANNOTATION, signature.signature.clone()),
        );
    }
    let full = |reason: String| Error::SignatureLimit {
        target: format!("{}/{repository}:{tag}", client.registry()),
        reason,
    };
    if layers.len() > MAX_SIGNATURES {
        return Err(full(format!(
            "it holds {stored} signatures; adding {} would pass the {MAX_SIGNATURES} that `verify` reads",
            layers.len() - stored
        )));
    }
    // As cosign writes it: an image configuration whose diff_ids are the payloads.
    let config = Config {
        architecture: "",
        os: "",
        config: BTreeMap::new(),
        rootfs: RootFs { kind: "layers", diff_ids: layers.iter().map(|l| l.digest.clone()).collect() },
    };
    let config = Bytes::from(serde_json::to_vec(&config).expect("a configuration serializes"));
    let config_descriptor =
        Descriptor::new(media_type::OCI_IMAGE_CONFIG, Digest::of_bytes(&config), config.len() as u64);
    let manifest = ImageManifest::new(config_descriptor, layers);
    let manifest = Bytes::from(serde_json::to_vec(&manifest).expect("a manifest serializes"));
    if manifest.len() as u64 > crate::MAX_MANIFEST {
        return Err(full(format!(
            "with the new signatures it would be {}, more than the {} of a manifest that `verify` reads",
            fetch::format_size(manifest.len() as u64),
            fetch::format_size(crate::MAX_MANIFEST)
        )));
    }
    Ok(SignaturePlan {
        signed: to_sign.signed.clone(),
        tag,
        existing: existing.is_some(),
        payloads,
        config,
        manifest,
    })
}

/// Uploads the payloads of `plan`, then its signature manifest (left as it is when nothing
/// is added).
pub async fn write_signatures(
    client: &RegistryClient,
    repository: &str,
    plan: &SignaturePlan,
    scope: &str,
) -> Result<SignatureRecord, Error> {
    let tag = plan.tag.clone();
    if plan.payloads.is_empty() && plan.existing {
        if let Some(digest) = client.manifest_digest(repository, &tag, scope).await? {
            return Ok(SignatureRecord { signed: plan.signed.clone(), signature_manifest: digest, tag });
        }
    }
    for (digest, payload) in &plan.payloads {
        client.put_small_blob(repository, digest, payload.clone(), scope).await?;
    }
    client.put_small_blob(repository, &Digest::of_bytes(&plan.config), plan.config.clone(), scope).await?;
    let digest = Digest::of_bytes(&plan.manifest);
    client
        .put_manifest(repository, &tag, media_type::OCI_IMAGE_MANIFEST, plan.manifest.clone(), scope)
        .await?;
    Ok(SignatureRecord { signed: plan.signed.clone(), signature_manifest: digest, tag })
}

#[derive(Serialize)]
struct Config {
    architecture: &'static str,
    os: &'static str,
    config: BTreeMap<String, String>,
    rootfs: RootFs,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<Digest>,
}

/// The signature manifest of `signed`, parsed, and the URL it came from; `None` if there is
/// none. Anything but an OCI (or Docker) image manifest there is an error.
async fn signature_manifest(
    client: &RegistryClient,
    repository: &str,
    signed: &Digest,
    scope: &str,
) -> Result<Option<(ImageManifest, String)>, Error> {
    let tag = signature_tag(signed);
    let url = format!("{}/{repository}:{tag}", client.registry());
    let Some(found) = client.get_manifest(repository, &tag, scope).await? else {
        return Ok(None);
    };
    if !media_type::is_manifest(&found.media_type) {
        return Err(Error::Protocol {
            url,
            reason: format!("the signature tag holds a `{}`, not an image manifest", found.media_type),
        });
    }
    let manifest: ImageManifest = serde_json::from_slice(&found.bytes).map_err(|e| Error::Protocol {
        url: url.clone(),
        reason: format!("the signature manifest does not parse: {e}"),
    })?;
    if manifest.layers.len() > MAX_SIGNATURES {
        return Err(Error::Protocol {
            url,
            reason: format!(
                "the signature manifest has {} layers, more than the {MAX_SIGNATURES} read",
                manifest.layers.len()
            ),
        });
    }
    Ok(Some((manifest, url)))
}

async fn read_payload(
    client: &RegistryClient,
    repository: &str,
    digest: &Digest,
    scope: &str,
) -> Result<Bytes, Error> {
    let reply = client.get_blob(repository, digest, 0, scope).await?;
    let url = client.url(&format!("v2/{repository}/blobs/{digest}")).await?;
    let bytes = read_limited(reply, &url, "signature payload", MAX_PAYLOAD).await?;
    let actual = Digest::of_bytes(&bytes);
    if &actual != digest {
        return Err(Error::DigestMismatch {
            what: "signature payload",
            url: fetch::redact(&url),
            expected: digest.clone(),
            actual,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_cosigns() {
        let d = Digest::of_bytes(b"x");
        assert_eq!(signature_tag(&d), format!("sha256-{}.sig", d.hex()));
    }
}
