//! Reaching OCI registries: Docker's stored credentials, a client per host, and registry
//! errors with their hints.

use std::path::PathBuf;

use std::sync::Arc;
use std::time::Instant;

use oci::Platform;
use registry::{ClientOptions, Credentials, DockerConfig, Reference, RegistryClient};

use crate::{Error, Reporter};

/// How registries are reached (`--insecure`, `--retries`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetOptions {
    /// Allow plain HTTP when HTTPS fails (always allowed for loopback).
    pub insecure: bool,
    /// How many times a transient failure is retried.
    pub retries: u32,
}

/// A registry error as the user sees it: network and registry failures exit 3, the rest 2;
/// either way its hint goes last, after the causes it explains.
pub fn registry_error(context: &str, error: registry::Error) -> Error {
    Error::from_error(context, error)
}

pub fn docker_config_path() -> Result<PathBuf, Error> {
    DockerConfig::default_path().ok_or_else(|| {
        Error::user("cannot find Docker's config.json: neither DOCKER_CONFIG nor HOME is set")
            .with_hint("set DOCKER_CONFIG to a directory")
    })
}

pub fn stored_credentials(host: &str) -> Result<Option<Credentials>, Error> {
    let path = docker_config_path()?;
    let config = DockerConfig::read(&path).map_err(|e| registry_error("cannot read the credentials", e))?;
    config.get(host).map_err(|e| registry_error(&format!("cannot read the credentials of {host}"), e))
}

pub fn client_for(
    host: &str,
    credentials: Option<Credentials>,
    net: &NetOptions,
) -> Result<RegistryClient, Error> {
    let http = crate::env::client(fetch::ClientOptions::default())?;
    let options = ClientOptions { insecure: net.insecure, retries: net.retries, ..ClientOptions::default() };
    Ok(RegistryClient::new(http.http().clone(), host, credentials, &options))
}

pub use crate::env::runtime;

/// Refuses a `--record` path that cannot be written before anything is pushed, so that a
/// push never moves a tag (or burns a `--tag next` number) and then fails at the record.
pub fn check_writable(path: &std::path::Path) -> Result<(), Error> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let probe = tempfile::Builder::new().prefix(".record.probe-").tempfile_in(dir);
    match probe {
        Ok(_) if path.is_dir() => Err(Error::user(format!("--record {} is a directory", path.display()))
            .with_hint("name a file to write, such as --record pushed.json")),
        Ok(_) => Ok(()),
        Err(e) => Err(Error::from_error(format!("cannot write the record {}", path.display()), e)
            .with_hint("create its directory first, or name another --record path; nothing was pushed")),
    }
}

/// Where a pulled image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullTarget {
    /// An OCI image layout directory (new or empty).
    Oci(PathBuf),
    /// A docker-archive tar of one platform.
    DockerArchive(PathBuf),
}

/// How many blobs are fetched at once.
const PARALLEL_BLOBS: usize = 4;

/// What `pull` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullOutcome {
    pub reference: String,
    /// The digest of what the reference named (an index or a manifest).
    pub digest: String,
    pub platforms: Vec<String>,
    pub blobs: usize,
    pub bytes: u64,
    pub out: PathBuf,
    /// `oci` or `docker-archive`.
    pub format: &'static str,
    /// The SBOM files written (`--sbom DIR`), one per platform.
    pub sboms: Vec<PathBuf>,
}

