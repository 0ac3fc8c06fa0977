//! Where packages come from: a mirror, a suite, its components and the keyring that signs
//! it; read from the manifest or, failing that, from this host's apt sources.

use std::path::{Path, PathBuf};

use url::Url;

use crate::deb822;
use crate::error::io_error;
use crate::Error;

/// The keyring used when a source names none.
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// A Debian suite on a mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebSource {
    /// The archive root (the directory holding `dists/` and `pool/`).
    pub mirror: Url,
    /// The suite or codename (`bullseye`, `bookworm-updates`, ...).
    pub suite: String,
    /// The components to read (`main`, ...).
    pub components: Vec<String>,
    /// The OpenPGP keyring that must have signed `InRelease` (binary `.gpg`, armored
    /// `.asc`, or a directory of those).
    pub keyring: PathBuf,
    /// Refuse a `Release` whose `Valid-Until` has passed (as apt does). Turn off only for
    /// archived snapshots.
    pub check_valid_until: bool,
}

/// One entry of an apt sources file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    /// The archive root.
    pub uri: String,
    /// The suites.
    pub suites: Vec<String>,
    /// The components.
    pub components: Vec<String>,
    /// `Signed-By` / `[signed-by=...]`, when it names a file.
    pub signed_by: Option<PathBuf>,
    /// The file it came from.
    pub file: PathBuf,
}

impl DebSource {
    /// A source with the `main` component, checking `Valid-Until`.
    pub fn new(mirror: Url, suite: &str, keyring: impl Into<PathBuf>) -> DebSource {
        DebSource {
            mirror,
            suite: suite.to_string(),
            components: vec!["main".to_string()],
            keyring: keyring.into(),
            check_valid_until: true,
        }
    }

    /// The mirror and keyring of this host's apt sources (`/etc/apt/sources.list`,
    /// `sources.list.d/*.list` and deb822 `*.sources`) for `suite` (default: the host's own
    /// main suite). The keyring is the source's `Signed-By`, else [`DEFAULT_KEYRING`].
    pub fn from_host_apt(suite: Option<&str>) -> Result<DebSource, Error> {
        DebSource::from_apt_dir(Path::new("/etc/apt"), suite)
    }

    /// As [`DebSource::from_host_apt`], with the apt configuration directory given.
    ///
    /// The entry used is the first `deb` entry that lists `suite`; else, for a suite with a
    /// `-security`/`-updates` style suffix, the first entry with a suite of that suffix;
    /// else the first entry with a plain suite (the main archive, whose mirror serves every
    /// release). Its components are used, or `main` when the suite is not its own.
    pub fn from_apt_dir(etc_apt: &Path, suite: Option<&str>) -> Result<DebSource, Error> {
        let (entries, searched) = read_apt_sources(etc_apt)?;
        let suffix = |s: &str| s.split_once('-').map(|(_, x)| x.to_string());
        let wanted_suffix = suite.and_then(suffix);
        let exact = suite.and_then(|want| entries.iter().find(|e| e.suites.iter().any(|s| s == want)));
        let similar = || {
            entries.iter().find(|e| e.suites.iter().any(|s| suffix(s) == wanted_suffix && !s.contains('/')))
        };
        let chosen = exact.or_else(similar).ok_or_else(|| Error::NoHostSource {
            suite: suite.unwrap_or("any").to_string(),
            searched: searched.clone(),
            hint: "name the mirror (--mirror URL, or [debian] mirror in the manifest) or add a `deb` source",
        })?;
        let suite_name = match suite {
            Some(s) => s.to_string(),
            None => chosen.suites.iter().find(|s| !s.contains('-')).unwrap_or(&chosen.suites[0]).clone(),
        };
        let components = if exact.is_some() || suite.is_none() {
            chosen.components.clone()
        } else {
            vec!["main".to_string()]
        };
        let mut uri = chosen.uri.clone();
        if !uri.ends_with('/') {
            uri.push('/');
        }
        let mirror = Url::parse(&uri).map_err(|e| Error::Field {
            file: chosen.file.display().to_string(),
            package: String::new(),
            field: "URIs",
            reason: format!("`{uri}` is not a URL: {e}"),
        })?;
        Ok(DebSource {
            mirror,
            suite: suite_name,
            components,
            keyring: chosen.signed_by.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_KEYRING)),
            check_valid_until: true,
        })
    }

    /// The URL of a file under `dists/<suite>/`.
    pub fn dists_url(&self, file: &str) -> Result<Url, Error> {
        self.url(&format!("dists/{}/{file}", self.suite))
    }

    /// The URL of a path under the mirror root (a `Filename` from an index).
    pub fn url(&self, path: &str) -> Result<Url, Error> {
        let mut base = self.mirror.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        if path.starts_with('/') || path.split('/').any(|c| c == "..") {
            return Err(Error::Field {
                file: self.mirror.to_string(),
                package: String::new(),
                field: "Filename",
                reason: format!("`{path}` is not a relative path under the mirror"),
            });
        }
        base.join(path).map_err(|e| Error::Field {
            file: self.mirror.to_string(),
            package: String::new(),
            field: "Filename",
            reason: format!("`{path}`: {e}"),
        })
    }
}

