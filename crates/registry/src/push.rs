//! Pushing an image from an OCI image layout: read what the layout holds, plan (which
//! blobs the registry has, which to mount, which to send, what `--tag next` means), then
//! push in the order that never leaves a tag pointing at something missing: blobs, then
//! each platform's manifest by digest, then (when signing) the index by digest and the
//! signatures, then the index by tag, last: a tag is never seen unsigned.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use oci::{media_type, Descriptor, Digest, OciLayout, Platform};

use crate::api::push_scope;
use crate::referrers::{attach, Attached, Attachment};
use crate::signature::{plan_signatures, write_signatures, SignatureRecord, ToSign};
use crate::tags::next_tag;
use crate::upload::{LocalBlob, ProgressFn, Sent, Sessions, Upload};
use crate::{Error, Reference, RegistryClient};

/// A tag to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagSpec {
    /// The highest integer tag in the repository plus one (`--tag next`).
    Next,
    /// This tag.
    Named(String),
}

/// An image read from a layout, ready to push.
#[derive(Debug)]
pub struct LayoutSource {
    layout: OciLayout,
    /// The index (or single manifest) the layout's ref points at.
    pub root: Descriptor,
    root_bytes: Bytes,
    /// Each platform's image, in the index's order.
    pub images: Vec<SourceImage>,
    /// Every config and layer blob, each once, in first-use order.
    pub blobs: Vec<Descriptor>,
    /// Blobs not in the layout, with the repository of the same registry that holds them
    /// (layers a build took from a registry cache): they are mounted, never read.
    remote: BTreeMap<Digest, String>,
}

/// One platform's image in a [`LayoutSource`].
#[derive(Debug, Clone)]
pub struct SourceImage {
    /// Its platform, from the index (else from its configuration).
    pub platform: Platform,
    /// The manifest's descriptor.
    pub descriptor: Descriptor,
    /// The configuration's labels (the lock fingerprint among them).
    pub labels: BTreeMap<String, String>,
    manifest_bytes: Bytes,
    blobs: Vec<Digest>,
}

impl SourceImage {
    /// Its manifest's bytes.
    pub fn manifest_bytes(&self) -> &Bytes {
        &self.manifest_bytes
    }

    /// An image already in a registry (its manifest's `bytes`, the digests of its blobs).
    pub(crate) fn remote(
        platform: Platform,
        descriptor: Descriptor,
        labels: BTreeMap<String, String>,
        manifest_bytes: Bytes,
        blobs: Vec<Digest>,
    ) -> SourceImage {
        SourceImage { platform, descriptor, labels, manifest_bytes, blobs }
    }

    /// The digests of its configuration and layers.
    pub fn blob_digests(&self) -> &[Digest] {
        &self.blobs
    }
}

impl LayoutSource {
    /// Reads the image that `name` (or, with `None`, the only entry) of the layout at `dir`
    /// points at: its index or manifest, every manifest, and the list of blobs, checking that
    /// each blob is in the layout with its size.
    pub fn read(dir: &std::path::Path, name: Option<&str>) -> Result<LayoutSource, Error> {
        LayoutSource::read_with_remote(dir, name, BTreeMap::new())
    }

