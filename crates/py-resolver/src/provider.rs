//! The PubGrub dependency provider for one target environment.
//!
//! Packages are `Root`, a project name, or a project with one extra (`foo[bar]`), which
//! depends on `foo` at the same version plus the requirements the extra turns on. Each
//! version's dependencies come from the metadata of the file this target would install.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use pep_types::{
    names_prerelease, pinned_version, specifiers_range, ExtraName, PackageName, Req, Target, Version,
    VersionOrUrl,
};
use pubgrub::{Dependencies, DependencyProvider, PackageResolutionStatistics};
use pypi_client::metadata::Metadata;
use version_ranges::Ranges;

use crate::candidates::{candidates, Candidate};
use crate::prefetch::Prefetcher;
use crate::source::{IndexSource, SourceError};
use crate::ResolveOptions;

/// A node of the dependency graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pkg {
    Root,
    Name(PackageName),
    Extra(PackageName, ExtraName),
}

impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkg::Root => f.write_str("the requirements"),
            Pkg::Name(n) => write!(f, "{n}"),
            Pkg::Extra(n, e) => write!(f, "{n}[{e}]"),
        }
    }
}

/// Why the provider could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error(transparent)]
    IndexSource(#[from] Arc<SourceError>),
    #[error("`{file}` says it is {found}, but the index lists it as {name} {version}")]
    Mismatch { file: String, found: String, name: PackageName, version: Version },
}

pub(crate) type VS = Ranges<Version>;

pub(crate) fn root_version() -> Version {
    Version::new([0])
}

pub(crate) struct Provider<'a> {
    pub target: Arc<Target>,
    pub source: &'a Arc<IndexSource>,
    pub options: &'a ResolveOptions,
    /// Direct requirements whose markers hold for this target.
    pub roots: Vec<Req>,
    /// Constraints (`-c`, `-P name==ver`) whose markers hold for this target.
    pub constraints: HashMap<PackageName, VS>,
    /// Pins to keep when still allowed (from an existing output file).
    pub preferences: HashMap<PackageName, Version>,
    pub candidates: RefCell<HashMap<PackageName, Option<Arc<Vec<Candidate>>>>>,
    pub discovered: RefCell<Discovered>,
    pub unknown: RefCell<BTreeSet<PackageName>>,
    /// Fetches the likely graph ahead of the solver.
    pub prefetch: Arc<Prefetcher>,
}

/// What the provider learns about packages as the solver walks the graph.
#[derive(Debug, Default)]
pub(crate) struct Discovered {
    /// The order packages were first seen in: the last tie-breaker of `prioritize`.
    order: HashMap<Pkg, u32>,
    /// Names a requirement or constraint bounds with a pre-release (`>=1.0rc1`): pip then
    /// considers their pre-releases like final releases.
    names_prerelease: BTreeSet<PackageName>,
    /// Whether the `-P` constraints have been looked at (on the first call, from the root).
    seeded: bool,
}

