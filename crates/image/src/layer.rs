//! One reproducible layer: entries collected in any order, written sorted as a tar stream,
//! compressed (gzip or zstd, on several threads: see [`crate::compress`]) into a file while
//! the digests of both streams are computed.
//!
//! File contents are spooled into an unnamed scratch file as they are added, so a layer
//! never sits in memory, whatever its size; only the entry table does.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use oci::Digest;
use safe_path::{Absolute, Refusal, Rules, Windows};
use sha2::{Digest as _, Sha256};

use crate::compress::{default_threads, Compression, Encoder};

/// The largest size a ustar header stores in octal; larger files get a PAX `size` record.
const USTAR_MAX_SIZE: u64 = 0o77777777777;

/// An error while building a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A path that cannot be placed in a layer (empty, `..`, NUL).
    #[error("invalid path `{path}` in layer: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The same path was added twice (directories excepted).
    #[error("`{path}` is added twice to the layer")]
    Duplicate {
        /// The normalised path.
        path: String,
    },
    /// A path below an entry that is not a directory (a file or a symlink).
    #[error("cannot add `{path}`: `{parent}` is not a directory in this layer")]
    ParentNotDir {
        /// The normalised path being added.
        path: String,
        /// The ancestor that is a file or a symlink.
        parent: String,
    },
    /// A hard link whose target is not a regular file of the same layer.
    #[error("hard link `{path}` points to `{target}`, which is not a regular file in this layer")]
    BadHardlink {
        /// The normalised path of the link.
        path: String,
        /// The normalised target.
        target: String,
    },
    /// Reading the content of a file that was added failed.
    #[error("failed to read the content of `{path}`")]
    ReadContent {
        /// The normalised path of the file.
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The scratch file holding file contents could not be created or used.
    #[error("failed to use the scratch file in {}", dir.display())]
    Scratch {
        /// The scratch directory.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An owner was set on a path that is not a directory, file or symlink of the layer
    /// (a hard link has the owner of the file it links to).
    #[error("cannot set the owner of `{path}`: no directory, file or symlink of the layer has that path")]
    NoOwnerEntry {
        /// The normalised path.
        path: String,
    },
    /// Writing the compressed layer failed.
    #[error("failed to write layer {}", path.display())]
    Write {
        /// The output path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// What makes a layer reproducible apart from its entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerOptions {
    /// The mtime of every entry, in seconds since the epoch (`SOURCE_DATE_EPOCH`, else 0).
    pub mtime: u64,
    /// Keep each mode as given, setuid, setgid and sticky bits included (Debian packages
    /// need them: `/tmp` is 1777, `/root` 0700, `su` 4755; wheels never do). Without it, files
    /// are normalised to 0755 or 0644 and directories to 0755.
    pub keep_special_bits: bool,
}

/// The identity of a written layer, as an image config and manifest need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// The digest of the uncompressed tar stream (the config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// The digest of the compressed file (the manifest's layer digest).
    pub digest: Digest,
    /// Size of the compressed file in bytes.
    pub size: u64,
    /// Size of the uncompressed tar stream in bytes.
    pub uncompressed_size: u64,
    /// How the file is compressed.
    pub compression: Compression,
}

impl LayerInfo {
    /// The OCI media type of the layer ([`oci::media_type::OCI_LAYER_TAR_GZIP`] or `_ZSTD`).
    pub fn media_type(&self) -> &'static str {
        self.compression.media_type()
    }
}

