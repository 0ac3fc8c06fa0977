//! Where the resolver gets project pages and metadata: a memo over the registry client in
//! which every request is a shared future, started as soon as anyone asks (a prefetch) and
//! awaited by whoever needs the answer, so one page or metadata file is fetched once per run
//! however many targets or prefetches want it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use futures::future::{BoxFuture, FutureExt, Shared};
use pep_types::{DistFilename, ExtraName, PackageName, Req, Version, VersionOrUrl, VersionSpecifiers};
use pypi_client::metadata::Metadata;
use pypi_client::sdist::{sdist_metadata_with_hints, BuildContext};
use pypi_client::{DistFile, ProjectPage, PypiClient};
use tokio::runtime::Handle;

/// A failure to get a page or metadata; shared between every waiter.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot fetch the index page of `{name}`")]
    Page {
        name: PackageName,
        #[source]
        source: pypi_client::Error,
    },
    #[error("cannot read the metadata of `{file}`")]
    Metadata {
        file: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

type Fut<T> = Shared<BoxFuture<'static, Result<T, Arc<SourceError>>>>;

/// Memoised, prefetching access to the indexes.
pub struct IndexSource {
    client: PypiClient,
    build: Option<Arc<BuildContext>>,
    cache: fetch::Cache,
    handle: Handle,
    pages: Mutex<HashMap<PackageName, Fut<Option<Arc<ProjectPage>>>>>,
    metadata: Mutex<HashMap<String, Fut<Arc<Metadata>>>>,
    progress: Arc<Progress>,
    /// This source, for the tasks it starts on its own (see [`IndexSource::speculate`]).
    me: Weak<IndexSource>,
    /// The Python versions of the targets being resolved (what speculation must fit).
    pythons: Mutex<Vec<Version>>,
    /// The specifiers the root requirements and constraints put on a name (ditto).
    roots: Mutex<HashMap<PackageName, Vec<VersionSpecifiers>>>,
    /// The extras asked of a name, by a root requirement or a requirement speculated on:
    /// what an sdist declares for them is speculated on too.
    extras: Mutex<HashMap<PackageName, Vec<ExtraName>>>,
}

/// Counts for a progress line: how many pages and metadata files are done so far.
#[derive(Debug, Default)]
pub struct Progress {
    pub pages: AtomicUsize,
    pub metadata: AtomicUsize,
}

impl IndexSource {
    /// `build` is how sdists get their metadata built; `None` refuses sdists that need a build.
    pub fn new(
        client: PypiClient,
        build: Option<BuildContext>,
        cache: fetch::Cache,
        handle: Handle,
    ) -> Arc<IndexSource> {
        Arc::new_cyclic(|me| IndexSource {
            client,
            build: build.map(Arc::new),
            cache,
            handle,
            pages: Mutex::default(),
            metadata: Mutex::default(),
            progress: Arc::default(),
            me: me.clone(),
            pythons: Mutex::default(),
            roots: Mutex::default(),
            extras: Mutex::default(),
        })
    }

    /// Live counts of finished requests, for progress display.
    pub fn progress(&self) -> Arc<Progress> {
        Arc::clone(&self.progress)
    }

    /// The project page of `name` from the first index that has it; starts the request
    /// in the background if nobody asked before.
    pub fn page(&self, name: &PackageName) -> Fut<Option<Arc<ProjectPage>>> {
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fut) = pages.get(name) {
            return fut.clone();
        }
        let client = self.client.clone();
        let owned = name.clone();
        let progress = Arc::clone(&self.progress);
        let fut = async move {
            let page = client.project(&owned).await;
            progress.pages.fetch_add(1, Ordering::Relaxed);
            match page {
                Ok(page) => Ok(page),
                Err(source) => Err(Arc::new(SourceError::Page { name: owned, source })),
            }
        }
        .boxed()
        .shared();
        self.handle.spawn(fut.clone());
        pages.insert(name.clone(), fut.clone());
        fut
    }

    /// The core metadata of one file (a wheel's METADATA, or an sdist's, built if need be).
    pub fn metadata(&self, file: &DistFile) -> Fut<Arc<Metadata>> {
        let key = file.sha256.clone().unwrap_or_else(|| file.url.to_string());
        let mut all = self.metadata.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fut) = all.get(&key) {
            return fut.clone();
        }
        let client = self.client.clone();
        let build = self.build.clone();
        let cache = self.cache.clone();
        let file = file.clone();
        let progress = Arc::clone(&self.progress);
        let me = self.me.clone();
        let fut = async move {
            let _count = CountOnDrop(&progress.metadata);
            let wrap = |source: Box<dyn std::error::Error + Send + Sync>| {
                Arc::new(SourceError::Metadata { file: file.filename.clone(), source })
            };
            let bytes = match &file.parsed {
                DistFilename::Wheel(_) => client.wheel_metadata(&file).await.map_err(|e| wrap(e.into()))?,
                DistFilename::Sdist(sdist) => {
                    let name = sdist.name.clone();
                    let speculate = move |declared: Vec<String>| {
                        if let Some(me) = me.upgrade() {
                            me.speculate(&name, declared);
                        }
                    };
                    fetch_sdist_metadata(&client, build.as_deref(), &cache, &file, sdist, &speculate)
                        .await
                        .map_err(wrap)?
                }
            };
            Metadata::parse(&bytes).map(Arc::new).map_err(|e| wrap(e.into()))
        }
        .boxed()
        .shared();
        self.handle.spawn(fut.clone());
        all.insert(key, fut.clone());
        fut
    }

    /// Notes the Python version of a target being resolved, which a speculative build must
    /// fit ([`IndexSource::speculate`]); without one, nothing is built speculatively.
    pub fn speculate_for(&self, python: &Version) {
        let mut pythons = self.pythons.lock().unwrap_or_else(|e| e.into_inner());
        if !pythons.contains(python) {
            pythons.push(python.clone());
        }
    }

    /// Notes what a root requirement or constraint allows of `name`, which a speculative
    /// build must fit too.
    pub fn speculate_within(&self, name: &PackageName, specifiers: &VersionSpecifiers) {
        let mut roots = self.roots.lock().unwrap_or_else(|e| e.into_inner());
        roots.entry(name.clone()).or_default().push(specifiers.clone());
    }

    /// Notes extras a requirement asks of `name` (`dj-rest-auth[with_social]`): what its sdist
    /// declares for them is speculated on as well.
    pub fn speculate_extras(&self, name: &PackageName, extras: &[ExtraName]) {
        let mut known = self.extras.lock().unwrap_or_else(|e| e.into_inner());
        let known = known.entry(name.clone()).or_default();
        for extra in extras {
            if !known.contains(extra) {
                known.push(extra.clone());
            }
        }
    }

    /// Starts on what an sdist declares it requires while its backend runs (the next wave of
    /// a resolution usually waits for that build): each project's page, and when the newest
    /// version that fits (the declared specifier, the root requirements' and constraints',
    /// no pre-release, not yanked, `Requires-Python` of every target) has no wheel, the
    /// metadata build of its sdist. Only requirements without markers, or whose marker is
    /// only extras asked of `name` ([`IndexSource::speculate_extras`]); nothing here decides
    /// anything — the resolver asks for what it needs as always, and finds it started or done.
    fn speculate(&self, name: &PackageName, declared: Vec<String>) {
        let pythons = self.pythons.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let roots = self.roots.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let extras =
            self.extras.lock().unwrap_or_else(|e| e.into_inner()).get(name).cloned().unwrap_or_default();
        for text in declared {
            let Ok(req) = text.parse::<Req>() else { continue };
            let specifiers = match &req.version_or_url {
                None => None,
                Some(VersionOrUrl::VersionSpecifier(spec)) => Some(spec.clone()),
                Some(VersionOrUrl::Url(_)) => continue,
            };
            let for_extras = !extras.is_empty() && req.marker.clone().simplify_extras(&extras).is_true();
            if !req.marker.is_true() && !for_extras {
                continue;
            }
            tracing::debug!("speculating on `{text}` (declared by an sdist being built)");
            if !req.extras.is_empty() {
                self.speculate_extras(&req.name, &req.extras);
            }
            let page = self.page(&req.name);
            let me = self.me.clone();
            let pythons = pythons.clone();
            let root = roots.get(&req.name).cloned().unwrap_or_default();
            self.handle.spawn(async move {
                let Ok(Some(page)) = page.await else { return };
                if pythons.is_empty() {
                    return;
                }
                let fits = |f: &&DistFile| {
                    let v = f.parsed.version();
                    f.yanked.is_none()
                        && !v.any_prerelease()
                        && specifiers.as_ref().is_none_or(|s| s.contains(v))
                        && root.iter().all(|s| s.contains(v))
                        && f.requires_python.as_ref().is_none_or(|rp| pythons.iter().all(|p| rp.contains(p)))
                };
                let Some(newest) = page.files.iter().filter(fits).map(|f| f.parsed.version()).max() else {
                    return;
                };
                let files: Vec<&DistFile> =
                    page.files.iter().filter(fits).filter(|f| f.parsed.version() == newest).collect();
                if files.iter().any(|f| matches!(f.parsed, DistFilename::Wheel(_))) {
                    return;
                }
                let Some(sdist) =
                    files.into_iter().min_by(|a, b| (a.index, &a.filename).cmp(&(b.index, &b.filename)))
                else {
                    return;
                };
                if let Some(me) = me.upgrade() {
                    let _ = me.metadata(sdist).await;
                }
            });
        }
    }

    /// The registry client underneath (its configuration and location names).
    pub fn client(&self) -> &PypiClient {
        &self.client
    }

    /// `name`'s page from each location separately (for explaining a failure), waiting from
    /// a thread outside the runtime. Errors count as "nothing to say".
    pub fn blocking_pages_by_location(&self, name: &PackageName) -> Vec<(usize, ProjectPage)> {
        self.handle.block_on(self.client.project_by_location(name)).unwrap_or_default()
    }

    /// Waits for a page from a thread outside the runtime (the solver's).
    pub fn blocking_page(&self, name: &PackageName) -> Result<Option<Arc<ProjectPage>>, Arc<SourceError>> {
        self.handle.block_on(self.page(name))
    }

    /// Waits for metadata from a thread outside the runtime (the solver's).
    pub fn blocking_metadata(&self, file: &DistFile) -> Result<Arc<Metadata>, Arc<SourceError>> {
        self.handle.block_on(self.metadata(file))
    }

    /// Runs a future on the runtime and waits for it, from a thread outside the runtime.
    pub fn block_on<T>(&self, fut: impl std::future::Future<Output = T>) -> T {
        self.handle.block_on(fut)
    }

    /// Runs a future on the runtime without waiting for it.
    pub fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        self.handle.spawn(fut);
    }
}

