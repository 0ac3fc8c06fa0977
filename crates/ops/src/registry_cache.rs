//! The layer cache in a registry (`--cache REF`, `[cache] registry`): looked up for every
//! layer the local cache lacks, before anything is fetched or compressed; written with
//! `--cache-write` after a successful build (or push). The entry format is in
//! [`registry::layer_cache`] and docs/layer-cache.md.
//!
//! A missing or unreachable cache only slows the build down: the first failure is one
//! warning and the cache is not asked again in that run. An entry that does not check out
//! (another key's, a blob the repository lacks, a downloaded blob whose digest or `diff_id`
//! is not the entry's) is ignored with a warning, and the layer is built. So is a layer
//! that holds what our own layers never do (a device node, an absolute or `..` path: see
//! [`image::check_foreign_layer`]): an entry is trusted no further than its key.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use image::LayerInfo;
use oci::Digest;
use registry::layer_cache::{self, BlobSource, CacheEntry, Lookup, Stored};
use registry::{Reference, RegistryClient};

use crate::remote::{client_for, stored_credentials, NetOptions};
use crate::{Error, Reporter};

/// How many keys are looked up (or entries written) at once.
const PARALLEL: usize = 8;

/// What `--cache` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheOptions {
    /// The repository (`HOST/REPO`) that holds the entries.
    pub reference: String,
    /// Write the layers this run built (or took from the local cache) into it.
    pub write: bool,
    /// How the registry is reached.
    pub net: NetOptions,
}

/// A registry layer cache opened for one run.
pub struct RegistryCache {
    client: RegistryClient,
    reference: Reference,
    write: bool,
    /// Set at the first failure to reach the cache: it is not asked again in this run.
    down: AtomicBool,
}

impl RegistryCache {
    /// Opens the cache `options` names (no request is made yet).
    pub fn open(options: &CacheOptions) -> Result<RegistryCache, Error> {
        let reference = Reference::parse(&options.reference).map_err(|e| {
            Error::user(format!("--cache `{}` is not a repository: {e}", options.reference))
                .with_hint("name a repository, such as --cache 127.0.0.1:5000/marqo-base-cache")
        })?;
        if reference.tag.is_some() || reference.digest.is_some() {
            return Err(Error::user(format!(
                "--cache `{}` names a tag or digest; the cache is a whole repository",
                options.reference
            ))
            .with_hint("write HOST/REPOSITORY, without :TAG or @DIGEST"));
        }
        let client = client_for(&reference.registry, stored_credentials(&reference.registry)?, &options.net)?;
        Ok(RegistryCache { client, reference, write: options.write, down: AtomicBool::new(false) })
    }

    /// The registry host.
    pub fn registry(&self) -> &str {
        &self.reference.registry
    }

    /// The repository within the registry.
    pub fn repository(&self) -> &str {
        &self.reference.repository
    }

    /// `HOST/REPO`.
    pub fn name(&self) -> String {
        self.reference.name()
    }

    /// Whether layers are written back (`--cache-write`).
    pub fn writes(&self) -> bool {
        self.write
    }

    fn fail(&self, what: &str, error: &registry::Error) {
        if !self.down.swap(true, Ordering::SeqCst) {
            tracing::warn!("the layer cache {} cannot be {what} ({error}); going on without it", self.name());
        }
    }

    /// The entries of `keys` (portable keys) that the cache has and that check out; the rest
    /// are built. Invalid entries are warned about, each once.
    pub fn lookup(&self, keys: &[String], printer: &dyn Reporter) -> HashMap<String, CacheEntry> {
        let mut hits = HashMap::new();
        if keys.is_empty() {
            return hits;
        }
        let Ok(runtime) = crate::env::runtime() else { return hits };
        let spinner = printer.spinner(&format!("Looking {} layers up in {}", keys.len(), self.name()));
        let results: Vec<(String, Result<Lookup, registry::Error>)> = runtime.block_on(
            stream::iter(keys.iter().cloned())
                .map(|key| async move {
                    if self.down.load(Ordering::SeqCst) {
                        return (key, Ok(Lookup::Miss));
                    }
                    let found = layer_cache::lookup(&self.client, self.repository(), &key).await;
                    (key, found)
                })
                .buffer_unordered(PARALLEL)
                .collect(),
        );
        spinner.finish_and_clear();
        for (key, result) in results {
            match result {
                Ok(Lookup::Hit(entry)) => {
                    hits.insert(key, *entry);
                }
                Ok(Lookup::Miss) => {}
                Ok(Lookup::Invalid(reason)) => tracing::warn!(
                    "ignoring the entry {} of the layer cache {}: {reason}; the layer is built",
                    layer_cache::tag_for(&key),
                    self.name()
                ),
                Err(e) => self.fail("read", &e),
            }
        }
        hits
    }

