//! The [`Sdist`] builder: `.tar.gz` source distributions built by an in-tree PEP 517 backend.

use std::collections::BTreeMap;

use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use serde_json::json;

use crate::index::Index;
use crate::metadata::Common;
use crate::util::dist_name;

/// Source of the in-tree PEP 517 backend (`backend.py`, standard library only) that every
/// [`Sdist`] carries unless replaced with [`Sdist::backend`].
///
/// It implements `get_requires_for_build_wheel`, `prepare_metadata_for_build_wheel`,
/// `build_wheel`, `get_requires_for_build_sdist` and `build_sdist`, reading what to do from
/// `backend.json` in the sdist root. Each hook imports every `[build-system] requires` name
/// (with `-` as `_`), so a build fails unless the frontend installed them: publish a
/// `helper 2.0` wheel whose `helper/__init__.py` raises to test build constraints. With
/// `TEST_BACKEND_LOG=<path>` in the environment each hook appends `<hook> <name> <version>`
/// (and ` <pid>` of the interpreter with `TEST_BACKEND_LOG_PID=1`).
pub const BACKEND_SRC: &str = include_str!("backend.py");

/// Fixed mtime of sdist members (2020-01-01T00:00:00Z).
const SDIST_MTIME: u64 = 1_577_836_800;

/// A source distribution to publish.
///
/// ```no_run
/// # use test_support::{Index, Sdist};
/// let index = Index::new();
/// Sdist::new("clip-marqo", "1.0.2")
///     .requires("torch")
///     .dynamic("Requires-Dist")
///     .build_requires("helper")
///     .build_requires_dist("ftfy")
///     .publish(&index);
/// ```
///
/// The archive holds `<name>-<version>/` with `PKG-INFO` (metadata 2.2, dynamic fields left
/// out and listed as `Dynamic:`), `pyproject.toml` (`build-backend = "backend"`,
/// `backend-path = ["."]`, no `[project]` table), `backend.py`, `backend.json` and the given
/// files. Bytes are deterministic (sorted members, fixed mtime, owner and gzip header).
#[derive(Debug, Clone)]
#[must_use = "an sdist does nothing until published"]
pub struct Sdist {
    common: Common,
    metadata_version: String,
    dynamic: Vec<String>,
    backend: String,
    build_requires: Vec<String>,
    hook_requires: Vec<String>,
    hook_modules: Vec<String>,
    build_requires_dist: Vec<String>,
    files: Vec<(String, Vec<u8>)>,
    entry_points: BTreeMap<String, Vec<(String, String)>>,
    /// An installed backend module (no `backend-path`) instead of the in-tree one.
    installed_backend: Option<String>,
}

