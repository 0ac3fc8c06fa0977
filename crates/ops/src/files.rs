//! `[[file]]` entries: locked by content (`lock`), put into a layer of their own (`build`).
//!
//! A local `src` (file or directory) is pinned by its content digest; a `url` by the sha256
//! the manifest gives, checked when it is downloaded into the cache. In the image a file goes
//! to `to`, a directory's tree goes under `to`, and with `extract = true` an archive (`.tar`,
//! `.tar.gz`/`.tgz`, `.tar.xz`, `.tar.zst`, `.zip`) is unpacked under `to`. Archive entries
//! that would leave `to` (`..`, absolute paths) are refused, never written.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use debian::compress::FileCompression;
use image::{LayerError, LayerWriter};
use lockfile::{FileEntry, FileSource, LockedFile, LockedSource, Manifest};
use safe_path::{Absolute, Refusal, Rules, Windows};
use url::Url;

use crate::Error;
use crate::Reporter;

/// The `[[file]]` entries of the manifest pinned by content: local sources hashed, URLs
/// downloaded into the cache and checked against their sha256.
pub fn lock_files(
    manifest: &Manifest,
    offline: bool,
    printer: &dyn Reporter,
) -> Result<Vec<LockedFile>, Error> {
    let mut locked = Vec::new();
    let mut downloader = None;
    for entry in &manifest.files {
        let (source, size, sha256) = match &entry.source {
            FileSource::Local(path) => {
                let digest = lockfile::read_path_digest(path).map_err(|e| {
                    Error::from_error(format!("[[file]] to {}: cannot read {}", entry.to, path.display()), e)
                })?;
                (LockedSource::Src(manifest.input_name(path)), digest.size, digest.sha256)
            }
            FileSource::Url { url, sha256 } => {
                let path = Downloader::get(&mut downloader, offline)?.download(url, sha256, printer)?;
                let size = fs_err::metadata(&path)
                    .map_err(|e| Error::from_error(format!("cannot read {}", path.display()), e))?
                    .len();
                // The manifest keeps the hex it was given (checked, lowercased); the lock the type.
                let sha256 = oci::Digest::from_hex(sha256)
                    .map_err(|e| Error::from_error(format!("[[file]] to {}", entry.to), e))?;
                // The lock is shared and kept: it names the place, never the credentials.
                (LockedSource::Url(fetch::strip_credentials(url)), size, sha256)
            }
        };
        locked.push(LockedFile { to: entry.to.clone(), source, size, sha256 });
    }
    Ok(locked)
}

/// The downloads of `entries` (their URL sources), in the cache by sha256; fetched when
/// missing. What is fetched is what the lock pins (`locked`, by destination): its url and
/// sha256, and the download must have its size. The lock's url has no credentials: those of
/// the manifest's url (the place they were given) go with it when it names the same place,
/// and a lock naming another place is refused. Returns the cache paths by destination
/// (`to`, unique in a manifest).
pub fn fetch_urls(
    entries: &[&FileEntry],
    locked: &[LockedFile],
    offline: bool,
    printer: &dyn Reporter,
) -> Result<HashMap<String, PathBuf>, Error> {
    let mut paths = HashMap::new();
    let mut downloader = None;
    for entry in entries {
        if let FileSource::Url { url: given, .. } = &entry.source {
            let pinned = locked.iter().find(|f| f.to == entry.to);
            let Some(LockedFile { source: LockedSource::Url(url), sha256, size, .. }) = pinned else {
                return Err(Error::user(format!("the lock has no url [[file]] to `{}`", entry.to))
                    .with_hint("run `marqo-base lock` to update it"));
            };
            let url = fetch::strip_credentials(url);
            if url != fetch::strip_credentials(given) {
                return Err(Error::user(format!(
                    "[[file]] to `{}`: the lock's url {url} is not the manifest's {}",
                    entry.to,
                    fetch::strip_credentials(given)
                ))
                .with_hint("run `marqo-base lock` to update the lock"));
            }
            let path = Downloader::get(&mut downloader, offline)?.download(given, sha256.hex(), printer)?;
            let got = fs_err::metadata(&path)
                .map_err(|e| Error::from_error(format!("cannot read {}", path.display()), e))?
                .len();
            if got != *size {
                return Err(Error::user(format!(
                    "[[file]] to `{}`: the lock says {size} bytes, but the download of {url} with its sha256 \
                     has {got}",
                    entry.to
                ))
                .with_hint("the lock was edited; run `marqo-base lock` to update it"));
            }
            paths.insert(entry.to.clone(), path);
        }
    }
    Ok(paths)
}

