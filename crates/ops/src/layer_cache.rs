//! Built layers, remembered by the digest of what went into them: a rebuild after one
//! package bump compresses only the layer that package is in.
//!
//! A key is the sha256 of a description of the layer's inputs (the hashes of the locked
//! files, the layer options, the target's Python) and of the running executable's identity,
//! since another build of the tool may lay out the same inputs differently. An entry maps
//! the key to the layer's [`LayerInfo`]; the compressed layer itself is a blob of the cache
//! store, named by its sha256 like every other blob there.
//!
//! Nothing is reused unverified: [`LayerCache::get`] checks the stored blob
//! ([`fetch::Cache::check_blob_stamped`]): hashed in full the first time and whenever the file
//! changed since (inode, size, mtime, mode), and a damaged one is a miss (removed with a
//! warning, its entry too), so the layer is built again. A layout gets a hard link to the
//! stored blob, which is read-only: an edit of the layout's file has to change its mode or
//! its mtime, both of which the next build notices before it reuses the layer. Copying
//! instead would cost a warm rebuild more than all of its other work (see ARCHITECTURE.md).

use std::io;
use std::path::Path;

use image::{Compression, LayerInfo};
use oci::{Digest, OciLayout};
use sha2::{Digest as _, Sha256};

/// The namespace of the entries in the cache. Bump the version when the entry format changes.
const NAMESPACE: &str = "layers-v1";
/// The namespace of what a layer's build reported (a Debian layer's maintainer scripts), by
/// the layer's key.
const NOTES: &str = "layer-notes-v1";
/// The namespace of what a layer's build learned of its packages (`sbom::PackageFacts`), by
/// the layer's key: a layer of packages is only reused with them (see [`packages`](LayerCache::packages)).
const PACKAGES: &str = "layer-packages-v1";

/// The version of how layers are laid out from their inputs, beyond what a key's
/// description names: bump it with any change to the layer writer, the wheel installer, the
/// Debian unpacking or the byte-compiler that changes a layer's bytes (the golden digests of
/// the tests fail until then), so that registry caches written by another build of the same
/// release are not reused for different bytes.
pub const LAYER_FORMAT: u32 = 1;

/// The layer cache of one build.
pub struct LayerCache {
    cache: fetch::Cache,
    /// What identifies the running executable (see the module docs).
    tool: String,
    /// `false` with `--no-cache`: nothing is read, everything built is still stored.
    read: bool,
}

impl LayerCache {
    /// The layer cache inside `cache`.
    pub fn new(cache: fetch::Cache, read: bool) -> LayerCache {
        LayerCache { cache, tool: tool_identity(), read }
    }

    /// The download cache the layers are stored in.
    pub fn store(&self) -> &fetch::Cache {
        &self.cache
    }

    /// The key of a layer whose inputs `description` lists completely (one line per input).
    pub fn key(&self, description: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(format!("marqo-base layer\n{}\n", self.tool).as_bytes());
        hasher.update(description.as_bytes());
        hex::encode(hasher.finalize())
    }

    /// The key of the same layer in a registry cache: it names the tool's release instead
    /// of its executable, so it means the same on every machine that runs that release
    /// ([`LAYER_FORMAT`] changes whenever a release would lay the same inputs out anew).
    pub fn portable_key(description: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(
            format!("marqo-base layer\nrelease {} format {LAYER_FORMAT}\n", env!("CARGO_PKG_VERSION"))
                .as_bytes(),
        );
        hasher.update(description.as_bytes());
        hex::encode(hasher.finalize())
    }

    /// The layer stored under `key`, if its entry is there and its blob is intact (see the
    /// module docs). A damaged blob (cut short, swapped, edited through a layout's hard link)
    /// is removed with its entry, with one warning, and is a miss.
    pub fn get(&self, key: &str) -> Option<LayerInfo> {
        if !self.read {
            return None;
        }
        let bytes = self.cache.read_entry(NAMESPACE, key)?;
        let info = parse_entry(std::str::from_utf8(&bytes).ok()?)?;
        match self.cache.check_blob_stamped(info.digest.hex()) {
            Ok(fetch::BlobState::Intact(_)) => Some(info),
            Ok(fetch::BlobState::Missing) => None,
            Ok(fetch::BlobState::Evicted(_)) => {
                // The warning was given; the entry goes too, so nothing points at the blob
                // until the layer is built again.
                let _ = self.cache.remove_entry(NAMESPACE, key);
                None
            }
            Err(e) => {
                tracing::debug!("cannot read the cached layer {}: {e}", info.digest);
                None
            }
        }
    }

