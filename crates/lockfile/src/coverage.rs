//! Whether a lock holds what its manifest asks for, read from the lock alone: per platform,
//! every Python requirement and, through the dependencies each entry records, its closure;
//! every requested Debian package and its dependencies; every `[[file]]` with the source,
//! sha256 and size the manifest and its files give. The input fingerprint says the inputs are
//! the ones the lock was made from; this says the lock's entries are still all there (a lock
//! edited by hand is caught here).

use std::collections::{BTreeMap, BTreeSet};

use crate::inputs::Inputs;
use crate::lock::{Lock, LockedSource};
use crate::manifest::{FileSource, Manifest};
use crate::platform::TargetPlatform;

/// A Python requirement of one platform: its normalized name and where it is written
/// (`requirements.in:3`). Only requirements whose markers hold on the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonRoot {
    /// The normalized project name.
    pub name: String,
    /// `file:line` of the requirement.
    pub origin: String,
}

impl Lock {
    /// What the lock misses of `manifest`, one reason per gap naming the entry and platform;
    /// empty when it covers everything. `now` are the inputs as read now (for the digests and
    /// sizes of local `[[file]]` sources); `python_roots` the requirements per platform.
    pub fn coverage(
        &self,
        manifest: &Manifest,
        now: &Inputs,
        python_roots: &BTreeMap<TargetPlatform, Vec<PythonRoot>>,
    ) -> Vec<String> {
        let mut reasons = Vec::new();
        for &platform in &manifest.image.platforms {
            if manifest.python.is_some() {
                self.python_coverage(
                    platform,
                    python_roots.get(&platform).map_or(&[][..], Vec::as_slice),
                    &mut reasons,
                );
            }
            if let Some(debian) = &manifest.debian {
                self.debian_coverage(platform, debian, &mut reasons);
            }
        }
        self.file_coverage(manifest, now, &mut reasons);
        reasons
    }

    fn python_coverage(&self, platform: TargetPlatform, roots: &[PythonRoot], reasons: &mut Vec<String>) {
        let locked: BTreeMap<&str, &crate::LockedPython> =
            self.python_for(platform).map(|p| (p.name.as_str(), p)).collect();
        for root in roots {
            if !locked.contains_key(root.name.as_str()) {
                reasons.push(format!("`{}` ({}) is not locked for {platform}", root.name, root.origin));
            }
        }
        let entries =
            locked.values().map(|e| (e.name.as_str(), e.version.to_string(), e.dependencies.as_deref()));
        dependency_reasons("python", platform, entries, |name| locked.contains_key(name), reasons);
    }

    fn debian_coverage(&self, platform: TargetPlatform, debian: &crate::Debian, reasons: &mut Vec<String>) {
        let requests = &debian.packages;
        let locked: BTreeMap<&str, &crate::LockedDebian> =
            self.debian_for(platform).map(|d| (d.name.as_str(), d)).collect();
        // Each .deb comes from a suite the manifest still reads.
        let suites = debian.suite_names();
        for d in locked.values() {
            if let Some(suite) = d.suite.as_deref().filter(|s| !suites.iter().any(|x| x == s)) {
                reasons.push(format!(
                    "[[debian]] `{}` {} is locked from suite `{suite}`, which [debian] no longer reads ({platform})",
                    d.name, d.version
                ));
            }
        }
        let provided: BTreeSet<&str> =
            locked.values().flat_map(|d| d.provides.iter().map(String::as_str)).collect();
        for request in requests {
            let name = crate::Debian::package_name(request);
            let held = request.split_once('=').map(|(_, v)| v);
            let target = request.split_once('/').map(|(_, s)| s);
            match locked.get(name) {
                Some(entry) if held.is_some_and(|v| v != entry.version) => reasons.push(format!(
                    "`{request}` ([debian] packages) is locked at {} for {platform}",
                    entry.version
                )),
                Some(entry) if target.is_some() && entry.suite.as_deref() != target => reasons.push(format!(
                    "`{request}` ([debian] packages) is locked from `{}` for {platform}",
                    entry.suite.as_deref().unwrap_or(&debian.suite)
                )),
                Some(_) => {}
                None if provided.contains(name) => {}
                None => reasons.push(format!("`{request}` ([debian] packages) is not locked for {platform}")),
            }
        }
        let entries =
            locked.values().map(|e| (e.name.as_str(), e.version.to_string(), e.dependencies.as_deref()));
        dependency_reasons("debian", platform, entries, |name| locked.contains_key(name), reasons);
    }

