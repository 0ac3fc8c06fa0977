//! One multi-platform index from platform images pushed by digest on other machines
//! (`push REF --index --from REF@sha256:…`): teams with native runners per architecture
//! build each platform where it runs, push it by digest, and join them here. Nothing but the
//! index is sent; the images must already be in the repository pushed to.

use std::collections::BTreeMap;

use bytes::Bytes;
use oci::{media_type, Descriptor, ImageConfig, ImageIndex, ImageManifest};

use crate::api::push_scope;
use crate::api::MAX_CONFIG;
use crate::client::read_limited;
use crate::push::{plan_tags, set_tags, BlobAction, Plan, PlannedBlob, PushOptions, Pushed, SourceImage};
use crate::{Error, Reference, RegistryClient};

/// An index to push, and the plan of pushing it.
#[derive(Debug, Clone)]
pub struct IndexPush {
    /// What the tags will be, which platforms the index holds (every blob is there already).
    pub plan: Plan,
    bytes: Bytes,
}

/// Reads each of `from` (a platform manifest, or an index whose manifests are all taken; by
/// digest, in `target`'s repository), checks that no platform comes twice, and plans an OCI
/// index of them in the order given, tagged as `options` says.
pub async fn plan_index(
    client: &RegistryClient,
    target: &Reference,
    from: &[Reference],
    options: &PushOptions,
) -> Result<IndexPush, Error> {
    let repository = Reference { tag: None, digest: None, ..target.clone() };
    let repo = repository.repository.as_str();
    let scope = push_scope(repo, &[]);
    let mut images: Vec<SourceImage> = Vec::new();
    let mut blobs: BTreeMap<oci::Digest, Descriptor> = BTreeMap::new();
    for reference in from {
        let Some(digest) = &reference.digest else {
            return Err(Error::Unsupported(format!(
                "--from {reference} names no digest; write REF@sha256:…"
            )));
        };
        if reference.registry != repository.registry || reference.repository != repository.repository {
            return Err(Error::Unsupported(format!(
                "--from {reference} is not in {}: the index can only name images of the repository it is pushed to",
                repository.name()
            )));
        }
        let found = client.get_manifest(repo, digest.as_str(), &scope).await?.ok_or_else(|| {
            Error::NotFound { what: format!("{reference}"), registry: reference.registry.clone() }
        })?;
        let children: Vec<(Descriptor, Bytes)> = if media_type::is_index(&found.media_type) {
            let index: ImageIndex = parse(&found.bytes, reference, "index")?;
            let mut children: Vec<(Descriptor, Bytes)> = Vec::new();
            for child in index.manifests {
                // An index of indexes, or of artifacts, is not joined: name its images.
                if !media_type::is_manifest(&child.media_type) {
                    return Err(Error::Unsupported(format!(
                        "--from {reference} lists {} of media type `{}`, not an image manifest; \
                         name each platform's image by digest instead",
                        child.digest,
                        fetch::escape(&child.media_type)
                    )));
                }
                if children.iter().any(|(d, _)| d.digest == child.digest) {
                    continue;
                }
                let got =
                    client.get_manifest(repo, child.digest.as_str(), &scope).await?.ok_or_else(|| {
                        Error::NotFound {
                            what: format!("{} of {reference}", child.digest),
                            registry: reference.registry.clone(),
                        }
                    })?;
                children
                    .push((Descriptor::new(got.media_type, got.digest, got.bytes.len() as u64), got.bytes));
            }
            children
        } else {
            vec![(Descriptor::new(found.media_type, found.digest, found.bytes.len() as u64), found.bytes)]
        };
        for (descriptor, bytes) in children {
            let manifest: ImageManifest = parse(&bytes, reference, "manifest")?;
            let config = read_config(client, repo, &manifest.config, &scope).await?;
            let platform = config.platform();
            if let Some(twice) = images.iter().find(|i| i.platform == platform) {
                return Err(Error::Unsupported(format!(
                    "{platform} comes twice: {} and {}",
                    twice.descriptor.digest, descriptor.digest
                )));
            }
            for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
                blobs.entry(blob.digest.clone()).or_insert_with(|| blob.clone());
            }
            images.push(SourceImage::remote(
                platform.clone(),
                descriptor.with_platform(platform),
                config.config.labels.clone(),
                bytes,
                std::iter::once(&manifest.config).chain(&manifest.layers).map(|b| b.digest.clone()).collect(),
            ));
        }
    }
    if images.is_empty() {
        return Err(Error::Unsupported("no --from image to put in the index".into()));
    }
    let index = ImageIndex::new(images.iter().map(|i| i.descriptor.clone()).collect());
    let bytes = Bytes::from(serde_json::to_vec(&index).expect("an index always serializes"));
    let root =
        Descriptor::new(media_type::OCI_IMAGE_INDEX, oci::Digest::of_bytes(&bytes), bytes.len() as u64);
    let (tags, next) = plan_tags(client, &repository, options, &scope).await?;
    let blobs = blobs
        .into_values()
        .map(|descriptor| PlannedBlob { descriptor, action: BlobAction::Present })
        .collect();
    Ok(IndexPush { plan: Plan::new(repository, tags, next, root, images, blobs, scope), bytes })
}

/// Pushes the index of `push` under its tags (by digest when it has none).
pub async fn execute_index(
    client: &RegistryClient,
    push: &IndexPush,
    options: &PushOptions,
) -> Result<Pushed, Error> {
    set_tags(client, &push.plan, &push.bytes, options, 0, Vec::new()).await
}

fn parse<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    reference: &Reference,
    what: &str,
) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Protocol {
        url: reference.to_string(),
        reason: format!("the {what} does not parse: {e}"),
    })
}

async fn read_config(
    client: &RegistryClient,
    repo: &str,
    config: &Descriptor,
    scope: &str,
) -> Result<ImageConfig, Error> {
    let reply = client.get_blob(repo, &config.digest, 0, scope).await?;
    let blob_url = client.url(&format!("v2/{repo}/blobs/{}", config.digest)).await?;
    let url = format!("{}/{repo} blob {}", client.registry(), config.digest);
    let bytes = read_limited(reply, &blob_url, "configuration", MAX_CONFIG).await?;
    if oci::Digest::of_bytes(&bytes) != config.digest {
        return Err(Error::DigestMismatch {
            what: "configuration",
            url,
            expected: config.digest.clone(),
            actual: oci::Digest::of_bytes(&bytes),
        });
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Protocol { url, reason: format!("the configuration does not parse: {e}") })
}
