//! Atomic file writes: a temporary file in the destination's directory, fsync, rename.

use std::io::Write;
use std::path::Path;

use tempfile::NamedTempFile;

use crate::Error;

/// A temporary file beside `dest` that becomes `dest` on [`persist`].
pub(crate) fn temp_beside(dest: &Path) -> Result<NamedTempFile, Error> {
    // A bare file name has the parent "", which is the current directory.
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(Error::io("create a temporary file in", dir))
}

/// Flushes `file` to disk and renames it to `dest`, replacing what was there.
pub(crate) fn persist(mut file: NamedTempFile, dest: &Path) -> Result<(), Error> {
    file.flush().map_err(Error::io("write", file.path()))?;
    file.as_file().sync_all().map_err(Error::io("sync", file.path()))?;
    file.persist(dest).map_err(|e| Error::Io {
        action: "rename a temporary file to",
        path: dest.into(),
        source: e.error,
    })?;
    Ok(())
}

/// Writes `bytes` to `dest` atomically.
pub(crate) fn write(dest: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut file = temp_beside(dest)?;
    file.write_all(bytes).map_err(Error::io("write", file.path()))?;
    persist(file, dest)
}
