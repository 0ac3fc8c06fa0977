//! Pushing: an OCI image layout (`--oci`), or a manifest built first (`--manifest`: what is
//! not built yet is built, layers the registry cache has in the same registry are mounted,
//! never downloaded), or an index of platform images pushed by digest elsewhere (`--index
//! --from`). The plan is shown and confirmed before anything is built or sent; blobs go
//! first, then each platform's manifest by digest, then (`--sign`) the index by digest and
//! the signatures of the index and of each manifest, then the index by tag, last.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use image::FINGERPRINT_LABEL;
use registry::layer_cache::BlobSource;
use registry::{BlobAction, LayoutSource, Plan, PushOptions, PushRecord, Pushed, Race, Reference, TagSpec};

use crate::build::{BuildOptions, BuildPreview, LayerFrom};
use crate::registry_cache::RegistryCache;
use crate::remote::{client_for, human, registry_error, runtime, stored_credentials, NetOptions};
use crate::{Error, Reporter};

/// How many blobs are sent at once.
const PARALLEL_BLOBS: usize = 4;

/// What is pushed.
#[derive(Debug, Clone)]
pub enum PushSource {
    /// An OCI image layout and the name of the image in it (`None`: its only one).
    Layout { dir: PathBuf, name: Option<String> },
    /// A manifest, built first ([`BuildOptions::oci`] is ignored: the build goes to a
    /// scratch layout in the cache, removed after the push).
    Manifest(Box<BuildOptions>),
    /// An index of these platform images (or indexes), already in the repository.
    Index(Vec<Reference>),
}

/// A push, as `marqo-base push` asks for it.
#[derive(Debug, Clone)]
pub struct PushRequest {
    /// The repository (with at most a tag).
    pub target: Reference,
    /// The tags (empty with `by_digest`).
    pub tags: Vec<TagSpec>,
    /// Push by digest only, setting no tag.
    pub by_digest: bool,
    pub source: PushSource,
    /// Repositories of the same registry to mount from.
    pub mount_from: Vec<String>,
    pub chunk_size: u64,
    pub tag_page_size: Option<u32>,
    /// Where to write the record.
    pub record: Option<PathBuf>,
    /// The private key to sign the index and each platform manifest with (`--sign`).
    pub sign: Option<PathBuf>,
    pub net: NetOptions,
}

