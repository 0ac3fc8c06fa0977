//! The package index of one architecture: every paragraph of the suite's `Packages` files
//! for that architecture and `all`, parsed once.
//!
//! The text is kept whole and each package is a handful of byte ranges into it, so the
//! ~60 000 packages of a Debian suite cost one string plus a few MB; relationship fields
//! are parsed only for the packages the resolver visits.

use rustc_hash::FxHashMap;

use crate::deb822;
use crate::relation::{parse_relations, Dependency, Relation};
use crate::version::compare_versions;
use crate::Error;

/// A package's index in an [`Index`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageId(pub u32);

/// `Multi-Arch` of a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MultiArch {
    /// Not multi-arch aware (the field is absent or `no`).
    #[default]
    No,
    /// `same`: co-installable with itself for other architectures.
    Same,
    /// `foreign`: satisfies dependencies of packages of any architecture.
    Foreign,
    /// `allowed`: dependents may ask for `:any`.
    Allowed,
}

/// `Priority` of a package, most important first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Priority {
    /// `required`: needed for the system to work.
    Required,
    /// `important`.
    Important,
    /// `standard`.
    Standard,
    /// `optional` (and anything unknown).
    #[default]
    Optional,
    /// `extra` (deprecated).
    Extra,
}

/// A byte range into the index text; `start == end` for an absent field.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    end: u32,
}

#[derive(Debug, Clone)]
struct Entry {
    stanza: Span,
    name: Span,
    version: Span,
    arch: Span,
    multi_arch: MultiArch,
    essential: bool,
    priority: Priority,
    depends: Span,
    pre_depends: Span,
    recommends: Span,
    conflicts: Span,
    breaks: Span,
    provides: Span,
    filename: Span,
    sha256: Span,
    size: u64,
    /// The [`Origin`]s that list this version, one bit each (bit `i`: `origins[i]`).
    origins: u32,
}

/// Where some of an index's packages come from: one suite of an archive, as its signed
/// `Release` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// The suite as the sources name it (`bullseye-security`); empty for an index read
    /// from one unnamed source.
    pub suite: String,
    /// `NotAutomatic: yes` in its `Release` (backports): its packages are candidates only
    /// when a request names the suite (`name/SUITE`), as apt's pin priority 1 has it.
    pub not_automatic: bool,
}

impl Origin {
    /// An origin that apt takes from without being asked.
    pub fn new(suite: &str) -> Origin {
        Origin { suite: suite.to_string(), not_automatic: false }
    }

    /// Whether it is a security archive's suite (`bullseye-security`, or `buster/updates`
    /// before bullseye).
    pub fn is_security(&self) -> bool {
        is_security_suite(&self.suite)
    }
}

/// Whether `suite` names a security archive's suite (`bullseye-security`, `buster/updates`).
pub fn is_security_suite(suite: &str) -> bool {
    suite.ends_with("-security") || suite.ends_with("/updates")
}

/// At most this many origins make one index (one bit each in a package's entry).
pub const MAX_ORIGINS: usize = 32;

/// A provider of a virtual package: the package and the version it provides, if any.
#[derive(Debug, Clone)]
struct Provider {
    id: PackageId,
    version: Option<Box<str>>,
}

/// All packages of one architecture (plus `all`) of a suite.
pub struct Index {
    arch: String,
    text: String,
    entries: Vec<Entry>,
    by_name: FxHashMap<Box<str>, Vec<PackageId>>,
    providers: FxHashMap<Box<str>, Vec<Provider>>,
    origins: Vec<Origin>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("arch", &self.arch).field("packages", &self.entries.len()).finish()
    }
}

/// A package of an [`Index`], borrowed.
#[derive(Clone, Copy)]
pub struct Package<'a> {
    index: &'a Index,
    id: PackageId,
}

