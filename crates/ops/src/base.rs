//! `base = "REF"`: the image a build starts from, pinned by digest in the lock.
//!
//! REF is a registry reference (`HOST[:PORT]/REPO[:TAG]`, pulled with the registry code and
//! Docker's credentials) or `oci:DIR[:NAME]`, an OCI image layout on disk (a path relative to
//! the manifest's directory). `lock` records the digest the reference has then; `build`
//! fetches exactly that digest (hash-checked) and puts the base's layers under the image's
//! own, merging the base's configuration with the manifest's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lockfile::TargetPlatform;
use oci::media_type;
use oci::spec::{ImageConfig, ImageIndex, ImageManifest};
use oci::{Descriptor, Digest, OciLayout};
use registry::{Reference, RegistryClient};

use crate::remote::{client_for, registry_error, runtime, stored_credentials};
use crate::Error;
use crate::Reporter;

/// Where a base image comes from.
#[derive(Debug, Clone)]
pub enum BaseSource {
    /// `oci:DIR[:NAME]`: the image named `NAME` in the layout's `index.json` (its only image
    /// when no name is given).
    Layout { dir: PathBuf, name: Option<String> },
    /// A registry reference.
    Registry(Reference),
}

impl BaseSource {
    /// Parses the manifest's `base`; `dir` is the manifest's directory.
    pub fn parse(text: &str, dir: &Path) -> Result<BaseSource, Error> {
        if let Some(rest) = text.strip_prefix("oci:") {
            let (path, name) = match rest.rsplit_once(':') {
                Some((path, name)) if !name.contains('/') => (path, Some(name.to_string())),
                _ => (rest, None),
            };
            if path.is_empty() {
                return Err(Error::user(format!("base `{text}` names no directory"))
                    .with_hint("write base = \"oci:DIR\" or base = \"oci:DIR:NAME\""));
            }
            return Ok(BaseSource::Layout { dir: dir.join(path), name });
        }
        let reference = Reference::parse(text).map_err(|e| {
            Error::user(format!("base `{text}`: {e}"))
                .with_hint("write HOST[:PORT]/REPOSITORY[:TAG], or oci:DIR for an OCI image layout")
        })?;
        Ok(BaseSource::Registry(reference))
    }
}

/// The digest `source` names now (of its index, or of its single manifest).
pub fn resolve_digest(source: &BaseSource) -> Result<Digest, Error> {
    match source {
        BaseSource::Layout { dir, name } => Ok(layout_root(dir, name.as_deref())?.1.digest),
        BaseSource::Registry(reference) => {
            let client = client(reference)?;
            let failed = |e| registry_error(&format!("cannot read the base image {reference}"), e);
            // Only the root is read: which images are used is decided by the platforms built.
            let repo = &reference.repository;
            let root = runtime()?
                .block_on(client.get_manifest(repo, &reference.target(), &registry::pull_scope(repo)))
                .map_err(failed)?
                .ok_or_else(|| {
                    failed(registry::Error::NotFound {
                        what: format!("the image {reference}"),
                        registry: reference.registry.clone(),
                    })
                })?;
            Ok(root.digest)
        }
    }
}

/// One platform's image of the base: its configuration and layers, and the blob file of each
/// layer.
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// What the image is assembled over.
    pub image: image::Base,
    /// The file of each of `image.layers`, in the same order.
    pub blobs: Vec<PathBuf>,
}

