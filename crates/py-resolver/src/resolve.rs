//! Resolving a requirement set for several targets at once: one PubGrub run per target, on
//! its own thread, all sharing one [`IndexSource`] so each page and file is fetched once.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use pep_types::{ExtraName, PackageName, Req, Target, Version, VersionOrUrl};
use pubgrub::{DefaultStringReporter, PubGrubError, Reporter};
use pypi_client::{DistFile, IndexStrategy, ProjectPage};

use crate::candidates::candidates;
use crate::format::FormatControl;
use crate::prefetch::Prefetcher;

use crate::provider::{root_version, Pkg, Provider, ProviderError, VS};
use crate::report::Formatter;
use crate::requirements::RequirementSet;
use crate::source::IndexSource;

/// Knobs of one resolution.
#[derive(Debug, Clone, Default)]
pub struct ResolveOptions {
    /// Allow pre-releases everywhere (`--pre`).
    pub prereleases: bool,
    /// Ignore every existing pin (`--upgrade`).
    pub upgrade_all: bool,
    /// Ignore the existing pins of these (`-P name`).
    pub upgrade: BTreeSet<PackageName>,
    /// Extra constraints, e.g. from `-P name==1.2`.
    pub extra_constraints: Vec<Req>,
    /// How a name on several indexes is served; the order candidates are tried in.
    pub index_strategy: IndexStrategy,
    /// `--only-binary` / `--no-binary`.
    pub format: FormatControl,
    /// `--prefer-binary`: a version with a wheel beats a newer sdist-only one.
    pub prefer_binary: bool,
}

/// One package in a resolution.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub name: PackageName,
    pub version: Version,
    /// The file the target installs.
    pub file: DistFile,
    /// Every file of this version the target could install.
    pub files: Vec<DistFile>,
    /// What asked for it: `-r FILE`, `-c FILE` or package names, sorted as pip-compile does.
    pub via: BTreeSet<String>,
    /// Extras requested of it anywhere in the graph.
    pub extras: BTreeSet<ExtraName>,
}

/// The result for one target.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub target: Arc<Target>,
    pub packages: BTreeMap<PackageName, Resolved>,
}

/// Why resolution failed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The solver's report, then one `hint:` line per hint: the report and its hints read as
    /// one text (pip-compile users know it), so the hints stay in it.
    #[error("no solution for {target}:\n{report}{}", hint_lines(.hints))]
    NoSolution { target: String, report: String, hints: Vec<String> },
    #[error("while resolving for {target}: {package} {version}")]
    Dependencies {
        target: String,
        package: String,
        version: String,
        #[source]
        source: Box<ProviderError>,
    },
    #[error("while resolving for {target}: choosing a version of {package}")]
    Choose {
        target: String,
        package: String,
        #[source]
        source: Box<ProviderError>,
    },
    #[error("resolution for {target} stopped: {message}")]
    Other { target: String, message: String },
    /// A solver thread panicked: a bug of ours, not a property of the requirements.
    #[error("resolution for {target} stopped: the solver thread panicked")]
    Panicked { target: String },
}

impl ResolveError {
    /// What to do, one item per hint; empty unless there is no solution. [`NoSolution`]
    /// prints them itself.
    ///
    /// [`NoSolution`]: ResolveError::NoSolution
    pub fn hints(&self) -> &[String] {
        match self {
            ResolveError::NoSolution { hints, .. } => hints,
            _ => &[],
        }
    }

    /// Whether the failure is a bug of ours (a panicked solver) rather than the input's.
    pub fn is_bug(&self) -> bool {
        matches!(self, ResolveError::Panicked { .. })
    }
}

fn hint_lines(hints: &[String]) -> String {
    hints.iter().map(|h| format!("\nhint: {h}")).collect()
}

/// Resolves `set` for every target; `preferences[i]` are the pins to keep for `targets[i]`.
pub fn resolve_all(
    source: &Arc<IndexSource>,
    targets: &[Arc<Target>],
    set: &RequirementSet,
    preferences: &[HashMap<PackageName, Version>],
    options: &ResolveOptions,
) -> Result<Vec<Resolution>, ResolveError> {
    let resolutions = resolve_each(source, targets, set, preferences, options)?;
    warn_undated(source, &resolutions);
    Ok(resolutions)
}