    /// The note under `key` (see [`layer_cache::NOTE_TYPE`]), if the cache has one.
    pub fn note(&self, key: &str) -> Option<String> {
        if self.down.load(Ordering::SeqCst) {
            return None;
        }
        let runtime = crate::env::runtime().ok()?;
        match runtime.block_on(layer_cache::lookup_note(&self.client, self.repository(), key)) {
            Ok(found) => found,
            Err(e) => {
                self.fail("read", &e);
                None
            }
        }
    }

    /// Keeps `text` under `key` when writing (`--cache-write`); a failure is a warning.
    pub fn put_note(&self, key: &str, text: &str) {
        if !self.write || self.down.load(Ordering::SeqCst) {
            return;
        }
        let Ok(runtime) = crate::env::runtime() else { return };
        if let Err(e) = runtime.block_on(layer_cache::store_note(&self.client, self.repository(), key, text))
        {
            self.fail("written", &e);
        }
    }

    /// Downloads the one blob that `entries` (at least one) name into `store`, once, and checks
    /// it for each of them (digest, then the `diff_id` and size of what it decompresses to,
    /// then its entries, as [`image::check_foreign_layer`] does):
    /// each entry's layer, or `None` (warned) when it does not check out or cannot be fetched.
    pub fn download(
        &self,
        entries: &[&CacheEntry],
        store: &fetch::Cache,
        progress: &registry::ProgressFn,
    ) -> Vec<Option<(LayerInfo, PathBuf)>> {
        let ignore = |entry: &CacheEntry, reason: &dyn std::fmt::Display| {
            tracing::warn!(
                "ignoring the entry {} of the layer cache {}: {reason}; the layer is built",
                layer_cache::tag_for(&entry.key),
                self.name()
            );
        };
        // A layer our builds never write: someone with push rights to the cache wrote it.
        let refuse = |entry: &CacheEntry, refusal: &str| {
            tracing::warn!(
                "refusing the entry {} of the layer cache {}: {refusal}, which no layer of \
                 marqo-base holds (the entry was written by hand or by a hostile writer); the layer is built",
                layer_cache::tag_for(&entry.key),
                self.name()
            );
        };
        let Some(first) = entries.first() else { return Vec::new() };
        let Ok(runtime) = crate::env::runtime() else { return vec![None; entries.len()] };
        let fetched =
            runtime.block_on(layer_cache::download(&self.client, self.repository(), first, store, progress));
        let path = match fetched {
            Ok(path) => path,
            Err(e) => {
                match e {
                    registry::Error::DigestMismatch { .. } => {
                        entries.iter().for_each(|entry| ignore(entry, &e))
                    }
                    _ => self.fail("read", &e),
                }
                return vec![None; entries.len()];
            }
        };
        // What the blob decompresses to, once per compression and size the entries claim;
        // decompression stops one byte past the claimed size, so a small blob that expands
        // to terabytes costs what the claim costs.
        let mut tars: HashMap<(image::Compression, u64), Result<(Digest, u64), String>> = HashMap::new();
        // Whether it holds only what our own layers hold, once per compression.
        let mut contents: HashMap<image::Compression, Result<(), String>> = HashMap::new();
        entries
            .iter()
            .map(|entry| {
                let info = layer_info(entry)?;
                let tar = tars.entry((info.compression, info.uncompressed_size)).or_insert_with(|| {
                    let what = format!("the layer {}", entry.layer.digest);
                    image::uncompressed_digest(&path, info.compression, info.uncompressed_size, &what)
                        .map(|(digest, size)| (Digest::from_sha256(digest), size))
                        .map_err(|e| match bounded::too_large(&e) {
                            Some(_) => format!(
                                "its blob holds a tar of more than {} bytes, not the entry's {} ({} bytes): {e}",
                                info.uncompressed_size, info.diff_id, info.uncompressed_size
                            ),
                            None => format!("its blob does not decompress: {e}"),
                        })
                });
                match tar {
                    Ok((diff_id, size)) if *diff_id == info.diff_id && *size == info.uncompressed_size => {
                        let checked = contents.entry(info.compression).or_insert_with(|| {
                            image::check_foreign_layer(&path, info.compression, info.uncompressed_size)
                                .map_err(|e| e.to_string())
                        });
                        match checked {
                            Ok(()) => Some((info, path.clone())),
                            Err(refusal) => {
                                refuse(entry, refusal);
                                None
                            }
                        }
                    }
                    // The blob is what its digest says (another layer, perhaps, of this very
                    // build): only the entry is wrong, so the blob stays.
                    Ok((diff_id, size)) => {
                        let reason = format!(
                            "its blob holds a tar of {diff_id} ({size} bytes), not the entry's {} ({} bytes)",
                            info.diff_id, info.uncompressed_size
                        );
                        ignore(entry, &reason);
                        None
                    }
                    Err(reason) => {
                        ignore(entry, reason);
                        None
                    }
                }
            })
            .collect()
    }

