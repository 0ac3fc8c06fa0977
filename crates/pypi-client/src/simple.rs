//! Project pages of the simple repository API: PEP 691 JSON and PEP 503 HTML, plus
//! find-links directories (a flat list of files).
//!
//! Parsing is lenient per file and strict per page: a file entry we cannot use is skipped
//! (pip does the same), a page we cannot read at all is an error.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use pep_types::{DistFilename, PackageName, VersionSpecifiers};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;

use crate::html;

/// The `Accept` header for project pages: JSON (PEP 691) preferred, HTML accepted.
pub const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, text/html;q=0.1";

/// The files an index (or find-links location) offers for one project.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectPage {
    /// The project, normalized.
    pub name: PackageName,
    /// Wheels and sdists, in page order.
    pub files: Vec<DistFile>,
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
    /// `Requires-Python`; an unparsable value counts as absent, as in pip.
    pub requires_python: Option<VersionSpecifiers>,
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
    index: usize,
) -> Result<ProjectPage, ParseError> {
    let mime = content_type.and_then(|c| c.split(';').next()).map(|m| m.trim().to_ascii_lowercase());
    let is_json = match mime.as_deref() {
        Some("application/vnd.pypi.simple.v1+json" | "application/json") => true,
        Some("text/html" | "application/vnd.pypi.simple.v1+html") => false,
        _ => body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'),
    };
    if is_json {
        parse_json(body, page_url, project, index)
    } else {
        Ok(parse_html(&String::from_utf8_lossy(body), page_url, project, index))
    }
}

