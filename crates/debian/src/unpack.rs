//! Writing packages into a root directory, safely: every path is resolved inside the root
//! (symlinks in parent directories are followed as if the root were `/`), nothing is ever
//! written through a symlink, and an existing directory symlink is kept when a package
//! ships a directory there (as dpkg does on a merged-/usr system).
//!
//! Owners and modes go where dpkg puts them, and into an [`Owners`] record beside the tree
//! (which is what layers are built from, see [`crate::owners`]): a file, link or new
//! directory gets its entry's mode and owner; a directory that already exists keeps the
//! ones it has (dpkg leaves an existing directory alone), unless configuration sets them
//! (a postinst's `chown`, a statoverride). On disk owners are only set when the process may
//! (as root).

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use crate::configure::{configure, ConfigureOptions, Generated, InstalledPackage};
use crate::deb::{ControlFiles, DataEntry, Deb, EntryKind};
use crate::error::io_error;
use crate::ldcache::read_ld_cache;
use crate::owners::{Owners, Stat};
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

/// A root once unpacked and configured.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// Every package, sorted by name.
    pub packages: Vec<InstalledPackage>,
    /// The owner and mode dpkg would give every path of the root (whatever the tree on disk
    /// has: an unprivileged unpack cannot `chown`).
    pub owners: Owners,
    /// What the packages' `preinst` and `postinst` do, against what configuration did.
    pub scripts: ScriptReport,
}

/// Unpacks the packages into `root` (created if needed) and does what their maintainer
/// scripts would do that an image needs (see [`crate::configure`]): afterwards `dpkg -l`
/// and `apt` in the root see every package as installed. `base-files` goes first, the
/// rest in the order given. Owners come from the packages' user and group names, resolved
/// through the root's own `/etc/passwd` and `/etc/group` once configuration wrote them (see
/// [`crate::owners`]).
pub fn unpack(debs: &[(LockedDeb, PathBuf)], root: &Path) -> Result<Unpacked, Error> {
    unpack_with(debs, root, &ConfigureOptions::default())
}

/// [`unpack`] with configuration options; when libc-bin is in the set (whose trigger runs
/// `ldconfig`), `/etc/ld.so.cache` is written last, from the configured root (see
/// [`crate::ldcache`]). Returns the packages, their owners and the report of their scripts.
pub fn unpack_with(
    debs: &[(LockedDeb, PathBuf)],
    root: &Path,
    options: &ConfigureOptions,
) -> Result<Unpacked, Error> {
    fs_err::create_dir_all(root).map_err(io_error("create", root))?;
    let root = std::path::absolute(root).map_err(io_error("resolve", root))?;
    let mut writer = RootWriter::new(&root);
    let names: Vec<&str> = debs.iter().map(|(d, _)| d.name.as_str()).collect();
    let native = debs.iter().map(|(d, _)| d.arch.as_str()).find(|a| *a != "all").unwrap_or("all").to_string();
    if wants_merged_usr(&names) {
        for dir in merged_usr_dirs(&native) {
            if std::fs::symlink_metadata(root.join(dir)).is_err() {
                let usr_dir = format!("usr/{dir}");
                writer.write_generated(&Generated::Dir {
                    path: usr_dir.clone(),
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                })?;
                writer.write_generated(&Generated::Symlink { path: dir.to_string(), target: usr_dir })?;
            }
        }
    }
    let mut order: Vec<&(LockedDeb, PathBuf)> = debs.iter().collect();
    order.sort_by_key(|(d, _)| d.name != "base-files");
    let mut installed = Vec::with_capacity(debs.len());
    for (locked, path) in order {
        let deb = Deb::new(path, &locked.name);
        let mut control = deb.read_control()?;
        let (files, conffile_md5) = unpack_data(&deb, &locked.name, &mut control, &mut writer)?;
        installed.push(InstalledPackage { locked: locked.clone(), control, files, conffile_md5 });
    }
    installed.sort_by(|a, b| a.locked.name.cmp(&b.locked.name));
    if wants_merged_usr(&names) {
        // Debian's merged /usr has the multilib aliases (`lib32`, `libx32`) only where a
        // package put something there: drop the ones left empty.
        for dir in
            merged_usr_dirs(&native).iter().filter(|d| d.starts_with("lib") && **d != "lib" && **d != "lib64")
        {
            writer.remove_empty_alias(dir)?;
        }
    }
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
    writer.resolve_names()?;
    Ok(Unpacked { packages: installed, owners: writer.into_owners(), scripts })
}

