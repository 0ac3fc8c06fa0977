//! Artifacts attached to an image (OCI distribution 1.1 "referrers"): an SBOM is an OCI image
//! manifest whose `artifactType` says what it is, whose config is the empty descriptor,
//! whose one layer is the document, and whose `subject` is the platform manifest it
//! describes. Registries with the referrers API (`GET /v2/NAME/referrers/DIGEST`) index it
//! themselves; for those without (Debian's docker-registry 2.8), the writer keeps the
//! referrers tag schema's fallback: an image index at the tag `sha256-HEX` listing the
//! referrers of `sha256:HEX`, which [`attach`] updates and [`list`] reads.

use bytes::Bytes;
use oci::{media_type, Descriptor, Digest};
use serde_json::{json, Value};

use crate::api::MAX_MANIFEST;
use crate::client::read_limited;
use crate::{Error, RegistryClient};

/// The largest attached document [`fetch`] reads.
pub const MAX_ARTIFACT: u64 = 64 * 1024 * 1024;

/// The media type of the empty config (`{}`).
const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_BYTES: &[u8] = b"{}";

/// A document to attach to `subject`.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The manifest it describes (media type, digest, size).
    pub subject: Descriptor,
    /// What it is (`application/spdx+json`): the artifact type and the layer's media type.
    pub artifact_type: String,
    /// The document.
    pub document: Bytes,
    /// Annotations of the artifact manifest (sorted when written).
    pub annotations: Vec<(String, String)>,
}

impl Attachment {
    /// Its annotations as a sorted JSON object; `None` without any.
    fn annotation_map(&self) -> Option<Value> {
        let map: std::collections::BTreeMap<&str, &str> =
            self.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        (!map.is_empty()).then(|| json!(map))
    }
}

/// What [`attach`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The subject's digest.
    pub subject: Digest,
    /// The artifact manifest's digest.
    pub manifest: Digest,
    pub artifact_type: String,
    /// The document's digest.
    pub document: Digest,
    /// `referrers API`, or the fallback tag it was listed under.
    pub found_through: String,
}

/// The fallback tag of `subject`'s referrers: `sha256-HEX`.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algorithm(), subject.hex())
}

/// The artifact manifest of `attachment` (deterministic bytes) and its document's descriptor.
pub fn artifact_manifest(attachment: &Attachment) -> Vec<u8> {
    let document = Descriptor::new(
        attachment.artifact_type.clone(),
        Digest::of_bytes(&attachment.document),
        attachment.document.len() as u64,
    );
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_IMAGE_MANIFEST,
        "artifactType": attachment.artifact_type,
        "config": empty_config(),
        "layers": [document],
        "subject": Descriptor::new(
            attachment.subject.media_type.clone(),
            attachment.subject.digest.clone(),
            attachment.subject.size,
        ),
    });
    if let Some(annotations) = attachment.annotation_map() {
        manifest["annotations"] = annotations;
    }
    serde_json::to_vec(&manifest).expect("a manifest serializes")
}

fn empty_config() -> Descriptor {
    Descriptor::new(EMPTY_CONFIG, Digest::of_bytes(EMPTY_BYTES), EMPTY_BYTES.len() as u64)
}

/// Stores `attachment` in `repository` (its document, the empty config, the artifact
/// manifest by digest) and makes it findable: through the registry's referrers API when it
/// has one, else by adding it to the fallback tag's index (kept as it is when it lists it
/// already).
pub async fn attach(
    client: &RegistryClient,
    repository: &str,
    attachment: &Attachment,
    scope: &str,
) -> Result<Attached, Error> {
    let document = Digest::of_bytes(&attachment.document);
    client.put_small_blob(repository, &document, attachment.document.clone(), scope).await?;
    let config = empty_config();
    client.put_small_blob(repository, &config.digest, Bytes::from_static(EMPTY_BYTES), scope).await?;
    let bytes = Bytes::from(artifact_manifest(attachment));
    let manifest = Digest::of_bytes(&bytes);
    let size = bytes.len() as u64;
    client.put_manifest(repository, manifest.as_str(), media_type::OCI_IMAGE_MANIFEST, bytes, scope).await?;
    let subject = &attachment.subject.digest;
    let mut attached = Attached {
        subject: subject.clone(),
        manifest: manifest.clone(),
        artifact_type: attachment.artifact_type.clone(),
        document,
        found_through: "referrers API".to_string(),
    };
    if let Some(listed) = referrers_api(client, repository, subject, scope).await? {
        if listed.iter().any(|d| d["digest"] == manifest.as_str()) {
            return Ok(attached);
        }
    }
    // The fallback: the tag's index, with this artifact added.
    let tag = fallback_tag(subject);
    let mut manifests = fallback_index(client, repository, subject, scope).await?;
    if !manifests.iter().any(|d| d["digest"] == manifest.as_str()) {
        let mut descriptor = json!({
            "mediaType": media_type::OCI_IMAGE_MANIFEST,
            "digest": manifest,
            "size": size,
            "artifactType": attachment.artifact_type,
        });
        if let Some(annotations) = attachment.annotation_map() {
            descriptor["annotations"] = annotations;
        }
        manifests.push(descriptor);
        let index = json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_IMAGE_INDEX,
            "manifests": manifests,
        });
        let bytes = Bytes::from(serde_json::to_vec(&index).expect("an index serializes"));
        client.put_manifest(repository, &tag, media_type::OCI_IMAGE_INDEX, bytes, scope).await?;
    }
    attached.found_through = format!("tag {tag}");
    Ok(attached)
}

