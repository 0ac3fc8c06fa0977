//! The one place that bounds what a read may produce, so that no input makes the tool spend
//! minutes or gigabytes on it.
//!
//! - Decompression goes through a [`Reader`] that stops at the size the data claims (a
//!   registry-cache entry's uncompressed size, a zip member's size) or, where nothing claims
//!   one (a `.deb` member, a `.tar.gz` sdist, a `[[file]]` archive), at a ceiling derived from
//!   the compressed size ([`ceiling_for`]). One byte past the bound is an error ([`TooLarge`]),
//!   so a 3 MB stream that would expand to 100 GB costs what the bound costs, not the 100 GB.
//! - Local files a user names (requirements, constraints, manifest, lock, keys, Docker's and
//!   pip's configuration, netrc) are read with [`read_file`] / [`read_file_to_string`], which
//!   stop at a limit ([`MAX_TEXT_FILE`], [`MAX_KEY_FILE`], [`MAX_KEYRING`]), so `-r /dev/zero` is an error
//!   naming the file, not memory growth until the kernel kills the process.
//!
//! Errors are `io::Error`s of kind `InvalidData` carrying a [`TooLarge`], so they pass through
//! decoders and archive readers unchanged; [`too_large`] finds it again.

use std::fmt;
use std::io::{self, Read};
use std::path::Path;

const MIB: u64 = 1 << 20;

/// The most a user's text file may hold (64 MiB): requirements and constraints files, the
/// manifest, the lock, pip's configuration, netrc, Docker's `config.json`. The largest real
/// ones (a lock of a full ML image) are under 1 MiB.
pub const MAX_TEXT_FILE: u64 = 64 * MIB;

/// The most a key file (a PEM private or public key) may hold (64 KiB); real ones are a few
/// hundred bytes.
pub const MAX_KEY_FILE: u64 = 64 * 1024;

/// The most an OpenPGP keyring may hold (16 MiB); Debian's archive keyring is under 100 KiB.
pub const MAX_KEYRING: u64 = 16 * MIB;

/// How many times its compressed size an archive member whose expanded size nothing claims
/// may expand to (100), above [`MIN_CEILING`]. Real `.deb` data, sdists and archives expand
/// 2 to 20 times; a stream of zeros expands about 1,000 times (gzip) or 30,000 times (zstd).
pub const MAX_RATIO: u64 = 100;

/// The least ceiling of a member whose expanded size nothing claims (256 MiB), whatever its
/// compressed size.
pub const MIN_CEILING: u64 = 256 * MIB;

/// The ceiling of a stream whose expanded size nothing claims, from its compressed size:
/// `compressed` × [`MAX_RATIO`], at least [`MIN_CEILING`].
pub fn ceiling_for(compressed: u64) -> u64 {
    compressed.saturating_mul(MAX_RATIO).max(MIN_CEILING)
}

/// What a read was bounded by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The size the data claims for itself (exactly this many bytes are allowed).
    Claimed(u64),
    /// A ceiling where nothing claims a size (see [`ceiling_for`]).
    Ceiling(u64),
    /// The size limit of a local file of this kind.
    File(u64),
}

/// A read that went past its bound: the error inside the `io::Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    /// What was read, as the reader was told (`data.tar.zst of libfoo_1.0_amd64.deb`).
    pub what: String,
    /// The bound it passed.
    pub bound: Bound,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = &self.what;
        match self.bound {
            Bound::Claimed(n) => write!(
                f,
                "{what} expands past its claimed {} bytes: it is corrupt or a decompression bomb, \
                 and none of it is used",
                n
            ),
            Bound::Ceiling(n) => write!(
                f,
                "{what} expands past {} ({n} bytes), the most read of a stream whose size nothing \
                 claims: it is corrupt or a decompression bomb",
                human(n)
            ),
            Bound::File(n) => write!(
                f,
                "{what} is larger than {} ({n} bytes), the most read of such a file: is it the \
                 right file (not a device or an endless stream)?",
                human(n)
            ),
        }
    }
}

impl std::error::Error for TooLarge {}

/// The [`TooLarge`] inside `error`, if it is one of ours.
pub fn too_large(error: &io::Error) -> Option<&TooLarge> {
    error.get_ref().and_then(|e| e.downcast_ref::<TooLarge>())
}

/// `n` bytes in KiB, MiB or GiB when it is a whole number of them.
fn human(n: u64) -> String {
    for (unit, size) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n >= size && n % size == 0 {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} bytes")
}

/// A reader that yields at most its bound and fails, rather than yield one byte more.
///
/// Wrap the decoder (not the compressed input) in it: what it bounds is what the data
/// expands to. A stream of exactly the claimed size reads to its end as usual.
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    left: u64,
    bound: Bound,
    what: String,
}

