//! Installing into a directory (a build environment) rather than a layer.

use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use super::InstallSink;
use crate::layer::{normalize, LayerError};

/// A directory that [`install_wheel`](super::install_wheel) writes files into, each path
/// taken relative to it (`/lib/python3.11/site-packages/x.py` lands in
/// `ROOT/lib/python3.11/site-packages/x.py`). Paths are checked as a layer checks them; no
/// file is replaced, and no existing symbolic link is followed out of the directory.
#[derive(Debug)]
pub struct DirSink {
    root: PathBuf,
}

impl DirSink {
    /// Files go below `root`, which must exist.
    pub fn new(root: impl Into<PathBuf>) -> DirSink {
        DirSink { root: root.into() }
    }
}

impl InstallSink for DirSink {
    fn add_file(&mut self, path: &str, mode: u32, content: &mut dyn Read) -> Result<u64, LayerError> {
        let key = normalize(path)?;
        let write = |source: io::Error| LayerError::Write { path: self.root.join(key.join("/")), source };
        let mut dest = self.root.clone();
        for (n, part) in key.iter().enumerate() {
            dest.push(part);
            if n + 1 == key.len() {
                break;
            }
            match std::fs::symlink_metadata(&dest) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(LayerError::ParentNotDir { path: key.join("/"), parent: key[..=n].join("/") })
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir(&dest).map_err(write)?,
                Err(e) => return Err(write(e)),
            }
        }
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(mode & 0o777).open(&dest).map_err(
                |e| match e.kind() {
                    io::ErrorKind::AlreadyExists => LayerError::Duplicate { path: key.join("/") },
                    _ => write(e),
                },
            )?;
        let size = io::copy(content, &mut file)
            .map_err(|source| LayerError::ReadContent { path: key.join("/"), source })?;
        // The mode asked for, whatever the umask took away.
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o777)).map_err(write)?;
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_land_below_the_root_and_are_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = DirSink::new(dir.path());
        sink.add_file("/lib/python3.11/site-packages/a.py", 0o644, &mut &b"A"[..]).unwrap();
        sink.add_file("/bin/tool", 0o755, &mut &b"#!x"[..]).unwrap();
        assert_eq!(std::fs::read(dir.path().join("lib/python3.11/site-packages/a.py")).unwrap(), b"A");
        let mode = std::fs::metadata(dir.path().join("bin/tool")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        let again = sink.add_file("/bin/tool", 0o755, &mut &b"B"[..]).unwrap_err();
        assert!(matches!(again, LayerError::Duplicate { .. }), "{again:?}");
        assert!(sink.add_file("/../escape", 0o644, &mut &b""[..]).is_err());
        std::os::unix::fs::symlink("/tmp", dir.path().join("link")).unwrap();
        let through = sink.add_file("/link/x", 0o644, &mut &b""[..]).unwrap_err();
        assert!(matches!(through, LayerError::ParentNotDir { .. }), "{through:?}");
    }
}
