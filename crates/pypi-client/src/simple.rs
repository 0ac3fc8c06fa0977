//! Project pages of the simple repository API: PEP 691 JSON and PEP 503 HTML, plus
//! find-links directories (a flat list of files).
//!
//! Parsing is lenient per file and strict per page: a file entry we cannot use is skipped
//! (pip does the same), a page we cannot read at all is an error.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use pep_types::{DistFilename, PackageName, VersionSpecifiers, WheelFilename};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;

use crate::html;

/// What a page is parsed for: which location it came from, and which files are worth
/// keeping. Dropping files early (other operating systems' wheels, uploads after the
/// cutoff) saves most of the parsing and memory on large pages.
#[derive(Clone, Default)]
pub struct PageContext {
    /// Which location the page came from (see [`DistFile::index`]).
    pub index: usize,
    /// Drop files uploaded at or after this time (PEP 700), and files whose upload time the
    /// location does not publish (they cannot be shown to be older), counted in
    /// [`ProjectPage::undated`] so that the loss is reported, never silent.
    pub exclude_newer: Option<jiff::Timestamp>,
    /// Keep only the wheels this accepts (sdists are always kept).
    pub keep_wheel: Option<WheelFilter>,
}

/// What [`PageContext::accept`] decided about one file.
enum Verdict {
    Keep(DistFilename),
    Skip,
    /// A file of the project that the cutoff drops because it has no upload time.
    Undated,
}

/// A predicate on wheel names, e.g. "some target can install it".
#[derive(Clone)]
pub struct WheelFilter(pub std::sync::Arc<dyn Fn(&WheelFilename) -> bool + Send + Sync>);

impl std::fmt::Debug for WheelFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WheelFilter(..)")
    }
}

impl PageContext {
    /// A context that keeps every file, for location `index`.
    pub fn index(index: usize) -> PageContext {
        PageContext { index, ..PageContext::default() }
    }

    /// The parsed name of a file worth keeping, or why not (a debug line for odd names).
    fn accept(&self, filename: &str, project: &PackageName, uploaded: Option<jiff::Timestamp>) -> Verdict {
        if let (Some(cutoff), Some(uploaded)) = (self.exclude_newer, uploaded) {
            if uploaded >= cutoff {
                return Verdict::Skip;
            }
        }
        let parsed = match DistFilename::parse(filename, project) {
            Some(Ok(parsed)) => parsed,
            Some(Err(e)) => {
                tracing::debug!("skipping {filename}: {e}");
                return Verdict::Skip;
            }
            None => return Verdict::Skip,
        };
        if let DistFilename::Wheel(wheel) = &parsed {
            if wheel.name != *project {
                tracing::debug!("skipping {filename}: not a file of {project}");
                return Verdict::Skip;
            }
            if self.keep_wheel.as_ref().is_some_and(|keep| !(keep.0)(wheel)) {
                return Verdict::Skip;
            }
        }
        if self.exclude_newer.is_some() && uploaded.is_none() {
            return Verdict::Undated;
        }
        Verdict::Keep(parsed)
    }
}

/// The content type of PEP 691 JSON pages.
pub const JSON_CONTENT_TYPE: &str = "application/vnd.pypi.simple.v1+json";

/// Keeps wheels some Linux system could install (any `*linux*` platform tag, or `any`).
pub fn linux_or_any() -> WheelFilter {
    WheelFilter(std::sync::Arc::new(|w: &WheelFilename| {
        w.platform.iter().any(|p| p == "any" || p.contains("linux"))
    }))
}

