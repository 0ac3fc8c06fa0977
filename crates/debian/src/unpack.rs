//! Writing packages into a root directory, safely: every path is resolved inside the root
//! (symlinks in parent directories are followed as if the root were `/`), nothing is ever
//! written through a symlink, and an existing directory symlink is kept when a package
//! ships a directory there (as dpkg does on a merged-/usr system).

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use crate::configure::{configure, ConfigureOptions, Generated, InstalledPackage};
use crate::deb::{ControlFiles, DataEntry, Deb, EntryKind};
use crate::error::io_error;
use crate::ldcache::read_ld_cache;
use crate::resolve::LockedDeb;
use crate::scripts::ScriptReport;
use crate::Error;

/// How many symlinks one path may go through (as the kernel's limit).
const MAX_HOPS: usize = 40;

/// The directories that are symlinks into `/usr` on a merged-/usr system, per architecture.
fn merged_usr_dirs(arch: &str) -> &'static [&'static str] {
    match arch {
        "amd64" => &["bin", "sbin", "lib", "lib32", "lib64", "libx32"],
        "i386" => &["bin", "sbin", "lib", "libx32"],
        "mips64el" | "ppc64el" | "s390x" => &["bin", "sbin", "lib", "lib64"],
        _ => &["bin", "sbin", "lib"],
    }
}

/// Where a data entry lands on a merged-/usr system: `bin/ls` is `usr/bin/ls`. For layer
/// writers that stream [`Deb::visit_data`] entries instead of unpacking to disk (they must
/// also emit the `bin -> usr/bin` links themselves, see [`wants_merged_usr`]).
pub fn merged_usr_path<'p>(path: &'p str, arch: &str) -> std::borrow::Cow<'p, str> {
    let first = path.split('/').next().unwrap_or("");
    if merged_usr_dirs(arch).contains(&first) {
        std::borrow::Cow::Owned(format!("usr/{path}"))
    } else {
        std::borrow::Cow::Borrowed(path)
    }
}

/// The top-level links of a merged-/usr root for `arch`: (`bin`, `usr/bin`), ...
pub fn merged_usr_links(arch: &str) -> Vec<(String, String)> {
    merged_usr_dirs(arch).iter().map(|d| (d.to_string(), format!("usr/{d}"))).collect()
}

/// Whether the package set asks for a merged `/usr` (bookworm and later), with the paths
/// `bin`, `lib`, ... become symlinks into `usr/` before anything is unpacked.
pub fn wants_merged_usr(names: &[&str]) -> bool {
    names.iter().any(|n| *n == "usr-is-merged" || *n == "usrmerge")
}

/// Unpacks the packages into `root` (created if needed) and does what their maintainer
/// scripts would do that an image needs (see [`crate::configure`]): afterwards `dpkg -l`
/// and `apt` in the root see every package as installed. `base-files` goes first, the
/// rest in the order given.
pub fn unpack(debs: &[(LockedDeb, PathBuf)], root: &Path) -> Result<Vec<InstalledPackage>, Error> {
    Ok(unpack_with(debs, root, &ConfigureOptions::default())?.installed)
}

/// What [`unpack_with`] did.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// The packages, sorted by name.
    pub installed: Vec<InstalledPackage>,
    /// What their `preinst` and `postinst` do, against what configuration did.
    pub scripts: ScriptReport,
}

