//! Writing a layout so that it appears whole or not at all: it is built in a hidden
//! directory beside its destination (same file system) and renamed into place last. `build`
//! and `pull` both commit through this, and `debian rootfs` stages its trees with
//! [`StagingDir`].
//!
//! A staging directory, `.NAME.tmp-XXXXXX`, is held with an exclusive `flock` on the
//! directory itself for as long as its process lives: the kernel lets go when the process
//! ends, however it ends (SIGKILL too). So [`remove_stale`] can tell the trees of an
//! interrupted run (nobody holds them) from one another live process is writing (held), with
//! no pid to reuse. Each is created as `.NAME.new-XXXXXX`, locked, then renamed to its
//! `.tmp-` name, so no unlocked `.tmp-` tree is ever seen. Live staging directories are also
//! listed for [`remove_active`], which a signal handler calls before the process exits.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::{Error, OciLayout};

/// The staging directories of this process that are still in use.
static ACTIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// How old a `.NAME.new-` directory (one that never got its lock and name) must be to count as
/// left over.
const NEW_GRACE: Duration = Duration::from_secs(60);

/// A hidden directory beside a destination, locked while this process uses it, removed when
/// dropped (unless [`StagingDir::keep`] took it).
#[derive(Debug)]
pub struct StagingDir {
    path: PathBuf,
    /// Holds the `flock`; closing it releases the lock.
    _lock: fs::File,
    kept: bool,
}

impl StagingDir {
    /// Creates `.NAME.KIND-XXXXXX` beside `out` (`kind` is `tmp` for a tree being written,
    /// `old` for one being replaced), its parent too if need be.
    pub fn beside(out: &Path, kind: &str) -> Result<StagingDir, Error> {
        let parent = parent_of(out);
        fs::create_dir_all(&parent).map_err(Error::io("create", &parent))?;
        let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let fresh = tempfile::Builder::new()
            .prefix(&format!(".{name}.new-"))
            .tempdir_in(&parent)
            .map_err(Error::io("create a temporary directory in", &parent))?;
        let lock = fs::File::open(fresh.path()).map_err(Error::io("open", fresh.path()))?;
        if !try_lock(&lock).map_err(Error::io("lock", fresh.path()))? {
            let busy = std::io::Error::from(std::io::ErrorKind::WouldBlock);
            return Err(Error::io("lock", fresh.path())(busy));
        }
        let suffix = fresh
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.rsplit_once(".new-"))
            .map(|(_, s)| s.to_string())
            .unwrap_or_default();
        let path = parent.join(format!(".{name}.{kind}-{suffix}"));
        fs::rename(fresh.path(), &path).map_err(Error::io("rename", fresh.path()))?;
        let _ = fresh.keep();
        if let Ok(mut active) = ACTIVE.lock() {
            active.push(path.clone());
        }
        Ok(StagingDir { path, _lock: lock, kept: false })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gives up the directory without removing it (it was renamed into place); the lock is
    /// released.
    pub fn keep(mut self) -> PathBuf {
        self.kept = true;
        forget_active(&self.path);
        self.path.clone()
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if !self.kept {
            let _ = fs::remove_dir_all(&self.path);
            forget_active(&self.path);
        }
    }
}

/// Takes an exclusive `flock` on `file` without waiting: `false` when another open file (of
/// this process or another) holds it.
fn try_lock(file: &fs::File) -> std::io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn forget_active(path: &Path) {
    if let Ok(mut active) = ACTIVE.lock() {
        active.retain(|p| p != path);
    }
}

