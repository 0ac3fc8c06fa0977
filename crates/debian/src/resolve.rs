//! Choosing the packages to install for one architecture, as apt would from an empty
//! system: the requests (plus, from scratch, `Essential: yes` and `Priority: required`)
//! and, transitively, their `Pre-Depends` and `Depends` (and `Recommends` when asked).
//!
//! The search is apt-like and greedy: a relation already satisfied by a chosen package
//! stays satisfied; otherwise the first alternative that can be installed is taken, the
//! highest version first, real packages before providers of a virtual name. Only when a
//! choice leads to a dead end does it go back and try the next alternative. A candidate
//! that `Conflicts` with or `Breaks` a chosen package (or is hit by theirs) is skipped.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::rc::Rc;

use rustc_hash::FxHashMap;

use crate::error::Unsatisfiable;
use crate::index::{Index, Package, PackageId, Priority, RelationField};
use crate::relation::{parse_relations, Dependency, Op, Relation};
use crate::Error;

/// How many dead ends the search may back out of before giving up.
const BACKTRACK_LIMIT: usize = 20_000;

/// What to add to the requests.
#[derive(Debug, Clone, Default)]
pub struct ResolveOptions {
    /// Add every `Essential: yes` and `Priority: required` package (building from scratch).
    pub essential: bool,
    /// Follow `Recommends` too (an unsatisfiable one is skipped, as apt does).
    pub recommends: bool,
    /// Versions to keep when the index still has them (name to version, e.g. from a lock).
    pub locked: BTreeMap<String, String>,
}

/// One package of a resolved set: what the lock records.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LockedDeb {
    /// `Package`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// `Architecture` (`amd64`, `arm64` or `all`).
    pub arch: String,
    /// `Filename`: the path of the `.deb` under the mirror root.
    pub filename: String,
    /// `Size` in bytes.
    pub size: u64,
    /// `SHA256` of the `.deb`.
    pub sha256: String,
    /// The suite it is fetched from (`bullseye-security`); empty for the first of the
    /// sources (a lock written before locks recorded suites).
    pub suite: String,
}

impl LockedDeb {
    /// The lock entry of an index package.
    pub fn from_package(p: &Package<'_>) -> LockedDeb {
        LockedDeb {
            name: p.name().to_string(),
            version: p.version().to_string(),
            arch: p.architecture().to_string(),
            filename: p.filename().to_string(),
            size: p.size(),
            sha256: p.sha256().to_string(),
            suite: p.suite().to_string(),
        }
    }

    /// The `.deb` file name (the last part of [`LockedDeb::filename`]).
    pub fn file_name(&self) -> &str {
        self.filename.rsplit('/').next().unwrap_or(&self.filename)
    }
}

impl fmt::Display for LockedDeb {
    /// `name=version arch`, the line `marqo-base debian resolve` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={} {}", self.name, self.version, self.arch)
    }
}

/// Why a package is in a resolved set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// It was asked for.
    Request,
    /// `Essential: yes`.
    Essential,
    /// `Priority: required`.
    Required,
    /// A relation of another chosen package (its name).
    Dependency(String),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Request => f.write_str("requested"),
            Why::Essential => f.write_str("Essential: yes"),
            Why::Required => f.write_str("Priority: required"),
            Why::Dependency(of) => write!(f, "needed by {of}"),
        }
    }
}

/// Resolves `request` (package names, `name=version` (held at that version), `name/SUITE`
/// (taken from that suite, which may be `NotAutomatic`), or relations such as
/// `python3 (>= 3.9)` or `a | b`) against `index`. Sorted by name.
pub fn resolve(index: &Index, request: &[String], opts: &ResolveOptions) -> Result<Vec<LockedDeb>, Error> {
    Ok(resolve_explained(index, request, opts)?.into_iter().map(|(d, _)| d).collect())
}

