//! The on-disk cache: blobs by sha256, and keyed entries (index pages, metadata).
//!
//! Layout under the root:
//! - `blobs/sha256/<hex>`: every downloaded file, named by the digest of its content;
//! - `<namespace>/<sha256 of key>`: small keyed entries (`http/...`, `metadata/...`).
//!
//! Every write goes to a temporary file in the destination directory, is fsynced, then
//! renamed over the destination, so a reader (in this process or another) sees the old
//! content or the new, never half of it; two writers of one blob write the same bytes.
//!
//! Nothing on disk is trusted: a blob is re-hashed against its name every time it is taken
//! from the cache ([`Cache::check_blob`]), and one that does not match (truncated, swapped,
//! edited) is removed, so it is fetched again rather than used.

use env_vars::EnvVars;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::Error;

/// The content-addressed cache directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// What [`Cache::check_blob`] found under a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobState {
    /// The blob is there and hashes to its name.
    Intact(PathBuf),
    /// No blob of that digest.
    Missing,
    /// A file was there but did not hash to its name; it has been removed (the path).
    Evicted(PathBuf),
}

impl Cache {
    /// The cache at `MARQO_BASE_CACHE_DIR`, else `$XDG_CACHE_HOME/marqo-base`, else
    /// `$HOME/.cache/marqo-base`. Nothing is created until something is written.
    pub fn from_env() -> Result<Cache, Error> {
        Cache::from_lookup(|key| std::env::var_os(key))
    }

    fn from_lookup(env: impl Fn(&str) -> Option<OsString>) -> Result<Cache, Error> {
        let set = |key: &str| env(key).filter(|v| !v.is_empty()).map(PathBuf::from);
        let root = set(EnvVars::MARQO_BASE_CACHE_DIR)
            .or_else(|| set(EnvVars::XDG_CACHE_HOME).map(|p| p.join("marqo-base")))
            .or_else(|| set(EnvVars::HOME).map(|p| p.join(".cache").join("marqo-base")))
            .ok_or(Error::NoCacheDir)?;
        Ok(Cache::at(root))
    }

    /// The cache rooted at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    /// The cache root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this sha256 lives (whether or not it is there).
    pub fn blob_path(&self, sha256: &str) -> Result<PathBuf, Error> {
        let digest = normalize_digest(sha256)?;
        Ok(self.blob_dir().join(digest))
    }

    pub(crate) fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Re-hashes the blob named `sha256`. One whose content does not match its name is
    /// removed (with a warning naming it), so it is fetched again rather than served.
    pub fn check_blob(&self, sha256: &str) -> Result<BlobState, Error> {
        let expected = normalize_digest(sha256)?;
        let path = self.blob_dir().join(&expected);
        let file = match fs_err::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BlobState::Missing),
            Err(source) => return Err(Error::Io { action: "open", path, source }),
        };
        match hash_reader(file, &path)? {
            actual if actual == expected => Ok(BlobState::Intact(path)),
            actual => {
                tracing::warn!(
                    "the cached file {} was damaged (its sha256 is {actual}, not its name) and has \
                     been removed; it is fetched or built again",
                    path.display()
                );
                remove_if_present(&path)?;
                Ok(BlobState::Evicted(path))
            }
        }
    }

    /// As [`check_blob`](Self::check_blob) for a blob that is hard-linked into outputs (the
    /// layer store): after a full check the file is made read-only and its identity (inode,
    /// size, modification time to the nanosecond, mode) is recorded; a later check of a file
    /// with the same identity skips the hashing. Anything that changes the bytes through the
    /// file system (an edit through any of its links, a replacement, a `chmod` to edit it)
    /// changes the identity, and the file is hashed again (and evicted when it is wrong).
    pub fn check_blob_stamped(&self, sha256: &str) -> Result<BlobState, Error> {
        let expected = normalize_digest(sha256)?;
        let path = self.blob_dir().join(&expected);
        match identity(&path)? {
            None => return Ok(BlobState::Missing),
            Some(now) if self.read_entry(STAMPS, &expected).as_deref() == Some(now.as_bytes()) => {
                return Ok(BlobState::Intact(path));
            }
            Some(_) => {}
        }
        let state = self.check_blob(&expected)?;
        if let BlobState::Intact(path) = &state {
            use std::os::unix::fs::PermissionsExt;
            let io = |action| move |source| Error::Io { action, path: path.clone(), source };
            fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o444))
                .map_err(io("make read-only"))?;
            if let Some(stamp) = identity(path)? {
                self.write_entry(STAMPS, &expected, stamp.as_bytes())?;
            }
        }
        Ok(state)
    }

    /// [`check_blob`](Self::check_blob) as a yes or no: `Ok(true)` if the blob is present
    /// and intact (a damaged one is removed).
    pub fn verify_blob(&self, sha256: &str) -> Result<bool, Error> {
        Ok(matches!(self.check_blob(sha256)?, BlobState::Intact(_)))
    }

    /// Removes the blob named `sha256`, if present: for a caller that found it damaged.
    pub fn evict_blob(&self, sha256: &str) -> Result<(), Error> {
        remove_if_present(&self.blob_path(sha256)?)
    }

    /// Stores `bytes` as a blob named by their digest; returns the digest and the path.
    pub fn insert_blob(&self, bytes: &[u8]) -> Result<(String, PathBuf), Error> {
        let digest = hex::encode(Sha256::digest(bytes));
        let path = self.blob_dir().join(&digest);
        write_atomic(&path, bytes)?;
        Ok((digest, path))
    }

    /// The file that holds the entry `key` of `namespace` (a `/`-separated relative path of
    /// plain names such as `http/simple`). The key is hashed, so any string is fine.
    pub fn entry_path(&self, namespace: &str, key: &str) -> Result<PathBuf, Error> {
        let valid = !namespace.is_empty()
            && namespace.split('/').all(|part| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            });
        if !valid {
            return Err(Error::InvalidNamespace { namespace: namespace.to_string() });
        }
        let name = hex::encode(Sha256::digest(key.as_bytes()));
        Ok(self.root.join(namespace).join(name))
    }

    /// Reads an entry. A missing or unreadable entry is a miss: the cache is only ever a
    /// shortcut, so failing to read it must not fail the command.
    pub fn read_entry(&self, namespace: &str, key: &str) -> Option<Vec<u8>> {
        let path = match self.entry_path(namespace, key) {
            Ok(path) => path,
            Err(e) => {
                tracing::debug!("cache miss: {e}");
                return None;
            }
        };
        match std::fs::read(&path) {
            Ok(bytes) => match unseal(bytes) {
                Some(payload) => Some(payload),
                None => {
                    // Damaged by something outside us (writes are atomic): drop it, so the
                    // caller fetches afresh and writes a good one.
                    tracing::warn!("ignoring a corrupt cache entry {}", path.display());
                    let _ = std::fs::remove_file(&path);
                    None
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::debug!("cache miss: cannot read {}: {e}", path.display());
                None
            }
        }
    }

    /// Removes an entry, if present.
    pub fn remove_entry(&self, namespace: &str, key: &str) -> Result<(), Error> {
        remove_if_present(&self.entry_path(namespace, key)?)
    }

    /// Writes an entry atomically, replacing any previous one.
    pub fn write_entry(&self, namespace: &str, key: &str, bytes: &[u8]) -> Result<(), Error> {
        write_atomic(&self.entry_path(namespace, key)?, &seal(bytes))
    }
}

