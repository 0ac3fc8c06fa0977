//! Index configuration read the way pip (and so pip-compile) reads it.
//!
//! Sources, lowest priority first: the config files (global, user, site, then the one
//! `PIP_CONFIG_FILE` names), within them the `[global]` section under the `[install]` one,
//! then `PIP_*` environment variables, then the command line. As in pip, a list given on the
//! command line (`--extra-index-url`, `--find-links`) is appended to the configured list
//! rather than replacing it, and a setting in `[install]` of any file beats `[global]` of
//! every file. When nothing names an index, the host's pip is asked for its default, so no
//! registry host is written in our code.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use env_vars::EnvVars;
use url::Url;

/// Prints the default index URL of the host's pip.
const DEFAULT_INDEX_SCRIPT: &str = "from pip._internal.models.index import PyPI; print(PyPI.simple_url)";

/// Index options given on the command line (pip-compile's names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexArgs {
    /// `--index-url` / `-i`.
    pub index_url: Option<String>,
    /// `--extra-index-url`, repeatable.
    pub extra_index_urls: Vec<String>,
    /// `--find-links` / `-f`, repeatable: directories, files or URLs of flat pages.
    pub find_links: Vec<String>,
    /// `--no-index`.
    pub no_index: bool,
    /// `--cert`: a PEM bundle to trust instead of the system's.
    pub cert: Option<PathBuf>,
}

/// Where to look for distributions, and how to reach them.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexConfig {
    /// The main index (PEP 503 / 691 simple API root).
    pub index_url: Url,
    /// `index_url` is the host pip's default: nothing configured names an index.
    pub index_url_is_default: bool,
    /// Further indexes, asked in order after the main one.
    pub extra_index_urls: Vec<Url>,
    /// Find-links locations that exist (or are remote): directories, files, flat pages.
    pub find_links: Vec<String>,
    /// The CA bundle to trust (pip's `cert`).
    pub cert: Option<PathBuf>,
    /// pip's `timeout` in seconds, if configured.
    pub timeout: Option<f64>,
    /// Ignore the indexes; use only find-links.
    pub no_index: bool,
}

impl IndexConfig {
    /// Reads the configuration from this process's environment and pip's config files.
    pub fn from_pip(args: &IndexArgs) -> Result<IndexConfig, ConfigError> {
        IndexConfig::from_pip_with(args, &PipEnvironment::from_process())
    }

    /// Reads the configuration from an explicit environment (hermetic in tests).
    pub fn from_pip_with(args: &IndexArgs, env: &PipEnvironment) -> Result<IndexConfig, ConfigError> {
        let settings = Settings::read(env)?;

        let (index_url, index_url_is_default) = match &args.index_url {
            Some(value) => (parse_index_url(value, &Origin::Cli("--index-url"))?, false),
            None => match settings.get("index-url") {
                Some((value, origin)) => (parse_index_url(value, origin)?, false),
                None => (default_index(env)?, true),
            },
        };

        let mut extra_index_urls = Vec::new();
        if let Some((value, origin)) = settings.get("extra-index-url") {
            for item in value.split_whitespace() {
                extra_index_urls.push(parse_index_url(item, origin)?);
            }
        }
        for item in &args.extra_index_urls {
            extra_index_urls.push(parse_index_url(item, &Origin::Cli("--extra-index-url"))?);
        }

        let configured = settings
            .get("find-links")
            .map(|(v, origin)| v.split_whitespace().map(move |entry| (entry, origin.clone())))
            .into_iter()
            .flatten();
        let given = args.find_links.iter().map(|entry| (entry.as_str(), Origin::Cli("--find-links")));
        let find_links = configured
            .chain(given)
            .filter(|(entry, origin)| find_links_entry_exists(entry, origin))
            .map(|(entry, _)| entry.to_string())
            .collect();

        let cert = match &args.cert {
            Some(path) => Some(path.clone()),
            None => settings.get("cert").map(|(v, _)| expand_home(v, env)),
        };

        let timeout = match settings.get("timeout").or_else(|| settings.get("default-timeout")) {
            Some((value, origin)) => Some(parse_timeout(value, origin)?),
            None => None,
        };

        let no_index = args.no_index
            || match settings.get("no-index") {
                Some((value, origin)) => parse_bool(value, origin, "no-index")?,
                None => false,
            };

        Ok(IndexConfig {
            index_url,
            index_url_is_default,
            extra_index_urls,
            find_links,
            cert,
            timeout,
            no_index,
        })
    }