impl Index {
    /// Builds the index of `arch` from the text of `Packages` files (several files may be
    /// concatenated, separated by blank lines). Packages of other architectures are left out;
    /// a package listed twice with one version is kept once. `file` names the source in
    /// error messages.
    pub fn parse(arch: &str, text: String, file: &str) -> Result<Index, Error> {
        Index::parse_sources(arch, vec![(Origin::default(), text)], file)
    }

    /// Builds one index of `arch` from the `Packages` text of several origins (the suites
    /// apt reads, in the sources' order). A version listed by several origins is one
    /// package that all of them offer; the first one listing it is where it is fetched
    /// from ([`Package::suite`]).
    pub fn parse_sources(arch: &str, parts: Vec<(Origin, String)>, file: &str) -> Result<Index, Error> {
        if parts.len() > MAX_ORIGINS {
            return Err(Error::Field {
                file: file.to_string(),
                package: String::new(),
                field: "Suites",
                reason: format!("{} suites make one index; at most {MAX_ORIGINS} can", parts.len()),
            });
        }
        // One text, and where each origin's part starts in it.
        let mut text = String::with_capacity(parts.iter().map(|(_, t)| t.len() + 2).sum());
        let mut starts = Vec::with_capacity(parts.len());
        let mut origins = Vec::with_capacity(parts.len());
        for (origin, part) in parts {
            starts.push(text.len());
            text.push_str(&part);
            text.push_str("\n\n");
            origins.push(origin);
        }
        Index::parse_text(arch, text, &starts, origins, file)
    }

