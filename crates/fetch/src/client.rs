//! The one HTTP client: connection reuse, HTTP/2 where ALPN offers it, bounded parallelism,
//! retries with backoff, range requests, hash-checked downloads into the cache.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::{self, HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use url::Url;

use crate::cache::{normalize_digest, persist, temp_file_beside};
use crate::retry::{backoff, is_transient, parse_retry_after};
use crate::tls::{choose_bundle, read_bundle, BundleChoice};
use crate::{file, redact, BlobState, Cache, Error};

/// The largest body [`Client::get`] holds in memory when the caller names no limit of its
/// own ([`Client::get_bounded`]).
pub const MAX_BODY: BodyLimit = BodyLimit { what: "reply", bytes: 64 * 1024 * 1024 };

/// The largest download [`Client::download_verified`] writes to disk when the caller does
/// not know the file's size: far above any wheel or `.deb`, but a server that sends an
/// endless body does not fill the disk.
pub const MAX_DOWNLOAD: u64 = 32 * 1024 * 1024 * 1024;

/// The largest whole file a server that ignores `Range` may send us into memory; past it
/// [`Client::get_range`] answers `Unsupported` so the caller streams the file to disk.
const MAX_WHOLE_REPLY: u64 = 64 * 1024 * 1024;

/// How much of a reply may be held in memory, and what the reply is (for the error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit {
    /// What the reply is, as a noun phrase: `index page`, `Release file`, ...
    pub what: &'static str,
    /// The most bytes accepted.
    pub bytes: u64,
}

/// How the client behaves; `Default` gives pip-like settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// A PEM bundle to trust instead of any other (pip's `--cert` / `PIP_CERT`).
    pub ca_bundle: Option<PathBuf>,
    /// Refuse every network request (`file://` URLs still work).
    pub offline: bool,
    /// Timeout to connect, and between two reads of a reply (not for the whole transfer,
    /// so large wheels can take as long as they need).
    pub timeout: Duration,
    /// How many times a failed request is tried again.
    pub retries: u32,
    /// At most this many requests at once.
    pub max_concurrency: usize,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// The first wait before a retry; it doubles with every attempt (with jitter).
    pub backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            ca_bundle: None,
            offline: false,
            timeout: Duration::from_secs(30),
            retries: 3,
            max_concurrency: 32,
            user_agent: concat!("marqo-base/", env!("CARGO_PKG_VERSION")).to_string(),
            backoff: Duration::from_millis(500),
        }
    }
}

/// A complete reply to a GET.
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status: a 2xx, 304 (after a conditional request), 404 or 410.
    pub status: u16,
    /// The URL after redirects (without credentials): relative links resolve against it.
    pub final_url: Url,
    /// The `ETag` validator, if any.
    pub etag: Option<String>,
    /// The `Last-Modified` validator, if any.
    pub last_modified: Option<String>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body (empty for 304).
    pub body: Bytes,
}

impl Response {
    /// Whether the server says the resource does not exist (404 or 410).
    pub fn is_missing(&self) -> bool {
        self.status == 404 || self.status == 410
    }
}

/// Validators of a cached copy, for [`Client::get_conditional`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// Sent as `If-None-Match`.
    pub etag: Option<String>,
    /// Sent as `If-Modified-Since`.
    pub last_modified: Option<String>,
}

/// The bytes asked for by [`Client::get_range`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// The last `n` bytes.
    Suffix(u64),
    /// Bytes `start..=end_inclusive`.
    Span {
        /// First byte.
        start: u64,
        /// Last byte, included.
        end_inclusive: u64,
    },
}

/// What a server made of a range request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeReply {
    /// 206: `body` starts at byte `start` of a file of `total` bytes.
    Partial {
        /// Offset of the first byte of `body` in the file.
        start: u64,
        /// Size of the whole file.
        total: u64,
        /// The bytes.
        body: Bytes,
    },
    /// 200: the server ignored `Range` and sent the whole (moderately sized) file.
    Whole(Bytes),
    /// Ranges cannot be used here (416, 405, 501, a malformed `Content-Range`, or a server
    /// that ignores `Range` for a large file): download the file instead.
    Unsupported,
}