/// Reads every enabled `deb` entry of the apt sources under `etc_apt`, in apt's order
/// (`sources.list`, then `sources.list.d/` by name). Also returns a description of the
/// files searched, for messages.
pub fn read_apt_sources(etc_apt: &Path) -> Result<(Vec<AptSource>, String), Error> {
    let mut files = vec![etc_apt.join("sources.list")];
    let dir = etc_apt.join("sources.list.d");
    if let Ok(read) = std::fs::read_dir(&dir) {
        let mut names: Vec<PathBuf> = read
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "list" || x == "sources"))
            .collect();
        names.sort();
        files.extend(names);
    }
    let mut out = Vec::new();
    for file in &files {
        let text = match bounded::read_file_to_string(file, bounded::MAX_TEXT_FILE, "an apt sources file") {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error("read", file)(e)),
        };
        if file.extension().is_some_and(|x| x == "sources") {
            out.extend(parse_deb822_sources(&text, file)?);
        } else {
            out.extend(parse_one_line_sources(&text, file));
        }
    }
    let searched =
        format!("{} and {}/*.{{list,sources}}", etc_apt.join("sources.list").display(), dir.display());
    Ok((out, searched))
}

/// Parses deb822 `.sources` entries (`Types`, `URIs`, `Suites`, `Components`, `Signed-By`,
/// `Enabled`). A `Signed-By` holding an inline key rather than a path is ignored.
pub fn parse_deb822_sources(text: &str, file: &Path) -> Result<Vec<AptSource>, Error> {
    let mut out = Vec::new();
    for p in deb822::paragraphs(text) {
        let p = p.map_err(|source| Error::Syntax { file: file.display().to_string(), source })?;
        let words = |name| p.get(name).map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>());
        if !words("Types").unwrap_or_default().iter().any(|t| t == "deb") {
            continue;
        }
        if p.get("Enabled").is_some_and(|v| v.eq_ignore_ascii_case("no")) {
            continue;
        }
        let signed_by = p
            .get("Signed-By")
            .map(str::trim)
            .filter(|v| v.starts_with('/') && !v.contains('\n'))
            .map(PathBuf::from);
        let suites = words("Suites").unwrap_or_default();
        for uri in words("URIs").unwrap_or_default() {
            if suites.is_empty() {
                continue;
            }
            out.push(AptSource {
                uri,
                suites: suites.clone(),
                components: words("Components").unwrap_or_default(),
                signed_by: signed_by.clone(),
                file: file.to_path_buf(),
            });
        }
    }
    Ok(out)
}

/// Parses one-line `deb [options] uri suite component...` entries.
pub fn parse_one_line_sources(text: &str, file: &Path) -> Vec<AptSource> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line.strip_prefix("deb ").or_else(|| line.strip_prefix("deb\t")) else {
            continue;
        };
        let mut rest = rest.trim_start();
        let mut signed_by = None;
        if let Some(opts) = rest.strip_prefix('[') {
            let Some(close) = opts.find(']') else { continue };
            for opt in opts[..close].split_whitespace() {
                if let Some(v) = opt.strip_prefix("signed-by=") {
                    signed_by = v.split(',').next().filter(|p| p.starts_with('/')).map(PathBuf::from);
                }
            }
            rest = opts[close + 1..].trim_start();
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else { continue };
        out.push(AptSource {
            uri: uri.to_string(),
            suites: vec![suite.to_string()],
            components: words.map(str::to_string).collect(),
            signed_by,
            file: file.to_path_buf(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apt_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sources.list.d")).unwrap();
        std::fs::write(
            dir.path().join("sources.list.d/debian.sources"),
            "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main contrib\nSigned-By: /k/debian.gpg\n\n\
             Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\nComponents: main\nSigned-By: /k/debian.gpg\n\n\
             Types: deb-src\nURIs: http://src.invalid/\nSuites: bullseye\nComponents: main\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("sources.list.d/other.list"),
            "# comment\ndeb [arch=amd64 signed-by=/k/other.gpg] http://other.invalid/apt stable main\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("sources.list.d/off.list.disabled"),
            "deb http://off.invalid/ x main\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn picks_the_main_archive_for_another_release() {
        let dir = apt_dir();
        let s = DebSource::from_apt_dir(dir.path(), Some("bullseye")).unwrap();
        assert_eq!(s.mirror.as_str(), "http://mirror.invalid/debian/");
        assert_eq!(s.suite, "bullseye");
        assert_eq!(s.components, ["main"]);
        assert_eq!(s.keyring, Path::new("/k/debian.gpg"));
        let s = DebSource::from_apt_dir(dir.path(), Some("bullseye-security")).unwrap();
        assert_eq!(s.mirror.as_str(), "http://mirror.invalid/debian-security/");
        let s = DebSource::from_apt_dir(dir.path(), None).unwrap();
        assert_eq!((s.suite.as_str(), s.components.len()), ("bookworm", 2));
        let s = DebSource::from_apt_dir(dir.path(), Some("stable")).unwrap();
        assert_eq!(s.mirror.as_str(), "http://other.invalid/apt/");
        assert_eq!(s.keyring, Path::new("/k/other.gpg"));
    }

    #[test]
    fn no_source_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = DebSource::from_apt_dir(dir.path(), Some("bullseye")).unwrap_err();
        assert!(err.hint().is_some(), "{err}");
    }

    #[test]
    fn urls_stay_under_the_mirror() {
        let s = DebSource::new(Url::parse("http://m.invalid/debian").unwrap(), "bullseye", DEFAULT_KEYRING);
        assert_eq!(
            s.dists_url("InRelease").unwrap().as_str(),
            "http://m.invalid/debian/dists/bullseye/InRelease"
        );
        assert!(s.url("../x").is_err());
        assert!(s.url("/etc/passwd").is_err());
    }
}