/// As [`resolve`], with the reason each package is there.
pub fn resolve_explained(
    index: &Index,
    request: &[String],
    opts: &ResolveOptions,
) -> Result<Vec<(LockedDeb, Why)>, Error> {
    let mut targets = FxHashMap::default();
    let mut requests = Vec::with_capacity(request.len());
    for text in request {
        let (relation, suite) = split_target(text);
        if let Some(suite) = suite {
            if !index.origins().iter().any(|o| o.suite == suite) {
                let suites: Vec<&str> = index.origins().iter().map(|o| o.suite.as_str()).collect();
                return Err(Error::NotFound {
                    package: text.to_string(),
                    arch: index.arch().to_string(),
                    hint: format!(
                        "`{suite}` is not one of the suites read ({}); add it to the sources",
                        suites.join(", ")
                    ),
                });
            }
            targets.insert(relation.to_string(), suite.to_string());
        }
        requests.push((text, relation));
    }
    let mut solver = Solver { index, opts, targets, deps: FxHashMap::default(), backtracks: 0 };
    let mut state = State::default();

    let mut roots: Vec<(PackageId, Why)> = Vec::new();
    if opts.essential {
        let mut names: Vec<(&str, Why)> = Vec::new();
        for p in index.packages() {
            if p.essential() {
                names.push((p.name(), Why::Essential));
            } else if p.priority() == Priority::Required {
                names.push((p.name(), Why::Required));
            }
        }
        // Like mmdebstrap, a root built from scratch is merged-/usr from the start: take
        // usr-is-merged rather than letting `usrmerge | usr-is-merged` pull in usrmerge
        // (and perl) to convert a tree that needs no conversion.
        if index.by_name("usr-is-merged").next().is_some() {
            names.push(("usr-is-merged", Why::Required));
        }
        names.sort_by(|a, b| (a.1 != Why::Essential, a.0).cmp(&(b.1 != Why::Essential, b.0)));
        names.dedup_by(|a, b| a.0 == b.0);
        for (name, why) in names {
            let rel = Relation { name: name.to_string(), arch: None, version: None };
            if let Some(id) = solver.candidates(&state, &rel).0.first() {
                roots.push((*id, why));
            }
        }
    }
    for (text, relation) in requests {
        let deps = parse_request(relation, index.arch())?;
        for dep in deps {
            if solver.satisfied(&state, &dep) {
                continue;
            }
            let id = solver.choose_request(&state, &dep, text)?;
            roots.push((id, Why::Request));
            state.select(index, id, None);
        }
    }
    for (id, why) in roots {
        let name = index.get(id).name();
        if state.selected.contains_key(name) {
            // A request for this name (maybe of another version) wins over the base set.
            state.why.entry(id).or_insert(why);
            continue;
        }
        if let Some(conflict) = solver.conflict(&state, id) {
            return Err(conflict);
        }
        state.select(index, id, None);
        state.why.insert(id, why);
    }
    let state = solver.solve(state)?;
    let mut out: Vec<(LockedDeb, Why)> = state
        .selected
        .values()
        .map(|id| {
            let why = state.why.get(id).cloned().unwrap_or_else(|| {
                let parent = state.parent.get(id).copied().flatten();
                Why::Dependency(parent.map(|p| index.get(p).name().to_string()).unwrap_or_default())
            });
            let mut deb = LockedDeb::from_package(&index.get(*id));
            // Asked of a suite, it is taken from there (the same file may be in several).
            if let Some(target) = solver.targets.get(deb.name.as_str()) {
                deb.suite = target.clone();
            }
            (deb, why)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The relations of one package of a resolved set, within the set: what a lock records so it
/// can check its own closure without the index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetRelations {
    /// The packages of the set that satisfy its `Pre-Depends` and `Depends` (and
    /// `Recommends` when followed), sorted, without itself.
    pub dependencies: Vec<String>,
    /// The virtual names it provides, sorted.
    pub provides: Vec<String>,
}

/// For each package of `set` (as [`resolve`] returned it from `index`), in order: the
/// packages of the set that satisfy its relations, and what it provides. A relation no
/// package of the set satisfies (an unsatisfiable `Recommends`) names nothing.
pub fn set_relations(index: &Index, set: &[LockedDeb], recommends: bool) -> Result<Vec<SetRelations>, Error> {
    let chosen: FxHashMap<PackageId, &str> = set
        .iter()
        .filter_map(|d| {
            let p =
                index.by_name(&d.name).find(|p| p.version() == d.version && p.architecture() == d.arch)?;
            Some((p.id(), p.name()))
        })
        .collect();
    let mut out = Vec::with_capacity(set.len());
    for deb in set {
        let Some(p) =
            index.by_name(&deb.name).find(|p| p.version() == deb.version && p.architecture() == deb.arch)
        else {
            out.push(SetRelations::default());
            continue;
        };
        let mut fields = vec![RelationField::PreDepends, RelationField::Depends];
        if recommends {
            fields.push(RelationField::Recommends);
        }
        let mut dependencies = Vec::new();
        for field in fields {
            for dep in p.relations(field)? {
                let found = dep.alternatives.iter().find_map(|rel| {
                    index.satisfiers(rel).into_iter().find_map(|id| chosen.get(&id).copied())
                });
                if let Some(name) = found.filter(|n| *n != deb.name) {
                    dependencies.push(name.to_string());
                }
            }
        }
        dependencies.sort();
        dependencies.dedup();
        let mut provides: Vec<String> = p
            .relations(RelationField::Provides)?
            .into_iter()
            .flat_map(|d| d.alternatives)
            .map(|rel| rel.name)
            .collect();
        provides.sort();
        provides.dedup();
        out.push(SetRelations { dependencies, provides });
    }
    Ok(out)
}

/// A request without its target suite: `python3/bookworm-backports` is `python3` from
/// `bookworm-backports`. Relation syntax (with `(`) names no suite.
pub fn split_target(text: &str) -> (&str, Option<&str>) {
    match text.split_once('/') {
        Some((name, suite)) if !text.contains('(') && !text.contains('=') => {
            (name.trim(), Some(suite.trim()))
        }
        _ => (text, None),
    }
}

/// Parses one request: `name`, `name=version`, or relation syntax.
fn parse_request(text: &str, arch: &str) -> Result<Vec<Dependency>, Error> {
    let bad = |source| Error::Relation {
        package: text.to_string(),
        arch: arch.to_string(),
        field: "request",
        source,
    };
    match text.split_once('=') {
        Some((name, version)) if !text.contains('(') => {
            let mut deps = parse_relations(name.trim(), arch).map_err(bad)?;
            for d in &mut deps {
                for alt in &mut d.alternatives {
                    alt.version = Some((Op::Eq, version.trim().to_string()));
                }
            }
            Ok(deps)
        }
        _ => parse_relations(text, arch).map_err(bad),
    }
}

/// A relation kind, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    PreDepends,
    Depends,
    Recommends,
}

impl Kind {
    fn verb(self) -> &'static str {
        match self {
            Kind::PreDepends => "pre-depends on",
            Kind::Depends => "depends on",
            Kind::Recommends => "recommends",
        }
    }
}

