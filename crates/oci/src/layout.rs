//! An OCI image layout directory: `oci-layout`, `index.json` and content-addressed
//! `blobs/sha256/<hex>`, as `skopeo`, `umoci` and registries' tools read it.
//!
//! Blobs are written through a temporary file in `blobs/sha256` and renamed into place, so a
//! blob file is never partial; `index.json` is replaced the same way. Reads verify each blob
//! against its digest.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tempfile::NamedTempFile;

use crate::hashing::Hashing;
use crate::media_type::{self, ANNOTATION_REF_NAME};
use crate::{atomic, Descriptor, Digest, Error, ImageConfig, ImageIndex, ImageManifest, SCHEMA_VERSION};

/// The `imageLayoutVersion` we write.
const LAYOUT_VERSION: &str = "1.0.0";

/// The content of the `oci-layout` file.
#[derive(Serialize, Deserialize)]
struct LayoutMarker {
    #[serde(rename = "imageLayoutVersion")]
    image_layout_version: String,
}

/// An OCI image layout directory, to write blobs and refs into or read them from.
#[derive(Debug, Clone)]
pub struct OciLayout {
    root: PathBuf,
}

/// A blob stored in a layout: its digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// The digest of its content.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

impl Blob {
    /// A descriptor of this blob with `media_type`.
    pub fn descriptor(&self, media_type: impl Into<String>) -> Descriptor {
        Descriptor::new(media_type, self.digest.clone(), self.size)
    }
}

impl OciLayout {
    /// Creates a new, empty layout in `dir` (created if missing): writes `oci-layout`, an
    /// empty `index.json` and `blobs/sha256/`. Refuses a directory that has any file.
    pub fn create(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let root = dir.as_ref().to_path_buf();
        fs::create_dir_all(&root).map_err(Error::io("create", &root))?;
        let mut entries = fs::read_dir(&root).map_err(Error::io("read", &root))?;
        if entries.next().is_some() {
            return Err(Error::NotEmpty { path: root });
        }
        let layout = Self { root };
        let blobs = layout.root.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(Error::io("create", &blobs))?;
        let marker = LayoutMarker { image_layout_version: LAYOUT_VERSION.to_string() };
        atomic::write(&layout.root.join("oci-layout"), &to_json(&marker, "oci-layout")?)?;
        layout.write_index(&ImageIndex::new(Vec::new()))?;
        Ok(layout)
    }

