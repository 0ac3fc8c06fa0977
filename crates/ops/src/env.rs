//! What one process shares across stages: its tokio runtime, the download cache, the HTTP
//! clients, and what happens to its temporary trees when it is interrupted. Every stage runs
//! its network work on the one multi-threaded runtime (blocking on it from the calling
//! thread), reads and writes the one cache, and asks [`Env::client`] for a client, so a
//! `build` or `lock` starts one set of worker threads and one connection pool per kind of
//! client (pip's settings for Python indexes, the defaults for Debian mirrors, registries and
//! `[[file]]` URLs), not one per stage.

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use tokio::runtime::Runtime;

use crate::{Error, Reporter};

/// The process's shared state (see the module docs); [`Env::get`] gives it.
pub struct Env {
    runtime: Runtime,
    /// Opened on first use, so that commands which need no cache do not need one.
    cache: OnceLock<fetch::Cache>,
    /// The shared `flock` on the cache's `.lock`, held while the process lives: `cache clean`
    /// and `prune` wait for it (see [`crate::cache`]).
    cache_lock: OnceLock<Option<std::fs::File>>,
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
        Ok(ENV.get_or_init(|| Env {
            runtime,
            cache: OnceLock::new(),
            cache_lock: OnceLock::new(),
            clients: Mutex::new(Vec::new()),
        }))
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
        self.cache_lock.get_or_init(|| shared_lock(cache.root()));
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

/// `ROOT/.lock`, created (with the root) if need be.
pub(crate) fn lock_file(root: &Path) -> Result<std::fs::File, Error> {
    std::fs::create_dir_all(root)
        .map_err(|e| Error::from_error(format!("cannot create {}", root.display()), e))?;
    let path = root.join(".lock");
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::from_error(format!("cannot open {}", path.display()), e))
}

/// The shared lock of a process that uses the cache at `root`, waiting (with one status
/// line) while `cache clean` or `prune` holds it. A cache that cannot be locked (a
/// read-only one) is used unlocked.
fn shared_lock(root: &Path) -> Option<std::fs::File> {
    use rustix::fs::{flock, FlockOperation};
    let file = match lock_file(root) {
        Ok(f) => f,
        Err(e) => {
            tracing::debug!("the cache is not locked: {e}");
            return None;
        }
    };
    if flock(&file, FlockOperation::NonBlockingLockShared).is_err() {
        tracing::warn!("waiting for `marqo-base cache clean` or `prune` to finish with {}", root.display());
        if let Err(e) = flock(&file, FlockOperation::LockShared) {
            tracing::debug!("the cache is not locked: {e}");
            return None;
        }
    }
    Some(file)
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

/// Removes the hidden staging trees (`.NAME.tmp-*`) that an interrupted run left beside
/// `out`, with one status line; trees another live process is writing are left alone (see
/// [`oci::remove_stale`]).
pub fn remove_stale_staging(out: &Path, printer: &dyn Reporter) {
    let removed = oci::remove_stale(out);
    if removed.is_empty() {
        return;
    }
    let names: Vec<String> =
        removed.iter().map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
    printer.status(format!(
        "Removed {} temporary {} left beside {} by an interrupted run: {}",
        removed.len(),
        if removed.len() == 1 { "tree" } else { "trees" },
        out.display(),
        names.join(", ")
    ));
}

/// Caps glibc's malloc arenas at the number of cores (at least 2). By default glibc gives
/// up to eight per core to the threads that allocate (tokio's workers, the resolvers, the
/// compressors), and each keeps its freed pages: a cold `compile` of Marqo's requirements
/// peaked at 253 MB of resident memory with the default and at 198 MB with two arenas, in the
/// same time. Call it first thing in `main`, before any thread starts; a no-op elsewhere
/// than glibc.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, usize::from).max(2);
        let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets a malloc parameter; no thread allocates concurrently yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// From now on, SIGINT and SIGTERM remove the staging trees this process is writing and
/// then end it with exit code 130 or 143 (128 + the signal, as a shell reports it). The
/// handlers are in place when this returns; a task of the process's runtime waits for them.
pub fn clean_up_on_signals() -> Result<(), Error> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = runtime()?;
    let (mut interrupt, mut terminate) = runtime
        .block_on(async {
            Ok::<_, std::io::Error>((signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?))
        })
        .map_err(|e| Error::from_error("cannot install the signal handlers", e))?;
    runtime.spawn(async move {
        let code = tokio::select! {
            _ = interrupt.recv() => 130,
            _ = terminate.recv() => 143,
        };
        oci::remove_active();
        std::process::exit(code);
    });
    Ok(())
}