/// The HTTP client. Cheap to clone: all clones share connections and the parallelism bound.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    permits: Semaphore,
    offline: bool,
    retries: u32,
    backoff: Duration,
    /// Set when no CA bundle was found, to explain the TLS failures that will follow.
    no_roots: bool,
}

/// The result of one try of a request.
enum Attempt<T> {
    Done(T),
    Retry { why: Transient, after: Option<Duration> },
    Fail(Error),
}

enum Transient {
    Status(u16),
    Network(reqwest::Error),
}

impl Client {
    /// Builds the client and loads the trusted certificates (see [`ClientOptions::ca_bundle`]).
    pub fn new(opts: ClientOptions) -> Result<Client, Error> {
        // reqwest is built without a default crypto provider; a provider installed earlier by
        // the embedding program is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let choice = choose_bundle(opts.ca_bundle.as_deref(), |k| std::env::var_os(k), Path::exists);
        let (certs, no_roots) = match choice {
            BundleChoice::Explicit(path) | BundleChoice::System(path) => {
                tracing::debug!("trusting the CA certificates in {}", path.display());
                (read_bundle(&path)?, false)
            }
            BundleChoice::None => {
                tracing::warn!(
                    "no CA bundle found; HTTPS requests will fail (set SSL_CERT_FILE or pass --cert)"
                );
                (Vec::new(), true)
            }
        };

        let mut builder = reqwest::Client::builder()
            .user_agent(opts.user_agent.clone())
            .connect_timeout(opts.timeout)
            .read_timeout(opts.timeout)
            .tls_built_in_root_certs(false)
            .redirect(redirect_policy());
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| Error::Build(e.without_url()))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                permits: Semaphore::new(opts.max_concurrency.max(1)),
                offline: opts.offline,
                retries: opts.retries,
                backoff: opts.backoff,
                no_roots,
            }),
        })
    }

    /// The reqwest client inside (trusted roots, timeouts, user agent), for the registry API.
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Whether network requests are refused.
    pub fn is_offline(&self) -> bool {
        self.inner.offline
    }

    /// GETs a URL. 2xx, 404 and 410 come back as a [`Response`]; other statuses are retried
    /// when transient (5xx, 429) and end as [`Error::Status`].
    /// The body is held in memory, at most [`MAX_BODY`].
    pub async fn get(&self, url: &Url, accept: Option<&str>) -> Result<Response, Error> {
        self.get_conditional(url, accept, &Validators::default(), MAX_BODY).await
    }

    /// As [`Client::get`], refusing a body over `limit` ([`Error::TooLarge`]) without
    /// reading the rest.
    pub async fn get_bounded(
        &self,
        url: &Url,
        accept: Option<&str>,
        limit: BodyLimit,
    ) -> Result<Response, Error> {
        self.get_conditional(url, accept, &Validators::default(), limit).await
    }

    /// GETs a URL, revalidating a cached copy: a `304` comes back as a [`Response`] with an
    /// empty body, and the caller keeps its copy. A body over `limit` is refused.
    pub async fn get_conditional(
        &self,
        url: &Url,
        accept: Option<&str>,
        validators: &Validators,
        limit: BodyLimit,
    ) -> Result<Response, Error> {
        if url.scheme() == "file" {
            return file::get(url, limit).await;
        }
        let mut headers = HeaderMap::new();
        insert_header(&mut headers, header::ACCEPT, accept);
        insert_header(&mut headers, header::IF_NONE_MATCH, validators.etag.as_deref());
        insert_header(&mut headers, header::IF_MODIFIED_SINCE, validators.last_modified.as_deref());
        let headers = &headers;
        self.with_retries(url, move || async move {
            let mut reply = match self.send(url, headers.clone()).await {
                Ok(reply) => reply,
                Err(e) => return network_failure(e),
            };
            let status = reply.status().as_u16();
            if !(reply.status().is_success() || matches!(status, 304 | 404 | 410)) {
                return status_failure(url, &reply);
            }
            let meta = |name| reply.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
            let (etag, last_modified) = (meta(header::ETAG), meta(header::LAST_MODIFIED));
            let content_type = meta(header::CONTENT_TYPE);
            let final_url = reply.url().clone();
            if reply.content_length().is_some_and(|n| n > limit.bytes) {
                return Attempt::Fail(too_large(url, limit));
            }
            match read_bounded(&mut reply, limit.bytes).await {
                Ok(Some(body)) => {
                    Attempt::Done(Response { status, final_url, etag, last_modified, content_type, body })
                }
                Ok(None) => Attempt::Fail(too_large(url, limit)),
                Err(e) => network_failure(e),
            }
        })
        .await
    }

    /// Asks for part of a file. See [`RangeReply`] for what can come back; a 404 is an error
    /// here (the caller found the URL on an index, so it should exist).
    pub async fn get_range(&self, url: &Url, range: ByteRange) -> Result<RangeReply, Error> {
        if url.scheme() == "file" {
            return file::get_range(url, range);
        }
        let spec = match range {
            ByteRange::Suffix(n) => format!("bytes=-{n}"),
            ByteRange::Span { start, end_inclusive } => format!("bytes={start}-{end_inclusive}"),
        };
        let mut headers = HeaderMap::new();
        insert_header(&mut headers, header::RANGE, Some(&spec));
        // A compressed reply would make the byte offsets meaningless.
        insert_header(&mut headers, header::ACCEPT_ENCODING, Some("identity"));
        let (headers, spec) = (&headers, spec.as_str());
        self.with_retries(url, move || async move {
            let mut reply = match self.send(url, headers.clone()).await {
                Ok(reply) => reply,
                Err(e) => return network_failure(e),
            };
            match reply.status().as_u16() {
                206 => {
                    let content_range = reply
                        .headers()
                        .get(header::CONTENT_RANGE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_content_range);
                    let Some((start, end, total)) = content_range.filter(|r| fits(r, range)) else {
                        tracing::debug!("{}: unusable Content-Range for {spec}", redact(url));
                        return Attempt::Done(RangeReply::Unsupported);
                    };
                    match read_bounded(&mut reply, end - start + 1).await {
                        Ok(Some(body)) if body.len() as u64 == end - start + 1 => {
                            Attempt::Done(RangeReply::Partial { start, total, body })
                        }
                        Ok(_) => {
                            tracing::debug!("{}: body does not match its Content-Range", redact(url));
                            Attempt::Done(RangeReply::Unsupported)
                        }
                        Err(e) => network_failure(e),
                    }
                }
                200 => {
                    if reply.content_length().is_some_and(|n| n > MAX_WHOLE_REPLY) {
                        return Attempt::Done(RangeReply::Unsupported);
                    }
                    match read_bounded(&mut reply, MAX_WHOLE_REPLY).await {
                        Ok(Some(body)) => Attempt::Done(RangeReply::Whole(body)),
                        Ok(None) => Attempt::Done(RangeReply::Unsupported),
                        Err(e) => network_failure(e),
                    }
                }
                405 | 416 | 501 => Attempt::Done(RangeReply::Unsupported),
                _ => status_failure(url, &reply),
            }
        })
        .await
    }

    /// Downloads `url` into the cache blob named `sha256`, hashing while streaming, and
    /// returns the blob's path. Nothing lands in the cache unless the hash matches. A blob
    /// already present is re-hashed before it is reused; a damaged one is removed and
    /// fetched again (offline, that is [`Error::DamagedOffline`]). At most [`MAX_DOWNLOAD`]
    /// bytes are written; see [`Client::download_verified_sized`].
    pub async fn download_verified(&self, url: &Url, sha256: &str, cache: &Cache) -> Result<PathBuf, Error> {
        self.download_verified_sized(url, sha256, None, cache).await
    }

    /// As [`Client::download_verified`], for a file whose size the index or lock gives: the
    /// download stops ([`Error::SizeMismatch`]) as soon as the server sends more.
    pub async fn download_verified_sized(
        &self,
        url: &Url,
        sha256: &str,
        size: Option<u64>,
        cache: &Cache,
    ) -> Result<PathBuf, Error> {
        let expected = normalize_digest(sha256)?;
        let dest = cache.blob_path(&expected)?;
        let cached = {
            let cache = cache.clone();
            let expected = expected.clone();
            // Hashing a large blob must not hold up the runtime's other downloads.
            tokio::task::spawn_blocking(move || cache.check_blob(&expected)).await.map_err(|e| {
                Error::Io { action: "hash", path: dest.clone(), source: std::io::Error::other(e) }
            })??
        };
        match cached {
            BlobState::Intact(path) => return Ok(path),
            BlobState::Evicted(path) if self.inner.offline && url.scheme() != "file" => {
                return Err(Error::DamagedOffline { url: redact(url), path });
            }
            BlobState::Evicted(_) | BlobState::Missing => {}
        }
        if url.scheme() == "file" {
            file::copy_verified(url, &expected, &dest)?;
            return Ok(dest);
        }
        let dest_ref = &dest;
        let (tmp, actual) = self.with_retries(url, move || self.stream_attempt(url, dest_ref, size)).await?;
        if actual != expected {
            return Err(Error::HashMismatch { url: redact(url), expected, actual });
        }
        persist(tmp, &dest)?;
        Ok(dest)
    }

    /// One attempt at streaming `url` into a temporary file beside `beside`, hashing it: a
    /// reply that announces more than `size` bytes is refused before its body is read.
    async fn stream_attempt(
        &self,
        url: &Url,
        beside: &Path,
        size: Option<u64>,
    ) -> Attempt<(tempfile::NamedTempFile, String)> {
        let reply = match self.send(url, HeaderMap::new()).await {
            Ok(reply) => reply,
            Err(e) => return network_failure(e),
        };
        if !reply.status().is_success() {
            return status_failure(url, &reply);
        }
        if let (Some(size), Some(sent)) = (size, reply.content_length()) {
            if sent > size {
                return Attempt::Fail(Error::SizeMismatch { url: redact(url), expected: size, sent });
            }
        }
        stream_to_temp(reply, beside, size).await
    }

    /// Downloads `url`, whose digest nobody gives us, into the cache under the sha256 of
    /// what arrived, streaming to disk (never whole into memory) and stopping past `size`
    /// (else past [`MAX_DOWNLOAD`]). Returns the digest and the blob's path.
    pub async fn download_unverified(
        &self,
        url: &Url,
        size: Option<u64>,
        cache: &Cache,
    ) -> Result<(String, PathBuf), Error> {
        // Any name in the blob directory: the temporary file only needs to sit beside the blobs.
        let beside = cache.blob_dir().join("download");
        let beside = &beside;
        let (tmp, actual) = self.with_retries(url, move || self.stream_attempt(url, beside, size)).await?;
        let dest = cache.blob_path(&actual)?;
        persist(tmp, &dest)?;
        Ok((actual, dest))
    }

    async fn send(&self, url: &Url, headers: HeaderMap) -> Result<reqwest::Response, reqwest::Error> {
        tracing::debug!("GET {}", redact(url));
        // reqwest moves credentials in the URL into an Authorization header itself.
        self.inner.http.get(url.clone()).headers(headers).send().await
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries run out. A permit of
    /// the parallelism bound is held during each attempt but not while waiting.
    async fn with_retries<T, F, Fut>(&self, url: &Url, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        if self.inner.offline {
            return Err(Error::Offline { url: redact(url) });
        }
        let mut tries = 0;
        loop {
            tries += 1;
            let outcome = {
                // The semaphore is never closed, so acquiring only fails in theory.
                let _permit = self.inner.permits.acquire().await.ok();
                attempt().await
            };
            let (why, after) = match outcome {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fail(error) => return Err(error),
                Attempt::Retry { why, after } => (why, after),
            };
            if tries > self.inner.retries {
                return Err(match why {
                    Transient::Status(status) => {
                        Error::Status { url: redact(url), status, attempts: tries, hint: None }
                    }
                    Transient::Network(source) => Error::Network {
                        url: redact(url),
                        attempts: tries,
                        hint: self.network_hint(url),
                        source: source.without_url(),
                    },
                });
            }
            let wait = after.unwrap_or_else(|| backoff(self.inner.backoff, tries - 1));
            match &why {
                Transient::Status(s) => tracing::debug!("{} answered {s}; retrying in {wait:?}", redact(url)),
                Transient::Network(e) => {
                    tracing::debug!("{}: {}; retrying in {wait:?}", redact(url), describe(e))
                }
            }
            tokio::time::sleep(wait).await;
        }
    }

    fn network_hint(&self, url: &Url) -> Option<&'static str> {
        Some(if self.inner.no_roots && url.scheme() == "https" {
            "no CA bundle was found; set SSL_CERT_FILE or pass --cert"
        } else {
            "check the network and proxy settings, or use --offline to work from the cache"
        })
    }
}

