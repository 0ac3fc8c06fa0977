//! `marqo-base cache`: where the cache is, what it holds by kind, and removing all or part of
//! it safely.
//!
//! Every process that uses the cache holds a shared `flock` on `ROOT/.lock` for as long as it
//! runs ([`crate::env::Env::cache`]); `clean` and `prune` take it exclusively, so they wait
//! for running builds, compiles and pulls to finish (saying so), and those started meanwhile
//! wait for them. Nothing a running process uses is ever removed.
//!
//! "Last used" is the later of a file's modification and access times (filesystems mounted
//! `relatime`, the Linux default, update access times at least once a day, which is as fine
//! as `--older-than` needs); a directory entry (a build venv, a built wheel) counts as used
//! when anything below it was.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::{Error, Reporter};

/// The kinds of things the cache holds: a name for the command line, what it is, and the
/// entries of the cache root it covers.
pub const KINDS: &[(&str, &str, &[&str])] = &[
    ("downloads", "wheels, sdists, .debs, [[file]] downloads and pulled blobs, by sha256", &["blobs"]),
    ("index-pages", "Python index pages", &["http"]),
    ("metadata", "wheel and sdist metadata", &["metadata-v2", "sdist-metadata-v2"]),
    ("build-envs", "sdist build venvs and the wheels built from sdists", &["builds"]),
    ("layers", "built image layers and their notes", &["layers-v1", "layer-notes-v1"]),
    ("debian", "Debian indexes (Release, Packages)", &["debian"]),
];

/// The name of the kind an entry of the cache root belongs to.
fn kind_of(entry: &str) -> &'static str {
    KINDS.iter().find(|(_, _, dirs)| dirs.contains(&entry)).map_or("other", |(name, _, _)| name)
}

/// What one kind holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindSize {
    pub kind: &'static str,
    pub what: &'static str,
    pub files: u64,
    /// Bytes of distinct files (hard links counted once).
    pub bytes: u64,
    /// For downloads (stored by digest, not by name): what their first bytes say they are,
    /// (sort, files, bytes) for wheels (zip), `.deb`s (ar), gzip and other.
    pub sorts: Vec<(&'static str, u64, u64)>,
}

/// What a downloaded blob is, by its first bytes.
fn sniff(path: &Path) -> &'static str {
    use std::io::Read;
    let mut head = [0u8; 8];
    let n = File::open(path).and_then(|mut f| f.read(&mut head)).unwrap_or(0);
    match &head[..n] {
        [b'P', b'K', 3, 4, ..] => "zip (wheels, zip sdists)",
        [b'!', b'<', b'a', b'r', b'c', b'h', b'>', b'\n'] => ".debs",
        [0x1f, 0x8b, ..] => "gzip (sdists, layers, files)",
        _ => "other",
    }
}

/// The cache root. (Not through [`crate::env::cache`]: these commands take the cache's lock
/// themselves, exclusively where they remove.)
pub fn dir() -> Result<PathBuf, Error> {
    let cache = fetch::Cache::from_env().map_err(|e| Error::from_error("cannot find the cache", e))?;
    Ok(cache.root().to_path_buf())
}

/// What the cache holds, by kind (every kind, empty ones too, then `other`).
pub fn size() -> Result<(PathBuf, Vec<KindSize>), Error> {
    let root = dir()?;
    let mut sizes: Vec<KindSize> = KINDS
        .iter()
        .map(|(kind, what, _)| KindSize { kind, what, files: 0, bytes: 0, sorts: Vec::new() })
        .chain(std::iter::once(KindSize {
            kind: "other",
            what: "small records and scratch space",
            files: 0,
            bytes: 0,
            sorts: Vec::new(),
        }))
        .collect();
    let mut seen = HashSet::new();
    for (name, path) in root_entries(&root)? {
        if name == ".lock" {
            continue;
        }
        let kind = kind_of(&name);
        let slot = sizes.iter_mut().find(|s| s.kind == kind).expect("every kind has a slot");
        walk_paths(&path, &mut |file, meta| {
            if seen.insert((meta.dev(), meta.ino())) {
                slot.files += 1;
                slot.bytes += meta.len();
                if kind == "downloads" {
                    let sort = sniff(file);
                    match slot.sorts.iter_mut().find(|(s, _, _)| *s == sort) {
                        Some(entry) => {
                            entry.1 += 1;
                            entry.2 += meta.len();
                        }
                        None => slot.sorts.push((sort, 1, meta.len())),
                    }
                }
            }
        })
        .map_err(|e| Error::from_error(format!("cannot read {}", path.display()), e))?;
        slot.sorts.sort();
    }
    Ok((root, sizes))
}

/// What a `clean` or `prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    pub entries: u64,
    pub bytes: u64,
}

/// Removes the kinds named (all of the cache when none is), once no other process uses it.
pub fn clean(kinds: &[String], printer: &dyn Reporter) -> Result<Removed, Error> {
    let chosen = chosen_kinds(kinds)?;
    let root = dir()?;
    let _lock = exclusive(&root, printer)?;
    let mut removed = Removed::default();
    for (name, path) in root_entries(&root)? {
        if name == ".lock" || !chosen.iter().any(|k| *k == kind_of(&name)) {
            continue;
        }
        removed.bytes += tree_bytes(&path);
        removed.entries += 1;
        remove(&path)?;
    }
    Ok(removed)
}

