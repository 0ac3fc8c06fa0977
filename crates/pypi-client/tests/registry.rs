//! The registry client against indexes served on 127.0.0.1.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use common::{serve_range, Reply, Request, Server};
use pep_types::PackageName;
use pypi_client::{DistFile, Error, IndexConfig, PypiClient, PypiClientOptions};
use sha2::{Digest, Sha256};
use url::Url;

const METADATA: &str = "Metadata-Version: 2.1\nName: foo\nVersion: 1.0\nRequires-Dist: bar>=1\n";

fn name(s: &str) -> PackageName {
    PackageName::from_str(s).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn config(index: Url, extra: Vec<Url>) -> IndexConfig {
    IndexConfig {
        index_url: index,
        index_url_is_default: false,
        extra_index_urls: extra,
        find_links: Vec::new(),
        cert: None,
        timeout: None,
        no_index: false,
    }
}

fn http(offline: bool) -> fetch::Client {
    fetch::Client::new(fetch::ClientOptions {
        offline,
        retries: 1,
        backoff: Duration::from_millis(5),
        ..Default::default()
    })
    .unwrap()
}

fn registry(config: IndexConfig, cache: &tempfile::TempDir, options: PypiClientOptions) -> PypiClient {
    PypiClient::new(config, http(options.offline), fetch::Cache::at(cache.path()), options)
}

/// Pseudo-random bytes that deflate cannot shrink.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

/// A wheel of `foo 1.0`: `before` members, then the dist-info, then `after` members.
fn wheel(before: &[(String, Vec<u8>)], after: &[(String, Vec<u8>)]) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    use zip::CompressionMethod;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let mut add = |name: &str, data: &[u8], options| {
        zip.start_file(name, options).unwrap();
        zip.write_all(data).unwrap();
    };
    for (name, data) in before {
        add(name, data, stored);
    }
    add("foo/__init__.py", b"", deflated);
    add("foo-1.0.dist-info/METADATA", METADATA.as_bytes(), deflated);
    add("foo-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\n", deflated);
    for (name, data) in after {
        add(name, data, stored);
    }
    zip.finish().unwrap().into_inner()
}

/// An index of `foo` (JSON) whose files are served from `/files/`, honouring ranges unless
/// `ranges` is false.
struct Index {
    server: Server,
}

#[derive(Clone, Copy, PartialEq)]
enum Ranges {
    Honoured,
    Ignored,
    Refused,
}

impl Index {
    fn start(files: Vec<(&str, Vec<u8>)>, ranges: Ranges) -> Index {
        let entries: Vec<String> = files
            .iter()
            .map(|(filename, data)| {
                format!(
                    r#"{{"filename": "{filename}", "url": "../../files/{filename}", "hashes": {{"sha256": "{}"}},
                       "upload-time": "2021-06-01T00:00:00Z"}}"#,
                    sha256(data)
                )
            })
            .collect();
        let page = format!(
            r#"{{"meta": {{"api-version": "1.1"}}, "name": "foo", "files": [{}]}}"#,
            entries.join(",")
        );
        let files: Arc<HashMap<String, Vec<u8>>> =
            Arc::new(files.into_iter().map(|(n, d)| (format!("/files/{n}"), d)).collect());
        let server = Server::start(move |req: &Request| {
            if req.path == "/simple/foo/" {
                return Reply::ok(page.clone()).header("Content-Type", "application/vnd.pypi.simple.v1+json");
            }
            match files.get(&req.path) {
                Some(_) if req.header("range").is_some() && ranges == Ranges::Refused => Reply::status(501),
                Some(data) if ranges == Ranges::Ignored => Reply::ok(data.clone()),
                Some(data) => serve_range(req, data),
                None => Reply::status(404),
            }
        });
        Index { server }
    }

    fn url(&self) -> Url {
        self.server.url("/simple/")
    }
}