/// Writes one package's data; returns its paths (for `info/<pkg>.list`) and the md5 of
/// each conffile. A package without an `md5sums` member gets one, as dpkg makes it at
/// unpack (`dpkg --audit` reports a package without one).
fn unpack_data(
    deb: &Deb,
    package: &str,
    control: &mut ControlFiles,
    writer: &mut RootWriter,
) -> Result<(Vec<String>, BTreeMap<String, String>), Error> {
    let conffiles = control.conffiles();
    let make_md5sums = control.get("md5sums").is_none();
    let mut files = Vec::new();
    let mut md5s = BTreeMap::new();
    let mut md5sums = String::new();
    deb.visit_data(|entry, content| {
        let absolute = format!("/{}", entry.path);
        let conffile = conffiles.contains(&absolute);
        let digest = writer.write_entry(package, entry, content, conffile || make_md5sums)?;
        if let Some(d) = digest {
            if make_md5sums {
                md5sums.push_str(&format!("{d}  {}\n", entry.path));
            }
            if conffile {
                md5s.insert(absolute.clone(), d);
            }
        }
        if !entry.path.is_empty() {
            files.push(absolute);
        }
        Ok(())
    })?;
    if make_md5sums {
        control.others.push(("md5sums".to_string(), 0o644, md5sums.into_bytes()));
        control.others.sort_by(|a, b| a.0.cmp(&b.0));
    }
    Ok((files, md5s))
}

/// Writes entries under a root directory, recording the owner and mode of each.
#[derive(Debug, Clone)]
pub struct RootWriter {
    root: PathBuf,
    owners: Owners,
}

/// Who writes an entry: a package (an existing directory is left alone, names are kept for
/// [`RootWriter::resolve_names`]) or configuration (it sets what it says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    Package,
    Configuration,
}

impl RootWriter {
    /// A writer for `root` (which must exist; make it absolute first).
    pub fn new(root: &Path) -> RootWriter {
        RootWriter { root: root.to_path_buf(), owners: Owners::default() }
    }

    /// The record, once everything is written (and [`RootWriter::resolve_names`] ran).
    pub fn into_owners(self) -> Owners {
        self.owners
    }

