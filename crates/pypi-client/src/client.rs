//! The package index client (`PypiClient`): project pages from the configured indexes (first index that knows a
//! name wins), wheel metadata, and downloads, with a cache tuned for indexes that give no
//! caching help.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use fetch::{redact, Validators};
use jiff::Timestamp;
use pep_types::{DistFilename, PackageName};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use url::Url;

use crate::simple::{self, DistFile, PageContext, ProjectPage, WheelFilter};
use crate::wheel::{self, RangeRead};
use crate::{Error, IndexConfig};

/// Cache namespace of index pages (reduced to Linux files, as PEP 691 JSON, with their
/// validators and fetch time). v2: entries carry a length-and-checksum line.
const PAGES: &str = "http/simple-v2";
/// Cache namespace of wheel metadata, by the wheel's sha256: immutable, kept forever.
const METADATA: &str = "metadata-v2/sha256";
/// Cache namespace of file sizes the index did not give, by the file's sha256.
const SIZES: &str = "sizes-v1/sha256";

/// The largest simple-API project page (HTML or JSON) we hold in memory. The biggest real
/// ones (projects with thousands of nightly wheels) are tens of MB.
pub const MAX_INDEX_PAGE: fetch::BodyLimit =
    fetch::BodyLimit { what: "index page", bytes: 256 * 1024 * 1024 };

/// The largest PEP 658 `.metadata` file we read (the same bound as a METADATA member of a
/// wheel).
pub const MAX_METADATA_FILE: fetch::BodyLimit =
    fetch::BodyLimit { what: "metadata file", bytes: wheel::MAX_METADATA };

/// How the package index client uses the network and the cache.
#[derive(Debug, Clone)]
pub struct PypiClientOptions {
    /// Drop files uploaded at or after this time (PEP 700 `upload-time`).
    pub exclude_newer: Option<Timestamp>,
    /// Fetch every page again, whatever the cache holds.
    pub refresh: bool,
    /// Fetch these projects' pages again.
    pub refresh_packages: BTreeSet<PackageName>,
    /// Use only the cache and local files.
    pub offline: bool,
    /// How long a cached page is used without asking the index again.
    pub page_ttl: Duration,
    /// Keep only the wheels this returns true for (e.g. those some target can install);
    /// the rest of a page is dropped while parsing.
    pub keep_wheel: Option<WheelFilter>,
    /// Projects served by one index only (the manifest's `[[python.index]]`): their files
    /// come from that simple-API root and nowhere else.
    pub pinned: Vec<(PackageName, Url)>,
    /// How files of a name on several indexes are combined.
    pub index_strategy: IndexStrategy,
    /// Per-project cutoffs that replace `exclude_newer` (`--exclude-newer-package NAME=DATE`);
    /// `None` exempts the project from any cutoff (`NAME=false`).
    pub exclude_newer_packages: BTreeMap<PackageName, Option<Timestamp>>,
    /// Indexes whose files are used whatever `exclude_newer` says (the manifest's
    /// `[[python.index]] exclude_newer = false`): for indexes that publish no upload times.
    pub exclude_newer_exempt: Vec<Url>,
}

/// How the files of one name on several indexes are combined; uv's names and meanings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IndexStrategy {
    /// The first index that has the name serves all of its files: a name registered on a
    /// later (public) index can never shadow an earlier (private) one.
    #[default]
    FirstIndex,
    /// Every index is asked; the versions of the first index are tried before any of a
    /// later one (a version on several indexes comes from the first).
    UnsafeFirstMatch,
    /// Every index is asked and their files merged; the best version wins wherever it is,
    /// as pip and pip-compile do with `--extra-index-url`.
    UnsafeBestMatch,
}

impl IndexStrategy {
    /// The command-line and manifest spelling.
    pub fn name(self) -> &'static str {
        match self {
            IndexStrategy::FirstIndex => "first-index",
            IndexStrategy::UnsafeFirstMatch => "unsafe-first-match",
            IndexStrategy::UnsafeBestMatch => "unsafe-best-match",
        }
    }
}

