//! `outdated`: what a lock misses, online and read-only. Per platform, each locked Debian
//! package with a newer candidate in the manifest's sources (a *security* update when a
//! `-security` suite has it), with the CVE IDs the newer package's `changelog.Debian` names
//! since the locked version; and each Python pin with a newer version its requirements
//! allow (a fresh resolution, compared with the lock).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use lockfile::{Inputs, Lock, Manifest, TargetPlatform};

use crate::debian::{newer_candidate, Session};
use crate::lock::LockOptions;
use crate::{Error, Reporter};

/// An update: name, architecture, locked version, candidate version.
type Key = (String, String, String, String);

/// The newer `.deb` of an update and the source versions its changelog speaks in.
struct Newer {
    deb: debian::LockedDeb,
    /// Its source package.
    source: String,
    /// The source versions of the locked package and of the candidate.
    locked_source: String,
    candidate_source: String,
}

/// The most text a `changelog.Debian` may decompress to.
const MAX_CHANGELOG: u64 = 64 * 1024 * 1024;

/// What `outdated` is asked.
#[derive(Debug, Clone, Default)]
pub struct OutdatedOptions {
    /// The manifest.
    pub manifest: PathBuf,
    /// The lock; `None` for `marqo-base.lock` beside the manifest.
    pub lock: Option<PathBuf>,
    /// Read no changelog (no `.deb` is fetched).
    pub no_cves: bool,
    /// Leave out the Python pins (no index is read).
    pub no_python: bool,
    /// Use only the cache.
    pub offline: bool,
}

/// What a lock misses.
#[derive(Debug, Clone)]
pub struct Outdated {
    /// The lock read.
    pub lock: PathBuf,
    /// The suites read, in apt's order.
    pub suites: Vec<String>,
    /// Debian packages with a newer candidate, by name then architecture.
    pub debian: Vec<DebianUpdate>,
    /// Python pins with a newer version the requirements allow, by name.
    pub python: Vec<PythonUpdate>,
}

/// A locked Debian package with a newer candidate.
#[derive(Debug, Clone)]
pub struct DebianUpdate {
    pub name: String,
    /// `amd64`, `arm64` or `all`.
    pub arch: String,
    pub platforms: Vec<TargetPlatform>,
    /// The locked version and the suite it comes from.
    pub locked: String,
    pub locked_suite: String,
    /// The version apt would take, and the suite it is fetched from.
    pub candidate: String,
    pub suite: String,
    /// A `-security` suite has the candidate.
    pub security: bool,
    /// Held by the manifest (`name=VERSION`): `lock` keeps it.
    pub held: bool,
    /// The CVE IDs the candidate's `changelog.Debian` names after the locked version; `None`
    /// when not read (`--no-cves`, or the `.deb` has no changelog of its own).
    pub cves: Option<Vec<String>>,
    /// Whether the changelog goes back to the locked version (a short changelog may leave
    /// out older entries' CVEs).
    pub changelog_complete: Option<bool>,
}

/// A Python pin with a newer version the requirements allow.
#[derive(Debug, Clone)]
pub struct PythonUpdate {
    pub name: String,
    pub platforms: Vec<TargetPlatform>,
    pub locked: String,
    pub latest: String,
}

impl Outdated {
    /// The security updates among the Debian ones.
    pub fn security(&self) -> impl Iterator<Item = &DebianUpdate> {
        self.debian.iter().filter(|u| u.security)
    }
}

/// Reads the manifest's sources (and, unless asked not to, resolves its Python
/// requirements afresh) and compares them with the lock. Writes nothing but the cache.
pub fn outdated(args: &OutdatedOptions, printer: &dyn Reporter) -> Result<Outdated, Error> {
    let manifest = Manifest::read(&args.manifest)?;
    let lock_path =
        LockOptions { manifest: args.manifest.clone(), lock: args.lock.clone(), ..Default::default() }
            .lock_path();
    if !lock_path.exists() {
        return Err(Error::user(format!("{} does not exist", lock_path.display()))
            .with_hint("run `marqo-base lock` first: outdated compares a lock with its sources"));
    }
    let lock = Lock::read(&lock_path)?;
    let mut report = Outdated { lock: lock_path, suites: Vec::new(), debian: Vec::new(), python: Vec::new() };
    if let Some(debian) = &manifest.debian {
        if !lock.debian.is_empty() {
            debian_updates(&manifest, debian, &lock, args, &mut report, printer)?;
        }
    }
    if !args.no_python && manifest.python.is_some() && !lock.python.is_empty() {
        report.python = python_updates(&manifest, &lock, args, printer)?;
    }
    Ok(report)
}