/// How a chosen package satisfies a name: as itself (with its version) or through
/// `Provides` (with the provided version, if any).
#[derive(Debug, Clone, Copy)]
enum Offer<'a> {
    Real(&'a str),
    Virtual(Option<&'a str>),
}

#[derive(Debug, Clone, Default)]
struct State<'a> {
    /// Chosen packages by name.
    selected: BTreeMap<&'a str, PackageId>,
    /// Every name a chosen package answers to.
    offers: FxHashMap<&'a str, Vec<(PackageId, Offer<'a>)>>,
    /// `Conflicts` and `Breaks` of chosen packages.
    negative: Vec<(PackageId, &'static str, Relation)>,
    /// Who pulled each package in (`None` for roots).
    parent: FxHashMap<PackageId, Option<PackageId>>,
    /// Why roots are there.
    why: FxHashMap<PackageId, Why>,
    /// Packages whose relations are still to satisfy, with the next one to look at.
    queue: VecDeque<(PackageId, usize)>,
}

impl<'a> State<'a> {
    fn select(&mut self, index: &'a Index, id: PackageId, parent: Option<PackageId>) {
        let p = index.get(id);
        self.selected.insert(p.name(), id);
        self.offers.entry(p.name()).or_default().push((id, Offer::Real(p.version())));
        // A Provides that does not parse was already refused when the index was built.
        if let Ok(provides) = p.relations(RelationField::Provides) {
            for rel in provides.into_iter().flat_map(|d| d.alternatives) {
                let (name, version) = provided_name(index, id, &rel);
                self.offers.entry(name).or_default().push((id, Offer::Virtual(version)));
            }
        }
        for (field, kind) in [(RelationField::Conflicts, "conflicts with"), (RelationField::Breaks, "breaks")]
        {
            if let Ok(deps) = p.relations(field) {
                for rel in deps.into_iter().flat_map(|d| d.alternatives) {
                    self.negative.push((id, kind, rel));
                }
            }
        }
        self.parent.insert(id, parent);
        self.queue.push_back((id, 0));
    }