/// A resolution that succeeded without the files some index lists but `--exclude-newer`
/// dropped for lacking an upload time (a CUDA build, say) must not lose them silently.
fn warn_undated(source: &IndexSource, resolutions: &[Resolution]) {
    let names: BTreeSet<&PackageName> = resolutions.iter().flat_map(|r| r.packages.keys()).collect();
    for name in names {
        let Ok(Some(page)) = source.blocking_page(name) else { continue };
        for (index, count) in &page.undated {
            let location = source.client().location_name(*index).unwrap_or_else(|| format!("index #{index}"));
            tracing::warn!("{}", undated_message(&location, *count, name));
        }
    }
}

fn resolve_each(
    source: &Arc<IndexSource>,
    targets: &[Arc<Target>],
    set: &RequirementSet,
    preferences: &[HashMap<PackageName, Version>],
    options: &ResolveOptions,
) -> Result<Vec<Resolution>, ResolveError> {
    for target in targets {
        source.speculate_for(&target.python);
    }
    for entry in set.requirements.iter().chain(&set.constraints) {
        if let Some(VersionOrUrl::VersionSpecifier(spec)) = &entry.req.version_or_url {
            source.speculate_within(&entry.req.name, spec);
        }
        if !entry.req.extras.is_empty() {
            source.speculate_extras(&entry.req.name, &entry.req.extras);
        }
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = targets
            .iter()
            .enumerate()
            .map(|(i, target)| {
                let prefs = preferences.get(i).cloned().unwrap_or_default();
                scope.spawn(move || resolve_one(source, target.clone(), set, prefs, options))
            })
            .collect();
        handles
            .into_iter()
            .zip(targets)
            .map(|(h, t)| h.join().unwrap_or_else(|_| Err(ResolveError::Panicked { target: t.to_string() })))
            .collect()
    })
}

fn constraint_ranges(
    target: &Target,
    set: &RequirementSet,
    options: &ResolveOptions,
) -> HashMap<PackageName, VS> {
    let mut out: HashMap<PackageName, VS> = HashMap::new();
    let extra = options.extra_constraints.iter();
    for req in set.constraints.iter().map(|e| &e.req).chain(extra) {
        if !req.marker.evaluate(target.markers(), &[]) {
            continue;
        }
        if let Some(VersionOrUrl::VersionSpecifier(spec)) = &req.version_or_url {
            let range = pep_types::specifiers_range(spec);
            let entry = out.entry(req.name.clone()).or_insert_with(VS::full);
            *entry = entry.intersection(&range);
        }
    }
    out
}