impl std::str::FromStr for IndexStrategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "first-index" => Ok(IndexStrategy::FirstIndex),
            "unsafe-first-match" => Ok(IndexStrategy::UnsafeFirstMatch),
            "unsafe-best-match" => Ok(IndexStrategy::UnsafeBestMatch),
            _ => Err(format!(
                "unknown index strategy `{s}`; expected first-index, unsafe-first-match or unsafe-best-match"
            )),
        }
    }
}

impl std::fmt::Display for IndexStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Default for PypiClientOptions {
    fn default() -> Self {
        PypiClientOptions {
            exclude_newer: None,
            refresh: false,
            refresh_packages: BTreeSet::new(),
            offline: false,
            page_ttl: Duration::from_secs(600),
            keep_wheel: None,
            pinned: Vec::new(),
            index_strategy: IndexStrategy::FirstIndex,
            exclude_newer_packages: BTreeMap::new(),
            exclude_newer_exempt: Vec::new(),
        }
    }
}

/// Talks to the configured indexes. Cheap to clone; clones share an in-memory memo of the
/// pages asked for, so each project is looked up once per run.
#[derive(Debug, Clone)]
pub struct PypiClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: IndexConfig,
    http: fetch::Client,
    cache: fetch::Cache,
    options: PypiClientOptions,
    projects: Mutex<HashMap<PackageName, Arc<PageCell>>>,
}

/// One project's page, looked up once per run (`None`: no location has it).
type PageCell = OnceCell<Option<Arc<ProjectPage>>>;

/// Where files may come from, in the order they are asked.
enum Location {
    /// A simple API root.
    Index(Url),
    /// A find-links URL: one flat HTML page listing files of many projects.
    FlatPage(Url),
    /// A find-links directory or file.
    Local(PathBuf),
}

/// What the cache keeps of a fetched page, before its body.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PageHeader {
    status: u16,
    final_url: String,
    fetched_at: String,
    etag: Option<String>,
    last_modified: Option<String>,
    content_type: Option<String>,
}

/// A page as fetched or as cached.
#[derive(Clone)]
struct Page {
    status: u16,
    final_url: Url,
    content_type: Option<String>,
    body: Bytes,
}

impl Page {
    fn is_missing(&self) -> bool {
        self.status == 404 || self.status == 410
    }
}

impl PypiClient {
    /// A client for these indexes, using `http` for the network and `cache` on disk.
    pub fn new(
        config: IndexConfig,
        http: fetch::Client,
        cache: fetch::Cache,
        options: PypiClientOptions,
    ) -> PypiClient {
        PypiClient {
            inner: Arc::new(Inner { config, http, cache, options, projects: Mutex::new(HashMap::new()) }),
        }
    }

    /// The configuration this client uses.
    pub fn config(&self) -> &IndexConfig {
        &self.inner.config
    }

    /// A redacted description of location `index` (see [`DistFile::index`]), for messages.
    pub fn location_name(&self, index: usize) -> Option<String> {
        let config = &self.inner.config;
        let indexes = 1 + config.extra_index_urls.len();
        if index == 0 {
            Some(redact(&config.index_url))
        } else if index < indexes {
            config.extra_index_urls.get(index - 1).map(redact)
        } else if index < self.pinned_base() {
            config.find_links.get(index - indexes).map(|entry| match Url::parse(entry) {
                Ok(url) => redact(&url),
                Err(_) => entry.clone(),
            })
        } else {
            self.inner.options.pinned.get(index - self.pinned_base()).map(|(_, url)| redact(url))
        }
    }