/// Asks the user to confirm a plan (printed already), and for the passphrase of a `--sign`
/// key; an error stops the push.
pub trait Confirm: crate::sign::Prompt {
    fn confirm(&self, question: &str) -> Result<(), Error>;
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushOutcome {
    /// The record (also written to `--record`).
    pub record: PushRecord,
    /// Another push moved a tag this one set (exit 1).
    pub race: Option<Race>,
}

/// Pushes what `request` names.
pub fn push(
    request: &PushRequest,
    confirm: &dyn Confirm,
    printer: &dyn Reporter,
) -> Result<PushOutcome, Error> {
    let started = Instant::now();
    if let Some(record) = &request.record {
        crate::remote::check_writable(record)?;
    }
    if request.tags.is_empty() && !request.by_digest {
        return Err(Error::user(format!("no tag to push {} as", request.target.name())).with_hint(
            "pass --tag next (the next free integer), --tag NAME, write HOST/REPO:TAG, or --by-digest",
        ));
    }
    // The passphrase is asked (and checked) before anything is built or sent.
    let key = match &request.sign {
        Some(path) => Some(crate::sign::read_private_key(path, confirm)?),
        None => None,
    };
    let key = key.as_ref();
    let options = PushOptions {
        tags: request.tags.clone(),
        mount_from: request.mount_from.clone(),
        chunk_size: request.chunk_size,
        parallel: PARALLEL_BLOBS,
        tag_page_size: request.tag_page_size,
        signatures: Vec::new(),
        attachments: Vec::new(),
    };
    let target = &request.target;
    let client = client_for(&target.registry, stored_credentials(&target.registry)?, &request.net)?;
    let runtime = runtime()?;
    let (plan, pushed) = match &request.source {
        PushSource::Layout { dir, name } => {
            let source = LayoutSource::read(dir, name.as_deref())
                .map_err(|e| registry_error(&format!("cannot push from {}", dir.display()), e))?;
            let options = with_sboms(&options, &source);
            let plan = plan(&client, target, &source, &options, printer)?;
            let options = signed(&options, &plan, key)?;
            printer.status(plan_text(&plan, None) + &sbom_text(&options) + &sign_text(&options, key));
            confirm.confirm(&question(&plan))?;
            let pushed = send(&client, &plan, &source, &options, printer)?;
            (plan, pushed)
        }
        PushSource::Manifest(build) => {
            let scratch = crate::env::cache()?.root().join("tmp");
            fs_err::create_dir_all(&scratch)
                .map_err(|e| Error::from_error("cannot create a scratch directory", e))?;
            let dir = tempfile::Builder::new()
                .prefix("push-")
                .tempdir_in(&scratch)
                .map_err(|e| Error::from_error("cannot create a scratch directory", e))?;
            let out = dir.path().join("image");
            let build = BuildOptions {
                oci: Some(out.clone()),
                docker_archive: None,
                mount_into: Some(target.registry.clone()),
                defer_cache_write: true,
                ..(**build).clone()
            };
            // Before anything is fetched or built: what each layer is and what the
            // registry has; confirmed here, so the push itself is not asked about again.
            let preview = |preview: &BuildPreview| {
                let have = registry_has(&client, target, preview);
                let mut text = preview_text(target, preview, &have, &request.tags, request.by_digest);
                if let Some(key) = key {
                    text.push_str(&format!(
                        "\n  signatures: the index and each platform manifest, key {}, stored before the tags",
                        key.public_key().fingerprint()
                    ));
                }
                printer.status(text);
                confirm.confirm(&format!(
                    "Build and push {} as {}?",
                    target.name(),
                    tag_words(&request.tags, request.by_digest)
                ))
            };
            let built = crate::build::build_with(&build, Some(&preview), printer)?;
            let source = LayoutSource::read_with_remote(&out, Some(&build.tag), built.remote_blobs.clone())
                .map_err(|e| registry_error(&format!("cannot push from {}", out.display()), e))?;
            let options = with_sboms(&options, &source);
            let plan = plan(&client, target, &source, &options, printer)?;
            let options = signed(&options, &plan, key)?;
            tracing::info!("{}{}", plan_text(&plan, None), sbom_text(&options));
            let pushed = send(&client, &plan, &source, &options, printer)?;
            // The layers go into the registry cache by mounting them from the image just
            // pushed when it is in the same registry (nothing is sent twice).
            if let Some(options) = built.cache.as_ref().filter(|c| c.write) {
                let remote = RegistryCache::open(options)?;
                let same = remote.registry() == target.registry;
                let entries = built
                    .cache_entries
                    .iter()
                    .map(|e| {
                        let source = match same {
                            true => BlobSource::Repository(target.repository.clone()),
                            false => BlobSource::File(out.join("blobs/sha256").join(e.layer.digest.hex())),
                        };
                        (e.clone(), source)
                    })
                    .collect();
                remote.store(entries, printer);
            }
            drop(dir);
            (plan, pushed)
        }
        PushSource::Index(from) => {
            let spinner = printer.spinner(&format!("Reading {} images from {}", from.len(), target.name()));
            let index = runtime.block_on(registry::plan_index(&client, target, from, &options));
            spinner.finish_and_clear();
            let index = index
                .map_err(|e| registry_error(&format!("cannot make the index of {}", target.name()), e))?;
            let options = signed(&options, &index.plan, key)?;
            printer.status(
                plan_text(&index.plan, Some("index of images already there")) + &sign_text(&options, key),
            );
            confirm.confirm(&question(&index.plan))?;
            let pushed = runtime
                .block_on(registry::execute_index(&client, &index, &options))
                .map_err(|e| registry_error(&format!("cannot push the index to {}", target.name()), e))?;
            (index.plan, pushed)
        }
    };
    let now = jiff::Timestamp::now();
    let pushed_at = jiff::Timestamp::from_second(now.as_second())
        .map(|t| t.to_string())
        .unwrap_or_else(|_| now.to_string());
    let record = PushRecord::new(&plan, &pushed, FINGERPRINT_LABEL, pushed_at);
    for (digest, offset) in pushed.uploaded.iter().filter(|(_, offset)| *offset > 0) {
        printer.status(format!("Resumed the upload of {digest} at {}", human(*offset)));
    }
    if pushed.race.is_none() {
        if let Some(path) = &request.record {
            record.write(path).map_err(|e| registry_error("cannot write the record", e))?;
        }
        printer.status(format!(
            "Pushed {} as {} in {:.2}s: {} blobs sent ({}), {} mounted, {} already there{}",
            target.name(),
            match pushed.tags.is_empty() {
                true => format!("{} (by digest)", plan.root.digest),
                false => pushed.tags.join(", "),
            },
            started.elapsed().as_secs_f64(),
            pushed.uploaded.len(),
            human(plan.count(|a| *a == BlobAction::Upload).1),
            pushed.mounted,
            plan.count(|a| *a == BlobAction::Present).0,
            match pushed.attachments.len() {
                0 => String::new(),
                n => format!("; {n} SBOMs attached"),
            } + &match pushed.signatures.len() {
                0 => String::new(),
                n => format!("; {n} manifests signed"),
            }
        ));
    }
    Ok(PushOutcome { record, race: pushed.race })
}

/// `options` with the signatures of `plan` made with `key` (none without a key).
fn signed(
    options: &PushOptions,
    plan: &Plan,
    key: Option<&::sign::PrivateKey>,
) -> Result<PushOptions, Error> {
    let signatures = match key {
        Some(key) => crate::sign::signatures_for(key, plan)?,
        None => Vec::new(),
    };
    if let Some(key) = key {
        tracing::info!(
            "signing {} manifests with the key {}; the signatures are stored before the tags",
            signatures.len(),
            key.public_key().fingerprint()
        );
    }
    Ok(PushOptions { signatures, ..options.clone() })
}

/// `options` with the SBOM of each image of `source` that has one, to attach.
fn with_sboms(options: &PushOptions, source: &LayoutSource) -> PushOptions {
    PushOptions { attachments: crate::sbom::attachments(source), ..options.clone() }
}

/// The plan's line about SBOMs (empty when there are none).
fn sbom_text(options: &PushOptions) -> String {
    match options.attachments.len() {
        0 => String::new(),
        n => format!("\n  SBOMs: {n}, attached to their platform manifests (OCI referrers), before the tags"),
    }
}

/// The plan's line about signatures (empty when not signing).
fn sign_text(options: &PushOptions, key: Option<&::sign::PrivateKey>) -> String {
    match key {
        Some(key) => format!(
            "\n  signatures: {} manifests, key {}, stored before the tags",
            options.signatures.len(),
            key.public_key().fingerprint()
        ),
        None => String::new(),
    }
}

fn plan(
    client: &registry::RegistryClient,
    target: &Reference,
    source: &LayoutSource,
    options: &PushOptions,
    printer: &dyn Reporter,
) -> Result<Plan, Error> {
    let spinner = printer.spinner(&format!("Asking {} what it has", target.registry));
    let plan = runtime()?.block_on(registry::plan_push(client, target, source, options));
    spinner.finish_and_clear();
    plan.map_err(|e| registry_error(&format!("cannot plan the push to {}", target.name()), e))
}

fn send(
    client: &registry::RegistryClient,
    plan: &Plan,
    source: &LayoutSource,
    options: &PushOptions,
    printer: &dyn Reporter,
) -> Result<Pushed, Error> {
    let sessions = crate::env::cache()?.root().join("registry").join("uploads");
    let (to_send, bytes) = plan.count(|a| *a != BlobAction::Present);
    let bar = printer.bar(bytes, &format!("Pushing {to_send} blobs"), true);
    let progress = crate::registry_cache::progress_of(&bar);
    let pushed =
        runtime()?.block_on(registry::execute_push(client, plan, source, options, Some(sessions), progress));
    bar.finish_and_clear();
    pushed.map_err(|e| {
        // Running again only helps when something was interrupted.
        let context = match e {
            registry::Error::SignatureLimit { .. } => {
                format!("cannot push to {}; no tag was set", plan.repository.name())
            }
            _ => format!(
                "cannot push to {}; no tag was set (run the same command again to continue: blobs \
                 already sent are skipped and unfinished uploads resume)",
                plan.repository.name()
            ),
        };
        registry_error(&context, e)
    })
}

/// Which of the layers whose digest is known already (from a cache) the target repository
/// has. A failure to ask is only a less informative plan.
fn registry_has(
    client: &registry::RegistryClient,
    target: &Reference,
    preview: &BuildPreview,
) -> BTreeMap<oci::Digest, bool> {
    let digests: Vec<oci::Digest> = preview
        .platforms
        .iter()
        .flat_map(|(_, layers)| layers)
        .filter_map(|l| match &l.from {
            LayerFrom::LocalCache(d, _) | LayerFrom::RegistryCache(d, _, _) => Some(d.clone()),
            LayerFrom::Build => None,
        })
        .collect();
    let scope = registry::push_scope(&target.repository, &[]);
    let Ok(runtime) = runtime() else { return BTreeMap::new() };
    runtime.block_on(async {
        use futures::stream::{self, StreamExt};
        stream::iter(digests)
            .map(|d| {
                let scope = &scope;
                async move {
                    let has = client.has_blob(&target.repository, &d, scope).await.unwrap_or(false);
                    (d, has)
                }
            })
            .buffer_unordered(8)
            .collect()
            .await
    })
}

fn tag_words(tags: &[TagSpec], by_digest: bool) -> String {
    if by_digest || tags.is_empty() {
        return "its digest (no tag)".to_string();
    }
    tags.iter()
        .map(|t| match t {
            TagSpec::Next => "next".to_string(),
            TagSpec::Named(name) => name.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a push of a manifest will do, layer by layer, before anything is built.
pub fn preview_text(
    target: &Reference,
    preview: &BuildPreview,
    registry_has: &BTreeMap<oci::Digest, bool>,
    tags: &[TagSpec],
    by_digest: bool,
) -> String {
    let mut text = format!("Push to {}\n  tags:      {}\n", target.name(), tag_words(tags, by_digest));
    let (mut build, mut local, mut remote, mut there) = (0, 0, 0, 0);
    for (platform, layers) in &preview.platforms {
        text.push_str(&format!("  platform:  {platform}\n"));
        for layer in layers {
            let (what, digest) = match &layer.from {
                LayerFrom::Build => {
                    build += 1;
                    ("build".to_string(), None)
                }
                LayerFrom::LocalCache(d, size) => {
                    local += 1;
                    (format!("local cache, {}", human(*size)), Some(d))
                }
                LayerFrom::RegistryCache(d, size, from) => {
                    remote += 1;
                    (format!("registry cache {from}, {}", human(*size)), Some(d))
                }
            };
            let has = digest.is_some_and(|d| registry_has.get(d) == Some(&true));
            if has {
                there += 1;
            }
            text.push_str(&format!(
                "    {:<48} {what}{}\n",
                truncate(&layer.created_by, 48),
                if has { "; the registry has it" } else { "" }
            ));
        }
    }
    text.push_str(&format!(
        "  layers:    {build} to build, {local} from the local cache, {remote} from the registry cache; {there} already in {}",
        target.name()
    ));
    text
}

fn truncate(text: &str, width: usize) -> String {
    match text.char_indices().nth(width.saturating_sub(1)) {
        Some((i, _)) if text.chars().count() > width => format!("{}…", &text[..i]),
        _ => text.to_string(),
    }
}

fn question(plan: &Plan) -> String {
    match plan.tags.is_empty() {
        true => format!("Push {} by digest?", plan.repository.name()),
        false => format!("Push {} as {}?", plan.repository.name(), plan.tags.join(", ")),
    }
}

/// The plan of a push: where, which tags, which platforms, which blobs go and which are there.
pub fn plan_text(plan: &Plan, what: Option<&str>) -> String {
    let tags: Vec<String> = plan
        .tags
        .iter()
        .map(|t| if plan.next.as_ref() == Some(t) { format!("{t} (next)") } else { t.clone() })
        .collect();
    let tags = match tags.is_empty() {
        true => "none (by digest)".to_string(),
        false => tags.join(", "),
    };
    let mut text = format!("Push to {}\n  tags:      {tags}\n", plan.repository.name());
    text.push_str(&format!(
        "  image:     {} ({}){}\n",
        plan.root.digest,
        plan.root.media_type,
        what.map(|w| format!(", {w}")).unwrap_or_default()
    ));
    for image in &plan.images {
        let size: u64 = image
            .blob_digests()
            .iter()
            .filter_map(|d| plan.blobs.iter().find(|b| &b.descriptor.digest == d))
            .map(|b| b.descriptor.size)
            .sum();
        text.push_str(&format!(
            "  platform:  {} {} ({})\n",
            image.platform,
            image.descriptor.digest,
            human(size)
        ));
    }
    let (send, send_bytes) = plan.count(|a| *a == BlobAction::Upload);
    let (mount, mount_bytes) = plan.count(|a| matches!(a, BlobAction::Mount(_)));
    let (there, there_bytes) = plan.count(|a| *a == BlobAction::Present);
    text.push_str(&format!("  to send:   {send} blobs ({})\n", human(send_bytes)));
    for blob in &plan.blobs {
        match &blob.action {
            BlobAction::Upload => {
                text.push_str(&format!("    {} {}\n", blob.descriptor.digest, human(blob.descriptor.size)))
            }
            BlobAction::Mount(from) => text.push_str(&format!(
                "    {} {} (mount from {from})\n",
                blob.descriptor.digest,
                human(blob.descriptor.size)
            )),
            BlobAction::Present => {}
        }
    }
    if mount > 0 {
        text.push_str(&format!("  to mount:  {mount} blobs ({})\n", human(mount_bytes)));
    }
    text.push_str(&format!("  already there: {there} blobs ({})", human(there_bytes)));
    text
}