/// Writes a page back as PEP 691 JSON (absolute URLs), with the fields this client reads:
/// `parse_json` of the result gives the same files. Serialized straight from the page, with
/// no intermediate JSON tree (a big page's tree cost more than the page itself).
pub fn to_json(page: &ProjectPage) -> Vec<u8> {
    use serde::ser::{SerializeMap, Serializer as _};

    struct Files<'a>(&'a [DistFile]);
    struct File<'a>(&'a DistFile);
    struct Sha256<'a>(Option<&'a str>);

    impl serde::Serialize for Files<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter().map(File))
        }
    }
    impl serde::Serialize for Sha256<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(None)?;
            if let Some(h) = self.0 {
                map.serialize_entry("sha256", h)?;
            }
            map.end()
        }
    }
    impl serde::Serialize for File<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let f = self.0;
            let mut map = s.serialize_map(None)?;
            map.serialize_entry("filename", &f.filename)?;
            map.serialize_entry("url", f.url.as_str())?;
            map.serialize_entry("hashes", &Sha256(f.sha256.as_deref()))?;
            match &f.yanked {
                None => map.serialize_entry("yanked", &false)?,
                Some(reason) => map.serialize_entry("yanked", reason)?,
            }
            if let Some(rp) = &f.requires_python {
                map.serialize_entry("requires-python", &rp.to_string())?;
            }
            if let Some(size) = f.size {
                map.serialize_entry("size", &size)?;
            }
            if let Some(t) = &f.upload_time {
                map.serialize_entry("upload-time", &t.to_string())?;
            }
            if f.core_metadata {
                match &f.core_metadata_sha256 {
                    Some(h) => map.serialize_entry("core-metadata", &Sha256(Some(h)))?,
                    None => map.serialize_entry("core-metadata", &true)?,
                }
            }
            map.end()
        }
    }

    let mut out = Vec::with_capacity(page.files.len() * 256);
    let mut ser = serde_json::Serializer::new(&mut out);
    let written = (|| {
        let mut map = ser.serialize_map(Some(3))?;
        map.serialize_entry("meta", &serde_json::json!({ "api-version": "1.1" }))?;
        map.serialize_entry("name", page.name.as_ref())?;
        map.serialize_entry("files", &Files(&page.files))?;
        map.end()
    })();
    match written {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

/// Parses `Requires-Python` values once per distinct string: a page repeats a handful of
/// them across thousands of files.
#[derive(Default)]
struct RequiresPythonMemo(std::collections::HashMap<String, Option<std::sync::Arc<VersionSpecifiers>>>);

impl RequiresPythonMemo {
    fn get(&mut self, filename: &str, value: Option<&str>) -> Option<std::sync::Arc<VersionSpecifiers>> {
        let value = value.map(str::trim).filter(|s| !s.is_empty())?;
        if let Some(known) = self.0.get(value) {
            return known.clone();
        }
        let parsed = match VersionSpecifiers::from_str(value) {
            Ok(spec) => Some(std::sync::Arc::new(spec)),
            Err(e) => {
                tracing::debug!("{filename}: ignoring requires-python `{value}`: {e}");
                None
            }
        };
        self.0.insert(value.to_string(), parsed.clone());
        parsed
    }
}

/// The `Accept` header for project pages: JSON (PEP 691) preferred, HTML accepted.
pub const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, text/html;q=0.1";

/// The files an index (or find-links location) offers for one project.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectPage {
    /// The project, normalized.
    pub name: PackageName,
    /// Wheels and sdists, in page order (locations in configuration order when merged).
    pub files: Vec<DistFile>,
    /// Location number -> how many files of the project it listed without an upload time,
    /// dropped under `--exclude-newer` (PEP 503 HTML pages never carry one).
    pub undated: BTreeMap<usize, usize>,
}

impl ProjectPage {
    /// A page of no files.
    pub fn empty(name: PackageName) -> ProjectPage {
        ProjectPage { name, files: Vec::new(), undated: BTreeMap::new() }
    }

    fn with_files(mut self, files: Vec<DistFile>) -> ProjectPage {
        self.files = files;
        self
    }

    /// Appends the files of `other` (a later location) to this page.
    pub fn merge(&mut self, other: &ProjectPage) {
        self.files.extend(other.files.iter().cloned());
        for (index, count) in &other.undated {
            *self.undated.entry(*index).or_default() += count;
        }
    }
}

