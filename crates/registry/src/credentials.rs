//! Credentials as Docker keeps them: `config.json` (`auths` with a base64 `auth` or an
//! `identitytoken`, `credsStore`, `credHelpers`) and the credential-helper protocol
//! (`docker-credential-NAME get|store|erase`, JSON on stdin/stdout).
//!
//! `config.json` is rewritten atomically with every key we do not know kept, through a
//! symbolic link if it is one, with its mode kept.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::reference::{credentials_key, DOCKER_HUB};
use crate::Error;

/// A user name and a secret for one registry. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (empty for an identity token without one).
    pub username: String,
    secret: String,
    identity_token: bool,
}

impl Credentials {
    /// A user name and password (or access token used as a password).
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials { username: username.into(), secret: password.into(), identity_token: false }
    }

    /// An OAuth2 refresh token (Docker's `identitytoken`), exchanged at the token server.
    pub fn identity_token(username: impl Into<String>, token: impl Into<String>) -> Credentials {
        Credentials { username: username.into(), secret: token.into(), identity_token: true }
    }

    /// The password or token.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Whether the secret is an identity (refresh) token rather than a password.
    pub fn is_identity_token(&self) -> bool {
        self.identity_token
    }

    /// The value of an `Authorization: Basic` header.
    pub(crate) fn basic_header(&self) -> String {
        let pair = format!("{}:{}", self.username, self.secret);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &"****")
            .field("identity_token", &self.identity_token)
            .finish()
    }
}

/// Docker's `config.json`, as read (a missing file reads as empty).
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    root: Map<String, Value>,
}

