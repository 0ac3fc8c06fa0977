//! Building: the lock of a manifest turned into a multi-platform OCI image layout (or a
//! docker-archive), with no daemon, no emulation and nothing run from the image.
//!
//! Reads only the lock (never resolves; a stale lock is an error). For each platform: the
//! locked `.deb`s are fetched (hash-checked, cached) and unpacked into a temporary root that
//! becomes one reproducible layer; the locked wheels are fetched (hash-checked, cached),
//! grouped by [`image::plan_layers`] and installed, one layer per group, as pip would (their
//! modules byte-compiled by the interpreter [`crate::bytecode::choose`] picks). A
//! locked sdist is fetched the same way and built into a wheel with the host's Python (PEP
//! 517, cached), which must suit every platform that locks it, then installed likewise. Then
//! [`image::assemble`] makes each platform's configuration (over the base's, if any) and
//! manifest, and [`image::write_index`] the index of them, named by `--tag`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use image::{
    install_wheel, Compression, ImageLayer, ImageSpec, InstallOptions, LayerInfo, LayerWriter, Scheme,
};
use lockfile::{FileEntry, FileSource, Lock, LockedDebian, LockedPython, Manifest, TargetPlatform};
use oci::{Descriptor, Digest, OciLayout};
use pep_types::{Arch, PackageName, SdistFilename, Target, WheelFilename};
use py_resolver::RequirementSet;
use pypi_client::sdist::{build_wheel, BuildContext};
use pypi_client::{IndexArgs, IndexConfig, PipEnvironment, PypiClient};
use sha2::Digest as _;

use crate::base::{self, BaseImage};
use crate::debian::Session;
use crate::layer_cache::LayerCache;
use crate::lock::{pins_for, Pins, DEFAULT_GLIBC};
use crate::plan::{layer_options, BuildPlan, LayerSource, PlanOptions, PlannedLayer};
use crate::registry_cache::{CacheOptions, RegistryCache};
use crate::{cross, files, Error, Reporter};
use registry::layer_cache::{BlobSource, CacheEntry};

/// What `build` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutcome {
    /// The OCI layout or docker-archive written.
    pub out: PathBuf,
    pub tag: String,
    /// `index` (a layout) or `manifest` (a docker-archive holds one platform's).
    pub kind: &'static str,
    pub digest: String,
    pub platforms: Vec<BuiltPlatform>,
    /// Layers that came from the registry cache and are not in the layout (see
    /// [`BuildOptions::mount_into`]): their digest and the repository of the cache's registry
    /// that holds them.
    pub remote_blobs: BTreeMap<Digest, String>,
    /// The registry cache asked (`--cache` or `[cache]`), if any.
    pub cache: Option<CacheOptions>,
    /// The registry-cache entries of the layers the registry cache did not have, for
    /// `--cache-write` (written by `build` itself unless [`BuildOptions::defer_cache_write`]).
    pub cache_entries: Vec<CacheEntry>,
}

/// Where a layer comes from, as the preview of a build says before anything is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerFrom {
    /// Built in this run.
    Build,
    /// The local layer cache.
    LocalCache(Digest, u64),
    /// The registry cache (`HOST/REPO`).
    RegistryCache(Digest, u64, String),
}

/// One layer in a [`BuildPreview`].
#[derive(Debug, Clone)]
pub struct PreviewLayer {
    pub created_by: String,
    pub from: LayerFrom,
}

/// What a build will do, after the caches were asked and before anything is fetched.
#[derive(Debug, Clone)]
pub struct BuildPreview {
    /// Each platform's layers, bottom first (the base image's own layers are not listed).
    pub platforms: Vec<(String, Vec<PreviewLayer>)>,
}

/// A callback a build calls with its [`BuildPreview`]; an error stops the build there.
pub type ConfirmFn<'a> = &'a dyn Fn(&BuildPreview) -> Result<(), Error>;

/// One platform of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltPlatform {
    pub platform: String,
    pub manifest: String,
    pub layers: usize,
    pub compressed: u64,
    pub uncompressed: u64,
    /// The SBOM file written (`--sbom DIR`).
    pub sbom: Option<PathBuf>,
    /// How many packages and files the SBOM lists.
    pub sbom_components: usize,
}

/// What `build` is asked to do (the options of `marqo-base build`).
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The manifest.
    pub manifest: PathBuf,
    /// The lock; `None` for `marqo-base.lock` beside the manifest.
    pub lock: Option<PathBuf>,
    /// The OCI image layout directory to write (absent or empty).
    pub oci: Option<PathBuf>,
    /// A docker-archive tar of one platform to write instead.
    pub docker_archive: Option<PathBuf>,
    /// Only these platforms of the manifest; empty for all.
    pub platforms: Vec<String>,
    /// The name of the image index in the layout (the tag of a docker-archive).
    pub tag: String,
    /// Use only the cache.
    pub offline: bool,
    /// Build every layer afresh instead of reusing built ones.
    pub no_cache: bool,
    /// `gzip` or `zstd`.
    pub compression: String,
    /// A layer cache in a registry (`--cache`; `None`: the manifest's `[cache] registry`, if
    /// any), and whether to write it (`--cache-write`).
    pub cache: Option<String>,
    pub cache_write: bool,
    /// How registries are reached (the registry cache's).
    pub net: crate::remote::NetOptions,
    /// A registry host the image goes to next: layers the registry cache has there are not
    /// downloaded (the push mounts them); the layout then lacks their blobs
    /// ([`BuildOutcome::remote_blobs`]).
    pub mount_into: Option<String>,
    /// Leave `--cache-write` to the caller (push writes after pushing, mounting the blobs).
    pub defer_cache_write: bool,
    /// Where to write each platform's SBOM (`--sbom DIR`: `OS-ARCH.spdx.json` or
    /// `.cdx.json`, created or replaced), and in which format (`spdx` or `cyclonedx`).
    pub sbom_dir: Option<PathBuf>,
    pub sbom_format: String,
}

/// Builds the image of `args.manifest` from its lock into the layout or archive asked for.
pub fn build(args: &BuildOptions, printer: &dyn Reporter) -> Result<BuildOutcome, Error> {
    build_with(args, None, printer)
}

