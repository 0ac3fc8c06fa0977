//! Core metadata (`METADATA` in a wheel, `PKG-INFO` in an sdist): the fields the resolver needs.
//!
//! The format is RFC 822 style headers: `Name: value` lines, continuation lines start with
//! whitespace, and the first blank line ends the headers (the body is the description, which
//! we never read, so it may be in any encoding). Fields may repeat (`Requires-Dist`).
//!
//! Parsing is strict where the resolver depends on it (name, version) and lenient where the
//! published ecosystem is messy: old `Requires-Dist` lines that no strict PEP 508 parser takes
//! get a small, documented repair (see [`repair_requirement`]) before we give up, and an invalid
//! `Requires-Python` is ignored with a warning, as pip does.

use std::str::FromStr;

use pep_types::{ExtraName, PackageName, Req, Version, VersionSpecifiers};
use tracing::{debug, warn};

type NameParseError = <PackageName as FromStr>::Err;
type VersionParseError = <Version as FromStr>::Err;
type ReqParseError = pep_types::RequirementError;

/// The core metadata of one distribution file, reduced to what resolution needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// `Metadata-Version` as written (`1.0` ... `2.4`).
    pub metadata_version: String,
    /// `Name`, normalised.
    pub name: PackageName,
    /// `Version`.
    pub version: Version,
    /// Every `Requires-Dist`, in file order, markers included (extras appear as `extra == "x"`).
    pub requires_dist: Vec<Req>,
    /// `Requires-Python`; `None` when absent or unparseable (the latter is logged).
    pub requires_python: Option<VersionSpecifiers>,
    /// Every `Provides-Extra` that is a valid extra name, normalised.
    pub provides_extras: Vec<ExtraName>,
    /// `Dynamic` field names (PEP 643), lowercased (`requires-dist`).
    pub dynamic: Vec<String>,
}

/// Core metadata that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// A field the resolver cannot do without is absent.
    #[error("core metadata has no `{field}` field")]
    MissingField {
        /// The field name as the spec spells it.
        field: &'static str,
    },
    /// A header line is neither `Name: value` nor a continuation.
    #[error("core metadata line {line} is not a `Name: value` header: `{text}`")]
    MalformedHeader {
        /// 1-based line number.
        line: usize,
        /// The line, lossily decoded.
        text: String,
    },
    /// A field we need is not UTF-8.
    #[error("core metadata field `{field}` (line {line}) is not valid UTF-8")]
    NotUtf8 {
        /// The field name as written.
        field: String,
        /// 1-based line number where the field starts.
        line: usize,
    },
    /// `Name` is not a valid package name.
    #[error("core metadata `Name: {value}` is not a valid package name")]
    InvalidName {
        /// The value as written.
        value: String,
        /// Why it is invalid.
        #[source]
        source: NameParseError,
    },
    /// `Version` is not a PEP 440 version.
    #[error("core metadata of {name} has `Version: {value}`, which is not a PEP 440 version")]
    InvalidVersion {
        /// The package.
        name: PackageName,
        /// The value as written.
        value: String,
        /// Why it is invalid.
        #[source]
        source: VersionParseError,
    },
    /// A `Requires-Dist` line that is not PEP 508, even after repair.
    #[error("{name} {version}: `Requires-Dist: {value}` (line {line}) is not a valid PEP 508 requirement")]
    InvalidRequiresDist {
        /// The package whose metadata this is.
        name: PackageName,
        /// Its version.
        version: Version,
        /// The value as written.
        value: String,
        /// 1-based line number.
        line: usize,
        /// The strict parser's complaint about the line as written.
        #[source]
        source: Box<ReqParseError>,
    },
}

/// One header: its name as written, its raw value (continuations joined) and its line.
struct Header<'a> {
    name: &'a [u8],
    value: Vec<u8>,
    line: usize,
}

impl Header<'_> {
    fn is(&self, field: &str) -> bool {
        self.name.eq_ignore_ascii_case(field.as_bytes())
    }

    fn text(&self) -> Result<&str, MetadataError> {
        std::str::from_utf8(&self.value).map_err(|_| MetadataError::NotUtf8 {
            field: String::from_utf8_lossy(self.name).into_owned(),
            line: self.line,
        })
    }
}