    fn parse_text(
        arch: &str,
        mut text: String,
        starts: &[usize],
        origins: Vec<Origin>,
        file: &str,
    ) -> Result<Index, Error> {
        if text.len() >= u32::MAX as usize {
            return Err(Error::Field {
                file: file.to_string(),
                package: String::new(),
                field: "Package",
                reason: "the Packages text is larger than 4 GiB".to_string(),
            });
        }
        text.shrink_to_fit();
        let base = text.as_ptr() as usize;
        let span = |s: &str| {
            let start = (s.as_ptr() as usize - base) as u32;
            Span { start, end: start + s.len() as u32 }
        };
        let mut entries: Vec<Entry> = Vec::new();
        let mut by_name: FxHashMap<Box<str>, Vec<PackageId>> = FxHashMap::default();
        let mut providers: FxHashMap<Box<str>, Vec<Provider>> = FxHashMap::default();
        for paragraph in deb822::paragraphs(&text) {
            let p = paragraph.map_err(|source| Error::Syntax { file: file.to_string(), source })?;
            let mut e = Entry {
                stanza: span(p.text),
                name: Span::default(),
                version: Span::default(),
                arch: Span::default(),
                multi_arch: MultiArch::No,
                essential: false,
                priority: Priority::Optional,
                depends: Span::default(),
                pre_depends: Span::default(),
                recommends: Span::default(),
                conflicts: Span::default(),
                breaks: Span::default(),
                provides: Span::default(),
                filename: Span::default(),
                sha256: Span::default(),
                size: 0,
                origins: 0,
            };
            let offset = p.text.as_ptr() as usize - base;
            e.origins = 1 << starts.iter().rposition(|&s| s <= offset).unwrap_or(0);
            let mut size = None;
            for f in &p.fields {
                let n = f.name;
                let v = f.value;
                if n.eq_ignore_ascii_case("Package") {
                    e.name = span(v);
                } else if n.eq_ignore_ascii_case("Version") {
                    e.version = span(v);
                } else if n.eq_ignore_ascii_case("Architecture") {
                    e.arch = span(v);
                } else if n.eq_ignore_ascii_case("Multi-Arch") {
                    e.multi_arch = match v {
                        "same" => MultiArch::Same,
                        "foreign" => MultiArch::Foreign,
                        "allowed" => MultiArch::Allowed,
                        _ => MultiArch::No,
                    };
                } else if n.eq_ignore_ascii_case("Essential") {
                    e.essential = v == "yes";
                } else if n.eq_ignore_ascii_case("Priority") {
                    e.priority = match v {
                        "required" => Priority::Required,
                        "important" => Priority::Important,
                        "standard" => Priority::Standard,
                        "extra" => Priority::Extra,
                        _ => Priority::Optional,
                    };
                } else if n.eq_ignore_ascii_case("Depends") {
                    e.depends = span(v);
                } else if n.eq_ignore_ascii_case("Pre-Depends") {
                    e.pre_depends = span(v);
                } else if n.eq_ignore_ascii_case("Recommends") {
                    e.recommends = span(v);
                } else if n.eq_ignore_ascii_case("Conflicts") {
                    e.conflicts = span(v);
                } else if n.eq_ignore_ascii_case("Breaks") {
                    e.breaks = span(v);
                } else if n.eq_ignore_ascii_case("Provides") {
                    e.provides = span(v);
                } else if n.eq_ignore_ascii_case("Filename") {
                    e.filename = span(v);
                } else if n.eq_ignore_ascii_case("SHA256") {
                    e.sha256 = span(v);
                } else if n.eq_ignore_ascii_case("Size") {
                    size = Some(v);
                }
            }
            let name = &text[e.name.start as usize..e.name.end as usize];
            let missing = |field: &'static str| Error::Field {
                file: file.to_string(),
                package: if name.is_empty() {
                    format!("(paragraph at line {})", p.line)
                } else {
                    name.to_string()
                },
                field,
                reason: "missing".to_string(),
            };
            if name.is_empty() {
                return Err(missing("Package"));
            }
            for (s, field) in [(e.version, "Version"), (e.arch, "Architecture")] {
                if s.start == s.end {
                    return Err(missing(field));
                }
            }
            let pkg_arch = &text[e.arch.start as usize..e.arch.end as usize];
            if pkg_arch != arch && pkg_arch != "all" {
                continue;
            }
            e.size = match size {
                Some(s) => s.parse().map_err(|_| Error::Field {
                    file: file.to_string(),
                    package: name.to_string(),
                    field: "Size",
                    reason: format!("`{s}` is not a number"),
                })?,
                None => 0,
            };
            let version = &text[e.version.start as usize..e.version.end as usize];
            let ids = by_name.entry(name.into()).or_default();
            // The same file listed again (by another suite, or in binary-all too) is one
            // package; a rebuild of the version with other bytes stays a package of its own.
            let sha256 = &text[e.sha256.start as usize..e.sha256.end as usize];
            let duplicate = ids.iter().copied().find(|id| {
                let o = &entries[id.0 as usize];
                &text[o.version.start as usize..o.version.end as usize] == version
                    && &text[o.arch.start as usize..o.arch.end as usize] == pkg_arch
                    && text[o.sha256.start as usize..o.sha256.end as usize].eq_ignore_ascii_case(sha256)
            });
            if let Some(id) = duplicate {
                entries[id.0 as usize].origins |= e.origins;
                continue;
            }
            let id = PackageId(entries.len() as u32);
            ids.push(id);
            if e.provides.start != e.provides.end {
                let field = &text[e.provides.start as usize..e.provides.end as usize];
                let provided = parse_relations(field, arch).map_err(|source| Error::Relation {
                    package: name.to_string(),
                    arch: arch.to_string(),
                    field: "Provides",
                    source,
                })?;
                for rel in provided.into_iter().flat_map(|d| d.alternatives) {
                    let version = rel.version.map(|(_, v)| v.into_boxed_str());
                    providers.entry(rel.name.into_boxed_str()).or_default().push(Provider { id, version });
                }
            }
            entries.push(e);
        }
        // Highest version first, so "the candidate" is the first that fits.
        for ids in by_name.values_mut() {
            ids.sort_by(|a, b| {
                let va = &entries[a.0 as usize].version;
                let vb = &entries[b.0 as usize].version;
                compare_versions(
                    &text[vb.start as usize..vb.end as usize],
                    &text[va.start as usize..va.end as usize],
                )
            });
        }
        by_name.retain(|_, ids| !ids.is_empty());
        Ok(Index { arch: arch.to_string(), text, entries, by_name, providers, origins })
    }

    /// The origins its packages come from, in the sources' order.
    pub fn origins(&self) -> &[Origin] {
        &self.origins
    }

    /// Whether every version of `name` is in `NotAutomatic` suites only: apt then takes the
    /// highest of them (priority 1 is still a candidate when nothing else is).
    pub fn only_manual(&self, name: &str) -> bool {
        self.by_name(name).all(|p| !p.automatic())
    }

    /// The architecture this index is for.
    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// How many packages it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds no package.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The package with this id.
    pub fn get(&self, id: PackageId) -> Package<'_> {
        Package { index: self, id }
    }

    /// Every package, in file order.
    pub fn packages(&self) -> impl Iterator<Item = Package<'_>> {
        (0..self.entries.len() as u32).map(|i| self.get(PackageId(i)))
    }

    /// The real packages called `name`, highest version first.
    pub fn by_name(&self, name: &str) -> impl Iterator<Item = Package<'_>> {
        self.by_name.get(name).into_iter().flatten().map(|id| self.get(*id))
    }

    /// The packages that provide `name`, each with the version it provides (if any).
    pub fn providers(&self, name: &str) -> impl Iterator<Item = (Package<'_>, Option<&str>)> {
        self.providers.get(name).into_iter().flatten().map(|p| (self.get(p.id), p.version.as_deref()))
    }

    /// The packages (real or providing) that satisfy `relation` on this architecture, real
    /// packages first (highest version first), then providers in index order.
    pub fn satisfiers(&self, relation: &Relation) -> Vec<PackageId> {
        let mut out: Vec<PackageId> = self
            .by_name(&relation.name)
            .filter(|p| p.satisfies_qualifier(relation) && relation.accepts_version(p.version()))
            .map(|p| p.id)
            .collect();
        for (p, provided) in self.providers(&relation.name) {
            let version_ok = match (&relation.version, provided) {
                (None, _) => true,
                (Some(_), Some(v)) => relation.accepts_version(v),
                // An unversioned Provides never satisfies a versioned relation.
                (Some(_), None) => false,
            };
            if version_ok && p.satisfies_qualifier(relation) && !out.contains(&p.id) {
                out.push(p.id);
            }
        }
        out
    }

    /// The provider table's own copy of a virtual name, so callers can borrow it for as
    /// long as the index.
    pub(crate) fn provider_key(&self, name: &str) -> Option<&str> {
        self.providers.get_key_value(name).map(|(k, _)| &**k)
    }

    fn slice(&self, s: Span) -> &str {
        &self.text[s.start as usize..s.end as usize]
    }
}