/// [`build`], calling `confirm` (if any) with what the build will do once the caches were
/// asked, before anything is fetched, built or written.
pub fn build_with(
    args: &BuildOptions,
    confirm: Option<ConfirmFn<'_>>,
    printer: &dyn Reporter,
) -> Result<BuildOutcome, Error> {
    let started = Instant::now();
    if let Err(problem) = registry::check_tag(&args.tag) {
        return Err(Error::user(format!("--tag `{}`: {problem}", args.tag)).with_hint(
            "a tag is 1 to 128 of A-Z a-z 0-9 _ . - and does not start with . or -, such as --tag latest",
        ));
    }
    let (out, archive) = match (&args.oci, &args.docker_archive) {
        (Some(dir), None) => (dir.clone(), false),
        (None, Some(file)) => (file.clone(), true),
        _ => {
            return Err(Error::user("pass one of --oci DIR or --docker-archive FILE").with_hint(
                "--oci out writes an OCI image layout; --docker-archive img.tar is for `docker load`",
            ))
        }
    };
    if out.file_name().is_none() {
        return Err(Error::user(format!("`{}` does not name a file or directory to create", out.display()))
            .with_hint("name a new path, such as --oci out or --docker-archive image.tar"));
    }
    if archive {
        if out.is_dir() {
            return Err(Error::user(format!("{} is a directory", out.display()))
                .with_hint("--docker-archive takes the path of a tar file to write"));
        }
        if std::fs::symlink_metadata(&out).is_ok() {
            return Err(Error::user(format!("{} exists", out.display()))
                .with_hint("remove it, or pass another --docker-archive path"));
        }
    } else {
        check_output(&out)?;
    }
    let sbom_format = sbom::Format::parse(&args.sbom_format).ok_or_else(|| {
        Error::user(format!("--sbom-format `{}` is not known", args.sbom_format)).with_hint(
            "pass --sbom-format spdx (SPDX 2.3 JSON) or --sbom-format cyclonedx (CycloneDX 1.5 JSON)",
        )
    })?;
    if let Some(dir) = &args.sbom_dir {
        check_sbom_dir(dir)?;
    }
    let manifest_path = args.manifest.clone();
    let lock_path = match &args.lock {
        Some(path) => path.clone(),
        None => manifest_path.parent().unwrap_or(Path::new("")).join("marqo-base.lock"),
    };
    let manifest = Manifest::read(&manifest_path)?;
    if !lock_path.exists() {
        return Err(Error::user(format!("{} does not exist", lock_path.display()))
            .with_hint("run `marqo-base lock` first: build reads only the lock"));
    }
    let lock = Lock::read(&lock_path)?;
    let reasons = crate::lock::stale_reasons(&manifest, &lock)?;
    if !reasons.is_empty() {
        return Err(Error::user(format!("{} is stale: {}", lock_path.display(), reasons.join("; ")))
            .with_hint("run `marqo-base lock` to update it"));
    }
    let base_source = match (&manifest.image.base, &lock.base) {
        (None, _) => None,
        (Some(reference), Some(locked)) if &locked.reference == reference => {
            Some((base::BaseSource::parse(reference, manifest.dir())?, locked.digest.clone()))
        }
        (Some(reference), _) => {
            return Err(Error::user(format!(
                "{} does not pin the base image {reference}",
                lock_path.display()
            ))
            .with_hint("run `marqo-base lock` to update it"))
        }
    };
    let mtime = source_date_epoch()?;
    let PlanInputs { requirements, requested, build_constraints } = plan_inputs(&manifest)?;
    let compression = match args.compression.as_str() {
        "zstd" => Compression::Zstd,
        _ => Compression::Gzip,
    };

    // Which interpreter byte-compiles the wheel layers (an input of their keys).
    let selected = crate::plan::select_platforms(&manifest, &args.platforms)?;
    let cache_options = cache_options(args, &manifest)?;
    let registry_cache = cache_options.as_ref().map(RegistryCache::open).transpose()?;
    let mut bytecode = crate::bytecode::choose(
        &manifest,
        &lock,
        &selected,
        !args.no_cache,
        args.offline,
        registry_cache.as_ref(),
        printer,
    )?;
    // apt's sources in the image: those the lock was made from.
    let image_apt = match &manifest.debian {
        Some(_) if !lock.debian.is_empty() => {
            crate::debian::ImageApt::for_sources(&crate::debian::manifest_sources(&manifest)?)?
        }
        _ => crate::debian::ImageApt::default(),
    };
    // Each platform's layers, each with the key of its inputs: a layer built before (by this
    // build of the tool) is taken from the cache, and only what the others need is fetched.
    let plan = BuildPlan::new(
        &manifest,
        &lock,
        &PlanOptions {
            platforms: &args.platforms,
            requested: &requested,
            mtime,
            build_constraints: &build_constraints,
            compression,
            bytecode: &bytecode.setting,
            apt: &image_apt.inputs,
        },
    )?;
    if let Some(summary) = &plan.bytecode {
        printer.status(format!("Bytecode: {summary}"));
    }
    tracing::debug!("the build plan:\n{plan}");
    let platforms = plan.platform_list();
    if archive && platforms.len() != 1 {
        return Err(Error::user(format!(
            "a docker-archive holds one platform, not {}",
            platforms.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
        ))
        .with_hint("pass one --platform, such as --platform linux/arm64"));
    }
    let python_version = plan.python_version.as_deref();
    let cache = crate::env::cache()?;
    let layer_cache = LayerCache::new(cache.clone(), !args.no_cache);
    let mut looked_up: Vec<Vec<CachedLayer>> = plan
        .platforms
        .iter()
        .map(|platform| {
            platform
                .layers
                .iter()
                .map(|layer| {
                    let key = layer.inputs.as_deref().map(|inputs| layer_cache.key(inputs));
                    let portable = layer.inputs.as_deref().map(LayerCache::portable_key);
                    // A layer of packages is only reused with what its build learned of them.
                    let packaged = !matches!(layer.source, LayerSource::File(_));
                    let info = key
                        .as_deref()
                        .filter(|k| !packaged || layer_cache.packages(k).is_some())
                        .and_then(|k| layer_cache.get(k));
                    let from = match &info {
                        Some(info) => LayerFrom::LocalCache(info.digest.clone(), info.size),
                        None => LayerFrom::Build,
                    };
                    CachedLayer {
                        key,
                        portable,
                        packaged,
                        info,
                        remote: None,
                        hit: None,
                        from,
                        in_registry_cache: false,
                    }
                })
                .collect()
        })
        .collect();
    if let Some(remote) = &registry_cache {
        lookup_registry_cache(remote, &mut looked_up, args, printer);
    }
    if let Some(confirm) = confirm {
        confirm(&preview(&plan, &looked_up))?;
    }
    if let Some(remote) = &registry_cache {
        fetch_registry_hits(remote, &mut looked_up, &cache, &layer_cache, printer);
    }
    let mut cached = looked_up.iter().flatten();
    let needs = plan.needs(|_| cached.next().is_some_and(|c| c.info.is_none()));
    let total = plan.layer_count();
    let reused = looked_up.iter().flatten().filter(|l| l.info.is_some()).count();
    let from_registry =
        looked_up.iter().flatten().filter(|l| matches!(l.from, LayerFrom::RegistryCache(..))).count();
    if reused > 0 {
        printer.status(format!(
            "Reusing {reused} of {total} layers from the cache{}",
            match from_registry {
                0 => String::new(),
                n => format!(" ({n} from the registry cache)"),
            }
        ));
    }
    // Which layers a registry cache's writer made, by name: what this image trusts them for.
    for (planned, cached) in plan.platforms.iter().zip(&looked_up) {
        for (layer, c) in planned.layers.iter().zip(cached) {
            if let LayerFrom::RegistryCache(digest, _, from) = &c.from {
                printer.status(format!(
                    "  {}: {} from the registry cache {from} ({digest})",
                    planned.platform, layer.created_by
                ));
            }
        }
    }

    let deb_paths = fetch_debian(&manifest, &needs.debs, args.offline, printer)?;
    let wheel_paths =
        fetch_wheels(&requirements, manifest.python.as_ref(), &needs.wheels, &cache, args.offline, printer)?;
    let file_paths = files::fetch_urls(&needs.files, &lock.files, args.offline, printer)?;
    let bases = match &base_source {
        Some((source, digest)) => base::fetch(source, digest, &platforms, printer)?,
        None => HashMap::new(),
    };

    // Everything is written into a hidden directory beside `--oci` and renamed into place at
    // the end, so a failed build leaves no partial layout; scratch files live there too, so
    // finished layers are renamed into the layout rather than copied.
    crate::env::remove_stale_staging(&out, printer);
    let staging = oci::StagedLayout::beside(&out).map_err(|e| oci_error(&out, e))?;
    let layout = staging.layout().clone();
    let scratch = staging.scratch().map_err(|e| oci_error(&out, e))?;
    let built_wheels = build_sdists(
        &manifest,
        &requirements,
        &lock,
        &needs.wheels,
        &platforms,
        &wheel_paths,
        &scratch.join("built"),
        args.offline,
        printer,
    )?;

    // The compiler starts its workers when the first module comes, and only if a wheel or
    // Debian layer is built (the Debian packages' own modules, as their scripts compile them).
    let compiler = match needs.wheels.is_empty() && needs.debs.is_empty() {
        true => None,
        false => bytecode.compiler(&manifest, platforms.len(), args.offline, &scratch, printer)?,
    };
    // Each platform is built in its own thread (unpacking and compressing are most of the
    // time); the summary is printed in the manifest's order.
    let spinner = printer.bar(
        total as u64,
        &format!("Building {} (layers)", platforms.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")),
        false,
    );
    let builds: Vec<PlatformBuild<'_>> = plan
        .platforms
        .iter()
        .zip(&looked_up)
        .map(|(planned, cached)| PlatformBuild {
            platform: planned.platform,
            manifest: &manifest,
            lock: &lock,
            layers: &planned.layers,
            cached,
            python_version,
            deb_paths: &deb_paths,
            wheel_paths: &wheel_paths,
            built_wheels: &built_wheels,
            file_paths: &file_paths,
            requested: &requested,
            layout: &layout,
            layer_cache: &layer_cache,
            scratch: &scratch,
            mtime,
            compression,
            progress: &spinner,
            base: bases.get(&planned.platform),
            bytecode: compiler.as_ref(),
            apt_files: &image_apt.files,
        })
        .collect();
    let results: Vec<Result<PlatformBuilt, Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = builds
            .iter()
            .map(|build| {
                scope.spawn(move || {
                    let t = Instant::now();
                    build.build().map(|built| PlatformBuilt { seconds: t.elapsed().as_secs_f64(), ..built })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(Error::internal("a build thread panicked"))))
            .collect()
    });
    spinner.finish_and_clear();
    if let Some(compiler) = &compiler {
        let stats = compiler.stats();
        if stats.compiled + stats.failed > 0 {
            printer.status(format!(
                "Byte-compiled {} modules with {} ({} processes) over {:.2}s{}",
                stats.compiled,
                compiler.who(),
                stats.workers,
                stats.elapsed.as_secs_f64(),
                match stats.failed {
                    0 => String::new(),
                    n => format!("; {n} do not compile and have no .pyc, as with pip (-v names them)"),
                }
            ));
        }
    }
    drop(compiler);
    let mut manifests = Vec::new();
    let mut scripts = Vec::new();
    let mut built = Vec::new();
    let mut cache_entries: BTreeMap<String, CacheEntry> = BTreeMap::new();
    let mut sboms = Vec::new();
    let mut remote_blobs = BTreeMap::new();
    for (((platform, result), cached), planned) in
        platforms.iter().zip(results).zip(&looked_up).zip(&plan.platforms)
    {
        let PlatformBuilt { descriptor, layers, scripts: report, packages, sbom, seconds } = result?;
        for (((layer, c), planned), packages) in layers.iter().zip(cached).zip(&planned.layers).zip(packages)
        {
            if c.remote.is_some() {
                if let Some(remote) = &registry_cache {
                    remote_blobs.insert(layer.digest.clone(), remote.repository().to_string());
                }
            }
            match &c.portable {
                Some(key) if !c.in_registry_cache => {
                    let note = match (&planned.source, &c.from) {
                        (LayerSource::Debian(_), LayerFrom::Build) => report.as_ref().map(|r| r.to_text()),
                        (LayerSource::Debian(_), _) => c.key.as_deref().and_then(|k| layer_cache.note(k)),
                        _ => None,
                    };
                    cache_entries
                        .insert(key.clone(), crate::registry_cache::entry_of(key, layer, note, packages));
                }
                _ => {}
            }
        }
        if let Some(report) = report {
            scripts.push((*platform, report));
        }
        let compressed: u64 = layers.iter().map(|l| l.size).sum();
        let uncompressed: u64 = layers.iter().map(|l| l.uncompressed_size).sum();
        printer.status(format!(
            "Built {platform}: {} layers, {} compressed ({} uncompressed), manifest {}, in {seconds:.2}s",
            layers.len(),
            megabytes(compressed),
            megabytes(uncompressed),
            descriptor.digest.as_str(),
        ));
        built.push(BuiltPlatform {
            platform: platform.to_string(),
            manifest: descriptor.digest.as_str().to_string(),
            layers: layers.len(),
            compressed,
            uncompressed,
            sbom: None,
            sbom_components: sbom.components.len(),
        });
        sboms.push(sbom);
        manifests.push(descriptor);
    }
    report_scripts(&scripts, printer);
    let first = manifests[0].clone();
    let index = image::write_index(&layout, manifests).map_err(|e| oci_error(&out, e))?;
    layout.set_ref(&args.tag, &index).map_err(|e| oci_error(&out, e))?;
    fs_err::remove_dir_all(&scratch)
        .map_err(|e| Error::from_error("cannot remove the scratch directory", e))?;
    if archive {
        // Tagged `repository:tag` for `docker load` when the manifest names a repository.
        let tags: Vec<String> =
            manifest.image.repository.iter().map(|repo| format!("{repo}:{}", args.tag)).collect();
        oci::write_docker_archive(&layout, &first, &tags, &out).map_err(|e| {
            Error::from_error(format!("cannot write the docker-archive {}", out.display()), e)
        })?;
        drop(staging);
    } else {
        check_output(&out)?;
        staging.commit().map_err(|e| oci_error(&out, e))?;
    }
    // A docker-archive holds the platform's manifest, not the index.
    let (what, digest) = match archive {
        true => ("manifest", first.digest.as_str()),
        false => ("index", index.digest.as_str()),
    };
    printer.status(format!(
        "Wrote {} ({}): {what} {digest}, {} in {:.2}s",
        out.display(),
        args.tag,
        platforms.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", "),
        started.elapsed().as_secs_f64()
    ));
    if let Some(dir) = &args.sbom_dir {
        for (platform, sbom) in built.iter_mut().zip(&sboms) {
            let path =
                dir.join(format!("{}.{}", platform.platform.replace('/', "-"), sbom_format.extension()));
            write_atomically(&path, &sbom.to_format(sbom_format))?;
            platform.sbom = Some(path);
        }
        printer.status(format!(
            "Wrote the SBOMs ({}) to {}: {}",
            match sbom_format {
                sbom::Format::Spdx => "SPDX 2.3",
                sbom::Format::CycloneDx => "CycloneDX 1.5",
            },
            dir.display(),
            built
                .iter()
                .map(|p| format!("{} {} components", p.platform, p.sbom_components))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let cache_entries: Vec<CacheEntry> = cache_entries.into_values().collect();
    if let Some(remote) = registry_cache.as_ref().filter(|r| r.writes() && !args.defer_cache_write) {
        // From the layout just written (a docker-archive has no blobs to send from).
        if archive {
            tracing::warn!(
                "--cache-write: nothing is written from a docker-archive; build --oci DIR to write the cache"
            );
        } else {
            let sources = cache_entries
                .iter()
                .map(|e| (e.clone(), BlobSource::File(out.join("blobs/sha256").join(e.layer.digest.hex()))))
                .collect();
            remote.store(sources, printer);
        }
    }
    Ok(BuildOutcome {
        out: out.clone(),
        tag: args.tag.clone(),
        kind: what,
        digest: digest.to_string(),
        platforms: built,
        remote_blobs,
        cache: cache_options,
        cache_entries,
    })
}

/// The registry cache to use: `--cache`, else the manifest's `[cache] registry`.
fn cache_options(args: &BuildOptions, manifest: &Manifest) -> Result<Option<CacheOptions>, Error> {
    let reference = args.cache.clone().or_else(|| manifest.cache.as_ref().map(|c| c.registry.clone()));
    match reference {
        Some(reference) => Ok(Some(CacheOptions { reference, write: args.cache_write, net: args.net })),
        None if args.cache_write => Err(Error::user("--cache-write names no layer cache").with_hint(
            "pass --cache HOST/REPOSITORY, or set [cache] registry = \"HOST/REPOSITORY\" in the manifest",
        )),
        None => Ok(None),
    }
}

/// What the Debian packages' maintainer scripts do against what the build did: one line per
/// action with `-v`, one summary line (for all platforms when they agree, else per platform).
fn report_scripts(reports: &[(TargetPlatform, debian::ScriptReport)], printer: &dyn Reporter) {
    for (platform, report) in reports {
        for line in report.lines() {
            tracing::info!("{platform}: {line}");
        }
    }
    let Some((_, first)) = reports.first() else { return };
    if reports.iter().all(|(_, r)| r == first) {
        let platforms: Vec<&str> = reports.iter().map(|(p, _)| p.as_str()).collect();
        printer.status(format!("{} ({})", first.summary(), platforms.join(", ")));
    } else {
        for (platform, report) in reports {
            printer.status(format!("{} ({platform})", report.summary()));
        }
    }
}

/// The output directory must be absent or an empty directory.
/// `--sbom DIR` exists (created if need be) and takes files; checked before anything is built.
fn check_sbom_dir(dir: &Path) -> Result<(), Error> {
    let hint = "name a directory to write the SBOMs into, such as --sbom sbom/";
    if dir.exists() && !dir.is_dir() {
        return Err(Error::user(format!("--sbom {} is not a directory", dir.display())).with_hint(hint));
    }
    fs_err::create_dir_all(dir)
        .and_then(|_| tempfile::Builder::new().prefix(".sbom.probe-").tempfile_in(dir).map(drop))
        .map_err(|e| {
            Error::from_error(format!("cannot write into --sbom {}", dir.display()), e).with_hint(hint)
        })
}

/// Writes `bytes` to `path` through a temporary file renamed over it: a reader never sees
/// half a file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write as _;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let context = || format!("cannot write {}", path.display());
    let mut file = tempfile::Builder::new()
        .prefix(".sbom-")
        .tempfile_in(dir)
        .map_err(|e| Error::from_error(context(), e))?;
    // A document to share, readable by all (not a temporary file's 0600).
    let mode = 0o644;
    file.write_all(bytes)
        .and_then(|_| file.as_file().set_permissions(std::fs::Permissions::from_mode(mode)))
        .and_then(|_| file.as_file().sync_all())
        .map_err(|e| Error::from_error(context(), e))?;
    file.persist(path).map_err(|e| Error::from_error(context(), e.error))?;
    Ok(())
}

fn check_output(out: &Path) -> Result<(), Error> {
    match std::fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::from_error(format!("cannot read {}", out.display()), e)),
        Ok(m) if !m.is_dir() => Err(Error::user(format!("{} exists and is not a directory", out.display()))
            .with_hint("choose another --oci directory")),
        Ok(_) => {
            let mut entries = std::fs::read_dir(out)
                .map_err(|e| Error::from_error(format!("cannot read {}", out.display()), e))?;
            match entries.next() {
                None => Ok(()),
                Some(_) => Err(Error::user(format!("{} is not empty", out.display()))
                    .with_hint("choose a new or empty --oci directory")),
            }
        }
    }
}

