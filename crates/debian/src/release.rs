//! `Release` / `InRelease`: the signed list of a suite's index files and their hashes.
//!
//! The signature is checked with `gpgv` and the archive keyring, as apt does, and only the
//! text that gpgv reports as signed is parsed (never the clear-signed wrapper itself).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::deb822;
use crate::error::io_error;
use crate::Error;

/// One file listed in the `SHA256` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseFile {
    /// The path under `dists/<suite>/`.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its sha256, lower-case hex.
    pub sha256: String,
}

/// The fields of a `Release` file that matter here.
#[derive(Debug, Clone, Default)]
pub struct Release {
    /// `Suite` (`stable`, `oldstable`, ...).
    pub suite: Option<String>,
    /// `Codename` (`bullseye`, ...).
    pub codename: Option<String>,
    /// `Architectures`.
    pub architectures: Vec<String>,
    /// `Components`.
    pub components: Vec<String>,
    /// `Date`, as written.
    pub date: Option<String>,
    /// `Valid-Until`, as written.
    pub valid_until: Option<String>,
    /// `Acquire-By-Hash: yes`: index files can be fetched by their hash.
    pub acquire_by_hash: bool,
    /// `No-Support-for-Architecture-all: Packages`: `all` packages are listed in every
    /// architecture's `Packages`, so `binary-all` need not be read.
    pub all_in_arch_indexes: bool,
    /// `NotAutomatic: yes` (backports, experimental): apt installs from it only what is asked
    /// of it.
    pub not_automatic: bool,
    /// The `SHA256` list.
    pub files: Vec<ReleaseFile>,
}

impl Release {
    /// Parses the (already verified) text of a `Release` file.
    pub fn parse(text: &str, file: &str) -> Result<Release, Error> {
        let p = deb822::single_paragraph(text)
            .map_err(|source| Error::Syntax { file: file.to_string(), source })?;
        let words = |name| {
            p.get(name).map(|v| v.split_whitespace().map(str::to_string).collect()).unwrap_or_default()
        };
        let mut files = Vec::new();
        if let Some(list) = p.get("SHA256") {
            for line in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let mut parts = line.split_whitespace();
                let bad = || Error::Field {
                    file: file.to_string(),
                    package: String::new(),
                    field: "SHA256",
                    reason: format!("malformed line `{line}`"),
                };
                let (Some(hash), Some(size), Some(path), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(bad());
                };
                if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad());
                }
                files.push(ReleaseFile {
                    path: path.to_string(),
                    size: size.parse().map_err(|_| bad())?,
                    sha256: hash.to_ascii_lowercase(),
                });
            }
        }
        Ok(Release {
            suite: p.get("Suite").map(str::to_string),
            codename: p.get("Codename").map(str::to_string),
            architectures: words("Architectures"),
            components: words("Components"),
            date: p.get("Date").map(str::to_string),
            valid_until: p.get("Valid-Until").map(str::to_string),
            acquire_by_hash: p.get("Acquire-By-Hash").is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            all_in_arch_indexes: p
                .get("No-Support-for-Architecture-all")
                .is_some_and(|v| v.split_whitespace().any(|w| w == "Packages")),
            not_automatic: p.get("NotAutomatic").is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            files,
        })
    }

    /// The listed file at `path`, if any.
    pub fn file(&self, path: &str) -> Option<&ReleaseFile> {
        self.files.iter().find(|f| f.path == path)
    }
}

