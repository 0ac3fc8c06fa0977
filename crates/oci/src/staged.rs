//! Writing a layout so that it appears whole or not at all: it is built in a hidden
//! directory beside its destination (same file system) and renamed into place last. `build`
//! and `pull` both commit through this.

use std::fs;
use std::path::{Path, PathBuf};

use crate::{Error, OciLayout};

/// An OCI layout under construction beside `out`; dropped without [`StagedLayout::commit`],
/// it is removed and `out` is untouched.
#[derive(Debug)]
pub struct StagedLayout {
    dir: tempfile::TempDir,
    layout: OciLayout,
    out: PathBuf,
}

impl StagedLayout {
    /// Starts a layout that [`StagedLayout::commit`] will move to `out` (which must then be
    /// absent or an empty directory). Its parent is created if need be.
    pub fn beside(out: &Path) -> Result<StagedLayout, Error> {
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(Error::io("create", &parent))?;
        let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let dir = tempfile::Builder::new()
            .prefix(&format!(".{name}.tmp-"))
            .tempdir_in(&parent)
            .map_err(Error::io("create a temporary directory in", &parent))?;
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
}