/// One downloadable wheel or sdist.
#[derive(Debug, Clone, PartialEq)]
pub struct DistFile {
    /// The file name, as the URL's last path segment (or the JSON `filename`).
    pub filename: String,
    /// The parsed file name.
    pub parsed: DistFilename,
    /// Where to download it (no fragment; credentials of its index where on the same host).
    pub url: Url,
    /// The sha256 hex digest (lower case) the index promises, if it gives one.
    pub sha256: Option<String>,
    /// The size in bytes, if known.
    pub size: Option<u64>,
    /// `Requires-Python`; an unparsable value counts as absent, as in pip. Shared between
    /// the files of a page that state the same value.
    pub requires_python: Option<std::sync::Arc<VersionSpecifiers>>,
    /// `Some(reason)` (possibly empty) if the file is yanked (PEP 592).
    pub yanked: Option<String>,
    /// The upload time (PEP 700), JSON pages only.
    pub upload_time: Option<jiff::Timestamp>,
    /// Whether `<url>.metadata` holds the core metadata (PEP 658 / 714).
    pub core_metadata: bool,
    /// The sha256 of the `.metadata` file, if the index gives it.
    pub core_metadata_sha256: Option<String>,
    /// Which location the file came from: 0 is the index URL, then the extra index URLs,
    /// then the find-links entries, in configuration order.
    pub index: usize,
}

/// A page that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The body is not the JSON of a PEP 691 project page.
    #[error("not a PEP 691 JSON project page")]
    Json(#[source] serde_json::Error),
    /// The page uses a major API version we do not know (PEP 691 says to stop there).
    #[error("the page uses simple API version {0}; only 1.x is supported")]
    UnsupportedVersion(String),
}

/// Parses a project page, choosing JSON or HTML by `Content-Type` (or the body when there
/// is none). `page_url` is the URL after redirects: relative links resolve against it.
pub fn parse_page(
    body: &[u8],
    content_type: Option<&str>,
    page_url: &Url,
    project: &PackageName,
    ctx: &PageContext,
) -> Result<ProjectPage, ParseError> {
    let mime = content_type.and_then(|c| c.split(';').next()).map(|m| m.trim().to_ascii_lowercase());
    let is_json = match mime.as_deref() {
        Some("application/vnd.pypi.simple.v1+json" | "application/json") => true,
        Some("text/html" | "application/vnd.pypi.simple.v1+html") => false,
        _ => body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'),
    };
    if is_json {
        parse_json(body, page_url, project, ctx)
    } else {
        Ok(parse_html(&String::from_utf8_lossy(body), page_url, project, ctx))
    }
}

#[derive(Deserialize)]
struct JsonPage<'a> {
    #[serde(default)]
    meta: JsonMeta,
    /// Kept raw so one malformed entry is skipped alone (as pip does) without the cost of
    /// a generic `Value` for every entry.
    #[serde(default, borrow)]
    files: Vec<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize, Default)]
struct JsonMeta {
    #[serde(rename = "api-version")]
    api_version: Option<String>,
}