/// Removes what has not been used for `older_than`: files of the content-addressed kinds,
/// and whole build venvs and built wheels, once no other process uses the cache.
pub fn prune(older_than: Duration, printer: &dyn Reporter) -> Result<Removed, Error> {
    let root = dir()?;
    let _lock = exclusive(&root, printer)?;
    let cutoff = SystemTime::now().checked_sub(older_than).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut removed = Removed::default();
    for (name, path) in root_entries(&root)? {
        match kind_of(&name) {
            // A venv or built wheel goes as a whole, or not at all.
            "build-envs" => {
                for group in children(&path)? {
                    for entry in children(&group)? {
                        if last_used(&entry) < cutoff {
                            removed.bytes += tree_bytes(&entry);
                            removed.entries += 1;
                            remove(&entry)?;
                        }
                    }
                }
            }
            "other" if name == ".lock" => {}
            _ => prune_files(&path, cutoff, &mut removed)?,
        }
    }
    Ok(removed)
}

/// `30d`, `12h`, `90m`, `45s`, `2w`.
pub fn parse_age(text: &str) -> Result<Duration, Error> {
    let bad = || {
        Error::user(format!("`{text}` is not an age"))
            .with_hint("give a number and a unit: 30d, 12h, 90m, 45s, 2w")
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(seconds).map(Duration::from_secs).ok_or_else(bad)
}

fn chosen_kinds(kinds: &[String]) -> Result<Vec<&'static str>, Error> {
    let all: Vec<&'static str> = KINDS.iter().map(|(k, _, _)| *k).chain(["other"]).collect();
    if kinds.is_empty() {
        return Ok(all);
    }
    kinds
        .iter()
        .map(|k| {
            all.iter().copied().find(|a| a == k).ok_or_else(|| {
                Error::user(format!("`{k}` is not a kind of cache entry"))
                    .with_hint(format!("name one of: {}", all.join(", ")))
            })
        })
        .collect()
}

/// The exclusive lock on the cache, waiting (and saying so) while other processes use it.
fn exclusive(root: &Path, printer: &dyn Reporter) -> Result<File, Error> {
    use rustix::fs::{flock, FlockOperation};
    let file = crate::env::lock_file(root)?;
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        printer
            .status(format!("Waiting for the other marqo-base processes using {} to finish", root.display()));
        flock(&file, FlockOperation::LockExclusive).map_err(|e| {
            Error::from_error(format!("cannot lock {}", root.display()), std::io::Error::from(e))
        })?;
    }
    Ok(file)
}

fn root_entries(root: &Path) -> Result<Vec<(String, PathBuf)>, Error> {
    if !root.exists() {
        return Ok(Vec::new());
    }
    let mut out: Vec<(String, PathBuf)> = children(root)?
        .into_iter()
        .map(|p| (p.file_name().unwrap_or_default().to_string_lossy().into_owned(), p))
        .collect();
    out.sort();
    Ok(out)
}

fn children(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    if !dir.is_dir() || dir.is_symlink() {
        return Ok(Vec::new());
    }
    let read =
        std::fs::read_dir(dir).map_err(|e| Error::from_error(format!("cannot read {}", dir.display()), e))?;
    let mut out = Vec::new();
    for entry in read {
        out.push(entry.map_err(|e| Error::from_error(format!("cannot read {}", dir.display()), e))?.path());
    }
    out.sort();
    Ok(out)
}

/// Calls `f` with the metadata of every file below `path` (links not followed).
fn walk(path: &Path, f: &mut dyn FnMut(&std::fs::Metadata)) -> std::io::Result<()> {
    walk_paths(path, &mut |_, meta| f(meta))
}

/// [`walk`], with each file's path.
fn walk_paths(path: &Path, f: &mut dyn FnMut(&Path, &std::fs::Metadata)) -> std::io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            walk_paths(&entry?.path(), f)?;
        }
    } else {
        f(path, &meta);
    }
    Ok(())
}

fn tree_bytes(path: &Path) -> u64 {
    let mut bytes = 0;
    let _ = walk(path, &mut |m| bytes += m.len());
    bytes
}

fn used(meta: &std::fs::Metadata) -> SystemTime {
    let m = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let a = meta.accessed().unwrap_or(SystemTime::UNIX_EPOCH);
    m.max(a)
}

/// The latest use of anything at or below `path`.
fn last_used(path: &Path) -> SystemTime {
    let mut latest = std::fs::symlink_metadata(path).map(|m| used(&m)).unwrap_or(SystemTime::UNIX_EPOCH);
    let _ = walk(path, &mut |m| latest = latest.max(used(m)));
    latest
}

fn prune_files(path: &Path, cutoff: SystemTime, removed: &mut Removed) -> Result<(), Error> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    if meta.is_dir() {
        for child in children(path)? {
            prune_files(&child, cutoff, removed)?;
        }
    } else if used(&meta) < cutoff {
        removed.bytes += meta.len();
        removed.entries += 1;
        remove(path)?;
    }
    Ok(())
}

fn remove(path: &Path) -> Result<(), Error> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    };
    result.map_err(|e| Error::from_error(format!("cannot remove {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_age("12h").unwrap(), Duration::from_secs(12 * 3600));
        assert_eq!(parse_age("2w").unwrap(), Duration::from_secs(14 * 86_400));
        for bad in ["", "d", "30", "30x", "-1d", "99999999999999999999d", "1.5d"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_root_entry_has_a_kind() {
        assert_eq!(kind_of("blobs"), "downloads");
        assert_eq!(kind_of("layer-notes-v1"), "layers");
        assert_eq!(kind_of("python-identity-v1"), "other");
    }
}