impl Provider<'_> {
    /// Candidates of `name` for this target; `None` when no index knows the name.
    pub fn candidates_of(&self, name: &PackageName) -> Result<Option<Arc<Vec<Candidate>>>, ProviderError> {
        if let Some(c) = self.candidates.borrow().get(name) {
            return Ok(c.clone());
        }
        let page = self.source.blocking_page(name)?;
        let c = page.map(|p| Arc::new(candidates(&p, &self.target, self.options)));
        if c.is_none() {
            self.unknown.borrow_mut().insert(name.clone());
        }
        self.candidates.borrow_mut().insert(name.clone(), c.clone());
        Ok(c)
    }

    pub fn candidate(
        &self,
        name: &PackageName,
        version: &Version,
    ) -> Result<Option<Candidate>, ProviderError> {
        Ok(self.candidates_of(name)?.and_then(|c| c.iter().find(|c| &c.version == version).cloned()))
    }

    /// The metadata of the file this target installs for `name==version`, checked against
    /// the index's idea of the name and version.
    pub fn metadata(
        &self,
        candidate: &Candidate,
        name: &PackageName,
    ) -> Result<Arc<Metadata>, ProviderError> {
        let md = self.source.blocking_metadata(candidate.file())?;
        if &md.name != name || !same_release(&md.version, &candidate.version) {
            return Err(ProviderError::Mismatch {
                file: candidate.file().filename.clone(),
                found: format!("{} {}", md.name, md.version),
                name: name.clone(),
                version: candidate.version.clone(),
            });
        }
        Ok(md)
    }

    /// The requirements of `md` that hold for this target with `extra` active (or none).
    pub fn active_requirements<'m>(
        &self,
        md: &'m Metadata,
        extra: Option<&ExtraName>,
    ) -> impl Iterator<Item = &'m Req> + use<'m, '_> {
        let extras: Vec<ExtraName> = extra.into_iter().cloned().collect();
        let env = self.target.markers();
        md.requires_dist.iter().filter(move |req| {
            let on = req.marker.evaluate(env, &extras);
            // With an extra, only what the extra adds: the base requirements come through
            // the dependency on the base package.
            on && (extras.is_empty() || !req.marker.evaluate(env, &[]))
        })
    }

    /// Notes that `req` names a pre-release of its package, if it does; constraints go through
    /// here too, since pip folds them into the requirement's specifiers.
    pub(crate) fn note_requirement(&self, req: &Req) {
        if let Some(VersionOrUrl::VersionSpecifier(spec)) = &req.version_or_url {
            if names_prerelease(spec) {
                self.discovered.borrow_mut().names_prerelease.insert(req.name.clone());
            }
        }
    }

    /// Whether pre-releases of `name` are as good as final releases: `--pre`, or a
    /// specifier on `name` names one.
    fn allows_prereleases(&self, name: &PackageName) -> bool {
        self.options.prereleases || self.discovered.borrow().names_prerelease.contains(name)
    }

    /// Notes the `-P` constraints (whose markers hold) once, before any requirement is added.
    fn seed_constraints(&self) {
        if std::mem::replace(&mut self.discovered.borrow_mut().seeded, true) {
            return;
        }
        let env = self.target.markers();
        for req in self.options.extra_constraints.iter().filter(|r| r.marker.evaluate(env, &[])) {
            self.note_requirement(req);
        }
    }

    fn add_requirement(&self, deps: &mut BTreeMap<Pkg, VS>, req: &Req) {
        self.note_requirement(req);
        let mut range = match &req.version_or_url {
            Some(VersionOrUrl::VersionSpecifier(spec)) => specifiers_range(spec),
            _ => VS::full(),
        };
        if let Some(c) = self.constraints.get(&req.name) {
            range = range.intersection(c);
        }
        let mut add = |pkg: Pkg, range: &VS| {
            let entry = deps.entry(pkg).or_insert_with(VS::full);
            *entry = entry.intersection(range);
        };
        add(Pkg::Name(req.name.clone()), &range);
        for extra in &req.extras {
            add(Pkg::Extra(req.name.clone(), extra.clone()), &range);
        }
        self.prefetch.start(self.source, req);
    }

    fn preference(&self, name: &PackageName) -> Option<Version> {
        if self.options.upgrade_all || self.options.upgrade.contains(name) {
            return None;
        }
        self.preferences.get(name).cloned()
    }
}

/// `1.0` and `1.0.0` name the same release; local versions must match exactly.
fn same_release(a: &Version, b: &Version) -> bool {
    a == b
}

/// The version to try for `range`, among `cands` in the order they are tried (newest first):
/// the preferred pin if allowed, else the first final release, else the first pre-release.
/// With `allow_pre` (`--pre`, or a specifier on the package names a pre-release), the first
/// version of either kind.
///
/// Yanked versions as pip reads PEP 592: only for a `==`/`===` pin (`==1.0` also allows
/// `1.0+cu116`), and only when everything the pin allows is yanked.
pub(crate) fn pick<'c>(
    cands: &'c [Candidate],
    range: &VS,
    preferred: Option<&Version>,
    allow_pre: bool,
) -> Option<&'c Candidate> {
    let in_range = |c: &&Candidate| range.contains(&c.version);
    let yanked_ok = pinned_version(range).is_some() && cands.iter().filter(in_range).all(|c| c.yanked);
    let usable = |c: &&Candidate| in_range(c) && (yanked_ok || !c.yanked);
    if let Some(pref) = preferred {
        if let Some(c) = cands.iter().filter(usable).find(|c| &c.version == pref) {
            return Some(c);
        }
    }
    let mut matching = cands.iter().filter(usable);
    if allow_pre {
        return matching.next();
    }
    let mut first_pre = None;
    for c in matching {
        if !c.version.any_prerelease() {
            return Some(c);
        }
        first_pre.get_or_insert(c);
    }
    first_pre
}

