//! Locking: the manifest and the files it names -> `marqo-base.lock`, for every platform of
//! the image: Python distributions and Debian packages by name, size and hash, `[[file]]`s by
//! content, the base image by digest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use lockfile::{
    FileRef, Freshness, Inputs, Lock, LockedBase, LockedDebian, LockedPython, Manifest, PythonRoot,
    TargetPlatform,
};
use oci::Digest;
use pep_types::{PackageName, Target, Version};
use py_resolver::{RequirementSet, ResolveOptions};
use pypi_client::{IndexArgs, IndexStrategy};

use crate::debian::Session;
use crate::python::{open_source, parse_date, resolve_with_progress, SourceSetup};
use crate::{base, files, Error, Reporter};

/// What `lock` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct LockOptions {
    /// The manifest.
    pub manifest: std::path::PathBuf,
    /// The lock file; `None` for `marqo-base.lock` beside the manifest.
    pub lock: Option<std::path::PathBuf>,
    /// Ignore the versions of the existing lock.
    pub upgrade: bool,
    /// Re-resolve these Python or Debian packages (or `base`).
    pub upgrade_package: Vec<String>,
    /// Ignore Python files uploaded after this date (as `--exclude-newer` takes it).
    pub exclude_newer: Option<String>,
    /// Use only the cache.
    pub offline: bool,
    /// Revalidate every cached index page.
    pub refresh: bool,
    /// Take every Debian security update (a newer version of a locked package in a
    /// `-security` suite) and keep everything else, as unattended-upgrades would.
    pub security: bool,
}

impl LockOptions {
    /// The lock file: the one given, else `marqo-base.lock` beside the manifest.
    pub fn lock_path(&self) -> std::path::PathBuf {
        match &self.lock {
            Some(path) => path.clone(),
            None => self.manifest.parent().unwrap_or(Path::new("")).join("marqo-base.lock"),
        }
    }
}

/// Whether a lock matches its inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    /// There is no lock file.
    Missing,
    /// The inputs' digests are those the lock was made from.
    Fresh,
    /// These inputs changed.
    Stale(Vec<String>),
}

/// The glibc of a target when neither `[python] glibc` nor a known Debian suite says.
pub const DEFAULT_GLIBC: &str = "2.28";

/// Resolves the manifest for every platform and writes the lock atomically (keeping the
/// existing lock's versions unless asked to upgrade).
pub fn lock(args: &LockOptions, printer: &dyn Reporter) -> Result<(), Error> {
    let manifest_path = args.manifest.clone();
    let lock_path = args.lock_path();
    let manifest = Manifest::read(&manifest_path)?;
    let previous = match lock_path.exists() && !args.upgrade {
        true => Some(Lock::read(&lock_path).map_err(|e| {
            Error::user(e.to_string()).with_hint("fix the lock, delete it, or pass --upgrade to lock afresh")
        })?),
        false => None,
    };
    let inputs = Inputs::read(&manifest_path)?;
    // Certificates to trust are checked before anything is resolved.
    let local_certificates = crate::debian::local_certificates(&manifest)?;
    let mut lock = Lock::new(inputs);
    let upgrade: BTreeSet<String> =
        args.upgrade_package.iter().map(|n| n.trim().to_ascii_lowercase()).collect();

    if let Some(python) = &manifest.python {
        lock_python(&manifest, python, previous.as_ref(), &upgrade, args, &mut lock, printer)?;
    }
    if let Some(debian) = &manifest.debian {
        lock_debian(&manifest, debian, previous.as_ref(), &upgrade, args, &mut lock, printer)?;
        if let Some(first) = local_certificates.first() {
            for platform in &manifest.image.platforms {
                if !lock.debian_for(*platform).any(|d| d.name == "ca-certificates") {
                    return Err(Error::user(format!(
                        "[debian] ca_certificates: {} is to be trusted, but the packages for {platform} do not \
                         include ca-certificates, which installs certificates",
                        first.name
                    ))
                    .with_hint("add \"ca-certificates\" to [debian] packages"));
                }
            }
        }
    }
    for file in files::lock_files(&manifest, args.offline, printer)? {
        lock.add_file(file);
    }
    if let Some(reference) = &manifest.image.base {
        // Kept at its digest unless the reference changed, or -U / -P base.
        let kept = previous
            .as_ref()
            .and_then(|p| p.base.as_ref())
            .filter(|b| &b.reference == reference && !upgrade.contains("base"));
        let digest = match kept {
            Some(base) => base.digest.clone(),
            None => {
                if args.offline {
                    return Err(Error::user(format!(
                        "--offline: the base image {reference} is not locked yet"
                    ))
                    .with_hint("run `marqo-base lock` online once"));
                }
                let source = base::BaseSource::parse(reference, manifest.dir())?;
                base::resolve_digest(&source)?
            }
        };
        printer.status(format!("Base image {reference} at {digest}"));
        lock.base = Some(LockedBase { reference: reference.clone(), digest });
    }
    lock.write_atomic(&lock_path)
        .map_err(|e| Error::from_error(format!("cannot write `{}`", lock_path.display()), e))?;
    printer.status(format!(
        "Wrote {}: {} Python files, {} Debian packages, {} other files",
        lock_path.display(),
        lock.python.len(),
        lock.debian.len(),
        lock.files.len()
    ));
    Ok(())
}