    fn file_coverage(&self, manifest: &Manifest, now: &Inputs, reasons: &mut Vec<String>) {
        for entry in &manifest.files {
            let to = &entry.to;
            let Some(locked) = self.files.iter().find(|f| &f.to == to) else {
                reasons.push(format!("[[file]] to `{to}` is not locked"));
                continue;
            };
            match (&entry.source, &locked.source) {
                (FileSource::Url { url, sha256 }, LockedSource::Url(locked_url)) => {
                    // The lock keeps the URL without credentials (a lock made before may have
                    // them): the place is compared, and shown, without them.
                    let (url, locked_url) =
                        (redact::strip_credentials(url), redact::strip_credentials(locked_url));
                    if url != locked_url {
                        reasons.push(format!(
                            "[[file]] to `{to}`: the lock's url `{locked_url}` is not the manifest's `{url}`"
                        ));
                    }
                    if locked.sha256.hex() != sha256 {
                        reasons.push(format!(
                            "[[file]] to `{to}`: the lock's sha256 {} is not the manifest's {sha256}",
                            locked.sha256.hex()
                        ));
                    }
                }
                (FileSource::Local(src), LockedSource::Src(locked_src)) => {
                    let name = manifest.input_name(src);
                    if &name != locked_src {
                        reasons.push(format!(
                            "[[file]] to `{to}`: the lock's src `{locked_src}` is not the manifest's `{name}`"
                        ));
                        continue;
                    }
                    if now.files.get(&name).is_some_and(|d| d != locked.sha256.as_str()) {
                        reasons.push(format!(
                            "[[file]] to `{to}`: the lock's sha256 {} is not that of `{name}`",
                            locked.sha256.hex()
                        ));
                    }
                    if let Some(&size) = now.local_sizes.get(&name) {
                        if size != locked.size {
                            reasons.push(format!(
                                "[[file]] to `{to}`: the lock's size {} is not that of `{name}` ({size} bytes)",
                                locked.size
                            ));
                        }
                    }
                }
                (_, LockedSource::Url(_)) => reasons
                    .push(format!("[[file]] to `{to}` is locked as a `url`, but the manifest gives `src`")),
                (_, LockedSource::Src(_)) => reasons
                    .push(format!("[[file]] to `{to}` is locked as a `src`, but the manifest gives `url`")),
            }
        }
        for locked in &self.files {
            if !manifest.files.iter().any(|f| f.to == locked.to) {
                reasons.push(format!("[[file]] to `{}` is locked but not in the manifest", locked.to));
            }
        }
    }
}

/// Per platform, the dependencies that `entries` (name, version, recorded dependencies) name
/// but `is_locked` does not know, each with the entries that need it, and the entries that
/// record no dependencies at all (a lock of an older marqo-base).
fn dependency_reasons<'a>(
    kind: &str,
    platform: TargetPlatform,
    entries: impl Iterator<Item = (&'a str, String, Option<&'a [String]>)>,
    is_locked: impl Fn(&str) -> bool,
    reasons: &mut Vec<String>,
) {
    let mut unrecorded = Vec::new();
    let mut missing: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, version, dependencies) in entries {
        let Some(dependencies) = dependencies else {
            unrecorded.push(name);
            continue;
        };
        for dependency in dependencies.iter().filter(|d| !is_locked(d.as_str())) {
            missing.entry(dependency).or_default().push(format!("`{name}` {version}"));
        }
    }
    reasons.extend(missing.into_iter().map(|(name, needers)| missing_reason(kind, name, &needers, platform)));
    if !unrecorded.is_empty() {
        reasons.push(unrecorded_reason(kind, &unrecorded, platform));
    }
}

/// ``dep`, a dependency of [[python]] `app` 1.0 (and 2 more), is not locked for linux/arm64`.
fn missing_reason(kind: &str, name: &str, needers: &[String], platform: TargetPlatform) -> String {
    let more = match needers.len() {
        0 | 1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    let first = needers.first().map_or("", String::as_str);
    format!("`{name}`, a dependency of [[{kind}]] {first}{more}, is not locked for {platform}")
}

fn unrecorded_reason(kind: &str, names: &[&str], platform: TargetPlatform) -> String {
    let shown: Vec<String> = names.iter().take(3).map(|n| format!("`{n}`")).collect();
    let more = if names.len() > 3 { format!(" and {} more", names.len() - 3) } else { String::new() };
    format!(
        "[[{kind}]] {}{more} for {platform} record no dependencies (the lock was written by an older \
         marqo-base)",
        shown.join(", ")
    )
}