/// Verifies an OpenPGP-signed file with `gpgv` and the keyring, and returns the signed
/// payload: for a clear-signed `InRelease`, the `Release` text inside; for a detached
/// signature (`Release.gpg`), `detached_data` itself. `url` names the file in messages.
pub fn verify_signature(
    signed: &[u8],
    detached_data: Option<&[u8]>,
    keyring: &Path,
    url: &str,
) -> Result<Vec<u8>, Error> {
    let work = tempfile::Builder::new()
        .prefix("mb-gpgv-")
        .tempdir()
        .map_err(io_error("create a temporary directory in", std::env::temp_dir()))?;
    let keyrings = prepare_keyrings(keyring, work.path())?;
    let signed_path = work.path().join("signed");
    write_file(&signed_path, signed)?;
    let payload_path = work.path().join("payload");
    let home = work.path().join("home");
    fs_err::create_dir(&home).map_err(io_error("create", &home))?;
    let mut cmd = Command::new("gpgv");
    // An empty home keeps the user's trustedkeys out: only the given keyring counts.
    cmd.arg("--homedir").arg(&home).args(["--status-fd", "1"]);
    for k in &keyrings {
        cmd.arg("--keyring").arg(k);
    }
    match detached_data {
        Some(data) => {
            let data_path = work.path().join("data");
            write_file(&data_path, data)?;
            cmd.arg(&signed_path).arg(&data_path);
        }
        None => {
            cmd.arg("--output").arg(&payload_path).arg(&signed_path);
        }
    }
    let out = cmd.output().map_err(|source| Error::Gpgv { url: url.to_string(), source })?;
    let status = String::from_utf8_lossy(&out.stdout);
    let good = status.lines().any(|l| l.starts_with("[GNUPG:] VALIDSIG "))
        && status.lines().any(|l| l.starts_with("[GNUPG:] GOODSIG "));
    let bad = status.lines().any(|l| {
        ["BADSIG", "ERRSIG", "EXPKEYSIG", "REVKEYSIG", "NO_PUBKEY"]
            .iter()
            .any(|w| l.starts_with(&format!("[GNUPG:] {w} ")))
    });
    if !out.status.success() || !good || bad {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let detail = stderr
            .lines()
            .map(|l| l.trim_start_matches("gpgv: ").trim())
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let no_key = status.contains("NO_PUBKEY") || status.contains("ERRSIG");
        return Err(Error::Signature {
            url: url.to_string(),
            keyring: keyring.to_path_buf(),
            detail: if detail.is_empty() { format!("gpgv exited with {}", out.status) } else { detail },
            hint: if no_key {
                "the file is signed by a key that is not in the keyring: name the archive's keyring (--keyring PATH, or in the manifest)"
            } else {
                "the file was changed after signing (or the mirror is broken); do not use it"
            },
        });
    }
    match detached_data {
        Some(data) => Ok(data.to_vec()),
        None => fs_err::read(&payload_path).map_err(io_error("read", &payload_path)),
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut f = fs_err::File::create(path).map_err(io_error("create", path))?;
    f.write_all(bytes).map_err(io_error("write", path))
}

/// gpgv wants binary keyrings: armored `.asc` files are dearmored into `work`; a directory
/// stands for every `.gpg` and `.asc` file in it.
fn prepare_keyrings(keyring: &Path, work: &Path) -> Result<Vec<PathBuf>, Error> {
    let keyring_error = |reason: String| Error::Keyring { path: keyring.to_path_buf(), reason };
    let meta = std::fs::metadata(keyring).map_err(|e| keyring_error(e.to_string()))?;
    let mut files = Vec::new();
    if meta.is_dir() {
        let read = std::fs::read_dir(keyring).map_err(|e| keyring_error(e.to_string()))?;
        let mut paths: Vec<PathBuf> = read
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "gpg" || x == "asc"))
            .collect();
        paths.sort();
        files.extend(paths);
    } else {
        files.push(keyring.to_path_buf());
    }
    let mut out = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let bytes = bounded::read_file(file, bounded::MAX_KEYRING, "a keyring")
            .map_err(|e| keyring_error(format!("{}: {e}", file.display())))?;
        if bytes.starts_with(b"-----BEGIN PGP") {
            let binary = dearmor(&bytes)
                .ok_or_else(|| keyring_error(format!("{}: malformed armor", file.display())))?;
            let path = work.join(format!("keyring-{i}.gpg"));
            write_file(&path, &binary)?;
            out.push(path);
        } else {
            // gpgv reads a relative name from its home; make it absolute.
            out.push(std::path::absolute(file).map_err(|e| keyring_error(e.to_string()))?);
        }
    }
    if out.is_empty() {
        return Err(keyring_error("no .gpg or .asc file in the directory".to_string()));
    }
    Ok(out)
}