/// Package names and the one index each comes from.
pub type Pins = Vec<(PackageName, url::Url)>;

/// The `[[python.index]]` pins that apply to `platform`, in manifest order.
pub fn pins_for(
    python: &lockfile::Python,
    platform: TargetPlatform,
) -> Result<Vec<(PackageName, url::Url)>, Error> {
    let mut pins = Vec::new();
    for index in &python.index {
        let url = url::Url::parse(&index.url).map_err(|e| {
            Error::user(format!("[[python.index]] url `{}`: {e}", fetch::strip_credentials(&index.url)))
        })?;
        for name in index.packages.iter().filter(|n| index.serves(n, platform)) {
            if !pins.iter().any(|(pinned, _): &(PackageName, url::Url)| pinned == name) {
                pins.push((name.clone(), url.clone()));
            }
        }
    }
    Ok(pins)
}

/// `lock --check`: whether the lock still serves the manifest (see [`stale_reasons`]). Reads
/// files only: no network, no resolution.
pub fn check(manifest_path: &Path, lock_path: &Path) -> Result<LockState, Error> {
    if !lock_path.exists() {
        return Ok(LockState::Missing);
    }
    let manifest = Manifest::read(manifest_path)?;
    let lock = Lock::read(lock_path)?;
    let reasons = stale_reasons(&manifest, &lock)?;
    match reasons.is_empty() {
        true => Ok(LockState::Fresh),
        false => Ok(LockState::Stale(reasons)),
    }
}

/// Why `lock` does not serve `manifest`, empty when it does: the inputs whose digests
/// changed; else what the lock misses of what the manifest asks (per platform, each
/// requirement's closure, each requested `.deb` and its dependencies, each `[[file]]` as the
/// manifest gives it), so a lock edited by hand is caught. Reads files only. `lock --check`
/// and `build` both ask this.
pub fn stale_reasons(manifest: &Manifest, lock: &Lock) -> Result<Vec<String>, Error> {
    let now = Inputs::read(manifest.path())?;
    if let Freshness::Stale { reasons } = lock.inputs.compare(&now) {
        return Ok(reasons);
    }
    let roots = python_roots(manifest)?;
    Ok(lock.coverage(manifest, &now, &roots))
}

/// The Python requirements of each platform (those whose markers hold there), read from the
/// manifest's requirement files.
fn python_roots(manifest: &Manifest) -> Result<BTreeMap<TargetPlatform, Vec<PythonRoot>>, Error> {
    let mut roots = BTreeMap::new();
    let Some(python) = &manifest.python else { return Ok(roots) };
    let set = RequirementSet::read_files(&python.requirements, &python.constraints)
        .map_err(|e| Error::from_error(e.to_string(), e))?;
    let glibc = manifest.glibc().unwrap_or(DEFAULT_GLIBC);
    for &platform in &manifest.image.platforms {
        let target = Target::new(platform.arch(), &python.version, glibc)
            .map_err(|e| Error::user(format!("{}: {e}", manifest.path().display())))?;
        let list = set
            .requirements
            .iter()
            .filter(|entry| entry.req.marker.evaluate(target.markers(), &[]))
            .map(|entry| PythonRoot {
                name: entry.req.name.to_string(),
                origin: format!(
                    "{}:{}",
                    manifest.input_name(Path::new(&entry.origin.file)),
                    entry.origin.line
                ),
            })
            .collect();
        roots.insert(platform, list);
    }
    Ok(roots)
}

