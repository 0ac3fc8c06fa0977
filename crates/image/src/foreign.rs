//! A layer this tool did not write itself (an entry of the registry layer cache, which anyone
//! with push rights to the cache repository can write) checked against what every layer
//! [`crate::LayerWriter`] writes: regular files, directories, symlinks and hard links to a
//! file earlier in the layer, at relative paths without `..`, none below a file or a symlink
//! of the same layer. A device node, a FIFO, an absolute or `..` path, a whiteout (which
//! deletes files of the layers below), a hard link out of the layer or a path through a
//! symlink is something our layers never hold: such a layer is refused, not used.
//!
//! Symlink targets are not checked: our own layers hold absolute and `..` targets (Debian's
//! `/etc/alternatives` links), and a runtime resolves them inside the container's root.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;

use safe_path::{Absolute, Refusal, Rules, Windows};

use crate::compress::Compression;

/// Why a layer is refused.
#[derive(Debug, thiserror::Error)]
pub enum ForeignLayerError {
    /// An entry our layers never hold.
    #[error("its entry `{path}` {reason}")]
    Entry {
        /// The entry's path, as the tar holds it (lossy UTF-8, control characters escaped
        /// by whoever prints it).
        path: String,
        /// What is wrong with it, as a phrase after the path.
        reason: String,
    },
    /// The layer does not decompress or is not a tar.
    #[error("it does not read as a tar: {0}")]
    Read(#[from] io::Error),
}

/// What an earlier entry of the layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Other,
}

const RULES: Rules = Rules { absolute: Absolute::Refuse, windows: Windows::Literal };

/// Reads the compressed layer `path` (at most `limit` bytes of tar) and refuses it unless
/// every entry is one that this tool's own layers hold (see the module docs).
pub fn check_foreign_layer(
    path: &Path,
    compression: Compression,
    limit: u64,
) -> Result<(), ForeignLayerError> {
    let file = io::BufReader::new(std::fs::File::open(path)?);
    let stream: Box<dyn Read> = match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(file)?),
    };
    check_tar(stream.take(limit))
}

/// [`check_foreign_layer`] of an uncompressed tar stream.
pub fn check_tar(stream: impl Read) -> Result<(), ForeignLayerError> {
    let mut archive = tar::Archive::new(stream);
    let mut seen: HashMap<Vec<u8>, Kind> = HashMap::new();
    for entry in archive.entries()? {
        let entry = entry?;
        let raw = entry.path_bytes().into_owned();
        let refuse = |reason: &str| ForeignLayerError::Entry {
            // A cache writer chose the path: one line of it, control characters escaped.
            path: String::from_utf8_lossy(&raw).escape_debug().to_string(),
            reason: reason.to_string(),
        };
        let parts =
            safe_path::normalize(raw.as_slice(), RULES).map_err(|refusal| refuse(refused(refusal)))?;
        let Some(name) = parts.last() else { return Err(refuse("names the root")) };
        if name.starts_with(b".wh.") {
            return Err(refuse("is a whiteout, which deletes files of the layers below"));
        }
        for depth in 1..parts.len() {
            let parent = parts[..depth].join(&b'/');
            if seen.get(&parent).is_some_and(|k| *k != Kind::Dir) {
                let parent = String::from_utf8_lossy(&parent).into_owned();
                return Err(refuse(&format!(
                    "lies below `{parent}`, which is not a directory in this layer"
                )));
            }
        }
        let kind = match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Other,
            tar::EntryType::Link => {
                let target = entry.link_name_bytes().unwrap_or_default();
                let target_parts = safe_path::normalize(target.as_ref(), RULES).map_err(|refusal| {
                    refuse(&format!("is a hard link whose target {}", refused(refusal)))
                })?;
                if seen.get(&target_parts.join(&b'/')) != Some(&Kind::File) {
                    let target = String::from_utf8_lossy(&target);
                    return Err(refuse(&format!(
                        "is a hard link to `{target}`, which is not a file earlier in this layer"
                    )));
                }
                Kind::File
            }
            tar::EntryType::Char | tar::EntryType::Block => return Err(refuse("is a device node")),
            tar::EntryType::Fifo => return Err(refuse("is a FIFO")),
            other => return Err(refuse(&format!("is a tar entry of type {other:?}"))),
        };
        // Only a directory may be given twice (as our layers never do otherwise).
        let before = seen.insert(parts.join(&b'/'), kind);
        if before.is_some_and(|before| before != Kind::Dir || kind != Kind::Dir) {
            return Err(refuse("appears twice"));
        }
    }
    Ok(())
}

