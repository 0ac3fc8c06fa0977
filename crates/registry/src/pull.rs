//! Pulling an image: the tag's index (or manifest), the chosen platforms' manifests, and
//! their blobs into the cache (hash-checked; an interrupted download is kept and continued
//! with a `Range` request), then an OCI image layout or a docker-archive written from there.
//! Nothing is written to the destination until everything has arrived and verified.

use std::io::Write;
use std::path::{Path, PathBuf};

use futures::stream::{self, StreamExt, TryStreamExt};
use oci::media_type::OCI_IMAGE_INDEX;
use oci::{media_type, Descriptor, Digest, ImageIndex, ImageManifest, OciLayout, Platform};
use reqwest::StatusCode;
use sha2::Digest as _;

use crate::api::{pull_scope, RemoteManifest, MAX_CONFIG};
use crate::upload::ProgressFn;
use crate::{Error, Reference, RegistryClient};

/// An image fetched into the cache, ready to be written out.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// What was pulled.
    pub reference: Reference,
    /// The tag's index or manifest, as the registry has it.
    pub root: RemoteManifest,
    /// The indexes the root lists (and those they list), with their bytes: written when
    /// the root is.
    pub indexes: Vec<(Descriptor, bytes::Bytes)>,
    /// Each chosen platform's manifest.
    pub images: Vec<PulledImage>,
    /// Whether `images` is every image of the root (then the root is written as it is).
    pub complete: bool,
    /// Every blob, with its file in the cache.
    pub blobs: Vec<(Descriptor, PathBuf)>,
}

/// One platform's image of a [`Pulled`].
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// Its descriptor (with the platform when the root is an index).
    pub descriptor: Descriptor,
    /// Its platform.
    pub platform: Platform,
    /// The manifest's bytes.
    pub bytes: bytes::Bytes,
}

/// How many levels of indexes below the tag's own are followed (an index of indexes of
/// manifests has one). Registries serve nested indexes rarely and never deeply; the bound
/// keeps a hostile one from sending us down an endless chain.
pub const MAX_INDEX_DEPTH: usize = 4;

/// How many nested indexes (at every depth together) are fetched at the most: each may be
/// [`crate::MAX_MANIFEST`] bytes, and all are kept for the layout.
pub const MAX_NESTED_INDEXES: usize = 64;

/// Reads the manifests of `reference` and chooses the images of `platforms` (all when
/// empty), without downloading blobs yet. Nested indexes are followed (to
/// [`MAX_INDEX_DEPTH`]); a manifest listed twice is fetched once. Pulling every image of an
/// index that lists something other than an image manifest or an index is refused: the
/// copy would point at a document it does not hold.
pub async fn resolve_pull(
    client: &RegistryClient,
    reference: &Reference,
    platforms: &[Platform],
) -> Result<Pulled, Error> {
    let repo = &reference.repository;
    let scope = pull_scope(repo);
    let root = client.get_manifest(repo, &reference.target(), &scope).await?.ok_or_else(|| {
        Error::NotFound { what: format!("the image {reference}"), registry: reference.registry.clone() }
    })?;
    let mut chosen: Vec<Descriptor> = Vec::new();
    let mut complete = true;
    let mut indexes = Vec::new();
    if media_type::is_index(&root.media_type) {
        let tree = read_index_tree(client, reference, &root).await?;
        indexes = tree.nested;
        // Each manifest once, in the order the indexes list them.
        let mut images: Vec<&Descriptor> = Vec::new();
        for entry in &tree.manifests {
            if !images.iter().any(|d| d.digest == entry.digest) {
                images.push(entry);
            }
        }
        if platforms.is_empty() {
            if let Some(other) = tree.others.first() {
                return Err(Error::UnknownChild {
                    reference: reference.to_string(),
                    digest: other.digest.clone(),
                    media_type: fetch::escape(&other.media_type).into_owned(),
                });
            }
            chosen = images.into_iter().cloned().collect();
        } else {
            for platform in platforms {
                let found =
                    tree.manifests.iter().find(|d| d.platform.as_ref().is_some_and(|p| platform.matches(p)));
                let Some(found) = found else {
                    let have: Vec<String> = tree
                        .manifests
                        .iter()
                        .filter_map(|d| d.platform.as_ref())
                        .map(Platform::to_string)
                        .collect();
                    return Err(Error::Unsupported(format!(
                        "{reference} has no image for {platform}; it has {}",
                        if have.is_empty() { "no platforms listed".to_string() } else { have.join(", ") }
                    )));
                };
                if !chosen.iter().any(|c| c.digest == found.digest) {
                    chosen.push(found.clone());
                }
            }
            complete = chosen.len() == images.len() && tree.others.is_empty();
        }
    } else {
        chosen.push(Descriptor::new(root.media_type.clone(), root.digest.clone(), root.bytes.len() as u64));
    }
    let mut images = Vec::new();
    for descriptor in chosen {
        let manifest = if descriptor.digest == root.digest {
            root.clone()
        } else {
            fetch_child(client, reference, &descriptor).await?
        };
        if !media_type::is_manifest(&manifest.media_type) {
            return Err(Error::Protocol {
                url: reference.to_string(),
                reason: format!(
                    "{} is listed as an image manifest but is a `{}`",
                    descriptor.digest, manifest.media_type
                ),
            });
        }
        let platform = descriptor.platform.clone().unwrap_or_else(|| Platform::new("unknown", "unknown"));
        images.push(PulledImage { descriptor, platform, bytes: manifest.bytes });
    }
    Ok(Pulled { reference: reference.clone(), root, indexes, images, complete, blobs: Vec::new() })
}