/// `SOURCE_DATE_EPOCH` (seconds), else 0: the mtime of every layer entry.
pub(crate) fn source_date_epoch() -> Result<u64, Error> {
    match std::env::var(env_vars::EnvVars::SOURCE_DATE_EPOCH) {
        Ok(text) if !text.trim().is_empty() => text.trim().parse().map_err(|_| {
            Error::user(format!("SOURCE_DATE_EPOCH `{text}` is not a number of seconds"))
                .with_hint("set it to a Unix time such as 1700000000, or unset it")
        }),
        _ => Ok(0),
    }
}

/// Fetches the `.deb`s (each once, hash-checked, cached); returns their cache paths by
/// sha256.
pub(crate) fn fetch_debian(
    manifest: &Manifest,
    debs: &[&LockedDebian],
    offline: bool,
    printer: &dyn Reporter,
) -> Result<HashMap<Digest, PathBuf>, Error> {
    let unique: Vec<debian::LockedDeb> = debs.iter().map(|d| locked_deb(d)).collect();
    if unique.is_empty() {
        return Ok(HashMap::new());
    }
    if manifest.debian.is_none() {
        return Err(Error::user(format!(
            "the lock has Debian packages but {} has no [debian] section",
            manifest.path().display()
        ))
        .with_hint("run `marqo-base lock` to update the lock"));
    }
    let session = Session::for_manifest(manifest, offline)?;
    let (paths, _) = session.fetch_debs(&unique, printer).map_err(|e| match e.is_hash_mismatch() {
        // The digests came from the lock, not from the mirror's index.
        true => e.with_hint(
            "the mirror serves another file than the lock names: if the package was rebuilt \
             there, run `marqo-base lock -P NAME` to lock the new one",
        ),
        false => e,
    })?;
    Ok(debs.iter().map(|d| d.file.sha256.clone()).zip(paths).collect())
}