fn refused(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::Absolute => "is an absolute path",
        Refusal::ParentDir | Refusal::Escapes => "climbs with `..`",
        Refusal::Nul => "holds a NUL byte",
        Refusal::Backslash | Refusal::DriveLetter => "is not a POSIX path",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar of `(path, type, link)` entries, written raw (no checks of the tar crate's).
    fn tar_of(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, link) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(0);
            header.set_mode(0o644);
            let name = &mut header.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            if !link.is_empty() {
                header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
            header.set_cksum();
            builder.append(&header, io::empty()).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// `(path, type, link target)` of each entry of a test tar.
    type Entries<'a> = &'a [(&'a str, tar::EntryType, &'a str)];

    fn check(entries: Entries<'_>) -> Result<(), String> {
        check_tar(tar_of(entries).as_slice()).map_err(|e| e.to_string())
    }

    use tar::EntryType::{Block, Char, Directory, Fifo, Link, Regular, Symlink};

    #[test]
    fn what_our_layers_hold_is_accepted() {
        let layer = [
            ("etc/", Directory, ""),
            ("etc/alternatives", Directory, ""),
            ("etc/alternatives/python", Symlink, "/usr/bin/python3.11"),
            ("usr/lib/libx.so", Symlink, "../../lib/libx.so.1"),
            ("usr/bin/python3.11", Regular, ""),
            ("usr/bin/python3", Link, "usr/bin/python3.11"),
            ("usr/", Directory, ""),
        ];
        assert_eq!(check(&layer), Ok(()));
    }

    #[test]
    fn a_layer_of_our_writer_passes_in_either_compression() {
        let dir = tempfile::tempdir().unwrap();
        for compression in [Compression::Gzip, Compression::Zstd] {
            let options = crate::LayerOptions { mtime: 0, keep_special_bits: true };
            let mut writer =
                crate::LayerWriter::new(dir.path(), options).unwrap().with_compression(compression);
            let long = format!("usr/lib/{}/x.py", "deep/".repeat(40));
            writer.add_file(&long, 0o644, &mut &b"print()"[..]).unwrap();
            writer.add_file("usr/bin/python3.11", 0o755, &mut &b"elf"[..]).unwrap();
            writer.add_hardlink("usr/bin/python3", "usr/bin/python3.11").unwrap();
            writer.add_symlink("etc/alternatives/python", "/usr/bin/python3.11").unwrap();
            writer.add_symlink("usr/lib/libx.so", "../../lib/libx.so.1").unwrap();
            let out = dir.path().join("layer");
            let info = writer.finish_to_file(&out).unwrap();
            check_foreign_layer(&out, compression, info.uncompressed_size).unwrap();
        }
    }

    #[test]
    fn what_our_layers_never_hold_is_refused() {
        let cases: &[(Entries<'_>, &str)] = &[
            (&[("dev/sda", Block, "")], "`dev/sda` is a device node"),
            (&[("dev/tty9", Char, "")], "is a device node"),
            (&[("run/pipe", Fifo, "")], "is a FIFO"),
            (&[("/etc/passwd", Regular, "")], "`/etc/passwd` is an absolute path"),
            (&[("usr/../../etc/x", Regular, "")], "climbs with `..`"),
            (&[("usr/lib/.wh.libc.so.6", Regular, "")], "is a whiteout"),
            (&[("x", Link, "/etc/shadow")], "hard link whose target is an absolute path"),
            (&[("x", Link, "../etc/shadow")], "hard link whose target climbs"),
            (&[("x", Link, "etc/shadow")], "not a file earlier in this layer"),
            (&[("etc", Symlink, "/host/etc"), ("etc/passwd", Regular, "")], "lies below `etc`"),
            (&[("a", Regular, ""), ("a", Regular, "")], "appears twice"),
            (&[("./", Directory, "")], "names the root"),
        ];
        for (entries, want) in cases {
            let got = check(entries).unwrap_err();
            assert!(got.contains(want), "{entries:?}: {got}");
        }
    }
}