    /// [`read`](Self::read), where the blobs of `remote` may be missing from the layout: they
    /// are in the named repository of the registry pushed to, and are mounted from it.
    pub fn read_with_remote(
        dir: &std::path::Path,
        name: Option<&str>,
        remote: BTreeMap<Digest, String>,
    ) -> Result<LayoutSource, Error> {
        let layout_err = |source| Error::Layout { path: dir.to_path_buf(), source };
        let layout = OciLayout::open(dir).map_err(layout_err)?;
        let root = match name {
            Some(name) => layout.resolve(name).map_err(layout_err)?,
            None => {
                let index = layout.index().map_err(layout_err)?;
                match index.manifests.as_slice() {
                    [only] => only.clone(),
                    [] => {
                        return Err(Error::Unsupported(format!(
                            "the OCI image layout `{}` holds no image",
                            dir.display()
                        )))
                    }
                    many => {
                        let names: Vec<&str> =
                            many.iter().map(|d| d.ref_name().unwrap_or("(unnamed)")).collect();
                        return Err(Error::Unsupported(format!(
                            "the OCI image layout `{}` holds {} images ({}); name one with --ref",
                            dir.display(),
                            many.len(),
                            names.join(", ")
                        )));
                    }
                }
            }
        };
        let root_bytes = Bytes::from(layout.read_blob(&root.digest).map_err(layout_err)?);
        let mut children = Vec::new();
        if media_type::is_index(&root.media_type) {
            let index = layout.read_image_index(&root).map_err(layout_err)?;
            for child in index.manifests {
                if !media_type::is_manifest(&child.media_type) {
                    return Err(Error::Unsupported(format!(
                        "the index {} of `{}` lists {} of media type `{}`; only image manifests are supported there",
                        root.digest,
                        dir.display(),
                        child.digest,
                        child.media_type
                    )));
                }
                children.push(child);
            }
        } else if media_type::is_manifest(&root.media_type) {
            children.push(Descriptor::new(root.media_type.clone(), root.digest.clone(), root.size));
        } else {
            return Err(Error::Unsupported(format!(
                "`{}` points at {} of media type `{}`, which is neither an image index nor a manifest",
                dir.display(),
                root.digest,
                root.media_type
            )));
        }
        let mut images = Vec::new();
        let mut blobs: Vec<Descriptor> = Vec::new();
        let mut seen = BTreeSet::new();
        for child in children {
            let manifest = layout.read_manifest(&child).map_err(layout_err)?;
            let config = layout.read_config(&manifest.config).map_err(layout_err)?;
            let mut image_blobs = Vec::new();
            for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
                let path = layout.blob_path(&blob.digest);
                if remote.contains_key(&blob.digest) && !path.exists() {
                    image_blobs.push(blob.digest.clone());
                    if seen.insert(blob.digest.clone()) {
                        blobs.push(blob.clone());
                    }
                    continue;
                }
                let size = std::fs::metadata(&path).map(|m| m.len()).map_err(|_| {
                    layout_err(oci::Error::MissingBlob {
                        layout: dir.to_path_buf(),
                        digest: blob.digest.clone(),
                        path: path.clone(),
                    })
                })?;
                if size != blob.size {
                    return Err(layout_err(oci::Error::SizeMismatch {
                        path,
                        expected: blob.size,
                        actual: size,
                    }));
                }
                image_blobs.push(blob.digest.clone());
                if seen.insert(blob.digest.clone()) {
                    blobs.push(blob.clone());
                }
            }
            let manifest_bytes = Bytes::from(layout.read_blob(&child.digest).map_err(layout_err)?);
            images.push(SourceImage {
                platform: child.platform.clone().unwrap_or_else(|| config.platform()),
                labels: config.config.labels.clone(),
                descriptor: child,
                manifest_bytes,
                blobs: image_blobs,
            });
        }
        Ok(LayoutSource { layout, root, root_bytes, images, blobs, remote })
    }

    /// Where the layout holds the blob `digest` (`None` for one mounted from elsewhere).
    pub fn blob_path(&self, digest: &Digest) -> Option<std::path::PathBuf> {
        let path = self.layout.blob_path(digest);
        path.is_file().then_some(path)
    }

    fn local(&self, blob: &Descriptor) -> LocalBlob {
        LocalBlob { digest: blob.digest.clone(), size: blob.size, path: self.layout.blob_path(&blob.digest) }
    }
}

/// What to do with a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobAction {
    /// The repository has it.
    Present,
    /// Mount it from this repository of the same registry.
    Mount(String),
    /// Send it.
    Upload,
}

/// A blob and what the push will do with it.
#[derive(Debug, Clone)]
pub struct PlannedBlob {
    /// The blob.
    pub descriptor: Descriptor,
    /// What will be done.
    pub action: BlobAction,
}