impl Sdist {
    /// An sdist with static metadata 2.2, no dependencies and the default backend.
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            common: Common::new(name, version),
            metadata_version: "2.2".to_string(),
            dynamic: Vec::new(),
            backend: BACKEND_SRC.to_string(),
            build_requires: Vec::new(),
            hook_requires: Vec::new(),
            hook_modules: Vec::new(),
            build_requires_dist: Vec::new(),
            files: Vec::new(),
            entry_points: BTreeMap::new(),
            installed_backend: None,
        }
    }

    /// Adds a `Requires-Dist`, in `PKG-INFO` (unless dynamic) and in the built metadata.
    pub fn requires(mut self, requirement: &str) -> Self {
        self.common.requires.push(requirement.to_string());
        self
    }

    /// Sets `Requires-Python`, also shown in the index pages.
    pub fn requires_python(mut self, specifiers: &str) -> Self {
        self.common.requires_python = Some(specifiers.to_string());
        self
    }

    /// Adds `Provides-Extra: <name>` and its requirements, as [`crate::Wheel::extra`].
    pub fn extra(mut self, name: &str, requirements: &[&str]) -> Self {
        let reqs = requirements.iter().map(|r| r.to_string()).collect();
        self.common.extras.push((name.to_string(), reqs));
        self
    }

    /// Marks a core metadata field (e.g. `Requires-Dist`) as `Dynamic` in `PKG-INFO` and
    /// leaves it out there, so only a PEP 517 build tells its value.
    pub fn dynamic(mut self, field: &str) -> Self {
        self.dynamic.push(field.to_string());
        self
    }

    /// Sets `Metadata-Version` of `PKG-INFO` (default `2.2`; below 2.2 nothing in it is
    /// trustworthy, so a resolver must build).
    pub fn metadata_version(mut self, version: &str) -> Self {
        self.metadata_version = version.to_string();
        self
    }

    /// Replaces the source of the in-tree `backend.py` (default [`BACKEND_SRC`]).
    pub fn backend(mut self, source: &str) -> Self {
        self.backend = source.to_string();
        self
    }

    /// Uses the backend `module` (or `module:object`) installed from a build requirement (a
    /// wheel holding [`BACKEND_SRC`] as `MODULE.py`, required by name) instead of the in-tree
    /// one: no `backend-path`, so a frontend loads it from the build venv.
    pub fn installed_backend(mut self, module: &str) -> Self {
        self.installed_backend = Some(module.to_string());
        // `testback:legacy` is an object of the `testback` distribution's module, and
        // `setuptools.build_meta` a module of `setuptools`.
        let distribution = module.split([':', '.']).next().unwrap_or(module);
        self.build_requires.push(distribution.replace('_', "-"));
        self
    }

    /// Adds a `[build-system] requires` entry; the default backend imports it in every hook.
    pub fn build_requires(mut self, requirement: &str) -> Self {
        self.build_requires.push(requirement.to_string());
        self
    }

    /// Adds a requirement that `get_requires_for_build_wheel` returns; the metadata and wheel
    /// hooks import it.
    pub fn hook_build_requires(mut self, requirement: &str) -> Self {
        self.hook_requires.push(requirement.to_string());
        self
    }

    /// Makes the metadata and wheel hooks import `module` (a file of the sdist, say), as a
    /// backend runs the project's own code.
    pub fn hook_imports(mut self, module: &str) -> Self {
        self.hook_modules.push(module.to_string());
        self
    }

    /// Adds a `Requires-Dist` that only the built metadata has (not `PKG-INFO`): make
    /// `Requires-Dist` [`dynamic`](Self::dynamic) too, or `PKG-INFO` lies.
    pub fn build_requires_dist(mut self, requirement: &str) -> Self {
        self.build_requires_dist.push(requirement.to_string());
        self
    }

    /// Adds a file at `path` in the sdist root; the backend copies it into built wheels.
    pub fn file(mut self, path: &str, contents: impl AsRef<[u8]>) -> Self {
        self.files.push((path.to_string(), contents.as_ref().to_vec()));
        self
    }

    /// Adds an entry point to wheels built from this sdist.
    pub fn entry_point(mut self, group: &str, name: &str, object: &str) -> Self {
        self.entry_points.entry(group.to_string()).or_default().push((name.to_string(), object.to_string()));
        self
    }

    /// Sets the upload time shown in JSON pages.
    pub fn upload_time(mut self, time: &str) -> Self {
        self.common.upload_time = Some(time.to_string());
        self
    }

    /// Marks the file yanked (PEP 592); an empty reason is yanked without one.
    pub fn yanked(mut self, reason: &str) -> Self {
        self.common.yanked = Some(reason.to_string());
        self
    }

    /// The sdist file name, e.g. `clip_marqo-1.0.2.tar.gz`.
    pub fn filename(&self) -> String {
        format!("{}.tar.gz", self.stem())
    }

    /// The `PKG-INFO` text.
    pub fn pkg_info(&self) -> String {
        self.common.render(&self.metadata_version, &self.dynamic, &[])
    }

    /// The `METADATA` text the backend writes when building.
    pub fn built_metadata(&self) -> String {
        self.common.render("2.1", &[], &self.build_requires_dist)
    }

    /// Builds the `.tar.gz` bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut members: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for (path, data) in &self.files {
            members.insert(path.clone(), data.clone());
        }
        members.insert("PKG-INFO".into(), self.pkg_info().into_bytes());
        members.insert("pyproject.toml".into(), self.pyproject().into_bytes());
        members.insert("backend.py".into(), self.backend.clone().into_bytes());
        members.insert("backend.json".into(), self.backend_config().into_bytes());
        write_tar_gz(&self.stem(), &members)
    }

    /// Builds the sdist, writes it to `index` and returns its file name.
    pub fn publish(self, index: &Index) -> String {
        let filename = self.filename();
        index.add_file(&filename, &self.build(), &self.common, None);
        filename
    }

    fn stem(&self) -> String {
        format!("{}-{}", dist_name(&self.common.name), self.common.version)
    }

    fn pyproject(&self) -> String {
        let requires: Vec<String> =
            self.build_requires.iter().map(|r| serde_json::to_string(r).expect("string to JSON")).collect();
        match &self.installed_backend {
            Some(module) => {
                format!(
                    "[build-system]\nrequires = [{}]\nbuild-backend = \"{module}\"\n",
                    requires.join(", ")
                )
            }
            None => format!(
                "[build-system]\nrequires = [{}]\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n",
                requires.join(", ")
            ),
        }
    }

    fn backend_config(&self) -> String {
        let mut entry_points = String::new();
        for (group, entries) in &self.entry_points {
            entry_points.push_str(&format!("[{group}]\n"));
            for (name, object) in entries {
                entry_points.push_str(&format!("{name} = {object}\n"));
            }
            entry_points.push('\n');
        }
        let modules = |reqs: &[String]| reqs.iter().map(|r| module_name(r)).collect::<Vec<_>>();
        let config = json!({
            "name": self.common.name,
            "version": self.common.version,
            "dist": dist_name(&self.common.name),
            "metadata": self.built_metadata(),
            "files": self.files.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            "entry_points": entry_points,
            "imports": modules(&self.build_requires),
            "hook_requires": self.hook_requires,
            "hook_imports": modules(&self.hook_requires).into_iter().chain(self.hook_modules.iter().cloned()).collect::<Vec<_>>(),
        });
        serde_json::to_string_pretty(&config).expect("backend config to JSON") + "\n"
    }
}