async fn only_file(client: &PypiClient) -> DistFile {
    let page = client.project(&name("foo")).await.unwrap().expect("foo is on the index");
    assert_eq!(page.files.len(), 1);
    page.files[0].clone()
}

#[tokio::test]
async fn first_index_that_knows_a_name_serves_it() {
    let first = Server::start(|req| match req.path.as_str() {
        "/simple/shared/" => {
            Reply::ok(r#"<a href="/f/shared-1.0.tar.gz#sha256=aa">x</a>"#).header("Content-Type", "text/html")
        }
        _ => Reply::status(404),
    });
    let second = Server::start(|req| {
        match req.path.as_str() {
        "/simple/shared/" | "/simple/only-second/" => Reply::ok(
            r#"{"meta": {"api-version": "1.0"}, "files": [
                {"filename": "shared-2.0.tar.gz", "url": "/f/shared-2.0.tar.gz", "hashes": {}},
                {"filename": "only_second-1.0-py3-none-any.whl", "url": "/f/only_second-1.0-py3-none-any.whl", "hashes": {}}]}"#,
        )
        .header("Content-Type", "application/vnd.pypi.simple.v1+json"),
        _ => Reply::status(404),
    }
    });
    let cache = tempfile::tempdir().unwrap();
    let client = registry(
        config(first.url("/simple"), vec![second.url("/simple/")]),
        &cache,
        PypiClientOptions::default(),
    );

    let shared = client.project(&name("Shared")).await.unwrap().unwrap();
    let versions: Vec<_> = shared.files.iter().map(|f| (f.filename.as_str(), f.index)).collect();
    assert_eq!(versions, [("shared-1.0.tar.gz", 0)], "no files of the second index are mixed in");
    assert_eq!(second.hits(), 0, "the second index is not even asked");

    let only = client.project(&name("only_second")).await.unwrap().unwrap();
    assert_eq!(only.files.len(), 1);
    assert_eq!(only.files[0].index, 1);
    assert_eq!(client.location_name(1).unwrap(), second.url("/simple/").to_string());

    assert!(client.project(&name("nowhere")).await.unwrap().is_none());
    assert!(first
        .requests()
        .iter()
        .all(|r| r.header("accept") == Some("application/vnd.pypi.simple.v1+json, text/html;q=0.1")));

    // Each project is looked up once per client.
    let hits = (first.hits(), second.hits());
    client.project(&name("shared")).await.unwrap();
    assert_eq!((first.hits(), second.hits()), hits);
}