/// A lock entry as the `debian` crate's fetcher and unpacker take it.
pub(crate) fn locked_deb(deb: &LockedDebian) -> debian::LockedDeb {
    debian::LockedDeb {
        name: deb.name.clone(),
        version: deb.version.clone(),
        arch: deb.arch.clone(),
        filename: deb.path.clone(),
        size: deb.file.size,
        sha256: deb.file.sha256.hex().to_string(),
        suite: deb.suite.clone().unwrap_or_default(),
    }
}

/// Fetches the locked wheels and sdists into the cache (hash-checked); returns their paths by
/// sha256.
///
/// The lock names files, not URLs: a file missing from the cache is found again by its file
/// name on its project's index page (the indexes of the requirement files and pip's
/// configuration, as `lock` used them).
fn fetch_wheels(
    set: &RequirementSet,
    python: Option<&lockfile::Python>,
    wheels: &[&LockedPython],
    cache: &fetch::Cache,
    offline: bool,
    printer: &dyn Reporter,
) -> Result<HashMap<Digest, PathBuf>, Error> {
    let mut found = HashMap::new();
    let mut missing = Vec::new();
    for wheel in wheels {
        let path = cache
            .blob_path(wheel.file.sha256.hex())
            .map_err(|e| Error::from_error(format!("bad sha256 for {} in the lock", wheel.file.name), e))?;
        // Re-hashed before reuse, as `download_verified` does: a damaged one is removed and
        // fetched again.
        let state = cache
            .check_blob(wheel.file.sha256.hex())
            .map_err(|e| Error::from_error(format!("cannot read {} in the cache", wheel.file.name), e))?;
        match state {
            fetch::BlobState::Intact(_) => {
                found.insert(wheel.file.sha256.clone(), path);
            }
            fetch::BlobState::Evicted(_) if offline => {
                return Err(Error::user(format!(
                    "the cached {} ({} {}) was damaged and has been removed ({}); --offline forbids \
                     fetching it again",
                    wheel.file.name,
                    wheel.name,
                    wheel.version,
                    path.display()
                ))
                .with_hint("run the build once without --offline to fetch it again"));
            }
            fetch::BlobState::Evicted(_) | fetch::BlobState::Missing => missing.push(*wheel),
        }
    }
    if missing.is_empty() {
        return Ok(found);
    }
    let config = index_config(set, cache)?;
    let http = crate::env::client(fetch::ClientOptions {
        ca_bundle: config.cert.clone(),
        offline,
        timeout: std::time::Duration::from_secs_f64(config.timeout.unwrap_or(60.0)),
        ..fetch::ClientOptions::default()
    })?;
    // One client per set of [[python.index]] pins, as `lock` resolved each platform; a file
    // is looked for with the pins of the first platform that locks it.
    let mut clients: Vec<(Pins, PypiClient)> = Vec::new();
    let mut client_of: Vec<usize> = Vec::new();
    for wheel in &missing {
        let pins = match (python, wheel.platforms.first()) {
            (Some(python), Some(platform)) => pins_for(python, *platform)?,
            _ => Vec::new(),
        };
        let i = match clients.iter().position(|(p, _)| *p == pins) {
            Some(i) => i,
            None => {
                let options = pypi_client::PypiClientOptions {
                    offline,
                    pinned: pins.clone(),
                    ..pypi_client::PypiClientOptions::default()
                };
                clients.push((pins, PypiClient::new(config.clone(), http.clone(), cache.clone(), options)));
                clients.len() - 1
            }
        };
        client_of.push(i);
    }
    let runtime = crate::env::runtime()?;
    let t = Instant::now();
    let bytes: u64 = missing.iter().map(|w| w.file.size).sum();
    let spinner = printer.bar(bytes, &format!("Fetching {} wheels", missing.len()), true);
    let jobs = missing.iter().zip(&client_of).map(|(wheel, &i)| {
        let (client, http, cache, spinner) = (&clients[i].1, &http, &cache, &spinner);
        async move {
            let name = PackageName::from_str(&wheel.name)
                .map_err(|e| Error::user(format!("bad package name `{}` in the lock: {e}", wheel.name)))?;
            let page = client
                .project(&name)
                .await
                .map_err(|e| Error::from_error(format!("cannot read the index page of {}", wheel.name), e))?;
            let file =
                page.as_ref().and_then(|page| page.files.iter().find(|f| f.filename == wheel.file.name));
            let Some(file) = file else {
                return Err(Error::user(format!(
                    "no index offers {} any more (locked for {} {})",
                    wheel.file.name, wheel.name, wheel.version
                ))
                .with_hint("check the index configuration, or run `marqo-base lock -P NAME`"));
            };
            let path = http
                .download_verified_sized(&file.url, wheel.file.sha256.hex(), Some(wheel.file.size), cache)
                .await
                .map_err(|e| {
                    let err = Error::from_error(format!("cannot download {}", wheel.file.name), e);
                    match err.is_hash_mismatch() {
                        true => err.with_hint(format!(
                            "the index serves another file as {} than the one locked; if you trust it, \
                             run `marqo-base lock -P {}` to lock it",
                            wheel.file.name, wheel.name
                        )),
                        false => err,
                    }
                })?;
            spinner.inc(wheel.file.size);
            Ok::<_, Error>((wheel.file.sha256.clone(), path))
        }
    });
    let fetched = runtime.block_on(futures::future::try_join_all(jobs));
    spinner.finish_and_clear();
    found.extend(fetched?);
    printer.status(format!(
        "Fetched {} wheels ({}) in {:.2}s",
        missing.len(),
        megabytes(bytes),
        t.elapsed().as_secs_f64()
    ));
    Ok(found)
}