/// reqwest errors print their URL; this shows one with the URL redacted.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), &redact(url));
    }
    text
}

fn insert_header(headers: &mut HeaderMap, name: header::HeaderName, value: Option<&str>) {
    if let Some(value) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert(name, value);
    }
}

/// The most redirects one request follows (as browsers and pip's `requests`).
const MAX_REDIRECTS: usize = 10;

/// A redirect the client does not follow.
#[derive(Debug, thiserror::Error)]
enum RedirectRefused {
    #[error("{from} redirects to {to}, from HTTPS to plain HTTP: refused, so that no credential, token or request goes unencrypted")]
    Downgrade { from: String, to: String },
    #[error("{from} redirects more than {MAX_REDIRECTS} times: refused")]
    TooMany { from: String },
}

/// Whether a redirect from `from` to `to` leaves TLS.
fn is_downgrade(from: &Url, to: &Url) -> bool {
    from.scheme() == "https" && to.scheme() != "https"
}

/// Follows at most [`MAX_REDIRECTS`] redirects, never one from HTTPS to plain HTTP: reqwest
/// keeps `Authorization` on a redirect to the same host and port whatever the scheme, and
/// re-sends a token request's body on 307 and 308.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let Some(from) = attempt.previous().last().cloned() else {
            return attempt.follow();
        };
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(RedirectRefused::TooMany { from: redact(&from) });
        }
        if is_downgrade(&from, attempt.url()) {
            let to = redact(attempt.url());
            return attempt.error(RedirectRefused::Downgrade { from: redact(&from), to });
        }
        attempt.follow()
    })
}