    /// Opens the existing layout in `dir`, checking its `oci-layout` file.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let root = dir.as_ref().to_path_buf();
        let marker_path = root.join("oci-layout");
        let bytes = match bounded::read_file(&marker_path, bounded::MAX_TEXT_FILE, "an oci-layout file") {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotALayout { path: root, reason: "it has no `oci-layout` file".into() });
            }
            Err(e) => return Err(Error::io("read", marker_path)(e)),
        };
        let marker: LayoutMarker = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            path: marker_path,
            what: "oci-layout file",
            source,
        })?;
        if !marker.image_layout_version.starts_with("1.") {
            return Err(Error::NotALayout {
                path: root,
                reason: format!("imageLayoutVersion {} is not 1.x", marker.image_layout_version),
            });
        }
        Ok(Self { root })
    }

    /// The layout's directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Where the blob `digest` is (or would be) stored.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join(digest.algorithm()).join(digest.hex())
    }

    /// A writer for a new blob, hashed as it is written; [`BlobWriter::commit`] stores it.
    pub fn blob_writer(&self) -> Result<BlobWriter<'_>, Error> {
        let dir = self.root.join("blobs").join("sha256");
        let file = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&dir)
            .map_err(Error::io("create a temporary file in", &dir))?;
        Ok(BlobWriter { layout: self, file: Hashing::new(file) })
    }

    /// Stores `bytes` as a blob (nothing is written when it is already there).
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Blob, Error> {
        let blob = Blob { digest: Digest::of_bytes(bytes), size: bytes.len() as u64 };
        let dest = self.blob_path(&blob.digest);
        if !has_size(&dest, blob.size) {
            atomic::write(&dest, bytes)?;
        }
        Ok(blob)
    }

    /// Stores everything `reader` yields as a blob, streaming (never the whole blob in memory).
    /// `source` names the reader in errors.
    pub fn put_blob_from_reader(&self, mut reader: impl Read, source: &Path) -> Result<Blob, Error> {
        let mut writer = self.blob_writer()?;
        let path = writer.file.get_mut().path().to_path_buf();
        copy(&mut reader, &mut writer, source, &path)?;
        writer.commit()
    }

    /// Stores the file at `path` as a blob, streaming it.
    pub fn put_blob_from_file(&self, path: impl AsRef<Path>) -> Result<Blob, Error> {
        let path = path.as_ref();
        let file = File::open(path).map_err(Error::io("open", path))?;
        self.put_blob_from_reader(file, path)
    }

    /// Copies the file at `path` in as the blob `expected`, hashing it on the way (one pass):
    /// a file that does not hash to `expected` is refused with
    /// [`Error::DigestMismatch`] naming `path`, and nothing is stored.
    pub fn copy_blob_checked(&self, path: impl AsRef<Path>, expected: &Digest) -> Result<Blob, Error> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(Error::io("open", path))?;
        let mut writer = self.blob_writer()?;
        let temp = writer.file.get_mut().path().to_path_buf();
        copy(&mut file, &mut writer, path, &temp)?;
        writer.commit_as(expected, path)
    }

    /// Stores `value`'s JSON (compact, in the types' field order: the same value always gives
    /// the same bytes) as a blob and returns its descriptor.
    pub fn put_json<T: Serialize>(&self, value: &T, media_type: &str) -> Result<Descriptor, Error> {
        let bytes = serde_json::to_vec(value)
            .map_err(|source| Error::Serialize { media_type: media_type.to_string(), source })?;
        Ok(self.put_blob(&bytes)?.descriptor(media_type))
    }

    /// The layout's `index.json`.
    pub fn index(&self) -> Result<ImageIndex, Error> {
        let path = self.root.join("index.json");
        let bytes = bounded::read_file(&path, bounded::MAX_TEXT_FILE, "an index.json")
            .map_err(Error::io("read", &path))?;
        let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            path: path.clone(),
            what: "image index",
            source,
        })?;
        check_schema(&path, index.schema_version)?;
        Ok(index)
    }

    /// Points the ref `name` at `descriptor` in `index.json` (as the annotation
    /// `org.opencontainers.image.ref.name`), replacing the entry of that name if there is one
    /// (in place, so the order of the others is kept). Written atomically.
    pub fn set_ref(&self, name: &str, descriptor: &Descriptor) -> Result<(), Error> {
        let mut index = self.index()?;
        let entry = descriptor.clone().with_annotation(ANNOTATION_REF_NAME, name);
        match index.manifests.iter_mut().find(|d| d.ref_name() == Some(name)) {
            Some(existing) => *existing = entry,
            None => index.manifests.push(entry),
        }
        self.write_index(&index)
    }

    /// The descriptor the ref `name` points at in `index.json`.
    pub fn resolve(&self, name: &str) -> Result<Descriptor, Error> {
        let index = self.index()?;
        if let Some(found) = index.find_ref(name) {
            return Ok(found.clone());
        }
        let names: Vec<&str> = index.manifests.iter().filter_map(Descriptor::ref_name).collect();
        Err(Error::RefNotFound {
            path: self.root.join("index.json"),
            name: name.to_string(),
            available: if names.is_empty() { "none".to_string() } else { names.join(", ") },
        })
    }

    /// The content of blob `digest`, verified against the digest. For documents (manifests,
    /// indexes, configs): a blob over [`bounded::MAX_TEXT_FILE`] is refused rather than held in
    /// memory; layers are streamed with [`OciLayout::open_blob`].
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, Error> {
        let path = self.blob_path(digest);
        let bytes = match bounded::read_file(&path, bounded::MAX_TEXT_FILE, &format!("the blob {digest}")) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::MissingBlob { layout: self.root.clone(), digest: digest.clone(), path });
            }
            Err(e) => return Err(Error::io("read", path)(e)),
        };
        let actual = Digest::of_bytes(&bytes);
        if &actual != digest {
            return Err(Error::DigestMismatch { path, expected: digest.clone(), actual });
        }
        Ok(bytes)
    }

    /// Opens blob `digest` for streaming; [`VerifiedBlob::verify`] checks the digest once it
    /// has been read to the end.
    pub fn open_blob(&self, digest: &Digest) -> Result<VerifiedBlob, Error> {
        let path = self.blob_path(digest);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::MissingBlob { layout: self.root.clone(), digest: digest.clone(), path });
            }
            Err(e) => return Err(Error::io("open", path)(e)),
        };
        let size = file.metadata().map_err(Error::io("read", &path))?.len();
        Ok(VerifiedBlob { reader: Hashing::new(file), expected: digest.clone(), size, path })
    }

    /// The JSON blob `descriptor` points at, verified against its digest and size.
    pub fn read_json<T: DeserializeOwned>(
        &self,
        descriptor: &Descriptor,
        what: &'static str,
    ) -> Result<T, Error> {
        let bytes = self.read_blob(&descriptor.digest)?;
        let path = self.blob_path(&descriptor.digest);
        if bytes.len() as u64 != descriptor.size {
            return Err(Error::SizeMismatch { path, expected: descriptor.size, actual: bytes.len() as u64 });
        }
        serde_json::from_slice(&bytes).map_err(|source| Error::Json { path, what, source })
    }

    /// The image manifest `descriptor` points at (OCI or Docker).
    pub fn read_manifest(&self, descriptor: &Descriptor) -> Result<ImageManifest, Error> {
        expect_media_type(descriptor, media_type::is_manifest, "an image manifest")?;
        let manifest: ImageManifest = self.read_json(descriptor, "image manifest")?;
        check_schema(&self.blob_path(&descriptor.digest), manifest.schema_version)?;
        Ok(manifest)
    }

    /// The image index `descriptor` points at (OCI or a Docker manifest list).
    pub fn read_image_index(&self, descriptor: &Descriptor) -> Result<ImageIndex, Error> {
        expect_media_type(descriptor, media_type::is_index, "an image index")?;
        let index: ImageIndex = self.read_json(descriptor, "image index")?;
        check_schema(&self.blob_path(&descriptor.digest), index.schema_version)?;
        Ok(index)
    }

    /// The image configuration `descriptor` points at (OCI or Docker).
    pub fn read_config(&self, descriptor: &Descriptor) -> Result<ImageConfig, Error> {
        expect_media_type(descriptor, media_type::is_config, "an image configuration")?;
        self.read_json(descriptor, "image configuration")
    }

    /// Checks that every blob `root` reaches is in the layout: indexes (nested at most
    /// `max_depth` deep) and manifests read and verified, configurations and layers present
    /// with their descriptors' sizes. A layout that passes is one other tools can copy whole.
    pub fn check_complete(&self, root: &Descriptor, max_depth: usize) -> Result<(), Error> {
        let mut level = vec![root.clone()];
        let mut seen = std::collections::BTreeSet::new();
        for depth in 0..=max_depth {
            let mut next = Vec::new();
            for descriptor in level {
                if !seen.insert(descriptor.digest.clone()) {
                    continue;
                }
                if media_type::is_index(&descriptor.media_type) {
                    if depth == max_depth {
                        return Err(Error::TooDeep { digest: descriptor.digest, limit: max_depth });
                    }
                    next.extend(self.read_image_index(&descriptor)?.manifests);
                } else if media_type::is_manifest(&descriptor.media_type) {
                    let manifest = self.read_manifest(&descriptor)?;
                    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
                        self.check_blob_size(blob)?;
                    }
                } else {
                    return Err(Error::MediaType {
                        digest: descriptor.digest,
                        found: descriptor.media_type,
                        expected: "an image index or an image manifest",
                    });
                }
            }
            level = next;
        }
        Ok(())
    }

    /// Whether blob `descriptor` is in the layout with its descriptor's size.
    fn check_blob_size(&self, descriptor: &Descriptor) -> Result<(), Error> {
        let path = self.blob_path(&descriptor.digest);
        match fs::metadata(&path) {
            Ok(m) if m.len() == descriptor.size => Ok(()),
            Ok(m) => Err(Error::SizeMismatch { path, expected: descriptor.size, actual: m.len() }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::MissingBlob { layout: self.root.clone(), digest: descriptor.digest.clone(), path })
            }
            Err(e) => Err(Error::io("read", path)(e)),
        }
    }

    fn write_index(&self, index: &ImageIndex) -> Result<(), Error> {
        atomic::write(&self.root.join("index.json"), &to_json(index, media_type::OCI_IMAGE_INDEX)?)
    }
}

