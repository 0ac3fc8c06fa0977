//! The [`Wheel`] builder: real, deterministic `.whl` files.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::index::Index;
use crate::metadata::Common;
use crate::util::{dist_name, pseudo_random, record_line};

/// A wheel to publish, in the style of cargo's `Package::new(..).publish()`.
///
/// ```no_run
/// # use test_support::{Index, Wheel};
/// let index = Index::new();
/// Wheel::new("foo", "1.0")
///     .requires("bar>=1")
///     .extra("cli", &["click>=8"])
///     .tag("cp39-cp39-manylinux_2_28_aarch64")
///     .file("foo/__init__.py", "VALUE = 1\n")
///     .publish(&index);
/// ```
///
/// The archive is a deflated zip with fixed timestamps and modes, so the same builder always
/// gives the same bytes. Package files come first, then the `.dist-info` files, `RECORD` last.
#[derive(Debug, Clone)]
#[must_use = "a wheel does nothing until published"]
pub struct Wheel {
    common: Common,
    tag: String,
    build_tag: Option<String>,
    files: Vec<(String, Vec<u8>)>,
    entry_points: BTreeMap<String, Vec<(String, String)>>,
}

impl Wheel {
    /// A `py3-none-any` wheel with no dependencies and no files besides its `.dist-info`.
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            common: Common::new(name, version),
            tag: "py3-none-any".to_string(),
            build_tag: None,
            files: Vec::new(),
            entry_points: BTreeMap::new(),
        }
    }

    /// Adds a `Requires-Dist` (a PEP 508 requirement, markers allowed).
    pub fn requires(mut self, requirement: &str) -> Self {
        self.common.requires.push(requirement.to_string());
        self
    }

    /// Adds a core metadata field (`License`, `Classifier`, `License-Expression`).
    pub fn field(mut self, name: &str, value: &str) -> Self {
        self.common.fields.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets `Requires-Python`, also shown in the index pages.
    pub fn requires_python(mut self, specifiers: &str) -> Self {
        self.common.requires_python = Some(specifiers.to_string());
        self
    }

    /// Adds `Provides-Extra: <name>` and each requirement with `extra == "<name>"` appended
    /// to its marker.
    pub fn extra(mut self, name: &str, requirements: &[&str]) -> Self {
        let reqs = requirements.iter().map(|r| r.to_string()).collect();
        self.common.extras.push((name.to_string(), reqs));
        self
    }

    /// Sets the compressed tag set (`{python}-{abi}-{platform}`, parts may hold `.`-separated
    /// alternatives); default `py3-none-any`. `Root-Is-Purelib` is true iff the platform is `any`.
    pub fn tag(mut self, tag: &str) -> Self {
        assert_eq!(tag.split('-').count(), 3, "a wheel tag has three parts: {tag}");
        self.tag = tag.to_string();
        self
    }

    /// Sets the build tag (must start with a digit), which goes in the file name and `WHEEL`.
    pub fn build_tag(mut self, build: &str) -> Self {
        self.build_tag = Some(build.to_string());
        self
    }

    /// Adds a file at `path` inside the wheel.
    pub fn file(mut self, path: &str, contents: impl AsRef<[u8]>) -> Self {
        self.files.push((path.to_string(), contents.as_ref().to_vec()));
        self
    }

    /// Adds `size` bytes of incompressible, deterministic data at `path`, so the zip central
    /// directory ends up far from the start and the file is worth fetching by ranges.
    pub fn large_file(self, path: &str, size: usize) -> Self {
        let data = pseudo_random(path, size);
        self.file(path, data)
    }

    /// Adds an entry point, e.g. `("console_scripts", "foo", "foo:main")`.
    pub fn entry_point(mut self, group: &str, name: &str, object: &str) -> Self {
        self.entry_points.entry(group.to_string()).or_default().push((name.to_string(), object.to_string()));
        self
    }

    /// Sets the upload time shown in JSON pages (ISO 8601, e.g. `2024-01-01T00:00:00Z`;
    /// default [`crate::DEFAULT_UPLOAD_TIME`]).
    pub fn upload_time(mut self, time: &str) -> Self {
        self.common.upload_time = Some(time.to_string());
        self
    }

    /// Marks the file yanked (PEP 592); an empty reason is yanked without one.
    pub fn yanked(mut self, reason: &str) -> Self {
        self.common.yanked = Some(reason.to_string());
        self
    }

    /// The wheel file name, e.g. `foo_bar-1.0-1-py3-none-any.whl`.
    pub fn filename(&self) -> String {
        let build = self.build_tag.as_ref().map(|b| format!("-{b}")).unwrap_or_default();
        format!("{}-{}{build}-{}.whl", dist_name(&self.common.name), self.common.version, self.tag)
    }

    /// The `METADATA` text, as stored in the wheel and served for PEP 658.
    pub fn metadata(&self) -> String {
        self.common.render("2.1", &[], &[])
    }

    /// Builds the wheel bytes.
    pub fn build(&self) -> Vec<u8> {
        let dist_info = format!("{}-{}.dist-info", dist_name(&self.common.name), self.common.version);
        let mut entries = self.files.clone();
        entries.push((format!("{dist_info}/METADATA"), self.metadata().into_bytes()));
        entries.push((format!("{dist_info}/WHEEL"), self.wheel_file().into_bytes()));
        if !self.entry_points.is_empty() {
            entries.push((format!("{dist_info}/entry_points.txt"), self.entry_points_txt().into_bytes()));
        }
        let mut record: String = entries.iter().map(|(p, d)| record_line(p, d)).collect();
        record.push_str(&format!("{dist_info}/RECORD,,\n"));
        entries.push((format!("{dist_info}/RECORD"), record.into_bytes()));
        write_zip(&entries)
    }

    /// Builds the wheel, writes it to `index` and returns its file name.
    pub fn publish(self, index: &Index) -> String {
        let filename = self.filename();
        let metadata = self.metadata().into_bytes();
        index.add_file(&filename, &self.build(), &self.common, Some(metadata));
        filename
    }

    fn wheel_file(&self) -> String {
        let mut parts = self.tag.split('-');
        let (py, abi, plat) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let purelib = plat == "any";
        let mut out = format!("Wheel-Version: 1.0\nGenerator: test-support\nRoot-Is-Purelib: {purelib}\n");
        if let Some(build) = &self.build_tag {
            out.push_str(&format!("Build: {build}\n"));
        }
        for p in py.split('.') {
            for a in abi.split('.') {
                for pl in plat.split('.') {
                    out.push_str(&format!("Tag: {p}-{a}-{pl}\n"));
                }
            }
        }
        out
    }

    fn entry_points_txt(&self) -> String {
        let mut out = String::new();
        for (group, entries) in &self.entry_points {
            out.push_str(&format!("[{group}]\n"));
            for (name, object) in entries {
                out.push_str(&format!("{name} = {object}\n"));
            }
            out.push('\n');
        }
        out
    }
}

/// Writes a deflated zip with fixed timestamps (1980-01-01) and mode 0644.
pub(crate) fn write_zip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (path, data) in entries {
        zip.start_file(path.as_str(), options).expect("start zip entry");
        zip.write_all(data).expect("write zip entry");
    }
    zip.finish().expect("finish zip").into_inner()
}
