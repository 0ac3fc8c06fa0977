//! `changelog.Debian` entries and the CVE IDs they name.
//!
//! [`cves_between`] reads a Debian changelog (the `debian/changelog` format) and gathers the
//! CVE IDs named by the entries between two versions, so an update from a locked version to a
//! newer one can say which vulnerabilities it fixes. [`read_changelog`] takes that text out of
//! a `.deb`. Parsing is lenient: lines that are not what the format expects are skipped, as
//! `dpkg-parsechangelog` warns and goes on.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::io::{self, Read};
use std::path::Path;

use crate::deb::{Deb, EntryKind};
use crate::version::{compare_versions, Version};
use crate::Error;

/// The CVE IDs named by the changelog entries in a version range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangelogCves {
    /// The IDs (`CVE-2024-0727`), upper-case, deduplicated and sorted by year, then by
    /// number numerically (`CVE-2024-9999` before `CVE-2024-10001`).
    pub cves: Vec<String>,
    /// The versions of the entries read (those in the range), in the changelog's order,
    /// which is newest first.
    pub entries: Vec<String>,
    /// Whether an entry at or below the lower bound was seen, i.e. the changelog covers the
    /// whole range. `false` for a truncated changelog (Debian trims old entries of some), so
    /// the CVEs of the missing entries are unknown.
    pub reached_locked: bool,
}

/// The CVE IDs named in the bodies of the entries of `text` whose version `v` has
/// `after < v <= upto` in dpkg ordering.
///
/// Reading stops at the first entry at or below `after`. Headers that do not parse (and
/// everything outside an entry's body: headers, trailers, Emacs variables) are skipped; IDs
/// are matched as `CVE-YYYY-NNNN…` (four or more digits), with `cve-` in any case.
pub fn cves_between(text: &str, after: &str, upto: &str) -> ChangelogCves {
    let mut cves = BTreeSet::new();
    let mut entries = Vec::new();
    let mut reached_locked = false;
    // Whether the lines read belong to the body of an entry in the range.
    let mut collecting = false;
    for line in text.lines() {
        if line.starts_with(|c: char| !c.is_whitespace()) {
            // A column-0 line that is not a header (a stray note, `Local variables:`) leaves the
            // state alone: the trailer has already closed the entry before it.
            let Some(version) = parse_header(line) else { continue };
            if compare_versions(version, after) != Ordering::Greater {
                reached_locked = true;
                break;
            }
            collecting = compare_versions(version, upto) != Ordering::Greater;
            if collecting {
                entries.push(version.to_string());
            }
        } else if line.starts_with(" --") {
            collecting = false;
        } else if collecting {
            scan_cves(line, &mut cves);
        }
    }
    let cves = cves.into_iter().map(|id| id.to_string()).collect();
    ChangelogCves { cves, entries, reached_locked }
}

/// The version of an entry header, `package (version) distribution(s); urgency=medium`, as
/// `dpkg-parsechangelog` reads it; `None` if the line is not one.
fn parse_header(line: &str) -> Option<&str> {
    let (name, rest) = line.split_once(' ')?;
    let valid_name = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-._".contains(&b));
    if !valid_name {
        return None;
    }
    let (version, rest) = rest.trim_start().strip_prefix('(')?.split_once(')')?;
    let (distributions, _keywords) = rest.split_once(';')?;
    if !distributions.starts_with(char::is_whitespace) || distributions.trim().is_empty() {
        return None;
    }
    // `Version::parse` trims; dpkg allows no blank inside the parentheses.
    if version.contains(|c: char| c.is_whitespace() || c == '(') {
        return None;
    }
    Version::parse(version).ok()?;
    Some(version)
}

/// A CVE ID, ordered by year, then by number numerically.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CveId {
    year: u16,
    /// The number's length without leading zeros, so that longer numbers sort after.
    magnitude: usize,
    /// The digits as written.
    number: String,
}

impl std::fmt::Display for CveId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CVE-{:04}-{}", self.year, self.number)
    }
}

