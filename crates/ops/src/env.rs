//! What one process shares across stages: its tokio runtime, the download cache, and the
//! HTTP clients. Every stage runs its network work on the one multi-threaded runtime
//! (blocking on it from the calling thread), reads and writes the one cache, and asks
//! [`Env::client`] for a client, so a `build` or `lock` starts one set of worker threads and
//! one connection pool per kind of client (pip's settings for Python indexes, the defaults for
//! Debian mirrors, registries and `[[file]]` URLs), not one per stage.

use std::sync::{Mutex, OnceLock};

use tokio::runtime::Runtime;

use crate::Error;

/// The process's shared state (see the module docs); [`Env::get`] gives it.
pub struct Env {
    runtime: Runtime,
    /// Opened on first use, so that commands which need no cache do not need one.
    cache: OnceLock<fetch::Cache>,
    /// The clients made so far, by what tells them apart.
    clients: Mutex<Vec<(ClientKey, fetch::Client)>>,
}

/// The options that make two clients different (the rest are the defaults everywhere).
#[derive(Debug, Clone, PartialEq)]
struct ClientKey {
    ca_bundle: Option<std::path::PathBuf>,
    offline: bool,
    timeout: std::time::Duration,
}

static ENV: OnceLock<Env> = OnceLock::new();

impl Env {
    /// The process's shared state, made on first use.
    pub fn get() -> Result<&'static Env, Error> {
        if let Some(env) = ENV.get() {
            return Ok(env);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::from_error("cannot start the async runtime", e))?;
        // Two threads may race to make it; the loser's is dropped unused.
        Ok(ENV.get_or_init(|| Env { runtime, cache: OnceLock::new(), clients: Mutex::new(Vec::new()) }))
    }

    /// The runtime every stage blocks on.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The download cache: `MARQO_BASE_CACHE_DIR`, else the XDG default (a cheap clone).
    pub fn cache(&self) -> Result<fetch::Cache, Error> {
        if let Some(cache) = self.cache.get() {
            return Ok(cache.clone());
        }
        let cache = fetch::Cache::from_env().map_err(|e| Error::from_error("cannot open the cache", e))?;
        Ok(self.cache.get_or_init(|| cache).clone())
    }

    /// A client with `options`: the one made before with the same CA bundle, offline mode
    /// and timeout, else a new one (kept for the next caller).
    pub fn client(&self, options: fetch::ClientOptions) -> Result<fetch::Client, Error> {
        let key = ClientKey {
            ca_bundle: options.ca_bundle.clone(),
            offline: options.offline,
            timeout: options.timeout,
        };
        let mut clients = self.clients.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, client)) = clients.iter().find(|(k, _)| *k == key) {
            return Ok(client.clone());
        }
        let client =
            fetch::Client::new(options).map_err(|e| Error::from_error("cannot set up the HTTP client", e))?;
        clients.push((key, client.clone()));
        Ok(client)
    }
}

/// The process's runtime, started on first use.
pub fn runtime() -> Result<&'static Runtime, Error> {
    Env::get().map(|env| &env.runtime)
}

/// The process's download cache (a cheap clone).
pub fn cache() -> Result<fetch::Cache, Error> {
    Env::get()?.cache()
}

/// A client with `options`, shared with every other stage that asks for the same.
pub fn client(options: fetch::ClientOptions) -> Result<fetch::Client, Error> {
    Env::get()?.client(options)
}