/// The referrers of `subject` in `repository` (descriptors as JSON, with `artifactType`):
/// the referrers API's, else the fallback tag's; `artifact_type` keeps only those of it.
pub async fn list(
    client: &RegistryClient,
    repository: &str,
    subject: &Digest,
    artifact_type: Option<&str>,
    scope: &str,
) -> Result<Vec<Value>, Error> {
    let found = match referrers_api(client, repository, subject, scope).await? {
        Some(listed) if !listed.is_empty() => listed,
        _ => fallback_index(client, repository, subject, scope).await?,
    };
    Ok(found.into_iter().filter(|d| artifact_type.is_none_or(|t| d["artifactType"] == t)).collect())
}

/// The document of the artifact manifest `manifest` (a descriptor from [`list`]): the
/// manifest and its one layer, each checked against its digest, the layer at most
/// [`MAX_ARTIFACT`] bytes.
pub async fn fetch(
    client: &RegistryClient,
    repository: &str,
    manifest: &Digest,
    scope: &str,
) -> Result<Bytes, Error> {
    let url = format!("{}/{repository}@{manifest}", client.registry());
    let found = client.get_manifest(repository, manifest.as_str(), scope).await?.ok_or_else(|| {
        Error::Protocol { url: url.clone(), reason: "the referrer listed is not in the repository".into() }
    })?;
    let parsed: Value = serde_json::from_slice(&found.bytes)
        .map_err(|e| Error::Protocol { url: url.clone(), reason: format!("not JSON: {e}") })?;
    let layer = match parsed["layers"].as_array().map(Vec::as_slice) {
        Some([layer]) => layer.clone(),
        _ => {
            return Err(Error::Protocol {
                url,
                reason: "an artifact manifest with other than one layer".into(),
            })
        }
    };
    let digest = layer["digest"].as_str().and_then(|d| Digest::parse(d).ok()).ok_or_else(|| {
        Error::Protocol { url: url.clone(), reason: "its layer has no valid digest".into() }
    })?;
    if layer["size"].as_u64().is_none_or(|size| size > MAX_ARTIFACT) {
        return Err(Error::TooLarge { what: "attached document", url, limit: MAX_ARTIFACT });
    }
    let reply = client.get_blob(repository, &digest, 0, scope).await?;
    let blob_url = client.url(&format!("v2/{repository}/blobs/{digest}")).await?;
    let bytes = read_limited(reply, &blob_url, "attached document", MAX_ARTIFACT).await?;
    let actual = Digest::of_bytes(&bytes);
    if actual != digest {
        return Err(Error::DigestMismatch {
            what: "attached document",
            url: fetch::redact(&blob_url),
            expected: digest,
            actual,
        });
    }
    Ok(bytes)
}

/// What the referrers API lists for `subject`; `None` when the registry has no such API
/// (a 404, or a reply that is not an image index).
async fn referrers_api(
    client: &RegistryClient,
    repository: &str,
    subject: &Digest,
    scope: &str,
) -> Result<Option<Vec<Value>>, Error> {
    let url = client.url(&format!("v2/{repository}/referrers/{subject}")).await?;
    let reply = client.get_json(url.clone(), scope).await?;
    let Some(bytes) = reply else { return Ok(None) };
    let index: Value = match serde_json::from_slice(&bytes) {
        Ok(index) => index,
        Err(_) => return Ok(None),
    };
    Ok(index["manifests"].as_array().cloned())
}

/// The manifests listed by the fallback tag of `subject` (none without the tag).
async fn fallback_index(
    client: &RegistryClient,
    repository: &str,
    subject: &Digest,
    scope: &str,
) -> Result<Vec<Value>, Error> {
    let tag = fallback_tag(subject);
    let Some(found) = client.get_manifest(repository, &tag, scope).await? else {
        return Ok(Vec::new());
    };
    let url = format!("{}/{repository}:{tag}", client.registry());
    if !media_type::is_index(&found.media_type) {
        return Err(Error::Protocol {
            url,
            reason: format!("the referrers tag holds a `{}`, not an image index", found.media_type),
        });
    }
    let index: Value = serde_json::from_slice(&found.bytes)
        .map_err(|e| Error::Protocol { url: url.clone(), reason: format!("not JSON: {e}") })?;
    Ok(index["manifests"].as_array().cloned().unwrap_or_default())
}

/// Bounds what a referrers reply may be.
pub(crate) const MAX_REFERRERS: u64 = MAX_MANIFEST;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_manifests_name_their_subject_and_are_deterministic() {
        let subject = Descriptor::new(media_type::OCI_IMAGE_MANIFEST, Digest::of_bytes(b"image"), 5);
        let attachment = Attachment {
            subject: subject.clone(),
            artifact_type: "application/spdx+json".into(),
            document: Bytes::from_static(b"{\"spdxVersion\":\"SPDX-2.3\"}"),
            annotations: vec![("b".into(), "2".into()), ("a".into(), "1".into())],
        };
        let bytes = artifact_manifest(&attachment);
        assert_eq!(artifact_manifest(&attachment), bytes);
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["subject"]["digest"], subject.digest.as_str());
        assert_eq!(value["artifactType"], "application/spdx+json");
        assert_eq!(value["layers"][0]["mediaType"], "application/spdx+json");
        assert_eq!(value["config"]["mediaType"], EMPTY_CONFIG);
        assert_eq!(value["annotations"], json!({"a": "1", "b": "2"}));
        assert_eq!(fallback_tag(&subject.digest), format!("sha256-{}", subject.digest.hex()));
    }
}