pub(crate) fn lock_python(
    manifest: &Manifest,
    python: &lockfile::Python,
    previous: Option<&Lock>,
    upgrade: &BTreeSet<String>,
    args: &LockOptions,
    lock: &mut Lock,
    printer: &dyn Reporter,
) -> Result<(), Error> {
    let platforms = &manifest.image.platforms;
    let glibc = manifest.glibc().unwrap_or(DEFAULT_GLIBC);
    let targets = platforms
        .iter()
        .map(|p| Target::new(p.arch(), &python.version, glibc).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::user(format!("{}: {e}", manifest.path().display())))?;
    let set = RequirementSet::read_files(&python.requirements, &python.constraints)
        .map_err(|e| Error::from_error(e.to_string(), e))?;
    let preferences: Vec<HashMap<PackageName, Version>> = platforms
        .iter()
        .map(|p| {
            previous
                .map(|l| {
                    l.python_for(*p)
                        .filter(|e| !upgrade.contains(&e.name))
                        .filter_map(|e| {
                            Some((PackageName::from_str(&e.name).ok()?, Version::from_str(&e.version).ok()?))
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    // Platforms with the same [[python.index]] pins are resolved together (sharing every
    // page and metadata file); a pin that applies to some platforms only splits them.
    let mut groups: Vec<(Pins, Vec<usize>)> = Vec::new();
    for (i, platform) in platforms.iter().enumerate() {
        let pins = pins_for(python, *platform)?;
        match groups.iter_mut().find(|(p, _)| *p == pins) {
            Some((_, members)) => members.push(i),
            None => groups.push((pins, vec![i])),
        }
    }
    let index_strategy = match &python.index_strategy {
        Some(name) => IndexStrategy::from_str(name).map_err(Error::user)?,
        None => IndexStrategy::default(),
    };
    let exempt = python
        .index
        .iter()
        .filter(|index| !index.exclude_newer)
        .filter_map(|index| url::Url::parse(&index.url).ok())
        .collect::<Vec<_>>();
    let mut resolutions = vec![None; platforms.len()];
    for (pins, members) in groups {
        let setup = SourceSetup {
            index_args: IndexArgs {
                index_url: set.index_url.clone(),
                extra_index_urls: set.extra_index_urls.clone(),
                find_links: set.find_links.clone(),
                no_index: set.no_index,
                cert: None,
            },
            exclude_newer: args.exclude_newer.as_deref().map(parse_date).transpose()?,
            build_constraints: python.build_constraints.clone(),
            no_build: false,
            offline: args.offline,
            refresh: args.refresh,
            pinned: pins,
            index_strategy,
            exclude_newer_packages: BTreeMap::new(),
            exclude_newer_exempt: exempt.clone(),
        };
        let group_targets: Vec<Arc<Target>> = members.iter().map(|&i| targets[i].clone()).collect();
        let group_preferences: Vec<HashMap<PackageName, Version>> =
            members.iter().map(|&i| preferences[i].clone()).collect();
        let (runtime, source) = open_source(setup, &group_targets)?;
        let options = ResolveOptions {
            prereleases: set.pre,
            index_strategy,
            format: set.format.clone(),
            prefer_binary: set.prefer_binary,
            ..ResolveOptions::default()
        };
        let mut resolved =
            resolve_with_progress(&source, &group_targets, &set, &group_preferences, &options, printer)?;
        // Static PEP 503 pages (PyTorch's) give no sizes; the lock needs them.
        for pkg in resolved.iter_mut().flat_map(|r| r.packages.values_mut()) {
            if pkg.file.size.is_none() {
                let size = runtime.block_on(source.client().file_size(&pkg.file)).map_err(|e| {
                    Error::from_error(format!("cannot tell the size of `{}`", pkg.file.filename), e)
                })?;
                pkg.file.size = Some(size);
            }
        }
        for (i, resolution) in members.into_iter().zip(resolved) {
            resolutions[i] = Some(resolution);
        }
    }
    let resolutions: Vec<_> = resolutions.into_iter().flatten().collect();
    for (platform, resolution) in platforms.iter().zip(&resolutions) {
        // `via` names who asked for each package; turned around, what each package needs.
        let mut needs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for pkg in resolution.packages.values() {
            for asker in &pkg.via {
                needs.entry(asker.clone()).or_default().push(pkg.name.to_string());
            }
        }
        for pkg in resolution.packages.values() {
            let file = &pkg.file;
            let missing = |what: &str| {
                Error::user(format!("the index gives no {what} for `{}`; the lock needs it", file.filename))
                    .with_hint("use an index that serves PEP 691 JSON pages with sizes and sha256 hashes")
            };
            lock.add_python(LockedPython {
                name: pkg.name.to_string(),
                version: pkg.version.to_string(),
                platforms: vec![*platform],
                dependencies: Some(needs.get(&pkg.name.to_string()).cloned().unwrap_or_default()),
                file: FileRef {
                    name: file.filename.clone(),
                    size: file.size.ok_or_else(|| missing("size"))?,
                    sha256: sha256_of(
                        file.sha256.as_deref().ok_or_else(|| missing("sha256"))?,
                        &file.filename,
                        "the index",
                    )?,
                },
            });
        }
    }
    Ok(())
}

fn lock_debian(
    manifest: &Manifest,
    debian: &lockfile::Debian,
    previous: Option<&Lock>,
    upgrade: &BTreeSet<String>,
    args: &LockOptions,
    lock: &mut Lock,
    printer: &dyn Reporter,
) -> Result<(), Error> {
    let session = Session::for_manifest(manifest, args.offline)?;
    let platforms: Vec<TargetPlatform> = manifest.image.platforms.clone();
    let arches: Vec<&'static str> = platforms.iter().map(|p| p.arch().name()).collect();
    let started = std::time::Instant::now();
    let indexes = session.read_indexes(&arches, printer)?;
    tracing::debug!("read the indexes of {} in {:.2?}", session.suites(), started.elapsed());
    let mut opts = Vec::with_capacity(platforms.len());
    for (platform, index) in platforms.iter().zip(&indexes) {
        // Re-locking keeps each package's version while the sources still have it; with
        // --security, except where a security suite has a newer one.
        let mut locked = BTreeMap::new();
        for d in previous.into_iter().flat_map(|l| l.debian_for(*platform)) {
            if upgrade.contains(&d.name) {
                continue;
            }
            let security = args.security
                && crate::debian::newer_candidate(index, d).is_some_and(|newer| newer.from_security());
            if !security {
                locked.insert(d.name.clone(), d.version.clone());
            }
        }
        opts.push(debian::ResolveOptions {
            essential: debian.essential,
            recommends: debian.recommends,
            locked,
        });
    }
    let (sets, _) = session.resolve_indexes(&indexes, &debian.packages, &opts, &arches, printer)?;
    if args.security {
        // What moved, as resolved (a held or requested package may stay where it is).
        for (platform, set) in platforms.iter().zip(&sets) {
            let before: BTreeMap<&str, &str> = previous
                .into_iter()
                .flat_map(|l| l.debian_for(*platform))
                .map(|d| (d.name.as_str(), d.version.as_str()))
                .collect();
            let moved: Vec<String> = set
                .debs
                .iter()
                .filter_map(|d| {
                    let old = before.get(d.name.as_str())?;
                    (*old != d.version).then(|| format!("{} {old} -> {}", d.name, d.version))
                })
                .collect();
            printer.status(match moved.len() {
                0 => format!("No security update for {platform}"),
                n => format!("{n} packages moved for {platform}: {}", moved.join(", ")),
            });
        }
    }
    for (platform, set) in platforms.iter().zip(&sets) {
        for (deb, relations) in set.debs.iter().zip(&set.relations) {
            lock.add_debian(LockedDebian {
                name: deb.name.clone(),
                version: deb.version.clone(),
                arch: deb.arch.clone(),
                platforms: vec![*platform],
                dependencies: Some(relations.dependencies.clone()),
                provides: relations.provides.clone(),
                suite: Some(deb.suite.clone()),
                path: deb.filename.clone(),
                file: FileRef {
                    name: deb.file_name().to_string(),
                    size: deb.size,
                    sha256: sha256_of(&deb.sha256, deb.file_name(), "the Debian suite")?,
                },
            });
        }
    }
    Ok(())
}

/// The sha256 `from` gives for `file` (hex, as indexes and `Packages` files write it), typed
/// once here for the lock.
fn sha256_of(hex: &str, file: &str, from: &str) -> Result<Digest, Error> {
    Digest::from_hex(&hex.to_ascii_lowercase())
        .map_err(|e| Error::from_error(format!("{from} gives a malformed sha256 for `{file}`"), e))
}