/// The module a build requirement is imported as: its name, with `-` as `_`.
fn module_name(requirement: &str) -> String {
    requirement
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .map(|c| if c == '-' { '_' } else { c })
        .collect()
}

/// Writes `members` under `<stem>/`, with directory entries, fixed mtime and root owner.
fn write_tar_gz(stem: &str, members: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut dirs: BTreeMap<String, ()> = BTreeMap::new();
    dirs.insert(String::new(), ());
    for path in members.keys() {
        let mut prefix = String::new();
        for part in path.split('/').rev().skip(1).collect::<Vec<_>>().into_iter().rev() {
            prefix.push_str(part);
            prefix.push('/');
            dirs.insert(prefix.clone(), ());
        }
    }
    let gz: GzEncoder<Vec<u8>> = GzBuilder::new().mtime(0).write(Vec::new(), Compression::default());
    let mut tar = tar::Builder::new(gz);
    for dir in dirs.keys() {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_mtime(SDIST_MTIME);
        header.set_size(0);
        tar.append_data(&mut header, format!("{stem}/{dir}"), std::io::empty()).expect("append tar dir");
    }
    for (path, data) in members {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_mtime(SDIST_MTIME);
        header.set_size(data.len() as u64);
        tar.append_data(&mut header, format!("{stem}/{path}"), data.as_slice()).expect("append tar member");
    }
    tar.into_inner().expect("finish tar").finish().expect("finish gzip")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_from_requirements() {
        assert_eq!(module_name("helper>=1"), "helper");
        assert_eq!(module_name("my-helper ; python_version > '3'"), "my_helper");
    }

    #[test]
    fn dynamic_requires_are_only_in_built_metadata() {
        let s = Sdist::new("clip-marqo", "1.0.2")
            .requires("torch")
            .dynamic("Requires-Dist")
            .build_requires_dist("ftfy");
        assert_eq!(s.filename(), "clip_marqo-1.0.2.tar.gz");
        assert!(!s.pkg_info().contains("torch"));
        assert!(s.pkg_info().contains("Dynamic: Requires-Dist"));
        assert!(s.built_metadata().contains("Requires-Dist: torch\nRequires-Dist: ftfy\n"));
        assert_eq!(s.build(), s.build());
    }
}
