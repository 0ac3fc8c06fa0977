//! A layer cache kept in a registry repository (`--cache REF`): built layers found by their
//! cache key, so that a runner with an empty disk reuses what another runner built, and, when
//! it pushes to the same registry, never downloads them (they are mounted).
//!
//! The format (docs/layer-cache.md): one tag per key, `layer-<key>` (the key is 64 hex
//! digits), pointing at an OCI image manifest of artifact type [`ARTIFACT_TYPE`] whose config
//! is the empty descriptor and whose only layer is the cached layer's blob. Its annotations
//! say what the image configuration needs without the blob: the key again, the layer's
//! `diff_id` and uncompressed size, what the layer's build learned of its packages (for the
//! SBOM), and (for a Debian layer) what its maintainer scripts did.
//! Each platform's layers have keys of their own, so every platform of a multi-platform build
//! sits side by side in one repository; writers only ever add or overwrite a tag with an
//! entry for the same key.
//!
//! What is checked on a lookup: the manifest parses, is of that artifact type, names the key
//! looked up (a tag copied from another key is refused), has one layer of a layer media type,
//! and the repository has that blob. A blob that is downloaded is checked against its digest
//! (and by the caller against its `diff_id`). What a key means rests, as with any build
//! cache, on who may write the repository: readers need pull rights only.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;
use oci::{media_type, Descriptor, Digest, ImageManifest};

use crate::api::{pull_scope, push_scope};
use crate::upload::{LocalBlob, ProgressFn, Sent, Sessions, Upload};
use crate::{Error, RegistryClient};

/// The artifact type of a cache entry's manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.marqo-base.layer-cache.v1";
/// The media type of the empty config (`{}`), as OCI 1.1 defines it for artifacts.
pub const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_BYTES: &[u8] = b"{}";

const KEY: &str = "dev.marqo-base.cache.key";
const DIFF_ID: &str = "dev.marqo-base.cache.diff-id";
const UNCOMPRESSED: &str = "dev.marqo-base.cache.uncompressed-size";
const NOTE: &str = "dev.marqo-base.cache.note";
const PACKAGES: &str = "dev.marqo-base.cache.packages";

/// The tag of `key`'s entry.
pub fn tag_for(key: &str) -> String {
    format!("layer-{key}")
}

/// A cache entry: a layer and what an image configuration needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The cache key (64 hex digits).
    pub key: String,
    /// The layer blob (its media type tells its compression).
    pub layer: Descriptor,
    /// The sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// The size of the uncompressed tar.
    pub uncompressed_size: u64,
    /// What the layer's build reported (a Debian layer's maintainer scripts), if anything.
    pub note: Option<String>,
    /// What the layer's build learned of its packages (source packages, licenses), for the
    /// image's SBOM; `None` for a layer of files.
    pub packages: Option<String>,
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A usable entry whose blob the repository has.
    Hit(Box<CacheEntry>),
    /// No entry under the key.
    Miss,
    /// An entry that cannot be used, and why.
    Invalid(String),
}

/// The manifest of `entry`, as [`store`] writes it (deterministic bytes).
pub fn entry_manifest(entry: &CacheEntry) -> Vec<u8> {
    let mut annotations = BTreeMap::new();
    annotations.insert(KEY.to_string(), entry.key.clone());
    annotations.insert(DIFF_ID.to_string(), entry.diff_id.to_string());
    annotations.insert(UNCOMPRESSED.to_string(), entry.uncompressed_size.to_string());
    if let Some(note) = &entry.note {
        annotations.insert(NOTE.to_string(), note.clone());
    }
    if let Some(packages) = &entry.packages {
        annotations.insert(PACKAGES.to_string(), packages.clone());
    }
    let layer = Descriptor::new(entry.layer.media_type.clone(), entry.layer.digest.clone(), entry.layer.size);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_IMAGE_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": empty_config(),
        "layers": [layer],
        "annotations": annotations,
    });
    serde_json::to_vec(&manifest).expect("a manifest always serializes")
}

/// Sends the empty config (`{}`) into `repository` unless it has it.
async fn put_empty_config(client: &RegistryClient, repository: &str, scope: &str) -> Result<(), Error> {
    let config = empty_config();
    if client.has_blob(repository, &config.digest, scope).await? {
        return Ok(());
    }
    let sessions = Sessions::new(None);
    let progress: ProgressFn = std::sync::Arc::new(|_| {});
    let upload =
        Upload { client, repository, scope, sessions: &sessions, chunk_size: 1 << 20, progress: &progress };
    upload.send_bytes(&config.digest, Bytes::from_static(EMPTY_BYTES)).await
}