/// A layer being built: add entries in any order, then [`LayerWriter::finish_to_file`].
///
/// The layer is gzip-compressed unless [`LayerWriter::with_compression`] says otherwise, on
/// as many threads as [`LayerWriter::with_threads`] allows; the bytes do not depend on it.
///
/// Parents are created implicitly with mode 0755. Every entry is owned by 0:0 unless
/// [`LayerWriter::set_owner`] says otherwise, and has the same mtime; files are 0755 when any
/// execute bit is set, else 0644 (unless [`LayerOptions::keep_special_bits`] keeps modes). On
/// an error the writer may hold part of an entry: drop it.
///
/// Owners are numeric only: the headers' user and group names are empty. Container
/// runtimes (containerd, Docker, podman's containers/storage, umoci) extract layers by the
/// numeric ids and ignore the names, but GNU tar, run as root without `--numeric-owner`,
/// prefers a name and maps it through the *host's* `/etc/passwd`: a layer with `redis` in
/// its headers would come out owned by whatever uid the host gives `redis`. With empty names
/// every tool reads the ids the image's own account files define, and the bytes of a layer
/// do not depend on any name table (layers without owners are the same bytes as before
/// owners existed).
pub struct LayerWriter {
    options: LayerOptions,
    compression: Compression,
    threads: NonZeroUsize,
    entries: BTreeMap<Vec<String>, Node>,
    scratch_dir: PathBuf,
    spool: BufWriter<fs_err::File>,
    spool_len: u64,
}

/// An entry of the layer, keyed by its path components (so a directory's children follow it).
enum Node {
    Dir { mode: u32, owner: Owner },
    File { mode: u32, owner: Owner, offset: u64, len: u64 },
    Symlink { target: String, owner: Owner },
    Hardlink { target: Vec<String> },
}

/// Numeric owner and group of an entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Owner {
    uid: u64,
    gid: u64,
}

impl LayerWriter {
    /// Starts an empty layer whose file contents are spooled into an unnamed file in `scratch_dir`.
    pub fn new(scratch_dir: &Path, options: LayerOptions) -> Result<LayerWriter, LayerError> {
        let file = tempfile::tempfile_in(scratch_dir)
            .map_err(|source| LayerError::Scratch { dir: scratch_dir.to_path_buf(), source })?;
        let spool = fs_err::File::from_parts(file, scratch_dir.join("<layer scratch file>"));
        Ok(LayerWriter {
            options,
            compression: Compression::default(),
            threads: default_threads(),
            entries: BTreeMap::new(),
            scratch_dir: scratch_dir.to_path_buf(),
            spool: BufWriter::with_capacity(1 << 20, spool),
            spool_len: 0,
        })
    }

    /// Compresses the layer with `compression` (gzip by default). Part of the layer's
    /// identity: [`LayerInfo::media_type`] follows it.
    pub fn with_compression(mut self, compression: Compression) -> LayerWriter {
        self.compression = compression;
        self
    }

    /// Compresses on at most `threads` threads (by default the available parallelism, at
    /// most 16). The output is the same whatever the number.
    pub fn with_threads(mut self, threads: NonZeroUsize) -> LayerWriter {
        self.threads = threads;
        self
    }

    /// The number of entries so far, implicit parent directories included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry has been added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `path` (absolute or relative to the root) is an entry of the layer.
    pub fn contains(&self, path: &str) -> bool {
        normalize(path).is_ok_and(|key| self.entries.contains_key(&key))
    }

    /// Adds a directory. Adding one that exists (explicitly or as a parent) is not an error.
    pub fn add_dir(&mut self, path: &str, mode: u32) -> Result<(), LayerError> {
        let key = normalize(path)?;
        self.add_parents(&key)?;
        let mode = self.dir_mode(mode);
        match self.entries.get_mut(&key) {
            Some(Node::Dir { mode: existing, .. }) => *existing = mode,
            Some(_) => return Err(LayerError::Duplicate { path: key.join("/") }),
            None => {
                self.entries.insert(key, Node::Dir { mode, owner: Owner::default() });
            }
        }
        Ok(())
    }

