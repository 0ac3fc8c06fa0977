//! The distribution API's operations on a [`RegistryClient`]: blobs, uploads, manifests, tags.

use bytes::Bytes;
use oci::{media_type, Digest};
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::client::{read_limited, status_error, Request};
use crate::tags::next_link;
use crate::{Error, RegistryClient};

/// Every manifest type we read, for `Accept`: OCI and Docker, single and multi-platform.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// The largest manifest or index we read. The distribution spec asks registries to accept
/// at least 4 MiB, and containerd refuses larger ones.
pub const MAX_MANIFEST: u64 = 4 * 1024 * 1024;

/// The largest image configuration we fetch or read (real ones are a few KiB; one with a
/// long history some hundred KiB).
pub const MAX_CONFIG: u64 = 4 * 1024 * 1024;

/// The largest page of a tag list we read; a repository with a million tags fits.
pub const MAX_TAG_PAGE: u64 = 64 * 1024 * 1024;

/// The most tag-list bytes we read across all pages of one listing.
pub const MAX_TAG_LIST: u64 = 256 * 1024 * 1024;

/// A manifest or index as the registry stored it.
#[derive(Debug, Clone)]
pub struct RemoteManifest {
    /// Its media type (from the document, else the `Content-Type`).
    pub media_type: String,
    /// The digest of its bytes.
    pub digest: Digest,
    /// The exact bytes (their digest is what references point at).
    pub bytes: Bytes,
}

/// What `POST .../blobs/uploads/` gave.
pub(crate) enum UploadStart {
    /// A cross-repository mount succeeded: the blob is there.
    Mounted,
    /// An upload session at this URL.
    Session(Url),
}

/// The scope string for pulling from `repository`.
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// The scope string for pushing to `repository` and mounting from `mount_from`.
pub fn push_scope(repository: &str, mount_from: &[String]) -> String {
    let mut scope = format!("repository:{repository}:pull,push");
    for from in mount_from {
        scope.push_str(&format!(" repository:{from}:pull"));
    }
    scope
}