    /// What the build of the layer under `key` reported, when it was kept (see
    /// [`put_note`](Self::put_note)). Read even with `--no-cache`'s layers rebuilt: it is
    /// only ever shown, and a rebuilt layer replaces it.
    pub fn note(&self, key: &str) -> Option<String> {
        String::from_utf8(self.cache.read_entry(NOTES, key)?).ok()
    }

    /// Keeps what the build of the layer under `key` reported, to show again when the layer
    /// comes from the cache. A failure is logged: it only costs the report.
    pub fn put_note(&self, key: &str, text: &str) {
        if let Err(e) = self.cache.write_entry(NOTES, key, text.as_bytes()) {
            tracing::warn!("cannot keep a layer's report in the cache: {e}");
        }
    }

    /// What the build of the layer under `key` learned of its packages (the text
    /// `sbom::facts_to_text` wrote), if it is kept and reads back.
    pub fn packages(&self, key: &str) -> Option<String> {
        let text = String::from_utf8(self.cache.read_entry(PACKAGES, key)?).ok()?;
        sbom::facts_from_text(&text).ok().map(|_| text)
    }

    /// Keeps what the build of the layer under `key` learned of its packages. A failure is
    /// logged: the layer is then built again next time, as it cannot be described.
    pub fn put_packages(&self, key: &str, text: &str) {
        if let Err(e) = self.cache.write_entry(PACKAGES, key, text.as_bytes()) {
            tracing::warn!("cannot keep a layer's package facts in the cache: {e}");
        }
    }

    /// Puts the cached layer `info` (checked by [`get`](Self::get)) into `layout`: a hard
    /// link to the read-only stored blob, else (another file system) a copy.
    pub fn link_into(&self, info: &LayerInfo, layout: &OciLayout) -> Result<(), LinkError> {
        let digest = &info.digest;
        let source = self.cache.blob_path(digest.hex()).map_err(|e| LinkError::other(digest, e))?;
        let dest = layout.blob_path(digest);
        if dest.is_file() {
            return Ok(());
        }
        match std::fs::hard_link(&source, &dest) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(_) => copy_atomic(&source, &dest).map_err(|e| LinkError::io(&source, e)),
        }
    }

    /// Remembers the layer `info` whose blob is at `blob` (in the layout) under `key`. A
    /// failure only costs a later rebuild, so it is logged, not returned.
    pub fn put(&self, key: &str, info: &LayerInfo, blob: &Path) {
        if let Err(e) = self.try_put(key, info, blob) {
            tracing::warn!("cannot store layer {} in the cache: {e}", info.digest);
        }
    }

    fn try_put(&self, key: &str, info: &LayerInfo, blob: &Path) -> Result<(), Box<dyn std::error::Error>> {
        let hex = info.digest.hex();
        let dest = self.cache.blob_path(hex)?;
        // A blob already stored is kept only if it is intact (else it is replaced).
        if !matches!(self.cache.check_blob_stamped(hex)?, fetch::BlobState::Intact(_)) {
            // Linked (or copied) under a temporary name, then renamed: the store only ever
            // holds complete blobs. The name is new to this call: both platforms of a build
            // often store one layer at once, from the same layout path, and a copy onto
            // another thread's link would truncate the layout's blob through it.
            let dir = dest.parent().ok_or("no blob directory")?;
            fs_err::create_dir_all(dir)?;
            let linked = tempfile::Builder::new()
                .prefix(&format!(".{hex}."))
                .suffix(".tmp")
                .make_in(dir, |path| std::fs::hard_link(blob, path));
            match linked {
                Ok(temp) => {
                    let path = temp.path().to_path_buf();
                    temp.persist(&dest)
                        .map_err(|e| format!("cannot rename into {}: {}", dest.display(), e.error))?;
                    // A rename onto another link of the same file (another thread stored it
                    // first) succeeds and does nothing: the temporary name is still there.
                    let _ = std::fs::remove_file(&path);
                }
                // Another file system: a copy, into a file of its own.
                Err(_) => copy_atomic(blob, &dest)?,
            }
            // Hashed once more as it is stamped, and made read-only (the layout's file too).
            if !matches!(self.cache.check_blob_stamped(hex)?, fetch::BlobState::Intact(_)) {
                return Err(format!("the layer {} changed while it was stored", info.digest).into());
            }
        }
        self.cache.write_entry(NAMESPACE, key, format_entry(info).as_bytes())?;
        Ok(())
    }
}