    /// Arguments that make a pip subprocess (a PEP 517 build environment) use the same
    /// indexes, find-links, CA bundle and timeout. URLs keep their credentials: pip needs them.
    pub fn pip_args(&self) -> Vec<String> {
        let mut args = vec!["--index-url".to_string(), self.index_url.to_string()];
        for url in &self.extra_index_urls {
            args.extend(["--extra-index-url".to_string(), url.to_string()]);
        }
        for entry in &self.find_links {
            args.extend(["--find-links".to_string(), entry.clone()]);
        }
        if self.no_index {
            args.push("--no-index".to_string());
        }
        if let Some(cert) = &self.cert {
            args.extend(["--cert".to_string(), cert.to_string_lossy().into_owned()]);
        }
        if let Some(timeout) = self.timeout {
            args.extend(["--timeout".to_string(), timeout.to_string()]);
        }
        args
    }

    /// The option lines pip-compile writes after its header so that `pip install -r` of the
    /// output finds the same files: `--index-url` (unless it is pip's default), each
    /// `--extra-index-url`, then each `--find-links`, as configured (`--no-index` too).
    /// Credentials are never written: pip finds them in netrc, a keyring or its own config.
    pub fn requirements_options(&self, emit_index_url: bool, emit_find_links: bool) -> Vec<String> {
        let mut out = Vec::new();
        if emit_index_url {
            if self.no_index {
                out.push("--no-index".to_string());
            } else {
                if !self.index_url_is_default {
                    out.push(format!("--index-url {}", fetch::without_credentials(&self.index_url)));
                }
                for url in &self.extra_index_urls {
                    out.push(format!("--extra-index-url {}", fetch::without_credentials(url)));
                }
            }
        }
        if emit_find_links {
            for entry in &self.find_links {
                let shown = match Url::parse(entry) {
                    Ok(url) if url.has_host() => fetch::without_credentials(&url).to_string(),
                    _ => entry.clone(),
                };
                out.push(format!("--find-links {shown}"));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        out.retain(|line| seen.insert(line.clone()));
        out
    }

    /// The indexes to ask, in order: none with `no_index`, else the main one then the extras.
    pub fn index_urls(&self) -> Vec<&Url> {
        if self.no_index {
            return Vec::new();
        }
        std::iter::once(&self.index_url).chain(&self.extra_index_urls).collect()
    }
}

/// The environment pip reads: variables and config file locations, made explicit so that
/// loading can be tested without touching the process environment or the host's files.
#[derive(Debug, Clone, Default)]
pub struct PipEnvironment {
    /// Environment variables (`PIP_*`, `HOME`, ...).
    pub vars: BTreeMap<String, String>,
    /// Site-wide config files, lowest priority (`$XDG_CONFIG_DIRS/pip/pip.conf`, `/etc/pip.conf`).
    pub global_files: Vec<PathBuf>,
    /// The user's config files (`~/.pip/pip.conf`, `$XDG_CONFIG_HOME/pip/pip.conf`).
    pub user_files: Vec<PathBuf>,
    /// The virtual environment's config file (`$VIRTUAL_ENV/pip.conf`).
    pub site_files: Vec<PathBuf>,
    /// The interpreter asked for pip's default index; `None` never asks.
    pub python: Option<OsString>,
    /// Where to remember that answer for a day: starting an interpreter costs more than a
    /// warm resolution, and pip's default changes only with pip itself.
    pub default_index_memo: Option<PathBuf>,
}

impl PipEnvironment {
    /// This process's environment, the host's config file locations, and `python3`.
    pub fn from_process() -> PipEnvironment {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        PipEnvironment { python: Some("python3".into()), ..PipEnvironment::from_vars(vars) }
    }

    /// The config file locations pip derives from these variables (Linux rules), without an
    /// interpreter to ask for the default index.
    pub fn from_vars(vars: BTreeMap<String, String>) -> PipEnvironment {
        let var = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        let config_dirs = var(EnvVars::XDG_CONFIG_DIRS).unwrap_or_else(|| "/etc/xdg".to_string());
        let mut global_files: Vec<PathBuf> = config_dirs
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join("pip").join("pip.conf"))
            .collect();
        global_files.push(PathBuf::from("/etc/pip.conf"));

        let home = var(EnvVars::HOME).map(PathBuf::from);
        let mut user_files = Vec::new();
        if let Some(home) = &home {
            user_files.push(home.join(".pip").join("pip.conf"));
        }
        let config_home =
            var(EnvVars::XDG_CONFIG_HOME).map(PathBuf::from).or_else(|| home.map(|h| h.join(".config")));
        if let Some(dir) = config_home {
            user_files.push(dir.join("pip").join("pip.conf"));
        }
        let site_files = var("VIRTUAL_ENV").map(|v| Path::new(&v).join("pip.conf")).into_iter().collect();
        PipEnvironment { vars, global_files, user_files, site_files, python: None, default_index_memo: None }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file exists but cannot be read.
    #[error("cannot read the pip config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A config file is not valid INI.
    #[error("{path}, line {line}: {reason}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },

    /// A setting has a value we cannot use.
    #[error("{origin}: `{key}` has the value `{value}`, which is not {expected}")]
    BadValue {
        /// Where the setting comes from (file and section, variable or option).
        origin: String,
        /// The setting's name.
        key: String,
        /// The value as written.
        value: String,
        /// What the value should be.
        expected: String,
    },

    /// Nothing names an index and the host's pip could not tell its default.
    #[error("no index URL is configured and the host's pip could not name its default ({reason})")]
    NoDefaultIndex {
        /// Why asking pip failed.
        reason: String,
    },
}

impl ConfigError {
    /// What to do about it, shown after the error and its causes.
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::NoDefaultIndex { .. } => Some("pass --index-url, or set PIP_INDEX_URL".into()),
            _ => None,
        }
    }
}