    /// The files of a project. With [`IndexStrategy::FirstIndex`] (the default), from the
    /// first location that knows it: the index URL, the extra index URLs, then find-links;
    /// files of later locations are never mixed in, so a name registered on a public index
    /// cannot shadow a private one listed first. With the unsafe strategies, the files of
    /// every location that knows it, in location order. `None` if no location knows the name.
    pub async fn project(&self, name: &PackageName) -> Result<Option<Arc<ProjectPage>>, Error> {
        let cell = {
            let mut projects = self.inner.projects.lock().unwrap_or_else(PoisonError::into_inner);
            projects.entry(name.clone()).or_default().clone()
        };
        let page = cell.get_or_try_init(|| self.find_project(name)).await?;
        Ok(page.clone())
    }

    /// The strategy this client combines indexes with.
    pub fn index_strategy(&self) -> IndexStrategy {
        self.inner.options.index_strategy
    }

    /// Whether more than one location could serve `name` (so a strategy matters for it).
    pub fn has_several_locations(&self, name: &PackageName) -> bool {
        self.locations_of(name).len() > 1
    }

    /// `name`'s page from each location that knows it, with its location number, whatever the strategy:
    /// for explaining a failure (which index had which versions).
    pub async fn project_by_location(&self, name: &PackageName) -> Result<Vec<(usize, ProjectPage)>, Error> {
        let mut out = Vec::new();
        for (index, location) in self.locations_of(name) {
            if let Some(page) = self.location_page(name, index, location).await? {
                out.push((index, page));
            }
        }
        Ok(out)
    }

    async fn find_project(&self, name: &PackageName) -> Result<Option<Arc<ProjectPage>>, Error> {
        let merge = self.inner.options.index_strategy != IndexStrategy::FirstIndex;
        let mut merged: Option<ProjectPage> = None;
        for (index, location) in self.locations_of(name) {
            let Some(page) = self.location_page(name, index, location).await? else { continue };
            if !merge {
                return Ok(Some(Arc::new(page)));
            }
            match &mut merged {
                Some(all) => all.merge(&page),
                None => merged = Some(page),
            }
        }
        Ok(merged.map(Arc::new))
    }

    /// The cutoff that applies to `name`'s files on location `index` (`root` for indexes).
    fn cutoff_for(&self, name: &PackageName, root: Option<&Url>) -> Option<Timestamp> {
        let options = &self.inner.options;
        if root.is_some_and(|root| options.exclude_newer_exempt.iter().any(|u| same_root(u, root))) {
            return None;
        }
        match options.exclude_newer_packages.get(name) {
            Some(cutoff) => *cutoff,
            None => options.exclude_newer,
        }
    }

    /// `name`'s files on one location; `None` if the location does not know the name.
    async fn location_page(
        &self,
        name: &PackageName,
        index: usize,
        location: Location,
    ) -> Result<Option<ProjectPage>, Error> {
        let root = match &location {
            Location::Index(root) | Location::FlatPage(root) => Some(root),
            Location::Local(_) => None,
        };
        let ctx = PageContext {
            index,
            exclude_newer: self.cutoff_for(name, root),
            keep_wheel: self.inner.options.keep_wheel.clone(),
        };
        let page = match location {
            Location::Index(root) => {
                let url = project_url(&root, name);
                let page = self.fetch_page(&url, name).await?;
                if page.is_missing() {
                    tracing::debug!("{name} is not on {}", redact(&root));
                    return Ok(None);
                }
                let mut parsed =
                    simple::parse_page(&page.body, page.content_type.as_deref(), &page.final_url, name, &ctx)
                        .map_err(|source| Error::Parse {
                            package: name.to_string(),
                            url: redact(&url),
                            source,
                        })?;
                inherit_credentials(&mut parsed, &root);
                parsed
            }
            Location::FlatPage(url) => {
                let page = self.fetch_page(&url, name).await?;
                let mut parsed =
                    simple::parse_html(&String::from_utf8_lossy(&page.body), &page.final_url, name, &ctx);
                if page.is_missing() || (parsed.files.is_empty() && parsed.undated.is_empty()) {
                    return Ok(None);
                }
                inherit_credentials(&mut parsed, &url);
                parsed
            }
            Location::Local(path) => {
                let (project, dir) = (name.clone(), path.clone());
                let listed = tokio::task::spawn_blocking(move || simple::list_local(&dir, &project, &ctx))
                    .await
                    .map_err(Error::Task)?
                    .map_err(|source| Error::FindLinks { path, source })?;
                if listed.files.is_empty() {
                    return Ok(None);
                }
                listed
            }
        };
        Ok(Some(page))
    }