/// The cache, HTTP client and runtime that `[[file]]` downloads share: made once, at the
/// first URL.
struct Downloader {
    cache: fetch::Cache,
    client: fetch::Client,
    runtime: &'static tokio::runtime::Runtime,
}

impl Downloader {
    /// The downloader in `slot`, made there first if it is empty.
    fn get(slot: &mut Option<Downloader>, offline: bool) -> Result<&Downloader, Error> {
        if let Some(downloader) = slot {
            return Ok(downloader);
        }
        let cache = crate::env::cache()?;
        let client = crate::env::client(fetch::ClientOptions { offline, ..fetch::ClientOptions::default() })?;
        let runtime = crate::env::runtime()?;
        Ok(slot.insert(Downloader { cache, client, runtime }))
    }

    /// Downloads `url` into the cache unless a blob with `sha256` is there; the download is
    /// checked against `sha256` as it streams.
    fn download(&self, url: &str, sha256: &str, printer: &dyn Reporter) -> Result<PathBuf, Error> {
        let Downloader { cache, client, runtime } = self;
        let parsed = Url::parse(url)
            .map_err(|e| Error::from_error(format!("[[file]] url `{}`", fetch::strip_credentials(url)), e))?;
        let shown = fetch::redact(&parsed);
        let started = Instant::now();
        let spinner = printer.spinner(&format!("Fetching {shown}"));
        let result = runtime.block_on(client.download_verified(&parsed, sha256, cache));
        spinner.finish_and_clear();
        let path = result.map_err(|e| {
            Error::from_error(format!("cannot fetch the [[file]] {shown}"), e)
                .with_hint("check the url, and that `sha256` is that of the file it serves")
        })?;
        tracing::debug!("{shown} in {:.2}s", started.elapsed().as_secs_f64());
        Ok(path)
    }
}

/// Adds one `[[file]]` to `layer` (which keeps modes exactly), its bytes at `path` (the local
/// source, or the download). `mode` is written as given, setuid, setgid and sticky bits
/// included; what the manifest does not set is normalised as for wheels (0755 when any
/// execute bit is set, else 0644; directories 0755).
pub fn add_entry(layer: &mut LayerWriter, entry: &FileEntry, path: &Path) -> Result<(), Error> {
    let to = entry.to.trim_start_matches('/').trim_end_matches('/');
    if entry.extract {
        let name = match &entry.source {
            FileSource::Local(src) => src.to_string_lossy().into_owned(),
            FileSource::Url { url, .. } => {
                Url::parse(url).map(|u| u.path().to_string()).unwrap_or_else(|_| url.clone())
            }
        };
        return extract(layer, &name, path, to, &entry.to);
    }
    let meta = fs_err::metadata(path).map_err(|e| Error::from_error("cannot read a [[file]]", e))?;
    if meta.is_dir() {
        if to.is_empty() {
            return walk(layer, path, "", &mut HashMap::new(), Modes::Normalise);
        }
        layer.add_dir(to, entry.mode.unwrap_or(0o755)).map_err(layer_error(&entry.to))?;
        return walk(layer, path, to, &mut HashMap::new(), Modes::Normalise);
    }
    if to.is_empty() {
        return Err(Error::user(format!("[[file]] {}: a file cannot go to `/`", path.display()))
            .with_hint("name the file's path in the image in `to`"));
    }
    let mode = entry.mode.unwrap_or_else(|| normal_mode(meta.permissions().mode(), false));
    let mut file = fs_err::File::open(path).map_err(|e| Error::from_error("cannot open a [[file]]", e))?;
    layer.add_file(to, mode, &mut file).map_err(layer_error(&entry.to))?;
    Ok(())
}

