//! Reading a wheel's `METADATA` without downloading the wheel: range requests into the zip.
//!
//! A zip ends with the End Of Central Directory record, which locates the central
//! directory, which locates each member's local header and data. So: the last ~64 KiB
//! (EOCD, often the whole central directory and, since `.dist-info` is written last, often
//! METADATA itself), then the central directory if it starts earlier, then METADATA's bytes
//! if they are not in hand yet. Every offset and size read from the file is checked against
//! the file's size and our limits before it is used.

use std::io::{Read, Seek};
use std::str::FromStr;

use bytes::Bytes;
use fetch::{ByteRange, RangeReply};
use pep_types::{PackageName, Version, WheelFilename};
use url::Url;

use crate::Error;

/// Enough for the EOCD (22 bytes), the longest zip comment (65,535), and the zip64 locator.
const TAIL: u64 = 22 + 65_535 + 20;
/// A central directory larger than this is not a wheel we want to read by ranges.
const MAX_CENTRAL_DIRECTORY: u64 = 64 * 1024 * 1024;
/// METADATA files are a few KiB; this bounds what a hostile file can make us inflate.
pub(crate) const MAX_METADATA: u64 = 16 * 1024 * 1024;
/// Local headers may carry extra fields the central directory does not: read this much more.
const LOCAL_SLACK: u64 = 1024;

const EOCD_SIG: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
const ZIP64_LOCATOR_SIG: [u8; 4] = [0x50, 0x4b, 0x06, 0x07];
const ZIP64_EOCD_SIG: [u8; 4] = [0x50, 0x4b, 0x06, 0x06];
const CENTRAL_SIG: [u8; 4] = [0x50, 0x4b, 0x01, 0x02];
const LOCAL_SIG: [u8; 4] = [0x50, 0x4b, 0x03, 0x04];

/// What reading by ranges gave.
pub(crate) enum RangeRead {
    /// The METADATA bytes.
    Metadata(Vec<u8>),
    /// The server sent the whole file instead.
    Whole(Bytes),
    /// The server does not do ranges: download the file.
    Unsupported,
}

/// Why a ranged read stopped early.
enum Stop {
    Whole(Bytes),
    Unsupported,
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Failed(e)
    }
}

/// Reads METADATA from a remote wheel with range requests.
pub(crate) async fn read_metadata_by_ranges(
    http: &fetch::Client,
    url: &Url,
    wheel: &WheelFilename,
    filename: &str,
) -> Result<RangeRead, Error> {
    let mut reader = RangedFile { http, url, filename, total: 0, chunks: Vec::new() };
    match reader.metadata(wheel).await {
        Ok(bytes) => Ok(RangeRead::Metadata(bytes)),
        Err(Stop::Whole(bytes)) => Ok(RangeRead::Whole(bytes)),
        Err(Stop::Unsupported) => Ok(RangeRead::Unsupported),
        Err(Stop::Failed(e)) => Err(e),
    }
}

/// A remote file read by ranges, keeping every piece fetched so far.
struct RangedFile<'a> {
    http: &'a fetch::Client,
    url: &'a Url,
    filename: &'a str,
    total: u64,
    chunks: Vec<(u64, Bytes)>,
}

/// A central directory entry, with the fields we need.
struct Entry {
    name: String,
    flags: u16,
    method: u16,
    crc32: u32,
    compressed: u64,
    uncompressed: u64,
    local_offset: u64,
}

