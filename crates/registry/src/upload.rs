//! Sending one blob: a cross-repository mount when asked, else a monolithic upload (POST,
//! then PUT with the bytes) for a small blob and a chunked one (PATCH per chunk) for a large
//! one. A chunked upload survives failures: after each chunk the session's URL and offset
//! are saved in the cache, and after a failure (in this process or a later one) the
//! registry is asked how much it has (`GET` on the session) and the upload continues there.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use oci::Digest;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use url::Url;

use crate::api::UploadStart;
use crate::{Error, RegistryClient};

/// Called with the number of bytes just sent (or found already sent, on a resume).
pub type ProgressFn = Arc<dyn Fn(u64) + Send + Sync>;

/// A blob of a local layout to send.
#[derive(Debug, Clone)]
pub(crate) struct LocalBlob {
    pub digest: Digest,
    pub size: u64,
    pub path: PathBuf,
}

/// How a blob got to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Mounted from another repository: no bytes sent.
    Mounted,
    /// Uploaded; a resumed upload started at byte `resumed_at` (0 for a fresh upload).
    Uploaded {
        /// The offset the upload continued from.
        resumed_at: u64,
    },
}

/// Upload sessions of unfinished chunked uploads, one small JSON file each under the cache,
/// keyed by registry, repository and digest.
#[derive(Debug, Clone)]
pub(crate) struct Sessions {
    dir: Option<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    location: String,
    offset: u64,
}

impl Sessions {
    /// Sessions kept under `dir` (`None`: kept only in memory, for this process).
    pub fn new(dir: Option<PathBuf>) -> Sessions {
        Sessions { dir }
    }

    fn path(&self, registry: &str, repository: &str, digest: &Digest) -> Option<PathBuf> {
        let key = sha2::Sha256::digest(format!("{registry}/{repository}@{digest}"));
        Some(self.dir.as_ref()?.join(hex::encode(key)))
    }

    fn load(&self, registry: &str, repository: &str, digest: &Digest) -> Option<(Url, u64)> {
        let path = self.path(registry, repository, digest)?;
        let saved: Saved = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        Some((Url::parse(&saved.location).ok()?, saved.offset))
    }

    fn save(&self, registry: &str, repository: &str, digest: &Digest, location: &Url, offset: u64) {
        let Some(path) = self.path(registry, repository, digest) else { return };
        let saved = Saved { location: location.to_string(), offset };
        // Losing the session only costs a restart of this blob's upload.
        if let Err(e) = write_atomic(&path, &serde_json::to_vec(&saved).unwrap_or_default()) {
            tracing::debug!("cannot save the upload session of {digest}: {e}");
        }
    }

