//! `tree` and `why`: the dependency graph of each platform, read from the lock alone (no
//! network). Nodes are locked Python distributions and Debian packages; edges are the
//! dependencies each entry records; roots are the manifest's requirements whose markers hold
//! on the platform and its requested Debian packages.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use lockfile::{Lock, Manifest, TargetPlatform};
use pep_types::Target;
use py_resolver::RequirementSet;

use crate::Error;

/// Python or Debian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ecosystem {
    Python,
    Debian,
}

impl Ecosystem {
    pub fn name(self) -> &'static str {
        match self {
            Ecosystem::Python => "python",
            Ecosystem::Debian => "debian",
        }
    }
}

/// A package of one platform's graph.
pub type NodeId = (Ecosystem, String);

/// A locked package on one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub version: String,
    /// The file the platform installs.
    pub file: String,
    pub dependencies: Vec<NodeId>,
}

/// Where a root comes from: `requirements.in:3`, or `[debian] packages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub node: NodeId,
    pub origin: String,
}

/// One platform's graph.
#[derive(Debug, Clone)]
pub struct PlatformGraph {
    pub platform: TargetPlatform,
    pub roots: Vec<Root>,
    pub nodes: BTreeMap<NodeId, Node>,
    /// Requirement lines whose markers leave them out here: (name, origin, marker).
    pub excluded: Vec<(String, String, String)>,
}

