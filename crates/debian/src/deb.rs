//! Reading a `.deb`: an `ar` archive of `debian-binary`, `control.tar.*` and `data.tar.*`.
//!
//! [`Deb::visit_data`] streams the data archive entry by entry with normalized, checked
//! paths, so an image builder can turn a package into a tar layer without a root
//! filesystem on disk; [`crate::unpack`] uses the same stream to write one.

use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use safe_path::{Absolute, Refusal, Rules, Windows};

use crate::compress::FileCompression;
use crate::error::io_error;
use crate::Error;

/// The most a `.deb`'s control archive may expand to (64 MiB); it is read into memory, and
/// the largest real ones (an `md5sums` of tens of thousands of files) hold a few MiB.
/// A data archive may expand to [`bounded::ceiling_for`] its compressed size.
pub const MAX_CONTROL: u64 = 64 << 20;

/// What kind of file a data entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Directory,
    /// A regular file; its content follows in the reader.
    File,
    /// A symbolic link, with its target as written (relative or absolute).
    Symlink(String),
    /// A hard link to an earlier entry of the same package (a normalized path).
    HardLink(String),
    /// A character or block device, or a FIFO: recorded, never created.
    Special,
}

/// One entry of a package's data archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataEntry {
    /// The path relative to the root, without `./` or a leading `/` and without a trailing
    /// slash (`usr/bin/python3.9`). Never contains `..`; the root itself is `""`.
    pub path: String,
    /// The kind, with link targets.
    pub kind: EntryKind,
    /// Permission bits, including setuid/setgid/sticky.
    pub mode: u32,
    /// Owner id, as the header gives it (used when [`DataEntry::user`] is empty or unknown
    /// to the target system, as dpkg does).
    pub uid: u64,
    /// Group id, as the header gives it.
    pub gid: u64,
    /// Owner name from the header (`root`; empty when the header has none).
    pub user: String,
    /// Group name from the header (`shadow`; empty when the header has none).
    pub group: String,
    /// Size of a regular file's content.
    pub size: u64,
    /// Modification time (seconds since the epoch).
    pub mtime: u64,
}

/// The control archive of a package.
#[derive(Debug, Clone, Default)]
pub struct ControlFiles {
    /// The `control` file text.
    pub control: String,
    /// Every other member (`md5sums`, `conffiles`, `postinst`, `shlibs`, `triggers`, ...)
    /// by name, with its mode.
    pub others: Vec<(String, u32, Vec<u8>)>,
}

impl ControlFiles {
    /// A member other than `control`, by name.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.others.iter().find(|(n, _, _)| n == name).map(|(_, _, b)| b.as_slice())
    }

    /// The conffiles the package declares (absolute paths, `remove-on-upgrade` ones left out).
    pub fn conffiles(&self) -> Vec<String> {
        let text = self.get("conffiles").map(String::from_utf8_lossy).unwrap_or_default();
        text.lines().map(str::trim).filter(|l| l.starts_with('/')).map(|l| l.to_string()).collect()
    }
}

/// A `.deb` file on disk.
#[derive(Debug, Clone)]
pub struct Deb {
    path: PathBuf,
    package: String,
}

/// A member of an `ar` archive.
struct Member {
    name: String,
    size: u64,
}