/// One file entry. Missing fields default (an entry without a name or URL is skipped), so
/// one odd entry does not cost the whole page.
#[derive(Deserialize)]
struct JsonFile<'a> {
    #[serde(default, borrow)]
    filename: Cow<'a, str>,
    #[serde(default, borrow)]
    url: Cow<'a, str>,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
    #[serde(rename = "requires-python", default, borrow)]
    requires_python: Option<Cow<'a, str>>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(rename = "upload-time", default, borrow)]
    upload_time: Option<Cow<'a, str>>,
    #[serde(default)]
    yanked: Option<BoolOrString>,
    #[serde(rename = "core-metadata")]
    core_metadata: Option<BoolOrHashes>,
    #[serde(rename = "dist-info-metadata")]
    dist_info_metadata: Option<BoolOrHashes>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BoolOrString {
    Bool(bool),
    String(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BoolOrHashes {
    Bool(bool),
    Hashes(BTreeMap<String, String>),
}

/// Parses a PEP 691 JSON project page.
pub fn parse_json(
    body: &[u8],
    page_url: &Url,
    project: &PackageName,
    ctx: &PageContext,
) -> Result<ProjectPage, ParseError> {
    let page: JsonPage = serde_json::from_slice(body).map_err(ParseError::Json)?;
    if let Some(version) = &page.meta.api_version {
        if version.split('.').next() != Some("1") {
            return Err(ParseError::UnsupportedVersion(version.clone()));
        }
    }
    let mut memo = RequiresPythonMemo::default();
    let mut files = Vec::new();
    let mut undated = BTreeMap::new();
    for raw in page.files {
        let entry: JsonFile = match serde_json::from_str(raw.get()) {
            Ok(entry) => entry,
            Err(e) => {
                tracing::debug!("{page_url}: skipping a malformed file entry: {e}");
                continue;
            }
        };
        if entry.filename.is_empty() || entry.url.is_empty() {
            tracing::debug!("{page_url}: skipping a file entry without a name or URL");
            continue;
        }
        let upload_time = entry.upload_time.as_deref().and_then(|t| match t.parse::<jiff::Timestamp>() {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::debug!("{page_url}: {}: ignoring upload-time `{t}`: {e}", entry.filename);
                None
            }
        });
        // Decide on the name and time first: most files of a big page are skipped here,
        // before their URL and hashes cost anything.
        let parsed = match ctx.accept(&entry.filename, project, upload_time) {
            Verdict::Keep(parsed) => parsed,
            Verdict::Skip => continue,
            Verdict::Undated => {
                *undated.entry(ctx.index).or_default() += 1;
                continue;
            }
        };
        let Ok(url) = page_url.join(&entry.url) else {
            tracing::debug!("{page_url}: skipping {}: bad URL `{}`", entry.filename, entry.url);
            continue;
        };
        let (core_metadata, core_metadata_sha256) = match entry.core_metadata.or(entry.dist_info_metadata) {
            None | Some(BoolOrHashes::Bool(false)) => (false, None),
            Some(BoolOrHashes::Bool(true)) => (true, None),
            Some(BoolOrHashes::Hashes(h)) => (true, h.get("sha256").and_then(|d| digest(d))),
        };
        files.push(DistFile {
            requires_python: memo.get(&entry.filename, entry.requires_python.as_deref()),
            filename: entry.filename.into_owned(),
            parsed,
            url,
            sha256: entry.hashes.get("sha256").and_then(|d| digest(d)),
            size: entry.size,
            yanked: match entry.yanked {
                None | Some(BoolOrString::Bool(false)) => None,
                Some(BoolOrString::Bool(true)) => Some(String::new()),
                Some(BoolOrString::String(reason)) => Some(reason),
            },
            upload_time,
            core_metadata,
            core_metadata_sha256,
            index: ctx.index,
        });
    }
    Ok(ProjectPage { name: project.clone(), files, undated })
}

/// Parses a PEP 503 HTML page (also a flat find-links page: files of other projects are
/// skipped). Never fails: a page without usable anchors lists no files.
pub fn parse_html(body: &str, page_url: &Url, project: &PackageName, ctx: &PageContext) -> ProjectPage {
    let tags = html::tags(body);
    let base = tags
        .iter()
        .find(|t| t.name == "base")
        .and_then(|t| t.attr("href").flatten())
        .and_then(|href| page_url.join(href).ok())
        .unwrap_or_else(|| page_url.clone());
    let mut memo = RequiresPythonMemo::default();
    let mut files = Vec::new();
    let mut undated = BTreeMap::new();
    for anchor in tags.iter().filter(|t| t.name == "a") {
        let Some(href) = anchor.attr("href").flatten() else { continue };
        let Ok(mut url) = base.join(href) else {
            tracing::debug!("{page_url}: skipping bad link `{href}`");
            continue;
        };
        let sha256 = url
            .fragment()
            .and_then(|f| f.split('&').find_map(|kv| kv.strip_prefix("sha256=")))
            .and_then(digest);
        url.set_fragment(None);
        let Some(filename) = url.path_segments().and_then(|mut s| s.next_back()).and_then(percent_decode)
        else {
            continue;
        };
        let metadata = anchor.attr("data-core-metadata").or(anchor.attr("data-dist-info-metadata"));
        let (core_metadata, core_metadata_sha256) = match metadata {
            None | Some(Some("false")) => (false, None),
            Some(value) => (true, value.and_then(|v| v.strip_prefix("sha256=")).and_then(digest)),
        };
        let parsed = match ctx.accept(&filename, project, None) {
            Verdict::Keep(parsed) => parsed,
            Verdict::Skip => continue,
            Verdict::Undated => {
                *undated.entry(ctx.index).or_default() += 1;
                continue;
            }
        };
        files.push(DistFile {
            requires_python: memo.get(&filename, anchor.attr("data-requires-python").flatten()),
            filename,
            parsed,
            url,
            sha256,
            size: None,
            yanked: anchor.attr("data-yanked").map(|reason| reason.unwrap_or_default().to_string()),
            upload_time: None,
            core_metadata,
            core_metadata_sha256,
            index: ctx.index,
        });
    }
    ProjectPage { name: project.clone(), files, undated }
}

/// Lists the files of `project` in a find-links directory (or the one file a find-links
/// entry names), hashing each so that it can be locked and verified like an index file.
pub fn list_local(location: &Path, project: &PackageName, ctx: &PageContext) -> std::io::Result<ProjectPage> {
    // A relative location is relative to the working directory, and file URLs need an
    // absolute path.
    let location = &std::path::absolute(location)?;
    let mut paths = Vec::new();
    if location.is_dir() {
        for entry in fs_err::read_dir(location)? {
            let path = entry?.path();
            if path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
    } else {
        paths.push(location.to_path_buf());
    }
    let mut files = Vec::new();
    for path in paths {
        let Some(filename) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        // Hash only the files of this project: a find-links directory may hold gigabytes.
        // A find-links directory is the user's own files: no upload times to ask for.
        let local = PageContext { exclude_newer: None, ..ctx.clone() };
        let Verdict::Keep(parsed) = local.accept(&filename, project, None) else { continue };
        let Ok(url) = Url::from_file_path(&path) else { continue };
        let (sha256, size) = hash_file(&path)?;
        files.push(DistFile {
            filename,
            parsed,
            url,
            sha256: Some(sha256),
            size: Some(size),
            requires_python: None,
            yanked: None,
            upload_time: None,
            core_metadata: false,
            core_metadata_sha256: None,
            index: ctx.index,
        });
    }
    Ok(ProjectPage::empty(project.clone()).with_files(files))
}

fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = fs_err::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// A sha256 hex digest, lower-cased; anything else is ignored (treated as no hash).
fn digest(value: &str) -> Option<String> {
    (value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())).then(|| value.to_ascii_lowercase())
}

/// Decodes `%XX` escapes of a URL path segment.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> PackageName {
        PackageName::from_str(s).unwrap()
    }

    const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn json_page() {
        let body = format!(
            r#"{{"meta": {{"api-version": "1.1"}}, "name": "Foo-Bar", "files": [
            {{"filename": "foo_bar-1.0-py3-none-any.whl", "url": "../../files/foo_bar-1.0-py3-none-any.whl",
              "hashes": {{"sha256": "{}"}}, "requires-python": ">=3.7", "size": 1234,
              "upload-time": "2023-01-02T03:04:05.123456Z", "yanked": false, "core-metadata": {{"sha256": "{HASH}"}}}},
            {{"filename": "foo-bar-0.9.tar.gz", "url": "https://files.example.invalid/foo-bar-0.9.tar.gz",
              "hashes": {{}}, "requires-python": "not a spec", "yanked": "broken build", "dist-info-metadata": true}},
            {{"filename": "foo_bar-0.8-py3-none-any.whl", "url": "x.whl", "hashes": {{}}, "yanked": true}},
            {{"filename": "foo_bar-0.1.win32.exe", "url": "x.exe", "hashes": {{}}}},
            {{"filename": "foo_bar-bad-py3-none-any.whl", "url": "y.whl", "hashes": {{}}}},
            {{"filename": 12}}
            ]}}"#,
            HASH.to_uppercase()
        );
        let page_url = Url::parse("https://example.invalid/simple/foo-bar/").unwrap();
        let page = parse_page(
            body.as_bytes(),
            Some("application/vnd.pypi.simple.v1+json"),
            &page_url,
            &name("foo-bar"),
            &PageContext::index(1),
        )
        .unwrap();
        assert_eq!(page.files.len(), 3, "{page:#?}");
        let wheel = &page.files[0];
        assert_eq!(wheel.url.as_str(), "https://example.invalid/files/foo_bar-1.0-py3-none-any.whl");
        assert_eq!(wheel.sha256.as_deref(), Some(HASH));
        assert_eq!(wheel.size, Some(1234));
        assert_eq!(wheel.requires_python.as_ref().unwrap().to_string(), ">=3.7");
        assert_eq!(wheel.upload_time.unwrap().to_string(), "2023-01-02T03:04:05.123456Z");
        assert_eq!((wheel.core_metadata, wheel.core_metadata_sha256.as_deref()), (true, Some(HASH)));
        assert_eq!((wheel.yanked.as_deref(), wheel.index), (None, 1));
        let sdist = &page.files[1];
        assert!(matches!(sdist.parsed, DistFilename::Sdist(_)));
        assert_eq!(sdist.requires_python, None);
        assert_eq!(sdist.yanked.as_deref(), Some("broken build"));
        assert!(sdist.core_metadata);
        assert_eq!(page.files[2].yanked.as_deref(), Some(""));

        let v2 = r#"{"meta": {"api-version": "2.0"}, "files": []}"#;
        assert!(matches!(
            parse_json(v2.as_bytes(), &page_url, &name("foo-bar"), &PageContext::index(0)),
            Err(ParseError::UnsupportedVersion(_))
        ));
    }

    #[test]
    fn html_page() {
        let body = format!(
            r#"<html><body><h1>Links for foo-bar</h1>
            <a href="/files/foo_bar-1.0-py3-none-any.whl#sha256={HASH}" data-requires-python="&gt;=3.7,&lt;4" data-core-metadata="sha256={HASH}">foo_bar-1.0-py3-none-any.whl</a><br/>
            <a href="foo-bar-0.9.tar.gz#md5=abc" data-yanked="">foo-bar-0.9.tar.gz</a>
            <a href="https://elsewhere.invalid/p/foo_bar-0.8-py3-none-any.whl" data-yanked="use 1.0" data-requires-python="&gt;=2.7, !=3.0.*">x</a>
            <a href="other_pkg-1.0-py3-none-any.whl">other</a>
            <a href="foo%2Dbar-0.7.zip">percent</a>
            </body></html>"#
        );
        let page_url = Url::parse("http://127.0.0.1:1/simple/foo-bar/").unwrap();
        let page = parse_page(
            body.as_bytes(),
            Some("text/html; charset=utf-8"),
            &page_url,
            &name("foo-bar"),
            &PageContext::index(0),
        )
        .unwrap();
        let names: Vec<_> = page.files.iter().map(|f| f.filename.as_str()).collect();
        assert_eq!(
            names,
            [
                "foo_bar-1.0-py3-none-any.whl",
                "foo-bar-0.9.tar.gz",
                "foo_bar-0.8-py3-none-any.whl",
                "foo-bar-0.7.zip"
            ]
        );
        let wheel = &page.files[0];
        assert_eq!(wheel.url.as_str(), "http://127.0.0.1:1/files/foo_bar-1.0-py3-none-any.whl");
        assert_eq!(wheel.sha256.as_deref(), Some(HASH));
        assert_eq!(wheel.requires_python.as_ref().unwrap().to_string(), ">=3.7, <4");
        assert_eq!((wheel.core_metadata, wheel.yanked.as_deref()), (true, None));
        assert_eq!(page.files[1].url.as_str(), "http://127.0.0.1:1/simple/foo-bar/foo-bar-0.9.tar.gz");
        assert_eq!((page.files[1].sha256.as_deref(), page.files[1].yanked.as_deref()), (None, Some("")));
        assert_eq!(page.files[2].yanked.as_deref(), Some("use 1.0"));
        assert!(page.files[2].requires_python.is_some());
    }

    #[test]
    fn html_base_tag_and_sniffing() {
        let body = r#"<base href="https://mirror.invalid/pkgs/"><a href="foo-1.0.tar.gz">foo</a>"#;
        let page_url = Url::parse("https://example.invalid/simple/foo/").unwrap();
        let page =
            parse_page(body.as_bytes(), None, &page_url, &name("foo"), &PageContext::index(0)).unwrap();
        assert_eq!(page.files[0].url.as_str(), "https://mirror.invalid/pkgs/foo-1.0.tar.gz");
    }

    #[test]
    fn local_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("foo-1.0-py3-none-any.whl"), b"abc").unwrap();
        std::fs::write(dir.path().join("foo-0.9.tar.gz"), b"def").unwrap();
        std::fs::write(dir.path().join("bar-1.0-py3-none-any.whl"), b"x").unwrap();
        std::fs::write(dir.path().join("README"), b"x").unwrap();
        let page = list_local(dir.path(), &name("foo"), &PageContext::index(3)).unwrap();
        let names: Vec<_> = page.files.iter().map(|f| f.filename.as_str()).collect();
        assert_eq!(names, ["foo-0.9.tar.gz", "foo-1.0-py3-none-any.whl"]);
        assert_eq!(page.files[1].sha256.as_deref(), Some(hex::encode(Sha256::digest(b"abc")).as_str()));
        assert_eq!((page.files[1].size, page.files[1].index), (Some(3), 3));
        assert_eq!(page.files[1].url.scheme(), "file");
    }

    #[test]
    fn compact_json_round_trips() {
        let body = r#"{"meta": {"api-version": "1.1"}, "files": [
            {"filename": "foo-1.0-py3-none-any.whl", "url": "../../files/foo-1.0-py3-none-any.whl",
             "hashes": {"sha256": "aa"}, "requires-python": ">=3.7", "size": 10,
             "upload-time": "2024-01-01T00:00:00Z", "yanked": "bad", "core-metadata": {"sha256": "bb"}},
            {"filename": "foo-1.0-cp39-cp39-win_amd64.whl", "url": "https://example.invalid/w.whl", "hashes": {}},
            {"filename": "foo-1.0.tar.gz", "url": "https://example.invalid/foo-1.0.tar.gz", "hashes": {}}]}"#;
        let page_url = Url::parse("https://example.invalid/simple/foo/").unwrap();
        let ctx = PageContext { keep_wheel: Some(linux_or_any()), ..PageContext::default() };
        let page = parse_page(body.as_bytes(), None, &page_url, &name("foo"), &ctx).unwrap();
        assert_eq!(page.files.len(), 2, "the Windows wheel is dropped");
        let again = parse_json(&to_json(&page), &page_url, &name("foo"), &PageContext::default()).unwrap();
        assert_eq!(page, again);
    }
}