    fn remove(&self, registry: &str, repository: &str, digest: &Digest) {
        if let Some(path) = self.path(registry, repository, digest) {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// What one blob's upload needs.
pub(crate) struct Upload<'a> {
    pub client: &'a RegistryClient,
    pub repository: &'a str,
    pub scope: &'a str,
    pub sessions: &'a Sessions,
    pub chunk_size: u64,
    pub progress: &'a ProgressFn,
}

impl Upload<'_> {
    /// Sends `blob`, mounting it from `mount_from` if given and the registry agrees.
    pub async fn send(&self, blob: &LocalBlob, mount_from: Option<&str>) -> Result<Sent, Error> {
        let registry = self.client.registry();
        let mut session: Option<(Url, u64)> = None;
        if let Some(from) = mount_from {
            match self.client.start_upload(self.repository, Some((&blob.digest, from)), self.scope).await? {
                UploadStart::Mounted => {
                    (self.progress)(blob.size);
                    return Ok(Sent::Mounted);
                }
                // The registry would not mount (it may not have the blob there): upload into
                // the session it opened instead.
                UploadStart::Session(url) => session = Some((url, 0)),
            }
        }
        if session.is_none() {
            // The saved offset is only a hint: the registry says what it has.
            if let Some((url, _)) = self.sessions.load(registry, self.repository, &blob.digest) {
                session = self.resume(&url, blob).await;
            }
        }
        let resumed_at = session.as_ref().map_or(0, |(_, offset)| *offset);
        if resumed_at > 0 {
            tracing::info!("resuming the upload of {} at byte {resumed_at} of {}", blob.digest, blob.size);
            (self.progress)(resumed_at);
        }
        let mut failures = 0;
        loop {
            match self.attempt(blob, &mut session).await {
                Ok(()) => {
                    self.sessions.remove(registry, self.repository, &blob.digest);
                    return Ok(Sent::Uploaded { resumed_at });
                }
                // The registry hashed what we sent and it is not the blob: when the file
                // itself is wrong, retrying cannot help, and it is the layout's fault.
                Err(e) if is_digest_invalid(&e) => return Err(corrupt_local(blob).await.unwrap_or(e)),
                Err(e) if e.is_network() && failures < self.client.retries() => {
                    failures += 1;
                    let wait = self.client.backoff(failures);
                    tracing::debug!("uploading {} failed ({e}); retrying in {wait:?}", blob.digest);
                    tokio::time::sleep(wait).await;
                    // The last request may have worked with its reply lost.
                    if self.client.has_blob(self.repository, &blob.digest, self.scope).await.unwrap_or(false)
                    {
                        self.sessions.remove(registry, self.repository, &blob.digest);
                        return Ok(Sent::Uploaded { resumed_at });
                    }
                    session = match session.take() {
                        Some((url, sent)) => {
                            let found = self.resume(&url, blob).await;
                            if let Some((_, offset)) = &found {
                                // Bytes counted as sent but not received are counted again.
                                (self.progress)(offset.saturating_sub(sent));
                            }
                            found
                        }
                        None => None,
                    };
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Mounts `blob` from `mount_from` (which must agree: nothing is read from `blob.path`),
    /// or, without one, sends it from its file.
    pub async fn send_or_mount(&self, blob: &LocalBlob, mount_from: Option<&str>) -> Result<Sent, Error> {
        let Some(from) = mount_from else { return self.send(blob, None).await };
        match self.client.start_upload(self.repository, Some((&blob.digest, from)), self.scope).await? {
            UploadStart::Mounted => Ok(Sent::Mounted),
            UploadStart::Session(_) => Err(Error::Unsupported(format!(
                "{} would not mount {} from {from} into {}",
                self.client.registry(),
                blob.digest,
                self.repository
            ))),
        }
    }

    /// Sends a small blob held in memory in one request.
    pub async fn send_bytes(&self, digest: &Digest, body: Bytes) -> Result<(), Error> {
        match self.client.start_upload(self.repository, None, self.scope).await? {
            UploadStart::Session(url) => self.client.finish_upload(&url, digest, body, self.scope).await,
            UploadStart::Mounted => unreachable!("no mount was asked for"),
        }
    }

    /// Asks the registry how much of the session at `url` it has; `None` when the session
    /// is gone (or unusable), so that the upload starts over.
    async fn resume(&self, url: &Url, blob: &LocalBlob) -> Option<(Url, u64)> {
        match self.client.upload_status(url, self.scope).await {
            Ok(Some((url, offset))) if offset <= blob.size => Some((url, offset)),
            Ok(_) => {
                tracing::debug!("the registry forgot the upload session of {}; starting over", blob.digest);
                self.sessions.remove(self.client.registry(), self.repository, &blob.digest);
                None
            }
            Err(e) => {
                tracing::debug!("cannot ask about the upload session of {}: {e}", blob.digest);
                None
            }
        }
    }

    /// One try: continue `session` (or open one), send what is left, complete. `session`
    /// tracks the latest URL and offset for the next try.
    async fn attempt(&self, blob: &LocalBlob, session: &mut Option<(Url, u64)>) -> Result<(), Error> {
        let registry = self.client.registry();
        let (mut url, mut offset) = match session.take() {
            Some(found) => found,
            None => match self.client.start_upload(self.repository, None, self.scope).await? {
                UploadStart::Session(url) => (url, 0),
                UploadStart::Mounted => unreachable!("no mount was asked for"),
            },
        };
        *session = Some((url.clone(), offset));
        let mut file = tokio::fs::File::open(&blob.path).await.map_err(Error::io("open", &blob.path))?;
        if offset == 0 && blob.size <= self.chunk_size {
            let body = read_range(&mut file, &blob.path, 0, blob.size).await?;
            self.client.finish_upload(&url, &blob.digest, body, self.scope).await?;
            (self.progress)(blob.size);
            return Ok(());
        }
        while offset < blob.size {
            let len = self.chunk_size.min(blob.size - offset);
            let chunk = read_range(&mut file, &blob.path, offset, len).await?;
            let (next, have) = self.client.upload_chunk(&url, offset, chunk, self.scope).await?;
            if have != offset + len {
                return Err(Error::Protocol {
                    url: fetch::redact(&url),
                    reason: format!("after bytes {offset}..{} the registry says it has {have}", offset + len),
                });
            }
            (self.progress)(len);
            (url, offset) = (next, have);
            *session = Some((url.clone(), offset));
            self.sessions.save(registry, self.repository, &blob.digest, &url, offset);
        }
        self.client.finish_upload(&url, &blob.digest, Bytes::new(), self.scope).await
    }
}

fn is_digest_invalid(e: &Error) -> bool {
    matches!(e, Error::Status { status: 400, detail, .. } if detail.contains("DIGEST_INVALID"))
}

/// [`Error::CorruptLocalBlob`] if the file of `blob` does not hash to its digest.
async fn corrupt_local(blob: &LocalBlob) -> Option<Error> {
    let path = blob.path.clone();
    let actual = tokio::task::spawn_blocking(move || -> std::io::Result<Digest> {
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = sha2::Sha256::new();
        std::io::copy(&mut file, &mut hasher)?;
        Ok(Digest::from_sha256(hasher.finalize().into()))
    })
    .await
    .ok()?
    .ok()?;
    (actual != blob.digest).then(|| Error::CorruptLocalBlob {
        path: blob.path.clone(),
        expected: blob.digest.clone(),
        actual,
    })
}

async fn read_range(file: &mut tokio::fs::File, path: &Path, offset: u64, len: u64) -> Result<Bytes, Error> {
    file.seek(SeekFrom::Start(offset)).await.map_err(Error::io("read", path))?;
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
    file.read_exact(&mut buf).await.map_err(Error::io("read", path))?;
    Ok(Bytes::from(buf))
}