impl Deb {
    /// A `.deb` at `path`; `package` names it in messages.
    pub fn new(path: impl Into<PathBuf>, package: &str) -> Deb {
        Deb { path: path.into(), package: package.to_string() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn malformed(&self, reason: impl Into<String>) -> Error {
        Error::Deb { path: format!("{} ({})", self.path.display(), self.package), reason: reason.into() }
    }

    /// Calls `f` with the member whose name starts with `prefix` (`control.tar`,
    /// `data.tar`), decompressed.
    fn with_member<T>(
        &self,
        prefix: &str,
        f: impl FnOnce(&mut dyn Read, &str) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let file = std::fs::File::open(&self.path).map_err(io_error("open", &self.path))?;
        let mut r = BufReader::with_capacity(256 * 1024, file);
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic).map_err(|_| self.malformed("not an ar archive (too short)"))?;
        if &magic != b"!<arch>\n" {
            return Err(self.malformed("not an ar archive (bad magic)"));
        }
        let mut first = true;
        loop {
            let Some(member) = self.read_member_header(&mut r)? else {
                return Err(self.malformed(format!("no {prefix}.* member")));
            };
            if first && member.name != "debian-binary" {
                return Err(self.malformed("the first member is not debian-binary"));
            }
            if first {
                let mut version = String::new();
                (&mut r)
                    .take(member.size)
                    .read_to_string(&mut version)
                    .map_err(io_error("read", &self.path))?;
                if !version.starts_with("2.") {
                    return Err(self.malformed(format!("unsupported format version `{}`", version.trim())));
                }
                skip_padding(&mut r, member.size).map_err(io_error("read", &self.path))?;
                first = false;
                continue;
            }
            if member.name.starts_with(prefix) {
                let compression = FileCompression::from_name(&member.name)
                    .ok_or_else(|| self.malformed(format!("unsupported compression of {}", member.name)))?;
                let limited = (&mut r).take(member.size);
                let label = self.member_label(&member.name);
                let decoder = compression
                    .decoder(limited)
                    .map_err(|source| Error::Decompress { file: label.clone(), source })?;
                // Nothing claims what a member expands to: a ceiling keeps a bomb from
                // costing minutes of decompression and gigabytes of disk (or, read into
                // memory as the control archive is, the process).
                let ceiling = match prefix {
                    "control.tar" => MAX_CONTROL,
                    _ => bounded::ceiling_for(member.size),
                };
                return f(&mut bounded::Reader::ceiling(decoder, ceiling, label), &member.name);
            }
            io::copy(&mut (&mut r).take(member.size), &mut io::sink())
                .map_err(io_error("read", &self.path))?;
            skip_padding(&mut r, member.size).map_err(io_error("read", &self.path))?;
        }
    }

    fn member_label(&self, member: &str) -> String {
        format!("{} of {}", member, self.path.display())
    }

    fn read_member_header(&self, r: &mut impl Read) -> Result<Option<Member>, Error> {
        let mut header = [0u8; 60];
        let mut got = 0;
        while got < 60 {
            let n = r.read(&mut header[got..]).map_err(io_error("read", &self.path))?;
            if n == 0 {
                break;
            }
            got += n;
        }
        if got == 0 {
            return Ok(None);
        }
        if got < 60 || &header[58..60] != b"`\n" {
            return Err(self.malformed("truncated or malformed ar member header"));
        }
        let name = String::from_utf8_lossy(&header[..16]).trim_end().trim_end_matches('/').to_string();
        let size = std::str::from_utf8(&header[48..58])
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| self.malformed(format!("bad size in the header of member `{name}`")))?;
        Ok(Some(Member { name, size }))
    }

