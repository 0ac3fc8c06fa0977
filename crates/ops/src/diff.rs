//! `marqo-base diff OLD.lock [NEW.lock]`: what changed between two locks of one manifest, per
//! platform: packages added, removed, and moved to another version (or file), and which of the
//! image's layers that changes (a layer changes when its inputs do: the layer plan of each
//! lock is made as `build` makes it, and layers are compared by their cache keys' inputs).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use lockfile::{Lock, Manifest, TargetPlatform};

use crate::plan::{BuildPlan, Bytecode, LayerSource, PlanOptions};
use crate::Error;

/// One package's change on one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added {
        version: String,
    },
    Removed {
        version: String,
    },
    /// Another version, or the same version from another file.
    Changed {
        from: String,
        to: String,
    },
}

/// What changed on one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformDiff {
    pub platform: TargetPlatform,
    /// (ecosystem, name) -> change, sorted.
    pub packages: BTreeMap<(&'static str, String), Change>,
    /// The new plan's layers whose inputs no layer of the old plan had: their history entries.
    pub changed_layers: Vec<String>,
    pub layers: usize,
}

/// Compares `old` with `new` (default: the manifest's lock) for every platform of the
/// manifest.
pub fn diff(manifest_path: &Path, old: &Path, new: Option<&Path>) -> Result<Vec<PlatformDiff>, Error> {
    let manifest = Manifest::read(manifest_path)?;
    let default_new = manifest_path.parent().unwrap_or(Path::new("")).join("marqo-base.lock");
    let new = new.unwrap_or(&default_new);
    let read = |path: &Path| {
        if !path.exists() {
            return Err(Error::user(format!("{} does not exist", path.display())).with_hint(
                "name two lock files, e.g. one saved with `git show HEAD:marqo-base.lock > old.lock`",
            ));
        }
        Lock::read(path).map_err(Error::from)
    };
    let (old_lock, new_lock) = (read(old)?, read(new)?);
    let inputs = crate::build::plan_inputs(&manifest)?;
    // The same settings for both plans: only what the locks change shows.
    let bytecode = Bytecode { interpreter: Some("diff".to_string()), summary: String::new() };
    let options = PlanOptions {
        platforms: &[],
        requested: &inputs.requested,
        mtime: 0,
        build_constraints: &inputs.build_constraints,
        compression: image::Compression::Gzip,
        bytecode: &bytecode,
        apt: "",
    };
    let main_suite = manifest.debian.as_ref().map_or(String::new(), |d| d.suite.clone());
    let old_plan = BuildPlan::new(&manifest, &old_lock, &options)?;
    let new_plan = BuildPlan::new(&manifest, &new_lock, &options)?;
    let mut out = Vec::new();
    for new_p in &new_plan.platforms {
        let platform = new_p.platform;
        let old_inputs: HashSet<&str> = old_plan
            .platforms
            .iter()
            .filter(|p| p.platform == platform)
            .flat_map(|p| p.layers.iter().filter_map(|l| l.inputs.as_deref()))
            .collect();
        let changed_layers = new_p
            .layers
            .iter()
            .filter(|l| l.inputs.as_deref().is_none_or(|i| !old_inputs.contains(i)))
            .map(|l| match &l.source {
                LayerSource::File(_) if l.inputs.is_none() => {
                    format!("{} (a local file: always rebuilt)", l.created_by)
                }
                _ => l.created_by.clone(),
            })
            .collect();
        out.push(PlatformDiff {
            platform,
            packages: package_changes(&old_lock, &new_lock, platform, &main_suite),
            changed_layers,
            layers: new_p.layers.len(),
        });
    }
    Ok(out)
}

/// A package's (version, file) in the old and the new lock.
type Sides = (Option<(String, String)>, Option<(String, String)>);

/// What the diff shows of a Debian package's version: with its suite (a lock that names
/// none took it from `main_suite`), so a move to the security suite shows.
fn deb_version(d: &lockfile::LockedDebian, main_suite: &str) -> String {
    format!("{} ({})", d.version, d.suite.as_deref().unwrap_or(main_suite))
}

fn package_changes(
    old: &Lock,
    new: &Lock,
    platform: TargetPlatform,
    main_suite: &str,
) -> BTreeMap<(&'static str, String), Change> {
    let mut versions: BTreeMap<(&'static str, String), Sides> = BTreeMap::new();
    for (slot, lock) in [(0, old), (1, new)] {
        for p in lock.python_for(platform) {
            let e = versions.entry(("python", p.name.clone())).or_default();
            let v = Some((p.version.clone(), p.file.name.clone()));
            if slot == 0 {
                e.0 = v
            } else {
                e.1 = v
            }
        }
        for d in lock.debian_for(platform) {
            let e = versions.entry(("debian", d.name.clone())).or_default();
            let v = Some((deb_version(d, main_suite), d.file.name.clone()));
            if slot == 0 {
                e.0 = v
            } else {
                e.1 = v
            }
        }
    }
    versions
        .into_iter()
        .filter_map(|(key, pair)| {
            let change = match pair {
                (None, Some((v, _))) => Change::Added { version: v },
                (Some((v, _)), None) => Change::Removed { version: v },
                (Some((a, _)), Some((b, _))) if a != b => Change::Changed { from: a, to: b },
                (Some((a, fa)), Some((_, fb))) if fa != fb => {
                    Change::Changed { from: format!("{a} ({fa})"), to: format!("{a} ({fb})") }
                }
                _ => return None,
            };
            Some((key, change))
        })
        .collect()
}

/// The diff for people.
pub fn render(diffs: &[PlatformDiff]) -> String {
    let mut out = String::new();
    for d in diffs {
        if d.packages.is_empty() && d.changed_layers.is_empty() {
            let _ = writeln!(out, "{}: no change", d.platform);
            continue;
        }
        let _ = writeln!(out, "{}:", d.platform);
        for ((eco, name), change) in &d.packages {
            let _ = match change {
                Change::Added { version } => writeln!(out, "  + {eco} {name} {version}"),
                Change::Removed { version } => writeln!(out, "  - {eco} {name} {version}"),
                Change::Changed { from, to } => writeln!(out, "  ~ {eco} {name} {from} -> {to}"),
            };
        }
        let _ = writeln!(out, "  layers: {} of {} change", d.changed_layers.len(), d.layers);
        for layer in &d.changed_layers {
            let _ = writeln!(out, "    {layer}");
        }
    }
    out
}