/// The package index configuration `lock` used: the indexes of the requirement files, then
/// pip's environment and configuration files.
fn index_config(set: &RequirementSet, cache: &fetch::Cache) -> Result<IndexConfig, Error> {
    let index_args = IndexArgs {
        index_url: set.index_url.clone(),
        extra_index_urls: set.extra_index_urls.clone(),
        find_links: set.find_links.clone(),
        no_index: set.no_index,
        cert: None,
    };
    let pip_env = PipEnvironment {
        default_index_memo: Some(cache.root().join("host-pip-default-index")),
        ..PipEnvironment::from_process()
    };
    IndexConfig::from_pip_with(&index_args, &pip_env)
        .map_err(|e| Error::from_error("cannot read the package index configuration", e))
}

/// Builds a wheel from each sdist of `entries` (fetched to `fetched`) for every selected
/// platform that locks it; returns them by the sdist's sha256 and the architecture.
///
/// The host's `python3` builds it (PEP 517, isolated, with the manifest's build constraints
/// and the indexes `lock` used; cached by the sdist's hash, the host's Python and the
/// compiler environment). A wheel the platform cannot install as it is (a C extension built
/// for the host) is built again with the platform's cross compiler when the platform has
/// another architecture, and accepted only as a stable-ABI wheel the target's Python can
/// load (see [`cross`]).
#[allow(clippy::too_many_arguments)]
fn build_sdists(
    manifest: &Manifest,
    set: &RequirementSet,
    lock: &Lock,
    entries: &[&LockedPython],
    platforms: &[TargetPlatform],
    fetched: &HashMap<Digest, PathBuf>,
    out_dir: &Path,
    offline: bool,
    printer: &dyn Reporter,
) -> Result<HashMap<(Digest, Arch), PathBuf>, Error> {
    let sdists: Vec<&LockedPython> =
        entries.iter().copied().filter(|entry| !entry.file.name.ends_with(".whl")).collect();
    let mut paths = HashMap::new();
    let (Some(python), false) = (&manifest.python, sdists.is_empty()) else {
        return Ok(paths);
    };
    let cache = crate::env::cache()?;
    let config = index_config(set, &cache)?;
    let ctx = BuildContext {
        python: PathBuf::from("python3"),
        pip_args: config.pip_args(),
        build_constraints: python.build_constraints.clone(),
        work_dir: cache.root().join("builds"),
        backend_env: Vec::new(),
        env_installer: None,
    };
    fs_err::create_dir_all(out_dir)
        .map_err(|e| Error::from_error(format!("cannot create {}", out_dir.display()), e))?;
    let runtime = crate::env::runtime()?;
    let t = Instant::now();
    let spinner = printer.spinner(&format!("Building wheels from {} sdists", sdists.len()));
    let jobs = sdists.iter().map(|sdist| {
        let job =
            build_one(sdist, fetched.get(&sdist.file.sha256).cloned(), ctx.clone(), out_dir.join("host"));
        async move { Ok::<_, Error>((sdist.file.sha256.clone(), job.await?)) }
    });
    let native = runtime.block_on(futures::future::try_join_all(jobs));
    spinner.finish_and_clear();
    let native: HashMap<Digest, PathBuf> = native?.into_iter().collect();

    let glibc = manifest.glibc().unwrap_or(DEFAULT_GLIBC);
    let mut interpreters: HashMap<TargetPlatform, HashSet<String>> = HashMap::new();
    let mut built = 0;
    for entry in &sdists {
        for platform in entry.platforms.iter().filter(|p| platforms.contains(p)) {
            let arch = platform.arch();
            let target = Target::new(arch, &python.version, glibc)
                .map_err(|e| Error::user(format!("{}: {e}", manifest.path().display())))?;
            let fits = |wheel: &Path| -> Result<bool, Error> {
                let file_name =
                    wheel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let parsed = WheelFilename::from_str(&file_name).map_err(|e| {
                    Error::from_error(format!("`{}` built `{file_name}`, not a wheel", entry.name), e)
                })?;
                Ok(target.wheel_rank(&parsed).is_some())
            };
            let mut wheel = native[&entry.file.sha256].clone();
            if !fits(&wheel)? && cross::host_arch() != Some(arch) {
                let Some(env) = cross::cross_env(arch) else {
                    return Err(Error::user(format!(
                        "`{}` builds a {} wheel on this host, which {platform} cannot use, and \
                         there is no {}-gcc to build it for {platform}",
                        entry.name,
                        wheel_tag(&wheel.to_string_lossy()),
                        cross::triple(arch)
                    ))
                    .with_hint(format!(
                        "install a cross compiler (apt-get install gcc-{}), or pin a version of {} \
                         that has a wheel for {platform}",
                        cross::triple(arch),
                        entry.name
                    )));
                };
                let cross_ctx = BuildContext { backend_env: env, ..ctx.clone() };
                let spinner = printer.spinner(&format!("Cross-building {} for {platform}", entry.file.name));
                let source = fetched.get(&entry.file.sha256).cloned();
                let result = runtime.block_on(build_one(entry, source, cross_ctx, out_dir.join(arch.name())));
                spinner.finish_and_clear();
                wheel = result?;
                built += 1;
            }
            if !fits(&wheel)? {
                let refused = |why: String| {
                    Error::user(format!(
                        "`{}` builds a {} wheel on this host, which Python {} on {platform} cannot use: {why}",
                        entry.name,
                        wheel_tag(&wheel.to_string_lossy()),
                        python.version
                    ))
                    .with_hint(format!("pin a version of {} that has a wheel for {platform}", entry.name))
                };
                let needs = cross::abi3_wheel_needs(&wheel, arch).map_err(refused)?;
                if !interpreters.contains_key(platform) {
                    let symbols =
                        interpreter_symbols(manifest, lock, *platform, &python.version, offline, printer)?;
                    interpreters.insert(*platform, symbols);
                }
                cross::check_symbols(&needs, &interpreters[platform]).map_err(refused)?;
                tracing::info!(
                    "{}: the stable-ABI wheel {} loads in Python {} on {platform}",
                    entry.name,
                    wheel.display(),
                    python.version
                );
            }
            paths.insert((entry.file.sha256.clone(), arch), wheel);
        }
    }
    printer.status(format!(
        "Built {} wheels from {} sdists in {:.2}s",
        native.len() + built,
        native.len(),
        t.elapsed().as_secs_f64()
    ));
    Ok(paths)
}

/// Builds the wheel of the sdist `sdist` (fetched to `path`) with `ctx` into `out`.
async fn build_one(
    sdist: &LockedPython,
    path: Option<PathBuf>,
    ctx: BuildContext,
    out: PathBuf,
) -> Result<PathBuf, Error> {
    let name = PackageName::from_str(&sdist.name)
        .map_err(|e| Error::user(format!("bad package name `{}` in the lock: {e}", sdist.name)))?;
    let filename = SdistFilename::parse(&sdist.file.name, &name).map_err(|e| {
        Error::from_error(format!("`{}` in the lock is not an sdist file name", sdist.file.name), e)
    })?;
    let path = path.ok_or_else(|| Error::user(format!("{} was not fetched", sdist.file.name)))?;
    fs_err::create_dir_all(&out)
        .map_err(|e| Error::from_error(format!("cannot create {}", out.display()), e))?;
    build_wheel(&path, &filename, &ctx, &out)
        .await
        .map_err(|e| Error::from_error(format!("cannot build a wheel from {}", sdist.file.name), e))
}