    /// Adds a regular file whose content is read from `content` to its end; returns its size.
    ///
    /// Only the execute bits of `mode` matter (and the special bits when they are kept).
    pub fn add_file(&mut self, path: &str, mode: u32, content: &mut dyn Read) -> Result<u64, LayerError> {
        let key = self.new_leaf(path)?;
        let mut buf = vec![0; 1 << 16];
        let mut len = 0;
        loop {
            let read = match content.read(&mut buf) {
                Ok(0) => break,
                Ok(read) => read,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(LayerError::ReadContent { path: key.join("/"), source }),
            };
            self.spool
                .write_all(&buf[..read])
                .map_err(|source| LayerError::Scratch { dir: self.scratch_dir.clone(), source })?;
            len += read as u64;
        }
        let mode = self.file_mode(mode);
        self.entries.insert(key, Node::File { mode, owner: Owner::default(), offset: self.spool_len, len });
        self.spool_len += len;
        Ok(len)
    }

    /// Adds a symbolic link; `target` is stored as given (it may be absolute).
    pub fn add_symlink(&mut self, path: &str, target: &str) -> Result<(), LayerError> {
        if target.is_empty() || target.contains('\0') {
            return Err(LayerError::InvalidPath { path: target.to_string(), reason: "bad symlink target" });
        }
        let key = self.new_leaf(path)?;
        self.entries.insert(key, Node::Symlink { target: target.to_string(), owner: Owner::default() });
        Ok(())
    }

    /// Sets the numeric owner and group of the directory, file or symlink at `path`, added
    /// before (0:0 until then). Hard links have the owner of the file they link to, as they
    /// share its inode: setting one is an error.
    pub fn set_owner(&mut self, path: &str, uid: u64, gid: u64) -> Result<(), LayerError> {
        let key = normalize(path)?;
        match self.entries.get_mut(&key) {
            Some(Node::Dir { owner, .. } | Node::File { owner, .. } | Node::Symlink { owner, .. }) => {
                *owner = Owner { uid, gid };
                Ok(())
            }
            Some(Node::Hardlink { .. }) | None => Err(LayerError::NoOwnerEntry { path: key.join("/") }),
        }
    }

    /// Adds a hard link to `target`, a regular file (or hard link to one) of this layer that
    /// may be added later. Whichever of the linked paths sorts first carries the content.
    pub fn add_hardlink(&mut self, path: &str, target: &str) -> Result<(), LayerError> {
        let target = normalize(target)?;
        let key = self.new_leaf(path)?;
        self.entries.insert(key, Node::Hardlink { target });
        Ok(())
    }

    /// Writes the layer, compressed, to `out` (through a temporary file in the same
    /// directory, renamed into place) and returns its digests and sizes.
    ///
    /// Compression runs on worker threads that live only for this call.
    pub fn finish_to_file(mut self, out: &Path) -> Result<LayerInfo, LayerError> {
        let write_err = |source| LayerError::Write { path: out.to_path_buf(), source };
        self.spool.flush().map_err(|source| LayerError::Scratch { dir: self.scratch_dir.clone(), source })?;
        let origins = hardlink_origins(&self.entries)?;
        let dir = match out.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let temp = tempfile::NamedTempFile::new_in(dir).map_err(write_err)?;
        let compressed = HashingWriter::new(BufWriter::with_capacity(1 << 20, temp.as_file()));
        let (diff_id, uncompressed_size, (digest, size, mut file)) = std::thread::scope(|scope| {
            let mut encoder =
                Encoder::new(scope, self.compression, self.threads, compressed).map_err(write_err)?;
            let spool = self.spool.get_mut();
            let (diff_id, uncompressed_size) =
                write_tar(&self.entries, &origins, self.options.mtime, spool, &mut encoder)
                    .map_err(write_err)?;
            let compressed = encoder.finish().map_err(write_err)?;
            Ok::<_, LayerError>((diff_id, uncompressed_size, compressed.finish()))
        })?;
        file.flush().map_err(write_err)?;
        drop(file);
        temp.as_file().sync_all().map_err(write_err)?;
        temp.persist(out).map_err(|err| write_err(err.error))?;
        Ok(LayerInfo { diff_id, digest, size, uncompressed_size, compression: self.compression })
    }