fn debian_updates(
    manifest: &Manifest,
    debian: &lockfile::Debian,
    lock: &Lock,
    args: &OutdatedOptions,
    report: &mut Outdated,
    printer: &dyn Reporter,
) -> Result<(), Error> {
    let session = Session::for_manifest(manifest, args.offline)?;
    report.suites = session.sources.iter().map(|s| s.suite.clone()).collect();
    let platforms = manifest.image.platforms.clone();
    let arches: Vec<&'static str> = platforms.iter().map(|p| p.arch().name()).collect();
    let indexes = session.read_indexes(&arches, printer)?;
    let held: BTreeSet<&str> = debian
        .packages
        .iter()
        .filter(|p| p.contains('='))
        .map(|p| lockfile::Debian::package_name(p))
        .collect();
    // By (name, arch, locked, candidate): an `all` package is one update for every platform.
    let mut updates: BTreeMap<Key, DebianUpdate> = BTreeMap::new();
    // The newer `.deb` of each update, to read its changelog from.
    let mut debs: BTreeMap<Key, Newer> = BTreeMap::new();
    for (platform, index) in platforms.iter().zip(&indexes) {
        for locked in lock.debian_for(*platform) {
            let Some(newer) = newer_candidate(index, locked) else { continue };
            let key = (
                locked.name.clone(),
                locked.arch.clone(),
                locked.version.clone(),
                newer.version().to_string(),
            );
            // Changelogs are in source versions (a binNMU's `+b1`, a `Source: x (v)` of its own).
            let (source, candidate_source) =
                crate::sbom::source_of(newer.stanza(), newer.name(), newer.version());
            let locked_source = index
                .by_name(&locked.name)
                .find(|p| p.version() == locked.version && p.architecture() == locked.arch)
                .map_or_else(
                    || locked.version.clone(),
                    |p| crate::sbom::source_of(p.stanza(), p.name(), p.version()).1,
                );
            debs.entry(key.clone()).or_insert_with(|| Newer {
                deb: debian::LockedDeb::from_package(&newer),
                source,
                locked_source,
                candidate_source,
            });
            updates
                .entry(key)
                .or_insert_with(|| DebianUpdate {
                    name: locked.name.clone(),
                    arch: locked.arch.clone(),
                    platforms: Vec::new(),
                    locked: locked.version.clone(),
                    locked_suite: locked
                        .suite
                        .clone()
                        .unwrap_or_else(|| report.suites.first().cloned().unwrap_or_default()),
                    candidate: newer.version().to_string(),
                    suite: newer.suite().to_string(),
                    security: newer.from_security(),
                    held: held.contains(locked.name.as_str()),
                    cves: None,
                    changelog_complete: None,
                })
                .platforms
                .push(*platform);
        }
    }
    if !args.no_cves && !updates.is_empty() {
        read_cves(&session, &mut updates, &debs, printer)?;
    }
    report.debian = updates.into_values().collect();
    Ok(())
}