/// What a push will do, for the user to confirm.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The repository pushed to (its tag and digest unset).
    pub repository: Reference,
    /// The tags, with `next` resolved.
    pub tags: Vec<String>,
    /// The tag that `--tag next` became, if it was asked for.
    pub next: Option<String>,
    /// The index (or manifest) the tags will point at.
    pub root: Descriptor,
    /// Each platform's manifest.
    pub images: Vec<SourceImage>,
    /// Every blob.
    pub blobs: Vec<PlannedBlob>,
    scope: String,
}

impl Plan {
    pub(crate) fn new(
        repository: Reference,
        tags: Vec<String>,
        next: Option<String>,
        root: Descriptor,
        images: Vec<SourceImage>,
        blobs: Vec<PlannedBlob>,
        scope: String,
    ) -> Plan {
        Plan { repository, tags, next, root, images, blobs, scope }
    }

    /// Count and total size of the blobs with `action` matching.
    pub fn count(&self, matches: impl Fn(&BlobAction) -> bool) -> (usize, u64) {
        self.blobs
            .iter()
            .filter(|b| matches(&b.action))
            .fold((0, 0), |(n, size), b| (n + 1, size + b.descriptor.size))
    }
}

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// The tags (at least one).
    pub tags: Vec<TagSpec>,
    /// Repositories of the same registry to mount missing blobs from.
    pub mount_from: Vec<String>,
    /// Blobs larger than this go in chunks of this size.
    pub chunk_size: u64,
    /// At most this many blobs at once.
    pub parallel: usize,
    /// The page size asked for when listing tags (`n=`); `None` lets the registry choose.
    pub tag_page_size: Option<u32>,
    /// Signatures to store before any tag is set (see [`crate::signature`]).
    pub signatures: Vec<ToSign>,
    /// Documents (SBOMs) to attach to the images before any tag is set (see
    /// [`crate::referrers`]).
    pub attachments: Vec<Attachment>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            tags: Vec::new(),
            mount_from: Vec::new(),
            chunk_size: 16 * 1024 * 1024,
            parallel: 4,
            tag_page_size: None,
            signatures: Vec::new(),
            attachments: Vec::new(),
        }
    }
}

/// Another pusher's image holds a tag that this push set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Race {
    /// The tag.
    pub tag: String,
    /// What we pushed.
    pub ours: Digest,
    /// What the tag points at now (`None`: nothing).
    pub theirs: Option<Digest>,
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The tags set, in order (`next` may have moved on if its number was taken meanwhile).
    pub tags: Vec<String>,
    /// Blobs mounted from another repository.
    pub mounted: usize,
    /// Blobs uploaded, with the offset each resumed at (0 for a fresh upload).
    pub uploaded: Vec<(Digest, u64)>,
    /// A tag that, checked after the push, points at another image.
    pub race: Option<Race>,
    /// The signature manifests stored, one per signed manifest.
    pub signatures: Vec<SignatureRecord>,
    /// The documents attached.
    pub attachments: Vec<Attached>,
}

/// Decides what pushing `source` to `target` (a repository; its tag is one of the tags)
/// will do: asks the registry which blobs it has (and which the `mount_from` repositories
/// have) and, for `--tag next`, lists the tags.
pub async fn plan_push(
    client: &RegistryClient,
    target: &Reference,
    source: &LayoutSource,
    options: &PushOptions,
) -> Result<Plan, Error> {
    let repository = Reference { tag: None, digest: None, ..target.clone() };
    let mut mount_from = options.mount_from.clone();
    for from in source.remote.values() {
        if !mount_from.contains(from) {
            mount_from.push(from.clone());
        }
    }
    let scope = push_scope(&repository.repository, &mount_from);
    let (tags, next) = plan_tags(client, &repository, options, &scope).await?;
    let lookups = source.blobs.iter().map(|blob| {
        let (scope, repo, mount_from) = (&scope, &repository.repository, &mount_from);
        async move {
            if client.has_blob(repo, &blob.digest, scope).await? {
                return Ok::<_, Error>(PlannedBlob { descriptor: blob.clone(), action: BlobAction::Present });
            }
            // A blob the layout lacks can only be mounted from where it is.
            if let Some(from) = source.remote.get(&blob.digest) {
                if client.has_blob(from, &blob.digest, scope).await? {
                    return Ok(PlannedBlob { descriptor: blob.clone(), action: BlobAction::Mount(from.clone()) });
                }
                return Err(Error::Unsupported(format!(
                    "the layer {} came from {}/{from}, which no longer has it; run the push again (the layer is then built)",
                    blob.digest,
                    client.registry()
                )));
            }
            for from in mount_from {
                if client.has_blob(from, &blob.digest, scope).await? {
                    return Ok(PlannedBlob {
                        descriptor: blob.clone(),
                        action: BlobAction::Mount(from.clone()),
                    });
                }
            }
            Ok(PlannedBlob { descriptor: blob.clone(), action: BlobAction::Upload })
        }
    });
    let blobs = stream::iter(lookups).buffered(8).try_collect().await?;
    Ok(Plan {
        repository,
        tags,
        next,
        root: source.root.clone(),
        images: source.images.clone(),
        blobs,
        scope,
    })
}