fn resolve_one(
    source: &Arc<IndexSource>,
    target: Arc<Target>,
    set: &RequirementSet,
    preferences: HashMap<PackageName, Version>,
    options: &ResolveOptions,
) -> Result<Resolution, ResolveError> {
    let env = target.markers();
    if let Some(report) = conflicting_lines(&target, set, options) {
        return Err(ResolveError::NoSolution {
            target: target.to_string(),
            report,
            hints: vec!["change or drop one of the lines: no version can meet both".to_string()],
        });
    }
    let roots: Vec<Req> =
        set.requirements.iter().filter(|e| e.req.marker.evaluate(env, &[])).map(|e| e.req.clone()).collect();
    let constraints = constraint_ranges(&target, set, options);
    let prefetch = Prefetcher::new(target.clone(), options, &preferences, &constraints);
    let provider = Provider {
        target: target.clone(),
        source,
        options,
        roots,
        constraints,
        preferences,
        candidates: RefCell::default(),
        discovered: RefCell::default(),
        unknown: RefCell::default(),
        prefetch,
    };
    // A pre-release named in a constraint file allows pre-releases of that package (pip).
    for entry in set.constraints.iter().filter(|e| e.req.marker.evaluate(env, &[])) {
        provider.note_requirement(&entry.req);
    }
    let t = target.to_string();
    let solution = match pubgrub::resolve(&provider, Pkg::Root, root_version()) {
        Ok(solution) => solution,
        Err(PubGrubError::NoSolution(mut tree)) => {
            tree.collapse_no_versions();
            let unknown = provider.unknown.borrow();
            let formatter = Formatter { target: t.clone(), unknown: &unknown };
            let report = DefaultStringReporter::report_with_formatter(&tree, &formatter);
            let mut hints: Vec<String> = unknown
                .iter()
                .map(|name| format!(
                    "`{name}` was not found on any configured index; check its spelling or pass --index-url / --extra-index-url"
                ))
                .collect();
            let names: BTreeSet<PackageName> = tree
                .packages()
                .into_iter()
                .filter_map(|p| match p {
                    Pkg::Name(n) | Pkg::Extra(n, _) => Some(n.clone()),
                    Pkg::Root => None,
                })
                .collect();
            drop(unknown);
            hints.extend(index_hints(&provider, &names));
            return Err(ResolveError::NoSolution { target: t, report, hints });
        }
        Err(PubGrubError::ErrorRetrievingDependencies { package, version, source }) => {
            return Err(ResolveError::Dependencies {
                target: t,
                package: package.to_string(),
                version: version.to_string(),
                source: Box::new(source),
            })
        }
        Err(PubGrubError::ErrorChoosingVersion { package, source }) => {
            return Err(ResolveError::Choose {
                target: t,
                package: package.to_string(),
                source: Box::new(source),
            })
        }
        Err(other) => return Err(ResolveError::Other { target: t, message: other.to_string() }),
    };
    build_resolution(&provider, set, solution.into_iter().collect())
        .map_err(|source| ResolveError::Other { target: target.to_string(), message: format!("{source}") })
}

/// Two lines of the inputs (requirements, constraints or `-P NAME==V`) that active for
/// `target` allow no common version of one package, named by file and line: PubGrub would
/// only say that the requirements need an empty range.
fn conflicting_lines(target: &Target, set: &RequirementSet, options: &ResolveOptions) -> Option<String> {
    let mut by_name: BTreeMap<&PackageName, Vec<(String, VS)>> = BTreeMap::new();
    let files = set.requirements.iter().chain(&set.constraints).map(|e| (&e.req, e.origin.to_string()));
    let options = options.extra_constraints.iter().map(|r| (r, "-P".to_string()));
    for (req, origin) in files.chain(options) {
        if !req.marker.evaluate(target.markers(), &[]) {
            continue;
        }
        if let Some(VersionOrUrl::VersionSpecifier(spec)) = &req.version_or_url {
            let shown = format!("`{}{spec}` ({origin})", req.name);
            by_name.entry(&req.name).or_default().push((shown, pep_types::specifiers_range(spec)));
        }
    }
    for lines in by_name.values() {
        for (i, (first, a)) in lines.iter().enumerate() {
            if let Some((second, _)) = lines[i + 1..].iter().find(|(_, b)| a.intersection(b) == VS::empty()) {
                return Some(format!("{first} and {second} allow no common version"));
            }
        }
    }
    None
}

/// What to say of `count` files of `name` that `location` lists without an upload time.
fn undated_message(location: &str, count: usize, name: &PackageName) -> String {
    format!(
        "{location} publishes no upload times, so --exclude-newer left out its {count} file(s) of `{name}`; \
         to use them, exempt the package with --exclude-newer-package {name}=false \
         (in a manifest: `exclude_newer = false` on that [[python.index]])"
    )
}