    fn chain(&self, index: &Index, mut id: PackageId) -> String {
        let mut names = vec![index.get(id).name().to_string()];
        while let Some(Some(parent)) = self.parent.get(&id) {
            if names.len() > 12 {
                names.push("...".to_string());
                break;
            }
            names.push(index.get(*parent).name().to_string());
            id = *parent;
        }
        let root = match self.why.get(&id) {
            Some(w) => w.to_string(),
            None => "requested".to_string(),
        };
        format!("{} ({root})", names.join(" <- "))
    }
}

/// The provided name (borrowed from the index) and version of a `Provides` item of `id`.
fn provided_name<'a>(index: &'a Index, id: PackageId, rel: &Relation) -> (&'a str, Option<&'a str>) {
    let version = index.providers(&rel.name).find(|(p, _)| p.id() == id).and_then(|(_, v)| v);
    (index.provider_key(&rel.name).unwrap_or_default(), version)
}

struct Solver<'a, 'o> {
    index: &'a Index,
    opts: &'o ResolveOptions,
    /// Requested names and the suite each is to come from (`name/SUITE`).
    targets: FxHashMap<String, String>,
    deps: FxHashMap<PackageId, Rc<Vec<(Kind, Dependency)>>>,
    backtracks: usize,
}

impl<'a> Solver<'a, '_> {
    fn deps_of(&mut self, id: PackageId) -> Result<Rc<Vec<(Kind, Dependency)>>, Error> {
        if let Some(d) = self.deps.get(&id) {
            return Ok(Rc::clone(d));
        }
        let p = self.index.get(id);
        let mut out = Vec::new();
        for d in p.relations(RelationField::PreDepends)? {
            out.push((Kind::PreDepends, d));
        }
        for d in p.relations(RelationField::Depends)? {
            out.push((Kind::Depends, d));
        }
        if self.opts.recommends {
            for d in p.relations(RelationField::Recommends)? {
                out.push((Kind::Recommends, d));
            }
        }
        let out = Rc::new(out);
        self.deps.insert(id, Rc::clone(&out));
        Ok(out)
    }

    /// Whether a chosen package offers `rel`.
    fn offers(&self, state: &State<'a>, rel: &Relation) -> Option<PackageId> {
        let offers = state.offers.get(rel.name.as_str())?;
        offers.iter().find_map(|(id, offer)| {
            let ok = match offer {
                Offer::Real(v) => rel.accepts_version(v) && self.index.get(*id).satisfies_qualifier(rel),
                Offer::Virtual(Some(v)) => rel.accepts_version(v),
                Offer::Virtual(None) => rel.version.is_none(),
            };
            ok.then_some(*id)
        })
    }

    fn satisfied(&self, state: &State<'a>, dep: &Dependency) -> bool {
        dep.alternatives.iter().any(|rel| self.offers(state, rel).is_some())
    }

    /// The installable candidates for `rel`, best first, and why others were refused.
    fn candidates(&self, state: &State<'a>, rel: &Relation) -> (Vec<PackageId>, Vec<String>) {
        let mut ids = self.index.satisfiers(rel);
        ids.retain(|id| self.eligible(*id));
        let real = ids.iter().take_while(|id| self.index.get(**id).name() == rel.name).count();
        let (real_ids, providers) = ids.split_at_mut(real);
        if let Some(locked) = self.opts.locked.get(&rel.name) {
            real_ids.sort_by_key(|id| self.index.get(*id).version() != locked);
        }
        providers.sort_by(|a, b| {
            let (pa, pb) = (self.index.get(*a), self.index.get(*b));
            let key = |p: &Package<'_>| {
                (state.selected.contains_key(p.name()), p.essential(), p.priority(), p.name().to_string())
            };
            let (ka, kb) = (key(&pa), key(&pb));
            // Already chosen, then essential, then by priority, then by name.
            kb.0.cmp(&ka.0).then(kb.1.cmp(&ka.1)).then(ka.2.cmp(&kb.2)).then(ka.3.cmp(&kb.3))
        });
        let mut ok = Vec::new();
        let mut refused = Vec::new();
        for id in ids {
            let p = self.index.get(id);
            if let Some(other) = state.selected.get(p.name()) {
                if *other != id {
                    refused.push(format!(
                        "{} {} is already chosen",
                        p.name(),
                        self.index.get(*other).version()
                    ));
                }
                continue;
            }
            if let Some(conflict) = self.conflict(state, id) {
                refused.push(match conflict {
                    Error::Conflict { package, kind, relation, other, .. } => {
                        format!("{package} {kind} `{relation}` ({other})")
                    }
                    other => other.to_string(),
                });
                continue;
            }
            ok.push(id);
        }
        if ok.is_empty() && refused.is_empty() {
            refused.push(self.absent_reason(rel));
        }
        (ok, refused)
    }

    /// Whether apt would consider `id` at all: a package requested from a suite only from
    /// that suite; otherwise only from suites that are not `NotAutomatic` (or at the version
    /// the lock holds).
    fn eligible(&self, id: PackageId) -> bool {
        let p = self.index.get(id);
        match self.targets.get(p.name()) {
            Some(suite) => p.origins().any(|o| &o.suite == suite),
            None => {
                p.automatic()
                    || self.opts.locked.get(p.name()).is_some_and(|v| v == p.version())
                    || self.index.only_manual(p.name())
            }
        }
    }

    /// Why nothing in the index satisfies `rel`.
    fn absent_reason(&self, rel: &Relation) -> String {
        let left_out: Vec<Package<'_>> = self
            .index
            .by_name(&rel.name)
            .filter(|p| !self.eligible(p.id()) && rel.accepts_version(p.version()))
            .collect();
        if let Some(first) = left_out.first() {
            let listed: Vec<String> = left_out
                .iter()
                .map(|p| format!("{} {} is only in {}", p.name(), p.version(), p.suite()))
                .collect();
            return match self.targets.get(&rel.name) {
                Some(target) => format!(
                    "`{rel}`: {}, not in `{target}`, where the request takes {} from",
                    listed.join(", "),
                    rel.name
                ),
                None => format!(
                    "`{rel}`: {}, which is NotAutomatic; request `{}/{}` to take it from there",
                    listed.join(", "),
                    rel.name,
                    first.suite()
                ),
            };
        }
        let versions: Vec<&str> = self.index.by_name(&rel.name).map(|p| p.version()).collect();
        let providers: Vec<String> = self
            .index
            .providers(&rel.name)
            .map(|(p, v)| match v {
                Some(v) => format!("{} (provides {} {v})", p.name(), rel.name),
                None => format!("{} (provides {}, unversioned)", p.name(), rel.name),
            })
            .collect();
        if !versions.is_empty() {
            format!(
                "`{rel}`: only {} {} is available for {}",
                rel.name,
                versions.join(", "),
                self.index.arch()
            )
        } else if !providers.is_empty() {
            format!("`{rel}`: the providers do not fit: {}", providers.join(", "))
        } else {
            format!("`{rel}`: no package `{}` for {}", rel.name, self.index.arch())
        }
    }

    /// The conflict that choosing `id` would cause, if any.
    fn conflict(&self, state: &State<'a>, id: PackageId) -> Option<Error> {
        let p = self.index.get(id);
        let make =
            |declarer: Package<'_>, kind: &'static str, rel: &Relation, hit: Package<'_>| Error::Conflict {
                arch: self.index.arch().to_string(),
                package: declarer.display(),
                kind,
                relation: rel.to_string(),
                other: hit.display(),
            };
        for (field, kind) in [(RelationField::Conflicts, "conflicts with"), (RelationField::Breaks, "breaks")]
        {
            for rel in p.relations(field).ok()?.into_iter().flat_map(|d| d.alternatives) {
                if let Some(hit) = self.offers(state, &rel) {
                    if hit != id && self.index.get(hit).name() != p.name() {
                        return Some(make(p, kind, &rel, self.index.get(hit)));
                    }
                }
            }
        }
        for (declarer, kind, rel) in &state.negative {
            if *declarer == id || self.index.get(*declarer).name() == p.name() {
                continue;
            }
            if self.package_offers(id, rel) {
                return Some(make(self.index.get(*declarer), kind, rel, p));
            }
        }
        None
    }

    /// Whether package `id` (not yet chosen) would offer `rel`.
    fn package_offers(&self, id: PackageId, rel: &Relation) -> bool {
        let p = self.index.get(id);
        if p.name() == rel.name {
            return rel.accepts_version(p.version());
        }
        self.index.providers(&rel.name).any(|(q, v)| {
            q.id() == id
                && match (&rel.version, v) {
                    (None, _) => true,
                    (Some(_), Some(v)) => rel.accepts_version(v),
                    (Some(_), None) => false,
                }
        })
    }

    /// The package chosen for a requested dependency: the first alternative with a real
    /// package, or a virtual name with exactly one provider.
    fn choose_request(&self, state: &State<'a>, dep: &Dependency, text: &str) -> Result<PackageId, Error> {
        let mut reasons = Vec::new();
        for rel in &dep.alternatives {
            let (ok, refused) = self.candidates(state, rel);
            let real: Vec<PackageId> =
                ok.iter().copied().filter(|id| self.index.get(*id).name() == rel.name).collect();
            if let Some(id) = real.first() {
                return Ok(*id);
            }
            match ok.as_slice() {
                [one] => return Ok(*one),
                [] => reasons.extend(refused),
                many => {
                    let names: Vec<&str> = many.iter().map(|id| self.index.get(*id).name()).collect();
                    return Err(Error::NotFound {
                        package: text.to_string(),
                        arch: self.index.arch().to_string(),
                        hint: format!(
                            "`{}` is a virtual package provided by {}; request one of them",
                            rel.name,
                            names.join(", ")
                        ),
                    });
                }
            }
        }
        // A package that exists but conflicts with what is chosen: say so plainly.
        for rel in &dep.alternatives {
            for id in self.index.satisfiers(rel) {
                if let Some(conflict) = self.conflict(state, id) {
                    return Err(conflict);
                }
            }
        }
        Err(Error::NotFound {
            package: text.to_string(),
            arch: self.index.arch().to_string(),
            hint: format!("{}; check the name and the suite", reasons.join("; ")),
        })
    }

    fn solve(&mut self, mut state: State<'a>) -> Result<State<'a>, Error> {
        loop {
            let Some((id, i)) = state.queue.pop_front() else { return Ok(state) };
            let deps = self.deps_of(id)?;
            let Some((kind, dep)) = deps.get(i) else { continue };
            state.queue.push_front((id, i + 1));
            if self.satisfied(&state, dep) {
                continue;
            }
            let mut viable = Vec::new();
            let mut refused = Vec::new();
            for rel in &dep.alternatives {
                let (ok, why) = self.candidates(&state, rel);
                for c in ok {
                    if !viable.contains(&c) {
                        viable.push(c);
                    }
                }
                refused.extend(why);
            }
            match viable.as_slice() {
                [] if *kind == Kind::Recommends => continue,
                [] => return Err(self.unsatisfiable(&state, id, *kind, dep, refused)),
                [one] => state.select(self.index, *one, Some(id)),
                _ => {
                    let mut first_error = None;
                    for c in viable {
                        let mut attempt = state.clone();
                        attempt.select(self.index, c, Some(id));
                        match self.solve(attempt) {
                            Ok(done) => return Ok(done),
                            Err(e) => {
                                self.backtracks += 1;
                                if self.backtracks > BACKTRACK_LIMIT {
                                    return Err(e);
                                }
                                first_error.get_or_insert(e);
                            }
                        }
                    }
                    if *kind == Kind::Recommends {
                        continue;
                    }
                    return Err(
                        first_error.unwrap_or_else(|| self.unsatisfiable(&state, id, *kind, dep, refused))
                    );
                }
            }
        }
    }

    fn unsatisfiable(
        &self,
        state: &State<'a>,
        id: PackageId,
        kind: Kind,
        dep: &Dependency,
        refused: Vec<String>,
    ) -> Error {
        let p = self.index.get(id);
        Error::Unsatisfiable(Box::new(Unsatisfiable {
            arch: self.index.arch().to_string(),
            package: format!("{} {}", p.name(), p.version()),
            relation_kind: kind.verb(),
            relation: dep.to_string(),
            reason: refused.join("; "),
            chain: state.chain(self.index, id),
            hint: "check that the suite and its components are right; pin another version of \
                   the package that needs it, or request a package that provides it"
                .to_string(),
        }))
    }
}