    /// Reads the control archive.
    pub fn read_control(&self) -> Result<ControlFiles, Error> {
        self.with_member("control.tar", |reader, member| {
            let label = self.member_label(member);
            let mut archive = tar::Archive::new(reader);
            let mut out = ControlFiles::default();
            let mut seen_control = false;
            let entries =
                archive.entries().map_err(|source| Error::Decompress { file: label.clone(), source })?;
            for entry in entries {
                let mut entry = entry.map_err(|source| Error::Decompress { file: label.clone(), source })?;
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let raw = entry.path_bytes().into_owned();
                let name = String::from_utf8_lossy(&raw).trim_start_matches("./").to_string();
                if name.contains('/') || name.is_empty() {
                    continue;
                }
                let mode = entry.header().mode().unwrap_or(0o644);
                let mut bytes = Vec::new();
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|source| Error::Decompress { file: label.clone(), source })?;
                if name == "control" {
                    out.control =
                        String::from_utf8(bytes).map_err(|_| self.malformed("control is not UTF-8"))?;
                    seen_control = true;
                } else {
                    out.others.push((name, mode, bytes));
                }
            }
            if !seen_control {
                return Err(self.malformed("the control archive has no control file"));
            }
            out.others.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(out)
        })
    }

    /// Streams the data archive: `f` gets each entry (paths checked and normalized) and a
    /// reader of its content (empty for anything but a regular file).
    pub fn visit_data(
        &self,
        mut f: impl FnMut(&DataEntry, &mut dyn Read) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.with_member("data.tar", |reader, member| {
            let label = self.member_label(member);
            let decompress = |source| Error::Decompress { file: label.clone(), source };
            let mut archive = tar::Archive::new(reader);
            for entry in archive.entries().map_err(decompress)? {
                let mut entry = entry.map_err(decompress)?;
                let raw = entry.path_bytes().into_owned();
                let raw = String::from_utf8_lossy(&raw).into_owned();
                let path = checked(&raw).map_err(|reason| Error::UnsafePath {
                    package: self.package.clone(),
                    path: raw.clone(),
                    reason,
                })?;
                let header = entry.header();
                let link = || -> Result<String, Error> {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .ok_or_else(|| self.malformed(format!("link `{raw}` has no target")))?;
                    Ok(target)
                };
                let kind = match header.entry_type() {
                    tar::EntryType::Directory => EntryKind::Directory,
                    tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
                    tar::EntryType::Symlink => EntryKind::Symlink(link()?),
                    tar::EntryType::Link => {
                        let target = link()?;
                        let normalized = normalize(&target).filter(|t| !t.is_empty()).ok_or_else(|| {
                            Error::UnsafePath {
                                package: self.package.clone(),
                                path: format!("{raw} -> {target}"),
                                reason: "a hard link to a path outside the package root",
                            }
                        })?;
                        EntryKind::HardLink(normalized)
                    }
                    tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => EntryKind::Special,
                    // PAX and GNU long-name headers are consumed by the tar crate.
                    _ => continue,
                };
                if path.is_empty() && kind != EntryKind::Directory {
                    return Err(Error::UnsafePath {
                        package: self.package.clone(),
                        path: raw,
                        reason: "the root must be a directory",
                    });
                }
                let data_entry = DataEntry {
                    path,
                    mode: header.mode().unwrap_or(0o644) & 0o7777,
                    uid: header.uid().unwrap_or(0),
                    gid: header.gid().unwrap_or(0),
                    user: name_field(header.username_bytes()),
                    group: name_field(header.groupname_bytes()),
                    size: if kind == EntryKind::File { header.size().unwrap_or(0) } else { 0 },
                    mtime: header.mtime().unwrap_or(0),
                    kind,
                };
                f(&data_entry, &mut entry)?;
            }
            Ok(())
        })
    }
}

/// An owner name field of a tar header (absent in old-style headers).
fn name_field(bytes: Option<&[u8]>) -> String {
    bytes.map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default()
}

fn skip_padding(r: &mut impl Read, size: u64) -> io::Result<()> {
    if size % 2 == 1 {
        let mut pad = [0u8; 1];
        // The last member may lack its padding byte.
        let _ = r.read(&mut pad)?;
    }
    Ok(())
}

/// Normalizes a path from a data archive: drops `./`, leading `/`, empty and `.` parts and
/// a trailing slash. `None` if any part is `..` (dpkg refuses those too) or it holds a NUL.
pub fn normalize(raw: &str) -> Option<String> {
    checked(raw).ok()
}

/// [`normalize`], with why a path is refused (in [`Error::UnsafePath`]'s wording).
fn checked(raw: &str) -> Result<String, &'static str> {
    const RULES: Rules = Rules { absolute: Absolute::FromRoot, windows: Windows::Literal };
    match safe_path::normalize(raw, RULES) {
        Ok(parts) => Ok(parts.join("/")),
        Err(Refusal::Nul) => Err("it contains a NUL byte"),
        Err(Refusal::ParentDir | Refusal::Escapes) => Err("it contains `..`"),
        Err(Refusal::Absolute | Refusal::Backslash | Refusal::DriveLetter) => Err("it leaves the root"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize("./usr/bin/").as_deref(), Some("usr/bin"));
        assert_eq!(normalize("/etc//passwd").as_deref(), Some("etc/passwd"));
        assert_eq!(normalize("./").as_deref(), Some(""));
        assert_eq!(normalize("./usr/../../etc"), None);
        assert_eq!(normalize("a/b/.."), None);
        assert_eq!(normalize("usr/\0bin"), None);
        assert_eq!(checked("usr/\0bin"), Err("it contains a NUL byte"));
    }
}