    /// Normalises `path` for a new file, symlink or hard link, creating its parents.
    fn new_leaf(&mut self, path: &str) -> Result<Vec<String>, LayerError> {
        let key = normalize(path)?;
        self.add_parents(&key)?;
        if self.entries.contains_key(&key) {
            return Err(LayerError::Duplicate { path: key.join("/") });
        }
        Ok(key)
    }

    fn add_parents(&mut self, key: &[String]) -> Result<(), LayerError> {
        for depth in 1..key.len() {
            let parent = &key[..depth];
            match self.entries.get(parent) {
                Some(Node::Dir { .. }) => {}
                Some(_) => {
                    return Err(LayerError::ParentNotDir { path: key.join("/"), parent: parent.join("/") })
                }
                None => {
                    self.entries.insert(parent.to_vec(), Node::Dir { mode: 0o755, owner: Owner::default() });
                }
            }
        }
        Ok(())
    }

    fn file_mode(&self, mode: u32) -> u32 {
        if self.options.keep_special_bits {
            return mode & 0o7777;
        }
        if mode & 0o111 != 0 {
            0o755
        } else {
            0o644
        }
    }

    fn dir_mode(&self, mode: u32) -> u32 {
        if self.options.keep_special_bits {
            mode & 0o7777
        } else {
            0o755
        }
    }
}

/// Writes the entries, sorted, as a tar stream into `out` (file contents read from `spool`);
/// returns the stream's `sha256:<hex>` and length.
fn write_tar(
    entries: &BTreeMap<Vec<String>, Node>,
    origins: &BTreeMap<&[String], Origin<'_>>,
    mtime: u64,
    spool: &mut fs_err::File,
    out: impl Write,
) -> io::Result<(Digest, u64)> {
    let mut tar = tar::Builder::new(HashingWriter::new(out));
    // The path that carries the content of each hard-linked file, once it is written.
    let mut written: BTreeMap<&[String], String> = BTreeMap::new();
    for (key, node) in entries {
        let path = key.join("/");
        match node {
            Node::Dir { mode, owner } => {
                let header = header(tar::EntryType::Directory, *mode, *owner, 0, mtime);
                append(&mut tar, header, &format!("{path}/"), None, 0, &mut io::empty())?;
            }
            Node::Symlink { target, owner } => {
                let header = header(tar::EntryType::Symlink, 0o777, *owner, 0, mtime);
                append(&mut tar, header, &path, Some(target), 0, &mut io::empty())?;
            }
            Node::File { .. } | Node::Hardlink { .. } => {
                let Origin { key: origin, mode, owner, offset, len } = origins[key.as_slice()];
                if let Some(first) = written.get(origin) {
                    let header = header(tar::EntryType::Link, mode, owner, 0, mtime);
                    append(&mut tar, header, &path, Some(first), 0, &mut io::empty())?;
                } else {
                    spool.seek(SeekFrom::Start(offset))?;
                    let header = header(tar::EntryType::Regular, mode, owner, len, mtime);
                    let mut content = io::BufReader::with_capacity(1 << 16, (&mut *spool).take(len));
                    append(&mut tar, header, &path, None, len, &mut content)?;
                    written.insert(origin, path);
                }
            }
        }
    }
    let (diff_id, len, _) = tar.into_inner()?.finish();
    Ok((diff_id, len))
}

/// The regular file whose content a file or hard link shares.
#[derive(Clone, Copy)]
struct Origin<'a> {
    key: &'a [String],
    mode: u32,
    owner: Owner,
    offset: u64,
    len: u64,
}