impl std::fmt::Debug for Package<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Package({})", self.display())
    }
}

impl<'a> Package<'a> {
    fn entry(&self) -> &'a Entry {
        &self.index.entries[self.id.0 as usize]
    }

    fn field_text(&self, s: Span) -> &'a str {
        &self.index.text[s.start as usize..s.end as usize]
    }

    /// Its id in the index.
    pub fn id(&self) -> PackageId {
        self.id
    }

    /// `Package`.
    pub fn name(&self) -> &'a str {
        self.field_text(self.entry().name)
    }

    /// `Version`.
    pub fn version(&self) -> &'a str {
        self.field_text(self.entry().version)
    }

    /// `Architecture` (the index's architecture or `all`).
    pub fn architecture(&self) -> &'a str {
        self.field_text(self.entry().arch)
    }

    /// `Multi-Arch`.
    pub fn multi_arch(&self) -> MultiArch {
        self.entry().multi_arch
    }

    /// `Essential: yes`.
    pub fn essential(&self) -> bool {
        self.entry().essential
    }

    /// `Priority`.
    pub fn priority(&self) -> Priority {
        self.entry().priority
    }

    /// The origins that list this version, in the sources' order.
    pub fn origins(&self) -> impl Iterator<Item = &'a Origin> {
        let bits = self.entry().origins;
        self.index.origins.iter().enumerate().filter(move |(i, _)| bits & (1 << i) != 0).map(|(_, o)| o)
    }

    /// The suite it is fetched from: the first of its origins.
    pub fn suite(&self) -> &'a str {
        self.origins().next().map_or("", |o| o.suite.as_str())
    }

    /// Whether apt would take it without being asked: some origin of it is not
    /// `NotAutomatic`.
    pub fn automatic(&self) -> bool {
        self.origins().any(|o| !o.not_automatic)
    }

    /// Whether a security suite lists it.
    pub fn from_security(&self) -> bool {
        self.origins().any(Origin::is_security)
    }

    /// `Filename`: the path of the `.deb` under the mirror root (`pool/main/...`).
    pub fn filename(&self) -> &'a str {
        self.field_text(self.entry().filename)
    }

    /// `Size` of the `.deb` in bytes.
    pub fn size(&self) -> u64 {
        self.entry().size
    }

    /// `SHA256` of the `.deb`.
    pub fn sha256(&self) -> &'a str {
        self.field_text(self.entry().sha256)
    }

    /// The whole paragraph as written in the index.
    pub fn stanza(&self) -> &'a str {
        self.field_text(self.entry().stanza)
    }

    /// Any field of the paragraph (for the few not kept apart, such as `Section`).
    pub fn field(&self, name: &str) -> Option<&'a str> {
        deb822::paragraphs(self.stanza()).next().and_then(|p| p.ok()).and_then(|p| p.get(name))
    }

    /// `name version (arch)`, for messages.
    pub fn display(&self) -> String {
        format!("{} {} ({})", self.name(), self.version(), self.architecture())
    }

    /// Parses one relationship field (`Depends`, `Pre-Depends`, `Recommends`, `Conflicts`,
    /// `Breaks`, `Provides`).
    pub fn relations(&self, field: RelationField) -> Result<Vec<Dependency>, Error> {
        let e = self.entry();
        let span = match field {
            RelationField::Depends => e.depends,
            RelationField::PreDepends => e.pre_depends,
            RelationField::Recommends => e.recommends,
            RelationField::Conflicts => e.conflicts,
            RelationField::Breaks => e.breaks,
            RelationField::Provides => e.provides,
        };
        parse_relations(self.index.slice(span), &self.index.arch).map_err(|source| Error::Relation {
            package: self.name().to_string(),
            arch: self.index.arch.clone(),
            field: field.name(),
            source,
        })
    }

    /// Whether the architecture qualifier of `relation` admits this package, which is of
    /// the index's (native) architecture or `all`.
    pub(crate) fn satisfies_qualifier(&self, relation: &Relation) -> bool {
        use crate::relation::ArchQualifier;
        match &relation.arch {
            None | Some(ArchQualifier::Native) | Some(ArchQualifier::Any) => true,
            Some(ArchQualifier::Arch(a)) => a == self.architecture() || a == &self.index.arch,
        }
    }
}

