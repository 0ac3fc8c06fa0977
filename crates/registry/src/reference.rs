//! Image references as `docker` and `skopeo` write them: `[HOST[:PORT]/]REPO[:TAG][@DIGEST]`,
//! normalised the way Docker normalises them (no host means Docker Hub, whose one-word
//! repositories live under `library/`).

use std::fmt;

use oci::Digest;

/// The registry a reference without a host means.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key Docker Hub's credentials have in `config.json` and in credential helpers.
const DOCKER_HUB_CREDENTIALS: &str = "https://index.docker.io/v1/";
/// The longest repository path the distribution spec accepts.
const MAX_NAME: usize = 255;
/// The longest tag.
const MAX_TAG: usize = 128;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The registry: `host`, `host:port` or `[v6]:port`; [`DOCKER_HUB`] when none was given.
    pub registry: String,
    /// The repository path on the registry, such as `library/debian` or `marqoai/marqo-base`.
    pub repository: String,
    /// The tag, if one was given.
    pub tag: Option<String>,
    /// The digest, if one was given (`@sha256:...`).
    pub digest: Option<Digest>,
}

/// Why a string is not an image reference; the message names the reference and the part
/// that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{reference}` is not a valid image reference: {reason}")]
pub struct ReferenceError {
    /// The reference as given.
    pub reference: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Reference {
    /// Parses `[HOST[:PORT]/]REPO[:TAG][@sha256:HEX]`.
    ///
    /// The first path component is a registry when it has a `.` or a `:`, or is `localhost`
    /// (as Docker decides); otherwise the reference is on Docker Hub. `docker.io` and its
    /// aliases become [`DOCKER_HUB`], and a one-component Docker Hub repository gets `library/`.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let fail = |reason: String| ReferenceError { reference: input.to_string(), reason };
        if input.is_empty() {
            return Err(fail(
                "it is empty; expected HOST/REPOSITORY[:TAG], such as 127.0.0.1:5000/base:1".into(),
            ));
        }
        if input.chars().any(char::is_whitespace) {
            return Err(fail("it contains white space".into()));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                let digest = Digest::parse(digest).map_err(|e| fail(e.to_string()))?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        // A `:` after the last `/` starts the tag (one before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].find(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(fail)?;
        }
        let (registry, repository) = split_registry(name);
        let registry = match registry {
            Some(host) => {
                check_host(host).map_err(fail)?;
                normalise_host(host)
            }
            None => DOCKER_HUB.to_string(),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
        check_repository(&repository).map_err(fail)?;
        Ok(Reference { registry, repository, tag: tag.map(str::to_string), digest })
    }

    /// The host (and port) that serves this registry's API: Docker Hub's is not `docker.io`.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// This repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference { tag: Some(tag.to_string()), digest: None, ..self.clone() }
    }

    /// What to ask the registry for: the digest if there is one, else the tag, else `latest`.
    pub fn target(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// A registry host as `login`/`logout` take it: `host[:port]`, also with an `https://` or
/// `http://` prefix and a path (as `docker login` accepts), normalised like a reference's.
pub fn parse_registry(input: &str) -> Result<String, ReferenceError> {
    let fail = |reason: String| ReferenceError { reference: input.to_string(), reason };
    let trimmed = input.trim();
    let bare =
        trimmed.strip_prefix("https://").or_else(|| trimmed.strip_prefix("http://")).unwrap_or(trimmed);
    let host = bare.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(fail("it names no registry host; expected HOST or HOST:PORT".into()));
    }
    check_host(host).map_err(fail)?;
    Ok(normalise_host(host))
}

/// The host that serves `registry`'s API.
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        registry
    }
}

/// The key `registry`'s credentials have in Docker's `config.json` and credential helpers.
pub fn credentials_key(registry: &str) -> String {
    if registry == DOCKER_HUB {
        DOCKER_HUB_CREDENTIALS.to_string()
    } else {
        registry.to_string()
    }
}

/// Whether `registry` is this machine (plain HTTP is then tried when HTTPS fails, as Docker does).
pub fn is_loopback(registry: &str) -> bool {
    let host = host_without_port(registry);
    host == "localhost"
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        || host.ends_with(".localhost")
}

/// `registry` without its `:port` (and without the brackets of an IPv6 address).
fn host_without_port(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.rsplit_once(':').map_or(registry, |(host, _)| host)
}

fn normalise_host(host: &str) -> String {
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        other => other.to_string(),
    }
}

