//! Build environments without pip: an sdist's build requirements (PEP 517/518, under the
//! build constraints) resolved by our resolver, as wheels, for the host interpreter, fetched
//! through the same index source and cache as everything else, and installed by our wheel
//! installer into the venv. Where pip takes about two seconds per environment, this takes
//! tens of milliseconds once the wheels are cached. What it cannot do (a build requirement
//! with no wheel, a URL requirement, no solution) it reports, and the host's pip installs that
//! environment instead.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use futures::future::{BoxFuture, FutureExt, Shared};
use image::{install_wheel, DirSink, InstallOptions, Scheme};
use pep_types::{Arch, Target};
use py_resolver::{resolve_all, FormatControl, IndexSource, RequirementSet, ResolveOptions};
use pypi_client::sdist::{EnvInstaller, EnvRequest, ResolvedEnv};

/// A wheel's download into the cache, for whoever waits on it: its path there.
type Download = Shared<BoxFuture<'static, Result<PathBuf, String>>>;

/// Our [`EnvInstaller`], over the index source of the resolution it serves.
#[derive(Default)]
pub struct OwnInstaller {
    /// Set once the source exists (the source holds the build context that holds this).
    source: OnceLock<Weak<IndexSource>>,
    /// Downloads by URL, shared: the default venv's wheels are fetched ahead while the first
    /// sdist's venv may already want them.
    downloads: Mutex<HashMap<String, Download>>,
}

impl OwnInstaller {
    pub fn new() -> Arc<OwnInstaller> {
        Arc::default()
    }

    /// Resolves and fetches through `source` from now on.
    pub fn attach(&self, source: &Arc<IndexSource>) {
        let _ = self.source.set(Arc::downgrade(source));
    }
}

impl EnvInstaller for OwnInstaller {
    fn resolve<'a>(&'a self, request: EnvRequest<'a>) -> BoxFuture<'a, Result<ResolvedEnv, String>> {
        async move {
            let started = std::time::Instant::now();
            let source = self.source()?;
            let target = host_target(&request)?;
            let mut set = RequirementSet::parse_str(
                &request.requirements.join("\n"),
                "build requirements",
                std::path::Path::new("."),
            )
            .map_err(|e| e.to_string())?;
            if !request.constraints.is_empty() {
                let constraints =
                    RequirementSet::read_files(&[], request.constraints).map_err(|e| e.to_string())?;
                set.constraints.extend(constraints.constraints);
            }
            let mut format = FormatControl::default();
            format.only_binary(":all:")?;
            let options = ResolveOptions { format, ..ResolveOptions::default() };
            let targets = [Arc::new(target)];
            let resolved =
                tokio::task::spawn_blocking(move || resolve_all(&source, &targets, &set, &[], &options))
                    .await
                    .map_err(|e| format!("the resolver stopped: {e}"))?
                    .map_err(|e| e.to_string())?;
            let files: Vec<_> =
                resolved.iter().flat_map(|r| r.packages.values()).map(|p| p.file.clone()).collect();
            tracing::debug!(
                "build requirements {} resolved to {} after {:.1?}",
                request.requirements.join(" "),
                files.iter().map(|f| f.filename.as_str()).collect::<Vec<_>>().join(", "),
                started.elapsed()
            );
            Ok(ResolvedEnv { files })
        }
        .boxed()
    }

    fn fetch<'a>(&'a self, resolved: &'a ResolvedEnv) -> BoxFuture<'a, Result<(), String>> {
        async move {
            futures::future::try_join_all(resolved.files.iter().map(|file| self.download(file))).await?;
            Ok(())
        }
        .boxed()
    }

    fn install<'a>(
        &'a self,
        resolved: &'a ResolvedEnv,
        venv: &'a Path,
        final_dir: &'a Path,
    ) -> BoxFuture<'a, Result<(), String>> {
        async move {
            let started = std::time::Instant::now();
            let paths: Vec<PathBuf> =
                futures::future::try_join_all(resolved.files.iter().map(|file| self.download(file))).await?;
            let fetched_after = started.elapsed();
            let version = site_version(venv)?;
            let venv = venv.to_path_buf();
            let python = final_dir.join("bin").join("python").to_string_lossy().into_owned();
            tokio::task::spawn_blocking(move || {
                let scheme = Scheme::venv(&version);
                let mut sink = DirSink::new(&venv);
                let options = InstallOptions { python, requested: false, strict_record: false, bytecode: None };
                for path in &paths {
                    install_wheel(path, &scheme, &mut sink, &options)
                        .map_err(|e| format!("cannot install {}: {e}", path.display()))?;
                }
                tracing::debug!(
                    "installed {} build requirements into {} (fetched after {fetched_after:.1?}, installed after {:.1?})",
                    paths.len(),
                    venv.display(),
                    started.elapsed()
                );
                Ok(())
            })
            .await
            .map_err(|e| format!("the installer stopped: {e}"))?
        }
        .boxed()
    }
}

impl OwnInstaller {
    /// `file` in the cache (checked against its digest), downloaded once however many ask.
    fn download(&self, file: &pypi_client::DistFile) -> Download {
        let mut downloads = self.downloads.lock().unwrap_or_else(|e| e.into_inner());
        let key = file.url.to_string();
        if let Some(fut) = downloads.get(&key) {
            return fut.clone();
        }
        let source = self.source();
        let file = file.clone();
        let fut =
            async move { source?.client().download(&file).await.map_err(|e| e.to_string()) }.boxed().shared();
        downloads.insert(key, fut.clone());
        fut
    }

    fn source(&self) -> Result<Arc<IndexSource>, String> {
        self.source.get().and_then(Weak::upgrade).ok_or_else(|| "the index source is gone".to_string())
    }
}

/// The `X.Y` of a venv's `lib/pythonX.Y` (the venv was written for its interpreter).
fn site_version(venv: &Path) -> Result<String, String> {
    let lib = venv.join("lib");
    std::fs::read_dir(&lib)
        .map_err(|e| format!("cannot read {}: {e}", lib.display()))?
        .flatten()
        .find_map(|e| e.file_name().to_str().and_then(|n| n.strip_prefix("python")).map(str::to_string))
        .ok_or_else(|| format!("{} holds no pythonX.Y", lib.display()))
}

/// The target the host interpreter is: its architecture, version and glibc.
fn host_target(request: &EnvRequest<'_>) -> Result<Target, String> {
    let arch = Arch::host().ok_or("this host's architecture is not one we resolve for")?;
    if request.glibc.is_empty() {
        return Err("the interpreter does not say which glibc it runs on".to_string());
    }
    Target::new(arch, request.python_version, request.glibc).map_err(|e| e.to_string())
}