/// Counts one finished request however its future ends.
struct CountOnDrop<'a>(&'a AtomicUsize);

impl Drop for CountOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sdist metadata is as immutable as the sdist: cache it by the sdist's hash, so a build runs
/// once per file per machine.
async fn fetch_sdist_metadata(
    client: &PypiClient,
    build: Option<&BuildContext>,
    cache: &fetch::Cache,
    file: &DistFile,
    sdist: &pep_types::SdistFilename,
    declared: &(dyn Fn(Vec<String>) + Send + Sync),
) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
    const NAMESPACE: &str = "sdist-metadata-v2";
    if let Some(sha) = &file.sha256 {
        if let Some(bytes) = cache.read_entry(NAMESPACE, sha) {
            return Ok(bytes);
        }
    }
    if let Some(build) = build {
        let build = build.clone();
        tokio::spawn(async move { pypi_client::sdist::warm_default_env(&build).await });
    }
    let path: PathBuf = client.download(file).await?;
    let build = build.ok_or("building sdists is disabled (--no-build)")?;
    tracing::info!("building the metadata of {}", file.filename);
    let bytes = sdist_metadata_with_hints(&path, sdist, build, declared).await?;
    if let Some(sha) = &file.sha256 {
        cache.write_entry(NAMESPACE, sha, &bytes)?;
    }
    Ok(bytes)
}