    /// Writes `entries` (each with where its blob comes from) into the cache; returns how
    /// many blobs were sent. A failure is one warning: the build already succeeded.
    pub fn store(&self, entries: Vec<(CacheEntry, BlobSource)>, printer: &dyn Reporter) -> StoreSummary {
        let mut summary = StoreSummary::default();
        if entries.is_empty() {
            return summary;
        }
        let Ok(runtime) = crate::env::runtime() else { return summary };
        let sessions = crate::env::cache().ok().map(|c| c.root().join("registry").join("uploads"));
        let spinner = printer.spinner(&format!("Writing {} layers into {}", entries.len(), self.name()));
        let results: Vec<Result<Stored, registry::Error>> = runtime.block_on(
            stream::iter(entries.iter())
                .map(|(entry, source)| {
                    let sessions = sessions.clone();
                    async move {
                        layer_cache::store(&self.client, self.repository(), entry, source, sessions).await
                    }
                })
                .buffer_unordered(PARALLEL)
                .collect(),
        );
        spinner.finish_and_clear();
        for result in results {
            match result {
                Ok(Stored::Present) => summary.present += 1,
                Ok(Stored::Mounted) => summary.mounted += 1,
                Ok(Stored::Uploaded) => summary.uploaded += 1,
                Err(e) => {
                    summary.failed += 1;
                    if summary.failed == 1 {
                        tracing::warn!("cannot write into the layer cache {}: {e}", self.name());
                    }
                }
            }
        }
        printer.status(format!(
            "Layer cache {}: {} entries written ({} blobs sent, {} mounted, {} there){}",
            self.name(),
            entries.len() - summary.failed,
            summary.uploaded,
            summary.mounted,
            summary.present,
            match summary.failed {
                0 => String::new(),
                n => format!("; {n} failed"),
            }
        ));
        summary
    }
}

/// What [`RegistryCache::store`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreSummary {
    pub present: usize,
    pub mounted: usize,
    pub uploaded: usize,
    pub failed: usize,
}

/// The layer an entry describes; `None` for a compression this tool does not write.
pub fn layer_info(entry: &CacheEntry) -> Option<LayerInfo> {
    Some(LayerInfo {
        diff_id: entry.diff_id.clone(),
        digest: entry.layer.digest.clone(),
        size: entry.layer.size,
        uncompressed_size: entry.uncompressed_size,
        compression: image::compression_of(&entry.layer.media_type)?,
    })
}

/// The entry of a built layer under `key`, with what its build reported and learned of its
/// packages.
pub fn entry_of(key: &str, info: &LayerInfo, note: Option<String>, packages: Option<String>) -> CacheEntry {
    let media_type = info.compression.media_type();
    CacheEntry {
        key: key.to_string(),
        layer: oci::Descriptor::new(media_type, info.digest.clone(), info.size),
        diff_id: info.diff_id.clone(),
        uncompressed_size: info.uncompressed_size,
        note,
        packages,
    }
}

/// A progress callback that feeds a bar.
pub fn progress_of(bar: &indicatif::ProgressBar) -> registry::ProgressFn {
    let bar = bar.clone();
    Arc::new(move |n: u64| bar.inc(n))
}