/// Pulls `reference` (the given `platforms`, or every one) into `target`: every blob
/// hash-checked into the cache (interrupted downloads continue), then assembled beside the
/// target and moved into place.
pub fn pull(
    reference: &Reference,
    platforms: &[Platform],
    target: &PullTarget,
    sbom_dir: Option<&std::path::Path>,
    net: &NetOptions,
    printer: &dyn Reporter,
) -> Result<PullOutcome, Error> {
    let started = Instant::now();
    let cache = crate::env::cache()?;
    let client = client_for(&reference.registry, stored_credentials(&reference.registry)?, net)?;
    let runtime = runtime()?;
    let mut pulled = runtime
        .block_on(registry::resolve_pull(&client, reference, platforms))
        .map_err(|e| registry_error(&format!("cannot pull {reference}"), e))?;
    // The SBOMs are found (or found missing) before the blobs are downloaded.
    let sboms = match sbom_dir {
        Some(dir) => runtime.block_on(attached_sboms(&client, reference, &pulled, dir))?,
        None => Vec::new(),
    };
    let blobs =
        pulled.blob_descriptors().map_err(|e| registry_error(&format!("cannot pull {reference}"), e))?;
    let bytes: u64 = blobs.iter().map(|b| b.size).sum();
    let bar = printer.bar(bytes, &format!("Pulling {} blobs", blobs.len()), true);
    let progress = {
        let bar = bar.clone();
        Arc::new(move |n: u64| bar.inc(n)) as registry::ProgressFn
    };
    let fetched = runtime.block_on(registry::fetch_blobs(
        &client,
        &mut pulled,
        platforms,
        &cache,
        PARALLEL_BLOBS,
        progress,
    ));
    bar.finish_and_clear();
    fetched.map_err(|e| registry_error(&format!("cannot pull {reference}"), e))?;
    let tag = reference.tag.clone().unwrap_or_else(|| "latest".to_string());
    let (PullTarget::Oci(dest) | PullTarget::DockerArchive(dest)) = target;
    crate::env::remove_stale_staging(dest, printer);
    let (out, written) = match target {
        PullTarget::Oci(dir) => {
            registry::write_oci(&pulled, dir, &tag)
                .map_err(|e| registry_error("cannot write the pulled image", e))?;
            (dir, "an OCI image layout")
        }
        PullTarget::DockerArchive(file) => {
            let repo_tag = format!("{}:{tag}", reference.name());
            registry::write_archive(&pulled, file, &repo_tag)
                .map_err(|e| registry_error("cannot write the pulled image", e))?;
            (file, "a docker-archive")
        }
    };
    let mut sbom_files = Vec::new();
    if let Some(dir) = sbom_dir {
        fs_err::create_dir_all(dir)
            .map_err(|e| Error::from_error(format!("cannot create --sbom {}", dir.display()), e))?;
        for (path, document) in &sboms {
            crate::build::write_atomically(path, document)?;
            sbom_files.push(path.to_path_buf());
        }
        printer.status(format!("Wrote {} SBOMs into {}", sbom_files.len(), dir.display()));
    }
    let platforms: Vec<String> = pulled.images.iter().map(|i| i.platform.to_string()).collect();
    printer.status(format!(
        "Pulled {reference} ({}; {}; {} blobs, {}) into {written} at {} in {:.2}s",
        pulled.root.digest,
        platforms.join(", "),
        blobs.len(),
        human(bytes),
        out.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(PullOutcome {
        reference: reference.to_string(),
        digest: pulled.root.digest.to_string(),
        platforms,
        blobs: blobs.len(),
        bytes,
        out: out.clone(),
        format: match target {
            PullTarget::Oci(_) => "oci",
            PullTarget::DockerArchive(_) => "docker-archive",
        },
        sboms: sbom_files,
    })
}

/// The SBOM attached to each pulled image (SPDX if there is one, else CycloneDX), each
/// checked against its digest, with the file it goes to in `dir`; an image without one is
/// an error (nothing was downloaded yet).
async fn attached_sboms(
    client: &registry::RegistryClient,
    reference: &Reference,
    pulled: &registry::Pulled,
    dir: &std::path::Path,
) -> Result<Vec<(PathBuf, Vec<u8>)>, Error> {
    let repo = &reference.repository;
    let scope = registry::pull_scope(repo);
    let mut out = Vec::new();
    for image in &pulled.images {
        let subject = &image.descriptor.digest;
        let context = || format!("cannot look for the SBOM of {reference} ({})", image.platform);
        let mut found = None;
        for format in [sbom::Format::Spdx, sbom::Format::CycloneDx] {
            let listed = registry::referrers::list(client, repo, subject, Some(format.media_type()), &scope)
                .await
                .map_err(|e| registry_error(&context(), e))?;
            let digest =
                listed.iter().filter_map(|d| d["digest"].as_str()).find_map(|d| oci::Digest::parse(d).ok());
            if let Some(digest) = digest {
                found = Some((format, digest));
                break;
            }
        }
        let Some((format, digest)) = found else {
            return Err(Error::user(format!("{reference} ({}) has no SBOM attached", image.platform))
                .with_hint(
                "images pushed by marqo-base carry theirs; pull without --sbom, or ask who pushed it for one",
            ));
        };
        let document = registry::referrers::fetch(client, repo, &digest, &scope)
            .await
            .map_err(|e| registry_error(&context(), e))?;
        let name = format!("{}.{}", image.platform.to_string().replace('/', "-"), format.extension());
        out.push((dir.join(name), document.to_vec()));
    }
    Ok(out)
}

/// A size for people: `512 B`, `1.5 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Where `login` stored the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// With `docker-credential-NAME`.
    Helper(String),
    /// In Docker's config.json.
    File(PathBuf),
}

/// Checks `username`/`password` with the registry `host` (Basic, or the token flow), then
/// stores them as Docker does; nothing is written if the registry refuses them.
pub fn login(host: &str, username: &str, password: &str, net: &NetOptions) -> Result<Stored, Error> {
    let credentials = Credentials::basic(username, password);
    let config_path = docker_config_path()?;
    let mut config =
        DockerConfig::read(&config_path).map_err(|e| registry_error("cannot read the credentials", e))?;
    let client = client_for(host, Some(credentials.clone()), net)?;
    runtime()?
        .block_on(client.check_login())
        .map_err(|e| registry_error(&format!("cannot log in to {host}"), e))?;
    let helper = config.helper_for(host);
    config
        .store(host, &credentials)
        .map_err(|e| registry_error(&format!("cannot store the credentials of {host}"), e))?;
    Ok(match helper {
        Some(helper) => Stored::Helper(helper.to_string()),
        None => Stored::File(config_path),
    })
}

/// `16M`, `512K`, `1G` or a number of bytes.
pub fn parse_size(input: &str) -> Result<u64, Error> {
    let text = input.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let factor = match unit.trim().to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 1,
        "K" => 1024,
        "M" => 1024 * 1024,
        "G" => 1024 * 1024 * 1024,
        _ => 0,
    };
    match digits.parse::<u64>() {
        Ok(n) if factor > 0 && n > 0 => Ok(n.saturating_mul(factor)),
        _ => Err(Error::user(format!("`{input}` is not a size"))
            .with_hint("write a number of bytes with K, M or G, such as --chunk-size 16M")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16M").unwrap(), 16 << 20);
        assert_eq!(parse_size("512KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("0").is_err() && parse_size("12X").is_err() && parse_size("").is_err());
        assert_eq!(human(512), "512 B");
        assert_eq!(human(3 << 20), "3.0 MiB");
    }
}