impl RegistryClient {
    /// Whether `repository` has the blob `digest` (`HEAD /v2/NAME/blobs/DIGEST`).
    pub async fn has_blob(&self, repository: &str, digest: &Digest, scope: &str) -> Result<bool, Error> {
        let url = self.url(&format!("v2/{repository}/blobs/{digest}")).await?;
        let reply = self.send(Request::new(Method::HEAD, url.clone(), scope)).await?;
        match reply.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error(&Method::HEAD, &url, reply, 1).await),
        }
    }

    /// Starts an upload into `repository`; with `mount`, first asks to mount the blob from
    /// another repository of this registry.
    pub(crate) async fn start_upload(
        &self,
        repository: &str,
        mount: Option<(&Digest, &str)>,
        scope: &str,
    ) -> Result<UploadStart, Error> {
        let mut url = self.url(&format!("v2/{repository}/blobs/uploads/")).await?;
        if let Some((digest, from)) = mount {
            url.query_pairs_mut().append_pair("mount", digest.as_str()).append_pair("from", from);
        }
        let request = Request::new(Method::POST, url.clone(), scope).header(header::CONTENT_LENGTH, "0");
        let reply = self.send(request).await?;
        match reply.status() {
            StatusCode::CREATED if mount.is_some() => Ok(UploadStart::Mounted),
            StatusCode::ACCEPTED => Ok(UploadStart::Session(location(&url, reply.headers())?)),
            _ => Err(status_error(&Method::POST, &url, reply, 1).await),
        }
    }

    /// How much of the upload session at `session` the registry has: the session's current
    /// URL and the offset to continue from; `None` when the registry forgot the session.
    pub(crate) async fn upload_status(
        &self,
        session: &Url,
        scope: &str,
    ) -> Result<Option<(Url, u64)>, Error> {
        let reply = self.send(Request::new(Method::GET, session.clone(), scope)).await?;
        match reply.status() {
            StatusCode::NO_CONTENT | StatusCode::OK => {
                let url = location(session, reply.headers()).unwrap_or_else(|_| session.clone());
                // `0-0` is what registries say for an empty session too.
                Ok(Some((
                    url,
                    range_end(reply.headers()).map_or(0, |end| if end == 0 { 0 } else { end + 1 }),
                )))
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error(&Method::GET, session, reply, 1).await),
        }
    }

    /// Sends `chunk` as the bytes from `offset` of the upload at `session` (PATCH); the
    /// session's next URL and the offset the registry now has. Not retried: the caller asks
    /// for the session's status after a failure.
    pub(crate) async fn upload_chunk(
        &self,
        session: &Url,
        offset: u64,
        chunk: Bytes,
        scope: &str,
    ) -> Result<(Url, u64), Error> {
        let end = offset + chunk.len() as u64;
        let request = Request::new(Method::PATCH, session.clone(), scope)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_RANGE, &format!("{offset}-{}", end.saturating_sub(1)))
            .body(chunk)
            .no_retry();
        let reply = self.send(request).await?;
        if reply.status() != StatusCode::ACCEPTED {
            return Err(status_error(&Method::PATCH, session, reply, 1).await);
        }
        let next = location(session, reply.headers())?;
        let have = match range_end(reply.headers()) {
            Some(e) if e > 0 => e + 1,
            _ => end,
        };
        Ok((next, have))
    }

    /// Completes the upload at `session` as blob `digest`, with the remaining `body` (all
    /// of a monolithic upload, or nothing after chunks). Not retried (see [`Self::upload_chunk`]).
    pub(crate) async fn finish_upload(
        &self,
        session: &Url,
        digest: &Digest,
        body: Bytes,
        scope: &str,
    ) -> Result<(), Error> {
        let mut url = session.clone();
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let request = Request::new(Method::PUT, url.clone(), scope)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .no_retry();
        let reply = self.send(request).await?;
        match reply.status() {
            StatusCode::CREATED | StatusCode::NO_CONTENT | StatusCode::OK => Ok(()),
            _ => Err(status_error(&Method::PUT, &url, reply, 1).await),
        }
    }

    /// Stores a manifest or index under `reference` (a digest or a tag).
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
        scope: &str,
    ) -> Result<(), Error> {
        let url = self.url(&format!("v2/{repository}/manifests/{reference}")).await?;
        let request = Request::new(Method::PUT, url.clone(), scope)
            .header(header::CONTENT_TYPE, media_type)
            .body(bytes);
        let reply = self.send(request).await?;
        if reply.status().is_success() {
            return Ok(());
        }
        Err(status_error(&Method::PUT, &url, reply, 1).await)
    }

    /// A small JSON document at `url` (at most [`crate::referrers::MAX_REFERRERS`] bytes);
    /// `None` when the registry has none there (404, or 400/405 from one without the route).
    pub(crate) async fn get_json(&self, url: Url, scope: &str) -> Result<Option<Bytes>, Error> {
        let reply = self
            .send(
                Request::new(Method::GET, url.clone(), scope)
                    .header(header::ACCEPT, "application/vnd.oci.image.index.v1+json"),
            )
            .await?;
        match reply.status() {
            s if s.is_success() => {
                Ok(Some(read_limited(reply, &url, "referrers list", crate::referrers::MAX_REFERRERS).await?))
            }
            StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST | StatusCode::METHOD_NOT_ALLOWED => Ok(None),
            _ => Err(status_error(&Method::GET, &url, reply, 1).await),
        }
    }

    /// Sends a small blob (a signature payload, an SBOM, a config) in one request unless the
    /// repository has it.
    pub(crate) async fn put_small_blob(
        &self,
        repository: &str,
        digest: &Digest,
        bytes: Bytes,
        scope: &str,
    ) -> Result<(), Error> {
        if self.has_blob(repository, digest, scope).await? {
            return Ok(());
        }
        match self.start_upload(repository, None, scope).await? {
            UploadStart::Session(session) => self.finish_upload(&session, digest, bytes, scope).await,
            UploadStart::Mounted => Ok(()),
        }
    }

    /// The digest `reference` points at in `repository`, or `None` if there is no such tag.
    pub async fn manifest_digest(
        &self,
        repository: &str,
        reference: &str,
        scope: &str,
    ) -> Result<Option<Digest>, Error> {
        let url = self.url(&format!("v2/{repository}/manifests/{reference}")).await?;
        let reply = self
            .send(Request::new(Method::HEAD, url.clone(), scope).header(header::ACCEPT, MANIFEST_ACCEPT))
            .await?;
        match reply.status() {
            s if s.is_success() => {
                let digest = reply
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| Digest::parse(v).ok());
                match digest {
                    Some(digest) => Ok(Some(digest)),
                    // Without the header, the manifest's own bytes tell.
                    None => Ok(self.get_manifest(repository, reference, scope).await?.map(|m| m.digest)),
                }
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error(&Method::HEAD, &url, reply, 1).await),
        }
    }

    /// The manifest or index `reference` (a tag or a digest) names, verified against the
    /// digest when `reference` is one; `None` if the registry has no such manifest.
    pub async fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
        scope: &str,
    ) -> Result<Option<RemoteManifest>, Error> {
        let url = self.url(&format!("v2/{repository}/manifests/{reference}")).await?;
        let reply = self
            .send(Request::new(Method::GET, url.clone(), scope).header(header::ACCEPT, MANIFEST_ACCEPT))
            .await?;
        match reply.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(status_error(&Method::GET, &url, reply, 1).await),
        }
        let content_type = reply
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_string());
        let bytes = read_limited(reply, &url, "manifest", MAX_MANIFEST).await?;
        let digest = Digest::of_bytes(&bytes);
        if let Ok(expected) = Digest::parse(reference) {
            if expected != digest {
                return Err(Error::DigestMismatch {
                    what: "manifest",
                    url: fetch::redact(&url),
                    expected,
                    actual: digest,
                });
            }
        }
        #[derive(serde::Deserialize)]
        struct Probe {
            #[serde(rename = "mediaType")]
            media_type: Option<String>,
            #[serde(rename = "schemaVersion")]
            schema_version: Option<u32>,
        }
        let probe: Probe = serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
            url: fetch::redact(&url),
            reason: format!("the manifest is not JSON: {e}"),
        })?;
        if probe.schema_version == Some(1) {
            return Err(Error::Unsupported(format!(
                "{} is a Docker schema 1 manifest, which is not supported; re-push the image with a current tool",
                fetch::redact(&url)
            )));
        }
        let media_type = probe.media_type.or(content_type).unwrap_or_default();
        if !media_type::is_index(&media_type) && !media_type::is_manifest(&media_type) {
            return Err(Error::Unsupported(format!(
                "{} has media type `{media_type}`, which is neither an image index nor an image manifest",
                fetch::redact(&url)
            )));
        }
        Ok(Some(RemoteManifest { media_type, digest, bytes }))
    }

    /// Every tag of `repository`, following the `Link` header from page to page (`page_size`
    /// is sent as `n=`); an unknown repository has none.
    pub async fn list_tags(
        &self,
        repository: &str,
        page_size: Option<u32>,
        scope: &str,
    ) -> Result<Vec<String>, Error> {
        let mut url = self.url(&format!("v2/{repository}/tags/list")).await?;
        if let Some(n) = page_size {
            url.query_pairs_mut().append_pair("n", &n.to_string());
        }
        let mut tags = Vec::new();
        let mut read: u64 = 0;
        for _page in 0..10_000 {
            let reply = self.send(Request::new(Method::GET, url.clone(), scope)).await?;
            match reply.status() {
                s if s.is_success() => {}
                StatusCode::NOT_FOUND => return Ok(tags),
                _ => return Err(status_error(&Method::GET, &url, reply, 1).await),
            }
            let next = reply.headers().get(header::LINK).and_then(|v| v.to_str().ok()).and_then(next_link);
            #[derive(serde::Deserialize)]
            struct TagList {
                tags: Option<Vec<String>>,
            }
            let left = MAX_TAG_LIST.saturating_sub(read).min(MAX_TAG_PAGE);
            let body = read_limited(reply, &url, "tag list page", left).await.map_err(|e| match e {
                Error::TooLarge { url, .. } if left < MAX_TAG_PAGE => {
                    Error::TooLarge { what: "tag list", url, limit: MAX_TAG_LIST }
                }
                e => e,
            })?;
            read += body.len() as u64;
            let page: TagList = serde_json::from_slice(&body).map_err(|e| Error::Protocol {
                url: fetch::redact(&url),
                reason: format!("the tag list is not JSON: {e}"),
            })?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(next) => {
                    url = url.join(&next).map_err(|e| Error::Protocol {
                        url: fetch::redact(&url),
                        reason: format!("the Link header's `{next}` is not a URL: {e}"),
                    })?;
                }
                None => return Ok(tags),
            }
        }
        Err(Error::Protocol {
            url: fetch::redact(&url),
            reason: "the tag list has more than 10000 pages".into(),
        })
    }

    /// Starts a GET of blob `digest` from byte `offset` (a `Range` request when not 0). The
    /// reply is 200 (the whole blob) or 206 (from `offset`); other statuses are errors.
    pub(crate) async fn get_blob(
        &self,
        repository: &str,
        digest: &Digest,
        offset: u64,
        scope: &str,
    ) -> Result<reqwest::Response, Error> {
        let url = self.url(&format!("v2/{repository}/blobs/{digest}")).await?;
        let mut request =
            Request::new(Method::GET, url.clone(), scope).header(header::ACCEPT_ENCODING, "identity");
        if offset > 0 {
            request = request.header(header::RANGE, &format!("bytes={offset}-"));
        }
        let reply = self.send(request).await?;
        match reply.status() {
            StatusCode::OK | StatusCode::PARTIAL_CONTENT => Ok(reply),
            StatusCode::NOT_FOUND => Err(Error::NotFound {
                what: format!("blob {digest} of {repository}"),
                registry: self.registry().to_string(),
            }),
            _ => Err(status_error(&Method::GET, &url, reply, 1).await),
        }
    }
}