/// Where a setting comes from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Cli(&'static str),
    Env(String),
    File { path: PathBuf, section: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Cli(option) => write!(f, "option {option}"),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::File { path, section } => write!(f, "{} [{section}]", path.display()),
        }
    }
}

/// Every setting we care about, from every source, with its origin.
struct Settings {
    /// `(section, normalized key)` to value; later files already overrode earlier ones.
    files: BTreeMap<(String, String), (String, Origin)>,
    env: BTreeMap<String, (String, Origin)>,
}

impl Settings {
    fn read(env: &PipEnvironment) -> Result<Settings, ConfigError> {
        let mut files = BTreeMap::new();
        for path in config_files(env) {
            let text =
                match bounded::read_file_to_string(&path, bounded::MAX_TEXT_FILE, "a pip configuration file")
                {
                    Ok(text) => text,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(source) => return Err(ConfigError::Read { path, source }),
                };
            tracing::debug!("reading pip config file {}", path.display());
            for (section, key, value) in parse_ini(&text, &path)? {
                let origin = Origin::File { path: path.clone(), section: section.clone() };
                files.insert((section, normalize_key(&key)), (value, origin));
            }
        }
        let env = env
            .vars
            .iter()
            .filter_map(|(var, value)| {
                let name = var.strip_prefix(EnvVars::PIP_PREFIX)?;
                Some((normalize_key(name), (value.clone(), Origin::Env(var.clone()))))
            })
            .collect();
        Ok(Settings { files, env })
    }

    /// The winning value of a key: environment, then `[install]`, then `[global]`. An empty
    /// value counts as unset.
    fn get(&self, key: &str) -> Option<(&str, &Origin)> {
        let from_file = |section: &str| self.files.get(&(section.to_string(), key.to_string()));
        [self.env.get(key), from_file("install"), from_file("global")]
            .into_iter()
            .flatten()
            .find(|(value, _)| !value.trim().is_empty())
            .map(|(value, origin)| (value.trim(), origin))
    }
}

/// pip's list and order of config files, lowest priority first.
fn config_files(env: &PipEnvironment) -> Vec<PathBuf> {
    let named = env.vars.get(EnvVars::PIP_CONFIG_FILE).filter(|v| !v.is_empty()).map(PathBuf::from);
    if named.as_deref() == Some(Path::new("/dev/null")) {
        tracing::debug!("PIP_CONFIG_FILE is /dev/null: not reading any pip config file");
        return Vec::new();
    }
    let mut files = env.global_files.clone();
    // pip skips the user's files when PIP_CONFIG_FILE names an existing file.
    if !named.as_deref().is_some_and(Path::exists) {
        files.extend(env.user_files.iter().cloned());
    }
    files.extend(env.site_files.iter().cloned());
    files.extend(named);
    files
}