impl DockerConfig {
    /// Where Docker keeps it: `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn default_path() -> Option<PathBuf> {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        var(env_vars::EnvVars::DOCKER_CONFIG)
            .map(|dir| dir.join("config.json"))
            .or_else(|| var(env_vars::EnvVars::HOME).map(|home| home.join(".docker").join("config.json")))
    }

    /// Reads the file at `path`; a missing file is an empty configuration.
    pub fn read(path: impl Into<PathBuf>) -> Result<DockerConfig, Error> {
        let path = path.into();
        let bytes = match bounded::read_file(&path, bounded::MAX_TEXT_FILE, "Docker's config.json") {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DockerConfig { path, root: Map::new() });
            }
            Err(e) => return Err(Error::io("read", path)(e)),
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(DockerConfig { path, root: Map::new() });
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(root)) => Ok(DockerConfig { path, root }),
            Ok(_) => Err(Error::Config { path, reason: "is not a JSON object".into() }),
            Err(e) => Err(Error::Config { path, reason: format!("is not valid JSON: {e}") }),
        }
    }

    /// The file this configuration is read from and written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The credential helper for `registry`: its `credHelpers` entry, else `credsStore`.
    pub fn helper_for(&self, registry: &str) -> Option<String> {
        let helpers = self.root.get("credHelpers").and_then(Value::as_object);
        let specific =
            helpers.and_then(|h| h.iter().find(|(k, _)| same_registry(k, registry))).map(|(_, v)| v);
        specific
            .or_else(|| self.root.get("credsStore"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// The credentials stored for `registry` (a host as [`crate::Reference::registry`]
    /// gives it): from its helper if one is configured, else from `auths`.
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>, Error> {
        if let Some(helper) = self.helper_for(registry) {
            if let Some(found) = helper_get(&helper, &credentials_key(registry))? {
                return Ok(Some(found));
            }
        }
        let Some((_, entry)) = self.auth_entry(registry) else { return Ok(None) };
        let field = |name: &str| entry.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
        let (mut username, mut password) =
            (field("username").map(str::to_string), field("password").map(str::to_string));
        if let Some(auth) = field("auth") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_string(), p.to_string())));
            let Some((u, p)) = decoded else {
                return Err(Error::Config {
                    path: self.path.clone(),
                    reason: format!("has an `auth` for {registry} that is not base64 of `user:password`"),
                });
            };
            (username, password) = (Some(u), Some(p));
        }
        if let Some(token) = field("identitytoken") {
            return Ok(Some(Credentials::identity_token(username.unwrap_or_default(), token)));
        }
        Ok(match (username, password) {
            (Some(u), Some(p)) => Some(Credentials::basic(u, p)),
            _ => None,
        })
    }

    /// Stores `credentials` for `registry`: through its helper if one is configured (the
    /// `auths` entry is then left without secrets, as Docker does), else base64 in `auths`.
    /// Writes the file atomically.
    pub fn store(&mut self, registry: &str, credentials: &Credentials) -> Result<(), Error> {
        let key = credentials_key(registry);
        let mut entry = Map::new();
        match self.helper_for(registry) {
            Some(helper) => helper_store(&helper, &key, credentials)?,
            None if credentials.identity_token => {
                entry.insert("identitytoken".into(), Value::String(credentials.secret.clone()));
            }
            None => {
                let pair = format!("{}:{}", credentials.username, credentials.secret);
                entry.insert(
                    "auth".into(),
                    Value::String(base64::engine::general_purpose::STANDARD.encode(pair)),
                );
            }
        }
        self.remove_auth_entries(registry);
        self.auths_mut()?.insert(key, Value::Object(entry));
        self.write()
    }

    /// Removes the credentials of `registry` (from its helper and from `auths`); whether
    /// there were any. Writes the file only when it changed.
    pub fn erase(&mut self, registry: &str) -> Result<bool, Error> {
        let mut found = false;
        if let Some(helper) = self.helper_for(registry) {
            found |= helper_erase(&helper, &credentials_key(registry))?;
        }
        if self.remove_auth_entries(registry) {
            found = true;
            self.write()?;
        }
        Ok(found)
    }

    fn auth_entry(&self, registry: &str) -> Option<(&String, &Map<String, Value>)> {
        let auths = self.root.get("auths")?.as_object()?;
        let exact = credentials_key(registry);
        auths
            .iter()
            .find(|(k, _)| **k == exact)
            .or_else(|| auths.iter().find(|(k, _)| same_registry(k, registry)))
            .and_then(|(k, v)| Some((k, v.as_object()?)))
    }

    fn remove_auth_entries(&mut self, registry: &str) -> bool {
        let Some(auths) = self.root.get_mut("auths").and_then(Value::as_object_mut) else { return false };
        let keys: Vec<String> = auths.keys().filter(|k| same_registry(k, registry)).cloned().collect();
        for key in &keys {
            auths.remove(key);
        }
        !keys.is_empty()
    }

    fn auths_mut(&mut self) -> Result<&mut Map<String, Value>, Error> {
        let path = self.path.clone();
        self.root
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or(Error::Config { path, reason: "has an `auths` that is not an object".into() })
    }

    /// Writes the file atomically (temporary file in the same directory, fsync, rename), as
    /// Docker's CLI does: through a symbolic link (the file it points at is replaced, in
    /// that file's directory, and the link stays), keeping the file's mode and owner; a new
    /// file is readable by its owner only.
    fn write(&self) -> Result<(), Error> {
        let target = resolve_links(&self.path)?;
        let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
        let mut bytes = serde_json::to_vec_pretty(&self.root).map_err(|e| Error::Config {
            path: self.path.clone(),
            reason: format!("cannot be serialized: {e}"),
        })?;
        bytes.push(b'\n');
        let mut file = tempfile::Builder::new()
            .prefix(".config.json.tmp-")
            .tempfile_in(dir)
            .map_err(Error::io("create a temporary file in", dir))?;
        match std::fs::metadata(&target) {
            Ok(existing) => {
                use std::os::unix::fs::MetadataExt as _;
                // Another owner's file stays theirs where we may say so (as root); elsewhere
                // it becomes ours, as any rewrite would make it.
                let _ = std::os::unix::fs::fchown(file.as_file(), Some(existing.uid()), Some(existing.gid()));
                file.as_file()
                    .set_permissions(existing.permissions())
                    .map_err(Error::io("set the mode of", file.path()))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read", &target)(e)),
        }
        file.write_all(&bytes).map_err(Error::io("write", file.path()))?;
        file.as_file().sync_all().map_err(Error::io("sync", file.path()))?;
        file.persist(&target).map_err(|e| Error::io("replace", &target)(e.error))?;
        Ok(())
    }
}