/// Carries out `plan`: blobs (`parallel` at once, resuming unfinished uploads saved in
/// `sessions_dir`), then manifests by digest, then the root by each tag. A `next` tag taken
/// meanwhile by another push moves on to the next free number; after tagging, each tag is
/// read back, and one that points elsewhere is reported as a [`Race`].
pub async fn execute_push(
    client: &RegistryClient,
    plan: &Plan,
    source: &LayoutSource,
    options: &PushOptions,
    sessions_dir: Option<std::path::PathBuf>,
    progress: ProgressFn,
) -> Result<Pushed, Error> {
    let repo = plan.repository.repository.as_str();
    let scope = plan.scope.as_str();
    let sessions = Sessions::new(sessions_dir);
    let upload = Upload {
        client,
        repository: repo,
        scope,
        sessions: &sessions,
        chunk_size: options.chunk_size.max(1),
        progress: &progress,
    };
    let jobs = plan.blobs.iter().filter(|b| b.action != BlobAction::Present).map(|planned| {
        let (upload, blob) = (&upload, source.local(&planned.descriptor));
        async move {
            let from = match &planned.action {
                BlobAction::Mount(from) => Some(from.as_str()),
                _ => None,
            };
            let sent = match source.remote.contains_key(&blob.digest) {
                true => upload.send_or_mount(&blob, from).await?,
                false => upload.send(&blob, from).await?,
            };
            Ok::<_, Error>((blob.digest, sent))
        }
    });
    let results: Vec<(Digest, Sent)> =
        stream::iter(jobs).buffer_unordered(options.parallel.max(1)).try_collect().await?;
    let mounted = results.iter().filter(|(_, s)| *s == Sent::Mounted).count();
    let uploaded = results
        .into_iter()
        .filter_map(|(d, s)| match s {
            Sent::Uploaded { resumed_at } => Some((d, resumed_at)),
            Sent::Mounted => None,
        })
        .collect();

    if media_type::is_index(&source.root.media_type) {
        for image in &source.images {
            let d = &image.descriptor;
            client
                .put_manifest(repo, d.digest.as_str(), &d.media_type, image.manifest_bytes.clone(), scope)
                .await?;
        }
    }
    set_tags(client, plan, &source.root_bytes, options, mounted, uploaded).await
}