impl DependencyProvider for Provider<'_> {
    type P = Pkg;
    type V = Version;
    type VS = VS;
    type M = String;
    type Priority = (u8, u32, Reverse<u32>);
    type Err = ProviderError;

    fn prioritize(&self, package: &Pkg, range: &VS, stats: &PackageResolutionStatistics) -> Self::Priority {
        let mut discovered = self.discovered.borrow_mut();
        let next = discovered.order.len() as u32;
        let order = *discovered.order.entry(package.clone()).or_insert(next);
        // Exact pins first (they cannot branch), then whatever has caused conflicts, then
        // in the order packages were discovered, which keeps runs deterministic.
        let class = match package {
            Pkg::Root => 3,
            _ if pinned_version(range).is_some() => 2,
            _ => 1,
        };
        (class, stats.conflict_count(), Reverse(order))
    }

    fn choose_version(&self, package: &Pkg, range: &VS) -> Result<Option<Version>, ProviderError> {
        let name = match package {
            Pkg::Root => return Ok(Some(root_version())),
            Pkg::Name(n) | Pkg::Extra(n, _) => n,
        };
        let Some(cands) = self.candidates_of(name)? else {
            return Ok(None);
        };
        let preferred = self.preference(name);
        let chosen = pick(&cands, range, preferred.as_ref(), self.allows_prereleases(name));
        if let Some(c) = chosen {
            // Start the metadata download now; get_dependencies will wait for it.
            // The request is spawned by `metadata`; the handle is not needed here.
            drop(self.source.metadata(c.file()));
        }
        Ok(chosen.map(|c| c.version.clone()))
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> Result<Dependencies<Pkg, VS, String>, ProviderError> {
        // A map, so repeated requirements on one package intersect and the order is stable.
        let mut deps = BTreeMap::new();
        let (name, extra) = match package {
            Pkg::Root => {
                self.seed_constraints();
                for req in &self.roots {
                    self.add_requirement(&mut deps, req);
                }
                return Ok(Dependencies::Available(deps.into_iter().collect()));
            }
            Pkg::Name(n) => (n, None),
            Pkg::Extra(n, e) => (n, Some(e)),
        };
        let Some(candidate) = self.candidate(name, version)? else {
            return Ok(Dependencies::Unavailable(format!(
                "{name} {version} has no file for {}",
                self.target
            )));
        };
        let md = self.metadata(&candidate, name)?;
        if let Some(rp) = &md.requires_python {
            if !rp.contains(&self.target.python) {
                return Ok(Dependencies::Unavailable(format!("it requires Python {rp}")));
            }
        }
        if let Some(extra) = extra {
            deps.insert(Pkg::Name(name.clone()), VS::singleton(version.clone()));
            if !md.provides_extras.contains(extra) {
                tracing::warn!("{name} {version} does not provide the extra `{extra}`");
            }
        }
        for req in self.active_requirements(&md, extra) {
            if &req.name == name && req.extras.is_empty() {
                continue;
            }
            self.add_requirement(&mut deps, req);
        }
        Ok(Dependencies::Available(deps.into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use pep_types::VersionSpecifiers;
    use pypi_client::simple::parse_html;
    use pypi_client::PageContext;

    use super::*;

    /// Candidates from a one-file-per-version page, in the order given (newest first);
    /// a trailing `!` marks a yanked version.
    fn cands(versions: &[&str]) -> Vec<Candidate> {
        let anchors: String = versions
            .iter()
            .map(|v| match v.strip_suffix('!') {
                Some(v) => format!("<a href=\"demo-{v}.tar.gz\" data-yanked=\"\">x</a>\n"),
                None => format!("<a href=\"demo-{v}.tar.gz\">x</a>\n"),
            })
            .collect();
        let url = url::Url::parse("http://127.0.0.1/simple/demo/").unwrap();
        let name = PackageName::from_str("demo").unwrap();
        let page = parse_html(&anchors, &url, &name, &PageContext::index(0));
        assert_eq!(page.files.len(), versions.len());
        let page = Arc::new(page);
        (0..page.files.len())
            .map(|i| {
                Candidate::new(page.files[i].parsed.version().clone(), Arc::clone(&page), vec![i as u32])
            })
            .collect()
    }

    fn range(specs: &str) -> VS {
        specifiers_range(&VersionSpecifiers::from_str(specs).unwrap())
    }

    fn picked(cands: &[Candidate], specs: &str, allow_pre: bool) -> Option<String> {
        pick(cands, &range(specs), None, allow_pre).map(|c| c.version.to_string())
    }

    #[test]
    fn yanked_versions_only_for_pins_that_allow_nothing_else() {
        let all = cands(&["2.0!", "1.5", "1.0+cu116", "1.0!"]);
        assert_eq!(picked(&all, ">=1.0", false).as_deref(), Some("1.5"));
        assert_eq!(picked(&all, "==2.0", false).as_deref(), Some("2.0"));
        assert_eq!(picked(&all, "===2.0", false).as_deref(), Some("2.0"));
        assert_eq!(picked(&all, ">=2.0", false), None, "a yanked release needs a pin");
        assert_eq!(picked(&all, "==2.*", false), None, "a prefix is no pin");
        // `==1.0` allows an unyanked local build, so the yanked 1.0 stays out.
        assert_eq!(picked(&all, "==1.0", false).as_deref(), Some("1.0+cu116"));
        let both = cands(&["1.0+cu116!", "1.0!"]);
        assert_eq!(picked(&both, "==1.0", false).as_deref(), Some("1.0+cu116"));
        assert_eq!(picked(&both, "==1.0+cu116", false).as_deref(), Some("1.0+cu116"));
        // A yanked preference is no exception.
        let pref = Version::from_str("2.0").unwrap();
        assert_eq!(
            pick(&all, &range(">=1.0"), Some(&pref), false).map(|c| c.version.to_string()),
            Some("1.5".into())
        );
    }

    #[test]
    fn prereleases_when_allowed_named_or_alone() {
        let all = cands(&["2.0rc1", "1.0", "0.9rc1"]);
        assert_eq!(picked(&all, ">=0.5", false).as_deref(), Some("1.0"));
        assert_eq!(picked(&all, ">=0.5", true).as_deref(), Some("2.0rc1"));
        // Nothing final in range: the newest pre-release, as pip does.
        assert_eq!(picked(&all, ">1.0", false).as_deref(), Some("2.0rc1"));
        assert_eq!(picked(&all, "<1.0", false).as_deref(), Some("0.9rc1"));
        // A specifier naming a pre-release turns them on for its package (the provider
        // passes `allow_pre`); `>1.0rc1` does not name one in pip's sense.
        let names = |req: &str| {
            let req = Req::from_str(req).unwrap();
            matches!(&req.version_or_url, Some(VersionOrUrl::VersionSpecifier(s)) if names_prerelease(s))
        };
        assert!(names("demo>=1.0rc1") && names("demo==2.0rc1") && names("demo~=2.0b1,<3"));
        assert!(!names("demo>=1.0") && !names("demo>1.0rc1") && !names("demo!=2.0rc1") && !names("demo"));
    }

    #[test]
    fn local_builds_are_chosen_newest_first_under_a_pin() {
        let all = cands(&["0.13.1+cu117", "0.13.1+cu116", "0.13.1", "0.13.0"]);
        assert_eq!(picked(&all, "==0.13.1", false).as_deref(), Some("0.13.1+cu117"));
        assert_eq!(picked(&all, "==0.13.1+cu116", false).as_deref(), Some("0.13.1+cu116"));
        assert_eq!(picked(&all, "<=0.13.1,!=0.13.1+cu117", false).as_deref(), Some("0.13.1+cu116"));
        assert_eq!(picked(&all, "!=0.13.1", false).as_deref(), Some("0.13.0"));
        let pref = Version::from_str("0.13.1").unwrap();
        assert_eq!(
            pick(&all, &range("==0.13.1"), Some(&pref), false).map(|c| c.version.to_string()),
            Some("0.13.1".into())
        );
    }
}