/// Hints about files the indexes have but the resolution could not see: files dropped by
/// `--exclude-newer` because their index publishes no upload times, and versions on a later
/// index that the first-index strategy never looks at.
fn index_hints(provider: &Provider<'_>, names: &BTreeSet<PackageName>) -> Vec<String> {
    let source = provider.source;
    let client = source.client();
    let location = |i: usize| client.location_name(i).unwrap_or_else(|| format!("index #{i}"));
    let mut hints = Vec::new();
    for name in names {
        let Ok(Some(page)) = source.blocking_page(name) else { continue };
        for (index, count) in &page.undated {
            hints.push(undated_message(&location(*index), *count, name));
        }
        if client.index_strategy() != IndexStrategy::FirstIndex || !client.has_several_locations(name) {
            continue;
        }
        let pages: Vec<(usize, Arc<ProjectPage>)> = source
            .blocking_pages_by_location(name)
            .into_iter()
            .map(|(i, page)| (i, Arc::new(page)))
            .collect();
        let Some(((served_index, served), later)) = pages.split_first() else { continue };
        let seen: BTreeSet<Version> =
            candidates(served, &provider.target, provider.options).into_iter().map(|c| c.version).collect();
        let served_by = location(*served_index);
        for (index, page) in later {
            let hidden: Vec<String> = candidates(page, &provider.target, provider.options)
                .into_iter()
                .filter(|c| !seen.contains(&c.version))
                .map(|c| c.version.to_string())
                .collect();
            if hidden.is_empty() {
                continue;
            }
            let shown = if hidden.len() > 5 {
                format!("{} and {} more", hidden[..5].join(", "), hidden.len() - 5)
            } else {
                hidden.join(", ")
            };
            hints.push(format!(
                "`{name}` {shown} for {} is on {}, but with --index-strategy first-index (the default) \
                 the first index that has `{name}` ({served_by}) serves all of its files; pass \
                 --index-strategy unsafe-best-match (in a manifest: `[python] index_strategy`) to merge \
                 the indexes as pip does, or pin `{name}` to that index ([[python.index]])",
                provider.target,
                location(*index)
            ));
        }
    }
    hints
}

/// Turns the solver's picks into packages with files and `# via` annotations.
fn build_resolution(
    provider: &Provider<'_>,
    set: &RequirementSet,
    picks: Vec<(Pkg, Version)>,
) -> Result<Resolution, ProviderError> {
    let env = provider.target.markers();
    let mut extras: BTreeMap<PackageName, BTreeSet<ExtraName>> = BTreeMap::new();
    let mut versions: BTreeMap<PackageName, Version> = BTreeMap::new();
    for (pkg, version) in &picks {
        match pkg {
            Pkg::Name(n) => {
                versions.insert(n.clone(), version.clone());
            }
            Pkg::Extra(n, e) => {
                extras.entry(n.clone()).or_default().insert(e.clone());
            }
            Pkg::Root => {}
        }
    }
    let mut via: BTreeMap<PackageName, BTreeSet<String>> = BTreeMap::new();
    for entry in &set.requirements {
        if entry.req.marker.evaluate(env, &[]) {
            let label = set
                .projects
                .iter()
                .find(|(file, _)| *file == entry.origin.file)
                .map_or_else(|| format!("-r {}", entry.origin.file), |(_, label)| label.clone());
            via.entry(entry.req.name.clone()).or_default().insert(label);
        }
    }
    for entry in &set.constraints {
        if versions.contains_key(&entry.req.name) && entry.req.marker.evaluate(env, &[]) {
            via.entry(entry.req.name.clone()).or_default().insert(format!("-c {}", entry.origin.file));
        }
    }
    let mut packages = BTreeMap::new();
    for (name, version) in &versions {
        let Some(candidate) = provider.candidate(name, version)? else { continue };
        let md = provider.metadata(&candidate, name)?;
        let mut active: Vec<Option<&ExtraName>> = vec![None];
        if let Some(x) = extras.get(name) {
            active.extend(x.iter().map(Some));
        }
        for extra in active {
            for req in provider.active_requirements(&md, extra) {
                if &req.name != name && versions.contains_key(&req.name) {
                    via.entry(req.name.clone()).or_default().insert(name.to_string());
                }
            }
        }
        packages.insert(
            name.clone(),
            Resolved {
                name: name.clone(),
                version: version.clone(),
                file: candidate.file().clone(),
                files: candidate.files().cloned().collect(),
                via: BTreeSet::new(),
                extras: extras.get(name).cloned().unwrap_or_default(),
            },
        );
    }
    for (name, v) in via {
        if let Some(p) = packages.get_mut(&name) {
            p.via = v;
        }
    }
    Ok(Resolution { target: provider.target.clone(), packages })
}