/// Where a tree's modes and owners come from: an unpacked Debian root's record (as dpkg
/// would set them, whoever unpacked it), or the tree's modes normalised and root's owner (a
/// `[[file]]` tree or archive, whose modes the manifest did not set).
#[derive(Debug, Clone, Copy)]
enum Modes<'a> {
    Recorded(&'a debian::Owners),
    Normalise,
}

/// The mode a layer gets for a file (or directory) whose mode nobody set: 0755 when any
/// execute bit is set, else 0644; directories 0755.
fn normal_mode(mode: u32, dir: bool) -> u32 {
    if dir || mode & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

/// Unpacks the archive at `path` (its kind from `name`) under `to`.
fn extract(layer: &mut LayerWriter, name: &str, path: &Path, to: &str, shown: &str) -> Result<(), Error> {
    let open = || fs_err::File::open(path).map_err(|e| Error::from_error("cannot open a [[file]]", e));
    if name.ends_with(".zip") {
        return extract_zip(layer, open()?, to, name);
    }
    let compression = if name.ends_with(".tgz") {
        Some(FileCompression::Gzip)
    } else if name.ends_with(".tar") {
        Some(FileCompression::None)
    } else if name.ends_with(".tar.gz") || name.ends_with(".tar.xz") || name.ends_with(".tar.zst") {
        FileCompression::from_name(name)
    } else {
        None
    };
    let Some(compression) = compression else {
        return Err(Error::user(format!(
            "[[file]] to {shown}: cannot extract `{name}`: not a .tar, .tar.gz, .tgz, .tar.xz, .tar.zst or .zip"
        ))
        .with_hint("set extract = false to copy the file as it is"));
    };
    let file = open()?;
    let size =
        file.metadata().map_err(|e| Error::from_error(format!("cannot read the archive {name}"), e))?.len();
    let reader = compression
        .decoder(file)
        .map_err(|e| Error::from_error(format!("cannot read the archive {name}"), e))?;
    // Nothing claims what a tar's compression expands to: a ceiling from its size.
    let what = format!("the [[file]] archive {name}");
    extract_tar(layer, bounded::Reader::ceiling(reader, bounded::ceiling_for(size), what), to, name)
}

fn extract_tar(layer: &mut LayerWriter, reader: impl Read, to: &str, name: &str) -> Result<(), Error> {
    let bad = |e: std::io::Error| Error::from_error(format!("cannot read the archive {name}"), e);
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw = entry.path_bytes().into_owned();
        let rel = String::from_utf8(raw).map_err(|_| Error::user(format!("{name}: a path is not UTF-8")))?;
        let Some(dest) = inside(to, &rel, name)? else { continue };
        let kind = entry.header().entry_type();
        let mode = normal_mode(entry.header().mode().map_err(bad)?, kind.is_dir());
        let add = layer_error(&dest);
        if kind.is_dir() {
            layer.add_dir(&dest, mode).map_err(add)?;
        } else if kind.is_symlink() {
            let target = link_name(&entry, name)?;
            layer.add_symlink(&dest, &target).map_err(add)?;
        } else if kind.is_hard_link() {
            let target = link_name(&entry, name)?;
            let Some(target) = inside(to, &target, name)? else {
                return Err(Error::user(format!("{name}: hard link `{rel}` has an empty target")));
            };
            layer.add_hardlink(&dest, &target).map_err(add)?;
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            layer.add_file(&dest, mode, &mut entry).map_err(add)?;
        } else if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() || kind.is_gnu_longname()
        {
            continue;
        } else {
            return Err(Error::user(format!(
                "{name}: `{rel}` is a {kind:?} entry; only files, directories and links can be extracted"
            )));
        }
    }
    Ok(())
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>, name: &str) -> Result<String, Error> {
    let target =
        entry.link_name_bytes().ok_or_else(|| Error::user(format!("{name}: a link has no target")))?;
    String::from_utf8(target.into_owned())
        .map_err(|_| Error::user(format!("{name}: a link target is not UTF-8")))
}