#[tokio::test]
async fn credentials_reach_files_on_the_index_host() {
    let server = Server::start(|req| match req.path.as_str() {
        "/simple/foo/" => Reply::ok(r#"<a href="/files/foo-1.0.tar.gz">foo</a>"#),
        _ => Reply::status(404),
    });
    let mut index = server.url("/simple/");
    index.set_username("alice").unwrap();
    index.set_password(Some("s3cret")).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let client = registry(config(index, vec![]), &cache, PypiClientOptions::default());
    let page = client.project(&name("foo")).await.unwrap().unwrap();
    assert_eq!(page.files[0].url.username(), "alice");
    assert!(server.requests()[0].header("authorization").is_some());
}

#[tokio::test]
async fn exclude_newer_drops_files_and_reuses_a_later_cached_page() {
    let page = r#"{"meta": {"api-version": "1.1"}, "files": [
        {"filename": "foo-1.0.tar.gz", "url": "foo-1.0.tar.gz", "hashes": {}, "upload-time": "2020-01-01T00:00:00Z"},
        {"filename": "foo-2.0.tar.gz", "url": "foo-2.0.tar.gz", "hashes": {}, "upload-time": "2022-01-01T00:00:00.5Z"},
        {"filename": "foo-3.0.tar.gz", "url": "foo-3.0.tar.gz", "hashes": {}}]}"#;
    let server =
        Server::start(move |_| Reply::ok(page).header("Content-Type", "application/vnd.pypi.simple.v1+json"));
    let cache = tempfile::tempdir().unwrap();
    let options = PypiClientOptions {
        exclude_newer: Some("2021-01-01T00:00:00Z".parse().unwrap()),
        page_ttl: Duration::ZERO,
        ..Default::default()
    };
    let client = registry(config(server.url("/simple/"), vec![]), &cache, options.clone());
    let page = client.project(&name("foo")).await.unwrap().unwrap();
    let names: Vec<_> = page.files.iter().map(|f| f.filename.as_str()).collect();
    assert_eq!(names, ["foo-1.0.tar.gz"], "no upload time: cannot be shown older, dropped");
    assert_eq!(page.undated, [(0, 1)].into_iter().collect(), "and counted for the message");
    assert_eq!(server.hits(), 1);

    // A new run (fresh memo), TTL zero: the page was fetched after the cutoff, so it is
    // complete for this resolution and no request is made.
    let again = registry(config(server.url("/simple/"), vec![]), &cache, options.clone());
    assert_eq!(again.project(&name("foo")).await.unwrap().unwrap().files.len(), 1);
    assert_eq!(server.hits(), 1);

    // The package exempt (`--exclude-newer-package foo=false`), or the index: every file.
    let exempt = PypiClientOptions {
        exclude_newer_packages: [(name("foo"), None)].into_iter().collect(),
        ..options.clone()
    };
    let all = registry(config(server.url("/simple/"), vec![]), &cache, exempt);
    assert_eq!(all.project(&name("foo")).await.unwrap().unwrap().files.len(), 3);
    let exempt = PypiClientOptions { exclude_newer_exempt: vec![server.url("/simple")], ..options.clone() };
    let all = registry(config(server.url("/simple/"), vec![]), &cache, exempt);
    assert_eq!(all.project(&name("foo")).await.unwrap().unwrap().files.len(), 3);
    // Its own cutoff: foo-2.0 (2022) is before 2023.
    let own = PypiClientOptions {
        exclude_newer_packages: [(name("foo"), Some("2023-01-01T00:00:00Z".parse().unwrap()))]
            .into_iter()
            .collect(),
        ..options.clone()
    };
    let own = registry(config(server.url("/simple/"), vec![]), &cache, own);
    assert_eq!(own.project(&name("foo")).await.unwrap().unwrap().files.len(), 2);
    assert_eq!(server.hits(), 1);

    // --refresh asks again.
    let refresh = PypiClientOptions { refresh: true, ..options };
    let refreshed = registry(config(server.url("/simple/"), vec![]), &cache, refresh);
    refreshed.project(&name("foo")).await.unwrap();
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn pages_live_for_a_ttl_then_revalidate() {
    let server = Server::start(|req| {
        if req.header("if-none-match") == Some("\"v1\"") {
            Reply::status(304)
        } else {
            Reply::ok(r#"<a href="foo-1.0.tar.gz">foo</a>"#).header("ETag", "\"v1\"")
        }
    });
    let cache = tempfile::tempdir().unwrap();
    let cfg = config(server.url("/simple/"), vec![]);
    registry(cfg.clone(), &cache, PypiClientOptions::default()).project(&name("foo")).await.unwrap();
    registry(cfg.clone(), &cache, PypiClientOptions::default()).project(&name("foo")).await.unwrap();
    assert_eq!(server.hits(), 1, "within the TTL: no request");

    let stale = PypiClientOptions { page_ttl: Duration::ZERO, ..Default::default() };
    let page = registry(cfg, &cache, stale).project(&name("foo")).await.unwrap().unwrap();
    assert_eq!(page.files.len(), 1, "a 304 serves the cached body");
    assert_eq!(server.hits(), 2);
    assert_eq!(server.requests()[1].header("if-none-match"), Some("\"v1\""));
}

#[tokio::test]
async fn offline_uses_the_cache_or_names_the_package() {
    let index = Index::start(vec![("foo-1.0-py3-none-any.whl", wheel(&[], &[]))], Ranges::Honoured);
    let cache = tempfile::tempdir().unwrap();
    let cfg = config(index.url(), vec![]);
    let online = registry(cfg.clone(), &cache, PypiClientOptions::default());
    let file = only_file(&online).await;
    online.wheel_metadata(&file).await.unwrap();
    let hits = index.server.hits();

    let offline_options = PypiClientOptions { offline: true, page_ttl: Duration::ZERO, ..Default::default() };
    let offline = registry(cfg, &cache, offline_options);
    let file = only_file(&offline).await;
    assert_eq!(offline.wheel_metadata(&file).await.unwrap(), METADATA.as_bytes());
    let err = offline.project(&name("never-fetched")).await.unwrap_err();
    assert!(matches!(err, Error::Offline { .. }), "{err}");
    assert!(err.to_string().contains("`never-fetched`"), "{err}");
    assert_eq!(index.server.hits(), hits);
}

#[tokio::test]
async fn metadata_of_a_small_wheel_takes_one_range_request() {
    let data = wheel(&[], &[]);
    let index = Index::start(vec![("foo-1.0-py3-none-any.whl", data)], Ranges::Honoured);
    let cache = tempfile::tempdir().unwrap();
    let client = registry(config(index.url(), vec![]), &cache, PypiClientOptions::default());
    let file = only_file(&client).await;
    assert_eq!(client.wheel_metadata(&file).await.unwrap(), METADATA.as_bytes());
    assert_eq!(index.server.hits(), 2, "the page, then one suffix range holding everything");

    // Cached by the wheel's sha256, across clients.
    let other = registry(config(index.url(), vec![]), &cache, PypiClientOptions::default());
    assert_eq!(other.wheel_metadata(&file).await.unwrap(), METADATA.as_bytes());
    assert_eq!(index.server.hits(), 2);
}

#[tokio::test]
async fn metadata_far_from_the_end_takes_a_second_range() {
    // 300 KiB of incompressible data after METADATA: the tail holds the central directory
    // but not METADATA.
    let data = wheel(&[], &[("foo/blob.bin".to_string(), noise(300 * 1024, 1))]);
    let index = Index::start(vec![("foo-1.0-py3-none-any.whl", data)], Ranges::Honoured);
    let cache = tempfile::tempdir().unwrap();
    let client = registry(config(index.url(), vec![]), &cache, PypiClientOptions::default());
    let file = only_file(&client).await;
    assert_eq!(client.wheel_metadata(&file).await.unwrap(), METADATA.as_bytes());
    let ranges: Vec<_> =
        index.server.requests().iter().filter_map(|r| r.header("range").map(str::to_string)).collect();
    assert_eq!(ranges.len(), 2, "{ranges:?}");
}

#[tokio::test]
async fn large_central_directory_takes_a_third_range() {
    let many: Vec<_> =
        (0..2500).map(|i| (format!("foo/data/a_rather_long_module_name_{i:05}.py"), vec![b'x'])).collect();
    let big = vec![("foo/big.bin".to_string(), noise(200 * 1024, 2))];
    let data = wheel(&big, &many);
    let index = Index::start(vec![("foo-1.0-py3-none-any.whl", data)], Ranges::Honoured);
    let cache = tempfile::tempdir().unwrap();
    let client = registry(config(index.url(), vec![]), &cache, PypiClientOptions::default());
    let file = only_file(&client).await;
    assert_eq!(client.wheel_metadata(&file).await.unwrap(), METADATA.as_bytes());
    let ranges = index.server.requests().iter().filter(|r| r.header("range").is_some()).count();
    assert_eq!(ranges, 3, "tail, central directory, METADATA");
}

#[tokio::test]
async fn zip64_wheel() {
    // More than 65,535 members forces the zip64 end records.
    let many: Vec<_> = (0..66_000).map(|i| (format!("foo/m{i}"), Vec::new())).collect();
    let data = wheel(&[], &many);
    assert!(data.windows(4).any(|w| w == [0x50, 0x4b, 0x06, 0x06]), "a zip64 end record");
    let index = Index::start(vec![("foo-1.0-py3-none-any.whl", data)], Ranges::Honoured);
    let cache = tempfile::tempdir().unwrap();
    let client = registry(config(index.url(), vec![]), &cache, PypiClientOptions::default());
    let file = only_file(&client).await;
    assert_eq!(client.wheel_metadata(&file).await.unwrap(), METADATA.as_bytes());
}

#[tokio::test]
async fn servers_without_ranges() {
    for (ranges, requests) in [(Ranges::Ignored, 1), (Ranges::Refused, 2)] {
        let data = wheel(&[], &[("foo/blob.bin".to_string(), noise(100 * 1024, 3))]);
        let digest = sha256(&data);
        let index = Index::start(vec![("foo-1.0-py3-none-any.whl", data)], ranges);
        let cache = tempfile::tempdir().unwrap();
        let client = registry(config(index.url(), vec![]), &cache, PypiClientOptions::default());
        let file = only_file(&client).await;
        assert_eq!(client.wheel_metadata(&file).await.unwrap(), METADATA.as_bytes());
        let file_requests = index.server.requests().iter().filter(|r| r.path.starts_with("/files/")).count();
        assert_eq!(file_requests, requests);
        // Either way the wheel is now in the blob cache, so a download costs nothing.
        let path = client.download(&file).await.unwrap();
        assert_eq!(path, cache.path().join("blobs/sha256").join(&digest));
        assert_eq!(
            index.server.requests().iter().filter(|r| r.path.starts_with("/files/")).count(),
            requests
        );
    }
}

#[tokio::test]
async fn pep_658_metadata_file_is_preferred_and_checked() {
    let metadata_hash = sha256(METADATA.as_bytes());
    let page = format!(
        r#"<a href="/files/foo-1.0-py3-none-any.whl#sha256={}" data-core-metadata="sha256={metadata_hash}">foo</a>
           <a href="/files/foo-1.1-py3-none-any.whl#sha256={}" data-core-metadata="sha256={}">foo</a>"#,
        "1".repeat(64),
        "2".repeat(64),
        "3".repeat(64)
    );
    let server = Server::start(move |req| match req.path.as_str() {
        "/simple/foo/" => Reply::ok(page.clone()),
        p if p.ends_with(".whl.metadata") => Reply::ok(METADATA),
        _ => Reply::status(404),
    });
    let cache = tempfile::tempdir().unwrap();
    let client = registry(config(server.url("/simple/"), vec![]), &cache, PypiClientOptions::default());
    let files = client.project(&name("foo")).await.unwrap().unwrap().files.clone();
    assert_eq!(client.wheel_metadata(&files[0]).await.unwrap(), METADATA.as_bytes());
    assert_eq!(server.requests()[1].path, "/files/foo-1.0-py3-none-any.whl.metadata");
    let err = client.wheel_metadata(&files[1]).await.unwrap_err();
    assert!(matches!(err, Error::MetadataHash { .. }), "{err}");
}

#[tokio::test]
async fn find_links_directory_with_no_index() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("foo-1.0-py3-none-any.whl"), wheel(&[], &[])).unwrap();
    let cfg = IndexConfig {
        find_links: vec![dir.path().to_string_lossy().into_owned()],
        no_index: true,
        ..config(Url::parse("http://127.0.0.1:9/unused/").unwrap(), vec![])
    };
    let cache = tempfile::tempdir().unwrap();
    let offline = PypiClientOptions { offline: true, ..Default::default() };
    let client = registry(cfg, &cache, offline);
    let file = only_file(&client).await;
    assert_eq!(file.index, 1, "find-links come after the (unused) index");
    assert!(file.sha256.is_some());
    assert_eq!(client.wheel_metadata(&file).await.unwrap(), METADATA.as_bytes());
    assert!(client.download(&file).await.unwrap().is_file());
}