/// The tags `options` asks for, with `next` resolved against the repository's tags (and
/// which one it became), each once.
pub(crate) async fn plan_tags(
    client: &RegistryClient,
    repository: &Reference,
    options: &PushOptions,
    scope: &str,
) -> Result<(Vec<String>, Option<String>), Error> {
    let mut tags: Vec<String> = Vec::new();
    let mut next = None;
    for spec in &options.tags {
        let tag = match spec {
            TagSpec::Named(tag) => tag.clone(),
            TagSpec::Next => {
                let tag = next_free_tag(client, &repository.repository, options, scope).await?;
                next = Some(tag.clone());
                tag
            }
        };
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    Ok((tags, next))
}

/// The highest integer tag of `repo` plus one, from its tag list as it is now.
async fn next_free_tag(
    client: &RegistryClient,
    repo: &str,
    options: &PushOptions,
    scope: &str,
) -> Result<String, Error> {
    let existing = client.list_tags(repo, options.tag_page_size, scope).await?;
    next_tag(existing.iter().map(String::as_str)).map_err(|reason| {
        Error::Unsupported(format!("cannot choose --tag next for {}/{repo}: {reason}", client.registry()))
    })
}

/// Puts the root of `plan` (`root_bytes`) under each of its tags, last: a `next` tag taken
/// meanwhile moves on, and each tag is read back (a [`Race`] if it points elsewhere). With
/// no tags, the root is put by its digest. The attachments and signatures of `options` are
/// stored first, after the root by its digest.
pub(crate) async fn set_tags(
    client: &RegistryClient,
    plan: &Plan,
    root_bytes: &Bytes,
    options: &PushOptions,
    mounted: usize,
    uploaded: Vec<(Digest, u64)>,
) -> Result<Pushed, Error> {
    let repo = plan.repository.repository.as_str();
    let scope = plan.scope.as_str();
    let root_type = &plan.root.media_type;
    let mut signatures = Vec::new();
    // Every signature manifest is built and checked before any is written.
    let mut signature_plans = Vec::new();
    for to_sign in &options.signatures {
        signature_plans.push(plan_signatures(client, repo, to_sign, scope).await?);
    }
    if plan.tags.is_empty() || !options.signatures.is_empty() || !options.attachments.is_empty() {
        client.put_manifest(repo, plan.root.digest.as_str(), root_type, root_bytes.clone(), scope).await?;
    }
    let mut attachments = Vec::new();
    for attachment in &options.attachments {
        attachments.push(attach(client, repo, attachment, scope).await?);
    }
    for signature_plan in &signature_plans {
        signatures.push(write_signatures(client, repo, signature_plan, scope).await?);
    }
    if plan.tags.is_empty() {
        return Ok(Pushed { tags: Vec::new(), mounted, uploaded, race: None, signatures, attachments });
    }
    let mut tags = Vec::new();
    for tag in &plan.tags {
        let mut tag = tag.clone();
        if plan.next.as_ref() == Some(&tag) {
            tag = free_next_tag(client, repo, &tag, &plan.root.digest, options, scope).await?;
        }
        client.put_manifest(repo, &tag, root_type, root_bytes.clone(), scope).await?;
        tags.push(tag);
    }
    let mut race = None;
    for tag in &tags {
        let now = client.manifest_digest(repo, tag, scope).await?;
        if now.as_ref() != Some(&plan.root.digest) {
            race = Some(Race { tag: tag.clone(), ours: plan.root.digest.clone(), theirs: now });
            break;
        }
    }
    Ok(Pushed { tags, mounted, uploaded, race, signatures, attachments })
}

/// `planned` if it is still free (or already ours), else the next integer tag now free.
async fn free_next_tag(
    client: &RegistryClient,
    repo: &str,
    planned: &str,
    ours: &Digest,
    options: &PushOptions,
    scope: &str,
) -> Result<String, Error> {
    let mut tag = planned.to_string();
    for _ in 0..10 {
        match client.manifest_digest(repo, &tag, scope).await? {
            None => return Ok(tag),
            Some(d) if &d == ours => return Ok(tag),
            Some(_) => {
                let next = next_free_tag(client, repo, options, scope).await?;
                if next == tag {
                    // The listing does not show the tag that is taken: asking again cannot help.
                    return Err(Error::Protocol {
                        url: format!("{}/{repo}", client.registry()),
                        reason: format!(
                            "tag {tag} points at another image, but the tag list does not show it"
                        ),
                    });
                }
                tracing::warn!("tag {tag} was taken by another push meanwhile; using {next}");
                tag = next;
            }
        }
    }
    Err(Error::Unsupported(format!(
        "{}/{repo}: other pushes keep taking the next integer tag; retry, or pass a tag",
        client.registry()
    )))
}