/// The namespace of the identities of verified, read-only blobs ([`Cache::check_blob_stamped`]).
const STAMPS: &str = "verified-v1";

/// What identifies the content of the file at `path` without reading it: device, inode,
/// size, modification time (ns) and mode. `None` when there is no file.
fn identity(path: &Path) -> Result<Option<String>, Error> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(format!(
            "{} {} {} {}.{:09} {:o}",
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.mode()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io { action: "read the metadata of", path: path.to_path_buf(), source }),
    }
}

/// The first line of every entry: a format tag, the payload's length and a 64-bit
/// checksum. Not a defence against tampering (blobs are checked by sha256 for that), but
/// enough to notice a truncated or overwritten entry without hashing cryptographically on
/// every warm read.
const ENTRY_TAG: &str = "mbc1";

fn checksum(bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut hasher = rustc_hash::FxHasher::default();
    hasher.write(bytes);
    hasher.finish()
}

fn seal(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{ENTRY_TAG} {} {:016x}\n", payload.len(), checksum(payload)).into_bytes();
    out.extend_from_slice(payload);
    out
}

fn unseal(mut bytes: Vec<u8>) -> Option<Vec<u8>> {
    let newline = bytes.iter().take(64).position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&bytes[..newline]).ok()?;
    let mut parts = header.split(' ');
    let (tag, len, sum) = (parts.next()?, parts.next()?.parse::<usize>().ok()?, parts.next()?);
    let payload = &bytes[newline + 1..];
    if tag != ENTRY_TAG || payload.len() != len || format!("{:016x}", checksum(payload)) != sum {
        return None;
    }
    bytes.drain(..=newline);
    Some(bytes)
}

/// Checks a sha256 hex digest and lower-cases it.
pub(crate) fn normalize_digest(value: &str) -> Result<String, Error> {
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(Error::InvalidDigest { value: value.to_string() })
    }
}

/// A temporary file next to `dest`, so that renaming it over `dest` is atomic.
pub(crate) fn temp_file_beside(dest: &Path) -> Result<tempfile::NamedTempFile, Error> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir).map_err(|source| Error::Io {
        action: "create",
        path: dir.to_path_buf(),
        source,
    })?;
    tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir).map_err(|source| Error::Io {
        action: "create a temporary file in",
        path: dir.to_path_buf(),
        source,
    })
}