/// Splits the header block into fields. Stops at the first blank line; the body is not read.
fn read_headers(bytes: &[u8]) -> Result<Vec<Header<'_>>, MetadataError> {
    let mut headers: Vec<Header<'_>> = Vec::new();
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // A folded header: unfold by joining with a single space.
            match headers.last_mut() {
                Some(header) => {
                    header.value.push(b' ');
                    header.value.extend_from_slice(line.trim_ascii());
                }
                None => {
                    return Err(MetadataError::MalformedHeader {
                        line: index + 1,
                        text: String::from_utf8_lossy(line).into_owned(),
                    })
                }
            }
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            // Python's email parser treats such a line as the start of the body; a missing
            // blank line before a description happens in hand-written PKG-INFO files.
            warn!("core metadata line {} is not a header; treating the rest as the description", index + 1);
            break;
        };
        let name = line[..colon].trim_ascii();
        if name.is_empty() || name.iter().any(|b| b.is_ascii_whitespace()) {
            return Err(MetadataError::MalformedHeader {
                line: index + 1,
                text: String::from_utf8_lossy(line).into_owned(),
            });
        }
        headers.push(Header { name, value: line[colon + 1..].trim_ascii().to_vec(), line: index + 1 });
    }
    Ok(headers)
}

impl Metadata {
    /// Parses `METADATA` / `PKG-INFO` bytes.
    ///
    /// Fails on a missing or invalid `Metadata-Version`, `Name` or `Version`, and on a
    /// `Requires-Dist` that is not PEP 508 even after [`repair_requirement`]. Unknown fields and
    /// the description are ignored.
    pub fn parse(bytes: &[u8]) -> Result<Metadata, MetadataError> {
        let headers = read_headers(bytes)?;
        let single = |field: &'static str| {
            headers.iter().find(|h| h.is(field)).ok_or(MetadataError::MissingField { field })
        };

        let metadata_version = single("Metadata-Version")?.text()?.to_string();
        let name_text = single("Name")?.text()?;
        let name = PackageName::from_str(name_text)
            .map_err(|source| MetadataError::InvalidName { value: name_text.to_string(), source })?;
        let version_text = single("Version")?.text()?;
        let version = Version::from_str(version_text).map_err(|source| MetadataError::InvalidVersion {
            name: name.clone(),
            value: version_text.to_string(),
            source,
        })?;

        let mut requires_dist = Vec::new();
        let mut requires_python = None;
        let mut provides_extras = Vec::new();
        let mut dynamic = Vec::new();
        for header in &headers {
            if header.is("Requires-Dist") {
                let value = header.text()?;
                let req =
                    parse_requires_dist(value).map_err(|source| MetadataError::InvalidRequiresDist {
                        name: name.clone(),
                        version: version.clone(),
                        value: value.to_string(),
                        line: header.line,
                        source: Box::new(source),
                    })?;
                requires_dist.push(req);
            } else if header.is("Requires-Python") {
                let value = header.text()?;
                requires_python = parse_requires_python(value, &name, &version);
            } else if header.is("Provides-Extra") {
                let value = header.text()?;
                match ExtraName::from_str(value) {
                    Ok(extra) => provides_extras.push(extra),
                    Err(err) => {
                        warn!("{name} {version}: ignoring `Provides-Extra: {value}`: {err}")
                    }
                }
            } else if header.is("Dynamic") {
                dynamic.push(header.text()?.to_ascii_lowercase());
            }
        }

        Ok(Metadata {
            metadata_version,
            name,
            version,
            requires_dist,
            requires_python,
            provides_extras,
            dynamic,
        })
    }

    /// Whether `Metadata-Version` is at least `major.minor` (unparseable counts as older).
    pub fn metadata_version_at_least(&self, major: u64, minor: u64) -> bool {
        let mut parts = self.metadata_version.trim().split('.');
        let number = |part: Option<&str>| part.and_then(|p| p.parse::<u64>().ok());
        match (number(parts.next()), number(parts.next())) {
            (Some(ma), Some(mi)) => (ma, mi) >= (major, minor),
            (Some(ma), None) => ma > major || (ma == major && minor == 0),
            _ => false,
        }
    }

    /// Whether `field` (case-insensitive, e.g. `Requires-Dist`) is listed in `Dynamic`.
    pub fn is_dynamic(&self, field: &str) -> bool {
        self.dynamic.iter().any(|d| d.eq_ignore_ascii_case(field))
    }
}

