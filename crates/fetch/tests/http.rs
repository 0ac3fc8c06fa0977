//! The client against a real (tiny) HTTP server on 127.0.0.1.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{serve_range, Reply, Server};
use fetch::{ByteRange, Cache, Client, ClientOptions, Error, RangeReply, Validators};
use sha2::{Digest, Sha256};

fn client() -> Client {
    Client::new(ClientOptions { retries: 3, backoff: Duration::from_millis(5), ..Default::default() })
        .unwrap()
}

#[tokio::test]
async fn retries_server_errors_then_succeeds() {
    let count = AtomicUsize::new(0);
    let server = Server::start(move |_| {
        if count.fetch_add(1, Ordering::SeqCst) < 2 {
            Reply::status(500)
        } else {
            Reply::ok("fine").header("ETag", "\"v1\"").header("Content-Type", "text/html")
        }
    });
    let reply = client().get(&server.url("/page/"), Some("text/html")).await.unwrap();
    assert_eq!((reply.status, &reply.body[..]), (200, &b"fine"[..]));
    assert_eq!(reply.etag.as_deref(), Some("\"v1\""));
    assert_eq!(reply.content_type.as_deref(), Some("text/html"));
    assert_eq!(server.hits(), 3);
    assert_eq!(server.requests()[0].header("accept"), Some("text/html"));
}

#[tokio::test]
async fn gives_up_after_the_last_retry() {
    let server = Server::start(|_| Reply::status(503));
    let err = client().get(&server.url("/x"), None).await.unwrap_err();
    assert!(matches!(err, Error::Status { status: 503, attempts: 4, .. }), "{err}");
    assert_eq!(server.hits(), 4);
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let count = AtomicUsize::new(0);
    let server = Server::start(move |_| {
        if count.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::status(429).header("Retry-After", "1")
        } else {
            Reply::ok("later")
        }
    });
    let client =
        Client::new(ClientOptions { backoff: Duration::from_millis(1), ..Default::default() }).unwrap();
    let start = Instant::now();
    let reply = client.get(&server.url("/x"), None).await.unwrap();
    assert_eq!(&reply.body[..], b"later");
    assert!(start.elapsed() >= Duration::from_secs(1), "waited only {:?}", start.elapsed());
}

#[tokio::test]
async fn not_found_is_a_response_and_client_errors_are_not_retried() {
    let server = Server::start(|req| match req.path.as_str() {
        "/gone" => Reply::status(410),
        "/missing" => Reply::status(404),
        _ => Reply::status(400),
    });
    let c = client();
    assert!(c.get(&server.url("/missing"), None).await.unwrap().is_missing());
    assert!(c.get(&server.url("/gone"), None).await.unwrap().is_missing());
    let err = c.get(&server.url("/bad"), None).await.unwrap_err();
    assert!(matches!(err, Error::Status { status: 400, .. }), "{err}");
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn conditional_get_sends_validators() {
    let server = Server::start(|req| {
        if req.header("if-none-match") == Some("\"v1\"") {
            Reply::status(304)
        } else {
            Reply::ok("body")
        }
    });
    let validators = Validators { etag: Some("\"v1\"".into()), last_modified: None };
    let reply =
        client().get_conditional(&server.url("/p"), None, &validators, fetch::MAX_BODY).await.unwrap();
    assert_eq!(reply.status, 304);
    assert!(reply.body.is_empty());
}

#[tokio::test]
async fn range_requests() {
    let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let served = data.clone();
    let server = Server::start(move |req| serve_range(req, &served));
    let c = client();
    let url = server.url("/f.whl");
    match c.get_range(&url, ByteRange::Suffix(100)).await.unwrap() {
        RangeReply::Partial { start, total, body } => {
            assert_eq!((start, total), (9_900, 10_000));
            assert_eq!(&body[..], &data[9_900..]);
        }
        other => panic!("{other:?}"),
    }
    match c.get_range(&url, ByteRange::Span { start: 10, end_inclusive: 19 }).await.unwrap() {
        RangeReply::Partial { start, body, .. } => assert_eq!((start, &body[..]), (10, &data[10..20])),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests()[0].header("range"), Some("bytes=-100"));
    // Past the end of the file: the server says 416.
    let past = ByteRange::Span { start: 20_000, end_inclusive: 20_010 };
    assert_eq!(c.get_range(&url, past).await.unwrap(), RangeReply::Unsupported);
}

#[tokio::test]
async fn servers_that_ignore_or_refuse_ranges() {
    let server = Server::start(|req| match req.path.as_str() {
        "/ignores" => Reply::ok("the whole file"),
        _ => Reply::status(501),
    });
    let c = client();
    let whole = c.get_range(&server.url("/ignores"), ByteRange::Suffix(4)).await.unwrap();
    assert_eq!(whole, RangeReply::Whole(bytes::Bytes::from_static(b"the whole file")));
    let refused = c.get_range(&server.url("/refuses"), ByteRange::Suffix(4)).await.unwrap();
    assert_eq!(refused, RangeReply::Unsupported);
    assert_eq!(server.hits(), 2, "501 on a range request is an answer, not a failure");
}

#[tokio::test]
async fn download_verified_checks_the_hash() {
    let body = b"wheel bytes".to_vec();
    let digest = hex::encode(Sha256::digest(&body));
    let server = Server::start(move |_| Reply::ok(body.clone()));
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path());
    let c = client();
    let url = server.url("/a.whl");

    let wrong = "0".repeat(64);
    let err = c.download_verified(&url, &wrong, &cache).await.unwrap_err();
    assert!(matches!(&err, Error::HashMismatch { actual, .. } if *actual == digest), "{err}");
    let blobs = dir.path().join("blobs/sha256");
    assert_eq!(std::fs::read_dir(&blobs).unwrap().count(), 0, "no blob and no temp file left");

    let path = c.download_verified(&url, &digest.to_uppercase(), &cache).await.unwrap();
    assert_eq!(path, blobs.join(&digest));
    assert_eq!(std::fs::read(&path).unwrap(), b"wheel bytes");
    let hits = server.hits();
    c.download_verified(&url, &digest, &cache).await.unwrap();
    assert_eq!(server.hits(), hits, "a present blob is reused without a request");

    // A blob swapped for other bytes, or cut short, is re-hashed on reuse, removed and
    // fetched again.
    for damaged in [&b"corrupt bytes"[..], &b"wheel"[..]] {
        std::fs::write(&path, damaged).unwrap();
        let before = server.hits();
        c.download_verified(&url, &digest, &cache).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"wheel bytes");
        assert_eq!(server.hits(), before + 1);
    }

    // Offline, a damaged blob is removed and named, not used; a missing one is `Offline`.
    let offline = Client::new(ClientOptions { offline: true, ..Default::default() }).unwrap();
    std::fs::write(&path, b"corrupt").unwrap();
    let err = offline.download_verified(&url, &digest, &cache).await.unwrap_err();
    assert!(matches!(&err, Error::DamagedOffline { path: p, .. } if *p == path), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    assert!(!err.is_network() && err.hint().is_some_and(|h| h.contains("without --offline")));
    assert!(!path.exists());
    let err = offline.download_verified(&url, &digest, &cache).await.unwrap_err();
    assert!(matches!(err, Error::Offline { .. }) && !err.is_network(), "{err}");
}