/// The refusal inside a redirect error of reqwest's, when our policy made it.
fn refused_redirect(error: &reqwest::Error) -> Option<String> {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<RedirectRefused>() {
            return Some(refused.to_string());
        }
        source = cause.source();
    }
    None
}

fn network_failure<T>(error: reqwest::Error) -> Attempt<T> {
    if let Some(why) = refused_redirect(&error) {
        return Attempt::Fail(Error::Redirect { why });
    }
    if error.is_builder() || error.is_redirect() {
        Attempt::Fail(Error::Build(error.without_url()))
    } else {
        Attempt::Retry { why: Transient::Network(error), after: None }
    }
}

fn status_failure<T>(url: &Url, reply: &reqwest::Response) -> Attempt<T> {
    let status = reply.status().as_u16();
    if is_transient(status) {
        let after = reply
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        return Attempt::Retry { why: Transient::Status(status), after };
    }
    let hint = match status {
        401 | 403 => Some(
            "the server wants credentials: put them in the index URL \
             (https://user:token@host/...) or check that they are still valid",
        ),
        407 => Some("the proxy wants credentials: check HTTPS_PROXY"),
        404 | 410 => Some("the file is gone from the server; retry with --refresh"),
        _ => None,
    };
    Attempt::Fail(Error::Status { url: redact(url), status, attempts: 1, hint })
}