impl RangedFile<'_> {
    fn bad(&self, reason: impl Into<String>) -> Stop {
        Stop::Failed(Error::BadWheel { filename: self.filename.to_string(), reason: reason.into() })
    }

    async fn fetch(&mut self, range: ByteRange) -> Result<(), Stop> {
        let reply = self
            .http
            .get_range(self.url, range)
            .await
            .map_err(|source| Error::File { filename: self.filename.to_string(), source })?;
        match reply {
            RangeReply::Partial { start, total, body } => {
                if self.total != 0 && total != self.total {
                    return Err(self.bad("the file changed size between two range requests"));
                }
                self.total = total;
                self.chunks.push((start, body));
                Ok(())
            }
            RangeReply::Whole(body) => Err(Stop::Whole(body)),
            RangeReply::Unsupported => Err(Stop::Unsupported),
        }
    }

    /// `len` bytes at `offset`, from a piece in hand or with one more request.
    async fn read(&mut self, offset: u64, len: u64) -> Result<Bytes, Stop> {
        let end = offset.checked_add(len).filter(|&end| end <= self.total).ok_or_else(|| {
            self.bad(format!(
                "a record at {offset} (+{len}) lies past the end of the file ({} bytes)",
                self.total
            ))
        })?;
        if let Some(bytes) = self.cached(offset, end) {
            return Ok(bytes);
        }
        if len == 0 {
            return Ok(Bytes::new());
        }
        self.fetch(ByteRange::Span { start: offset, end_inclusive: end - 1 }).await?;
        self.cached(offset, end).ok_or_else(|| self.bad("the server sent another range than asked"))
    }

    fn cached(&self, offset: u64, end: u64) -> Option<Bytes> {
        self.chunks.iter().find_map(|(start, body)| {
            let chunk_end = start + body.len() as u64;
            (*start <= offset && end <= chunk_end)
                .then(|| body.slice((offset - start) as usize..(end - start) as usize))
        })
    }

    async fn metadata(&mut self, wheel: &WheelFilename) -> Result<Vec<u8>, Stop> {
        self.fetch(ByteRange::Suffix(TAIL)).await?;
        let (tail_start, tail) = self.chunks[0].clone();
        let eocd_at = find_eocd(&tail).ok_or_else(|| self.bad("no end of central directory record"))?;
        let eocd = &tail[eocd_at..];
        let mut entries = u64::from(le16(eocd, 10));
        let mut cd_size = u64::from(le32(eocd, 12));
        let mut cd_offset = u64::from(le32(eocd, 16));
        let mut cd_end_limit = tail_start + eocd_at as u64;
        if entries == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
            let locator_at = (tail_start + eocd_at as u64)
                .checked_sub(20)
                .ok_or_else(|| self.bad("zip64 locator missing"))?;
            let locator = self.read(locator_at, 20).await?;
            if locator[..4] != ZIP64_LOCATOR_SIG {
                return Err(self.bad("zip64 locator missing"));
            }
            let record_at = le64(&locator, 8);
            let record = self.read(record_at, 56).await?;
            if record[..4] != ZIP64_EOCD_SIG {
                return Err(self.bad("zip64 end of central directory record missing"));
            }
            entries = le64(&record, 32);
            cd_size = le64(&record, 40);
            cd_offset = le64(&record, 48);
            cd_end_limit = record_at;
        }
        if cd_size > MAX_CENTRAL_DIRECTORY {
            return Err(self.bad(format!("central directory of {cd_size} bytes is too large")));
        }
        if cd_offset.checked_add(cd_size).is_none_or(|end| end > cd_end_limit) {
            return Err(self.bad("central directory overlaps its end record"));
        }
        let directory = self.read(cd_offset, cd_size).await?;
        let entries = parse_central_directory(&directory, entries).map_err(|reason| self.bad(reason))?;
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let chosen = pick_metadata(&names, wheel).map_err(|reason| self.bad(reason))?;
        let entry = &entries[chosen];
        self.member(entry).await
    }

    /// Reads and inflates one member, checking its size and CRC.
    async fn member(&mut self, entry: &Entry) -> Result<Vec<u8>, Stop> {
        if entry.flags & 1 != 0 {
            return Err(self.bad(format!("{} is encrypted", entry.name)));
        }
        if entry.uncompressed > MAX_METADATA || entry.compressed > MAX_METADATA {
            return Err(self.bad(format!("{} is larger than {MAX_METADATA} bytes", entry.name)));
        }
        // Ask for header, name, data and some slack at once; a longer local extra field
        // than expected costs one more request.
        let guess = (30 + entry.name.len() as u64 + LOCAL_SLACK + entry.compressed)
            .min(self.total.saturating_sub(entry.local_offset));
        if self.cached(entry.local_offset, entry.local_offset + guess).is_none() {
            self.read(entry.local_offset, guess).await?;
        }
        let header = self.read(entry.local_offset, 30).await?;
        if header[..4] != LOCAL_SIG {
            return Err(self.bad(format!("no local header for {} at {}", entry.name, entry.local_offset)));
        }
        let data_at = entry.local_offset + 30 + u64::from(le16(&header, 26)) + u64::from(le16(&header, 28));
        let data = self.read(data_at, entry.compressed).await?;
        inflate(&data, entry).map_err(|reason| self.bad(reason))
    }
}