#[tokio::test]
async fn credentials_are_sent_but_never_shown() {
    let server = Server::start(|_| Reply::status(403));
    let mut url = server.url("/private/simple/");
    url.set_username("alice").unwrap();
    url.set_password(Some("s3cret")).unwrap();
    let err = client().get(&url, None).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(err.to_string().contains("alice:****@127.0.0.1"), "{err}");
    assert_eq!(server.requests()[0].header("authorization"), Some("Basic YWxpY2U6czNjcmV0"));

    // A connection failure (nothing listens on the port) is redacted too.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = url::Url::parse(&format!("http://alice:s3cret@127.0.0.1:{port}/simple/")).unwrap();
    let no_retry = Client::new(ClientOptions { retries: 0, ..Default::default() }).unwrap();
    let err = no_retry.get(&url, None).await.unwrap_err();
    let mut shown = format!("{err:?}");
    let mut source: Option<&dyn std::error::Error> = Some(&err);
    while let Some(e) = source {
        shown.push_str(&e.to_string());
        source = e.source();
    }
    assert!(matches!(err, Error::Network { .. }), "{err}");
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[tokio::test]
async fn offline_refuses_the_network_but_reads_files() {
    let server = Server::start(|_| Reply::ok("x"));
    let c = Client::new(ClientOptions { offline: true, ..Default::default() }).unwrap();
    let err = c.get(&server.url("/simple/"), None).await.unwrap_err();
    assert!(matches!(err, Error::Offline { .. }), "{err}");
    let err = c.get_range(&server.url("/f"), ByteRange::Suffix(1)).await.unwrap_err();
    assert!(matches!(err, Error::Offline { .. }), "{err}");
    assert_eq!(server.hits(), 0);

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pkg")).unwrap();
    std::fs::write(dir.path().join("pkg/index.html"), "<a href='x'>x</a>").unwrap();
    let url = url::Url::from_directory_path(dir.path().join("pkg")).unwrap();
    let reply = c.get(&url, None).await.unwrap();
    assert_eq!((reply.status, reply.content_type.as_deref()), (200, Some("text/html")));
    let missing = url::Url::from_file_path(dir.path().join("nope")).unwrap();
    assert!(c.get(&missing, None).await.unwrap().is_missing());
}

#[tokio::test]
async fn concurrency_is_bounded() {
    let live = std::sync::Arc::new(AtomicUsize::new(0));
    let peak = std::sync::Arc::new(AtomicUsize::new(0));
    let (l, p) = (live.clone(), peak.clone());
    let server = Server::start(move |_| {
        let now = l.fetch_add(1, Ordering::SeqCst) + 1;
        p.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        l.fetch_sub(1, Ordering::SeqCst);
        Reply::ok("x")
    });
    let c = Client::new(ClientOptions { max_concurrency: 2, ..Default::default() }).unwrap();
    let urls: Vec<_> = (0..6).map(|i| server.url(&format!("/{i}"))).collect();
    let all = futures::future::join_all(urls.iter().map(|u| c.get(u, None))).await;
    assert!(all.iter().all(|r| r.is_ok()));
    assert!(peak.load(Ordering::SeqCst) <= 2, "peak {}", peak.load(Ordering::SeqCst));
}

#[tokio::test]
async fn endless_bodies_stop_at_the_limit_or_the_known_size() {
    let server = Server::start(|_| Reply::endless(&b"0123456789abcdef"[..]));
    let c = client();
    let limit = fetch::BodyLimit { what: "test page", bytes: 1 << 20 };
    let err = c.get_bounded(&server.url("/page"), None, limit).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { what: "test page", limit: 1048576, .. }), "{err}");
    assert!(err.to_string().contains("larger than 1 MiB"), "{err}");
    assert!(err.hint().is_some() && err.is_network());
    assert_eq!(server.hits(), 1, "a body over the limit is not retried");

    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path());
    let url = server.url("/a.whl");
    let err = c.download_verified_sized(&url, &"0".repeat(64), Some(4096), &cache).await.unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { expected: 4096, .. }), "{err}");
    let err = c.download_unverified(&url, Some(100), &cache).await.unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { expected: 100, .. }), "{err}");
    let blobs = dir.path().join("blobs/sha256");
    assert_eq!(std::fs::read_dir(&blobs).unwrap().count(), 0, "no blob and no temp file left");

    // A file of unknown digest streams into the cache under the digest of what arrived.
    let fine = Server::start(|_| Reply::ok("sdist bytes"));
    let (sha, path) = c.download_unverified(&fine.url("/a.tar.gz"), None, &cache).await.unwrap();
    assert_eq!(sha, hex::encode(Sha256::digest(b"sdist bytes")));
    assert_eq!(std::fs::read(path).unwrap(), b"sdist bytes");
}

