//! Byte-compiled modules, as pip writes them at install: the installer hands the `.py`
//! files of a wheel's purelib and platlib to a [`Bytecompiler`] (which runs an interpreter;
//! this crate runs nothing) and writes what it returns to `__pycache__`, listed in `RECORD`.

use std::fmt;
use std::sync::Arc;

/// One module to compile: where it is installed and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct PySource<'a> {
    /// The installed path in the image (`/usr/local/lib/python3.9/dist-packages/six.py`):
    /// what the code objects record as their file (`co_filename`), as if compiled in place.
    pub path: &'a str,
    /// The source as the wheel ships it (shared: a compiler may hand it to other threads).
    pub source: &'a Arc<[u8]>,
}

/// What compiling one module gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compiled {
    /// The bytes of its `.pyc` (header included).
    Pyc(Arc<[u8]>),
    /// It does not compile (a Python 2 test file, say); pip skips such modules, so do we.
    Failed(String),
}

/// Compiles modules for [`install_wheel`](super::install_wheel) (see
/// [`InstallOptions::bytecode`](super::InstallOptions::bytecode)).
pub trait Bytecompiler: Sync + fmt::Debug {
    /// The interpreter's `sys.implementation.cache_tag` (`cpython-39`), which names the
    /// `.pyc` files.
    fn cache_tag(&self) -> &str;

    /// Compiles `sources`: one result per source, in order. An error is the compiler's
    /// (its interpreter died, say), not a module's.
    fn compile(
        &self,
        sources: &[PySource<'_>],
    ) -> Result<Vec<Compiled>, Box<dyn std::error::Error + Send + Sync>>;
}

/// The `.pyc` of the module at `path` for `cache_tag`, as `importlib.util.cache_from_source`
/// names it (`pkg/mod.py` → `pkg/__pycache__/mod.cpython-39.pyc`); `None` for a path that
/// is not a `.py` file (pip compiles only those).
pub fn cache_path(path: &str, cache_tag: &str) -> Option<String> {
    let (dir, file) = match path.rsplit_once('/') {
        Some((dir, file)) => (Some(dir), file),
        None => (None, path),
    };
    if !is_source(file) {
        return None;
    }
    // `base, sep, rest = tail.rpartition('.')`; a file named `.py` keeps `py` as its base.
    let (base, rest) = file.rsplit_once('.').unwrap_or(("", file));
    let stem = if base.is_empty() { rest } else { base };
    let name = format!("{stem}.{cache_tag}.pyc");
    Some(match dir {
        Some(dir) => format!("{dir}/__pycache__/{name}"),
        None => format!("__pycache__/{name}"),
    })
}

/// Whether `path` names a `.py` file (the files pip byte-compiles).
pub(crate) fn is_source(path: &str) -> bool {
    path.rsplit('/').next().is_some_and(|file| file.ends_with(".py"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyc_paths_as_importlib_names_them() {
        let tag = "cpython-39";
        assert_eq!(cache_path("/s/pkg/mod.py", tag).unwrap(), "/s/pkg/__pycache__/mod.cpython-39.pyc");
        assert_eq!(cache_path("/s/six.py", tag).unwrap(), "/s/__pycache__/six.cpython-39.pyc");
        assert_eq!(cache_path("/s/a.b.py", tag).unwrap(), "/s/__pycache__/a.b.cpython-39.pyc");
        assert_eq!(cache_path("/s/.py", tag).unwrap(), "/s/__pycache__/py.cpython-39.pyc");
        assert_eq!(cache_path("mod.py", tag).unwrap(), "__pycache__/mod.cpython-39.pyc");
        for other in ["/s/mod.pyc", "/s/mod.pyi", "/s/mod.PY", "/s/py", "/s/mod.py/x"] {
            assert_eq!(cache_path(other, tag), None, "{other}");
        }
    }
}