/// Parses one `Requires-Dist` value: strict first, then once more after
/// [`repair_requirement`]. The error returned is the strict parser's on the original text.
fn parse_requires_dist(value: &str) -> Result<Req, ReqParseError> {
    let strict = match pep_types::parse_requirement(value) {
        Ok(req) => return Ok(req),
        Err(err) => err,
    };
    if let Some(repaired) = repair_requirement(value) {
        if let Ok(req) = pep_types::parse_requirement(&repaired) {
            debug!("repaired `Requires-Dist: {value}` to `{repaired}`");
            return Ok(req);
        }
    }
    Err(strict)
}

/// Parses `Requires-Python`, strict then repaired; `None` with a warning when neither works.
fn parse_requires_python(value: &str, name: &PackageName, version: &Version) -> Option<VersionSpecifiers> {
    match VersionSpecifiers::from_str(value) {
        Ok(specifiers) => return Some(specifiers),
        Err(err) => {
            if let Some(repaired) = repair_specifiers(value) {
                if let Ok(specifiers) = VersionSpecifiers::from_str(&repaired) {
                    debug!("repaired `Requires-Python: {value}` to `{repaired}`");
                    return Some(specifiers);
                }
            }
            warn!("{name} {version}: ignoring invalid `Requires-Python: {value}`: {err}");
        }
    }
    None
}

/// Rewrites a `Requires-Dist` value that strict PEP 508 rejects into one it may accept, or
/// `None` when there is nothing to repair.
///
/// Only the version specifiers (between the name/extras and the `;` of the marker) are
/// touched, by [`repair_specifiers`]; URL requirements (`name @ url`) are left alone.
pub fn repair_requirement(value: &str) -> Option<String> {
    let (head, marker) = match value.split_once(';') {
        Some((head, marker)) => (head, Some(marker)),
        None => (value, None),
    };
    if head.contains('@') {
        return None;
    }
    // The name ends at the first character that cannot be in a name; extras follow in `[]`.
    let name_end = head
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(head.len());
    let (name, rest) = head.split_at(name_end);
    let rest = rest.trim_start();
    let (extras, rest) = if rest.starts_with('[') {
        let close = rest.find(']')?;
        (&rest[..=close], rest[close + 1..].trim())
    } else {
        ("", rest.trim())
    };
    let specifiers = rest.strip_prefix('(').and_then(|inner| inner.strip_suffix(')')).unwrap_or(rest);
    let repaired = repair_specifiers(specifiers)?;
    let mut out = format!("{name}{extras}");
    if !repaired.is_empty() {
        out.push(' ');
        out.push_str(&repaired);
    }
    if let Some(marker) = marker {
        out.push_str(" ;");
        out.push_str(marker);
    }
    Some(out)
}