/// The position of the EOCD record in `tail`: the last signature whose comment length
/// reaches exactly the end of the file.
fn find_eocd(tail: &[u8]) -> Option<usize> {
    let last = tail.len().checked_sub(22)?;
    (0..=last)
        .rev()
        .find(|&at| tail[at..at + 4] == EOCD_SIG && at + 22 + usize::from(le16(tail, at + 20)) == tail.len())
}

fn parse_central_directory(cd: &[u8], expected: u64) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    let mut at = 0usize;
    while at + 46 <= cd.len() && cd[at..at + 4] == CENTRAL_SIG {
        let (name_len, extra_len, comment_len) =
            (usize::from(le16(cd, at + 28)), usize::from(le16(cd, at + 30)), usize::from(le16(cd, at + 32)));
        let name_end = at + 46 + name_len;
        let extra_end = name_end + extra_len;
        if extra_end + comment_len > cd.len() {
            return Err("a central directory entry runs past the directory".to_string());
        }
        let mut entry = Entry {
            name: String::from_utf8_lossy(&cd[at + 46..name_end]).into_owned(),
            flags: le16(cd, at + 8),
            method: le16(cd, at + 10),
            crc32: le32(cd, at + 16),
            compressed: u64::from(le32(cd, at + 20)),
            uncompressed: u64::from(le32(cd, at + 24)),
            local_offset: u64::from(le32(cd, at + 42)),
        };
        apply_zip64_extra(&mut entry, &cd[name_end..extra_end]);
        entries.push(entry);
        at = extra_end + comment_len;
    }
    if (entries.len() as u64) < expected.min(u64::from(u32::MAX)) {
        return Err(format!("the central directory lists {} of {expected} entries", entries.len()));
    }
    Ok(entries)
}

/// Sizes and offsets that do not fit 32 bits live in the zip64 extra field (id 1), in a
/// fixed order, present only for the fields that hold 0xFFFFFFFF.
fn apply_zip64_extra(entry: &mut Entry, mut extra: &[u8]) {
    while extra.len() >= 4 {
        let (id, len) = (le16(extra, 0), usize::from(le16(extra, 2)));
        let Some(data) = extra.get(4..4 + len) else { return };
        if id == 1 {
            let mut values = data.chunks_exact(8).map(|c| le64(c, 0));
            for field in [&mut entry.uncompressed, &mut entry.compressed, &mut entry.local_offset] {
                if *field == 0xFFFF_FFFF {
                    match values.next() {
                        Some(value) => *field = value,
                        None => return,
                    }
                }
            }
            return;
        }
        extra = &extra[4 + len..];
    }
}

fn inflate(data: &[u8], entry: &Entry) -> Result<Vec<u8>, String> {
    let out = match entry.method {
        0 => data.to_vec(),
        8 => {
            let mut out = Vec::new();
            let claimed = entry.uncompressed.min(MAX_METADATA);
            bounded::Reader::claimed(flate2::read::DeflateDecoder::new(data), claimed, entry.name.as_str())
                .read_to_end(&mut out)
                .map_err(|e| format!("{} cannot be inflated: {e}", entry.name))?;
            out
        }
        other => {
            return Err(format!(
                "{} uses compression method {other}; only stored and deflate are supported",
                entry.name
            ))
        }
    };
    if out.len() as u64 != entry.uncompressed {
        return Err(format!(
            "{} has {} bytes, the directory says {}",
            entry.name,
            out.len(),
            entry.uncompressed
        ));
    }
    let mut crc = flate2::Crc::new();
    crc.update(&out);
    if crc.sum() != entry.crc32 {
        return Err(format!("{} fails its CRC check", entry.name));
    }
    Ok(out)
}

/// Chooses `<name>-<version>.dist-info/METADATA` among the archive's member names: a
/// top-level `.dist-info` directory whose name part normalizes to the project (as pip
/// checks), the one whose version matches the file name if there are several.
pub(crate) fn pick_metadata(names: &[&str], wheel: &WheelFilename) -> Result<usize, String> {
    let candidates: Vec<(usize, &str)> = names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| Some((i, n.strip_suffix(".dist-info/METADATA")?)))
        .filter(|(_, dir)| !dir.contains('/'))
        .collect();
    let matching: Vec<(usize, Option<Version>)> = candidates
        .iter()
        .filter_map(|&(i, dir)| {
            // The name part may (in old wheels) hold dashes: try each split point.
            dir.match_indices('-').find_map(|(at, _)| {
                let name = PackageName::from_str(&dir[..at]).ok()?;
                (name == wheel.name).then(|| (i, Version::from_str(&dir[at + 1..]).ok()))
            })
        })
        .collect();
    match matching.as_slice() {
        [] if candidates.is_empty() => Err("it has no .dist-info/METADATA".to_string()),
        [] => {
            Err(format!("its .dist-info directory `{}` is not named after {}", candidates[0].1, wheel.name))
        }
        [(i, _)] => Ok(*i),
        several => several
            .iter()
            .find(|(_, v)| v.as_ref() == Some(&wheel.version))
            .map(|(i, _)| *i)
            .ok_or_else(|| "it has several .dist-info directories".to_string()),
    }
}