/// What the indexes under a tag list.
struct IndexTree {
    /// Every image manifest listed, in order, duplicates kept (each may carry a platform).
    manifests: Vec<Descriptor>,
    /// The nested indexes below the root, each once, with their bytes.
    nested: Vec<(Descriptor, bytes::Bytes)>,
    /// Whatever is neither an image manifest nor an index.
    others: Vec<Descriptor>,
}

/// Walks the index `root` and the indexes it lists, down to [`MAX_INDEX_DEPTH`].
async fn read_index_tree(
    client: &RegistryClient,
    reference: &Reference,
    root: &RemoteManifest,
) -> Result<IndexTree, Error> {
    let mut tree = IndexTree { manifests: Vec::new(), nested: Vec::new(), others: Vec::new() };
    let mut level = vec![parse_index(reference, &root.digest, &root.bytes)?];
    for depth in 0..=MAX_INDEX_DEPTH {
        let mut next = Vec::new();
        for index in level {
            for entry in index.manifests {
                if media_type::is_manifest(&entry.media_type) {
                    tree.manifests.push(entry);
                } else if media_type::is_index(&entry.media_type) {
                    if entry.digest == root.digest
                        || tree.nested.iter().any(|(d, _)| d.digest == entry.digest)
                    {
                        continue;
                    }
                    if depth == MAX_INDEX_DEPTH {
                        return Err(Error::TooDeep {
                            reference: reference.to_string(),
                            digest: entry.digest.clone(),
                            limit: MAX_INDEX_DEPTH,
                        });
                    }
                    if tree.nested.len() == MAX_NESTED_INDEXES {
                        return Err(Error::Protocol {
                            url: reference.to_string(),
                            reason: format!(
                                "it lists more than {MAX_NESTED_INDEXES} nested image indexes; no real image has \
                                 that many (one per platform at most)"
                            ),
                        });
                    }
                    let child = fetch_child(client, reference, &entry).await?;
                    if !media_type::is_index(&child.media_type) {
                        return Err(Error::Protocol {
                            url: reference.to_string(),
                            reason: format!(
                                "{} is listed as an image index but is a `{}`",
                                entry.digest,
                                fetch::escape(&child.media_type)
                            ),
                        });
                    }
                    next.push(parse_index(reference, &entry.digest, &child.bytes)?);
                    tree.nested.push((entry, child.bytes));
                } else if !tree.others.iter().any(|d| d.digest == entry.digest) {
                    tree.others.push(entry);
                }
            }
        }
        level = next;
    }
    Ok(tree)
}

fn parse_index(reference: &Reference, digest: &Digest, bytes: &[u8]) -> Result<ImageIndex, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Protocol {
        url: reference.to_string(),
        reason: format!("the image index {digest} does not parse: {e}"),
    })
}