/// The relationship fields a package can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationField {
    /// `Depends`.
    Depends,
    /// `Pre-Depends`.
    PreDepends,
    /// `Recommends`.
    Recommends,
    /// `Conflicts`.
    Conflicts,
    /// `Breaks`.
    Breaks,
    /// `Provides`.
    Provides,
}

impl RelationField {
    /// The field name.
    pub fn name(self) -> &'static str {
        match self {
            RelationField::Depends => "Depends",
            RelationField::PreDepends => "Pre-Depends",
            RelationField::Recommends => "Recommends",
            RelationField::Conflicts => "Conflicts",
            RelationField::Breaks => "Breaks",
            RelationField::Provides => "Provides",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
Package: libc6
Version: 2.31-13
Architecture: amd64
Multi-Arch: same
Priority: optional
Filename: pool/main/g/glibc/libc6_2.31-13_amd64.deb
Size: 100
SHA256: aa

Package: libc6
Version: 2.31-13
Architecture: arm64
Size: 100

Package: mawk
Version: 1.3.4
Architecture: amd64
Priority: required
Provides: awk
Size: 5

Package: python3
Version: 3.9.2-3
Architecture: amd64
Multi-Arch: allowed
Provides: python3-any (= 3.9.2-3)
Depends: libc6 (>= 2.31)
Size: 5

Package: libc6
Version: 2.28-10
Architecture: amd64
Size: 100
";

    #[test]
    fn keeps_own_arch_and_sorts_versions() {
        let idx = Index::parse("amd64", TEXT.to_string(), "test").unwrap();
        assert_eq!(idx.len(), 4);
        let libc: Vec<_> = idx.by_name("libc6").map(|p| p.version()).collect();
        assert_eq!(libc, ["2.31-13", "2.28-10"]);
        let first = idx.by_name("libc6").next().unwrap();
        assert_eq!(first.multi_arch(), MultiArch::Same);
        assert_eq!(first.filename(), "pool/main/g/glibc/libc6_2.31-13_amd64.deb");
        assert_eq!(first.field("priority"), Some("optional"));
        let awk = parse_relations("awk", "amd64").unwrap();
        assert_eq!(idx.satisfiers(&awk[0].alternatives[0]).len(), 1);
        let py = parse_relations("python3-any (>= 3.9), awk (>= 1)", "amd64").unwrap();
        assert_eq!(idx.satisfiers(&py[0].alternatives[0]).len(), 1);
        assert!(idx.satisfiers(&py[1].alternatives[0]).is_empty());
        let deps = idx.by_name("python3").next().unwrap().relations(RelationField::Depends).unwrap();
        assert_eq!(idx.satisfiers(&deps[0].alternatives[0]).len(), 1);
    }

    #[test]
    fn missing_fields_are_errors() {
        let err = Index::parse("amd64", "Package: x\nVersion: 1\n".to_string(), "P").unwrap_err();
        assert!(err.to_string().contains("Architecture"), "{err}");
    }

    fn stanza(name: &str, version: &str, depends: &str) -> String {
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\nDepends: {depends}\n\
             Filename: pool/{name}_{version}.deb\nSize: 1\nSHA256: {}\n\n",
            "ab".repeat(32)
        )
    }