/// Maps every file and hard link to the regular file whose content it shares.
fn hardlink_origins(
    entries: &BTreeMap<Vec<String>, Node>,
) -> Result<BTreeMap<&[String], Origin<'_>>, LayerError> {
    let mut origins = BTreeMap::new();
    for (key, node) in entries {
        if !matches!(node, Node::File { .. } | Node::Hardlink { .. }) {
            continue;
        }
        let mut current = key;
        let mut hops = 0;
        let origin = loop {
            match entries.get(current) {
                Some(Node::File { mode, owner, offset, len }) => {
                    break Origin { key: current, mode: *mode, owner: *owner, offset: *offset, len: *len }
                }
                // More hops than entries means a cycle.
                Some(Node::Hardlink { target }) if hops <= entries.len() => {
                    current = target;
                    hops += 1;
                }
                _ => {
                    let target = match node {
                        Node::Hardlink { target } => target.join("/"),
                        _ => key.join("/"),
                    };
                    return Err(LayerError::BadHardlink { path: key.join("/"), target });
                }
            }
        };
        origins.insert(key.as_slice(), origin);
    }
    Ok(origins)
}

/// Splits a path into components relative to the root: a leading `/` and `.` components
/// are dropped; `..`, NUL and an empty result are refused.
pub(crate) fn normalize(path: &str) -> Result<Vec<String>, LayerError> {
    const RULES: Rules = Rules { absolute: Absolute::FromRoot, windows: Windows::Literal };
    let invalid = |reason| LayerError::InvalidPath { path: path.to_string(), reason };
    let key = safe_path::normalize(path, RULES).map_err(|refusal| {
        invalid(match refusal {
            Refusal::Nul => "contains a NUL byte",
            Refusal::ParentDir | Refusal::Escapes => "contains `..`",
            Refusal::Absolute | Refusal::Backslash | Refusal::DriveLetter => "leaves the root",
        })
    })?;
    if key.is_empty() {
        return Err(invalid("names the root"));
    }
    Ok(key.into_iter().map(str::to_string).collect())
}

/// A ustar header with everything but the name fixed: numeric owners, no owner names (see
/// [`LayerWriter`] for why).
fn header(kind: tar::EntryType, mode: u32, owner: Owner, size: u64, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(owner.uid);
    header.set_gid(owner.gid);
    header.set_mtime(mtime);
    header.set_size(if size > USTAR_MAX_SIZE { 0 } else { size });
    header
}

/// Appends one entry of `size` content bytes, preceded by a PAX header only when the path, the link target or the
/// size does not fit the ustar header.
fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    mut header: tar::Header,
    path: &str,
    link: Option<&str>,
    size: u64,
    content: &mut dyn Read,
) -> io::Result<()> {
    let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
    if header.set_path(path).is_err() {
        pax.push(("path", path.as_bytes().to_vec()));
        set_truncated(&mut header.as_old_mut().name, path);
    }
    if let Some(link) = link {
        if header.set_link_name(link).is_err() {
            pax.push(("linkpath", link.as_bytes().to_vec()));
            set_truncated(&mut header.as_old_mut().linkname, link);
        }
    }
    if size > USTAR_MAX_SIZE {
        pax.push(("size", size.to_string().into_bytes()));
    }
    if !pax.is_empty() {
        tar.append_pax_extensions(pax.iter().map(|(key, value)| (*key, value.as_slice())))?;
    }
    header.set_cksum();
    tar.append(&header, content)
}

/// Fills a fixed-size name field with a prefix of `value` that ends on a character boundary.
fn set_truncated(field: &mut [u8], value: &str) {
    let mut end = value.len().min(field.len());
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    field.fill(0);
    field[..end].copy_from_slice(&value.as_bytes()[..end]);
}

/// A writer that computes the sha256 and the length of what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new(), len: 0 }
    }

    /// Returns `sha256:<hex>`, the length and the inner writer.
    fn finish(self) -> (Digest, u64, W) {
        (Digest::from_sha256(self.hasher.finalize().into()), self.len, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.len += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_drops_root_and_dots_and_refuses_parent() {
        assert_eq!(normalize("/usr/./bin//x").unwrap(), ["usr", "bin", "x"]);
        assert!(normalize("usr/../etc").is_err());
        assert!(normalize("/").is_err());
        assert!(normalize("a\0b").is_err());
    }
}