/// The manifest or index `descriptor` points at, checked against its digest and size.
async fn fetch_child(
    client: &RegistryClient,
    reference: &Reference,
    descriptor: &Descriptor,
) -> Result<RemoteManifest, Error> {
    let repo = &reference.repository;
    let found =
        client.get_manifest(repo, descriptor.digest.as_str(), &pull_scope(repo)).await?.ok_or_else(|| {
            Error::NotFound {
                what: format!("manifest {} of {reference}", descriptor.digest),
                registry: reference.registry.clone(),
            }
        })?;
    if found.bytes.len() as u64 != descriptor.size {
        return Err(Error::Protocol {
            url: format!("{reference}"),
            reason: format!(
                "manifest {} has {} bytes; the index says {}",
                descriptor.digest,
                found.bytes.len(),
                descriptor.size
            ),
        });
    }
    Ok(found)
}

impl Pulled {
    /// The configuration and layer descriptors of every chosen image, each once.
    pub fn blob_descriptors(&self) -> Result<Vec<Descriptor>, Error> {
        let mut blobs: Vec<Descriptor> = Vec::new();
        for image in &self.images {
            let manifest: ImageManifest =
                serde_json::from_slice(&image.bytes).map_err(|e| Error::Protocol {
                    url: self.reference.to_string(),
                    reason: format!("manifest {} does not parse: {e}", image.descriptor.digest),
                })?;
            if manifest.config.size > MAX_CONFIG {
                return Err(Error::Protocol {
                    url: self.reference.to_string(),
                    reason: format!(
                        "manifest {} gives its configuration {} bytes, more than the {MAX_CONFIG} an \
                         image configuration may have here",
                        image.descriptor.digest, manifest.config.size
                    ),
                });
            }
            for blob in std::iter::once(manifest.config).chain(manifest.layers) {
                if !blobs.iter().any(|b| b.digest == blob.digest) {
                    blobs.push(blob);
                }
            }
        }
        Ok(blobs)
    }
}

/// Downloads every blob of `pulled` into `cache` (`parallel` at once), hash-checked;
/// partial downloads are kept in `cache/registry/partial` and continued on the next try.
/// A single-manifest image then learns its platform from its configuration, which must
/// match `platforms` when given.
pub async fn fetch_blobs(
    client: &RegistryClient,
    pulled: &mut Pulled,
    platforms: &[Platform],
    cache: &fetch::Cache,
    parallel: usize,
    progress: ProgressFn,
) -> Result<(), Error> {
    let blobs = pulled.blob_descriptors()?;
    let repo = pulled.reference.repository.clone();
    let scope = pull_scope(&repo);
    let jobs = blobs.into_iter().map(|blob| {
        let (repo, scope, progress) = (&repo, &scope, &progress);
        async move {
            let path = download_blob(client, repo, scope, &blob, cache, progress).await?;
            Ok::<_, Error>((blob, path))
        }
    });
    pulled.blobs = stream::iter(jobs).buffered(parallel.max(1)).try_collect().await?;
    if !media_type::is_index(&pulled.root.media_type) {
        let manifest: ImageManifest =
            serde_json::from_slice(&pulled.images[0].bytes).map_err(|e| Error::Protocol {
                url: pulled.reference.to_string(),
                reason: format!("the manifest does not parse: {e}"),
            })?;
        let path = &pulled
            .blobs
            .iter()
            .find(|(d, _)| d.digest == manifest.config.digest)
            .expect("the config was fetched")
            .1;
        let bytes = bounded::read_file(path, MAX_CONFIG, "the image configuration")
            .map_err(Error::io("read", path))?;
        let config: oci::ImageConfig = serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
            url: pulled.reference.to_string(),
            reason: format!("the image configuration does not parse: {e}"),
        })?;
        let platform = config.platform();
        if let Some(wanted) = platforms.iter().find(|p| !p.matches(&platform)) {
            return Err(Error::Unsupported(format!(
                "{} is a single {platform} image, not {wanted}",
                pulled.reference
            )));
        }
        pulled.images[0].platform = platform;
    }
    Ok(())
}

