//! dpkg version ordering: `[epoch:]upstream_version[-debian_revision]`.
//!
//! Comparison follows the Debian Policy (section 5.6.12) as dpkg implements it: epochs
//! numerically, then the upstream version and the revision each as alternating runs of
//! non-digits (compared character by character, letters before non-letters, `~` before
//! everything, even the end of the string) and digits (compared numerically).

use std::cmp::Ordering;
use std::fmt;

/// A parsed Debian version. Ordering and equality are dpkg's (`1.0` == `1.00`,
/// `0:1` == `1`), not string equality.
#[derive(Debug, Clone)]
pub struct Version {
    text: String,
    epoch: u32,
    /// Byte range of the upstream version in `text`.
    upstream: (usize, usize),
    /// Byte range of the revision in `text` (empty when there is none).
    revision: (usize, usize),
}

/// Why a version string is not a valid Debian version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{version}` is not a valid Debian version: {reason}")]
pub struct VersionError {
    /// The string given.
    pub version: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Version {
    /// Parses a version as dpkg does (it accepts an upstream version that does not start
    /// with a digit, with a warning; so do we, silently).
    pub fn parse(text: &str) -> Result<Version, VersionError> {
        let err = |reason| VersionError { version: text.to_string(), reason };
        let text = text.trim();
        if text.is_empty() {
            return Err(err("it is empty"));
        }
        if text.contains(char::is_whitespace) {
            return Err(err("it contains whitespace"));
        }
        let (epoch, rest_start) = match text.find(':') {
            Some(i) => {
                let digits = &text[..i];
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("the epoch is not a number"));
                }
                (digits.parse::<u32>().map_err(|_| err("the epoch is too large"))?, i + 1)
            }
            None => (0, 0),
        };
        let rest = &text[rest_start..];
        let (upstream, revision) = match rest.rfind('-') {
            Some(i) => ((rest_start, rest_start + i), (rest_start + i + 1, text.len())),
            None => ((rest_start, text.len()), (text.len(), text.len())),
        };
        if upstream.0 == upstream.1 {
            return Err(err("the upstream version is empty"));
        }
        if revision.0 == revision.1 && rest.ends_with('-') {
            return Err(err("the revision after `-` is empty"));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || ".+~-:".contains(c);
        if !text[upstream.0..upstream.1].chars().all(allowed) {
            return Err(err("the upstream version has a character other than [A-Za-z0-9.+~-:]"));
        }
        if !text[revision.0..revision.1].chars().all(|c| c.is_ascii_alphanumeric() || "+.~".contains(c)) {
            return Err(err("the revision has a character other than [A-Za-z0-9+.~]"));
        }
        Ok(Version { text: text.to_string(), epoch, upstream, revision })
    }

    /// The epoch (0 when absent).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The upstream part.
    pub fn upstream(&self) -> &str {
        &self.text[self.upstream.0..self.upstream.1]
    }

    /// The Debian revision (empty when absent).
    pub fn revision(&self) -> &str {
        &self.text[self.revision.0..self.revision.1]
    }

    /// The version as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(self.upstream(), other.upstream()))
            .then_with(|| compare_part(self.revision(), other.revision()))
    }
}

/// Compares two version strings without allocating. A string that does not parse as a
/// version is compared as dpkg would compare its pieces anyway (indexes can hold odd
/// versions; refusing them here would only hide packages).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb).then_with(|| compare_part(ua, ub)).then_with(|| compare_part(ra, rb))
}

fn split(v: &str) -> (u64, &str, &str) {
    let v = v.trim();
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
            (e.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((up, rev)) => (epoch, up, rev),
        None => (epoch, rest, ""),
    }
}

/// The weight of a non-digit character: `~` sorts before the end of the string, which
/// sorts before letters, which sort before every other character.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp` on one part (upstream version or revision).
fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // The non-digit prefix.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied());
            let bc = order(b.get(j).copied());
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        // The digit run, numerically: skip leading zeros, then a longer run is larger,
        // and runs of one length compare by their first differing digit.
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let v = Version::parse("2:1.2-3-4ubuntu1").unwrap();
        assert_eq!((v.epoch(), v.upstream(), v.revision()), (2, "1.2-3", "4ubuntu1"));
        let v = Version::parse("1.0").unwrap();
        assert_eq!((v.epoch(), v.upstream(), v.revision()), (0, "1.0", ""));
        assert!(Version::parse("").is_err());
        assert!(Version::parse("a:1").is_err());
        assert!(Version::parse("1.0-").is_err());
        assert!(Version::parse("1 0").is_err());
        assert!(Version::parse(":1").is_err());
        assert!(Version::parse("1_0").is_err());
        assert_eq!(Version::parse("0:1.0").unwrap(), Version::parse("1.0").unwrap());
    }

    #[test]
    fn ordering_basics() {
        use Ordering::*;
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "1.00", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("1.0", "1.0+b1", Less),
            ("1.0a", "1.0+", Less),
            ("1:0.1", "2.0", Greater),
            ("1.0-1", "1.0-1~bpo1", Greater),
            ("1.2.10", "1.2.9", Greater),
            ("1.0-10", "1.0-9", Greater),
            ("1.0", "1.0-0", Equal),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
            assert_eq!(Version::parse(a).unwrap().cmp(&Version::parse(b).unwrap()), want, "{a} vs {b}");
        }
    }
}