fn extract_zip(layer: &mut LayerWriter, file: fs_err::File, to: &str, name: &str) -> Result<(), Error> {
    let bad = |e: zip::result::ZipError| Error::from_error(format!("cannot read the archive {name}"), e);
    let mut archive = zip::ZipArchive::new(file).map_err(bad)?;
    for i in 0..archive.len() {
        let entry = archive.by_index(i).map_err(bad)?;
        let rel = entry.name().to_string();
        let is_dir = entry.is_dir();
        let unix_mode = entry.unix_mode();
        // Decompression stops at the size the zip's directory claims for the member.
        let (claimed, what) = (entry.size(), format!("{rel} of the [[file]] archive {name}"));
        let mut entry = bounded::Reader::claimed(entry, claimed, what);
        let Some(dest) = inside(to, &rel, name)? else { continue };
        let mode = unix_mode.unwrap_or(if is_dir { 0o755 } else { 0o644 });
        let add = layer_error(&dest);
        if is_dir {
            layer.add_dir(&dest, normal_mode(mode, true)).map_err(add)?;
        } else if mode & 0o170000 == 0o120000 {
            let mut target = String::new();
            (&mut entry)
                .take(4096)
                .read_to_string(&mut target)
                .map_err(|e| Error::from_error(format!("cannot read the archive {name}"), e))?;
            layer.add_symlink(&dest, &target).map_err(add)?;
        } else {
            layer.add_file(&dest, normal_mode(mode, false), &mut entry).map_err(add)?;
        }
    }
    Ok(())
}

/// `to/rel` when `rel` stays inside `to`; `None` for the archive's root itself. A `..`
/// component, an absolute path or a NUL is an error (the archive would write outside `to`).
fn inside(to: &str, rel: &str, name: &str) -> Result<Option<String>, Error> {
    const RULES: Rules = Rules { absolute: Absolute::Refuse, windows: Windows::Literal };
    let parts = safe_path::normalize(rel, RULES).map_err(|refusal| match refusal {
        Refusal::Absolute => {
            Error::user(format!("{name}: `{rel}` is an absolute path; refusing to extract it"))
                .with_hint("archives for [[file]] must hold relative paths")
        }
        Refusal::Nul => Error::user(format!("{name}: {rel:?} holds a NUL byte; refusing to extract it"))
            .with_hint("the archive is unsafe; use another one"),
        Refusal::ParentDir | Refusal::Escapes | Refusal::Backslash | Refusal::DriveLetter => {
            Error::user(format!("{name}: `{rel}` leaves the directory it is extracted to"))
                .with_hint("the archive is unsafe; use another one")
        }
    })?;
    if parts.is_empty() {
        return Ok(None);
    }
    let rel = parts.join("/");
    Ok(Some(if to.is_empty() { rel } else { format!("{to}/{rel}") }))
}

/// Adds everything under the unpacked Debian `root` to `layer` under `prefix`, walking it
/// sorted: directories, regular files, symlinks (kept as links) and hard links (the second
/// and later paths of a file become links to the first), each with the mode and owner
/// `owners` recorded for it while unpacking, not the ones on disk (which are the caller's
/// when the unpack ran unprivileged). A path the record lacks is an error.
pub fn add_tree(
    layer: &mut LayerWriter,
    root: &Path,
    prefix: &str,
    owners: &debian::Owners,
) -> Result<(), Error> {
    let mut links: HashMap<(u64, u64), String> = HashMap::new();
    walk(layer, root, prefix, &mut links, Modes::Recorded(owners))
}