fn empty_config() -> Descriptor {
    Descriptor::new(EMPTY_CONFIG, Digest::of_bytes(EMPTY_BYTES), EMPTY_BYTES.len() as u64)
}

/// Reads an entry's manifest `bytes` found under `key`'s tag.
pub fn parse_entry(key: &str, bytes: &[u8]) -> Result<CacheEntry, String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "artifactType")]
        artifact_type: Option<String>,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if probe.artifact_type.as_deref() != Some(ARTIFACT_TYPE) {
        return Err(format!("not a layer-cache entry (artifact type {:?})", probe.artifact_type));
    }
    let manifest: ImageManifest =
        serde_json::from_slice(bytes).map_err(|e| format!("not an image manifest: {e}"))?;
    let annotations = manifest.annotations.unwrap_or_default();
    let found = annotations.get(KEY).map(String::as_str);
    if found != Some(key) {
        return Err(format!("it is the entry of another key ({})", found.unwrap_or("none")));
    }
    let [layer] = manifest.layers.as_slice() else {
        return Err(format!("{} layers instead of one", manifest.layers.len()));
    };
    if !media_type::is_layer(&layer.media_type) {
        return Err(format!("its blob has media type `{}`, not a layer's", layer.media_type));
    }
    let diff_id =
        annotations.get(DIFF_ID).and_then(|d| Digest::parse(d).ok()).ok_or("no valid diff-id annotation")?;
    let uncompressed_size = annotations
        .get(UNCOMPRESSED)
        .and_then(|n| n.parse().ok())
        .ok_or("no valid uncompressed-size annotation")?;
    Ok(CacheEntry {
        key: key.to_string(),
        layer: Descriptor::new(layer.media_type.clone(), layer.digest.clone(), layer.size),
        diff_id,
        uncompressed_size,
        note: annotations.get(NOTE).cloned(),
        packages: annotations.get(PACKAGES).cloned(),
    })
}

/// Looks `key` up in `repository`: its entry, checked (see the module docs), and whether the
/// repository has its blob. Network and authorization failures are errors; anything wrong
/// with the entry itself is [`Lookup::Invalid`].
pub async fn lookup(client: &RegistryClient, repository: &str, key: &str) -> Result<Lookup, Error> {
    let scope = pull_scope(repository);
    let found = match client.get_manifest(repository, &tag_for(key), &scope).await {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(Lookup::Miss),
        Err(Error::Unsupported(reason) | Error::Protocol { reason, .. }) => {
            return Ok(Lookup::Invalid(reason))
        }
        Err(e) => return Err(e),
    };
    let entry = match parse_entry(key, &found.bytes) {
        Ok(entry) => entry,
        Err(reason) => return Ok(Lookup::Invalid(reason)),
    };
    if !client.has_blob(repository, &entry.layer.digest, &scope).await? {
        return Ok(Lookup::Invalid(format!("the repository lacks its blob {}", entry.layer.digest)));
    }
    Ok(Lookup::Hit(Box::new(entry)))
}

/// Downloads the blob of a hit into `cache` (continuing a partial download; checked against
/// its digest before it is stored); returns its path there.
pub async fn download(
    client: &RegistryClient,
    repository: &str,
    entry: &CacheEntry,
    cache: &fetch::Cache,
    progress: &ProgressFn,
) -> Result<PathBuf, Error> {
    let scope = pull_scope(repository);
    crate::pull::download_blob(client, repository, &scope, &entry.layer, cache, progress).await
}

/// Where the blob of an entry to store comes from.
#[derive(Debug, Clone)]
pub enum BlobSource {
    /// This file (a layout's blob).
    File(PathBuf),
    /// This repository of the same registry, which has it (mounted, nothing is sent).
    Repository(String),
}

/// How an entry got its blob into the cache repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The repository had the blob.
    Present,
    /// Mounted from another repository.
    Mounted,
    /// Sent.
    Uploaded,
}

/// Writes `entry` into `repository`: its blob (from `source`, unless the repository has it),
/// the empty config, then the manifest under the key's tag.
pub async fn store(
    client: &RegistryClient,
    repository: &str,
    entry: &CacheEntry,
    source: &BlobSource,
    sessions_dir: Option<PathBuf>,
) -> Result<Stored, Error> {
    let mount_from: Vec<String> = match source {
        BlobSource::Repository(from) => vec![from.clone()],
        BlobSource::File(_) => Vec::new(),
    };
    let scope = push_scope(repository, &mount_from);
    let sessions = Sessions::new(sessions_dir);
    let progress: ProgressFn = std::sync::Arc::new(|_| {});
    let upload = Upload {
        client,
        repository,
        scope: &scope,
        sessions: &sessions,
        chunk_size: 16 * 1024 * 1024,
        progress: &progress,
    };
    let stored = if client.has_blob(repository, &entry.layer.digest, &scope).await? {
        Stored::Present
    } else {
        let (path, from) = match source {
            BlobSource::File(path) => (path.clone(), None),
            BlobSource::Repository(from) => (PathBuf::new(), Some(from.as_str())),
        };
        let blob = LocalBlob { digest: entry.layer.digest.clone(), size: entry.layer.size, path };
        match (from, upload.send_or_mount(&blob, from).await?) {
            (_, Sent::Mounted) => Stored::Mounted,
            (_, Sent::Uploaded { .. }) => Stored::Uploaded,
        }
    };
    put_empty_config(client, repository, &scope).await?;
    let bytes = Bytes::from(entry_manifest(entry));
    client
        .put_manifest(repository, &tag_for(&entry.key), media_type::OCI_IMAGE_MANIFEST, bytes, &scope)
        .await?;
    Ok(stored)
}