/// The file `path` names once its symbolic links are followed (a relative link is read
/// from the link's directory); the last one may point at a file that does not exist yet.
fn resolve_links(path: &Path) -> Result<PathBuf, Error> {
    /// As many links as Linux follows before `ELOOP`.
    const MAX_LINKS: usize = 40;
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&current).map_err(Error::io("read the link", &current))?;
                current = match current.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(Error::io("read", current)(e)),
        }
    }
    Err(Error::Config {
        path: path.to_path_buf(),
        reason: format!("is a chain of more than {MAX_LINKS} links"),
    })
}

/// Whether a `config.json` key (`host`, `https://host/v1/`, ...) names `registry`.
fn same_registry(key: &str, registry: &str) -> bool {
    let bare = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let host = bare.split('/').next().unwrap_or_default();
    let host = match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB,
        other => other,
    };
    host == registry
}

/// What a helper says when it has nothing for a server.
fn is_not_found(output: &str) -> bool {
    output.to_ascii_lowercase().contains("credentials not found")
}

fn run_helper(
    helper: &str,
    action: &'static str,
    server: &str,
    input: &[u8],
) -> Result<(bool, String), Error> {
    let program = format!("docker-credential-{helper}");
    let fail = |reason: String| Error::Helper {
        helper: helper.to_string(),
        action,
        server: server.to_string(),
        reason,
    };
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run `{program}` ({e}); is it on PATH?")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).map_err(|e| fail(format!("cannot write to it: {e}")))?;
    }
    // Both streams at once (a helper filling one pipe would wait for us on it): stderr keeps
    // its first [`MAX_HELPER_OUTPUT`] bytes and drains the rest; stdout past that is an error
    // and the helper is killed.
    let stderr = child.stderr.take().map(|stderr| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut stderr = stderr;
            let _ = (&mut stderr).take(MAX_HELPER_OUTPUT).read_to_end(&mut kept);
            let _ = std::io::copy(&mut stderr, &mut std::io::sink());
            kept
        })
    });
    let what = format!("the output of `{program} {action}`");
    let stdout = match child.stdout.take().map(|out| bounded::read_all(out, MAX_HELPER_OUTPUT, &what)) {
        Some(Err(e)) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(e.to_string()));
        }
        Some(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        None => String::new(),
    };
    let status = child.wait().map_err(|e| fail(format!("cannot wait for it: {e}")))?;
    let stderr = stderr.and_then(|reader| reader.join().ok()).unwrap_or_default();
    if status.success() {
        return Ok((true, stdout));
    }
    // Helpers print "credentials not found in native keychain" on stdout when they have none.
    let said = format!("{}{}", stdout.trim(), String::from_utf8_lossy(&stderr).trim());
    if is_not_found(&said) {
        return Ok((false, said));
    }
    Err(fail(format!("it exited with {status}: {}", said.lines().next().unwrap_or_default())))
}

/// The most a credential helper's stdout may hold (1 MiB; real answers are a few hundred
/// bytes), and the most of its stderr kept for a message.
const MAX_HELPER_OUTPUT: u64 = 1 << 20;

fn helper_get(helper: &str, server: &str) -> Result<Option<Credentials>, Error> {
    let (found, stdout) = run_helper(helper, "get", server, server.as_bytes())?;
    if !found {
        return Ok(None);
    }
    let fail = |reason: &str| Error::Helper {
        helper: helper.to_string(),
        action: "get",
        server: server.to_string(),
        reason: reason.to_string(),
    };
    let value: Value = serde_json::from_str(&stdout).map_err(|_| fail("its answer is not JSON"))?;
    let field = |name: &str| value.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
    let (username, secret) = (field("Username"), field("Secret"));
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if username == "<token>" {
        Credentials::identity_token("", secret)
    } else {
        Credentials::basic(username, secret)
    }))
}