    /// Resolves the packages' user and group names through the root's `etc/passwd` and
    /// `etc/group` (absent: the header ids stand), and puts the owners that changed on
    /// disk where the process may.
    pub fn resolve_names(&mut self) -> Result<(), Error> {
        let read = |rel: &str| -> Result<String, Error> {
            let path = self.resolve(rel, true)?;
            match std::fs::read(&path) {
                Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
                Err(e) => Err(io_error("read", &path)(e)),
            }
        };
        let (passwd, group) = (read("etc/passwd")?, read("etc/group")?);
        for (path, stat) in self.owners.resolve_names(&passwd, &group) {
            change_owner(&path, stat.uid, stat.gid)?;
            if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                // A chown clears setuid and setgid bits: put the mode back.
                set_mode(&path, stat.mode)?;
            }
        }
        Ok(())
    }

    /// Records `dest` as just written with `stat`.
    fn record(&mut self, dest: &Path, entry: &DataEntry, stat: Stat, by: Writer) -> Result<(), Error> {
        let meta = std::fs::symlink_metadata(dest).map_err(io_error("read", dest))?;
        match by {
            Writer::Package => {
                self.owners.record_entry(&meta, dest.to_path_buf(), stat, &entry.user, &entry.group)
            }
            Writer::Configuration => self.owners.record(&meta, dest.to_path_buf(), stat),
        }
        Ok(())
    }

    /// Creates the missing directories down to `dir` (inside the root), 0755 and root's,
    /// as recorded directories.
    fn create_dirs(&mut self, dir: &Path) -> Result<(), Error> {
        let mut missing = Vec::new();
        let mut at = dir;
        while std::fs::symlink_metadata(at).is_err() && at != self.root {
            missing.push(at.to_path_buf());
            match at.parent() {
                Some(parent) => at = parent,
                None => break,
            }
        }
        for dir in missing.into_iter().rev() {
            fs_err::create_dir(&dir).map_err(io_error("create", &dir))?;
            set_mode(&dir, 0o755)?;
            let meta = std::fs::symlink_metadata(&dir).map_err(io_error("read", &dir))?;
            self.owners.record(&meta, dir, Stat { uid: 0, gid: 0, mode: 0o755 });
        }
        Ok(())
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
    fn place(&mut self, path: &str) -> Result<(PathBuf, String), Error> {
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
            Err(_) => self.create_dirs(&dir)?,
        }
        Ok((dir, name.to_string()))
    }

    /// Writes one data entry of `package`; returns the md5 of its content when asked (for
    /// conffiles).
    pub fn write_entry(
        &mut self,
        package: &str,
        entry: &DataEntry,
        content: &mut dyn Read,
        want_md5: bool,
    ) -> Result<Option<String>, Error> {
        self.write(package, entry, content, want_md5, Writer::Package)
    }

    fn write(
        &mut self,
        package: &str,
        entry: &DataEntry,
        content: &mut dyn Read,
        want_md5: bool,
        by: Writer,
    ) -> Result<Option<String>, Error> {
        if entry.path.is_empty() {
            return Ok(None);
        }
        let (dir, name) = self.place(&entry.path)?;
        let dest = dir.join(&name);
        let existing = std::fs::symlink_metadata(&dest).ok();
        let stat = Stat { uid: entry.uid, gid: entry.gid, mode: entry.mode & 0o7777 };
        match &entry.kind {
            EntryKind::Directory => {
                let was_dir = existing.as_ref().is_some_and(|m| m.is_dir());
                match existing {
                    // dpkg leaves an existing directory as it is; configuration sets it.
                    Some(m) if m.is_dir() && by == Writer::Package => return Ok(None),
                    Some(m) if m.is_dir() => {}
                    Some(m) if m.file_type().is_symlink() => {
                        // Keep a directory symlink (merged /usr); anything else is replaced.
                        let target = self.resolve(&entry.path, true)?;
                        if !target.is_dir() {
                            self.remove(&dest, &m)?;
                            fs_err::create_dir(&dest).map_err(io_error("create", &dest))?;
                        } else {
                            return Ok(None);
                        }
                    }
                    Some(m) => {
                        self.remove(&dest, &m)?;
                        fs_err::create_dir(&dest).map_err(io_error("create", &dest))?;
                    }
                    None => fs_err::create_dir(&dest).map_err(io_error("create", &dest))?,
                }
                if was_dir {
                    change_owner(&dest, entry.uid, entry.gid)?;
                } else {
                    set_owner(&dest, entry.uid, entry.gid)?;
                }
                set_mode(&dest, entry.mode)?;
                self.record(&dest, entry, stat, by)?;
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
                self.record(&dest, entry, stat, by)?;
                Ok(hasher.map(|h| hex::encode(h.finalize())))
            }
            EntryKind::Symlink(target) => {
                self.clear_for_file(package, entry, &dest, existing)?;
                std::os::unix::fs::symlink(target, &dest).map_err(io_error("create the symlink", &dest))?;
                set_owner(&dest, entry.uid, entry.gid)?;
                self.record(&dest, entry, Stat { mode: 0o777, ..stat }, by)?;
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
                // dpkg sets the link entry's owner and mode on the inode both names share.
                set_owner(&dest, entry.uid, entry.gid)?;
                set_mode(&dest, entry.mode)?;
                self.record(&dest, entry, stat, by)?;
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
        &mut self,
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
                    self.owners.forget(&m);
                    return Ok(());
                }
                Err(Error::UnsafePath {
                    package: package.to_string(),
                    path: entry.path.clone(),
                    reason: "a non-empty directory is already there",
                })
            }
            Some(m) => self.remove(dest, &m),
        }
    }

    /// Removes the non-directory `path` (whose metadata is `meta`), and its record when
    /// this was its last name.
    fn remove(&mut self, path: &Path, meta: &std::fs::Metadata) -> Result<(), Error> {
        fs_err::remove_file(path).map_err(io_error("remove", path))?;
        self.owners.forget(meta);
        Ok(())
    }

    /// Removes the merged-/usr link `alias` (`lib32 -> usr/lib32`) and the directory it
    /// names, when nothing was unpacked into that directory.
    fn remove_empty_alias(&mut self, alias: &str) -> Result<(), Error> {
        let link = self.root.join(alias);
        let target = self.root.join("usr").join(alias);
        let (Ok(link_meta), Ok(dir_meta)) =
            (std::fs::symlink_metadata(&link), std::fs::symlink_metadata(&target))
        else {
            return Ok(());
        };
        if !link_meta.file_type().is_symlink() || !dir_meta.is_dir() {
            return Ok(());
        }
        if std::fs::read_dir(&target).map_err(io_error("read", &target))?.next().is_some() {
            return Ok(());
        }
        fs_err::remove_dir(&target).map_err(io_error("remove", &target))?;
        self.owners.forget(&dir_meta);
        self.remove(&link, &link_meta)
    }

    /// Writes a file, link, directory or ownership change made by [`crate::configure`].
    pub fn write_generated(&mut self, g: &Generated) -> Result<(), Error> {
        const BY: Writer = Writer::Configuration;
        match g {
            Generated::File { path, mode, uid, gid, content } => {
                let entry = DataEntry {
                    path: path.clone(),
                    kind: EntryKind::File,
                    mode: *mode,
                    uid: *uid,
                    gid: *gid,
                    user: String::new(),
                    group: String::new(),
                    size: content.len() as u64,
                    mtime: 0,
                };
                self.write("(configuration)", &entry, &mut content.as_slice(), false, BY)?;
            }
            Generated::Symlink { path, target } => {
                let entry = DataEntry {
                    path: path.clone(),
                    kind: EntryKind::Symlink(target.clone()),
                    mode: 0o777,
                    uid: 0,
                    gid: 0,
                    user: String::new(),
                    group: String::new(),
                    size: 0,
                    mtime: 0,
                };
                self.write("(configuration)", &entry, &mut std::io::empty(), false, BY)?;
            }
            Generated::Dir { path, mode, uid, gid } => {
                let entry = DataEntry {
                    path: path.clone(),
                    kind: EntryKind::Directory,
                    mode: *mode,
                    uid: *uid,
                    gid: *gid,
                    user: String::new(),
                    group: String::new(),
                    size: 0,
                    mtime: 0,
                };
                self.write("(configuration)", &entry, &mut std::io::empty(), false, BY)?;
            }
            Generated::Owner { path, uid, gid, mode } => {
                let dest = self.resolve(path, false)?;
                if let Ok(meta) = std::fs::symlink_metadata(&dest) {
                    change_owner(&dest, *uid, *gid)?;
                    if !meta.file_type().is_symlink() {
                        // A chown clears setuid and setgid bits: the old mode stays unless
                        // a new one is given.
                        let recorded = self.owners.get(&meta).map(|s| s.mode);
                        set_mode(&dest, mode.or(recorded).unwrap_or(meta.mode() & 0o7777))?;
                    }
                    self.owners.set_owner(&meta, dest, *uid, *gid, *mode);
                }
            }
        }
        Ok(())
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_error("set the mode of", path))
}

/// Sets the owner of a path just created (by this process: 0:0 needs nothing when it is
/// root, and cannot be done when it is not).
fn set_owner(path: &Path, uid: u64, gid: u64) -> Result<(), Error> {
    if uid == 0 && gid == 0 {
        return Ok(());
    }
    change_owner(path, uid, gid)
}

/// Sets the owner where we may (as root); an unprivileged unpack keeps the caller as owner
/// (the [`Owners`] record has the right one either way). Ids beyond 32 bits are left alone.
fn change_owner(path: &Path, uid: u64, gid: u64) -> Result<(), Error> {
    let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) else { return Ok(()) };
    match std::os::unix::fs::lchown(path, Some(uid), Some(gid)) {
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
        let mut w = RootWriter::new(root);
        let entry = DataEntry {
            path: "etc/conf".into(),
            kind: EntryKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            user: String::new(),
            group: String::new(),
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