/// The dynamic symbols of the target's interpreter, `/usr/bin/pythonX.Y` of the locked
/// `pythonX.Y-minimal` package of `platform`.
fn interpreter_symbols(
    manifest: &Manifest,
    lock: &Lock,
    platform: TargetPlatform,
    version: &str,
    offline: bool,
    printer: &dyn Reporter,
) -> Result<HashSet<String>, Error> {
    let version = crate::plan::major_minor(version)?;
    let package = format!("python{version}-minimal");
    let Some(deb) = lock.debian_for(platform).find(|d| d.name == package) else {
        return Err(Error::user(format!(
            "a wheel built on this host for {platform} can only be checked against the image's \
             Python, and the lock has no {package} for {platform}"
        ))
        .with_hint(format!("add python{version} to [debian] packages and run `marqo-base lock`")));
    };
    let paths = fetch_debian(manifest, &[deb], offline, printer)?;
    let path = &paths[&deb.file.sha256];
    let wanted = format!("usr/bin/python{version}");
    let mut binary = None;
    debian::deb::Deb::new(path, &deb.name)
        .visit_data(|entry, reader| {
            if entry.path == wanted && entry.kind == debian::deb::EntryKind::File {
                // The header's size is a claim, not an allocation to make up front.
                let mut bytes = Vec::with_capacity(entry.size.min(1 << 26) as usize);
                reader.read_to_end(&mut bytes).map_err(|source| debian::Error::Io {
                    action: "read",
                    path: path.clone(),
                    source,
                })?;
                binary = Some(bytes);
            }
            Ok(())
        })
        .map_err(|e| Error::from_error(format!("cannot read {}", deb.path), e))?;
    let binary = binary.ok_or_else(|| Error::user(format!("{} has no /{wanted}", deb.path)))?;
    cross::defined_symbols(&binary).map_err(|e| Error::user(format!("/{wanted} of {}: {e}", deb.path)))
}

/// `py3-none-any` of `name-1.0-py3-none-any.whl`: the last three dash-separated parts.
fn wheel_tag(file_name: &str) -> String {
    let stem = file_name.strip_suffix(".whl").unwrap_or(file_name);
    let parts: Vec<&str> = stem.split('-').collect();
    parts[parts.len().saturating_sub(3)..].join("-")
}

/// A built platform: its manifest's descriptor, its layers (bottom first), the seconds it
/// took, and what its Debian packages' maintainer scripts do (when it has some).
/// What a platform's build made.
struct PlatformBuilt {
    /// The manifest (with its platform).
    descriptor: Descriptor,
    /// The layers, bottom first: the planned ones, then the SBOM's.
    layers: Vec<LayerInfo>,
    /// The Debian layer's maintainer-script report (kept beside the layer in the cache, so a
    /// cached layer has it too).
    scripts: Option<debian::ScriptReport>,
    /// What each planned layer's build learned of its packages (`None` for `[[file]]`s).
    packages: Vec<Option<String>>,
    sbom: sbom::Sbom,
    /// How long it took.
    seconds: f64,
}

/// A planned layer's key in the layer cache, and what the cache has under it.
struct CachedLayer {
    /// The local cache's key.
    key: Option<String>,
    /// The registry cache's key.
    portable: Option<String>,
    /// A layer of packages (not of `[[file]]`s): reused only with its package facts.
    packaged: bool,
    /// The layer, when a cache has it (its blob in the local cache, unless `remote`).
    info: Option<LayerInfo>,
    /// A registry-cache hit whose blob stays in the registry (mounted when pushed).
    remote: Option<CacheEntry>,
    /// A registry-cache hit whose blob is still to be downloaded.
    hit: Option<CacheEntry>,
    from: LayerFrom,
    /// The registry cache has this layer (nothing to write back).
    in_registry_cache: bool,
}

/// Each planned layer and where it comes from.
fn preview(plan: &BuildPlan<'_>, looked_up: &[Vec<CachedLayer>]) -> BuildPreview {
    let platforms = plan
        .platforms
        .iter()
        .zip(looked_up)
        .map(|(planned, cached)| {
            let layers = planned
                .layers
                .iter()
                .zip(cached)
                .map(|(layer, c)| PreviewLayer { created_by: layer.created_by.clone(), from: c.from.clone() })
                .collect();
            (planned.platform.to_string(), layers)
        })
        .collect();
    BuildPreview { platforms }
}

/// Asks the registry cache for every layer the local cache lacks: a hit becomes a layer of
/// the build, left in the registry when the image goes to the same registry (mounted when
/// pushed), else to be downloaded by [`fetch_registry_hits`] once the build is confirmed. With
/// `--cache-write`, the layers it has already are also looked up, so that only what it lacks
/// is written.
fn lookup_registry_cache(
    remote: &RegistryCache,
    looked_up: &mut [Vec<CachedLayer>],
    args: &BuildOptions,
    printer: &dyn Reporter,
) {
    if args.offline {
        return;
    }
    let mut keys: Vec<String> = looked_up
        .iter()
        .flatten()
        .filter(|c| c.info.is_none() || remote.writes())
        .filter_map(|c| c.portable.clone())
        .collect();
    keys.sort();
    keys.dedup();
    let hits = remote.lookup(&keys, printer);
    let mount = args.mount_into.as_deref() == Some(remote.registry());
    for layer in looked_up.iter_mut().flatten() {
        let Some(entry) = layer.portable.as_deref().and_then(|k| hits.get(k)) else { continue };
        layer.in_registry_cache = true;
        if layer.info.is_some() {
            continue;
        }
        let described = entry.packages.as_deref().is_some_and(|t| sbom::facts_from_text(t).is_ok());
        let info = crate::registry_cache::layer_info(entry).filter(|_| described || !layer.packaged);
        let Some(info) = info else {
            // Written again (with its package facts) after the build.
            layer.in_registry_cache = false;
            continue;
        };
        layer.from = LayerFrom::RegistryCache(info.digest.clone(), info.size, remote.name());
        if mount {
            layer.remote = Some(entry.clone());
            layer.info = Some(info);
        } else {
            layer.hit = Some(entry.clone());
        }
    }
}

/// How many registry-cache blobs are downloaded at once.
const PARALLEL_HITS: usize = 4;