    /// The suites of a Debian release with backports, as apt reads them.
    fn release() -> Index {
        let part = |suite: &str, not_automatic: bool, text: String| {
            (Origin { suite: suite.to_string(), not_automatic }, text)
        };
        Index::parse_sources(
            "amd64",
            vec![
                part(
                    "stable",
                    false,
                    stanza("libc", "1.0", "") + &stanza("app", "1.0", "libc") + &stanza("tool", "1.0", ""),
                ),
                part("stable-updates", false, stanza("tool", "1.1", "")),
                // A security build, also copied into the point release's suite above it.
                part("stable-security", false, stanza("libc", "1.0+deb1u1", "") + &stanza("tool", "1.0", "")),
                part("stable-backports", true, stanza("app", "2.0", "libc (>= 1.0+deb1u1)")),
            ],
            "Packages",
        )
        .unwrap()
    }

    #[test]
    fn a_rebuild_with_other_bytes_is_a_package_of_its_own() {
        use crate::resolve::{resolve, ResolveOptions};
        let private = stanza("libc", "1.0", "").replace(&"ab".repeat(32), &"cd".repeat(32));
        let index = Index::parse_sources(
            "amd64",
            vec![(Origin::new("stable"), stanza("libc", "1.0", "")), (Origin::new("private"), private)],
            "Packages",
        )
        .unwrap();
        assert_eq!(index.by_name("libc").count(), 2);
        let got = resolve(&index, &["libc/private".to_string()], &ResolveOptions::default()).unwrap();
        assert_eq!((got[0].suite.as_str(), got[0].sha256.as_str()), ("private", "cd".repeat(32).as_str()));
        let got = resolve(&index, &["libc".to_string()], &ResolveOptions::default()).unwrap();
        assert_eq!(got[0].suite, "stable");
    }