/// [`unpack`] with configuration options; when libc-bin is in the set (whose trigger runs
/// `ldconfig`), `/etc/ld.so.cache` is written last, from the configured root (see
/// [`crate::ldcache`]). Returns the packages and the report of their scripts.
pub fn unpack_with(
    debs: &[(LockedDeb, PathBuf)],
    root: &Path,
    options: &ConfigureOptions,
) -> Result<Unpacked, Error> {
    fs_err::create_dir_all(root).map_err(io_error("create", root))?;
    let root = std::path::absolute(root).map_err(io_error("resolve", root))?;
    let writer = RootWriter::new(&root);
    let names: Vec<&str> = debs.iter().map(|(d, _)| d.name.as_str()).collect();
    let native = debs.iter().map(|(d, _)| d.arch.as_str()).find(|a| *a != "all").unwrap_or("all").to_string();
    if wants_merged_usr(&names) {
        fs_err::create_dir_all(root.join("usr")).map_err(io_error("create", root.join("usr")))?;
        for dir in merged_usr_dirs(&native) {
            let link = root.join(dir);
            if std::fs::symlink_metadata(&link).is_err() {
                fs_err::create_dir_all(root.join("usr").join(dir))
                    .map_err(io_error("create", root.join("usr").join(dir)))?;
                std::os::unix::fs::symlink(format!("usr/{dir}"), &link)
                    .map_err(io_error("create the symlink", &link))?;
            }
        }
    }
    let mut order: Vec<&(LockedDeb, PathBuf)> = debs.iter().collect();
    order.sort_by_key(|(d, _)| d.name != "base-files");
    let mut installed = Vec::with_capacity(debs.len());
    for (locked, path) in order {
        let deb = Deb::new(path, &locked.name);
        let control = deb.read_control()?;
        let (files, conffile_md5) = unpack_data(&deb, &locked.name, &control, &writer)?;
        installed.push(InstalledPackage { locked: locked.clone(), control, files, conffile_md5 });
    }
    installed.sort_by(|a, b| a.locked.name.cmp(&b.locked.name));
    let mut generated = configure(&installed, &root, options)?;
    for g in &generated {
        writer.write_generated(g)?;
    }
    if names.contains(&"libc-bin") {
        if let Some(cache) = read_ld_cache(&root, &native) {
            for warning in &cache.warnings {
                tracing::warn!("{warning}");
            }
            let g = Generated::File {
                path: "etc/ld.so.cache".into(),
                mode: 0o644,
                uid: 0,
                gid: 0,
                content: cache.to_bytes(),
            };
            writer.write_generated(&g)?;
            generated.push(g);
        }
    }
    let scripts = crate::scripts::report(&installed, &generated, &root);
    Ok(Unpacked { installed, scripts })
}

/// Writes one package's data; returns its paths (for `info/<pkg>.list`) and the md5 of
/// each conffile.
fn unpack_data(
    deb: &Deb,
    package: &str,
    control: &ControlFiles,
    writer: &RootWriter,
) -> Result<(Vec<String>, BTreeMap<String, String>), Error> {
    let conffiles = control.conffiles();
    let mut files = Vec::new();
    let mut md5s = BTreeMap::new();
    deb.visit_data(|entry, content| {
        let absolute = format!("/{}", entry.path);
        let want_md5 = conffiles.contains(&absolute);
        let digest = writer.write_entry(package, entry, content, want_md5)?;
        if let Some(d) = digest {
            md5s.insert(absolute.clone(), d);
        }
        if !entry.path.is_empty() {
            files.push(absolute);
        }
        Ok(())
    })?;
    Ok((files, md5s))
}

/// Writes entries under a root directory.
#[derive(Debug, Clone)]
pub struct RootWriter {
    root: PathBuf,
}

impl RootWriter {
    /// A writer for `root` (which must exist; make it absolute first).
    pub fn new(root: &Path) -> RootWriter {
        RootWriter { root: root.to_path_buf() }
    }

    /// Resolves `rel` inside the root: symlinks are followed (the last component only when
    /// `follow_last`), absolute targets restart from the root, and `..` stops at the root.
    /// Entry paths reach here already checked by `safe_path` (see [`Deb::visit_data`]); this
    /// walk is the on-disk half, which a lexical check cannot do: it follows the root's links.
    pub fn resolve(&self, rel: &str, follow_last: bool) -> Result<PathBuf, Error> {
        let mut todo: VecDeque<String> =
            rel.split('/').filter(|c| !c.is_empty()).map(str::to_string).collect();
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = todo.pop_front() {
            match c.as_str() {
                "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            let mut here = self.root.clone();
            here.extend(&done);
            here.push(&c);
            let is_link = std::fs::symlink_metadata(&here).is_ok_and(|m| m.file_type().is_symlink());
            if is_link && (follow_last || !todo.is_empty()) {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(Error::Io {
                        action: "resolve (too many levels of symbolic links)",
                        path: here,
                        source: std::io::Error::other("symlink loop"),
                    });
                }
                let target = std::fs::read_link(&here).map_err(io_error("read the symlink", &here))?;
                let target = target.to_string_lossy();
                if target.starts_with('/') {
                    done.clear();
                }
                for part in target.split('/').rev().filter(|p| !p.is_empty()) {
                    todo.push_front(part.to_string());
                }
            } else {
                done.push(c);
            }
        }
        let mut out = self.root.clone();
        out.extend(&done);
        Ok(out)
    }