    /// Where `name`'s files are looked for: its pinned index alone, else every location.
    fn locations_of(&self, name: &PackageName) -> Vec<(usize, Location)> {
        let pinned = &self.inner.options.pinned;
        match pinned.iter().position(|(pinned, _)| pinned == name) {
            Some(i) => vec![(self.pinned_base() + i, Location::Index(pinned[i].1.clone()))],
            None => self.locations(),
        }
    }

    /// The location number of the first pinned index: after the indexes and find-links.
    fn pinned_base(&self) -> usize {
        let config = &self.inner.config;
        1 + config.extra_index_urls.len() + config.find_links.len()
    }

    fn locations(&self) -> Vec<(usize, Location)> {
        let config = &self.inner.config;
        let mut out = Vec::new();
        let indexes = std::iter::once(&config.index_url).chain(&config.extra_index_urls);
        if !config.no_index {
            out.extend(indexes.clone().enumerate().map(|(i, url)| (i, Location::Index(url.clone()))));
        }
        let first = indexes.count();
        for (i, entry) in config.find_links.iter().enumerate() {
            let location = match Url::parse(entry) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => Location::FlatPage(url),
                Ok(url) if url.scheme() == "file" => match url.to_file_path() {
                    Ok(path) => Location::Local(path),
                    Err(()) => continue,
                },
                _ => Location::Local(PathBuf::from(entry)),
            };
            out.push((first + i, location));
        }
        out
    }

    fn offline(&self) -> bool {
        self.inner.options.offline || self.inner.http.is_offline()
    }

    /// A page from the cache when it can be trusted, else from the network.
    async fn fetch_page(&self, url: &Url, package: &PackageName) -> Result<Page, Error> {
        let page_error = |source| Error::Page { package: package.to_string(), url: redact(url), source };
        if url.scheme() == "file" {
            // Local pages are cheaper to read than a cache entry, and never stale.
            let reply = self
                .inner
                .http
                .get_bounded(url, Some(simple::ACCEPT), MAX_INDEX_PAGE)
                .await
                .map_err(page_error)?;
            return Ok(Page {
                status: reply.status,
                final_url: reply.final_url,
                content_type: reply.content_type,
                body: reply.body,
            });
        }
        let options = &self.inner.options;
        let key = fetch::without_credentials(url).to_string();
        let forced = options.refresh || options.refresh_packages.contains(package);
        let cached = if forced && !self.offline() { None } else { self.read_cached_page(&key) };

        if let Some((header, page)) = &cached {
            let fetched_at = header.fetched_at.parse::<Timestamp>().ok();
            let now = Timestamp::now();
            // A page fetched after the cutoff already lists every file the resolution may
            // use: reuse it with no request at all.
            if let (Some(cutoff), Some(fetched)) = (options.exclude_newer, fetched_at) {
                if fetched >= cutoff {
                    tracing::debug!("{key}: cached after the --exclude-newer cutoff; reused");
                    return Ok(page.clone());
                }
            }
            let age_ms = fetched_at.map(|f| now.as_millisecond() - f.as_millisecond());
            if age_ms.is_some_and(|age| age >= 0 && (age as u128) < options.page_ttl.as_millis()) {
                return Ok(page.clone());
            }
            if self.offline() {
                tracing::debug!("{key}: stale cached page used offline");
                return Ok(page.clone());
            }
        }
        if self.offline() {
            return Err(Error::Offline { package: package.to_string(), url: redact(url) });
        }

        let validators = cached
            .as_ref()
            .map(|(h, _)| Validators { etag: h.etag.clone(), last_modified: h.last_modified.clone() })
            .unwrap_or_default();
        let reply = self
            .inner
            .http
            .get_conditional(url, Some(simple::ACCEPT), &validators, MAX_INDEX_PAGE)
            .await
            .map_err(page_error)?;
        let (header, page) = match (reply.status, cached) {
            (304, Some((header, page))) => {
                tracing::debug!("{key}: not modified");
                (PageHeader { fetched_at: Timestamp::now().to_string(), ..header }, page)
            }
            _ => {
                let header = PageHeader {
                    status: reply.status,
                    final_url: fetch::without_credentials(&reply.final_url).to_string(),
                    fetched_at: Timestamp::now().to_string(),
                    etag: reply.etag,
                    last_modified: reply.last_modified,
                    content_type: reply.content_type.clone(),
                };
                let page = Page {
                    status: reply.status,
                    final_url: reply.final_url,
                    content_type: reply.content_type,
                    body: reply.body,
                };
                (header, page)
            }
        };
        self.write_cached_page(&key, &header, &page, package);
        Ok(page)
    }

    fn read_cached_page(&self, key: &str) -> Option<(PageHeader, Page)> {
        let raw = self.inner.cache.read_entry(PAGES, key)?;
        let newline = raw.iter().position(|&b| b == b'\n')?;
        let header: PageHeader = match serde_json::from_slice(&raw[..newline]) {
            Ok(header) => header,
            Err(e) => {
                tracing::debug!("{key}: ignoring an unreadable cache entry: {e}");
                return None;
            }
        };
        let final_url = Url::parse(&header.final_url).ok()?;
        let body = Bytes::from(raw).slice(newline + 1..);
        let page = Page { status: header.status, final_url, content_type: header.content_type.clone(), body };
        Some((header, page))
    }

    /// Failing to cache a page costs a request next time, not the command.
    ///
    /// What is kept is the page reduced to the files a Linux target could use, as PEP 691
    /// JSON: on big projects most files are Windows and macOS wheels, and a warm run spends
    /// its time reading and parsing what it keeps. Pages that do not parse are kept as sent.
    fn write_cached_page(&self, key: &str, header: &PageHeader, page: &Page, package: &PackageName) {
        let ctx = PageContext { keep_wheel: Some(simple::linux_or_any()), ..PageContext::default() };
        let compact = (page.status == 200)
            .then(|| {
                simple::parse_page(&page.body, page.content_type.as_deref(), &page.final_url, package, &ctx)
                    .ok()
            })
            .flatten()
            .map(|parsed| simple::to_json(&parsed))
            .filter(|json| !json.is_empty());
        let header = match &compact {
            Some(_) => {
                PageHeader { content_type: Some(simple::JSON_CONTENT_TYPE.to_string()), ..header.clone() }
            }
            None => header.clone(),
        };
        let Ok(mut raw) = serde_json::to_vec(&header) else { return };
        raw.push(b'\n');
        raw.extend_from_slice(compact.as_deref().unwrap_or(&page.body));
        if let Err(e) = self.inner.cache.write_entry(PAGES, key, &raw) {
            tracing::warn!("{e}");
        }
    }

    /// The core metadata (the `METADATA` file) of a wheel: from the cache by the wheel's
    /// sha256, else the PEP 658 `.metadata` file, else range requests into the zip, else the
    /// whole wheel.
    pub async fn wheel_metadata(&self, file: &DistFile) -> Result<Vec<u8>, Error> {
        let DistFilename::Wheel(wheel) = &file.parsed else {
            return Err(Error::NotAWheel { filename: file.filename.clone() });
        };
        if let Some(sha256) = &file.sha256 {
            if let Some(bytes) = self.inner.cache.read_entry(METADATA, sha256) {
                return Ok(bytes);
            }
        }
        let bytes = self.fetch_wheel_metadata(file, wheel).await?;
        if let Some(sha256) = &file.sha256 {
            if let Err(e) = self.inner.cache.write_entry(METADATA, sha256, &bytes) {
                tracing::warn!("{e}");
            }
        }
        Ok(bytes)
    }

    async fn fetch_wheel_metadata(
        &self,
        file: &DistFile,
        wheel: &pep_types::WheelFilename,
    ) -> Result<Vec<u8>, Error> {
        let file_error = |source| Error::File { filename: file.filename.clone(), source };
        if file.url.scheme() == "file" {
            let path = file
                .url
                .to_file_path()
                .map_err(|()| file_error(fetch::Error::NotAFilePath { url: redact(&file.url) }))?;
            return self.read_local_wheel_metadata(path, wheel, &file.filename).await;
        }
        if self.offline() {
            return Err(Error::Offline { package: file.filename.clone(), url: redact(&file.url) });
        }
        if file.core_metadata {
            let mut url = file.url.clone();
            url.set_path(&format!("{}.metadata", file.url.path()));
            let reply =
                self.inner.http.get_bounded(&url, None, MAX_METADATA_FILE).await.map_err(file_error)?;
            if !reply.is_missing() {
                if let Some(expected) = &file.core_metadata_sha256 {
                    let actual = hex::encode(Sha256::digest(&reply.body));
                    if actual != *expected {
                        return Err(Error::MetadataHash {
                            filename: file.filename.clone(),
                            url: redact(&url),
                            expected: expected.clone(),
                            actual,
                        });
                    }
                }
                return Ok(reply.body.to_vec());
            }
            tracing::debug!("{}: the index lists a .metadata file the server does not have", redact(&url));
        }
        match wheel::read_metadata_by_ranges(&self.inner.http, &file.url, wheel, &file.filename).await? {
            RangeRead::Metadata(bytes) => Ok(bytes),
            RangeRead::Whole(body) => {
                tracing::debug!("{}: the server ignores ranges; read the whole wheel", redact(&file.url));
                if let Some(expected) = &file.sha256 {
                    let actual = hex::encode(Sha256::digest(&body));
                    if actual != *expected {
                        return Err(file_error(fetch::Error::HashMismatch {
                            url: redact(&file.url),
                            expected: expected.clone(),
                            actual,
                        }));
                    }
                    // Keep it: the wheel may be installed later.
                    if let Err(e) = self.inner.cache.insert_blob(&body) {
                        tracing::warn!("{e}");
                    }
                }
                wheel::read_metadata_from_archive(Cursor::new(body), wheel, &file.filename)
            }
            RangeRead::Unsupported => {
                tracing::debug!("{}: no range support; downloading the wheel", redact(&file.url));
                let path = self.download(file).await?;
                self.read_local_wheel_metadata(path, wheel, &file.filename).await
            }
        }
    }

    async fn read_local_wheel_metadata(
        &self,
        path: PathBuf,
        wheel: &pep_types::WheelFilename,
        filename: &str,
    ) -> Result<Vec<u8>, Error> {
        let (wheel, filename) = (wheel.clone(), filename.to_string());
        tokio::task::spawn_blocking(move || {
            let reader =
                fs_err::File::open(&path).map_err(|source| Error::Read { path: path.clone(), source })?;
            wheel::read_metadata_from_archive(std::io::BufReader::new(reader), &wheel, &filename)
        })
        .await
        .map_err(Error::Task)?
    }

    /// The size of a distribution file: the index's, else from the cache (by sha256), else
    /// asked of the server with a one-byte range request (its `Content-Range` names the
    /// total), else by downloading it. Static PEP 503 pages (PyTorch's) give no sizes, and a
    /// lock needs them.
    pub async fn file_size(&self, file: &DistFile) -> Result<u64, Error> {
        if let Some(size) = file.size {
            return Ok(size);
        }
        let cached = file.sha256.as_ref().and_then(|sha| self.inner.cache.read_entry(SIZES, sha));
        if let Some(size) = cached.and_then(|b| std::str::from_utf8(&b).ok()?.trim().parse().ok()) {
            return Ok(size);
        }
        let file_error = |source| Error::File { filename: file.filename.clone(), source };
        if self.offline() && file.url.scheme() != "file" {
            return Err(Error::Offline { package: file.filename.clone(), url: redact(&file.url) });
        }
        let size = match self.inner.http.get_range(&file.url, fetch::ByteRange::Suffix(1)).await {
            Ok(fetch::RangeReply::Partial { total, .. }) => total,
            Ok(fetch::RangeReply::Whole(body)) => body.len() as u64,
            Ok(fetch::RangeReply::Unsupported) => {
                let path = self.download(file).await?;
                fs_err::metadata(&path).map_err(|source| Error::Read { path, source })?.len()
            }
            Err(e) => return Err(file_error(e)),
        };
        if let Some(sha256) = &file.sha256 {
            if let Err(e) = self.inner.cache.write_entry(SIZES, sha256, size.to_string().as_bytes()) {
                tracing::warn!("{e}");
            }
        }
        Ok(size)
    }

    /// Downloads a distribution into the cache, checked against the index's sha256 (a file
    /// the index gives no hash for is stored under the digest of what arrived).
    pub async fn download(&self, file: &DistFile) -> Result<PathBuf, Error> {
        let file_error = |source| Error::File { filename: file.filename.clone(), source };
        let http = &self.inner.http;
        if let Some(sha256) = &file.sha256 {
            return http
                .download_verified_sized(&file.url, sha256, file.size, &self.inner.cache)
                .await
                .map_err(file_error);
        }
        tracing::debug!("{}: the index gives no sha256; the download is not verified", file.filename);
        let (_, path) =
            http.download_unverified(&file.url, file.size, &self.inner.cache).await.map_err(file_error)?;
        Ok(path)
    }
}

