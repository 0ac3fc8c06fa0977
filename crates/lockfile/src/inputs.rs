//! The inputs fingerprint: one sha256 over the manifest and every file it names, so that
//! `lock --check` can tell, without resolving, whether the lock still matches.
//!
//! Inputs are the manifest itself, `[python]` requirements, constraints and build
//! constraints, the files those reach through `-r`/`-c` lines, the `[debian]` keyring and
//! `ca_certificates`, and `[[file]]` local sources. Each is named relative to the manifest's directory and hashed by
//! content, so mtimes and the checkout's location do not matter. For plain files the
//! fingerprint is the sha256 of `sha256sum`'s output over the inputs sorted by name
//! (`LC_ALL=C`): the lines `<hex>  <name>\n`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use content_digest::Digest;
use pep_types::requirements_txt::logical_lines;
use sha2::{Digest as _, Sha256};

use crate::error::Error;
use crate::manifest::{FileSource, Manifest};

/// What a lock was made from: each input's digest and the fingerprint over all of them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inputs {
    /// `sha256:<hex>` over `files` (see the module docs).
    pub fingerprint: String,
    /// Input name (relative to the manifest's directory, `/`-separated) to `sha256:<hex>`.
    pub files: BTreeMap<String, String>,
    /// The sizes of the `[[file]]` local sources by input name, as read (a directory's is the
    /// sum of its files); not written to the lock, which keeps them in its `[[file]]`s.
    pub local_sizes: BTreeMap<String, u64>,
}

/// Whether a lock matches its inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// The inputs are the ones the lock was made from.
    Fresh,
    /// Something changed; each reason names an input (``requirements/base.in` changed`).
    Stale {
        /// One line per change, sorted by input name.
        reasons: Vec<String>,
    },
}

impl Inputs {
    /// Reads the manifest (checking it) and every input it names, and fingerprints them.
    pub fn read(manifest_path: &Path) -> Result<Inputs, Error> {
        let bytes = bounded::read_file(manifest_path, bounded::MAX_TEXT_FILE, "the manifest")
            .map_err(|source| Error::Read { path: manifest_path.to_path_buf(), source })?;
        let text = std::str::from_utf8(&bytes).map_err(|e| Error::Read {
            path: manifest_path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        let manifest = Manifest::parse(text, manifest_path)?;
        let mut files = BTreeMap::new();
        let own_name = manifest_path
            .file_name()
            .map_or_else(|| manifest.input_name(manifest_path), |n| n.to_string_lossy().into_owned());
        files.insert(own_name, digest_string(&Sha256::digest(&bytes)));
        if let Some(python) = &manifest.python {
            for path in python.requirements.iter().chain(&python.constraints).chain(&python.build_constraints)
            {
                read_requirements(&manifest, path, None, &mut files)?;
            }
        }
        let source_keyrings =
            manifest.debian.iter().flat_map(|d| &d.source).filter_map(|s| s.keyring.as_ref());
        for keyring in
            manifest.debian.as_ref().and_then(|d| d.keyring.as_ref()).into_iter().chain(source_keyrings)
        {
            files.insert(manifest.input_name(keyring), read_path_digest(keyring)?.sha256.to_string());
        }
        for cert in manifest.debian.iter().flat_map(|d| &d.ca_certificates) {
            let bytes = read_ca_certificate(cert)?;
            files.insert(manifest.input_name(cert), digest_string(&Sha256::digest(&bytes)));
        }
        let mut local_sizes = BTreeMap::new();
        for file in &manifest.files {
            if let FileSource::Local(src) = &file.source {
                let digest = read_path_digest(src)?;
                files.insert(manifest.input_name(src), digest.sha256.to_string());
                local_sizes.insert(manifest.input_name(src), digest.size);
            }
        }
        Ok(Inputs { local_sizes, ..Inputs::from_files(files) })
    }

    /// Inputs with these digests, and their fingerprint.
    pub fn from_files(files: BTreeMap<String, String>) -> Inputs {
        let mut listing = String::new();
        for (name, digest) in &files {
            let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
            let _ = writeln!(listing, "{hex}  {name}");
        }
        Inputs {
            fingerprint: digest_string(&Sha256::digest(listing.as_bytes())),
            files,
            local_sizes: BTreeMap::new(),
        }
    }

    /// Compares what a lock recorded (`self`) with the inputs now.
    pub fn compare(&self, now: &Inputs) -> Freshness {
        if self.fingerprint == now.fingerprint {
            return Freshness::Fresh;
        }
        let mut reasons = Vec::new();
        let names: std::collections::BTreeSet<&String> = self.files.keys().chain(now.files.keys()).collect();
        for name in names {
            match (self.files.get(name), now.files.get(name)) {
                (Some(a), Some(b)) if a != b => reasons.push(format!("`{name}` changed")),
                (Some(_), None) => reasons.push(format!("`{name}` is no longer an input")),
                (None, Some(_)) => reasons.push(format!("`{name}` is a new input")),
                _ => {}
            }
        }
        if reasons.is_empty() {
            reasons
                .push("the lock's input fingerprint does not match its input files (was it edited?)".into());
        }
        Freshness::Stale { reasons }
    }
}

/// Reads a `[debian] ca_certificates` file (which must be a regular file).
pub fn read_ca_certificate(path: &Path) -> Result<Vec<u8>, Error> {
    let err = |source| Error::CaCertificate { path: path.to_path_buf(), source };
    let meta = std::fs::metadata(path).map_err(err)?;
    if !meta.is_file() {
        return Err(err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file")));
    }
    bounded::read_file(path, bounded::MAX_TEXT_FILE, "a CA certificate file").map_err(err)
}

/// The fingerprint of a manifest's inputs (`sha256:<hex>`); reads them all.
pub fn inputs_fingerprint(manifest_path: &Path) -> Result<String, Error> {
    Ok(Inputs::read(manifest_path)?.fingerprint)
}

/// The content digest of a local file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathDigest {
    /// sha256 of the file, or of the directory's listing.
    pub sha256: Digest,
    /// Bytes of the file, or of all regular files under the directory.
    pub size: u64,
}

/// Hashes a file, or a directory tree. A directory's digest covers, for every entry below it
/// in byte order of names: its relative path and kind, a file's content, a symbolic link's
/// target (links are not followed). Like a file's digest, it leaves out modes, owners and
/// mtimes: the lock pins content; modes come from the manifest or the source at build time.
pub fn read_path_digest(path: &Path) -> Result<PathDigest, Error> {
    let meta = std::fs::metadata(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
    if meta.is_file() {
        let (sum, size) = hash_file(path)?;
        return Ok(PathDigest { sha256: Digest::from_sha256(sum), size });
    }
    if !meta.is_dir() {
        return Err(Error::NotAFile { path: path.to_path_buf() });
    }
    let mut hasher = Sha256::new();
    let mut size = 0;
    hash_tree(path, "", &mut hasher, &mut size)?;
    Ok(PathDigest { sha256: Digest::from_sha256(hasher.finalize().into()), size })
}

fn hash_tree(dir: &Path, prefix: &str, hasher: &mut Sha256, size: &mut u64) -> Result<(), Error> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Read { path, source }
    };
    let mut entries: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err(dir))? {
        let entry = entry.map_err(read_err(dir))?;
        entries.push((entry.file_name().to_string_lossy().into_owned(), entry.path()));
    }
    entries.sort();
    for (name, path) in entries {
        let rel = format!("{prefix}{name}");
        let meta = std::fs::symlink_metadata(&path).map_err(read_err(&path))?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = std::fs::read_link(&path).map_err(read_err(&path))?;
            hasher.update(format!("l\0{}\0{rel}\0", target.to_string_lossy()));
        } else if kind.is_dir() {
            hasher.update(format!("d\0{rel}\0"));
            hash_tree(&path, &format!("{rel}/"), hasher, size)?;
        } else if kind.is_file() {
            let (sum, len) = hash_file(&path)?;
            hasher.update(format!("f\0{}\0{rel}\0", hex::encode(sum)));
            *size += len;
        } else {
            return Err(Error::NotAFile { path });
        }
    }
    Ok(())
}