/// Reads METADATA from a whole wheel (downloaded, or a local file).
pub(crate) fn read_metadata_from_archive<R: Read + Seek>(
    reader: R,
    wheel: &WheelFilename,
    filename: &str,
) -> Result<Vec<u8>, Error> {
    let zip_error = |source| Error::Zip { filename: filename.to_string(), source };
    let mut archive = zip::ZipArchive::new(reader).map_err(zip_error)?;
    let names: Vec<String> = archive.file_names().map(str::to_string).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let chosen = pick_metadata(&refs, wheel)
        .map_err(|reason| Error::BadWheel { filename: filename.to_string(), reason })?;
    let member = archive.by_name(&names[chosen]).map_err(zip_error)?;
    if member.size() > MAX_METADATA {
        return Err(Error::BadWheel {
            filename: filename.to_string(),
            reason: format!("{} is larger than {MAX_METADATA} bytes", names[chosen]),
        });
    }
    let (size, what) = (member.size(), names[chosen].as_str());
    let mut out = Vec::new();
    bounded::Reader::claimed(member, size, what).read_to_end(&mut out).map_err(|e| Error::BadWheel {
        filename: filename.to_string(),
        reason: format!("{}: {e}", names[chosen]),
    })?;
    Ok(out)
}

/// Our zip readers on one in-memory file, for the fuzz targets (`crates/fuzz`): METADATA
/// through the `zip` crate, and the end-of-central-directory and central-directory parsers
/// the range reader uses. Not an API.
#[doc(hidden)]
pub fn fuzz_zip(bytes: &[u8]) {
    let Ok(wheel) = WheelFilename::from_str("demo-1.0-py3-none-any.whl") else { return };
    let _ = read_metadata_from_archive(std::io::Cursor::new(bytes), &wheel, "demo-1.0-py3-none-any.whl");
    if let Some(at) = find_eocd(bytes) {
        let (count, offset) = (u64::from(le16(bytes, at + 10)), le32(bytes, at + 16) as usize);
        if let Ok(entries) = parse_central_directory(bytes.get(offset..at).unwrap_or_default(), count) {
            let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            let _ = pick_metadata(&names, &wheel);
            for entry in &entries {
                let _ = inflate(
                    bytes.get(..entry.compressed.min(bytes.len() as u64) as usize).unwrap_or_default(),
                    entry,
                );
            }
        }
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_projects_dist_info() {
        let wheel: WheelFilename = "Foo_Bar-1.0-py3-none-any.whl".parse().unwrap();
        let names = ["foo_bar/__init__.py", "foo_bar-1.0.dist-info/RECORD", "foo_bar-1.0.dist-info/METADATA"];
        assert_eq!(pick_metadata(&names, &wheel), Ok(2));
        let nested = ["vendored/x-1.0.dist-info/METADATA", "Foo.Bar-1.0.dist-info/METADATA"];
        assert_eq!(pick_metadata(&nested, &wheel), Ok(1));
        let two = ["foo_bar-0.9.dist-info/METADATA", "foo_bar-1.0.dist-info/METADATA"];
        assert_eq!(pick_metadata(&two, &wheel), Ok(1));
        assert!(pick_metadata(&["other-1.0.dist-info/METADATA"], &wheel).is_err());
        assert!(pick_metadata(&["foo_bar/__init__.py"], &wheel).is_err());
    }

    #[test]
    fn eocd_with_comment() {
        let mut tail = vec![0u8; 10];
        tail.extend_from_slice(&EOCD_SIG);
        tail.extend_from_slice(&[0u8; 16]);
        tail.extend_from_slice(&3u16.to_le_bytes());
        tail.extend_from_slice(b"abc");
        assert_eq!(find_eocd(&tail), Some(10));
        assert_eq!(find_eocd(&tail[..tail.len() - 1]), None);
    }
}
