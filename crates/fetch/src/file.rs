//! `file://` URLs, so local indexes and find-links directories go through the same calls
//! as remote ones. Local reads are not network access: they work offline.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use url::Url;

use crate::cache::{persist, temp_file_beside};
use crate::client::{BodyLimit, ByteRange, RangeReply, Response};
use crate::{redact, Error};

fn local_path(url: &Url) -> Result<PathBuf, Error> {
    url.to_file_path().map_err(|()| Error::NotAFilePath { url: redact(url) })
}

fn read_error(url: &Url, path: PathBuf) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::ReadFile { url: redact(url), path, source }
}

/// Reads a local file; a directory stands for its `index.html`, as pip reads a local
/// PEP 503 index. A missing file is a 404, as it would be on a server. Past `limit` (a
/// `file:///dev/zero` index), it is [`Error::TooLarge`], as a reply from a server would be.
pub(crate) async fn get(url: &Url, limit: BodyLimit) -> Result<Response, Error> {
    let mut path = local_path(url)?;
    if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_dir()) {
        path.push("index.html");
    }
    let is_html = path.extension().is_some_and(|e| e == "html" || e == "htm");
    let read = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || bounded::read_file(&path, limit.bytes, limit.what))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    };
    let (status, body) = match read {
        Ok(body) => (200, Bytes::from(body)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (404, Bytes::new()),
        Err(e) if bounded::too_large(&e).is_some() => {
            return Err(Error::TooLarge { what: limit.what, url: redact(url), limit: limit.bytes })
        }
        Err(e) => return Err(read_error(url, path)(e)),
    };
    Ok(Response {
        status,
        final_url: url.clone(),
        etag: None,
        last_modified: None,
        content_type: is_html.then(|| "text/html".to_string()),
        body,
    })
}

/// Reads part of a local file.
pub(crate) fn get_range(url: &Url, range: ByteRange) -> Result<RangeReply, Error> {
    let path = local_path(url)?;
    let mut file = std::fs::File::open(&path).map_err(read_error(url, path.clone()))?;
    let total = file.metadata().map_err(read_error(url, path.clone()))?.len();
    let (start, end_exclusive) = match range {
        ByteRange::Suffix(n) => (total.saturating_sub(n), total),
        ByteRange::Span { start, end_inclusive } => {
            if start >= total || end_inclusive < start {
                return Ok(RangeReply::Unsupported);
            }
            (start, end_inclusive.saturating_add(1).min(total))
        }
    };
    let len = usize::try_from(end_exclusive - start).map_err(|_| Error::TooLarge {
        what: "range",
        url: redact(url),
        limit: usize::MAX as u64,
    })?;
    let mut body = vec![0u8; len];
    file.seek(SeekFrom::Start(start)).map_err(read_error(url, path.clone()))?;
    file.read_exact(&mut body).map_err(read_error(url, path))?;
    Ok(RangeReply::Partial { start, total, body: Bytes::from(body) })
}

/// Copies a local file into the blob at `dest`, hashing it on the way.
pub(crate) fn copy_verified(url: &Url, expected: &str, dest: &std::path::Path) -> Result<(), Error> {
    let path = local_path(url)?;
    let mut source = std::fs::File::open(&path).map_err(read_error(url, path.clone()))?;
    let mut tmp = temp_file_beside(dest)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = source.read(&mut buf).map_err(read_error(url, path.clone()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n]).map_err(|source| Error::Io {
            action: "write",
            path: tmp.path().to_path_buf(),
            source,
        })?;
    }
    let actual = hex::encode(hasher.finalize());
    if actual != expected {
        return Err(Error::HashMismatch { url: redact(url), expected: expected.to_string(), actual });
    }
    persist(tmp, dest)
}