/// An HTTPS server on 127.0.0.1 (Python's, with a certificate of `test_support`'s CA) that
/// answers every GET with a redirect to `location`; dropped, it is killed.
struct RedirectingTls {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedirectingTls {
    fn start(location: &str) -> RedirectingTls {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        test_support::make_certificates(dir.path());
        let script = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(302)
        self.send_header("Location", sys.argv[1])
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), H)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain("cert.pem", "key.pem")
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;
        let mut child = std::process::Command::new("python3")
            .args(["-c", script, location])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs (./test.sh installs it)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the TLS server printed {line:?}"));
        RedirectingTls { child, port, dir }
    }
}

impl Drop for RedirectingTls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// reqwest keeps `Authorization` on a redirect to the same host whatever the scheme: a
/// redirect from HTTPS to plain HTTP is refused before anything is sent there, with both
/// URLs named and the credentials left out.
#[tokio::test]
async fn a_redirect_from_https_to_plain_http_is_refused() {
    let plain = Server::start(|_| Reply::ok("unencrypted"));
    let tls = RedirectingTls::start(plain.url("/file").as_str());
    let client =
        Client::new(ClientOptions { ca_bundle: Some(tls.dir.path().join("ca.pem")), ..Default::default() })
            .unwrap();
    let url = url::Url::parse(&format!("https://user:s3cret@127.0.0.1:{}/file", tls.port)).unwrap();
    let err = client.get(&url, None).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Redirect { .. }), "{text}");
    assert!(text.contains("from HTTPS to plain HTTP"), "{text}");
    assert!(text.contains(plain.url("/file").as_str()), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(err.hint().is_some_and(|h| h.contains("HTTPS")));
    assert_eq!(plain.hits(), 0, "nothing reached the plain-HTTP server");

    // An HTTPS server redirecting to HTTPS is followed (here to itself, until the limit).
    let looping = RedirectingTls::start("/again");
    let client = Client::new(ClientOptions {
        ca_bundle: Some(looping.dir.path().join("ca.pem")),
        ..Default::default()
    })
    .unwrap();
    let url = url::Url::parse(&format!("https://127.0.0.1:{}/file", looping.port)).unwrap();
    let err = client.get(&url, None).await.unwrap_err();
    assert!(err.to_string().contains("redirects more than 10 times"), "{err}");
}