/// Repairs a comma-separated specifier list as written by old tools, or `None` when no
/// repair applies. The repairs, each seen in published metadata:
///
/// 1. A trailing `.*` on an operator other than `==` / `!=` is dropped: `>=1.0.*` → `>=1.0`
///    (the wildcard adds nothing to an ordered comparison).
/// 2. A missing comma between specifiers is added: `>=1.0 <2.0` → `>=1.0, <2.0`.
/// 3. Empty items from stray commas are dropped: `>=1.0,` → `>=1.0`.
///
/// Versions themselves are not rewritten: PEP 440 already normalises spellings such as
/// `2.0.0-beta`.
pub fn repair_specifiers(specifiers: &str) -> Option<String> {
    const OPERATORS: [&str; 8] = ["===", "~=", "==", "!=", "<=", ">=", "<", ">"];
    let mut items: Vec<(String, String)> = Vec::new();
    let mut rest = specifiers.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if rest.is_empty() {
            break;
        }
        let operator = OPERATORS.iter().find(|op| rest.starts_with(**op))?;
        rest = rest[operator.len()..].trim_start();
        let version_end =
            rest.find(|c: char| c == ',' || c.is_whitespace() || "<>=!~".contains(c)).unwrap_or(rest.len());
        let (version, tail) = rest.split_at(version_end);
        if version.is_empty() {
            return None;
        }
        let version = match version.strip_suffix(".*") {
            Some(stripped) if !matches!(*operator, "==" | "!=") => stripped,
            _ => version,
        };
        items.push((operator.to_string(), version.to_string()));
        rest = tail;
    }
    let repaired = items.iter().map(|(op, version)| format!("{op}{version}")).collect::<Vec<_>>().join(", ");
    (repaired != specifiers.trim()).then_some(repaired)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Metadata {
        match Metadata::parse(text.as_bytes()) {
            Ok(metadata) => metadata,
            Err(err) => panic!("{err}"),
        }
    }

    fn reqs(metadata: &Metadata) -> Vec<String> {
        metadata.requires_dist.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn modern_wheel_metadata() {
        let text = "Metadata-Version: 2.1\n\
Name: requests\n\
Version: 2.31.0\n\
Summary: Python HTTP for Humans.\n\
Home-page: https://example.org/requests\n\
Classifier: Programming Language :: Python :: 3\n\
Requires-Python: >=3.7\n\
Description-Content-Type: text/markdown\n\
License-File: LICENSE\n\
Requires-Dist: charset-normalizer <4,>=2\n\
Requires-Dist: idna <4,>=2.5\n\
Requires-Dist: urllib3 <3,>=1.21.1\n\
Requires-Dist: certifi >=2017.4.17\n\
Provides-Extra: security\n\
Provides-Extra: socks\n\
Requires-Dist: PySocks !=1.5.7,>=1.5.6 ; extra == 'socks'\n\
Provides-Extra: use_chardet_on_py3\n\
Requires-Dist: chardet <6,>=3.0.2 ; extra == 'use_chardet_on_py3'\n\
\n\
# Requests\n\
\n\
Requires-Dist: not-a-header-this-is-the-body\n";
        let m = parse(text);
        assert_eq!(m.metadata_version, "2.1");
        assert_eq!(m.name.as_ref(), "requests");
        assert_eq!(m.version.to_string(), "2.31.0");
        assert_eq!(m.requires_python.as_ref().map(ToString::to_string).as_deref(), Some(">=3.7"));
        assert_eq!(m.requires_dist.len(), 6);
        assert_eq!(m.requires_dist[4].name.as_ref(), "pysocks");
        assert!(reqs(&m)[4].contains("extra == 'socks'"), "{:?}", reqs(&m));
        let extras: Vec<&str> = m.provides_extras.iter().map(AsRef::as_ref).collect();
        assert_eq!(extras, ["security", "socks", "use-chardet-on-py3"]);
        assert!(m.dynamic.is_empty());
    }

    #[test]
    fn crlf_folding_case_and_binary_description() {
        let mut bytes = [
            &b"metadata-version: 1.1\r\n"[..],
            b"NAME: Foo_Bar\r\n",
            b"version: 1.0.post1\r\n",
            b"Description: line one\r\n",
            b"        |continued \xff\xfe not utf-8\r\n",
            b"        |\r\n",
            b"Requires-Dist: six\r\n",
            b" (>=1.10)\r\n",
            b"\r\n",
        ]
        .concat();
        bytes.extend_from_slice(b"\xff\xfe\x00 body in latin-1: caf\xe9\r\n");
        let m = match Metadata::parse(&bytes) {
            Ok(m) => m,
            Err(err) => panic!("{err}"),
        };
        assert_eq!(m.name.as_ref(), "foo-bar");
        assert_eq!(m.version.to_string(), "1.0.post1");
        assert_eq!(reqs(&m), ["six>=1.10"]);
        assert_eq!(m.requires_python, None);
    }

    #[test]
    fn pkg_info_with_dynamic() {
        let m = parse(
            "Metadata-Version: 2.2\nName: clip-marqo\nVersion: 1.0.0\n\
Dynamic: Requires-Dist\nDynamic: license\n",
        );
        assert_eq!(m.dynamic, ["requires-dist", "license"]);
        assert!(m.is_dynamic("Requires-Dist"));
        assert!(!m.is_dynamic("Requires-Python"));
        assert!(m.metadata_version_at_least(2, 2));
        assert!(!m.metadata_version_at_least(2, 3));
    }

    #[test]
    fn metadata_version_comparison() {
        let mut m = parse("Metadata-Version: 2.10\nName: a\nVersion: 1\n");
        assert!(m.metadata_version_at_least(2, 2));
        m.metadata_version = "1.2".into();
        assert!(!m.metadata_version_at_least(2, 2));
        m.metadata_version = "3".into();
        assert!(m.metadata_version_at_least(2, 2));
        m.metadata_version = "garbage".into();
        assert!(!m.metadata_version_at_least(1, 0));
    }

    #[test]
    fn legacy_requires_dist_is_repaired() {
        let m = parse(
            "Metadata-Version: 2.0\nName: oldpkg\nVersion: 0.3\n\
Requires-Dist: foo (>=1.0)\n\
Requires-Dist: bar (>=1.0.*)\n\
Requires-Dist: baz >=2.0.0-beta\n\
Requires-Dist: qux[extra1,extra2] (>=1.0.*,<2) ; python_version < \"3.8\"\n\
Requires-Dist: spaced >=1.0 <2.0\n\
Requires-Dist: trailing >=1.0,\n\
Requires-Dist: keepwild (==1.4.*)\n",
        );
        let reqs: Vec<String> = reqs(&m);
        assert_eq!(reqs[0], "foo>=1.0");
        assert_eq!(reqs[1], "bar>=1.0");
        assert_eq!(reqs[2], "baz>=2.0.0b0");
        assert_eq!(reqs[3], "qux[extra1,extra2]>=1.0,<2 ; python_full_version < '3.8'");
        assert_eq!(reqs[4], "spaced>=1.0,<2.0");
        assert_eq!(reqs[5], "trailing>=1.0");
        assert_eq!(reqs[6], "keepwild==1.4.*");
    }

    #[test]
    fn unrepairable_requires_dist_names_package_and_line() {
        let err = Metadata::parse(
            b"Metadata-Version: 2.1\nName: broken\nVersion: 1.2\nRequires-Dist: ok\n\
Requires-Dist: pytz (>dev)\n",
        )
        .err()
        .map(|e| e.to_string());
        let Some(err) = err else { panic!("expected an error") };
        assert!(err.contains("broken 1.2"), "{err}");
        assert!(err.contains("pytz (>dev)"), "{err}");
        assert!(err.contains("line 5"), "{err}");
    }

    #[test]
    fn invalid_requires_python_is_ignored() {
        let m = parse("Metadata-Version: 2.1\nName: x\nVersion: 1\nRequires-Python: >=py3\n");
        assert_eq!(m.requires_python, None);
        let m = parse("Metadata-Version: 2.1\nName: x\nVersion: 1\nRequires-Python: >=3.6.*\n");
        assert_eq!(m.requires_python.map(|s| s.to_string()).as_deref(), Some(">=3.6"));
        let m = parse(
            "Metadata-Version: 2.1\nName: x\nVersion: 1\n\
Requires-Python: >=2.7, !=3.0.*, !=3.1.*\n",
        );
        assert_eq!(m.requires_python.map(|s| s.to_string()).as_deref(), Some(">=2.7, !=3.0.*, !=3.1.*"));
    }

    #[test]
    fn missing_and_invalid_required_fields() {
        let missing = |text: &str| Metadata::parse(text.as_bytes()).err().map(|e| e.to_string());
        assert_eq!(
            missing("Name: x\nVersion: 1\n").as_deref(),
            Some("core metadata has no `Metadata-Version` field")
        );
        assert_eq!(
            missing("Metadata-Version: 2.1\nName: x\n\nVersion: 1\n").as_deref(),
            Some("core metadata has no `Version` field")
        );
        let bad_version = missing("Metadata-Version: 2.1\nName: x\nVersion: one\n");
        assert!(bad_version.is_some_and(|e| e.contains("`Version: one`")));
        let bad_name = missing("Metadata-Version: 2.1\nName: -x-\nVersion: 1\n");
        assert!(bad_name.is_some_and(|e| e.contains("`Name: -x-`")));
        let not_utf8 = Metadata::parse(b"Metadata-Version: 2.1\nName: x\xff\nVersion: 1\n");
        assert!(matches!(not_utf8, Err(MetadataError::NotUtf8 { line: 2, .. })));
        let leading_continuation = Metadata::parse(b"  oops\nName: x\n");
        assert!(matches!(leading_continuation, Err(MetadataError::MalformedHeader { line: 1, .. })));
    }

    #[test]
    fn repairs_are_minimal() {
        assert_eq!(repair_specifiers(">=1.0"), None);
        assert_eq!(repair_specifiers(">=1.0.*").as_deref(), Some(">=1.0"));
        assert_eq!(repair_specifiers("~=1.4.*").as_deref(), Some("~=1.4"));
        assert_eq!(repair_specifiers("!=1.4.*, >= 1").as_deref(), Some("!=1.4.*, >=1"));
        assert_eq!(repair_specifiers(">dev"), None);
        assert_eq!(repair_specifiers("latest"), None);
        assert_eq!(repair_requirement("pkg @ https://example.org/p.whl"), None);
        assert_eq!(
            repair_requirement("a-b.c_d (>=1.*) ; sys_platform == 'linux'").as_deref(),
            Some("a-b.c_d >=1 ; sys_platform == 'linux'")
        );
    }
}
