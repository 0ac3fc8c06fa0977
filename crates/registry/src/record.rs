//! The record of a push (`--record FILE`): what was pushed where, for CI artifacts.

use std::io::Write;
use std::path::Path;

use oci::Digest;
use serde::Serialize;

use crate::push::{Plan, Pushed};
use crate::signature::SignatureRecord;
use crate::Error;

/// What was pushed: repository, tags, digests, sizes and the lock fingerprint.
#[derive(Debug, Clone, Serialize)]
pub struct PushRecord {
    /// `marqo-base.push/1`: the schema of this document (docs/json/push.schema.json).
    pub schema: &'static str,
    /// `registry/repository`.
    pub repository: String,
    /// The tags set.
    pub tags: Vec<String>,
    /// The digest of the index (or manifest) the tags point at.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// `registry/repository@digest`: a reference that cannot move.
    pub pinned: String,
    /// One entry per platform.
    pub platforms: Vec<PlatformRecord>,
    /// The lock fingerprint label of the images' configurations, if they have one.
    pub lock_fingerprint: Option<String>,
    /// When the push finished (RFC 3339, UTC).
    pub pushed_at: String,
    /// The signature manifests stored (`push --sign`), one per signed manifest; empty when
    /// unsigned.
    pub signatures: Vec<SignatureRecord>,
    /// The documents (SBOMs) attached to the images.
    pub attachments: Vec<AttachmentRecord>,
}

/// A document attached to a pushed image, in a [`PushRecord`].
#[derive(Debug, Clone, Serialize)]
pub struct AttachmentRecord {
    /// The manifest it describes.
    pub subject: Digest,
    /// The artifact manifest.
    pub manifest: Digest,
    /// What it is (`application/spdx+json`).
    pub artifact_type: String,
    /// The document's digest.
    pub document: Digest,
    /// How readers find it: `referrers API`, or `tag sha256-…` (the fallback).
    pub found_through: String,
}

/// One platform's image in a [`PushRecord`].
#[derive(Debug, Clone, Serialize)]
pub struct PlatformRecord {
    /// `os/architecture[/variant]`.
    pub platform: String,
    /// The manifest's digest.
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub manifest_size: u64,
    /// The size of the configuration and layers (what a pull downloads).
    pub size: u64,
}

impl PushRecord {
    /// The record of `pushed` (from `plan`), with the fingerprint found in the configurations'
    /// label `fingerprint_label`, timestamped `pushed_at`.
    pub fn new(plan: &Plan, pushed: &Pushed, fingerprint_label: &str, pushed_at: String) -> PushRecord {
        let size_of = |d: &Digest| {
            plan.blobs.iter().find(|b| &b.descriptor.digest == d).map_or(0, |b| b.descriptor.size)
        };
        let platforms = plan
            .images
            .iter()
            .map(|image| PlatformRecord {
                platform: image.platform.to_string(),
                digest: image.descriptor.digest.clone(),
                manifest_size: image.descriptor.size,
                size: image.blob_digests().iter().map(&size_of).sum(),
            })
            .collect();
        let mut fingerprints: Vec<&String> =
            plan.images.iter().filter_map(|i| i.labels.get(fingerprint_label)).collect();
        fingerprints.dedup();
        PushRecord {
            schema: "marqo-base.push/1",
            repository: plan.repository.name(),
            tags: pushed.tags.clone(),
            digest: plan.root.digest.clone(),
            media_type: plan.root.media_type.clone(),
            pinned: format!("{}@{}", plan.repository.name(), plan.root.digest),
            platforms,
            lock_fingerprint: (fingerprints.len() == 1).then(|| fingerprints[0].clone()),
            pushed_at,
            signatures: pushed.signatures.clone(),
            attachments: pushed
                .attachments
                .iter()
                .map(|a| AttachmentRecord {
                    subject: a.subject.clone(),
                    manifest: a.manifest.clone(),
                    artifact_type: a.artifact_type.clone(),
                    document: a.document.clone(),
                    found_through: a.found_through.clone(),
                })
                .collect(),
        }
    }

    /// Writes the record as pretty JSON to `path`, atomically.
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a record always serializes");
        bytes.push(b'\n');
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut file = tempfile::Builder::new()
            .prefix(".record.tmp-")
            .tempfile_in(dir)
            .map_err(Error::io("create a temporary file in", dir))?;
        file.write_all(&bytes).map_err(Error::io("write", file.path()))?;
        file.as_file().sync_all().map_err(Error::io("sync", file.path()))?;
        file.persist(path).map_err(|e| Error::io("write", path)(e.error))?;
        Ok(())
    }
}