/// Downloads the blobs of the registry-cache hits that stay on this machine, several at once,
/// each checked (digest, then `diff_id`) into the local layer cache; a hit that does not check
/// out is built instead (and written back).
fn fetch_registry_hits(
    remote: &RegistryCache,
    looked_up: &mut [Vec<CachedLayer>],
    cache: &fetch::Cache,
    layer_cache: &LayerCache,
    printer: &dyn Reporter,
) {
    // Each entry once, grouped by the blob they name: a blob is downloaded once (never by
    // two threads into one partial file), then checked for each entry that names it.
    let mut by_blob: BTreeMap<Digest, BTreeMap<String, &CacheEntry>> = BTreeMap::new();
    for entry in looked_up.iter().flatten().filter_map(|c| c.hit.as_ref()) {
        by_blob.entry(entry.layer.digest.clone()).or_default().insert(entry.key.clone(), entry);
    }
    if by_blob.is_empty() {
        return;
    }
    let bytes = by_blob.values().filter_map(|g| g.values().next()).map(|e| e.layer.size).sum();
    let bar = printer.bar(bytes, &format!("Fetching {} layers from the registry cache", by_blob.len()), true);
    let progress = crate::registry_cache::progress_of(&bar);
    let queue = std::sync::Mutex::new(by_blob.values());
    let fetched: std::sync::Mutex<HashMap<String, (LayerInfo, PathBuf)>> = Default::default();
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_HITS.min(by_blob.len()) {
            scope.spawn(|| loop {
                let Some(group) = queue.lock().unwrap_or_else(|e| e.into_inner()).next() else { break };
                let entries: Vec<&CacheEntry> = group.values().copied().collect();
                let checked = remote.download(&entries, cache, &progress);
                let mut fetched = fetched.lock().unwrap_or_else(|e| e.into_inner());
                for (entry, got) in entries.iter().zip(checked) {
                    if let Some(got) = got {
                        fetched.insert(entry.key.clone(), got);
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    let fetched = fetched.into_inner().unwrap_or_else(|e| e.into_inner());
    for layer in looked_up.iter_mut().flatten() {
        let Some(entry) = layer.hit.take() else { continue };
        match fetched.get(&entry.key) {
            Some((info, path)) => {
                if let Some(key) = &layer.key {
                    layer_cache.put(key, info, path);
                    if let Some(note) = &entry.note {
                        layer_cache.put_note(key, note);
                    }
                    if let Some(packages) = &entry.packages {
                        layer_cache.put_packages(key, packages);
                    }
                }
                layer.info = Some(info.clone());
            }
            None => {
                // Not usable after all: built, and written back.
                layer.from = LayerFrom::Build;
                layer.in_registry_cache = false;
            }
        }
    }
}

/// `name sha256` of each file, one per line: what a built sdist depends on besides itself.
/// What a layer plan needs of the manifest's Python section besides the lock.
pub(crate) struct PlanInputs {
    /// The requirement files: they name the indexes the wheels came from.
    pub requirements: RequirementSet,
    /// Which distributions were asked for (they get `REQUESTED`, as with pip).
    pub requested: HashSet<String>,
    /// [`describe_files`] of the build constraints.
    pub build_constraints: String,
}

/// [`PlanInputs`] of `manifest` (all empty without a `[python]` section): `build` and `diff`
/// plan from the same.
pub(crate) fn plan_inputs(manifest: &Manifest) -> Result<PlanInputs, Error> {
    let Some(python) = &manifest.python else {
        return Ok(PlanInputs {
            requirements: RequirementSet::default(),
            requested: HashSet::new(),
            build_constraints: String::new(),
        });
    };
    let requirements = RequirementSet::read_files(&python.requirements, &python.constraints)
        .map_err(|e| Error::from_error(e.to_string(), e))?;
    let requested = requirements.requirements.iter().map(|e| e.req.name.to_string()).collect();
    Ok(PlanInputs { requirements, requested, build_constraints: describe_files(&python.build_constraints)? })
}

fn describe_files(paths: &[PathBuf]) -> Result<String, Error> {
    let mut out = String::new();
    for path in paths {
        let digest = lockfile::read_path_digest(path)
            .map_err(|e| Error::from_error(format!("cannot read {}", path.display()), e))?;
        out.push_str(&format!("{} {} ", path.display(), digest.sha256.hex()));
    }
    Ok(out)
}

/// What one platform's image is made of, and where it goes.
struct PlatformBuild<'a> {
    platform: TargetPlatform,
    manifest: &'a Manifest,
    lock: &'a Lock,
    layers: &'a [PlannedLayer<'a>],
    /// What the layer cache has for each of `layers`.
    cached: &'a [CachedLayer],
    python_version: Option<&'a str>,
    /// The fetched `.deb`s, wheels and sdists by their locked sha256.
    deb_paths: &'a HashMap<Digest, PathBuf>,
    wheel_paths: &'a HashMap<Digest, PathBuf>,
    /// The wheels built from sdists, by the sdist's sha256 and the architecture.
    built_wheels: &'a HashMap<(Digest, Arch), PathBuf>,
    /// The `[[file]]` downloads by destination.
    file_paths: &'a HashMap<String, PathBuf>,
    /// The normalised names of the direct requirements.
    requested: &'a HashSet<String>,
    layout: &'a OciLayout,
    layer_cache: &'a LayerCache,
    scratch: &'a Path,
    mtime: u64,
    compression: Compression,
    /// Advanced by one for every layer done.
    progress: &'a indicatif::ProgressBar,
    /// The image this one is built on.
    base: Option<&'a BaseImage>,
    /// What byte-compiles the wheel layers' modules; `None` for no `.pyc`.
    bytecode: Option<&'a crate::bytecode::PyCompiler>,
    /// apt's sources and keyrings, for the Debian layer.
    apt_files: &'a [(String, Vec<u8>)],
}

impl PlatformBuild<'_> {
    /// Writes the platform's layers (or links them from the cache), its SBOM layer,
    /// configuration and manifest (see [`PlatformBuilt`]).
    fn build(&self) -> Result<PlatformBuilt, Error> {
        let mut layers: Vec<ImageLayer> = Vec::new();
        let mut scripts = None;
        let mut packages: Vec<Option<String>> = Vec::new();
        for (planned, cached) in self.layers.iter().zip(self.cached) {
            let is_debian = matches!(planned.source, LayerSource::Debian(_));
            if let (Some(info), Some(entry)) = (&cached.info, &cached.remote) {
                // In the registry cache, mounted when pushed: nothing to put in the layout.
                if is_debian {
                    scripts = entry.note.as_deref().and_then(debian::ScriptReport::parse);
                }
                packages.push(entry.packages.clone());
                layers.push(ImageLayer { info: info.clone(), created_by: planned.created_by.clone() });
                self.progress.inc(1);
                continue;
            }
            if let Some(info) = &cached.info {
                if is_debian {
                    scripts = cached
                        .key
                        .as_deref()
                        .and_then(|k| self.layer_cache.note(k))
                        .and_then(|t| debian::ScriptReport::parse(&t));
                }
                // Looked up with the layer (a layer of packages without them was a miss).
                packages.push(cached.key.as_deref().and_then(|k| self.layer_cache.packages(k)));
                // Verified when it was looked up; a damaged one was a miss, built below.
                self.layer_cache.link_into(info, self.layout).map_err(|e| {
                    Error::from_error(format!("cannot reuse a layer of {}", self.platform), e)
                })?;
                layers.push(ImageLayer { info: info.clone(), created_by: planned.created_by.clone() });
                self.progress.inc(1);
                continue;
            }
            let (info, facts) = match &planned.source {
                LayerSource::Debian(debs) => {
                    let (info, report, facts) = self.debian_layer(debs)?;
                    if let Some(key) = &cached.key {
                        self.layer_cache.put_note(key, &report.to_text());
                    }
                    scripts = Some(report);
                    (info, Some(facts))
                }
                LayerSource::Wheels(wheels) => {
                    let (info, facts) = self.wheel_layer(wheels)?;
                    (info, Some(facts))
                }
                LayerSource::File(entry) => (self.file_layer(entry)?, None),
            };
            let facts = facts.map(|f| sbom::facts_to_text(&f));
            if let Some(key) = &cached.key {
                // The facts first: a layer entry without them is a miss.
                if let Some(text) = &facts {
                    self.layer_cache.put_packages(key, text);
                }
                let blob = self.layout.blob_path(&info.digest);
                self.layer_cache.put(key, &info, &blob);
            }
            packages.push(facts);
            layers.push(ImageLayer { info, created_by: planned.created_by.clone() });
            self.progress.inc(1);
        }

        // The bill of materials, from the lock and the layers' facts; in the image too.
        let sbom = self.sbom(&packages)?;
        let info = self.sbom_layer(&sbom)?;
        layers.push(ImageLayer {
            info,
            created_by: format!("marqo-base: the SBOM of the image, {}", crate::sbom::IMAGE_SBOM_PATH),
        });

        // The base's layers are the base's blobs, linked or copied in.
        if let Some(base) = self.base {
            for (descriptor, path) in base.image.layers.iter().zip(&base.blobs) {
                self.link_base_layer(descriptor, path)?;
            }
        }
        let image = image::assemble(&self.spec()?, self.base.map(|b| &b.image), &layers);
        let descriptor = image.write_to(self.layout).map_err(|e| oci_error(self.layout.path(), e))?;
        Ok(PlatformBuilt {
            descriptor,
            layers: layers.into_iter().map(|layer| layer.info).collect(),
            scripts,
            packages,
            sbom,
            seconds: 0.0,
        })
    }

    /// The platform's SBOM: the lock's packages of the platform with what the layers'
    /// builds learned of them (`packages`, one per planned layer).
    fn sbom(&self, packages: &[Option<String>]) -> Result<sbom::Sbom, Error> {
        let (mut debian, mut python) = (Vec::new(), Vec::new());
        for (layer, text) in self.layers.iter().zip(packages) {
            let Some(text) = text else { continue };
            let facts = sbom::facts_from_text(text).map_err(|e| {
                Error::internal(format!(
                    "the package facts of a layer of {} do not read back: {e}",
                    self.platform
                ))
            })?;
            match layer.source {
                LayerSource::Debian(_) => debian.extend(facts),
                LayerSource::Wheels(_) => python.extend(facts),
                LayerSource::File(_) => {}
            }
        }
        Ok(crate::sbom::platform_sbom(self.manifest, self.lock, self.platform, &debian, &python, self.mtime))
    }

    /// A layer of one file: the SPDX document at [`crate::sbom::IMAGE_SBOM_PATH`].
    fn sbom_layer(&self, sbom: &sbom::Sbom) -> Result<LayerInfo, Error> {
        let mut layer = self.layer(false)?;
        let bytes = sbom.to_spdx();
        layer
            .add_file(crate::sbom::IMAGE_SBOM_PATH, 0o644, &mut bytes.as_slice())
            .map_err(|e| Error::from_error("cannot add the SBOM to its layer", e))?;
        self.finish(layer)
    }

    /// Copies the base's layer `descriptor` (the file `path`, in the cache or the base's
    /// layout) into the layout, checked against its digest on the way. Never a hard link: an
    /// edit of the output must not reach the cache or the base.
    fn link_base_layer(&self, descriptor: &Descriptor, path: &Path) -> Result<(), Error> {
        if self.layout.blob_path(&descriptor.digest).is_file() {
            return Ok(());
        }
        match self.layout.copy_blob_checked(path, &descriptor.digest) {
            Ok(_) => Ok(()),
            Err(e @ oci::Error::DigestMismatch { .. }) => {
                // A damaged cache blob is dropped, so the next run pulls it again.
                let store = self.layer_cache.store();
                if store.blob_path(descriptor.digest.hex()).is_ok_and(|p| p == path) {
                    let _ = store.evict_blob(descriptor.digest.hex());
                }
                Err(Error::from_error("a layer of the base image changed on disk", e)
                    .with_hint("run the build again: a layer pulled into the cache is pulled afresh"))
            }
            Err(e) => Err(oci_error(self.layout.path(), e)),
        }
    }

    /// The `.deb`s unpacked into a temporary root (with the manifest's certificates to
    /// trust), which becomes one layer; and what their maintainer scripts do.
    #[allow(clippy::type_complexity)]
    fn debian_layer(
        &self,
        debs: &[&LockedDebian],
    ) -> Result<(LayerInfo, debian::ScriptReport, Vec<sbom::PackageFacts>), Error> {
        let debs: Vec<(debian::LockedDeb, PathBuf)> = debs
            .iter()
            .map(|d| {
                let path = self.deb_paths.get(&d.file.sha256).cloned().unwrap_or_default();
                (locked_deb(d), path)
            })
            .collect();
        let root = self.scratch.join(format!("rootfs-{}", self.platform.arch().name()));
        fs_err::create_dir(&root).map_err(|e| Error::from_error("cannot create the Debian root", e))?;
        fs_err::set_permissions(&root, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::from_error("cannot set the mode of the Debian root", e))?;
        let options = debian::ConfigureOptions {
            local_certificates: self.local_certificates()?,
            mtime: self.mtime,
            files: self.apt_files.to_vec(),
            manual: crate::plan::manual_packages(self.manifest),
        };
        let mut unpacked =
            debian::unpack_with(&debs, &root, &options).map_err(|e| Error::from_error(e.to_string(), e))?;
        if let Some(compiler) = self.bytecode {
            let written = crate::bytecode::compile_debian_modules(&root, &mut unpacked, compiler)?;
            tracing::debug!("{}: byte-compiled {written} modules of the Debian packages", self.platform);
        }
        let facts = crate::sbom::debian_facts(&unpacked, &root);
        let mut layer = self.layer(true)?;
        files::add_tree(&mut layer, &root, "", &unpacked.owners)?;
        let info = self.finish(layer)?;
        fs_err::remove_dir_all(&root).map_err(|e| Error::from_error("cannot remove the Debian root", e))?;
        Ok((info, unpacked.scripts, facts))
    }

    /// The manifest's certificates to trust, each checked against the digest the lock
    /// recorded (which the layer's key names), so the layer holds what its key says.
    fn local_certificates(&self) -> Result<Vec<debian::LocalCertificate>, Error> {
        let certs = crate::debian::local_certificates(self.manifest)?;
        for (cert, path) in certs.iter().zip(self.manifest.debian.iter().flat_map(|d| &d.ca_certificates)) {
            let name = self.manifest.input_name(path);
            let now = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&cert.pem)));
            if self.lock.inputs.files.get(&name) != Some(&now) {
                return Err(Error::user(format!("`{name}` changed while the image was being built"))
                    .with_hint("run `marqo-base lock`, then build again"));
            }
        }
        Ok(certs)
    }

    /// The wheels installed into one layer, as pip would into the Debian Python.
    fn wheel_layer(&self, wheels: &[&LockedPython]) -> Result<(LayerInfo, Vec<sbom::PackageFacts>), Error> {
        let version = self.python_version.ok_or_else(|| Error::user("no [python] version"))?;
        let scheme = Scheme::debian(version);
        let python = format!("/usr/bin/python{version}");
        let mut layer = self.layer(false)?;
        let mut facts = Vec::new();
        for wheel in wheels {
            // An sdist's wheel was built for this platform; a wheel is used as it is.
            let built = (wheel.file.sha256.clone(), self.platform.arch());
            let path = self
                .built_wheels
                .get(&built)
                .or_else(|| self.wheel_paths.get(&wheel.file.sha256))
                .ok_or_else(|| Error::user(format!("{} was not fetched", wheel.file.name)))?;
            let options = InstallOptions {
                python: python.clone(),
                requested: self.requested.contains(&wheel.name),
                strict_record: false,
                bytecode: self.bytecode.map(|c| c as &dyn image::Bytecompiler),
            };
            let installed = install_wheel(path, &scheme, &mut layer, &options)
                .map_err(|e| Error::from_error(format!("cannot install {}", wheel.file.name), e))?;
            facts.push(crate::sbom::wheel_facts(&wheel.name, &wheel.version, installed.metadata.as_deref()));
            for problem in &installed.record_problems {
                // As pip: installed anyway (the wheel's sha256 was checked against the lock).
                tracing::warn!("{}: {problem}; installed as pip would", wheel.file.name);
            }
            for module in &installed.not_compiled {
                tracing::info!(
                    "{} ({}): {module}; installed without .pyc, as pip",
                    wheel.file.name,
                    self.platform
                );
            }
        }
        Ok((self.finish(layer)?, facts))
    }

    /// A `[[file]]`: its local source, or its download from the cache.
    fn file_layer(&self, entry: &FileEntry) -> Result<LayerInfo, Error> {
        let path = match &entry.source {
            FileSource::Local(path) => path.clone(),
            FileSource::Url { .. } => self
                .file_paths
                .get(&entry.to)
                .cloned()
                .ok_or_else(|| Error::user(format!("the [[file]] for {} was not fetched", entry.to)))?,
        };
        let mut layer = self.layer(true)?;
        files::add_entry(&mut layer, entry, &path)?;
        self.finish(layer)
    }

    fn layer(&self, debian: bool) -> Result<LayerWriter, Error> {
        LayerWriter::new(self.scratch, layer_options(self.mtime, debian))
            .map(|layer| layer.with_compression(self.compression))
            .map_err(|e| Error::from_error("cannot start a layer", e))
    }

    /// Compresses the layer into the scratch directory and moves it into the layout's blobs.
    fn finish(&self, layer: LayerWriter) -> Result<LayerInfo, Error> {
        let out = self.scratch.join(format!("layer-{}.tar", self.platform.arch().name()));
        let info = layer.finish_to_file(&out).map_err(|e| Error::from_error("cannot write a layer", e))?;
        let dest = self.layout.blob_path(&info.digest);
        if dest.is_file() {
            fs_err::remove_file(&out).map_err(|e| Error::from_error("cannot remove a scratch layer", e))?;
        } else if fs_err::rename(&out, &dest).is_err() {
            // Another file system: copy it in (hashed again as it is stored).
            self.layout.put_blob_from_file(&out).map_err(|e| oci_error(self.layout.path(), e))?;
            fs_err::remove_file(&out).map_err(|e| Error::from_error("cannot remove a scratch layer", e))?;
        }
        Ok(info)
    }

    /// The image's settings: the manifest's `[image]`, the lock's fingerprint, and the
    /// `SOURCE_DATE_EPOCH` (if any) as the time it was made.
    fn spec(&self) -> Result<ImageSpec, Error> {
        let image = &self.manifest.image;
        let created = match self.mtime {
            0 => None,
            secs => Some(
                jiff::Timestamp::from_second(secs as i64)
                    .map_err(|e| Error::user(format!("SOURCE_DATE_EPOCH {secs} is out of range: {e}")))?
                    .to_string(),
            ),
        };
        Ok(ImageSpec {
            env: image.env.clone(),
            entrypoint: image.entrypoint.clone(),
            cmd: image.cmd.clone(),
            workdir: image.workdir.clone(),
            user: image.user.clone(),
            labels: image.labels.clone(),
            fingerprint: Some(self.lock.inputs.fingerprint.clone()),
            created,
            ..ImageSpec::new(oci::Platform::new("linux", self.platform.arch().name()))
        })
    }
}

fn oci_error(dir: &Path, err: oci::Error) -> Error {
    Error::from_error(format!("cannot write the image layout {}", dir.display()), err)
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