/// The artifact type of a note: a small fact a build derived from locked inputs (what the
/// image's interpreter is, from its packages' hashes), kept so that another machine needs
/// neither the inputs nor the work to know it.
pub const NOTE_TYPE: &str = "application/vnd.marqo-base.cache-note.v1";

/// The tag of the note under `key`.
pub fn note_tag(key: &str) -> String {
    format!("note-{key}")
}

fn note_manifest(key: &str, text: &str) -> Vec<u8> {
    let mut annotations = BTreeMap::new();
    annotations.insert(KEY.to_string(), key.to_string());
    annotations.insert(NOTE.to_string(), text.to_string());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_IMAGE_MANIFEST,
        "artifactType": NOTE_TYPE,
        "config": empty_config(),
        "layers": [empty_config()],
        "annotations": annotations,
    });
    serde_json::to_vec(&manifest).expect("a manifest always serializes")
}

/// The text of the note under `key`, if there is one and it names that key.
pub async fn lookup_note(
    client: &RegistryClient,
    repository: &str,
    key: &str,
) -> Result<Option<String>, Error> {
    let scope = pull_scope(repository);
    let Some(found) = client.get_manifest(repository, &note_tag(key), &scope).await? else { return Ok(None) };
    #[derive(serde::Deserialize)]
    struct Note {
        #[serde(rename = "artifactType")]
        artifact_type: Option<String>,
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    }
    let note: Note = match serde_json::from_slice(&found.bytes) {
        Ok(note) => note,
        Err(_) => return Ok(None),
    };
    if note.artifact_type.as_deref() != Some(NOTE_TYPE)
        || note.annotations.get(KEY).map(String::as_str) != Some(key)
    {
        return Ok(None);
    }
    Ok(note.annotations.get(NOTE).cloned())
}

/// Writes the note `text` under `key`.
pub async fn store_note(
    client: &RegistryClient,
    repository: &str,
    key: &str,
    text: &str,
) -> Result<(), Error> {
    let scope = push_scope(repository, &[]);
    put_empty_config(client, repository, &scope).await?;
    let bytes = Bytes::from(note_manifest(key, text));
    client.put_manifest(repository, &note_tag(key), media_type::OCI_IMAGE_MANIFEST, bytes, &scope).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(note: Option<&str>) -> CacheEntry {
        CacheEntry {
            key: "a".repeat(64),
            layer: Descriptor::new(media_type::OCI_LAYER_TAR_GZIP, Digest::of_bytes(b"layer"), 5),
            diff_id: Digest::of_bytes(b"tar"),
            uncompressed_size: 3,
            note: note.map(str::to_string),
            packages: note.map(|n| format!("{{\"facts of\": \"{n}\"}}")),
        }
    }

    #[test]
    fn entries_round_trip_and_a_copied_tag_is_refused() {
        for e in [entry(None), entry(Some("scripts: 1 action"))] {
            let bytes = entry_manifest(&e);
            assert_eq!(parse_entry(&e.key, &bytes), Ok(e.clone()));
            assert_eq!(entry_manifest(&e), bytes, "deterministic");
            let other = "b".repeat(64);
            assert!(parse_entry(&other, &bytes).unwrap_err().contains("another key"));
        }
        assert!(parse_entry(&"a".repeat(64), b"{\"schemaVersion\":2}")
            .unwrap_err()
            .contains("artifact type"));
        assert!(parse_entry(&"a".repeat(64), b"[").is_err());
        let text = String::from_utf8(entry_manifest(&entry(None))).unwrap();
        let no_layer = text.replace(OCI_GZIP, "application/vnd.oci.image.config.v1+json");
        assert!(parse_entry(&"a".repeat(64), no_layer.as_bytes()).unwrap_err().contains("media type"));
    }

    const OCI_GZIP: &str = media_type::OCI_LAYER_TAR_GZIP;
}