/// A new blob being written into a layout; dropped without [`commit`](Self::commit), it
/// leaves nothing behind.
pub struct BlobWriter<'a> {
    layout: &'a OciLayout,
    file: Hashing<NamedTempFile>,
}

impl BlobWriter<'_> {
    /// Stores what was written under its digest: the temporary file is synced and renamed,
    /// or dropped when a blob of that digest and size is already there.
    pub fn commit(self) -> Result<Blob, Error> {
        let (digest, size, file) = self.file.finish();
        let dest = self.layout.blob_path(&digest);
        if !has_size(&dest, size) {
            atomic::persist(file, &dest)?;
        }
        Ok(Blob { digest, size })
    }
}

impl BlobWriter<'_> {
    /// As [`commit`](Self::commit), for content that must be the blob `expected`: anything
    /// else is [`Error::DigestMismatch`] naming `source` (where the bytes came from) and is
    /// not stored.
    pub fn commit_as(self, expected: &Digest, source: &Path) -> Result<Blob, Error> {
        let (digest, size, file) = self.file.finish();
        if &digest != expected {
            drop(file);
            return Err(Error::DigestMismatch {
                path: source.to_path_buf(),
                expected: expected.clone(),
                actual: digest,
            });
        }
        let dest = self.layout.blob_path(&digest);
        if !has_size(&dest, size) {
            atomic::persist(file, &dest)?;
        }
        Ok(Blob { digest, size })
    }
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A blob opened for streaming, hashed as it is read.
pub struct VerifiedBlob {
    reader: Hashing<File>,
    expected: Digest,
    size: u64,
    path: PathBuf,
}