fn helper_store(helper: &str, server: &str, credentials: &Credentials) -> Result<(), Error> {
    let username = if credentials.identity_token { "<token>" } else { credentials.username.as_str() };
    let input =
        serde_json::json!({ "ServerURL": server, "Username": username, "Secret": credentials.secret });
    run_helper(helper, "store", server, input.to_string().as_bytes())?;
    Ok(())
}

fn helper_erase(helper: &str, server: &str) -> Result<bool, Error> {
    Ok(run_helper(helper, "erase", server, server.as_bytes())?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_auths_and_keeps_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("me:s3cret");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"127.0.0.1:5000":{{"identitytoken":"tok"}}}},"psFormat":"x"}}"#),
        )
        .unwrap();
        let mut config = DockerConfig::read(&path).unwrap();
        assert_eq!(config.get("docker.io").unwrap(), Some(Credentials::basic("me", "s3cret")));
        let token = config.get("127.0.0.1:5000").unwrap().unwrap();
        assert!(token.is_identity_token() && token.secret() == "tok");
        assert_eq!(config.get("ghcr.io").unwrap(), None);
        assert!(!format!("{token:?}").contains("tok\""), "{token:?}");

        config.store("ghcr.io", &Credentials::basic("u", "p")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("psFormat") && text.contains("ghcr.io"), "{text}");
        assert_eq!(
            DockerConfig::read(&path).unwrap().get("ghcr.io").unwrap(),
            Some(Credentials::basic("u", "p"))
        );
        assert!(config.erase("docker.io").unwrap());
        assert!(!config.erase("docker.io").unwrap());
        assert_eq!(DockerConfig::read(&path).unwrap().get("docker.io").unwrap(), None);
    }

    #[test]
    fn a_link_to_a_file_not_there_yet_is_written_through() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        let link = dir.path().join("config.json");
        std::os::unix::fs::symlink("real/docker.json", &link).unwrap();
        let mut config = DockerConfig::read(&link).unwrap();
        config.store("x.io", &Credentials::basic("u", "p")).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        let target = dir.path().join("real/docker.json");
        assert_eq!(std::fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            DockerConfig::read(&link).unwrap().get("x.io").unwrap(),
            Some(Credentials::basic("u", "p"))
        );
        std::os::unix::fs::symlink("loop-b", dir.path().join("loop-a")).unwrap();
        std::os::unix::fs::symlink("loop-a", dir.path().join("loop-b")).unwrap();
        let err = resolve_links(&dir.path().join("loop-a")).unwrap_err().to_string();
        assert!(err.contains("more than 40 links"), "{err}");
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        assert!(DockerConfig::read(&path).unwrap().get("x.io").unwrap().is_none());
        std::fs::write(&path, "{nope").unwrap();
        let err = DockerConfig::read(&path).unwrap_err().to_string();
        assert!(err.contains("config.json") && err.contains("not valid JSON"), "{err}");
        std::fs::write(&path, r#"{"auths":{"x.io":{"auth":"%%%"}}}"#).unwrap();
        let err = DockerConfig::read(&path).unwrap().get("x.io").unwrap_err().to_string();
        assert!(err.contains("x.io") && err.contains("base64"), "{err}");
    }

    #[test]
    fn helper_selection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credsStore":"desktop","credHelpers":{"gcr.io":"gcloud"}}"#).unwrap();
        let config = DockerConfig::read(&path).unwrap();
        assert_eq!(config.helper_for("gcr.io").as_deref(), Some("gcloud"));
        assert_eq!(config.helper_for("ghcr.io").as_deref(), Some("desktop"));
        assert!(same_registry("https://index.docker.io/v1/", "docker.io"));
        assert!(same_registry("http://127.0.0.1:5000", "127.0.0.1:5000"));
        assert!(!same_registry("127.0.0.1:5001", "127.0.0.1:5000"));
    }
}