    #[test]
    fn one_index_knows_the_suites_of_each_version() {
        let index = release();
        let suites = |name: &str, version: &str| -> Vec<String> {
            let p = index.by_name(name).find(|p| p.version() == version).unwrap();
            p.origins().map(|o| o.suite.clone()).collect()
        };
        assert_eq!(suites("tool", "1.0"), ["stable", "stable-security"]);
        assert_eq!(index.by_name("tool").map(|p| p.version()).collect::<Vec<_>>(), ["1.1", "1.0"]);
        let libc = index.by_name("libc").next().unwrap();
        assert_eq!(
            (libc.version(), libc.suite(), libc.from_security()),
            ("1.0+deb1u1", "stable-security", true)
        );
        let backport = index.by_name("app").next().unwrap();
        assert_eq!((backport.version(), backport.automatic()), ("2.0", false));
        assert!(Origin::new("buster/updates").is_security() && !Origin::new("stable-updates").is_security());
    }

    #[test]
    fn candidates_are_apts() {
        use crate::resolve::{resolve, split_target, ResolveOptions};
        let index = release();
        let versions = |request: &[&str], opts: &ResolveOptions| -> Vec<String> {
            let request: Vec<String> = request.iter().map(|r| r.to_string()).collect();
            resolve(&index, &request, opts)
                .unwrap()
                .iter()
                .map(|d| format!("{}={} {}", d.name, d.version, d.suite))
                .collect()
        };
        let none = ResolveOptions::default();
        // The highest version across the suites, never the NotAutomatic one unasked.
        assert_eq!(
            versions(&["app", "tool"], &none),
            ["app=1.0 stable", "libc=1.0+deb1u1 stable-security", "tool=1.1 stable-updates"]
        );
        // Asked of backports by name; its dependencies as apt picks them.
        assert_eq!(
            versions(&["app/stable-backports"], &none),
            ["app=2.0 stable-backports", "libc=1.0+deb1u1 stable-security"]
        );
        // Held at a version.
        assert_eq!(versions(&["libc=1.0"], &none), ["libc=1.0 stable"]);
        // A lock's version stays, even a backport's.
        let locked =
            ResolveOptions { locked: [("app".to_string(), "2.0".to_string())].into(), ..Default::default() };
        assert_eq!(versions(&["app"], &locked)[0], "app=2.0 stable-backports");
        let err = resolve(&index, &["app/experimental".to_string()], &none).unwrap_err();
        assert!(err.to_string().contains("app/experimental"), "{err}");
        let err = resolve(&index, &["app (>= 2.0)".to_string()], &none).unwrap_err();
        let text = format!("{err} {}", err.hint().unwrap_or_default());
        assert!(text.contains("NotAutomatic") && text.contains("`app/stable-backports`"), "{text}");
        assert_eq!(split_target("app/stable-backports"), ("app", Some("stable-backports")));

        // Only in a NotAutomatic suite: still apt's candidate, as priority 1 is.
        let only = Index::parse_sources(
            "amd64",
            vec![
                (Origin::new("stable"), stanza("libc", "1.0", "")),
                (
                    Origin { suite: "stable-backports".into(), not_automatic: true },
                    stanza("newtool", "1.0", "libc"),
                ),
            ],
            "Packages",
        )
        .unwrap();
        let got = resolve(&only, &["newtool".to_string()], &none).unwrap();
        assert_eq!(got.iter().map(|d| d.suite.as_str()).collect::<Vec<_>>(), ["stable", "stable-backports"]);
        assert_eq!(split_target("python3 (>= 3.9)"), ("python3 (>= 3.9)", None));
    }
}