/// Splits off the first component when Docker would take it for a registry host.
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':']) || first == "localhost" || first.starts_with('[') =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn check_host(host: &str) -> Result<(), String> {
    let (name, port) = if host.starts_with('[') {
        let Some(end) = host.find(']') else {
            return Err(format!("the registry `{host}` has an unclosed `[`"));
        };
        let port = host[end + 1..].strip_prefix(':');
        if host[1..end].parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{}` in the registry `{host}` is not an IPv6 address", &host[1..end]));
        }
        (None, port)
    } else {
        match host.split_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(host), None),
        }
    };
    if let Some(name) = name {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !name.split('.').all(label_ok) {
            return Err(format!("the registry host `{name}` is not a host name or an IP address"));
        }
    }
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!(
                "the port `{port}` of the registry `{host}` is not a number from 1 to 65535"
            ));
        }
    }
    Ok(())
}

fn check_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("the repository name is empty".into());
    }
    if repository.len() > MAX_NAME {
        return Err(format!(
            "the repository name has {} characters; at most {MAX_NAME} are allowed",
            repository.len()
        ));
    }
    for component in repository.split('/') {
        if component.is_empty() {
            return Err(format!("the repository `{repository}` has an empty path component"));
        }
        if component.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(format!(
                "the repository `{repository}` has upper-case letters; repository names are lower-case"
            ));
        }
        if !component_ok(component) {
            return Err(format!(
                "`{component}` in the repository `{repository}` is not a valid path component: use \
                 lower-case letters and digits, separated by `.`, `_`, `__` or dashes"
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`: the distribution spec's path component.
fn component_ok(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.first().is_some_and(|b| alnum(*b)) || !bytes.last().is_some_and(|b| alnum(*b)) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-')) {
            return false;
        }
    }
    true
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let ok_first = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = |b: u8| ok_first(b) || b == b'.' || b == b'-';
    if tag.is_empty() {
        return Err("the tag is empty".into());
    }
    if tag.len() > MAX_TAG {
        return Err(format!("the tag has {} characters; at most {MAX_TAG} are allowed", tag.len()));
    }
    let bytes = tag.as_bytes();
    if !ok_first(bytes[0]) || !bytes.iter().all(|b| ok(*b)) {
        return Err(format!(
            "the tag `{tag}` has characters a tag cannot have: use letters, digits, `_`, `.` and `-` \
             (not first)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn docker_hub_normalisation() {
        let r = parse("debian");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("docker.io", "library/debian", None)
        );
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(parse("marqoai/marqo-base:42").repository, "marqoai/marqo-base");
        assert_eq!(parse("docker.io/debian:12").to_string(), "docker.io/library/debian:12");
        assert_eq!(parse("index.docker.io/a/b").registry, "docker.io");
        assert_eq!(credentials_key("docker.io"), "https://index.docker.io/v1/");
    }

    #[test]
    fn hosts_ports_tags_digests() {
        let r = parse("127.0.0.1:5000/base:1");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "base", Some("1"))
        );
        assert_eq!(r.api_host(), "127.0.0.1:5000");
        assert_eq!(parse("localhost/a/b").registry, "localhost");
        assert_eq!(parse("localhost:5000/a").tag, None);
        let d = Digest::of_bytes(b"x");
        let r = parse(&format!("ghcr.io/o/r:t@{d}"));
        assert_eq!((r.tag.as_deref(), r.digest.as_ref()), (Some("t"), Some(&d)));
        assert_eq!(r.target(), d.to_string());
        assert_eq!(parse("[::1]:5000/x").registry, "[::1]:5000");
        assert_eq!(parse("a.b/c").target(), "latest");
    }

    #[test]
    fn refusals_name_the_problem() {
        for (input, needle) in [
            ("", "empty"),
            ("127.0.0.1:5000/Repo:1", "upper-case"),
            ("127.0.0.1:5000/repo:Bad Tag", "white space"),
            ("127.0.0.1:5000/repo:-x", "characters a tag cannot have"),
            ("127.0.0.1:5000/repo:", "tag is empty"),
            ("127.0.0.1:99999/repo", "port"),
            ("127.0.0.1:5000/", "empty"),
            ("127.0.0.1:5000/a//b", "empty path component"),
            ("127.0.0.1:5000/a-", "not a valid path component"),
            ("h.io/a@sha256:12", "malformed"),
        ] {
            let err = Reference::parse(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{input}: {err}");
            assert!(err.contains(&format!("`{input}`")), "{err}");
        }
        assert!(component_ok("a__b.c-d---e"));
        assert!(!component_ok("a___b") && !component_ok("a..b"));
    }

    #[test]
    fn registries_and_loopback() {
        assert_eq!(parse_registry("https://127.0.0.1:5000/v2/").unwrap(), "127.0.0.1:5000");
        assert_eq!(parse_registry("index.docker.io").unwrap(), "docker.io");
        assert!(parse_registry("").is_err());
        assert!(is_loopback("127.0.0.1:5000") && is_loopback("localhost") && is_loopback("[::1]:80"));
        assert!(!is_loopback("ghcr.io") && !is_loopback("10.0.0.1:5000"));
    }
}