/// The ASCII-armor reader on outside bytes, for the fuzz targets (`crates/fuzz`). Not an API.
#[doc(hidden)]
pub fn fuzz_dearmor(text: &[u8]) -> Option<Vec<u8>> {
    dearmor(text)
}

/// Decodes the base64 body of every ASCII-armored block (headers and the CRC line skipped).
fn dearmor(text: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(text).ok()?;
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if !line.starts_with("-----BEGIN PGP") {
            continue;
        }
        // Armor headers end at the first blank line.
        for header in lines.by_ref() {
            if header.trim().is_empty() {
                break;
            }
        }
        let mut body = String::new();
        for l in lines.by_ref() {
            let l = l.trim();
            if l.starts_with("-----END PGP") {
                break;
            }
            if l.starts_with('=') {
                continue;
            }
            body.push_str(l);
        }
        out.extend(base64_decode(&body)?);
    }
    (!out.is_empty()).then_some(out)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|&b| b != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let n = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + n]);
    }
    Some(out)
}

/// Parses an RFC 2822 date as used in `Date` / `Valid-Until` (`Sat, 14 Aug 2021 07:33:44 UTC`)
/// into seconds since the epoch.
pub fn parse_release_date(text: &str) -> Option<i64> {
    let text = text.trim();
    let text = text.split_once(',').map_or(text, |(_, rest)| rest).trim();
    let mut parts = text.split_whitespace();
    let day: i64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|x| x.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    // Out-of-range fields would overflow the arithmetic below (found by the fuzz target
    // `release`); no real Release file has them.
    let in_range = (1..=9999).contains(&year)
        && (1..=31).contains(&day)
        && (0..=23).contains(&h)
        && (0..=59).contains(&m)
        && (0..=60).contains(&s);
    if !in_range {
        return None;
    }
    let offset = match parts.next() {
        None | Some("UTC" | "GMT" | "Z") => 0,
        Some(tz) if tz.len() == 5 && tz.is_ascii() && (tz.starts_with('+') || tz.starts_with('-')) => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            let hh: i64 = tz[1..3].parse().ok()?;
            let mm: i64 = tz[3..5].parse().ok()?;
            sign * (hh * 3600 + mm * 60)
        }
        Some(_) => return None,
    };
    // Days from the civil date (proleptic Gregorian), Howard Hinnant's algorithm.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + s - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release() {
        let text = "Origin: Debian\nSuite: oldstable\nCodename: bullseye\nArchitectures: amd64 arm64\nComponents: main contrib\nAcquire-By-Hash: yes\nNo-Support-for-Architecture-all: Packages\nSHA256:\n 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef 10 main/binary-amd64/Packages.xz\n 0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef 20 main/binary-arm64/Packages\n";
        let r = Release::parse(text, "Release").unwrap();
        assert_eq!(r.codename.as_deref(), Some("bullseye"));
        assert!(r.acquire_by_hash && r.all_in_arch_indexes);
        assert_eq!(r.files.len(), 2);
        assert_eq!(r.file("main/binary-arm64/Packages").unwrap().size, 20);
        assert!(r.file("main/binary-arm64/Packages").unwrap().sha256.starts_with("0123456789abcdef"));
        assert!(Release::parse("SHA256:\n zz 1 x\n", "R").is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(parse_release_date("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(parse_release_date("Sat, 14 Aug 2021 07:33:44 UTC"), Some(1_628_926_424));
        assert_eq!(parse_release_date("Sat, 14 Aug 2021 09:33:44 +0200"), Some(1_628_926_424));
        assert_eq!(parse_release_date("garbage"), None);
        // Found by the fuzz target `release`: these overflowed or sliced inside a character.
        assert_eq!(parse_release_date("Wed, 02 Dec 42949672952026 00:10:52 +0000"), None);
        assert_eq!(parse_release_date("Wed, 02 Dec 2026 00:10:52 +\u{1F600}"), None);
        assert_eq!(parse_release_date("Wed, 99999999999 Dec 2026 00:10:52 UTC"), None);
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8h").unwrap(), b"hello!");
        assert!(base64_decode("a").is_none());
        let armored = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: x\n\naGVs\nbG8=\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n";
        assert_eq!(dearmor(armored).unwrap(), b"hello");
    }
}