/// Copies `from` to `to` under a temporary name in `to`'s directory, then renames it: a
/// reader only ever sees a complete file.
fn copy_atomic(from: &Path, to: &Path) -> io::Result<()> {
    let dir = to.parent().ok_or_else(|| io::Error::other("no blob directory"))?;
    let temp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    fs_err::copy(from, temp.path())?;
    temp.as_file().sync_all()?;
    temp.persist(to).map_err(|e| e.error)?;
    Ok(())
}

/// An error putting a cached layer into the layout.
#[derive(Debug, thiserror::Error)]
#[error("cannot copy the cached layer {what} into the image layout")]
pub struct LinkError {
    what: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl LinkError {
    fn io(path: &Path, source: io::Error) -> LinkError {
        LinkError { what: path.display().to_string(), source: Box::new(source) }
    }

    fn other(what: &Digest, source: impl std::error::Error + Send + Sync + 'static) -> LinkError {
        LinkError { what: what.to_string(), source: Box::new(source) }
    }
}

/// The executable's path, size and modification time: another build of the tool is another
/// identity (hashing the executable would cost more than a warm rebuild).
fn tool_identity() -> String {
    let exe = std::env::current_exe().ok();
    let meta = exe.as_ref().and_then(|p| std::fs::metadata(p).ok());
    match (exe, meta) {
        (Some(path), Some(meta)) => {
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{} {} {} {mtime}", env!("CARGO_PKG_VERSION"), path.display(), meta.len())
        }
        // Unknown: a fresh identity, so nothing stale is ever served.
        _ => format!("unknown {}", std::process::id()),
    }
}

fn format_entry(info: &LayerInfo) -> String {
    let compression = match info.compression {
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
    };
    format!("{}\n{}\n{}\n{}\n{compression}\n", info.diff_id, info.digest, info.size, info.uncompressed_size)
}

/// An entry as [`format_entry`] wrote it, its digests parsed once; anything else (a damaged
/// or older entry) is `None`, a miss.
fn parse_entry(text: &str) -> Option<LayerInfo> {
    let mut lines = text.lines();
    let diff_id = Digest::parse(lines.next()?).ok()?;
    let digest = Digest::parse(lines.next()?).ok()?;
    let size = lines.next()?.parse().ok()?;
    let uncompressed_size = lines.next()?.parse().ok()?;
    let compression = match lines.next()? {
        "gzip" => Compression::Gzip,
        "zstd" => Compression::Zstd,
        _ => return None,
    };
    Some(LayerInfo { diff_id, digest, size, uncompressed_size, compression })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_damage_is_a_miss() {
        let info = LayerInfo {
            diff_id: Digest::from_hex(&"a".repeat(64)).unwrap(),
            digest: Digest::from_hex(&"b".repeat(64)).unwrap(),
            size: 12,
            uncompressed_size: 34,
            compression: Compression::Zstd,
        };
        assert_eq!(parse_entry(&format_entry(&info)), Some(info));
        assert_eq!(parse_entry("sha256:zz\n"), None);
        assert_eq!(parse_entry(""), None);
    }

    /// A gzip layer whose blob is `blob`, its diff_id made of `diff`.
    fn info_of(blob: &oci::Blob, diff: char) -> LayerInfo {
        LayerInfo {
            diff_id: Digest::from_hex(&diff.to_string().repeat(64)).unwrap(),
            digest: blob.digest.clone(),
            size: blob.size,
            uncompressed_size: 99,
            compression: Compression::Gzip,
        }
    }

    #[test]
    fn a_cached_layer_is_linked_read_only_and_a_damaged_one_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::new(fetch::Cache::at(dir.path().join("cache")), true);
        let layout = OciLayout::create(dir.path().join("a")).unwrap();
        let blob = layout.put_blob(b"layer bytes").unwrap();
        let info = info_of(&blob, 'c');
        let key = cache.key("wheel x\n");
        assert_ne!(key, cache.key("wheel y\n"));
        assert!(cache.get(&key).is_none());
        cache.put(&key, &info, &layout.blob_path(&blob.digest));
        assert_eq!(cache.get(&key), Some(info.clone()));

        let other = OciLayout::create(dir.path().join("b")).unwrap();
        cache.link_into(&info, &other).unwrap();
        assert_eq!(other.read_blob(&blob.digest).unwrap(), b"layer bytes");

        // The stored blob, and so each layout's link to it, is read-only.
        use std::os::unix::fs::PermissionsExt;
        let stored = dir.path().join("cache/blobs/sha256").join(blob.digest.hex());
        for file in [&stored, &other.blob_path(&blob.digest)] {
            assert_eq!(std::fs::metadata(file).unwrap().permissions().mode() & 0o777, 0o444);
        }

        // A blob swapped for other bytes of the same size, a truncated one, or one edited
        // through a layout's link, is a miss, and the entry is gone with it.
        let good = dir.path().join("good");
        let edit_through_link = |bytes: &[u8]| {
            let link = other.blob_path(&blob.digest);
            let _ = std::fs::remove_file(&link);
            cache.link_into(&info, &other).unwrap();
            std::fs::set_permissions(&link, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::write(&link, bytes).unwrap();
        };
        let replace = |bytes: &[u8]| {
            let _ = std::fs::remove_file(&stored);
            std::fs::write(&stored, bytes).unwrap();
        };
        for damage in [&replace as &dyn Fn(&[u8]), &edit_through_link] {
            for damaged in [&b"LAYER BYTES"[..], &b"layer"[..]] {
                // A fresh file each time: `put` links it into the store.
                let _ = std::fs::remove_file(&good);
                std::fs::write(&good, b"layer bytes").unwrap();
                cache.put(&key, &info, &good);
                assert_eq!(cache.get(&key), Some(info.clone()));
                damage(damaged);
                assert!(cache.get(&key).is_none());
                assert!(!stored.exists());
                assert!(cache.cache.read_entry(NAMESPACE, &key).is_none());
            }
        }
        // Reading can be switched off (--no-cache).
        let no_read = LayerCache::new(fetch::Cache::at(dir.path().join("cache")), false);
        assert!(no_read.get(&key).is_none());
    }

    /// Both platforms of a build often make the same layer (a pure-Python wheel's) at once,
    /// and store it from the same layout path: neither may truncate the other's link, which
    /// is the layout's blob itself.
    #[test]
    fn one_layer_stored_by_several_threads_at_once_stays_intact() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::new(fetch::Cache::at(dir.path().join("cache")), true);
        let layout = OciLayout::create(dir.path().join("a")).unwrap();
        let bytes = vec![7u8; 64 << 10];
        let blob = layout.put_blob(&bytes).unwrap();
        let info = info_of(&blob, 'd');
        let path = layout.blob_path(&blob.digest);
        let stored = dir.path().join("cache/blobs/sha256").join(blob.digest.hex());
        for round in 0..100 {
            // Not stored yet: every thread links it in.
            let _ = std::fs::remove_file(&stored);
            let barrier = std::sync::Barrier::new(4);
            std::thread::scope(|scope| {
                for n in 0..4 {
                    let (cache, info, path, barrier) = (&cache, &info, &path, &barrier);
                    scope.spawn(move || {
                        barrier.wait();
                        cache.put(&cache.key(&format!("wheel {n}\n")), info, path);
                    });
                }
            });
            assert_eq!(layout.read_blob(&blob.digest).unwrap(), bytes, "round {round}: the layout's blob");
            assert_eq!(std::fs::read(&stored).unwrap(), bytes, "round {round}: the stored blob");
            let leftovers: Vec<_> = std::fs::read_dir(stored.parent().unwrap())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|name| name.to_string_lossy().ends_with(".tmp"))
                .collect();
            assert!(leftovers.is_empty(), "round {round}: {leftovers:?}");
        }
    }
}