fn walk(
    layer: &mut LayerWriter,
    dir: &Path,
    rel: &str,
    links: &mut HashMap<(u64, u64), String>,
    modes: Modes<'_>,
) -> Result<(), Error> {
    let io = |what: &str, path: &Path| {
        let message = format!("cannot {what} {}", path.display());
        move |e: std::io::Error| Error::from_error(message, e)
    };
    let mut names = Vec::new();
    for entry in fs_err::read_dir(dir).map_err(io("read", dir))? {
        names.push(entry.map_err(io("read", dir))?.file_name());
    }
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let name =
            name.to_str().ok_or_else(|| Error::user(format!("{} is not a UTF-8 path", path.display())))?;
        let child = if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
        let meta = fs_err::symlink_metadata(&path).map_err(io("read", &path))?;
        let kind = meta.file_type();
        let (mode, uid, gid) = match modes {
            Modes::Recorded(owners) => {
                let stat = owners.get(&meta).ok_or_else(|| {
                    Error::internal(format!("{} was not recorded while unpacking", path.display()))
                })?;
                (stat.mode, stat.uid, stat.gid)
            }
            Modes::Normalise => (normal_mode(meta.mode(), kind.is_dir()), 0, 0),
        };
        let set_owner = |layer: &mut LayerWriter| match (uid, gid) {
            (0, 0) => Ok(()),
            _ => layer.set_owner(&child, uid, gid).map_err(layer_error(&child)),
        };
        if kind.is_dir() {
            layer.add_dir(&child, mode).map_err(layer_error(&child))?;
            set_owner(layer)?;
            walk(layer, &path, &child, links, modes)?;
        } else if kind.is_symlink() {
            let target = fs_err::read_link(&path).map_err(io("read the link", &path))?;
            let target = target
                .to_str()
                .ok_or_else(|| Error::user(format!("the target of {} is not UTF-8", path.display())))?;
            layer.add_symlink(&child, target).map_err(layer_error(&child))?;
            set_owner(layer)?;
        } else if kind.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = links.get(&key) {
                    // The link shares its file's inode, owner and mode.
                    layer.add_hardlink(&child, first).map_err(layer_error(&child))?;
                    continue;
                }
                links.insert(key, child.clone());
            }
            let mut file = fs_err::File::open(&path).map_err(io("open", &path))?;
            layer.add_file(&child, mode, &mut file).map_err(layer_error(&child))?;
            set_owner(layer)?;
        } else {
            return Err(Error::user(format!(
                "{} is neither a file, a directory nor a symlink; layers cannot hold it yet",
                path.display()
            )));
        }
    }
    Ok(())
}

fn layer_error(path: &str) -> impl FnOnce(LayerError) -> Error + '_ {
    move |e| Error::from_error(format!("cannot add {path} to the layer"), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_stay_inside() {
        assert_eq!(inside("opt/v", "a/./b", "x.tar").unwrap(), Some("opt/v/a/b".into()));
        assert_eq!(inside("opt/v", "./", "x.tar").unwrap(), None);
        assert_eq!(inside("", "a", "x.tar").unwrap(), Some("a".into()));
        assert!(inside("opt/v", "../etc/passwd", "x.tar").is_err());
        assert!(inside("opt/v", "a/../../b", "x.tar").is_err());
        assert!(inside("opt/v", "/etc/passwd", "x.tar").is_err());
        assert!(inside("opt/v", "a\0b", "x.tar").is_err());
        assert_eq!(inside("opt/v", "a\\..\\b", "x.tar").unwrap(), Some("opt/v/a\\..\\b".into()));
    }
}
