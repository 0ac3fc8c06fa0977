//! Reaching OCI registries: Docker's stored credentials, a client per host, and registry
//! errors with their hints.

use std::path::PathBuf;

use registry::{ClientOptions, Credentials, DockerConfig, RegistryClient};

use crate::Error;

/// How registries are reached (`--insecure`, `--retries`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NetOptions {
    /// Allow plain HTTP when HTTPS fails (always allowed for loopback).
    pub insecure: bool,
    /// How many times a transient failure is retried.
    pub retries: u32,
}

/// A registry error as the user sees it: network and registry failures exit 3, the rest 2.
pub fn registry_error(context: &str, error: registry::Error) -> Error {
    let hint = error.hint();
    if error.is_network() {
        // Exit-3 errors carry no hint of their own: it goes after the cause it explains.
        let source: Box<dyn std::error::Error + Send + Sync> = match hint {
            Some(hint) => Box::new(Hinted { error, hint }),
            None => Box::new(error),
        };
        return Error::Network { message: context.to_string(), source: Some(source) };
    }
    let err = Error::User { message: context.to_string(), hint: None, source: Some(Box::new(error)) };
    match hint {
        Some(hint) => err.with_hint(hint),
        None => err,
    }
}

/// A registry error followed by a hint line.
#[derive(Debug)]
struct Hinted {
    error: registry::Error,
    hint: String,
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\nhint: {}", self.error, self.hint)
    }
}

impl std::error::Error for Hinted {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
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
    let http = fetch::Client::new(fetch::ClientOptions::default())
        .map_err(|e| Error::from_error("cannot set up the HTTP client", e))?;
    let options = ClientOptions { insecure: net.insecure, retries: net.retries, ..ClientOptions::default() };
    Ok(RegistryClient::new(http.http().clone(), host, credentials, &options))
}

pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::from_error("cannot start the async runtime", e))
}