impl<R: Read> Reader<R> {
    /// Bounds `inner` by the `size` the data claims for itself; `what` names it in the error.
    pub fn claimed(inner: R, size: u64, what: impl Into<String>) -> Reader<R> {
        Reader { inner, left: size, bound: Bound::Claimed(size), what: what.into() }
    }

    /// Bounds `inner` by a ceiling, where nothing claims a size (see [`ceiling_for`]).
    pub fn ceiling(inner: R, limit: u64, what: impl Into<String>) -> Reader<R> {
        Reader { inner, left: limit, bound: Bound::Ceiling(limit), what: what.into() }
    }

    /// The error this reader gives once its bound is passed.
    fn error(&self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, TooLarge { what: self.what.clone(), bound: self.bound })
    }

    /// The reader inside.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // One byte past what is left tells a stream that is too large from one that fits.
        let room = usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX).min(buf.len());
        let n = self.inner.read(&mut buf[..room])?;
        if n as u64 > self.left {
            return Err(self.error());
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The bytes of the local file `path`, refused (a [`TooLarge`] of [`Bound::File`]) past
/// `limit` bytes; `what` names the kind of file in the error (`the requirements file`).
/// Reads at most `limit + 1` bytes of a device or pipe; a regular file larger than `limit`
/// is refused before any of it is read.
pub fn read_file(path: &Path, limit: u64, what: &str) -> io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_file() && meta.len() > limit {
        return Err(file_too_large(limit, what));
    }
    let mut bytes = Vec::with_capacity(if meta.is_file() { meta.len() as usize } else { 0 });
    read_into(file, limit, what, &mut bytes)?;
    Ok(bytes)
}

/// All of `reader` (standard input, a pipe), refused as [`read_file`] refuses a file past
/// `limit` bytes.
pub fn read_all(reader: impl Read, limit: u64, what: &str) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    read_into(reader, limit, what, &mut bytes)?;
    Ok(bytes)
}

fn read_into(reader: impl Read, limit: u64, what: &str, bytes: &mut Vec<u8>) -> io::Result<()> {
    reader.take(limit.saturating_add(1)).read_to_end(bytes)?;
    if bytes.len() as u64 > limit {
        return Err(file_too_large(limit, what));
    }
    Ok(())
}

fn file_too_large(limit: u64, what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, TooLarge { what: what.to_string(), bound: Bound::File(limit) })
}

/// The text of the local file `path`, as [`read_file`] reads it; not UTF-8 is an
/// `InvalidData` error, as `std::fs::read_to_string` gives.
pub fn read_file_to_string(path: &Path, limit: u64, what: &str) -> io::Result<String> {
    String::from_utf8(read_file(path, limit, what)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_of_the_claimed_size_reads_and_one_byte_more_fails() {
        let data = vec![7u8; 10_000];
        let mut out = Vec::new();
        Reader::claimed(&data[..], 10_000, "x").read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        let err = Reader::claimed(&data[..], 9_999, "member x").read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let too = too_large(&err).unwrap();
        assert_eq!(too.bound, Bound::Claimed(9_999));
        assert!(err.to_string().contains("member x expands past its claimed 9999 bytes"), "{err}");
        // A shorter stream is not this reader's business (the caller checks sizes it needs).
        Reader::claimed(&data[..], 20_000, "x").read_to_end(&mut Vec::new()).unwrap();
    }

    #[test]
    fn an_endless_stream_stops_at_the_ceiling() {
        let err = Reader::ceiling(io::repeat(0), 1 << 20, "zeros").read_to_end(&mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("zeros expands past 1 MiB (1048576 bytes)"), "{err}");
        assert_eq!(ceiling_for(1), MIN_CEILING);
        assert_eq!(ceiling_for(10 << 20), 1000 << 20);
        assert_eq!(ceiling_for(u64::MAX), u64::MAX);
    }

    #[test]
    fn local_files_are_read_up_to_their_limit() {
        let dir = std::env::temp_dir().join(format!("bounded-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.txt");
        std::fs::write(&path, "hello\n").unwrap();
        assert_eq!(read_file_to_string(&path, 6, "the file").unwrap(), "hello\n");
        let err = read_file(&path, 5, "the requirements file").unwrap_err();
        assert!(err.to_string().starts_with("the requirements file is larger than 5 bytes"), "{err}");
        let err = read_file(Path::new("/dev/zero"), 1 << 16, "the lock").unwrap_err();
        assert_eq!(too_large(&err).unwrap().bound, Bound::File(1 << 16));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