/// One blob into the cache, continuing a partial download, verified before it is stored.
pub(crate) async fn download_blob(
    client: &RegistryClient,
    repo: &str,
    scope: &str,
    blob: &Descriptor,
    cache: &fetch::Cache,
    progress: &ProgressFn,
) -> Result<PathBuf, Error> {
    let dest = cache.blob_path(blob.digest.hex()).map_err(Error::Cache)?;
    if std::fs::metadata(&dest).is_ok_and(|m| m.len() == blob.size) {
        // Re-hashed before reuse: a damaged one is removed and downloaded again.
        let (store, hex) = (cache.clone(), blob.digest.hex().to_string());
        let state = tokio::task::spawn_blocking(move || store.check_blob(&hex))
            .await
            .map_err(|e| Error::io("hash", &dest)(std::io::Error::other(e)))?
            .map_err(Error::Cache)?;
        if let fetch::BlobState::Intact(path) = state {
            progress(blob.size);
            return Ok(path);
        }
    }
    let partial_dir = cache.root().join("registry").join("partial");
    std::fs::create_dir_all(&partial_dir).map_err(Error::io("create", &partial_dir))?;
    let partial = partial_dir.join(blob.digest.hex());
    let resumed_from = std::fs::metadata(&partial).map_or(0, |m| m.len()).min(blob.size);
    progress(resumed_from);
    let mut failures = 0;
    let mut restarted = false;
    loop {
        match download_attempt(client, repo, scope, blob, &partial, progress).await {
            Ok(()) => {}
            Err(e @ Error::Request { .. }) if failures < client.retries() => {
                failures += 1;
                let wait = client.backoff(failures);
                tracing::debug!("downloading {} stopped ({e}); continuing in {wait:?}", blob.digest);
                tokio::time::sleep(wait).await;
                continue;
            }
            Err(e) => return Err(e),
        }
        let actual = hash_file(&partial)?;
        if actual == blob.digest {
            break;
        }
        let _ = std::fs::remove_file(&partial);
        // A partial download left by an earlier run may be what is wrong: start over once.
        if !restarted && resumed_from > 0 {
            restarted = true;
            continue;
        }
        return Err(Error::DigestMismatch {
            what: "blob",
            url: format!("{}/{repo}", client.registry()),
            expected: blob.digest.clone(),
            actual,
        });
    }
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    }
    std::fs::rename(&partial, &dest).map_err(Error::io("store", &dest))?;
    Ok(dest)
}

/// Appends to `partial` what the registry sends from its current length on, until it has
/// the blob's size.
async fn download_attempt(
    client: &RegistryClient,
    repo: &str,
    scope: &str,
    blob: &Descriptor,
    partial: &Path,
    progress: &ProgressFn,
) -> Result<(), Error> {
    let mut have = std::fs::metadata(partial).map_or(0, |m| m.len());
    if have > blob.size {
        have = 0;
    }
    if have == blob.size {
        return Ok(());
    }
    if have > 0 {
        tracing::info!("continuing the download of {} at byte {have} of {}", blob.digest, blob.size);
    }
    let mut reply = client.get_blob(repo, &blob.digest, have, scope).await?;
    let start = if reply.status() == StatusCode::PARTIAL_CONTENT {
        let range_start = reply
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().strip_prefix("bytes "))
            .and_then(|v| v.split('-').next())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if range_start != Some(have) {
            return Err(Error::Protocol {
                url: format!("{}/{repo}", client.registry()),
                reason: format!(
                    "asked for blob {} from byte {have}, got a range starting at {range_start:?}",
                    blob.digest
                ),
            });
        }
        have
    } else {
        0
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(start > 0)
        .truncate(start == 0)
        .open(partial)
        .map_err(Error::io("write", partial))?;
    let mut written = start;
    loop {
        let chunk = reply.chunk().await.map_err(|e| Error::Request {
            method: "GET".into(),
            url: format!("{}/{repo} blob {}", client.registry(), blob.digest),
            attempts: 1,
            reason: crate::client::describe(&e),
        });
        let chunk = match chunk {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                file.flush().map_err(Error::io("write", partial))?;
                return Err(e);
            }
        };
        written += chunk.len() as u64;
        if written > blob.size {
            drop(file);
            let _ = std::fs::remove_file(partial);
            return Err(Error::Protocol {
                url: format!("{}/{repo}", client.registry()),
                reason: format!("blob {} is larger than its descriptor's {} bytes", blob.digest, blob.size),
            });
        }
        file.write_all(&chunk).map_err(Error::io("write", partial))?;
        progress(chunk.len() as u64);
    }
    file.sync_all().map_err(Error::io("sync", partial))?;
    if written != blob.size {
        return Err(Error::Request {
            method: "GET".into(),
            url: format!("{}/{repo} blob {}", client.registry(), blob.digest),
            attempts: 1,
            reason: format!("the reply ended after {written} of {} bytes", blob.size),
        });
    }
    Ok(())
}