/// The base images of `platforms`, from exactly `digest`: blobs are hash-checked (pulled
/// into the cache, or read from the layout).
pub fn fetch(
    source: &BaseSource,
    digest: &Digest,
    platforms: &[TargetPlatform],
    printer: &dyn Reporter,
) -> Result<HashMap<TargetPlatform, BaseImage>, Error> {
    let wanted: Vec<oci::Platform> =
        platforms.iter().map(|p| oci::Platform::new("linux", p.arch().name())).collect();
    let mut out = HashMap::new();
    match source {
        BaseSource::Layout { dir, name } => {
            let (layout, root) = layout_root(dir, name.as_deref())?;
            if &root.digest != digest {
                return Err(stale(&format!("oci:{}", dir.display()), digest, &root.digest));
            }
            let bad = |e: oci::Error| {
                Error::from_error(format!("cannot read the base image in {}", dir.display()), e)
            };
            for (platform, oci_platform) in platforms.iter().zip(&wanted) {
                let manifest_descriptor = if media_type::is_index(&root.media_type) {
                    let index: ImageIndex = layout.read_image_index(&root).map_err(bad)?;
                    index
                        .manifests
                        .iter()
                        .find(|d| d.platform.as_ref().is_some_and(|p| oci_platform.matches(p)))
                        .cloned()
                        .ok_or_else(|| no_platform(&format!("oci:{}", dir.display()), *platform))?
                } else {
                    root.clone()
                };
                let manifest = layout.read_manifest(&manifest_descriptor).map_err(bad)?;
                let config = layout.read_config(&manifest.config).map_err(bad)?;
                check_platform(&config, *platform, &format!("oci:{}", dir.display()))?;
                for layer in &manifest.layers {
                    let mut blob = layout.open_blob(&layer.digest).map_err(bad)?;
                    std::io::copy(&mut blob, &mut std::io::sink()).map_err(|e| {
                        Error::from_error(format!("cannot read {}", blob.path().display()), e)
                    })?;
                    blob.verify().map_err(bad)?;
                }
                let blobs = manifest.layers.iter().map(|l| layout.blob_path(&l.digest)).collect();
                let image = image::Base { config, layers: manifest.layers };
                out.insert(*platform, BaseImage { image, blobs });
            }
        }
        BaseSource::Registry(reference) => {
            let pinned = Reference { tag: None, digest: Some(digest.clone()), ..reference.clone() };
            let client = client(reference)?;
            let runtime = runtime()?;
            let failed = |e| registry_error(&format!("cannot pull the base image {reference}@{digest}"), e);
            let mut pulled =
                runtime.block_on(registry::resolve_pull(&client, &pinned, &wanted)).map_err(failed)?;
            let cache = crate::env::cache()?;
            let spinner = printer.spinner(&format!("Pulling the base image {reference}"));
            let progress: registry::ProgressFn = Arc::new(|_| {});
            let fetched =
                runtime.block_on(registry::fetch_blobs(&client, &mut pulled, &wanted, &cache, 4, progress));
            spinner.finish_and_clear();
            fetched.map_err(failed)?;
            let blobs: HashMap<&Digest, &PathBuf> =
                pulled.blobs.iter().map(|(d, p)| (&d.digest, p)).collect();
            for (platform, oci_platform) in platforms.iter().zip(&wanted) {
                let image = pulled
                    .images
                    .iter()
                    .find(|i| oci_platform.matches(&i.platform))
                    .ok_or_else(|| no_platform(&reference.to_string(), *platform))?;
                let manifest: ImageManifest = serde_json::from_slice(&image.bytes).map_err(|e| {
                    Error::from_error(format!("the base image {reference} has a bad manifest"), e)
                })?;
                let config_path = blobs.get(&manifest.config.digest).ok_or_else(|| {
                    Error::user(format!("the base image {reference}: its configuration was not pulled"))
                })?;
                let config: ImageConfig = serde_json::from_slice(
                    &bounded::read_file(config_path, registry::MAX_CONFIG, "the base configuration")
                        .map_err(|e| Error::from_error("cannot read the base configuration", e))?,
                )
                .map_err(|e| {
                    Error::from_error(format!("the base image {reference} has a bad configuration"), e)
                })?;
                check_platform(&config, *platform, &reference.to_string())?;
                let mut files = Vec::new();
                for layer in &manifest.layers {
                    let path = blobs.get(&layer.digest).ok_or_else(|| {
                        Error::user(format!(
                            "the base image {reference}: layer {} was not pulled",
                            layer.digest
                        ))
                    })?;
                    files.push((*path).clone());
                }
                let image = image::Base { config, layers: manifest.layers };
                out.insert(*platform, BaseImage { image, blobs: files });
            }
        }
    }
    Ok(out)
}

fn client(reference: &Reference) -> Result<RegistryClient, Error> {
    let net = crate::remote::NetOptions { insecure: false, retries: 3 };
    client_for(&reference.registry, stored_credentials(&reference.registry)?, &net)
}

/// The layout at `dir` and the descriptor of its image `name` (its only one without a name).
fn layout_root(dir: &Path, name: Option<&str>) -> Result<(OciLayout, Descriptor), Error> {
    let shown = format!("oci:{}", dir.display());
    let layout = OciLayout::open(dir).map_err(|e| {
        Error::from_error(format!("base {shown} is not an OCI image layout"), e)
            .with_hint("build one with `marqo-base build --oci DIR` or `marqo-base pull REF --oci DIR`")
    })?;
    let index = layout.index().map_err(|e| Error::from_error(format!("cannot read {shown}"), e))?;
    let root = match name {
        Some(name) => index.find_ref(name).cloned().ok_or_else(|| {
            Error::user(format!("base {shown} has no image named `{name}`"))
                .with_hint("the names are the org.opencontainers.image.ref.name of its index.json")
        })?,
        None => match index.manifests.as_slice() {
            [only] => only.clone(),
            _ => {
                return Err(Error::user(format!(
                    "base {shown} holds {} images; say which",
                    index.manifests.len()
                ))
                .with_hint("write base = \"oci:DIR:NAME\""))
            }
        },
    };
    Ok((layout, root))
}

fn check_platform(config: &ImageConfig, platform: TargetPlatform, shown: &str) -> Result<(), Error> {
    if config.os == "linux" && config.architecture == platform.arch().name() {
        return Ok(());
    }
    Err(Error::user(format!(
        "the base image {shown} for {platform} is a {}/{} image",
        config.os, config.architecture
    )))
}

fn no_platform(shown: &str, platform: TargetPlatform) -> Error {
    Error::user(format!("the base image {shown} has no image for {platform}"))
        .with_hint("use a base image with every platform of the manifest, or remove the platform")
}

fn stale(shown: &str, locked: &Digest, now: &Digest) -> Error {
    Error::user(format!("the base image {shown} is now {now}; the lock has {locked}"))
        .with_hint("run `marqo-base lock -P base` to move the lock to it")
}