fn hash_file(path: &Path) -> Result<([u8; 32], u64), Error> {
    let read_err = |source| Error::Read { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hasher.finalize().into(), size))
}

fn digest_string(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(bytes))
}

/// Hashes a requirements file and, through its `-r`/`-c` lines, the files it includes.
fn read_requirements(
    manifest: &Manifest,
    path: &Path,
    from: Option<String>,
    files: &mut BTreeMap<String, String>,
) -> Result<(), Error> {
    let name = manifest.input_name(path);
    if files.contains_key(&name) {
        return Ok(());
    }
    let bytes = bounded::read_file(path, bounded::MAX_TEXT_FILE, "a requirements file").map_err(
        |source| match &from {
            Some(from) => Error::Include { from: from.clone(), path: path.to_path_buf(), source },
            None => Error::Read { path: path.to_path_buf(), source },
        },
    )?;
    files.insert(name.clone(), digest_string(&Sha256::digest(&bytes)));
    let base = path.parent().unwrap_or(Path::new(""));
    for (line, target) in includes(&String::from_utf8_lossy(&bytes)) {
        read_requirements(manifest, &base.join(&target), Some(format!("{name}:{line}")), files)?;
    }
    Ok(())
}

/// The files named by `-r`/`--requirement`/`-c`/`--constraint` lines, with their line
/// numbers: pip's comment and `\` continuation rules and `${VAR}` expansion; URLs skipped.
fn includes(text: &str) -> Vec<(usize, String)> {
    logical_lines(text)
        .into_iter()
        .filter_map(|(line, text)| Some((line, include_target(&text)?.to_string())))
        .filter(|(_, target)| !target.contains("://"))
        .collect()
}

fn include_target(line: &str) -> Option<&str> {
    for long in ["--requirement", "--constraint"] {
        if let Some(rest) = line.strip_prefix(long) {
            let value =
                rest.strip_prefix('=').or_else(|| rest.starts_with(char::is_whitespace).then_some(rest));
            return value.map(str::trim).filter(|v| !v.is_empty());
        }
    }
    for short in ["-r", "-c"] {
        if let Some(rest) = line.strip_prefix(short) {
            return Some(rest.trim()).filter(|v| !v.is_empty());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_lines() {
        let text = "numpy==1.26  # -r not-this.txt\n-r base.in\n--requirement=more.in\n\
                    -c constraints.txt # pinned\n--constraint \\\n  other.txt\n-rtight.in\n\
                    # -r commented.in\n-r https://example.invalid/remote.txt\n--requirements-typo x\n";
        let got: Vec<(usize, String)> = includes(text);
        let want =
            [(2, "base.in"), (3, "more.in"), (4, "constraints.txt"), (5, "other.txt"), (7, "tight.in")];
        assert_eq!(got, want.map(|(l, s)| (l, s.to_string())));
    }
}