/// Adds the CVE IDs in `line` to `out`. `CVE-` must not follow a letter or digit (so
/// `XCVE-…` is not one); the number is the whole run of digits after the year.
fn scan_cves(line: &str, out: &mut BTreeSet<CveId>) {
    let b = line.as_bytes();
    let mut i = 0;
    while i + 4 <= b.len() {
        let starts_word = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        if starts_word && b[i..i + 4].eq_ignore_ascii_case(b"cve-") {
            if let Some((id, end)) = cve_at(b, i + 4) {
                out.insert(id);
                i = end;
                continue;
            }
        }
        i += 1;
    }
}

/// The `YYYY-NNNN…` part of an ID starting at `start`, and where it ends.
fn cve_at(b: &[u8], start: usize) -> Option<(CveId, usize)> {
    let year = b.get(start..start + 4)?;
    if !year.iter().all(u8::is_ascii_digit) || b.get(start + 4) != Some(&b'-') {
        return None;
    }
    let digits = &b[start + 5..];
    let len = digits.iter().take_while(|d| d.is_ascii_digit()).count();
    if len < 4 {
        return None;
    }
    let year = year.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    // ASCII digits only, so this is valid UTF-8.
    let number = String::from_utf8_lossy(&digits[..len]).into_owned();
    let magnitude = number.trim_start_matches('0').len();
    Some((CveId { year, magnitude, number }, start + 5 + len))
}

/// The changelog text of a package from its `.deb` at `deb`: the gunzipped
/// `usr/share/doc/<package>/changelog.Debian.gz`, else the first
/// `usr/share/doc/*/changelog.Debian.gz` in the archive (a package that ships its docs under
/// another name), else `None` (its doc dir is a symlink to another package's).
///
/// A binNMU's `changelog.Debian.<arch>.gz` is never taken: it holds only the rebuild.
/// Only regular files count; a changelog that is a link is not followed. The text is decoded
/// lossily when not UTF-8. Decompressing past `limit` bytes is an [`Error::Decompress`]
/// naming the member and the `.deb`.
pub fn read_changelog(deb: &Path, package: &str, limit: u64) -> Result<Option<String>, Error> {
    // `libc6:amd64` ships `usr/share/doc/libc6`.
    let name = package.split(':').next().unwrap_or(package);
    let own_path = format!("usr/share/doc/{name}/changelog.Debian.gz");
    let mut own = None;
    // Another package's changelog; an error reading it matters only if it is the one used.
    let mut other: Option<Result<String, Error>> = None;
    Deb::new(deb, package).visit_data(|entry, reader| {
        if entry.kind != EntryKind::File || own.is_some() {
            return Ok(());
        }
        let decompress =
            |source| Error::Decompress { file: format!("{} of {}", entry.path, deb.display()), source };
        if entry.path == own_path {
            own = Some(gunzip_bounded(reader, limit).map_err(decompress)?);
        } else if other.is_none() && is_doc_changelog(&entry.path) {
            other = Some(gunzip_bounded(reader, limit).map_err(decompress));
        }
        Ok(())
    })?;
    match own {
        Some(text) => Ok(Some(text)),
        None => other.transpose(),
    }
}

/// Whether `path` is `usr/share/doc/<dir>/changelog.Debian.gz`.
fn is_doc_changelog(path: &str) -> bool {
    path.strip_prefix("usr/share/doc/")
        .and_then(|rest| rest.strip_suffix("/changelog.Debian.gz"))
        .is_some_and(|dir| !dir.is_empty() && !dir.contains('/'))
}