fn too_large(url: &Url, limit: BodyLimit) -> Error {
    Error::TooLarge { what: limit.what, url: redact(url), limit: limit.bytes }
}

/// Reads a body of at most `limit` bytes; `Ok(None)` as soon as it is longer (the rest is
/// never read). For every reply held in memory, here and in the registry client.
pub async fn read_bounded(
    reply: &mut reqwest::Response,
    limit: u64,
) -> Result<Option<Bytes>, reqwest::Error> {
    let mut body = BytesMut::new();
    while let Some(chunk) = reply.chunk().await? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

/// Streams a reply into a fresh temporary file beside `dest`, hashing it as it arrives, and
/// stops when it grows past `size` (else past [`MAX_DOWNLOAD`]).
async fn stream_to_temp(
    mut reply: reqwest::Response,
    dest: &Path,
    size: Option<u64>,
) -> Attempt<(tempfile::NamedTempFile, String)> {
    let limit = size.unwrap_or(MAX_DOWNLOAD);
    let url = reply.url().clone();
    let mut written: u64 = 0;
    let tmp = match temp_file_beside(dest) {
        Ok(tmp) => tmp,
        Err(e) => return Attempt::Fail(e),
    };
    let io_error = |source| Error::Io { action: "write", path: tmp.path().to_path_buf(), source };
    let mut out = match tmp.reopen() {
        Ok(file) => tokio::fs::File::from_std(file),
        Err(e) => return Attempt::Fail(io_error(e)),
    };
    let mut hasher = Sha256::new();
    loop {
        match reply.chunk().await {
            Ok(Some(chunk)) => {
                written += chunk.len() as u64;
                if written > limit {
                    return Attempt::Fail(match size {
                        Some(expected) => Error::SizeMismatch { url: redact(&url), expected, sent: written },
                        None => Error::TooLarge { what: "download", url: redact(&url), limit },
                    });
                }
                hasher.update(&chunk);
                if let Err(e) = out.write_all(&chunk).await {
                    return Attempt::Fail(io_error(e));
                }
            }
            Ok(None) => break,
            Err(e) => return network_failure(e),
        }
    }
    if let Err(e) = out.flush().await {
        return Attempt::Fail(io_error(e));
    }
    Attempt::Done((tmp, hex::encode(hasher.finalize())))
}

/// Parses `bytes START-END/TOTAL`; a `*` total (unknown) is not usable for our purposes.
fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (span, total) = rest.split_once('/')?;
    let (start, end) = span.split_once('-')?;
    let (start, end, total) =
        (start.trim().parse().ok()?, end.trim().parse().ok()?, total.trim().parse().ok()?);
    (start <= end && end < total).then_some((start, end, total))
}

/// Whether the range the server sent is the one we asked for (or, for a suffix longer than
/// the file, the whole file).
fn fits(&(start, end, total): &(u64, u64, u64), asked: ByteRange) -> bool {
    match asked {
        ByteRange::Suffix(n) => end + 1 == total && start == total.saturating_sub(n),
        ByteRange::Span { start: s, end_inclusive: e } => start == s && end == e.min(total - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range() {
        assert_eq!(parse_content_range("bytes 10-19/100"), Some((10, 19, 100)));
        assert_eq!(parse_content_range("bytes 10-19/*"), None);
        assert_eq!(parse_content_range("bytes 20-19/100"), None);
        assert_eq!(parse_content_range("bytes 10-100/100"), None);
        assert!(fits(&(90, 99, 100), ByteRange::Suffix(10)));
        assert!(fits(&(0, 99, 100), ByteRange::Suffix(1000)));
        assert!(!fits(&(0, 9, 100), ByteRange::Suffix(10)));
        assert!(fits(&(10, 99, 100), ByteRange::Span { start: 10, end_inclusive: 500 }));
    }
}