#[derive(Deserialize)]
struct JsonPage {
    #[serde(default)]
    meta: JsonMeta,
    #[serde(default)]
    files: Vec<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct JsonMeta {
    #[serde(rename = "api-version")]
    api_version: Option<String>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
    #[serde(rename = "requires-python")]
    requires_python: Option<String>,
    size: Option<u64>,
    #[serde(rename = "upload-time")]
    upload_time: Option<String>,
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
    index: usize,
) -> Result<ProjectPage, ParseError> {
    let page: JsonPage = serde_json::from_slice(body).map_err(ParseError::Json)?;
    if let Some(version) = &page.meta.api_version {
        if version.split('.').next() != Some("1") {
            return Err(ParseError::UnsupportedVersion(version.clone()));
        }
    }
    let mut files = Vec::with_capacity(page.files.len());
    for value in page.files {
        let entry: JsonFile = match serde_json::from_value(value) {
            Ok(entry) => entry,
            Err(e) => {
                tracing::debug!("{page_url}: skipping a malformed file entry: {e}");
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
        let upload_time = entry.upload_time.as_deref().and_then(|t| match t.parse::<jiff::Timestamp>() {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::debug!("{page_url}: {}: ignoring upload-time `{t}`: {e}", entry.filename);
                None
            }
        });
        let file = Fields {
            filename: entry.filename,
            url,
            sha256: entry.hashes.get("sha256").and_then(|d| digest(d)),
            size: entry.size,
            requires_python: entry.requires_python,
            yanked: match entry.yanked {
                None | Some(BoolOrString::Bool(false)) => None,
                Some(BoolOrString::Bool(true)) => Some(String::new()),
                Some(BoolOrString::String(reason)) => Some(reason),
            },
            upload_time,
            core_metadata,
            core_metadata_sha256,
        };
        files.extend(file.into_dist_file(project, index));
    }
    Ok(ProjectPage { name: project.clone(), files })
}

/// Parses a PEP 503 HTML page (also a flat find-links page: files of other projects are
/// skipped). Never fails: a page without usable anchors lists no files.
pub fn parse_html(body: &str, page_url: &Url, project: &PackageName, index: usize) -> ProjectPage {
    let tags = html::tags(body);
    let base = tags
        .iter()
        .find(|t| t.name == "base")
        .and_then(|t| t.attr("href").flatten())
        .and_then(|href| page_url.join(href).ok())
        .unwrap_or_else(|| page_url.clone());
    let mut files = Vec::new();
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
        let file = Fields {
            filename,
            url,
            sha256,
            size: None,
            requires_python: anchor.attr("data-requires-python").flatten().map(str::to_string),
            yanked: anchor.attr("data-yanked").map(|reason| reason.unwrap_or_default().to_string()),
            upload_time: None,
            core_metadata,
            core_metadata_sha256,
        };
        files.extend(file.into_dist_file(project, index));
    }
    ProjectPage { name: project.clone(), files }
}

/// Lists the files of `project` in a find-links directory (or the one file a find-links
/// entry names), hashing each so that it can be locked and verified like an index file.
pub fn list_local(location: &Path, project: &PackageName, index: usize) -> std::io::Result<ProjectPage> {
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
        if !matches!(DistFilename::parse(&filename, project), Some(Ok(_))) {
            continue;
        }
        let Ok(url) = Url::from_file_path(&path) else { continue };
        let (sha256, size) = hash_file(&path)?;
        let file = Fields {
            filename,
            url,
            sha256: Some(sha256),
            size: Some(size),
            requires_python: None,
            yanked: None,
            upload_time: None,
            core_metadata: false,
            core_metadata_sha256: None,
        };
        files.extend(file.into_dist_file(project, index));
    }
    Ok(ProjectPage { name: project.clone(), files })
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

/// What both page formats yield for a file, before the checks common to both.
struct Fields {
    filename: String,
    url: Url,
    sha256: Option<String>,
    size: Option<u64>,
    requires_python: Option<String>,
    yanked: Option<String>,
    upload_time: Option<jiff::Timestamp>,
    core_metadata: bool,
    core_metadata_sha256: Option<String>,
}

impl Fields {
    fn into_dist_file(self, project: &PackageName, index: usize) -> Option<DistFile> {
        let parsed = match DistFilename::parse(&self.filename, project)? {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::debug!("skipping {}: {e}", self.filename);
                return None;
            }
        };
        if let DistFilename::Wheel(wheel) = &parsed {
            if wheel.name != *project {
                tracing::debug!("skipping {}: not a file of {project}", self.filename);
                return None;
            }
        }
        let requires_python = self.requires_python.filter(|s| !s.trim().is_empty()).and_then(|s| {
            match VersionSpecifiers::from_str(&s) {
                Ok(spec) => Some(spec),
                Err(e) => {
                    tracing::debug!("{}: ignoring requires-python `{s}`: {e}", self.filename);
                    None
                }
            }
        });
        Some(DistFile {
            filename: self.filename,
            parsed,
            url: self.url,
            sha256: self.sha256,
            size: self.size,
            requires_python,
            yanked: self.yanked,
            upload_time: self.upload_time,
            core_metadata: self.core_metadata,
            core_metadata_sha256: self.core_metadata_sha256,
            index,
        })
    }
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
            1,
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
            parse_json(v2.as_bytes(), &page_url, &name("foo-bar"), 0),
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
        let page =
            parse_page(body.as_bytes(), Some("text/html; charset=utf-8"), &page_url, &name("foo-bar"), 0)
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
        let page = parse_page(body.as_bytes(), None, &page_url, &name("foo"), 0).unwrap();
        assert_eq!(page.files[0].url.as_str(), "https://mirror.invalid/pkgs/foo-1.0.tar.gz");
    }

    #[test]
    fn local_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("foo-1.0-py3-none-any.whl"), b"abc").unwrap();
        std::fs::write(dir.path().join("foo-0.9.tar.gz"), b"def").unwrap();
        std::fs::write(dir.path().join("bar-1.0-py3-none-any.whl"), b"x").unwrap();
        std::fs::write(dir.path().join("README"), b"x").unwrap();
        let page = list_local(dir.path(), &name("foo"), 3).unwrap();
        let names: Vec<_> = page.files.iter().map(|f| f.filename.as_str()).collect();
        assert_eq!(names, ["foo-0.9.tar.gz", "foo-1.0-py3-none-any.whl"]);
        assert_eq!(page.files[1].sha256.as_deref(), Some(hex::encode(Sha256::digest(b"abc")).as_str()));
        assert_eq!((page.files[1].size, page.files[1].index), (Some(3), 3));
        assert_eq!(page.files[1].url.scheme(), "file");
    }
}