/// Fsyncs a finished temporary file and renames it over `dest`.
pub(crate) fn persist(tmp: tempfile::NamedTempFile, dest: &Path) -> Result<(), Error> {
    tmp.as_file().sync_all().map_err(|source| Error::Io {
        action: "sync",
        path: tmp.path().to_path_buf(),
        source,
    })?;
    tmp.persist(dest).map_err(|e| Error::Io {
        action: "rename into",
        path: dest.to_path_buf(),
        source: e.error,
    })?;
    // Makes the rename itself durable; a failure here loses at most a cache entry.
    if let Some(dir) = dest.parent() {
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut tmp = temp_file_beside(dest)?;
    tmp.write_all(bytes).map_err(|source| Error::Io {
        action: "write",
        path: tmp.path().to_path_buf(),
        source,
    })?;
    persist(tmp, dest)
}

/// The sha256 (hex) of everything `reader` yields; `path` names it in errors.
pub(crate) fn hash_reader(mut reader: impl Read, path: &Path) -> Result<String, Error> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(Error::Io { action: "read", path: path.to_path_buf(), source }),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn remove_if_present(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io { action: "remove", path: path.to_path_buf(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_from_environment() {
        fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
            move |key| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| OsString::from(v))
        }
        let all = [("MARQO_BASE_CACHE_DIR", "/c"), ("XDG_CACHE_HOME", "/x"), ("HOME", "/h")];
        assert_eq!(Cache::from_lookup(env(&all)).unwrap().root(), Path::new("/c"));
        let xdg = [("MARQO_BASE_CACHE_DIR", ""), ("XDG_CACHE_HOME", "/x"), ("HOME", "/h")];
        assert_eq!(Cache::from_lookup(env(&xdg)).unwrap().root(), Path::new("/x/marqo-base"));
        let home = [("HOME", "/h")];
        assert_eq!(Cache::from_lookup(env(&home)).unwrap().root(), Path::new("/h/.cache/marqo-base"));
        assert!(matches!(Cache::from_lookup(env(&[])), Err(Error::NoCacheDir)));
    }

    #[test]
    fn entries_round_trip_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        assert_eq!(cache.read_entry("http/simple", "k"), None);
        cache.write_entry("http/simple", "k", b"one").unwrap();
        cache.write_entry("http/simple", "k", b"two").unwrap();
        assert_eq!(cache.read_entry("http/simple", "k").as_deref(), Some(&b"two"[..]));
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("http/simple")).unwrap().collect();
        assert_eq!(names.len(), 1);
        assert!(cache.write_entry("../escape", "k", b"x").is_err());
        assert!(cache.write_entry("/abs", "k", b"x").is_err());
    }

    #[test]
    fn damaged_entries_read_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        cache.write_entry("pages", "k", b"{\"files\": []}").unwrap();
        let path = cache.entry_path("pages", "k").unwrap();
        let good = std::fs::read(&path).unwrap();
        // Truncated, flipped, or replaced by something that never was an entry.
        for damaged in
            [good[..good.len() - 1].to_vec(), [&good[..good.len() - 1], b"]"].concat(), b"garbage".to_vec()]
        {
            std::fs::write(&path, &damaged).unwrap();
            assert_eq!(cache.read_entry("pages", "k"), None);
            assert!(!path.exists(), "a damaged entry is removed");
        }
        cache.write_entry("pages", "k", b"").unwrap();
        assert_eq!(cache.read_entry("pages", "k"), Some(Vec::new()));
    }

    #[test]
    fn corrupt_blob_is_detected_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let (digest, path) = cache.insert_blob(b"hello").unwrap();
        assert_eq!(cache.check_blob(&digest).unwrap(), BlobState::Intact(path.clone()));
        // Swapped for other bytes, or cut short: both are evicted.
        for damaged in [&b"tampered"[..], &b"hell"[..]] {
            std::fs::write(&path, damaged).unwrap();
            assert_eq!(cache.check_blob(&digest).unwrap(), BlobState::Evicted(path.clone()));
            assert!(!path.exists());
            assert_eq!(cache.check_blob(&digest).unwrap(), BlobState::Missing);
        }
        assert!(cache.blob_path("not-a-digest").is_err());
    }

    #[test]
    fn stamped_blobs_are_read_only_and_an_edit_is_noticed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let (digest, path) = cache.insert_blob(b"layer").unwrap();
        assert_eq!(cache.check_blob_stamped(&digest).unwrap(), BlobState::Intact(path.clone()));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o444);
        // Unchanged: trusted by its identity.
        assert_eq!(cache.check_blob_stamped(&digest).unwrap(), BlobState::Intact(path.clone()));
        // Edited in place through a hard link (as root can, read-only or not), same size.
        let link = dir.path().join("link");
        std::fs::hard_link(&path, &link).unwrap();
        std::fs::set_permissions(&link, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&link, b"LAYER").unwrap();
        std::fs::set_permissions(&link, std::fs::Permissions::from_mode(0o444)).unwrap();
        assert_eq!(cache.check_blob_stamped(&digest).unwrap(), BlobState::Evicted(path.clone()));
        assert!(!path.exists());
        assert_eq!(cache.check_blob_stamped(&digest).unwrap(), BlobState::Missing);
        // Replaced by another file: a new inode, hashed again.
        let (_, path) = cache.insert_blob(b"layer").unwrap();
        assert!(cache.verify_blob(&digest).unwrap());
        cache.check_blob_stamped(&digest).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"other").unwrap();
        assert_eq!(cache.check_blob_stamped(&digest).unwrap(), BlobState::Evicted(path));
    }
}
