//! The package index: a temp directory of distributions plus the state the server renders
//! PEP 503 and PEP 691 pages from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::metadata::Common;
use crate::server::Server;
use crate::util::{html_escape, normalize, sha256_hex, url_encode};

/// A PEP 503/691 package index in a temp directory, deleted when the last of the `Index`
/// and its [`Server`]s is dropped.
///
/// Layout: `files/<distribution>` (also usable as pip's `--find-links DIR`) and static PEP 503
/// pages in `simple/` (rewritten on every publish; they never advertise PEP 658, so a
/// `file://` index works too). The HTTP server renders its pages on each request, so files
/// published after [`Index::serve`] are visible at once.
#[derive(Debug)]
pub struct Index {
    shared: Arc<Shared>,
}

/// State shared by an [`Index`] and the servers started from it.
#[derive(Debug)]
pub(crate) struct Shared {
    dir: TempDir,
    state: Mutex<State>,
}

/// Everything the server needs to answer, behind one lock.
#[derive(Debug)]
pub(crate) struct State {
    /// Normalized project name -> files in publish order.
    pub projects: BTreeMap<String, Vec<FileEntry>>,
    pub json: bool,
    pub pep658: bool,
    pub ranges: bool,
}

/// One published distribution file.
#[derive(Debug, Clone)]
pub(crate) struct FileEntry {
    pub filename: String,
    pub version: String,
    pub sha256: String,
    pub size: u64,
    pub requires_python: Option<String>,
    pub upload_time: Option<String>,
    /// `Some("")` is yanked without a reason.
    pub yanked: Option<String>,
    /// The core metadata served as `<filename>.metadata` (PEP 658), wheels only.
    pub metadata: Option<Vec<u8>>,
}

impl Default for Index {
    fn default() -> Self {
        Self::new()
    }
}

impl Index {
    /// Creates an empty index in a fresh temp directory. JSON pages and ranges are on,
    /// PEP 658 metadata is off.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("test-index-").tempdir().expect("create index temp dir");
        std::fs::create_dir_all(dir.path().join("files")).expect("create files dir");
        let index = Self {
            shared: Arc::new(Shared {
                dir,
                state: Mutex::new(State {
                    projects: BTreeMap::new(),
                    json: true,
                    pep658: false,
                    ranges: true,
                }),
            }),
        };
        index.write_pages();
        index
    }

    /// An index shaped like PyTorch's wheel indexes (`whl/cu116`): static PEP 503 HTML only,
    /// `+` percent-encoded in hrefs, `#sha256=` fragments, and no sizes, upload times or PEP
    /// 658 metadata (so metadata comes from range requests into the wheel).
    pub fn pytorch_like() -> Self {
        Self::new().json(false).pep658(false)
    }

    /// Serve PEP 691 JSON to clients that prefer it (default `true`); `false` serves HTML only.
    pub fn json(self, enabled: bool) -> Self {
        self.shared.lock().json = enabled;
        self
    }

    /// Serve `/files/<name>.metadata` for wheels and advertise it in pages (PEP 658/714);
    /// default `false`.
    pub fn pep658(self, enabled: bool) -> Self {
        self.shared.lock().pep658 = enabled;
        self
    }

    /// Honour `Range` requests on files (default `true`); `false` always answers 200 with the
    /// whole body and no `Accept-Ranges`.
    pub fn ranges(self, enabled: bool) -> Self {
        self.shared.lock().ranges = enabled;
        self
    }

    /// The index root directory (holds `files/` and `simple/`).
    pub fn root(&self) -> &Path {
        self.shared.root()
    }

    /// The flat directory of all published distributions, for pip's `--find-links DIR`.
    pub fn find_links_dir(&self) -> PathBuf {
        self.root().join("files")
    }

    /// The path of a published file, e.g. to corrupt it after publishing.
    pub fn file_path(&self, filename: &str) -> PathBuf {
        self.find_links_dir().join(filename)
    }

    /// The `file://` URL of the static `simple/` pages.
    pub fn file_url(&self) -> String {
        format!("file://{}/simple/", self.root().display())
    }

    /// Starts an HTTP server for this index on `127.0.0.1` (see [`Server`]).
    pub fn serve(&self) -> Server {
        Server::start(Arc::clone(&self.shared))
    }

    /// Writes `bytes` as `files/<filename>` and lists it under the project of `meta`.
    ///
    /// Panics if the file name was already published: fixtures should not silently replace.
    pub(crate) fn add_file(&self, filename: &str, bytes: &[u8], meta: &Common, metadata: Option<Vec<u8>>) {
        let path = self.file_path(filename);
        assert!(!path.exists(), "{filename} was already published to this index");
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, bytes).expect("write distribution");
        std::fs::rename(&tmp, &path).expect("rename distribution");
        let entry = FileEntry {
            filename: filename.to_string(),
            version: meta.version.clone(),
            sha256: sha256_hex(bytes),
            size: bytes.len() as u64,
            requires_python: meta.requires_python.clone(),
            upload_time: meta.upload_time.clone(),
            yanked: meta.yanked.clone(),
            metadata,
        };
        self.shared.lock().projects.entry(normalize(&meta.name)).or_default().push(entry);
        self.write_pages();
    }

    fn write_pages(&self) {
        let state = self.shared.lock();
        let simple = self.root().join("simple");
        std::fs::create_dir_all(&simple).expect("create simple dir");
        std::fs::write(simple.join("index.html"), root_html(&state)).expect("write root page");
        for (project, files) in &state.projects {
            let dir = simple.join(project);
            std::fs::create_dir_all(&dir).expect("create project dir");
            std::fs::write(dir.join("index.html"), project_html(project, files, false))
                .expect("write project page");
        }
    }
}