fn hash_file(path: &Path) -> Result<Digest, Error> {
    let mut file = std::fs::File::open(path).map_err(Error::io("read", path))?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(Error::io("read", path))?;
    Ok(Digest::from_sha256(hasher.finalize().into()))
}

/// Writes `pulled` as a new OCI image layout at `out` (absent or an empty directory), its
/// `index.json` naming it `ref_name`: the registry's index byte for byte when every image
/// was pulled, else the one chosen manifest or a new index of the chosen ones. The layout
/// is assembled beside `out` and renamed into place.
pub fn write_oci(pulled: &Pulled, out: &Path, ref_name: &str) -> Result<Descriptor, Error> {
    let layout_err = |source| Error::Layout { path: out.to_path_buf(), source };
    let staging = oci::StagedLayout::beside(out).map_err(layout_err)?;
    let layout = staging.layout();
    for (descriptor, path) in &pulled.blobs {
        copy_cached_blob(layout, path, descriptor).map_err(layout_err)?;
    }
    for image in &pulled.images {
        layout.put_blob(&image.bytes).map_err(layout_err)?;
    }
    let root = if pulled.complete {
        for (_, bytes) in &pulled.indexes {
            layout.put_blob(bytes).map_err(layout_err)?;
        }
        let blob = layout.put_blob(&pulled.root.bytes).map_err(layout_err)?;
        blob.descriptor(pulled.root.media_type.clone())
    } else if let [only] = pulled.images.as_slice() {
        Descriptor { platform: Some(only.platform.clone()), annotations: None, ..only.descriptor.clone() }
    } else {
        let manifests =
            pulled.images.iter().map(|i| Descriptor { annotations: None, ..i.descriptor.clone() }).collect();
        layout.put_json(&ImageIndex::new(manifests), OCI_IMAGE_INDEX).map_err(layout_err)?
    };
    // Whatever the registry sent, the layout moves into place only if every blob its
    // index reaches is in it.
    layout
        .check_complete(&root, MAX_INDEX_DEPTH + 1)
        .map_err(|source| Error::IncompleteLayout { reference: pulled.reference.to_string(), source })?;
    layout.set_ref(ref_name, &root).map_err(layout_err)?;
    // The caller checked `out` is absent or empty; an empty directory is replaced.
    staging.commit().map_err(layout_err)?;
    Ok(root)
}

/// Copies the cache file `path` into `layout` as the blob `descriptor`, hashed on the way: a
/// file that changed since it was checked is never written under any digest, and is removed
/// from the cache so the next pull fetches it again.
fn copy_cached_blob(layout: &OciLayout, path: &Path, descriptor: &Descriptor) -> Result<(), oci::Error> {
    match layout.copy_blob_checked(path, &descriptor.digest) {
        Ok(_) => Ok(()),
        Err(e @ oci::Error::DigestMismatch { .. }) => {
            let _ = std::fs::remove_file(path);
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// Writes the one image of `pulled` as a docker-archive at `out`, tagged `repo_tag`.
pub fn write_archive(pulled: &Pulled, out: &Path, repo_tag: &str) -> Result<(), Error> {
    let [image] = pulled.images.as_slice() else {
        return Err(Error::Unsupported(format!(
            "a docker-archive holds one platform, and {} images were chosen; pass one --platform",
            pulled.images.len()
        )));
    };
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".pull.tmp-")
        .tempdir_in(parent)
        .map_err(Error::io("create a temporary directory in", parent))?;
    let layout_err = |source| Error::Layout { path: tmp.path().to_path_buf(), source };
    let layout = OciLayout::create(tmp.path()).map_err(layout_err)?;
    for (descriptor, path) in &pulled.blobs {
        copy_cached_blob(&layout, path, descriptor).map_err(layout_err)?;
    }
    let blob = layout.put_blob(&image.bytes).map_err(layout_err)?;
    let descriptor = blob.descriptor(image.descriptor.media_type.clone());
    oci::write_docker_archive(&layout, &descriptor, &[repo_tag.to_string()], out)
        .map_err(|source| Error::Layout { path: out.to_path_buf(), source })
}