fn parent_of(out: &Path) -> PathBuf {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Removes the staging directories of `out` (`.NAME.tmp-*`, `.NAME.old-*`) that no live
/// process holds: those of an interrupted run. Returns what it removed; one it cannot remove
/// is left (and not returned).
pub fn remove_stale(out: &Path) -> Vec<PathBuf> {
    let parent = parent_of(out);
    let Some(name) = out.file_name().map(|n| n.to_string_lossy().into_owned()) else { return Vec::new() };
    let Ok(entries) = fs::read_dir(&parent) else { return Vec::new() };
    let (tmp, old, new) = (format!(".{name}.tmp-"), format!(".{name}.old-"), format!(".{name}.new-"));
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        if !meta.is_dir() {
            continue;
        }
        let stale = if file_name.starts_with(&tmp) || file_name.starts_with(&old) {
            // Held by a live process: WouldBlock. Free: ours to take, and remove.
            fs::File::open(&path).is_ok_and(|f| try_lock(&f).unwrap_or(false))
        } else if file_name.starts_with(&new) {
            let age = meta.modified().ok().and_then(|m| SystemTime::now().duration_since(m).ok());
            age.is_some_and(|a| a > NEW_GRACE)
                && fs::File::open(&path).is_ok_and(|f| try_lock(&f).unwrap_or(false))
        } else {
            false
        };
        if stale && fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    removed.sort();
    removed
}

/// Removes every staging directory this process still uses: for a signal handler, just
/// before the process exits. Writers may still be adding files, so each removal is retried.
pub fn remove_active() {
    let paths = match ACTIVE.lock() {
        Ok(active) => active.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    for path in paths {
        for _ in 0..5 {
            if fs::remove_dir_all(&path).is_ok() || !path.exists() {
                break;
            }
        }
    }
}

/// An OCI layout under construction beside `out`; dropped without [`StagedLayout::commit`],
/// it is removed and `out` is untouched.
#[derive(Debug)]
pub struct StagedLayout {
    dir: StagingDir,
    layout: OciLayout,
    out: PathBuf,
}

impl StagedLayout {
    /// Starts a layout that [`StagedLayout::commit`] will move to `out` (which must then be
    /// absent or an empty directory). Its parent is created if need be.
    pub fn beside(out: &Path) -> Result<StagedLayout, Error> {
        let dir = StagingDir::beside(out, "tmp")?;
        let layout = OciLayout::create(dir.path().join("layout"))?;
        Ok(StagedLayout { dir, layout, out: out.to_path_buf() })
    }

    /// The layout being written.
    pub fn layout(&self) -> &OciLayout {
        &self.layout
    }

    /// A directory for scratch files on the same file system as the layout (so finished
    /// files can be renamed into it), removed with the staging area.
    pub fn scratch(&self) -> Result<PathBuf, Error> {
        let scratch = self.dir.path().join("scratch");
        fs::create_dir_all(&scratch).map_err(Error::io("create", &scratch))?;
        Ok(scratch)
    }

    /// Moves the finished layout to its destination, replacing an empty directory there;
    /// refuses anything else in the way. The staging area is removed either way.
    pub fn commit(self) -> Result<(), Error> {
        match fs::symlink_metadata(&self.out) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read", &self.out)(e)),
            Ok(m) if m.is_dir() => {
                let empty = fs::read_dir(&self.out).map_err(Error::io("read", &self.out))?.next().is_none();
                if !empty {
                    return Err(Error::NotEmpty { path: self.out.clone() });
                }
                fs::remove_dir(&self.out).map_err(Error::io("replace", &self.out))?;
            }
            Ok(_) => return Err(Error::NotEmpty { path: self.out.clone() }),
        }
        fs::rename(self.dir.path().join("layout"), &self.out)
            .map_err(Error::io("move the layout to", &self.out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appears_whole_or_not_at_all() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("sub/out");
        let staged = StagedLayout::beside(&out).unwrap();
        staged.layout().put_blob(b"hello").unwrap();
        assert!(!out.exists(), "nothing at the destination before the commit");
        staged.commit().unwrap();
        assert!(out.join("oci-layout").is_file());
        let leftovers: Vec<_> =
            fs::read_dir(root.path().join("sub")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, ["out"], "the staging area is gone");

        // Dropped without a commit: nothing appears, nothing is left.
        let other = root.path().join("other");
        drop(StagedLayout::beside(&other).unwrap());
        assert!(!other.exists());
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);

        // A non-empty destination is refused; an empty one is replaced.
        let busy = root.path().join("busy");
        fs::create_dir_all(busy.join("x")).unwrap();
        assert!(matches!(StagedLayout::beside(&busy).unwrap().commit(), Err(Error::NotEmpty { .. })));
        let empty = root.path().join("empty");
        fs::create_dir(&empty).unwrap();
        StagedLayout::beside(&empty).unwrap().commit().unwrap();
        assert!(empty.join("oci-layout").is_file());
    }

    #[test]
    fn only_trees_nobody_holds_are_stale() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        // Left by a run that was killed: nobody holds them.
        for name in [".out.tmp-dead01", ".out.old-dead02"] {
            fs::create_dir_all(root.path().join(name).join("layout/blobs")).unwrap();
        }
        // Another destination's, and a plain file: not ours to touch.
        fs::create_dir(root.path().join(".other.tmp-x")).unwrap();
        fs::write(root.path().join(".out.tmp-file"), "").unwrap();
        let live = StagingDir::beside(&out, "tmp").unwrap();
        let removed = remove_stale(&out);
        let names: Vec<String> =
            removed.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, [".out.old-dead02", ".out.tmp-dead01"]);
        assert!(live.path().is_dir(), "a held tree is not stale");
        assert!(root.path().join(".other.tmp-x").is_dir());
        assert!(root.path().join(".out.tmp-file").is_file());
        // A live directory is listed for the signal handler until it is dropped or kept.
        assert!(ACTIVE.lock().unwrap().contains(&live.path().to_path_buf()));
        let path = live.path().to_path_buf();
        drop(live);
        assert!(!path.exists() && !ACTIVE.lock().unwrap().contains(&path));
    }
}