/// Gunzips `reader` into text, refusing more than `limit` bytes of output.
fn gunzip_bounded(reader: &mut dyn Read, limit: u64) -> io::Result<String> {
    let mut bytes = Vec::new();
    bounded::Reader::ceiling(flate2::read::MultiGzDecoder::new(reader), limit, "the changelog")
        .read_to_end(&mut bytes)?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// The fuzz target's entry: the first line of `data` is the lower bound, the second the upper
/// bound, the rest the changelog (all read lossily). Checks what [`cves_between`] promises
/// and panics if it breaks. Not an API.
#[doc(hidden)]
pub fn fuzz_changelog(data: &[u8]) -> ChangelogCves {
    let text = String::from_utf8_lossy(data);
    let (after, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let (upto, changelog) = rest.split_once('\n').unwrap_or((rest, ""));
    let found = cves_between(changelog, after, upto);
    for version in &found.entries {
        assert_eq!(compare_versions(version, after), Ordering::Greater, "{version} <= {after}");
        assert_ne!(compare_versions(version, upto), Ordering::Greater, "{version} > {upto}");
    }
    let mut ids = BTreeSet::new();
    for id in &found.cves {
        let parsed = cve_at(id.as_bytes(), 4).filter(|(_, end)| id.starts_with("CVE-") && *end == id.len());
        let (parsed, _) = parsed.unwrap_or_else(|| panic!("not a CVE ID: {id}"));
        assert_eq!(&parsed.to_string(), id);
        ids.insert(parsed);
    }
    let sorted: Vec<String> = ids.iter().map(CveId::to_string).collect();
    assert_eq!(sorted, found.cves, "not sorted and deduplicated");
    found
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const OPENSSL: &str = "\
openssl (1.1.1w-0+deb11u2) bullseye-security; urgency=medium

  * Non-maintainer upload by the Security Team.
  * CVE-2023-5678: Excessive time spent in DH check / generation with large Q
    parameter value.
  * CVE-2024-0727: PKCS12 Decoding crashes.
    - debian/patches/CVE-2024-0727.patch
  * Fix cve-2024-2511 (unbounded memory growth with session handling in TLSv1.3).

 -- Sebastian Andrzej Siewior <sebastian@breakpoint.cc>  Sun, 21 Jul 2024 10:25:50 +0200

openssl (1.1.1w-0+deb11u1) bullseye; urgency=medium

  * Import 1.1.1w
    - CVE-2023-4807 (POLY1305 MAC on Windows, not affecting Debian).
  * CVE-2023-3817 (Excessive time spent checking DH q parameter value).

 -- Sebastian Andrzej Siewior <sebastian@breakpoint.cc>  Wed, 13 Sep 2023 22:08:23 +0200

openssl (1.1.1v-0~deb11u1) bullseye-security; urgency=medium

  * Import 1.1.1v
    - CVE-2023-3446 (Excessive time spent checking DH keys and parameters).
    - CVE-2023-2650 (Possible DoS translating ASN.1 object identifiers).
    - CVE-2023-0464, CVE-2023-0465, CVE-2023-0466 (policy checks).

 -- Sebastian Andrzej Siewior <sebastian@breakpoint.cc>  Fri, 04 Aug 2023 22:06:08 +0200

openssl (1.1.1n-0+deb11u5) bullseye-security; urgency=medium

  * CVE-2023-0286 (X.400 address type confusion in X.509 GeneralName).
  * CVE-2023-0215 (Use-after-free following BIO_new_NDEF).

 -- Sebastian Andrzej Siewior <sebastian@breakpoint.cc>  Thu, 02 Feb 2023 22:42:17 +0100

openssl (1.1.1n-0+deb11u4) bullseye-security; urgency=medium

  * CVE-2022-2097 (AES OCB fails to encrypt some bytes).

 -- Sebastian Andrzej Siewior <sebastian@breakpoint.cc>  Fri, 02 Dec 2022 21:00:00 +0100

Local variables:
mode: debian-changelog
End:
";

    #[test]
    fn collects_the_cves_of_the_range() {
        let found = cves_between(OPENSSL, "1.1.1n-0+deb11u5", "1.1.1w-0+deb11u2");
        assert_eq!(
            found.cves,
            [
                "CVE-2023-0464",
                "CVE-2023-0465",
                "CVE-2023-0466",
                "CVE-2023-2650",
                "CVE-2023-3446",
                "CVE-2023-3817",
                "CVE-2023-4807",
                "CVE-2023-5678",
                "CVE-2024-0727",
                "CVE-2024-2511",
            ]
        );
        assert_eq!(found.entries, ["1.1.1w-0+deb11u2", "1.1.1w-0+deb11u1", "1.1.1v-0~deb11u1"]);
        assert!(found.reached_locked);
    }

    #[test]
    fn lower_bound_is_exclusive_and_upper_inclusive() {
        let found = cves_between(OPENSSL, "1.1.1w-0+deb11u1", "1.1.1w-0+deb11u1");
        assert_eq!(found, ChangelogCves { reached_locked: true, ..Default::default() });

        let found = cves_between(OPENSSL, "1.1.1v-0~deb11u1", "1.1.1w-0+deb11u1");
        assert_eq!(found.cves, ["CVE-2023-3817", "CVE-2023-4807"]);
        assert_eq!(found.entries, ["1.1.1w-0+deb11u1"]);
        assert!(found.reached_locked);

        // A locked version between two entries: the older entry is the first at or below it.
        let found = cves_between(OPENSSL, "1.1.1o-1", "1.1.1w-0+deb11u1");
        assert_eq!(found.entries, ["1.1.1w-0+deb11u1", "1.1.1v-0~deb11u1"]);
        assert!(found.reached_locked);
    }

    #[test]
    fn orders_versions_as_dpkg() {
        let text = "\
libfoo (1.0-1+deb11u14) bullseye-security; urgency=high

  * CVE-2024-1014

 -- A <a@example.org>  Mon, 01 Jan 2024 00:00:00 +0000

libfoo (1.0-1+deb11u12) bullseye-security; urgency=high

  * CVE-2024-1012

 -- A <a@example.org>  Mon, 01 Jan 2024 00:00:00 +0000

libfoo (1.0-1+deb11u11) bullseye-security; urgency=high

  * CVE-2024-1011

 -- A <a@example.org>  Mon, 01 Jan 2024 00:00:00 +0000

libfoo (1.0-1+deb11u9) bullseye-security; urgency=high

  * CVE-2024-1009

 -- A <a@example.org>  Mon, 01 Jan 2024 00:00:00 +0000
";
        let found = cves_between(text, "1.0-1+deb11u11", "1.0-1+deb11u14");
        assert_eq!(found.cves, ["CVE-2024-1012", "CVE-2024-1014"]);
        assert!(found.reached_locked);
        let found = cves_between(text, "1.0-1+deb11u11", "1.0-1+deb11u13");
        assert_eq!(found.cves, ["CVE-2024-1012"]);
        // Digit runs compare as numbers: `u11` > `u9`, though not as strings.
        let found = cves_between(text, "1.0-1+deb11u9", "1.0-1+deb11u11");
        assert_eq!(found.cves, ["CVE-2024-1011"]);
        assert!(found.reached_locked);

        let epochs = "\
bar (1:2.3-1) sid; urgency=medium

  * New epoch; CVE-2021-2300.

 -- B <b@example.org>  Mon, 01 Jan 2024 00:00:00 +0000

bar (2.9-1) sid; urgency=medium

  * CVE-2021-2900

 -- B <b@example.org>  Mon, 01 Jan 2024 00:00:00 +0000

bar (2.0-1) sid; urgency=medium

  * CVE-2021-2000

 -- B <b@example.org>  Mon, 01 Jan 2024 00:00:00 +0000

bar (2.0~rc1-1) experimental; urgency=medium

  * CVE-2021-2001

 -- B <b@example.org>  Mon, 01 Jan 2024 00:00:00 +0000
";
        let found = cves_between(epochs, "2.9-1", "1:2.3-1");
        assert_eq!(found.cves, ["CVE-2021-2300"]);
        assert_eq!(found.entries, ["1:2.3-1"]);
        let found = cves_between(epochs, "2.0~rc1-1", "2.9-1");
        assert_eq!(found.cves, ["CVE-2021-2000", "CVE-2021-2900"]);
        assert!(found.reached_locked);
        let found = cves_between(epochs, "1.0-1", "2.0-1");
        assert_eq!(found.cves, ["CVE-2021-2000", "CVE-2021-2001"]);
        assert_eq!(found.entries, ["2.0-1", "2.0~rc1-1"]);
    }

    #[test]
    fn truncated_changelog_does_not_reach_the_locked_version() {
        let found = cves_between(OPENSSL, "1.1.1k-1", "1.1.1w-0+deb11u2");
        assert!(!found.reached_locked);
        assert_eq!(found.entries.len(), 5);
        assert_eq!(found.cves.first().map(String::as_str), Some("CVE-2022-2097"));
    }

    #[test]
    fn deduplicates_and_sorts_numerically() {
        let text = "\
x (2) unstable; urgency=low

  * CVE-2024-10001, CVE-2024-9999 and cve-2024-9999 again; CVE-2023-99999.
  * CVE-2024-123 is too short, XCVE-2024-1111 is not one, (CVE-2024-0001) is.

 -- X <x@example.org>  Mon, 01 Jan 2024 00:00:00 +0000
";
        let found = cves_between(text, "1", "2");
        assert_eq!(found.cves, ["CVE-2023-99999", "CVE-2024-0001", "CVE-2024-9999", "CVE-2024-10001"]);
        assert!(!found.reached_locked);
    }

    #[test]
    fn skips_malformed_headers_and_text_outside_bodies() {
        let text = "\
CVE-2020-0001 at column 0 is not a body
x (3) unstable; urgency=low

  * CVE-2020-0003

 -- X <x@example.org>  Mon, 01 Jan 2024 00:00:00 +0000
  CVE-2020-9999 after the trailer is outside any entry
x (2 unstable; urgency=low
  * CVE-2020-0002 under a broken header
x (1) unstable; urgency=low
";
        let found = cves_between(text, "1", "3");
        assert_eq!(found.cves, ["CVE-2020-0003"]);
        assert_eq!(found.entries, ["3"]);
        assert!(found.reached_locked);
        assert_eq!(
            parse_header("openssl (1.1.1w-0+deb11u2) bullseye-security; urgency=medium"),
            Some("1.1.1w-0+deb11u2")
        );
        assert_eq!(parse_header("openssl (1.0) ; urgency=medium"), None);
        assert_eq!(parse_header("openssl (a:1) sid; urgency=medium"), None);
        assert_eq!(parse_header("-x (1) sid; urgency=medium"), None);
        assert_eq!(parse_header("x ( 1) sid; urgency=medium"), None);
    }

    #[test]
    fn survives_garbage() {
        for input in [
            &b""[..],
            b"\n\n",
            b"1\n2\nx (\xff) a;\n  CVE-\n  CVE-2024-\n  CVE-202\n cve-2024-00001\xe2\x82",
            b"\xff\xfe\n\x00\nx (1:) a; b\n  CVE-9999-99999999999999999999999999999999\n",
            b"0\n~\nx (1) a;\n\tcve-2024-1234\n",
        ] {
            fuzz_changelog(input);
        }
        let found = fuzz_changelog(b"0\n9\nx (1) a;\n  cve-2024-1234 CVE-2024-1234\n");
        assert_eq!(found.cves, ["CVE-2024-1234"]);
        let found = fuzz_changelog(b"0\n9\nx (1) a;\n  CVE-9999-99999999999999999999999999999999\n");
        assert_eq!(found.cves, ["CVE-9999-99999999999999999999999999999999"]);
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    /// A `.deb` whose data archive holds `entries` (raw names, as dpkg-deb writes them with
    /// `./`): a file, or a symlink when the content starts with `->`.
    fn write_deb(path: &Path, entries: &[(&str, &[u8])]) {
        let tar = |entries: &[(&str, &[u8])]| {
            let mut tar = Vec::new();
            for (name, content) in entries {
                let mut h = tar::Header::new_gnu();
                let (kind, content, link) = match content.strip_prefix(b"->") {
                    Some(target) => (tar::EntryType::Symlink, &b""[..], target),
                    None if name.ends_with('/') => (tar::EntryType::Directory, *content, &b""[..]),
                    None => (tar::EntryType::Regular, *content, &b""[..]),
                };
                h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
                h.set_entry_type(kind);
                h.set_mode(0o644);
                h.set_size(content.len() as u64);
                h.set_cksum();
                tar.extend_from_slice(h.as_bytes());
                tar.extend_from_slice(content);
                tar.extend(std::iter::repeat_n(0u8, (512 - content.len() % 512) % 512));
            }
            tar.extend([0u8; 1024]);
            gz(&tar)
        };
        let control = tar(&[("./control", b"Package: x\nVersion: 1\nArchitecture: all\n")]);
        let mut ar = b"!<arch>\n".to_vec();
        for (member, bytes) in
            [("debian-binary", b"2.0\n".to_vec()), ("control.tar.gz", control), ("data.tar.gz", tar(entries))]
        {
            let header =
                format!("{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n", member, 0, 0, 0, 100644, bytes.len());
            ar.extend(header.as_bytes());
            ar.extend(&bytes);
            if bytes.len() % 2 == 1 {
                ar.push(b'\n');
            }
        }
        std::fs::write(path, ar).unwrap();
    }

    #[test]
    fn reads_the_changelog_of_a_deb() {
        let dir = tempfile::tempdir().unwrap();
        let deb = dir.path().join("openssl.deb");
        let own = gz(OPENSSL.as_bytes());
        let other = gz(b"libssl (1) sid; urgency=low\n");
        let binnmu = gz(b"openssl (1.1.1w-0+deb11u2+b1) sid; urgency=low\n\n  * Binary-only rebuild.\n");
        write_deb(
            &deb,
            &[
                ("./", b""),
                ("./usr/share/doc/libssl1.1/changelog.Debian.gz", &other),
                ("./usr/share/doc/openssl/changelog.Debian.amd64.gz", &binnmu),
                ("./usr/share/doc/openssl/changelog.Debian.gz", &own),
            ],
        );
        let text = read_changelog(&deb, "openssl:amd64", 1 << 20).unwrap().unwrap();
        assert_eq!(text, OPENSSL);

        // Another package's changelog over the limit does not matter when the own one is there.
        let big_other = dir.path().join("big-other.deb");
        write_deb(
            &big_other,
            &[
                ("./usr/share/doc/libssl1.1/changelog.Debian.gz", &own),
                ("./usr/share/doc/openssl/changelog.Debian.gz", &other),
            ],
        );
        let text = read_changelog(&big_other, "openssl", 100).unwrap().unwrap();
        assert_eq!(text, "libssl (1) sid; urgency=low\n");

        // No own doc dir: the first other package's changelog, never a binNMU one.
        let fallback = dir.path().join("fallback.deb");
        write_deb(
            &fallback,
            &[
                ("./usr/share/doc/openssl/changelog.Debian.amd64.gz", &binnmu),
                ("usr/share/doc/libssl1.1/changelog.Debian.gz", &other),
                ("./usr/share/doc/libssl3/changelog.Debian.gz", &own),
            ],
        );
        let text = read_changelog(&fallback, "openssl", 1 << 20).unwrap().unwrap();
        assert_eq!(text, "libssl (1) sid; urgency=low\n");

        // A doc dir that is a symlink to another package's: nothing to read.
        let none = dir.path().join("none.deb");
        write_deb(
            &none,
            &[
                ("./usr/share/doc/", b""),
                ("./usr/share/doc/openssl", b"->libssl1.1"),
                ("./usr/share/doc/openssl/changelog.Debian.amd64.gz", &binnmu),
            ],
        );
        assert_eq!(read_changelog(&none, "openssl", 1 << 20).unwrap(), None);

        // Over the limit: an error naming the member and the file.
        let err = read_changelog(&deb, "openssl", 1000).unwrap_err();
        assert!(matches!(err, Error::Decompress { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("usr/share/doc/openssl/changelog.Debian.gz"), "{message}");
        assert!(message.contains(&deb.display().to_string()), "{message}");
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(cause.starts_with("the changelog expands past 1000 bytes"), "{cause}");
        assert_eq!(read_changelog(&deb, "openssl", OPENSSL.len() as u64).unwrap().as_deref(), Some(OPENSSL));

        // Not UTF-8: read lossily.
        let latin1 = dir.path().join("latin1.deb");
        write_deb(&latin1, &[("./usr/share/doc/x/changelog.Debian.gz", &gz(b"x (1) sid; caf\xe9\n"))]);
        assert_eq!(read_changelog(&latin1, "x", 100).unwrap().unwrap(), "x (1) sid; caf\u{fffd}\n");
    }
}