/// `<root>/<normalized name>/`, as pip builds project page URLs.
fn project_url(root: &Url, name: &PackageName) -> Url {
    let mut url = root.clone();
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    url.set_query(None);
    url.set_fragment(None);
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().push(name.as_ref()).push("");
    }
    url
}

/// Two index roots name the same index (credentials and a trailing slash aside).
fn same_root(a: &Url, b: &Url) -> bool {
    let trim = |u: &Url| fetch::without_credentials(u).as_str().trim_end_matches('/').to_string();
    trim(a) == trim(b)
}

/// Files on the host of the index they were listed by get its credentials: private indexes
/// often list absolute file URLs without them (pip remembers credentials per host too).
fn inherit_credentials(page: &mut ProjectPage, index: &Url) {
    if index.username().is_empty() && index.password().is_none() {
        return;
    }
    for file in &mut page.files {
        let url = &mut file.url;
        let same_origin = url.scheme() == index.scheme()
            && url.host_str() == index.host_str()
            && url.port_or_known_default() == index.port_or_known_default();
        if same_origin && url.username().is_empty() && url.password().is_none() {
            let _ = url.set_username(index.username());
            let _ = url.set_password(index.password());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn project_urls() {
        let name = PackageName::from_str("Foo.Bar").unwrap();
        let with = Url::parse("https://example.invalid/simple/").unwrap();
        let without = Url::parse("https://example.invalid/simple").unwrap();
        assert_eq!(project_url(&with, &name).as_str(), "https://example.invalid/simple/foo-bar/");
        assert_eq!(project_url(&without, &name).as_str(), "https://example.invalid/simple/foo-bar/");
    }
}