impl Shared {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not take the server down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

const FILES_HREF: &str = "../../files/";

/// The `/simple/` page in PEP 503 HTML.
pub(crate) fn root_html(state: &State) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html>\n<head><meta name=\"pypi:repository-version\" content=\"1.1\">\
         <title>Simple index</title></head>\n<body>\n",
    );
    for project in state.projects.keys() {
        let p = html_escape(project);
        out.push_str(&format!("<a href=\"{p}/\">{p}</a><br/>\n"));
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// The `/simple/` page in PEP 691 JSON.
pub(crate) fn root_json(state: &State) -> String {
    let projects: Vec<Value> = state.projects.keys().map(|p| json!({ "name": p })).collect();
    json!({ "meta": { "api-version": "1.1" }, "projects": projects }).to_string()
}

/// A project page in PEP 503 HTML; `pep658` adds the core-metadata attributes.
pub(crate) fn project_html(project: &str, files: &[FileEntry], pep658: bool) -> String {
    let p = html_escape(project);
    let mut out = format!(
        "<!DOCTYPE html>\n<html>\n<head><meta name=\"pypi:repository-version\" content=\"1.1\">\
         <title>Links for {p}</title></head>\n<body>\n<h1>Links for {p}</h1>\n"
    );
    for f in files {
        let mut attrs = format!(
            "href=\"{}\"",
            html_escape(&format!("{FILES_HREF}{}#sha256={}", url_encode(&f.filename), f.sha256))
        );
        if let Some(rp) = &f.requires_python {
            attrs.push_str(&format!(" data-requires-python=\"{}\"", html_escape(rp)));
        }
        if let Some(reason) = &f.yanked {
            attrs.push_str(&format!(" data-yanked=\"{}\"", html_escape(reason)));
        }
        if let Some(metadata) = f.metadata.as_ref().filter(|_| pep658) {
            let hash = sha256_hex(metadata);
            attrs.push_str(&format!(
                " data-core-metadata=\"sha256={hash}\" data-dist-info-metadata=\"sha256={hash}\""
            ));
        }
        out.push_str(&format!("<a {attrs}>{}</a><br/>\n", html_escape(&f.filename)));
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// A project page in PEP 691 JSON (API 1.1: with `versions`, `size` and `upload-time`).
pub(crate) fn project_json(project: &str, files: &[FileEntry], pep658: bool) -> String {
    let mut versions: Vec<&str> = Vec::new();
    let files: Vec<Value> = files
        .iter()
        .map(|f| {
            if !versions.contains(&f.version.as_str()) {
                versions.push(&f.version);
            }
            let mut v = json!({
                "filename": f.filename,
                "url": format!("{FILES_HREF}{}", url_encode(&f.filename)),
                "hashes": { "sha256": f.sha256 },
                "size": f.size,
                "yanked": match &f.yanked {
                    None => Value::Bool(false),
                    Some(r) if r.is_empty() => Value::Bool(true),
                    Some(r) => Value::String(r.clone()),
                },
            });
            if let Some(rp) = &f.requires_python {
                v["requires-python"] = json!(rp);
            }
            if let Some(t) = &f.upload_time {
                v["upload-time"] = json!(t);
            }
            if let Some(metadata) = f.metadata.as_ref().filter(|_| pep658) {
                let hashes = json!({ "sha256": sha256_hex(metadata) });
                v["core-metadata"] = hashes.clone();
                v["dist-info-metadata"] = hashes;
            }
            v
        })
        .collect();
    json!({
        "meta": { "api-version": "1.1" },
        "name": project,
        "files": files,
        "versions": versions,
    })
    .to_string()
}