impl VerifiedBlob {
    /// The blob's size on disk.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The blob's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks that what was read hashes to the blob's digest (read it to the end first).
    pub fn verify(self) -> Result<(), Error> {
        let (actual, _, _) = self.reader.finish();
        if actual != self.expected {
            return Err(Error::DigestMismatch { path: self.path, expected: self.expected, actual });
        }
        Ok(())
    }
}

impl Read for VerifiedBlob {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

/// Whether `path` is a file of `size` bytes (a blob already stored).
fn has_size(path: &Path, size: u64) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == size)
}

fn to_json<T: Serialize>(value: &T, media_type: &str) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value)
        .map_err(|source| Error::Serialize { media_type: media_type.to_string(), source })
}

fn check_schema(path: &Path, found: u32) -> Result<(), Error> {
    if found != SCHEMA_VERSION {
        return Err(Error::SchemaVersion { path: path.to_path_buf(), found });
    }
    Ok(())
}

fn expect_media_type(
    descriptor: &Descriptor,
    ok: fn(&str) -> bool,
    expected: &'static str,
) -> Result<(), Error> {
    if !ok(&descriptor.media_type) {
        return Err(Error::MediaType {
            digest: descriptor.digest.clone(),
            found: descriptor.media_type.clone(),
            expected,
        });
    }
    Ok(())
}

/// Copies `reader` into `writer`, naming `from` for a read error and `to` for a write error.
fn copy(reader: &mut impl Read, writer: &mut impl Write, from: &Path, to: &Path) -> Result<u64, Error> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("read", from)(e)),
        };
        writer.write_all(&buf[..n]).map_err(Error::io("write", to))?;
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_complete_finds_what_an_index_reaches_and_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let layout = OciLayout::create(dir.path().join("l")).unwrap();
        let config = layout.put_blob(b"{}").unwrap().descriptor(media_type::OCI_IMAGE_CONFIG);
        let layer = Descriptor::new(media_type::OCI_LAYER_TAR, Digest::of_bytes(b"absent"), 6);
        let manifest =
            layout.put_json(&ImageManifest::new(config, vec![layer]), media_type::OCI_IMAGE_MANIFEST);
        let inner = layout.put_json(&ImageIndex::new(vec![manifest.unwrap()]), media_type::OCI_IMAGE_INDEX);
        let root =
            layout.put_json(&ImageIndex::new(vec![inner.unwrap()]), media_type::OCI_IMAGE_INDEX).unwrap();
        let missing = layout.check_complete(&root, 4).unwrap_err();
        assert!(matches!(missing, Error::MissingBlob { .. }), "{missing}");
        assert!(matches!(layout.check_complete(&root, 1).unwrap_err(), Error::TooDeep { limit: 1, .. }));
        layout.put_blob(b"absent").unwrap();
        layout.check_complete(&root, 4).unwrap();
        let artifact = Descriptor::new("application/spdx+json", Digest::of_bytes(b"{}"), 2);
        let odd = layout.put_json(&ImageIndex::new(vec![artifact]), media_type::OCI_IMAGE_INDEX).unwrap();
        assert!(matches!(layout.check_complete(&odd, 4).unwrap_err(), Error::MediaType { .. }));
    }
}