    /// The resolved parent directory of `path` (created if missing) and the final name.
    fn place(&self, path: &str) -> Result<(PathBuf, String), Error> {
        let (parent, name) = match path.rsplit_once('/') {
            Some((p, n)) => (p, n),
            None => ("", path),
        };
        let dir = self.resolve(parent, true)?;
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Io {
                    action: "use as a directory",
                    path: dir,
                    source: std::io::Error::other("not a directory"),
                })
            }
            Err(_) => fs_err::create_dir_all(&dir).map_err(io_error("create", &dir))?,
        }
        Ok((dir, name.to_string()))
    }

    /// Writes one data entry; returns the md5 of its content when asked (for conffiles).
    pub fn write_entry(
        &self,
        package: &str,
        entry: &DataEntry,
        content: &mut dyn Read,
        want_md5: bool,
    ) -> Result<Option<String>, Error> {
        if entry.path.is_empty() {
            return Ok(None);
        }
        let (dir, name) = self.place(&entry.path)?;
        let dest = dir.join(&name);
        let existing = std::fs::symlink_metadata(&dest).ok();
        match &entry.kind {
            EntryKind::Directory => {
                match existing {
                    Some(m) if m.is_dir() => {}
                    Some(m) if m.file_type().is_symlink() => {
                        // Keep a directory symlink (merged /usr); anything else is replaced.
                        let target = self.resolve(&entry.path, true)?;
                        if !target.is_dir() {
                            remove(&dest)?;
                            fs_err::create_dir(&dest).map_err(io_error("create", &dest))?;
                        } else {
                            return Ok(None);
                        }
                    }
                    Some(_) => {
                        remove(&dest)?;
                        fs_err::create_dir(&dest).map_err(io_error("create", &dest))?;
                    }
                    None => fs_err::create_dir(&dest).map_err(io_error("create", &dest))?,
                }
                set_owner(&dest, entry.uid, entry.gid)?;
                set_mode(&dest, entry.mode)?;
                Ok(None)
            }
            EntryKind::File => {
                self.clear_for_file(package, entry, &dest, existing)?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&dest)
                    .map_err(io_error("create", &dest))?;
                let mut hasher = want_md5.then(Md5::new);
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = content.read(&mut buf).map_err(|source| Error::Decompress {
                        file: format!("{} of {package}", entry.path),
                        source,
                    })?;
                    if n == 0 {
                        break;
                    }
                    if let Some(h) = hasher.as_mut() {
                        h.update(&buf[..n]);
                    }
                    file.write_all(&buf[..n]).map_err(io_error("write", &dest))?;
                }
                let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(entry.mtime);
                let _ = file.set_modified(mtime);
                drop(file);
                set_owner(&dest, entry.uid, entry.gid)?;
                set_mode(&dest, entry.mode)?;
                Ok(hasher.map(|h| hex::encode(h.finalize())))
            }
            EntryKind::Symlink(target) => {
                self.clear_for_file(package, entry, &dest, existing)?;
                std::os::unix::fs::symlink(target, &dest).map_err(io_error("create the symlink", &dest))?;
                if entry.uid != 0 || entry.gid != 0 {
                    let _ = std::os::unix::fs::lchown(&dest, Some(entry.uid as u32), Some(entry.gid as u32));
                }
                Ok(None)
            }
            EntryKind::HardLink(target) => {
                let source = self.resolve(target, false)?;
                if !std::fs::symlink_metadata(&source).is_ok_and(|m| m.is_file()) {
                    return Err(Error::UnsafePath {
                        package: package.to_string(),
                        path: format!("{} => {target}", entry.path),
                        reason: "a hard link to something that is not a file of the root",
                    });
                }
                self.clear_for_file(package, entry, &dest, existing)?;
                fs_err::hard_link(&source, &dest).map_err(io_error("hard-link", &dest))?;
                Ok(None)
            }
            EntryKind::Special => {
                tracing::warn!("{package}: not creating device or FIFO /{}", entry.path);
                Ok(None)
            }
        }
    }

    /// Removes whatever non-directory is at `dest`, so a new file is never written through
    /// an old symlink. A directory there is an error (dpkg refuses that too).
    fn clear_for_file(
        &self,
        package: &str,
        entry: &DataEntry,
        dest: &Path,
        existing: Option<std::fs::Metadata>,
    ) -> Result<(), Error> {
        match existing {
            None => Ok(()),
            Some(m) if m.is_dir() => {
                // An empty directory may become a file or link (dpkg allows replacing it).
                if std::fs::remove_dir(dest).is_ok() {
                    return Ok(());
                }
                Err(Error::UnsafePath {
                    package: package.to_string(),
                    path: entry.path.clone(),
                    reason: "a non-empty directory is already there",
                })
            }
            Some(_) => remove(dest),
        }
    }

    /// Writes a file, link, directory or ownership change made by [`crate::configure`].
    pub fn write_generated(&self, g: &Generated) -> Result<(), Error> {
        match g {
            Generated::File { path, mode, uid, gid, content } => {
                let entry = DataEntry {
                    path: path.clone(),
                    kind: EntryKind::File,
                    mode: *mode,
                    uid: *uid,
                    gid: *gid,
                    size: content.len() as u64,
                    mtime: 0,
                };
                self.write_entry("(configuration)", &entry, &mut content.as_slice(), false)?;
            }
            Generated::Symlink { path, target } => {
                let entry = DataEntry {
                    path: path.clone(),
                    kind: EntryKind::Symlink(target.clone()),
                    mode: 0o777,
                    uid: 0,
                    gid: 0,
                    size: 0,
                    mtime: 0,
                };
                self.write_entry("(configuration)", &entry, &mut std::io::empty(), false)?;
            }
            Generated::Dir { path, mode, uid, gid } => {
                let entry = DataEntry {
                    path: path.clone(),
                    kind: EntryKind::Directory,
                    mode: *mode,
                    uid: *uid,
                    gid: *gid,
                    size: 0,
                    mtime: 0,
                };
                self.write_entry("(configuration)", &entry, &mut std::io::empty(), false)?;
            }
            Generated::Owner { path, uid, gid, mode } => {
                let dest = self.resolve(path, false)?;
                if std::fs::symlink_metadata(&dest).is_ok() {
                    set_owner(&dest, *uid, *gid)?;
                    if let Some(mode) = mode {
                        set_mode(&dest, *mode)?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn remove(path: &Path) -> Result<(), Error> {
    fs_err::remove_file(path).map_err(io_error("remove", path))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_error("set the mode of", path))
}

/// Sets the owner where we may (as root); an unprivileged unpack keeps the caller as owner.
fn set_owner(path: &Path, uid: u64, gid: u64) -> Result<(), Error> {
    if uid == 0 && gid == 0 {
        return Ok(());
    }
    match std::os::unix::fs::lchown(path, Some(uid as u32), Some(gid as u32)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(()),
        Err(e) => Err(io_error("change the owner of", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_usr_paths() {
        assert_eq!(merged_usr_path("bin/ls", "amd64"), "usr/bin/ls");
        assert_eq!(merged_usr_path("lib64/ld-linux-x86-64.so.2", "amd64"), "usr/lib64/ld-linux-x86-64.so.2");
        assert_eq!(merged_usr_path("lib64/x", "arm64"), "lib64/x");
        assert_eq!(merged_usr_path("etc/passwd", "arm64"), "etc/passwd");
        assert_eq!(merged_usr_links("arm64").len(), 3);
    }

    #[test]
    fn resolves_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("usr/escape")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("usr/up")).unwrap();
        let w = RootWriter::new(root);
        assert_eq!(w.resolve("bin/sh", true).unwrap(), root.join("usr/bin/sh"));
        assert_eq!(w.resolve("usr/escape/passwd", true).unwrap(), root.join("etc/passwd"));
        assert_eq!(w.resolve("usr/up/etc", true).unwrap(), root.join("etc"));
        assert_eq!(w.resolve("bin", false).unwrap(), root.join("bin"));
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert!(w.resolve("loop/x", true).is_err());
    }

    #[test]
    fn never_writes_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, root.join("etc/conf")).unwrap();
        let w = RootWriter::new(root);
        let entry = DataEntry {
            path: "etc/conf".into(),
            kind: EntryKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 3,
            mtime: 0,
        };
        let md5 = w.write_entry("p", &entry, &mut &b"new"[..], true).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(root.join("etc/conf")).unwrap(), "new");
        assert_eq!(md5.as_deref(), Some("22af645d1859cb5ca6da0c484f1f37ea"));
        // A directory symlink that leaves the root is resolved inside it.
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        let entry = DataEntry { path: "out/x".into(), ..entry };
        w.write_entry("p", &entry, &mut &b"x"[..], false).unwrap();
        assert!(!outside.path().join("x").exists());
    }
}