/// Fills in each update's CVE IDs from the changelog of its newer `.deb`: one `.deb` per
/// source package and version (the smallest of its binaries that has a changelog), fetched
/// hash-checked through the cache. A `.deb` that cannot be fetched is passed over for the
/// next binary of its source, with a warning; with none left, its updates are listed
/// without CVE IDs.
fn read_cves(
    session: &Session,
    updates: &mut BTreeMap<Key, DebianUpdate>,
    debs: &BTreeMap<Key, Newer>,
    printer: &dyn Reporter,
) -> Result<(), Error> {
    // Each source version's binaries, smallest first.
    let mut by_source: BTreeMap<(&str, &str), Vec<&debian::LockedDeb>> = BTreeMap::new();
    for newer in debs.values() {
        by_source
            .entry((newer.source.as_str(), newer.candidate_source.as_str()))
            .or_default()
            .push(&newer.deb);
    }
    for list in by_source.values_mut() {
        list.sort_by_key(|d| (d.size, d.name.clone()));
        list.dedup_by(|a, b| a.sha256 == b.sha256);
    }
    // The smallest binary of each source version first, all at once; the next one only
    // where that one has no changelog of its own.
    let mut texts: BTreeMap<(&str, &str), Option<String>> = BTreeMap::new();
    let mut tries: Vec<((&str, &str), std::slice::Iter<'_, &debian::LockedDeb>)> =
        by_source.iter().map(|(key, list)| (*key, list.iter())).collect();
    while !tries.is_empty() {
        let mut round = Vec::new();
        tries.retain_mut(|(key, rest)| match rest.next() {
            Some(deb) => {
                round.push((*key, (*deb).clone()));
                true
            }
            None => {
                texts.entry(*key).or_insert(None);
                false
            }
        });
        let spinner = printer.spinner(&format!("Reading the changelogs of {} .debs", round.len()));
        let fetched = session.runtime.block_on(futures::future::join_all(round.iter().map(|(_, deb)| {
            debian::fetch_debs(&session.client, &session.cache, &session.sources, std::slice::from_ref(deb))
        })));
        spinner.finish_and_clear();
        for ((key, deb), result) in round.into_iter().zip(fetched) {
            let path = match result {
                Ok(mut paths) if !paths.is_empty() => paths.remove(0),
                Ok(_) => continue,
                // Another binary of the source may be within reach: it is tried next round.
                Err(e) => {
                    tracing::warn!("cannot read the changelog of {} {}: {e}", deb.name, deb.version);
                    continue;
                }
            };
            let text = debian::changelog::read_changelog(&path, &deb.name, MAX_CHANGELOG)
                .map_err(crate::debian::debian_error)?;
            if text.is_some() {
                texts.insert(key, text);
                tries.retain(|(k, _)| *k != key);
            }
        }
    }
    for (key, update) in updates.iter_mut() {
        let Some(newer) = debs.get(key) else { continue };
        if let Some(Some(text)) = texts.get(&(newer.source.as_str(), newer.candidate_source.as_str())) {
            let found = debian::changelog::cves_between(text, &newer.locked_source, &newer.candidate_source);
            update.cves = Some(found.cves);
            update.changelog_complete = Some(found.reached_locked);
        }
    }
    Ok(())
}

/// Resolves the manifest's Python requirements afresh (as `lock --upgrade` would, writing
/// nothing) and lists each pin the fresh resolution moves up.
fn python_updates(
    manifest: &Manifest,
    lock: &Lock,
    args: &OutdatedOptions,
    printer: &dyn Reporter,
) -> Result<Vec<PythonUpdate>, Error> {
    let Some(python) = &manifest.python else { return Ok(Vec::new()) };
    let options =
        LockOptions { manifest: args.manifest.clone(), offline: args.offline, ..Default::default() };
    let mut fresh = Lock::new(Inputs::default());
    crate::lock::lock_python(manifest, python, None, &BTreeSet::new(), &options, &mut fresh, printer)?;
    let mut out: BTreeMap<(String, String, String), PythonUpdate> = BTreeMap::new();
    for platform in &manifest.image.platforms {
        let now: BTreeMap<&str, &str> =
            fresh.python_for(*platform).map(|p| (p.name.as_str(), p.version.as_str())).collect();
        for locked in lock.python_for(*platform) {
            let Some(latest) = now.get(locked.name.as_str()) else { continue };
            let newer =
                match (locked.version.parse::<pep_types::Version>(), latest.parse::<pep_types::Version>()) {
                    (Ok(old), Ok(new)) => new > old,
                    _ => false,
                };
            if newer {
                out.entry((locked.name.clone(), locked.version.clone(), latest.to_string()))
                    .or_insert_with(|| PythonUpdate {
                        name: locked.name.clone(),
                        platforms: Vec::new(),
                        locked: locked.version.clone(),
                        latest: latest.to_string(),
                    })
                    .platforms
                    .push(*platform);
            }
        }
    }
    Ok(out.into_values().collect())
}