/// The `Location` header resolved against the request URL (registries send relative and
/// absolute ones).
fn location(request: &Url, headers: &HeaderMap) -> Result<Url, Error> {
    let value =
        headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| Error::Protocol {
            url: fetch::redact(request),
            reason: "the upload reply has no Location header".into(),
        })?;
    request.join(value).map_err(|e| Error::Protocol {
        url: fetch::redact(request),
        reason: format!("the upload Location `{value}` is not a URL: {e}"),
    })
}

/// The last byte of `Range: 0-N` (an upload's progress); `None` if absent or malformed.
fn range_end(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(header::RANGE)?.to_str().ok()?;
    let value = value.trim().strip_prefix("bytes=").unwrap_or(value.trim());
    let (start, end) = value.split_once('-')?;
    (start.trim() == "0").then_some(())?;
    end.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn ranges_and_locations() {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_static("0-1023"));
        assert_eq!(range_end(&h), Some(1023));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=0-9"));
        assert_eq!(range_end(&h), Some(9));
        h.insert(header::RANGE, HeaderValue::from_static("5-9"));
        assert_eq!(range_end(&h), None);
        let base = Url::parse("http://127.0.0.1:5/v2/a/blobs/uploads/").unwrap();
        h.insert(header::LOCATION, HeaderValue::from_static("/v2/a/blobs/uploads/u1?_state=x"));
        assert_eq!(
            location(&base, &h).unwrap().as_str(),
            "http://127.0.0.1:5/v2/a/blobs/uploads/u1?_state=x"
        );
        assert!(location(&base, &HeaderMap::new()).is_err());
        assert_eq!(push_scope("a", &["b".into()]), "repository:a:pull,push repository:b:pull");
    }
}