/// The graph of every platform of the manifest (or of those named in `only`), from the lock
/// (`None`: `marqo-base.lock` beside the manifest).
pub fn graph(
    manifest_path: &Path,
    lock_path: Option<&Path>,
    only: &[String],
) -> Result<Vec<PlatformGraph>, Error> {
    let manifest = Manifest::read(manifest_path)?;
    let default_lock = manifest_path.parent().unwrap_or(Path::new("")).join("marqo-base.lock");
    let lock_path = lock_path.unwrap_or(&default_lock);
    let only: Vec<TargetPlatform> = only
        .iter()
        .map(|p| {
            p.parse::<TargetPlatform>().map_err(|e| {
                Error::user(format!("--platform {p}: {e}")).with_hint("name linux/amd64 or linux/arm64")
            })
        })
        .collect::<Result<_, _>>()?;
    if !lock_path.exists() {
        return Err(Error::user(format!("{} does not exist", lock_path.display()))
            .with_hint("run `marqo-base lock` first"));
    }
    let lock = Lock::read(lock_path)?;
    for p in &only {
        if !manifest.image.platforms.contains(p) {
            return Err(Error::user(format!("the manifest does not build {p}")).with_hint(format!(
                "name one of: {}",
                manifest.image.platforms.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let set = match &manifest.python {
        Some(python) => Some(
            RequirementSet::read_files(&python.requirements, &python.constraints)
                .map_err(|e| Error::from_error(e.to_string(), e))?,
        ),
        None => None,
    };
    let mut out = Vec::new();
    for &platform in manifest.image.platforms.iter().filter(|p| only.is_empty() || only.contains(p)) {
        let mut nodes = BTreeMap::new();
        for p in lock.python_for(platform) {
            let deps = p.dependencies.iter().flatten().map(|d| (Ecosystem::Python, d.clone())).collect();
            nodes.insert(
                (Ecosystem::Python, p.name.clone()),
                Node { version: p.version.clone(), file: p.file.name.clone(), dependencies: deps },
            );
        }
        let mut provided: BTreeMap<String, String> = BTreeMap::new();
        for d in lock.debian_for(platform) {
            let deps = d.dependencies.iter().flatten().map(|n| (Ecosystem::Debian, n.clone())).collect();
            nodes.insert(
                (Ecosystem::Debian, d.name.clone()),
                Node { version: d.version.clone(), file: d.file.name.clone(), dependencies: deps },
            );
            for v in &d.provides {
                provided.entry(v.clone()).or_insert_with(|| d.name.clone());
            }
        }
        let mut roots = Vec::new();
        let mut excluded = Vec::new();
        if let (Some(set), Some(python)) = (&set, &manifest.python) {
            let glibc = manifest.glibc().unwrap_or(crate::lock::DEFAULT_GLIBC);
            let target = Target::new(platform.arch(), &python.version, glibc)
                .map_err(|e| Error::user(format!("{}: {e}", manifest.path().display())))?;
            for entry in &set.requirements {
                let origin =
                    format!("{}:{}", manifest.input_name(Path::new(&entry.origin.file)), entry.origin.line);
                if entry.req.marker.evaluate(target.markers(), &[]) {
                    roots.push(Root { node: (Ecosystem::Python, entry.req.name.to_string()), origin });
                } else {
                    let marker = entry.req.marker.try_to_string().unwrap_or_default();
                    excluded.push((entry.req.name.to_string(), origin, marker));
                }
            }
        }
        if let Some(debian) = &manifest.debian {
            for name in &debian.packages {
                let real = if nodes.contains_key(&(Ecosystem::Debian, name.clone())) {
                    name.clone()
                } else {
                    provided.get(name).cloned().unwrap_or_else(|| name.clone())
                };
                roots.push(Root { node: (Ecosystem::Debian, real), origin: "[debian] packages".to_string() });
            }
        }
        out.push(PlatformGraph { platform, roots, nodes, excluded });
    }
    Ok(out)
}

/// Whether `id` is the package a user named `name` (Python names compared normalized, as
/// pip does: `Typing_Extensions` is `typing-extensions`).
fn is_named(id: &NodeId, name: &str) -> bool {
    match id.0 {
        Ecosystem::Debian => id.1 == name,
        Ecosystem::Python => normalize(&id.1) == normalize(name),
    }
}

/// A Python name as pip compares it (`Typing_Extensions` is `typing-extensions`); a name that
/// is no valid project name stays as given (it matches nothing locked).
fn normalize(name: &str) -> String {
    name.parse::<pep_types::PackageName>().map_or_else(|_| name.to_string(), |n| n.to_string())
}

impl PlatformGraph {
    fn label(&self, id: &NodeId) -> String {
        match self.nodes.get(id) {
            Some(node) => format!("{} {}", id.1, node.version),
            None => format!("{} (not locked)", id.1),
        }
    }

    /// Who depends on each node.
    fn dependents(&self) -> BTreeMap<NodeId, BTreeSet<NodeId>> {
        let mut out: BTreeMap<NodeId, BTreeSet<NodeId>> = BTreeMap::new();
        for (id, node) in &self.nodes {
            for dep in &node.dependencies {
                out.entry(dep.clone()).or_default().insert(id.clone());
            }
        }
        out
    }

    /// The tree below the roots (`invert`: above the packages named `NAME`, up to the roots),
    /// to `depth` levels; a subtree shown before is marked `(*)` rather than repeated.
    pub fn tree(&self, invert: Option<&str>, depth: Option<usize>) -> Result<String, Error> {
        let mut out = String::new();
        let mut shown = BTreeSet::new();
        let _ = writeln!(out, "{}", self.platform);
        match invert {
            None => {
                for eco in [Ecosystem::Python, Ecosystem::Debian] {
                    let roots: Vec<&Root> = self.roots.iter().filter(|r| r.node.0 == eco).collect();
                    if roots.is_empty() {
                        continue;
                    }
                    let _ = writeln!(out, "{}", eco.name());
                    for (i, root) in roots.iter().enumerate() {
                        let last = i + 1 == roots.len();
                        let head = format!("{} ({})", self.label(&root.node), root.origin);
                        self.branch(
                            &mut out,
                            &root.node,
                            head,
                            "",
                            last,
                            1,
                            depth,
                            &mut shown,
                            None,
                            &|id| self.nodes.get(id).map(|n| n.dependencies.clone()).unwrap_or_default(),
                        );
                    }
                }
            }
            Some(name) => {
                let targets: Vec<NodeId> =
                    self.nodes.keys().filter(|id| is_named(id, name)).cloned().collect();
                if targets.is_empty() {
                    let _ = writeln!(out, "{name} is not locked for {}", self.platform);
                    return Ok(out);
                }
                let dependents = self.dependents();
                let roots: BTreeMap<NodeId, Vec<&str>> =
                    self.roots.iter().fold(BTreeMap::new(), |mut m, r| {
                        m.entry(r.node.clone()).or_default().push(r.origin.as_str());
                        m
                    });
                for (i, id) in targets.iter().enumerate() {
                    let head = self.inverted_label(id, &roots);
                    let last = i + 1 == targets.len();
                    self.branch(&mut out, id, head, "", last, 1, depth, &mut shown, Some(&roots), &|id| {
                        dependents.get(id).map(|s| s.iter().cloned().collect()).unwrap_or_default()
                    });
                }
            }
        }
        Ok(out)
    }

    fn inverted_label(&self, id: &NodeId, roots: &BTreeMap<NodeId, Vec<&str>>) -> String {
        match roots.get(id) {
            Some(origins) => format!("{} ({})", self.label(id), origins.join(", ")),
            None => self.label(id),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn branch(
        &self,
        out: &mut String,
        id: &NodeId,
        head: String,
        prefix: &str,
        last: bool,
        level: usize,
        depth: Option<usize>,
        shown: &mut BTreeSet<NodeId>,
        roots: Option<&BTreeMap<NodeId, Vec<&str>>>,
        next: &dyn Fn(&NodeId) -> Vec<NodeId>,
    ) {
        let children = next(id);
        let repeated = !children.is_empty() && !shown.insert(id.clone());
        let _ = writeln!(
            out,
            "{prefix}{}{head}{}",
            if last { "└── " } else { "├── " },
            if repeated { " (*)" } else { "" }
        );
        if repeated || depth.is_some_and(|d| level >= d) {
            return;
        }
        let inner = format!("{prefix}{}", if last { "    " } else { "│   " });
        for (i, child) in children.iter().enumerate() {
            // Upward, a node that is a root says where it is required.
            let label = match roots {
                Some(roots) => self.inverted_label(child, roots),
                None => self.label(child),
            };
            self.branch(
                out,
                child,
                label,
                &inner,
                i + 1 == children.len(),
                level + 1,
                depth,
                shown,
                roots,
                next,
            );
        }
    }

    /// Every path from a root to a package named `name` (at most `limit`), as the packages
    /// along it, root first.
    pub fn paths_to(&self, name: &str, limit: usize) -> (Vec<(String, Vec<NodeId>)>, usize) {
        let mut found = Vec::new();
        let mut count = 0;
        for root in &self.roots {
            let mut path = vec![root.node.clone()];
            self.walk_paths(name, &mut path, &root.origin, &mut found, &mut count, limit);
        }
        (found, count)
    }

    fn walk_paths(
        &self,
        name: &str,
        path: &mut Vec<NodeId>,
        origin: &str,
        found: &mut Vec<(String, Vec<NodeId>)>,
        count: &mut usize,
        limit: usize,
    ) {
        let here = path.last().cloned().expect("a path is never empty");
        if is_named(&here, name) {
            *count += 1;
            if found.len() < limit {
                found.push((origin.to_string(), path.clone()));
            }
            return;
        }
        // Paths are simple; a count far past the limit stops the walk.
        if *count > limit * 100 {
            return;
        }
        let Some(node) = self.nodes.get(&here) else { return };
        for dep in &node.dependencies {
            if path.contains(dep) {
                continue;
            }
            path.push(dep.clone());
            self.walk_paths(name, path, origin, found, count, limit);
            path.pop();
        }
    }
}

/// What `why` found on one platform.
#[derive(Debug, Clone)]
pub struct WhyPlatform {
    pub platform: TargetPlatform,
    /// Paths from a root to the package (at most [`WHY_PATHS`]): the root's origin and the
    /// packages along it (name, version), root first.
    pub paths: Vec<(String, Vec<(NodeId, String)>)>,
    /// How many paths there are in all.
    pub count: usize,
    /// Whether the package is locked for this platform.
    pub locked: bool,
    /// Where it is absent: why, one sentence each.
    pub reasons: Vec<String>,
}

/// The most paths `why` lists per platform.
pub const WHY_PATHS: usize = 20;

/// `why NAME`: per platform, the paths from the requirements (or requested packages) to
/// NAME, or why NAME is absent there: a requirement line whose marker leaves it out, or a
/// package that needs it elsewhere but whose file here does not.
pub fn why(graphs: &[PlatformGraph], name: &str) -> Result<Vec<WhyPlatform>, Error> {
    let known = graphs.iter().any(|g| {
        g.nodes.keys().any(|id| is_named(id, name))
            || g.excluded.iter().any(|(n, _, _)| normalize(n) == normalize(name))
    });
    if !known {
        return Err(Error::user(format!(
            "`{name}` is not locked for any platform, and no requirement names it"
        ))
        .with_hint("check the spelling; `marqo-base tree` lists what is locked"));
    }
    let mut out = Vec::new();
    for g in graphs {
        let (paths, count) = g.paths_to(name, WHY_PATHS);
        let paths = paths
            .into_iter()
            .map(|(origin, path)| {
                let steps = path
                    .into_iter()
                    .map(|id| {
                        let version = g.nodes.get(&id).map(|n| n.version.clone()).unwrap_or_default();
                        (id, version)
                    })
                    .collect();
                (origin, steps)
            })
            .collect();
        let locked = g.nodes.keys().any(|id| is_named(id, name));
        let mut reasons = Vec::new();
        if !locked {
            for (excluded, origin, marker) in &g.excluded {
                if normalize(excluded) == normalize(name) {
                    reasons.push(format!(
                        "{origin} requires it only where `{marker}`, which {} is not",
                        g.platform
                    ));
                }
            }
            for other in graphs.iter().filter(|o| o.platform != g.platform) {
                for (id, node) in &other.nodes {
                    if !node.dependencies.iter().any(|d| is_named(d, name)) {
                        continue;
                    }
                    reasons.push(match g.nodes.get(id) {
                        Some(here) => format!(
                            "{} {} needs it on {} ({}), but its file here, {}, does not require it",
                            id.1, here.version, other.platform, node.file, here.file
                        ),
                        None => format!(
                            "{} needs it on {}, and is itself absent here",
                            other.label(id),
                            other.platform
                        ),
                    });
                }
            }
            if reasons.is_empty() {
                reasons.push("nothing here requires it".to_string());
            }
        }
        out.push(WhyPlatform { platform: g.platform, paths, count, locked, reasons });
    }
    Ok(out)
}

/// `why`'s report for people.
pub fn render_why(report: &[WhyPlatform]) -> String {
    let mut out = String::new();
    for w in report {
        if w.count > 0 {
            let _ =
                writeln!(out, "{}: {} {}", w.platform, w.count, if w.count == 1 { "path" } else { "paths" });
            for (origin, path) in &w.paths {
                let steps: Vec<String> = path.iter().map(|((_, n), v)| format!("{n} {v}")).collect();
                let _ = writeln!(out, "  {origin}: {}", steps.join(" -> "));
            }
            if w.count > w.paths.len() {
                let _ = writeln!(out, "  and {} more", w.count - w.paths.len());
            }
        } else if w.locked {
            let _ = writeln!(out, "{}: locked, but no requirement leads to it", w.platform);
        } else {
            let _ = writeln!(out, "{}: absent", w.platform);
            for reason in &w.reasons {
                let _ = writeln!(out, "  {reason}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_as_pip_compares_them_and_odd_ones_do_not_panic() {
        assert_eq!(normalize("Typing_Extensions"), "typing-extensions");
        assert_eq!(normalize("zope.interface"), "zope-interface");
        for odd in ["foo-", "foo.", "_x", "é", "a..b", "", "-", "x\u{301}"] {
            let _ = normalize(odd);
        }
    }
}