/// pip's key normalization: `index_url`, `INDEX_URL` and `--index-url` are all `index-url`.
fn normalize_key(key: &str) -> String {
    let key = key.trim().to_ascii_lowercase().replace('_', "-");
    key.strip_prefix("--").map(str::to_string).unwrap_or(key)
}

/// A minimal reader of the INI dialect of Python's `configparser` (pip's config format):
/// `[section]`, `key = value` or `key: value`, indented continuation lines, and full-line
/// `#` / `;` comments.
fn parse_ini(text: &str, path: &Path) -> Result<Vec<(String, String, String)>, ConfigError> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    let mut section: Option<String> = None;
    let syntax = |line: usize, reason: &str| ConfigError::Syntax {
        path: path.to_path_buf(),
        line,
        reason: reason.to_string(),
    };
    for (number, raw) in text.lines().enumerate().map(|(i, l)| (i + 1, l)) {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indented = raw.starts_with(|c: char| c.is_whitespace());
        if indented {
            match out.last_mut() {
                Some(last) if section.as_deref() == Some(last.0.as_str()) => {
                    last.2.push('\n');
                    last.2.push_str(trimmed);
                    continue;
                }
                _ => return Err(syntax(number, "an indented line continues no setting")),
            }
        }
        if let Some(name) = trimmed.strip_prefix('[') {
            let name = name
                .strip_suffix(']')
                .ok_or_else(|| syntax(number, "a section header lacks its closing `]`"))?;
            section = Some(name.trim().to_string());
            continue;
        }
        let Some(at) = trimmed.find(['=', ':']) else {
            return Err(syntax(number, "expected `[section]` or `key = value`"));
        };
        let Some(current) = &section else {
            return Err(syntax(number, "a setting comes before any `[section]` header"));
        };
        let (key, value) = (trimmed[..at].trim(), trimmed[at + 1..].trim());
        if key.is_empty() {
            return Err(syntax(number, "a setting has no name"));
        }
        out.push((current.clone(), key.to_string(), value.to_string()));
    }
    Ok(out)
}

fn bad_value(origin: &Origin, key: &str, value: &str, expected: &str) -> ConfigError {
    ConfigError::BadValue {
        origin: origin.to_string(),
        key: key.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

/// An index location: a URL, or a local directory (as pip accepts).
fn parse_index_url(value: &str, origin: &Origin) -> Result<Url, ConfigError> {
    let expected = "a URL (https://host/simple/) or an existing directory";
    match Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https" | "file") => Ok(url),
        Ok(_) => Err(bad_value(origin, "index-url", value, expected)),
        Err(_) => {
            let path = Path::new(value);
            let absolute = std::path::absolute(path).ok().filter(|p| p.is_dir());
            absolute
                .and_then(|p| Url::from_directory_path(p).ok())
                .ok_or_else(|| bad_value(origin, "index-url", value, expected))
        }
    }
}

fn parse_timeout(value: &str, origin: &Origin) -> Result<f64, ConfigError> {
    value
        .parse::<f64>()
        .ok()
        .filter(|t| t.is_finite() && *t > 0.0)
        .ok_or_else(|| bad_value(origin, "timeout", value, "a positive number of seconds"))
}

/// Python's `strtobool`, which pip uses for flags.
fn parse_bool(value: &str, origin: &Origin, key: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "y" | "yes" | "t" | "true" | "on" | "1" => Ok(true),
        "n" | "no" | "f" | "false" | "off" | "0" => Ok(false),
        _ => Err(bad_value(origin, key, value, "a boolean (yes/no, true/false, 1/0)")),
    }
}

fn expand_home(value: &str, env: &PipEnvironment) -> PathBuf {
    match (value.strip_prefix("~/"), env.vars.get("HOME")) {
        (Some(rest), Some(home)) => Path::new(home).join(rest),
        _ => PathBuf::from(value),
    }
}

/// Remote find-links are kept; local ones only if they exist. pip warns and goes on for a
/// missing one (machines set `PIP_FIND_LINKS` to directories that may not exist): so do we.
fn find_links_entry_exists(entry: &str, origin: &Origin) -> bool {
    let path = match Url::parse(entry) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => return true,
        Ok(url) if url.scheme() == "file" => url.to_file_path().ok(),
        _ => Some(PathBuf::from(entry)),
    };
    let exists = path.as_deref().is_some_and(Path::exists);
    if !exists {
        tracing::warn!("find-links location `{entry}` (from {origin}) is ignored: it does not exist");
    }
    exists
}

/// pip's default index, from the memo file when it is fresh and for the same interpreter.
fn default_index(env: &PipEnvironment) -> Result<Url, ConfigError> {
    const MEMO_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
    let python = env.python.as_deref().map(|p| p.to_string_lossy().into_owned());
    let memo = env.default_index_memo.as_deref();
    if let (Some(memo), Some(python)) = (memo, &python) {
        let fresh = std::fs::metadata(memo)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < MEMO_TTL);
        if fresh {
            let text = std::fs::read_to_string(memo).unwrap_or_default();
            if let Some((who, url)) = text.trim_end().split_once('\t') {
                if who == python {
                    if let Ok(url) = Url::parse(url) {
                        return Ok(url);
                    }
                }
            }
        }
    }
    let url = ask_pip_for_default_index(env.python.as_deref())?;
    if let (Some(memo), Some(python)) = (memo, &python) {
        // A lost memo only costs the next run an interpreter start.
        let write = || -> std::io::Result<()> {
            let dir = memo.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            std::io::Write::write_all(&mut tmp, format!("{python}\t{url}\n").as_bytes())?;
            tmp.persist(memo).map_err(|e| e.error)?;
            Ok(())
        };
        if let Err(e) = write() {
            tracing::debug!("cannot remember the default index in {}: {e}", memo.display());
        }
    }
    Ok(url)
}

fn ask_pip_for_default_index(python: Option<&std::ffi::OsStr>) -> Result<Url, ConfigError> {
    let Some(python) = python else {
        return Err(ConfigError::NoDefaultIndex { reason: "no interpreter to ask".to_string() });
    };
    let shown = python.to_string_lossy();
    let output = Command::new(python)
        .args(["-c", DEFAULT_INDEX_SCRIPT])
        .output()
        .map_err(|e| ConfigError::NoDefaultIndex { reason: format!("cannot run {shown}: {e}") })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("no output");
        return Err(ConfigError::NoDefaultIndex { reason: format!("{shown} failed: {last}") });
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let url = Url::parse(stdout.trim()).map_err(|e| ConfigError::NoDefaultIndex {
        reason: format!("{shown} printed `{}`: {e}", stdout.trim()),
    })?;
    tracing::debug!("default index from the host's pip: {url}");
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_dialect() {
        let text = "# comment\n[global]\nindex_url = https://a/simple\nextra-index-url =\n    https://b/simple\n    https://c/simple\n; other\n[install]\ntimeout: 5\n";
        let got = parse_ini(text, Path::new("pip.conf")).unwrap();
        assert_eq!(got[0], ("global".into(), "index_url".into(), "https://a/simple".into()));
        assert_eq!(got[1].2, "\nhttps://b/simple\nhttps://c/simple");
        assert_eq!(got[2], ("install".into(), "timeout".into(), "5".into()));
        let err = parse_ini("index-url = x\n", Path::new("/etc/pip.conf")).unwrap_err();
        assert!(err.to_string().contains("/etc/pip.conf, line 1"), "{err}");
        assert!(parse_ini("[global]\nno value here\n", Path::new("p")).is_err());
    }

    #[test]
    fn keys_normalize() {
        assert_eq!(normalize_key("INDEX_URL"), "index-url");
        assert_eq!(normalize_key("--extra-index-url"), "extra-index-url");
    }

    #[test]
    fn file_order_follows_pip() {
        let mut env = PipEnvironment::from_vars(BTreeMap::from([
            ("HOME".to_string(), "/home/u".to_string()),
            ("VIRTUAL_ENV".to_string(), "/venv".to_string()),
        ]));
        let expected: Vec<PathBuf> = [
            "/etc/xdg/pip/pip.conf",
            "/etc/pip.conf",
            "/home/u/.pip/pip.conf",
            "/home/u/.config/pip/pip.conf",
            "/venv/pip.conf",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(config_files(&env), expected);
        env.vars.insert("PIP_CONFIG_FILE".into(), "/dev/null".into());
        assert!(config_files(&env).is_empty());
    }
}
