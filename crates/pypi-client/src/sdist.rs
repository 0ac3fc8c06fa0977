//! Core metadata of a source distribution: static `PKG-INFO` (PEP 643) when it can be
//! trusted, else a PEP 517 `prepare_metadata_for_build_wheel` run with the host's Python in an
//! isolated, cached virtual environment; and wheels built from sdists ([`build_wheel`]) in
//! the same environments.
//!
//! Layout under [`BuildContext::work_dir`]:
//! - `build-envs/<key>/`: a venv holding one set of build requirements. `<key>` hashes the
//!   interpreter, the sorted requirements, the build constraint files' contents and the pip
//!   arguments. A venv is built in `build-envs/.tmp-*` and renamed into place when complete,
//!   so a directory under its final name is always usable, and two processes building the
//!   same venv at once both succeed (the loser of the rename uses the winner's).
//! - `wheels/<key>/`: a wheel built by [`build_wheel`]. `<key>` hashes the sdist's sha256,
//!   the interpreter, the build constraint files' contents and the pip arguments; published
//!   by rename as venvs are.
//! - `tmp/`: unpacked sdists and hook scratch space, removed when a call returns.
//!
//! Unpacking never creates a symlink or hard link: links inside the archive are materialised
//! as copies of their (in-tree) targets, so no later write can be redirected out of the tree.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

use pep_types::{PackageName, SdistFilename, Version};
use safe_path::{Absolute, Refusal, Rules, Windows};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::process::Command;
use tracing::{debug, warn};

use crate::metadata::Metadata;
use crate::zygote;

type ReqParseError = pep_types::RequirementError;

/// The most bytes an sdist may unpack to (files plus materialised links).
pub const MAX_UNPACKED_BYTES: u64 = 4 << 30;
/// The most entries an sdist may hold.
pub const MAX_ENTRIES: usize = 500_000;
/// How many lines of a failed build's output an error carries.
const OUTPUT_TAIL_LINES: usize = 40;

/// The backend pip assumes when a project says nothing (PEP 517).
const DEFAULT_BACKEND: &str = "setuptools.build_meta:__legacy__";
/// The build requirements pip assumes when a project has no `[build-system]` (PEP 518).
const DEFAULT_REQUIRES: [&str; 2] = ["setuptools>=40.8.0", "wheel"];

/// Runs one PEP 517 hook in the build venv; see [`run_hook`] for the request it reads.
const HOOK_DRIVER: &str = r#"
import importlib
import json
import os
import sys


def load_backend(spec, backend_path):
    module_name, _, object_path = spec.partition(":")
    if backend_path:
        sys.path[:0] = backend_path
    module = importlib.import_module(module_name.strip())
    origin = getattr(module, "__file__", None)
    if backend_path and origin:
        origin = os.path.realpath(origin)
        roots = [os.path.realpath(p) + os.sep for p in backend_path]
        if not any(origin.startswith(root) for root in roots):
            raise SystemExit(
                "build backend %r was loaded from %s, outside its backend-path %r"
                % (spec, origin, backend_path)
            )
    backend = module
    for attribute in filter(None, object_path.strip().split(".")):
        backend = getattr(backend, attribute)
    return backend


def installed():
    """Name -> version of every distribution the running environment has."""
    from importlib.metadata import distributions
    found = {}
    for dist in distributions():
        name = dist.metadata["Name"]
        if name:
            found[name] = dist.version
    return found


def names_installed(requires, found):
    import re
    normal = lambda name: re.sub(r"[-_.]+", "-", name).lower()
    have = {normal(name) for name in found}
    for requirement in requires:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
        if not match or normal(match.group(1)) not in have:
            return False
    return True


def main():
    with open(sys.argv[1]) as f:
        request = json.load(f)
    os.environ.update(request.get("env") or {})
    backend = load_backend(request["backend"], request["backend_path"])
    result = {}
    if request["hook"] == "get_requires_for_build_wheel":
        hook = getattr(backend, "get_requires_for_build_wheel", None)
        requires = list(hook(None)) if hook is not None else []
        result = {"requires": requires, "installed": installed()}
        # The metadata hook in the same process, when every requirement named is installed
        # (the frontend checks the versions and uses this only if they fit): one interpreter
        # start and one backend import fewer. A failure here is not reported: the frontend
        # runs the hook again on its own.
        if request.get("then_metadata") and names_installed(requires, result["installed"]):
            try:
                prepare = getattr(backend, "prepare_metadata_for_build_wheel", None)
                if prepare is not None:
                    result["then"] = {"dist_info": prepare(request["metadata_directory"], None)}
            except BaseException:
                pass
    elif request["hook"] == "prepare_metadata_for_build_wheel":
        hook = getattr(backend, "prepare_metadata_for_build_wheel", None)
        if hook is not None:
            result = {"dist_info": hook(request["metadata_directory"], None)}
        else:
            result = {"wheel": backend.build_wheel(request["wheel_directory"], None, None)}
    elif request["hook"] == "build_wheel":
        result = {"wheel": backend.build_wheel(request["wheel_directory"], None, None)}
    else:
        raise SystemExit("unknown hook %r" % request["hook"])
    with open(request["result"], "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
"#;

/// How to build sdists: the interpreter, how its pip reaches packages, and where to cache.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The host interpreter that build venvs are made from (`python3`).
    pub python: PathBuf,
    /// Index options passed verbatim to every `pip install`
    /// (`--index-url URL`, `--extra-index-url URL`, `--cert PATH`, `--find-links DIR`, ...).
    /// pip's own configuration is ignored, so these are the only index settings it sees.
    pub pip_args: Vec<String>,
    /// Constraints files applied to every build requirement install (`--build-constraint`).
    pub build_constraints: Vec<PathBuf>,
    /// Cache directory for build venvs and scratch space.
    pub work_dir: PathBuf,
    /// Extra environment of the build backend (`CC`, `LDSHARED`, `_PYTHON_HOST_PLATFORM` for
    /// a cross build); part of a built wheel's cache key.
    pub backend_env: Vec<(String, String)>,
    /// Installs build requirements without pip, when set; the host's pip does what it
    /// cannot.
    pub env_installer: Option<Arc<dyn EnvInstaller>>,
}

/// Installs a build environment's requirements without pip: resolves them (as wheels) for the
/// host interpreter and installs those wheels into the venv, in tens of milliseconds from a
/// warm cache where pip takes seconds. An error (a requirement with no wheel, no solution) is
/// not fatal: the host's pip installs the environment instead, as it would without one.
pub trait EnvInstaller: Send + Sync {
    /// Resolves `request.requirements` under `request.constraints`: the wheels the venv holds.
    fn resolve<'a>(
        &'a self,
        request: EnvRequest<'a>,
    ) -> futures::future::BoxFuture<'a, Result<ResolvedEnv, String>>;
    /// Downloads the files of `resolved` into the cache, installing nothing (yet).
    fn fetch<'a>(&'a self, resolved: &'a ResolvedEnv) -> futures::future::BoxFuture<'a, Result<(), String>>;
    /// Installs `resolved` into `venv` (files below it; scripts name `final_dir`'s
    /// interpreter, where the venv will live).
    fn install<'a>(
        &'a self,
        resolved: &'a ResolvedEnv,
        venv: &'a Path,
        final_dir: &'a Path,
    ) -> futures::future::BoxFuture<'a, Result<(), String>>;
}

/// The exact contents of a build venv, as [`EnvInstaller::resolve`] found them.
#[derive(Debug, Clone)]
pub struct ResolvedEnv {
    /// The wheels to install, each with its sha256 (the venv's key is made of them).
    pub files: Vec<crate::DistFile>,
}

/// What [`EnvInstaller::install`] is asked for.
#[derive(Debug, Clone, Copy)]
pub struct EnvRequest<'a> {
    /// PEP 508 requirements (`setuptools>=61`, `wheel`), checked to parse.
    pub requirements: &'a [&'a str],
    /// The build constraints files.
    pub constraints: &'a [PathBuf],
    /// The interpreter's version, `3.11.2`.
    pub python_version: &'a str,
    /// The glibc the interpreter runs on, `2.36` (empty when unknown).
    pub glibc: &'a str,
}

impl std::fmt::Debug for dyn EnvInstaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvInstaller")
    }
}

/// Why the metadata of an sdist could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SdistError {
    /// A file system operation failed (the source names the path).
    #[error("I/O error while reading or building `{sdist}`")]
    Io {
        /// The sdist file.
        sdist: PathBuf,
        /// The failure, with its path.
        #[source]
        source: io::Error,
    },
    /// The archive format needs a decompressor we do not ship.
    #[error(
        "`{sdist}` is a `{extension}` archive, which is not supported \
         (only .tar.gz, .tgz and .zip)"
    )]
    UnsupportedArchive {
        /// The sdist file.
        sdist: PathBuf,
        /// Its extension.
        extension: &'static str,
        /// The package.
        name: PackageName,
    },
    /// The archive is corrupt or not what its name says.
    #[error("`{sdist}` is not a readable {format} archive")]
    Archive {
        /// The sdist file.
        sdist: PathBuf,
        /// `tar.gz` or `zip`.
        format: &'static str,
        /// The decoder's complaint.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An entry would land outside the unpack directory, or is otherwise refused.
    #[error("`{sdist}` has an unsafe entry `{entry}`: {reason}")]
    UnsafeEntry {
        /// The sdist file.
        sdist: PathBuf,
        /// The entry's path as written in the archive.
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The archive unpacks to more than [`MAX_UNPACKED_BYTES`] or [`MAX_ENTRIES`].
    #[error("`{sdist}` unpacks to more than {limit}; refusing to unpack it")]
    TooLarge {
        /// The sdist file.
        sdist: PathBuf,
        /// The limit crossed, in words.
        limit: String,
    },
    /// `pyproject.toml` is not valid TOML or its `[build-system]` is malformed.
    #[error("{name} {version}: invalid `pyproject.toml` in `{sdist}`")]
    Pyproject {
        /// The package.
        name: PackageName,
        /// Its version.
        version: Version,
        /// The sdist file.
        sdist: PathBuf,
        /// The TOML parser's complaint.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A `[build-system]` field pip would also refuse.
    #[error("{name} {version}: `pyproject.toml` in `{sdist}`: {problem}")]
    BuildSystem {
        /// The package.
        name: PackageName,
        /// Its version.
        version: Version,
        /// The sdist file.
        sdist: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A build requirement (static or from `get_requires_for_build_wheel`) is not PEP 508.
    #[error("{name} {version}: build requirement `{requirement}` is not a valid PEP 508 requirement")]
    BuildRequirement {
        /// The package.
        name: PackageName,
        /// Its version.
        version: Version,
        /// The requirement as written.
        requirement: String,
        /// The parser's complaint.
        #[source]
        source: Box<ReqParseError>,
    },
    /// A `--build-constraint` file could not be read.
    #[error("cannot read build constraints file `{path}`")]
    BuildConstraint {
        /// The file as given.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// A program could not be started at all.
    #[error("failed to run `{program}`")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// The host interpreter did not answer a trivial question.
    #[error("`{python}` does not work as a Python interpreter ({status}):\n{output}")]
    Interpreter {
        /// The interpreter.
        python: PathBuf,
        /// Its exit status.
        status: ExitStatus,
        /// What it printed.
        output: String,
    },
    /// `python -m venv` failed.
    #[error("failed to create a build venv with `{python} -m venv` ({status}):\n{output}")]
    Venv {
        /// The interpreter.
        python: PathBuf,
        /// Its exit status.
        status: ExitStatus,
        /// The last lines of its output.
        output: String,
    },
    /// pip failed to install build requirements.
    #[error(
        "{name} {version}: failed to install build requirements `{requirements}` ({status}):\n\
         {output}"
    )]
    PipInstall {
        /// The package being built.
        name: PackageName,
        /// Its version.
        version: Version,
        /// The requirements, space separated.
        requirements: String,
        /// pip's exit status.
        status: ExitStatus,
        /// The last lines of pip's output.
        output: String,
        /// Advice, when the output suggests some.
        hint: Option<String>,
    },
    /// A PEP 517 hook failed.
    #[error(
        "{name} {version}: the build backend `{backend}` failed in `{hook}` ({status}):\n\
         {output}"
    )]
    Backend {
        /// The package being built.
        name: PackageName,
        /// Its version.
        version: Version,
        /// The backend, as `module:object`.
        backend: String,
        /// The hook that failed.
        hook: &'static str,
        /// The driver's exit status.
        status: ExitStatus,
        /// The last lines of the backend's output (stdout and stderr interleaved).
        output: String,
        /// Advice, when the output suggests some.
        hint: Option<String>,
    },
    /// A hook succeeded but did not produce what PEP 517 promises.
    #[error("{name} {version}: the build backend `{backend}` misbehaved in `{hook}`: {problem}")]
    HookResult {
        /// The package being built.
        name: PackageName,
        /// Its version.
        version: Version,
        /// The backend.
        backend: String,
        /// The hook.
        hook: &'static str,
        /// What was wrong with its result.
        problem: String,
    },
}

impl SdistError {
    /// What to do about it, shown after the error and its causes.
    pub fn hint(&self) -> Option<String> {
        match self {
            SdistError::UnsupportedArchive { name, .. } => {
                Some(format!("pin a version of {name} that has a wheel or a .tar.gz sdist"))
            }
            SdistError::Venv { .. } => Some(
                "the interpreter needs the venv and ensurepip modules (on Debian: apt-get install \
                 python3-venv)"
                    .into(),
            ),
            SdistError::PipInstall { hint, .. } | SdistError::Backend { hint, .. } => hint.clone(),
            _ => None,
        }
    }
}

/// The advice for a failed build whose output is `output`.
fn setuptools_hint(name: &PackageName, version: &Version, output: &str) -> Option<String> {
    (output.contains("pkg_resources") || output.contains("setuptools")).then(|| {
        format!(
            "{name} {version} may need an older setuptools to build (for example \
             `setuptools<70`); put it in a constraints file and pass it with --build-constraint"
        )
    })
}

/// Core metadata bytes for an sdist file on disk.
///
/// Returns `PKG-INFO` as-is when it is Metadata-Version 2.2 or later and neither
/// `Requires-Dist` nor `Requires-Python` is `Dynamic` (PEP 643); otherwise runs the project's
impl<'a> EnvRequest<'a> {
    /// `requirements` under `ctx`'s build constraints, for `interpreter`.
    fn new(requirements: &'a [&'a str], ctx: &'a BuildContext, interpreter: &'a Interpreter) -> Self {
        EnvRequest {
            requirements,
            constraints: &ctx.build_constraints,
            python_version: &interpreter.release,
            glibc: &interpreter.glibc,
        }
    }
}

/// PEP 517 backend (`prepare_metadata_for_build_wheel`, else `build_wheel`) in a cached
/// isolated venv made with `ctx.python`, and returns the `METADATA` it produces.
pub async fn sdist_metadata(
    sdist: &Path,
    filename: &SdistFilename,
    ctx: &BuildContext,
) -> Result<Vec<u8>, SdistError> {
    sdist_metadata_with_hints(sdist, filename, ctx, &|_| {}).await
}

/// [`sdist_metadata`], telling `declared` what the sdist says it requires before its backend
/// runs: the requirements of its `PKG-INFO` or `*.egg-info/requires.txt` (with their markers:
/// which apply is the caller's to judge), which the build that follows usually confirms. Not to
/// be trusted (that is why the metadata is built), but a resolver can start on them while the
/// backend runs.
pub async fn sdist_metadata_with_hints(
    sdist: &Path,
    filename: &SdistFilename,
    ctx: &BuildContext,
    declared: &(dyn Fn(Vec<String>) + Send + Sync),
) -> Result<Vec<u8>, SdistError> {
    let io_err = |source: io::Error| SdistError::Io { sdist: sdist.to_path_buf(), source };
    let (_unpack_dir, source_dir) = unpack_source(sdist, filename, ctx).await?;

    if let Some(pkg_info) = static_pkg_info(&source_dir, filename).map_err(io_err)? {
        debug!("{sdist:?}: using static PKG-INFO (PEP 643)");
        return Ok(pkg_info);
    }
    let hints = declared_requirements(&source_dir);
    if !hints.is_empty() {
        declared(hints);
    }

    let build =
        Build { sdist, name: &filename.name, version: &filename.version, source_dir: &source_dir, ctx };
    build.metadata().await
}

/// Resolves and downloads what the build venv most sdists use holds (pip's default build
/// requirements, under the build constraints), once per cache directory and process, when
/// that venv is not in the cache: called as a resolution starts, so that the first sdist to
/// be built (often found only a second or two later, deep in the dependencies) finds its
/// wheels fetched. Network only: nothing is installed or started for a resolution that
/// builds nothing. Failures are only logged.
pub async fn prefetch_default_env(ctx: &BuildContext) {
    static FETCHED: OnceLock<Mutex<BTreeSet<PathBuf>>> = OnceLock::new();
    if !first_for(&FETCHED, &ctx.work_dir) {
        return;
    }
    let Some(installer) = &ctx.env_installer else { return };
    let started = std::time::Instant::now();
    let result = async {
        let constraints = read_constraints(&ctx.build_constraints).map_err(|e| e.to_string())?;
        let interpreter = probe_interpreter(&ctx.python).await.map_err(|e| e.to_string())?;
        let requirements: BTreeSet<&str> = DEFAULT_REQUIRES.into_iter().collect();
        let key = env_key(&interpreter, &constraints, &requirements, &ctx.pip_args);
        if existing_env(&ctx.work_dir.join("build-envs").join(key)).is_some() {
            return Ok(false);
        }
        let wanted: Vec<&str> = requirements.into_iter().collect();
        let resolved = installer.resolve(EnvRequest::new(&wanted, ctx, &interpreter)).await?;
        installer.fetch(&resolved).await?;
        Ok::<bool, String>(true)
    }
    .await;
    match result {
        Ok(true) => debug!("the default build venv's wheels are fetched after {:.1?}", started.elapsed()),
        Ok(false) => {}
        Err(e) => debug!("the default build venv's wheels could not be fetched ahead: {e}"),
    }
}

/// Whether this is the first time `dir` is seen by `seen` in this process (and notes it).
fn first_for(seen: &OnceLock<Mutex<BTreeSet<PathBuf>>>, dir: &Path) -> bool {
    seen.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner()).insert(dir.to_path_buf())
}

/// Makes the build venv most sdists use (pip's default build requirements, under the build
/// constraints) and its backend's fork server, once per cache directory and process, while
/// the first sdist that needs a build is still downloading: most of them then find both
/// ready. Failures are only logged; the builds that need the venv make it as usual.
pub async fn warm_default_env(ctx: &BuildContext) {
    static WARMED: OnceLock<Mutex<BTreeSet<PathBuf>>> = OnceLock::new();
    if !first_for(&WARMED, &ctx.work_dir) {
        return;
    }
    let started = std::time::Instant::now();
    let result = async {
        let constraints = read_constraints(&ctx.build_constraints)?;
        let interpreter = probe_interpreter(&ctx.python).await?;
        // Not an sdist's build: its name in messages says what it is.
        let (name, version) = (PackageName::from_str("default-build-env").ok(), Version::from_str("0").ok());
        let (Some(name), Some(version)) = (name, version) else { return Ok(()) };
        let here = ctx.work_dir.clone();
        let build = Build { sdist: &here, name: &name, version: &version, source_dir: &here, ctx };
        let requires: Vec<String> = DEFAULT_REQUIRES.iter().map(|r| r.to_string()).collect();
        let env = build.build_env(&interpreter, &constraints, &requires).await?;
        let backend = Backend { requires, backend: DEFAULT_BACKEND.to_string(), backend_path: Vec::new() };
        let path = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::join_paths(std::iter::once(env.join("bin")).chain(std::env::split_paths(&path)))
            .map_err(|e| build.io(io::Error::other(e)))?;
        build.server(&env, &backend, &path).await;
        Ok::<(), SdistError>(())
    }
    .await;
    match result {
        Ok(()) => {
            debug!("the default build venv and its fork server are ready after {:.1?}", started.elapsed())
        }
        Err(e) => debug!("the default build venv could not be made ahead: {e}"),
    }
}

/// Builds a wheel from an sdist file on disk with its PEP 517 backend (`build_wheel`), in the
/// same cached isolated venvs as [`sdist_metadata`], and copies it into `out_dir`; returns
/// the wheel's path there.
///
/// Built wheels are cached under `ctx.work_dir/wheels/`, keyed by the sdist's sha256, the
/// host interpreter, the build constraints' contents and the pip arguments: building the
/// same sdist again copies the cached wheel and runs nothing.
pub async fn build_wheel(
    sdist: &Path,
    filename: &SdistFilename,
    ctx: &BuildContext,
    out_dir: &Path,
) -> Result<PathBuf, SdistError> {
    let io_err = |source: io::Error| SdistError::Io { sdist: sdist.to_path_buf(), source };
    let constraints = read_constraints(&ctx.build_constraints)?;
    let interpreter = probe_interpreter(&ctx.python).await?;
    let sdist_sha256 = {
        let path = sdist.to_path_buf();
        tokio::task::spawn_blocking(move || -> io::Result<Vec<u8>> {
            let mut hasher = Sha256::new();
            io::copy(&mut fs_err::File::open(&path)?, &mut hasher)?;
            Ok(hasher.finalize().to_vec())
        })
        .await
        .map_err(|err| io_err(io::Error::other(err)))?
        .map_err(io_err)?
    };
    let key = wheel_key(&sdist_sha256, &interpreter, &constraints, &ctx.pip_args, &ctx.backend_env);
    let wheels = ctx.work_dir.join("wheels");
    let final_dir = wheels.join(&key);

    let lock = env_lock(&final_dir);
    let _guard = lock.lock().await;
    let cached = match cached_wheel(&final_dir).map_err(io_err)? {
        Some(cached) => {
            debug!("{sdist:?}: reusing the wheel built before, {}", cached.display());
            cached
        }
        None => {
            let (_unpack_dir, source_dir) = unpack_source(sdist, filename, ctx).await?;
            let build = Build {
                sdist,
                name: &filename.name,
                version: &filename.version,
                source_dir: &source_dir,
                ctx,
            };
            let (scratch, wheel) = build.wheel(&interpreter, &constraints).await?;
            fs_err::create_dir_all(&wheels).map_err(io_err)?;
            let tmp = tempfile::Builder::new().prefix(".tmp-").tempdir_in(&wheels).map_err(io_err)?;
            let name = wheel.file_name().unwrap_or_default();
            fs_err::copy(&wheel, tmp.path().join(name)).map_err(io_err)?;
            drop(scratch);
            let tmp = tmp.keep();
            match std::fs::rename(&tmp, &final_dir) {
                Ok(()) => {}
                Err(err) => {
                    if let Err(cleanup) = fs_err::remove_dir_all(&tmp) {
                        warn!("cannot remove a spare built wheel: {cleanup}");
                    }
                    // Another process built the same wheel first: use theirs.
                    if cached_wheel(&final_dir).map_err(io_err)?.is_none() {
                        return Err(io_err(io::Error::new(
                            err.kind(),
                            format!("cannot rename {} to {}: {err}", tmp.display(), final_dir.display()),
                        )));
                    }
                }
            }
            cached_wheel(&final_dir).map_err(io_err)?.ok_or_else(|| {
                io_err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no wheel in {}", final_dir.display()),
                ))
            })?
        }
    };
    let name = cached.file_name().unwrap_or_default();
    fs_err::create_dir_all(out_dir).map_err(io_err)?;
    let out = out_dir.join(name);
    fs_err::copy(&cached, &out).map_err(io_err)?;
    Ok(out)
}

/// The one `.whl` file in `dir`, a directory of the built-wheel cache; `None` when `dir`
/// does not exist.
fn cached_wheel(dir: &Path) -> io::Result<Option<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "whl") && path.is_file() {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// Unpacks `sdist` into a temporary directory under `ctx.work_dir/tmp`; returns that
/// directory (removed when dropped) and the source tree in it.
async fn unpack_source(
    sdist: &Path,
    filename: &SdistFilename,
    ctx: &BuildContext,
) -> Result<(tempfile::TempDir, PathBuf), SdistError> {
    let io_err = |source: io::Error| SdistError::Io { sdist: sdist.to_path_buf(), source };
    let format = match filename.extension {
        ".tar.gz" | ".tgz" => ArchiveFormat::TarGz,
        ".zip" => ArchiveFormat::Zip,
        extension => {
            return Err(SdistError::UnsupportedArchive {
                sdist: sdist.to_path_buf(),
                extension,
                name: filename.name.clone(),
            })
        }
    };
    let scratch = ctx.work_dir.join("tmp");
    fs_err::create_dir_all(&scratch).map_err(io_err)?;
    let unpack_dir = tempfile::Builder::new().prefix("sdist-").tempdir_in(&scratch).map_err(io_err)?;

    let source_dir = {
        let (sdist, root) = (sdist.to_path_buf(), unpack_dir.path().to_path_buf());
        tokio::task::spawn_blocking(move || {
            unpack(&sdist, format, &root, MAX_UNPACKED_BYTES)?;
            top_level_dir(&root).map_err(|source| SdistError::Io { sdist, source })
        })
        .await
        .map_err(|err| io_err(io::Error::other(err)))??
    };
    Ok((unpack_dir, source_dir))
}

#[derive(Debug, Clone, Copy)]
enum ArchiveFormat {
    TarGz,
    Zip,
}

/// The single top-level directory of an unpacked sdist, or the unpack root if there is none.
fn top_level_dir(root: &Path) -> io::Result<PathBuf> {
    let mut entries = fs_err::read_dir(root)?.collect::<Result<Vec<_>, _>>()?;
    if entries.len() == 1 && entries[0].file_type()?.is_dir() {
        if let Some(entry) = entries.pop() {
            return Ok(entry.path());
        }
    }
    Ok(root.to_path_buf())
}

/// `PKG-INFO` bytes when PEP 643 lets us trust them for resolution.
fn static_pkg_info(source_dir: &Path, filename: &SdistFilename) -> io::Result<Option<Vec<u8>>> {
    let path = source_dir.join("PKG-INFO");
    let bytes = match fs_err::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let metadata = match Metadata::parse(&bytes) {
        Ok(metadata) => metadata,
        Err(err) => {
            warn!("{}: ignoring unusable PKG-INFO: {err}", filename.name);
            return Ok(None);
        }
    };
    let reliable = metadata.metadata_version_at_least(2, 2)
        && !metadata.is_dynamic("Requires-Dist")
        && !metadata.is_dynamic("Requires-Python");
    if !reliable {
        return Ok(None);
    }
    if metadata.name != filename.name || metadata.version != filename.version {
        warn!(
            "PKG-INFO of {} {} says it is {} {}",
            filename.name, filename.version, metadata.name, metadata.version
        );
    }
    Ok(Some(bytes))
}

/// The requirements an unpacked sdist declares: `Requires-Dist` of its `PKG-INFO`, else the
/// lines of `*.egg-info/requires.txt`, those of an `[extra]` section with the marker
/// `extra == "extra"` (sections with markers of setuptools' own, `[extra:marker]`, are left
/// out). Files that cannot be read give nothing.
fn declared_requirements(source_dir: &Path) -> Vec<String> {
    const MAX: u64 = 1 << 20;
    let read = |path: &Path| -> Option<Vec<u8>> {
        let file = std::fs::File::open(path).ok()?;
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(file, MAX), &mut bytes).ok()?;
        Some(bytes)
    };
    if let Some(metadata) = read(&source_dir.join("PKG-INFO")).and_then(|b| Metadata::parse(&b).ok()) {
        let declared: Vec<String> = metadata.requires_dist.iter().map(|r| r.to_string()).collect();
        if !declared.is_empty() {
            return declared;
        }
    }
    let Ok(entries) = std::fs::read_dir(source_dir) else { return Vec::new() };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().ends_with(".egg-info") {
            continue;
        }
        let Some(bytes) = read(&entry.path().join("requires.txt")) else { continue };
        // Unconditional lines first, then `[extra]` sections (`[extra:marker]` and
        // `[:marker]` ones are left out).
        let mut section: Option<Option<String>> = None;
        let mut declared = Vec::new();
        for line in String::from_utf8_lossy(&bytes).lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = Some((!name.contains(':')).then(|| name.trim().to_string()));
                continue;
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match &section {
                None => declared.push(line.to_string()),
                Some(Some(extra)) if !line.contains(';') => {
                    declared.push(format!("{line}; extra == \"{extra}\""))
                }
                Some(_) => {}
            }
        }
        return declared;
    }
    Vec::new()
}

// ---------------------------------------------------------------------------------------------
// Unpacking

/// A link entry, materialised as a copy once all regular files are on disk.
struct PendingLink {
    /// Where the link goes, relative to the unpack root.
    at: PathBuf,
    /// What it points to, relative to the unpack root (already checked to stay inside).
    target: PathBuf,
    /// The entry name, for messages.
    entry: String,
}

/// Keeps the unpack within its limits and remembers links for later.
struct Unpacker<'a> {
    sdist: &'a Path,
    root: &'a Path,
    remaining_bytes: u64,
    limit_bytes: u64,
    entries: usize,
    links: Vec<PendingLink>,
}

impl Unpacker<'_> {
    fn unsafe_entry(&self, entry: &str, reason: &'static str) -> SdistError {
        SdistError::UnsafeEntry { sdist: self.sdist.to_path_buf(), entry: entry.to_string(), reason }
    }

    fn io(&self, source: io::Error) -> SdistError {
        SdistError::Io { sdist: self.sdist.to_path_buf(), source }
    }

    fn too_large(&self) -> SdistError {
        SdistError::TooLarge { sdist: self.sdist.to_path_buf(), limit: format!("{} bytes", self.limit_bytes) }
    }

    fn count_entry(&mut self) -> Result<(), SdistError> {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(SdistError::TooLarge {
                sdist: self.sdist.to_path_buf(),
                limit: format!("{MAX_ENTRIES} entries"),
            });
        }
        Ok(())
    }

    /// The components of the entry's `path` below the root (`None` for the root itself),
    /// refusing `..`, absolute paths and NUL.
    fn relative<'p>(
        &self,
        entry: &str,
        path: &'p [u8],
        rules: Rules,
    ) -> Result<Option<Vec<&'p [u8]>>, SdistError> {
        let parts = safe_path::normalize(path, rules).map_err(|refusal| {
            self.unsafe_entry(
                entry,
                match refusal {
                    Refusal::Absolute => "it is an absolute path",
                    Refusal::ParentDir | Refusal::Escapes => "it contains `..`",
                    Refusal::Nul => "it contains a NUL byte",
                    Refusal::Backslash | Refusal::DriveLetter => "it is a Windows path",
                },
            )
        })?;
        Ok((!parts.is_empty()).then_some(parts))
    }

    /// Where a link entry's `target` lands, read from `base` (components below the root).
    fn link_target(&self, entry: &str, base: &[&[u8]], target: &[u8]) -> Result<PathBuf, SdistError> {
        match safe_path::resolve(base, target, POSIX) {
            Ok(parts) => Ok(path_of(&parts)),
            Err(Refusal::Nul) => {
                Err(self.unsafe_entry(entry, "it is a link whose target contains a NUL byte"))
            }
            Err(_) => Err(self.unsafe_entry(entry, "it is a link pointing outside the archive")),
        }
    }

    fn dir(&mut self, rel: &Path) -> Result<(), SdistError> {
        fs_err::create_dir_all(self.root.join(rel)).map_err(|e| self.io(e))
    }

    fn file(&mut self, rel: &Path, data: &mut dyn Read, executable: bool) -> Result<(), SdistError> {
        self.write_file(&self.root.join(rel), data, executable)
    }

    /// Writes `data` to `path` (under the root), counting it against the size limit.
    fn write_file(&mut self, path: &Path, data: &mut dyn Read, executable: bool) -> Result<(), SdistError> {
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).map_err(|e| self.io(e))?;
        }
        let mut file = fs_err::File::create(path).map_err(|e| self.io(e))?;
        let written =
            io::copy(&mut data.take(self.remaining_bytes + 1), &mut file).map_err(|e| self.io(e))?;
        if written > self.remaining_bytes {
            return Err(self.too_large());
        }
        self.remaining_bytes -= written;
        set_executable(path, executable).map_err(|e| self.io(e))
    }

    /// Records a symlink at `parts` pointing to `target` (relative to the link's directory).
    fn symlink(&mut self, entry: &str, parts: &[&[u8]], target: &[u8]) -> Result<(), SdistError> {
        let base = parts.split_last().map_or(&[][..], |(_, base)| base);
        let target = self.link_target(entry, base, target)?;
        self.links.push(PendingLink { at: path_of(parts), target, entry: entry.to_string() });
        Ok(())
    }

    /// Records a hard link at `rel` to `target` (an archive path, relative to the root).
    fn hardlink(&mut self, entry: &str, rel: PathBuf, target: &[u8]) -> Result<(), SdistError> {
        let target = self.link_target(entry, &[], target)?;
        self.links.push(PendingLink { at: rel, target, entry: entry.to_string() });
        Ok(())
    }

    /// Copies link targets into place. Links to links resolve over several rounds; links to
    /// their own ancestors (cycles) and to nothing are dropped with a warning.
    fn materialise_links(&mut self) -> Result<(), SdistError> {
        let mut pending = std::mem::take(&mut self.links);
        loop {
            let before = pending.len();
            let mut waiting = Vec::new();
            for link in pending {
                if link.at.starts_with(&link.target) {
                    warn!("{:?}: dropping link `{}` to its own ancestor", self.sdist, link.entry);
                    continue;
                }
                let source = self.root.join(&link.target);
                match fs_err::symlink_metadata(&source) {
                    Ok(_) => self.copy(&source, &self.root.join(&link.at))?,
                    Err(err) if err.kind() == io::ErrorKind::NotFound => waiting.push(link),
                    Err(err) => return Err(self.io(err)),
                }
            }
            if waiting.is_empty() {
                return Ok(());
            }
            if waiting.len() == before {
                for link in waiting {
                    warn!("{:?}: dropping dangling link `{}`", self.sdist, link.entry);
                }
                return Ok(());
            }
            pending = waiting;
        }
    }

    /// Copies a file or directory tree (which holds no links: we never create any).
    fn copy(&mut self, from: &Path, to: &Path) -> Result<(), SdistError> {
        let metadata = fs_err::metadata(from).map_err(|e| self.io(e))?;
        if metadata.is_dir() {
            fs_err::create_dir_all(to).map_err(|e| self.io(e))?;
            for entry in fs_err::read_dir(from).map_err(|e| self.io(e))? {
                let entry = entry.map_err(|e| self.io(e))?;
                self.count_entry()?;
                self.copy(&entry.path(), &to.join(entry.file_name()))?;
            }
            Ok(())
        } else {
            let mut file = fs_err::File::open(from).map_err(|e| self.io(e))?;
            self.write_file(to, &mut file, is_executable(&metadata))
        }
    }
}

/// Tar member names, link targets (of either format) and `backend-path` entries: `/` is
/// refused and `\` is an ordinary character, as POSIX has it. Links resolve lexically, which
/// is exact because the tree holds no links (they become copies).
const POSIX: Rules = Rules { absolute: Absolute::Refuse, windows: Windows::Literal };
/// Zip member names: a `\` is a Windows separator that could hide a `..`.
const ZIP: Rules = Rules { absolute: Absolute::Refuse, windows: Windows::Separator };

/// The relative path made of `parts`, bytes as the archive holds them.
#[cfg(unix)]
fn path_of(parts: &[&[u8]]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    parts.iter().map(|part| std::ffi::OsStr::from_bytes(part)).collect()
}

#[cfg(not(unix))]
fn path_of(parts: &[&[u8]]) -> PathBuf {
    parts.iter().map(|part| String::from_utf8_lossy(part).into_owned()).collect()
}

#[cfg(unix)]
fn is_executable(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_metadata: &std::fs::Metadata) -> bool {
    false
}

#[cfg(unix)]
fn set_executable(path: &Path, executable: bool) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if executable { 0o755 } else { 0o644 };
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_executable(_path: &Path, _executable: bool) -> io::Result<()> {
    Ok(())
}

/// Unpacks `sdist` into `root`, refusing entries that would escape it and stopping at
/// `limit_bytes`. Blocking.
fn unpack(sdist: &Path, format: ArchiveFormat, root: &Path, limit_bytes: u64) -> Result<(), SdistError> {
    let mut unpacker =
        Unpacker { sdist, root, remaining_bytes: limit_bytes, limit_bytes, entries: 0, links: Vec::new() };
    let file = fs_err::File::open(sdist).map_err(|e| unpacker.io(e))?;
    match format {
        ArchiveFormat::TarGz => unpack_tar(&mut unpacker, file)?,
        ArchiveFormat::Zip => unpack_zip(&mut unpacker, file)?,
    }
    unpacker.materialise_links()
}

fn unpack_tar(unpacker: &mut Unpacker<'_>, file: fs_err::File) -> Result<(), SdistError> {
    let archive_err = |source: io::Error| SdistError::Archive {
        sdist: unpacker.sdist.to_path_buf(),
        format: "tar.gz",
        source: Box::new(source),
    };
    // Nothing claims what the tar expands to: a ceiling from the sdist's size stops a bomb
    // early (the file data is also bounded by the unpacker's limit).
    let size = file.metadata().map_err(|e| unpacker.io(e))?.len();
    let decoder = flate2::read::GzDecoder::new(io::BufReader::new(file));
    let what = format!("the sdist {}", unpacker.sdist.display());
    let decoder = bounded::Reader::ceiling(decoder, bounded::ceiling_for(size), what);
    let mut archive = tar::Archive::new(decoder);
    let entries = archive.entries().map_err(archive_err)?;
    for entry in entries {
        let mut entry = entry.map_err(archive_err)?;
        unpacker.count_entry()?;
        let path = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&path).into_owned();
        let Some(parts) = unpacker.relative(&name, &path, POSIX)? else { continue };
        let rel = path_of(&parts);
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Directory => unpacker.dir(&rel)?,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let executable = entry.header().mode().map(|m| m & 0o111 != 0).unwrap_or(false);
                unpacker.file(&rel, &mut entry, executable)?;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| unpacker.unsafe_entry(&name, "it is a link without a target"))?
                    .into_owned();
                if kind == tar::EntryType::Symlink {
                    unpacker.symlink(&name, &parts, &target)?;
                } else {
                    unpacker.hardlink(&name, rel, &target)?;
                }
            }
            other => debug!("{:?}: skipping `{name}` of type {other:?}", unpacker.sdist),
        }
    }
    Ok(())
}

fn unpack_zip(unpacker: &mut Unpacker<'_>, file: fs_err::File) -> Result<(), SdistError> {
    let archive_err = |source: zip::result::ZipError| SdistError::Archive {
        sdist: unpacker.sdist.to_path_buf(),
        format: "zip",
        source: Box::new(source),
    };
    let mut archive = zip::ZipArchive::new(io::BufReader::new(file)).map_err(archive_err)?;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(archive_err)?;
        unpacker.count_entry()?;
        let name = entry.name().to_string();
        let Some(parts) = unpacker.relative(&name, name.as_bytes(), ZIP)? else { continue };
        if entry.is_dir() {
            unpacker.dir(&path_of(&parts))?;
        } else if entry.is_symlink() {
            let mut target = String::new();
            entry.by_ref().take(4096).read_to_string(&mut target).map_err(|e| unpacker.io(e))?;
            unpacker.symlink(&name, &parts, target.as_bytes())?;
        } else {
            let executable = entry.unix_mode().is_some_and(|m| m & 0o111 != 0);
            let (size, what) = (entry.size(), format!("{name} of {}", unpacker.sdist.display()));
            unpacker.file(
                &path_of(&parts),
                &mut bounded::Reader::claimed(&mut entry, size, what),
                executable,
            )?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// PEP 517

/// The parts of `pyproject.toml` a build needs.
#[derive(Debug, Deserialize)]
struct PyProject {
    #[serde(rename = "build-system")]
    build_system: Option<BuildSystem>,
}

#[derive(Debug, Deserialize)]
struct BuildSystem {
    requires: Option<Vec<String>>,
    #[serde(rename = "build-backend")]
    build_backend: Option<String>,
    #[serde(rename = "backend-path")]
    backend_path: Option<Vec<String>>,
}

/// What the driver reports back.
#[derive(Debug, Default, Deserialize)]
struct HookResult {
    requires: Option<Vec<String>>,
    /// Distributions in the build venv: name -> version.
    installed: Option<BTreeMap<String, String>>,
    dist_info: Option<String>,
    wheel: Option<String>,
    /// `prepare_metadata_for_build_wheel`, run speculatively after
    /// `get_requires_for_build_wheel` in the same process (see [`HOOK_DRIVER`]).
    then: Option<Box<HookResult>>,
}

/// The requirements `installed` does not meet. Only plain `name[specifiers]` can be met:
/// markers, extras and URLs count as unmet (a new venv is the safe answer).
fn unsatisfied(requires: &[String], installed: &BTreeMap<String, String>) -> Vec<String> {
    let installed: BTreeMap<PackageName, &str> = installed
        .iter()
        .filter_map(|(name, version)| Some((PackageName::from_str(name).ok()?, version.as_str())))
        .collect();
    requires
        .iter()
        .filter(|text| {
            let Ok(req) = pep_types::parse_requirement(text) else { return true };
            if !req.marker.is_true() || !req.extras.is_empty() {
                return true;
            }
            let Some(version) = installed.get(&req.name).and_then(|v| Version::from_str(v).ok()) else {
                return true;
            };
            match &req.version_or_url {
                None => false,
                Some(pep_types::VersionOrUrl::VersionSpecifier(spec)) => {
                    !pep_types::specifiers_range(spec).contains(&version)
                }
                Some(pep_types::VersionOrUrl::Url(_)) => true,
            }
        })
        .cloned()
        .collect()
}

/// One sdist's PEP 517 metadata build.
struct Build<'a> {
    sdist: &'a Path,
    name: &'a PackageName,
    version: &'a Version,
    source_dir: &'a Path,
    ctx: &'a BuildContext,
}

/// The backend to call and what it needs installed.
struct Backend {
    requires: Vec<String>,
    backend: String,
    /// Absolute directories to put first on `sys.path`.
    backend_path: Vec<PathBuf>,
}

impl Build<'_> {
    fn io(&self, source: io::Error) -> SdistError {
        SdistError::Io { sdist: self.sdist.to_path_buf(), source }
    }

    /// The environment of every hook process in a venv: clean, `PATH` (the venv's `bin`
    /// first) and the backend environment of a cross build.
    fn configure(&self, command: &mut Command, path: &std::ffi::OsStr) {
        clean_env(command);
        command.env("PATH", path);
        command.envs(self.ctx.backend_env.iter().map(|(k, v)| (k, v)));
    }

    /// The fork server for `backend` in `env` (`None`: hooks run as processes of their own).
    /// A backend loaded from the tree itself (backend-path) is the tree's: no server.
    async fn server(
        &self,
        env: &Path,
        backend: &Backend,
        path: &std::ffi::OsStr,
    ) -> Option<Arc<zygote::Zygote>> {
        if !backend.backend_path.is_empty() {
            return None;
        }
        // One server per module: `setuptools.build_meta` and `setuptools.build_meta:__legacy__`
        // are objects of the same module, and every child loads its own request's object.
        let module = backend.backend.split(':').next().unwrap_or_default().trim();
        let key = format!("{}\0{module}\0{:?}", env.display(), self.ctx.backend_env);
        let configure = |command: &mut Command| self.configure(command, path);
        let python = env.join("bin").join("python");
        let spec = zygote::Spec {
            python: &python,
            backend: module,
            driver: HOOK_DRIVER,
            scratch_parent: &self.ctx.work_dir.join("tmp"),
            configure: &configure,
        };
        zygote::get(key, spec).await
    }

    fn build_system_error(&self, problem: String) -> SdistError {
        SdistError::BuildSystem {
            name: self.name.clone(),
            version: self.version.clone(),
            sdist: self.sdist.to_path_buf(),
            problem,
        }
    }

    async fn metadata(&self) -> Result<Vec<u8>, SdistError> {
        let constraints = read_constraints(&self.ctx.build_constraints)?;
        let interpreter = probe_interpreter(&self.ctx.python).await?;
        let (backend, scratch, env, speculative) = self.prepare(&interpreter, &constraints, true).await?;

        let result = match speculative {
            Some(result) => result,
            None => {
                self.run_hook(&env, &backend, "prepare_metadata_for_build_wheel", scratch.path(), false)
                    .await?
            }
        };
        let misbehaved = |problem: String| SdistError::HookResult {
            name: self.name.clone(),
            version: self.version.clone(),
            backend: backend.backend.clone(),
            hook: "prepare_metadata_for_build_wheel",
            problem,
        };
        if let Some(dist_info) = result.dist_info {
            let rel = plain_name(&dist_info)
                .ok_or_else(|| misbehaved(format!("it returned `{dist_info}`, not a directory name")))?;
            let path = scratch.path().join("metadata").join(rel).join("METADATA");
            return fs_err::read(&path).map_err(|e| misbehaved(format!("its METADATA cannot be read: {e}")));
        }
        if let Some(wheel) = result.wheel {
            let rel = plain_name(&wheel)
                .ok_or_else(|| misbehaved(format!("`build_wheel` returned `{wheel}`, not a file name")))?;
            let path = scratch.path().join("wheel").join(rel);
            return read_wheel_metadata(&path, self.name).map_err(misbehaved);
        }
        Err(misbehaved("the hook driver reported no result".to_string()))
    }

    /// Runs `build_wheel`; returns the scratch directory (the wheel is removed with it) and
    /// the built wheel's path in it.
    async fn wheel(
        &self,
        interpreter: &Interpreter,
        constraints: &[Constraint],
    ) -> Result<(tempfile::TempDir, PathBuf), SdistError> {
        let (backend, scratch, env, _) = self.prepare(interpreter, constraints, false).await?;
        let result = self.run_hook(&env, &backend, "build_wheel", scratch.path(), false).await?;
        let misbehaved = |problem: String| SdistError::HookResult {
            name: self.name.clone(),
            version: self.version.clone(),
            backend: backend.backend.clone(),
            hook: "build_wheel",
            problem,
        };
        let wheel =
            result.wheel.ok_or_else(|| misbehaved("the hook driver reported no wheel".to_string()))?;
        let rel = plain_name(&wheel)
            .ok_or_else(|| misbehaved(format!("it returned `{wheel}`, not a file name")))?;
        let parsed = pep_types::WheelFilename::from_str(&wheel)
            .map_err(|e| misbehaved(format!("it returned `{wheel}`, not a wheel file name: {e}")))?;
        if parsed.name != *self.name {
            return Err(misbehaved(format!("it built `{wheel}`, a wheel of another project")));
        }
        let path = scratch.path().join("wheel").join(rel);
        if !path.is_file() {
            return Err(misbehaved(format!("it returned `{wheel}` but wrote no such file")));
        }
        Ok((scratch, path))
    }

    /// The backend, a fresh scratch directory and a build venv with the static and dynamic
    /// (`get_requires_for_build_wheel`) build requirements installed. With `then_metadata`,
    /// the driver also runs `prepare_metadata_for_build_wheel` in the same process when the
    /// venv already has what the first hook asks for; that result is returned when the venv
    /// meets every requirement exactly (as pip would have run the hook in the same venv).
    async fn prepare(
        &self,
        interpreter: &Interpreter,
        constraints: &[Constraint],
        then_metadata: bool,
    ) -> Result<(Backend, tempfile::TempDir, PathBuf, Option<HookResult>), SdistError> {
        let backend = self.read_build_system()?;
        let scratch = tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(self.ctx.work_dir.join("tmp"))
            .map_err(|e| self.io(e))?;

        let (mut env, mut requires) = match self
            .requires_in_default_env(interpreter, constraints, &backend, scratch.path(), then_metadata)
            .await?
        {
            Some(found) => found,
            None => {
                let env = self.build_env(interpreter, constraints, &backend.requires).await?;
                let requires = self
                    .run_hook(&env, &backend, "get_requires_for_build_wheel", scratch.path(), then_metadata)
                    .await?;
                (env, requires)
            }
        };
        let unsatisfied = unsatisfied(
            requires.requires.as_deref().unwrap_or_default(),
            &requires.installed.take().unwrap_or_default(),
        );
        let speculative = requires.then.take();
        if unsatisfied.is_empty() {
            if let Some(result) = speculative.filter(|r| r.dist_info.is_some()) {
                debug!(
                    "{} {}: metadata from the same process as its build requirements",
                    self.name, self.version
                );
                return Ok((backend, scratch, env, Some(*result)));
            }
        }
        if then_metadata {
            // Whatever a speculative hook wrote (or half wrote) must not meet the real one.
            self.forget_speculation(scratch.path())?;
        }
        if !unsatisfied.is_empty() {
            debug!("{} {}: installing dynamic build requirements {unsatisfied:?}", self.name, self.version);
            let mut all = backend.requires.clone();
            all.extend(requires.requires.unwrap_or_default());
            env = self.build_env(interpreter, constraints, &all).await?;
        }
        Ok((backend, scratch, env, None))
    }

    /// `get_requires_for_build_wheel` of a setuptools sdist in the default build venv and its
    /// running fork server, when that is where pip's answer would lead: the static
    /// requirements (`requires = ["setuptools"]`) are met by the default venv, which holds only
    /// what they name and `wheel`, and setuptools before 70.1 answers `wheel`. pip would install
    /// the static requirements, ask the hook, then add `wheel`: the same venv, made and started
    /// a second time for one hook. The answer is used only if it names everything the
    /// default venv holds beyond the static requirements (it then does not depend on their
    /// being there already); otherwise the hook runs again as pip runs it (`Ok(None)`).
    async fn requires_in_default_env(
        &self,
        interpreter: &Interpreter,
        constraints: &[Constraint],
        backend: &Backend,
        scratch: &Path,
        then_metadata: bool,
    ) -> Result<Option<(PathBuf, HookResult)>, SdistError> {
        let module = backend.backend.split(':').next().unwrap_or_default().trim();
        if self.ctx.env_installer.is_none()
            || !backend.backend_path.is_empty()
            || module != "setuptools.build_meta"
        {
            return Ok(None);
        }
        let defaults: Vec<String> = DEFAULT_REQUIRES.iter().map(|r| r.to_string()).collect();
        if backend.requires.iter().collect::<BTreeSet<_>>() == defaults.iter().collect::<BTreeSet<_>>() {
            return Ok(None);
        }
        // Not this sdist's venv: if it cannot be made, the sdist's own may still be.
        let Ok(env) = self.build_env(interpreter, constraints, &defaults).await else { return Ok(None) };
        let installed = installed_in(&env);
        let asks_for_wheel = installed.contains_key("wheel")
            && installed
                .get("setuptools")
                .and_then(|v| Version::from_str(v).ok())
                .is_some_and(|v| v < Version::from_str("70.1").expect("a version"));
        if !asks_for_wheel || !unsatisfied(&backend.requires, &installed).is_empty() {
            return Ok(None);
        }
        let named = |requires: &[String]| -> BTreeSet<PackageName> {
            requires.iter().filter_map(|r| pep_types::parse_requirement(r).ok()).map(|r| r.name).collect()
        };
        let static_names = named(&backend.requires);
        let beyond: BTreeSet<PackageName> = installed
            .keys()
            .filter_map(|name| PackageName::from_str(name).ok())
            .filter(|name| !static_names.contains(name))
            .collect();
        let result = match self
            .run_hook(&env, backend, "get_requires_for_build_wheel", scratch, then_metadata)
            .await
        {
            Ok(result) => result,
            Err(e) => {
                debug!("{} {}: in the default build venv: {e}", self.name, self.version);
                self.forget_speculation(scratch)?;
                return Ok(None);
            }
        };
        let answered = named(result.requires.as_deref().unwrap_or_default());
        if beyond.is_subset(&answered) {
            debug!("{} {}: its build requirements are the default build venv's", self.name, self.version);
            return Ok(Some((env, result)));
        }
        debug!(
            "{} {}: get_requires_for_build_wheel does not name {beyond:?}: asking it again as pip does",
            self.name, self.version
        );
        self.forget_speculation(scratch)?;
        Ok(None)
    }

    /// Empties what a hook run wrote into `scratch`, for the next run to start clean.
    fn forget_speculation(&self, scratch: &Path) -> Result<(), SdistError> {
        for dir in ["metadata", "wheel"] {
            let dir = scratch.join(dir);
            match fs_err::remove_dir_all(&dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(self.io(e)),
                _ => {}
            }
            fs_err::create_dir_all(&dir).map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    /// Reads `[build-system]`, applying PEP 517/518 defaults.
    fn read_build_system(&self) -> Result<Backend, SdistError> {
        let path = self.source_dir.join("pyproject.toml");
        let text = match fs_err::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => return Err(self.io(err)),
        };
        let build_system = match text {
            Some(text) => {
                let pyproject: PyProject = toml::from_str(&text).map_err(|source| SdistError::Pyproject {
                    name: self.name.clone(),
                    version: self.version.clone(),
                    sdist: self.sdist.to_path_buf(),
                    source: Box::new(source),
                })?;
                pyproject.build_system
            }
            None => None,
        };
        let Some(build_system) = build_system else {
            return Ok(Backend {
                requires: DEFAULT_REQUIRES.iter().map(|r| r.to_string()).collect(),
                backend: DEFAULT_BACKEND.to_string(),
                backend_path: Vec::new(),
            });
        };
        let requires = build_system
            .requires
            .ok_or_else(|| self.build_system_error("`[build-system]` has no `requires` key".to_string()))?;
        let requires = requires.iter().map(|r| r.trim().to_string()).collect::<Vec<_>>();
        self.validate_requirements(&requires)?;
        let mut backend_path = Vec::new();
        for entry in build_system.backend_path.unwrap_or_default() {
            let inside = safe_path::resolve(&[], entry.as_str(), POSIX).map_err(|_| {
                self.build_system_error(format!("`backend-path` entry `{entry}` leaves the project"))
            })?;
            backend_path.push(self.source_dir.join(inside.iter().collect::<PathBuf>()));
        }
        Ok(Backend {
            requires,
            backend: build_system.build_backend.unwrap_or_else(|| DEFAULT_BACKEND.to_string()),
            backend_path,
        })
    }

    fn validate_requirements(&self, requirements: &[String]) -> Result<(), SdistError> {
        for requirement in requirements {
            pep_types::parse_requirement(requirement).map_err(|source| SdistError::BuildRequirement {
                name: self.name.clone(),
                version: self.version.clone(),
                requirement: requirement.clone(),
                source: Box::new(source),
            })?;
        }
        Ok(())
    }

    /// A venv with `requirements` installed: from the cache, or made now.
    ///
    /// With our installer, the requirements are resolved first and the venv is keyed by what
    /// it holds (the exact wheels and the interpreter): `setuptools>=40.8.0 wheel` and
    /// `setuptools>=43 wheel` that resolve to the same two wheels share one venv, made once
    /// (`build-envs/c-KEY`); the requirements' own key becomes a link to it, for the next run.
    /// What our installer cannot do, the host's pip does, in a venv keyed by the requirements.
    async fn build_env(
        &self,
        interpreter: &Interpreter,
        constraints: &[Constraint],
        requirements: &[String],
    ) -> Result<PathBuf, SdistError> {
        self.validate_requirements(requirements)?;
        let requirements: BTreeSet<&str> = requirements.iter().map(String::as_str).collect();
        let key = env_key(interpreter, constraints, &requirements, &self.ctx.pip_args);
        let envs = self.ctx.work_dir.join("build-envs");
        let final_dir = envs.join(&key);
        if let Some(dir) = existing_env(&final_dir) {
            debug!("reusing build venv {}", dir.display());
            return Ok(dir);
        }
        // Within this process, one task builds a given venv while the others wait for it;
        // across processes the rename below settles it.
        let lock = env_lock(&final_dir);
        let _guard = lock.lock().await;
        if let Some(dir) = existing_env(&final_dir) {
            return Ok(dir);
        }
        fs_err::create_dir_all(&envs).map_err(|e| self.io(e))?;
        let started = std::time::Instant::now();
        if requirements.is_empty() {
            let tmp = tempfile::Builder::new().prefix(".tmp-").tempdir_in(&envs).map_err(|e| self.io(e))?;
            write_venv(tmp.path(), interpreter).map_err(|e| self.io(e))?;
            publish_dir(&tmp.keep(), &final_dir).map_err(|e| self.io(e))?;
            return Ok(final_dir);
        }
        if let Some(installer) = &self.ctx.env_installer {
            let wanted: Vec<&str> = requirements.iter().copied().collect();
            match installer.resolve(EnvRequest::new(&wanted, self.ctx, interpreter)).await {
                Ok(resolved) => match self
                    .content_env(installer.as_ref(), interpreter, &resolved, &envs)
                    .await
                {
                    Ok(dir) => {
                        link_env(&final_dir, &dir).map_err(|e| self.io(e))?;
                        debug!(
                            "build venv {} ({}) ready after {:.1?}",
                            dir.display(),
                            resolved.files.iter().map(|f| f.filename.as_str()).collect::<Vec<_>>().join(", "),
                            started.elapsed()
                        );
                        return Ok(dir);
                    }
                    Err(why) => {
                        debug!("{} {}: pip installs the build requirements: {why}", self.name, self.version)
                    }
                },
                Err(why) => {
                    debug!("{} {}: pip installs the build requirements: {why}", self.name, self.version)
                }
            }
        }
        let tmp = tempfile::Builder::new().prefix(".tmp-").tempdir_in(&envs).map_err(|e| self.io(e))?;
        let log = tmp.path().join("build-env.log");
        // A venv without pip (and so without the setuptools that Python < 3.12 seeds, as
        // pip's isolated build environments start empty), written here rather than by
        // `python -m venv` (a fifth of a second each); the host's pip installs with
        // `--python` (pip >= 22.3). Older pips get a venv of their own to install with.
        write_venv(tmp.path(), interpreter).map_err(|e| self.io(e))?;
        let venv_python = tmp.path().join("bin").join("python");
        {
            let install = |host_pip: bool| {
                let mut pip = if host_pip {
                    let mut pip = Command::new(&self.ctx.python);
                    pip.args(["-m", "pip", "--python"]).arg(&venv_python);
                    pip
                } else {
                    Command::new(&venv_python)
                };
                if !host_pip {
                    pip.args(["-m", "pip"]);
                }
                // pip's own HTTP cache lives in ours: a cold run of ours is cold for pip too,
                // and `cache clean` clears both.
                pip.args(["install", "--disable-pip-version-check", "--no-input"])
                    .arg("--cache-dir")
                    .arg(self.ctx.work_dir.join("pip-cache"))
                    .arg("--no-warn-script-location")
                    .args(&self.ctx.pip_args);
                for constraint in constraints {
                    pip.arg("-c").arg(&constraint.path);
                }
                pip.args(&requirements);
                // Build requirements that are themselves sdists get built by pip in their own
                // isolated env; the environment variable carries the constraints there too.
                if !constraints.is_empty() {
                    let joined = constraints
                        .iter()
                        .map(|c| c.path.to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join(" ");
                    pip.env("PIP_CONSTRAINT", joined);
                }
                pip
            };
            let (mut status, mut output) = run_logged(install(true), &log).await?;
            if !status.success() && output.contains("no such option: --python") {
                debug!("the host's pip has no --python; seeding the build venv with its own pip");
                let mut ensurepip = Command::new(&venv_python);
                ensurepip.args(["-m", "ensurepip", "--default-pip"]);
                let (seeded, seed_output) = run_logged(ensurepip, &log).await?;
                if !seeded.success() {
                    return Err(SdistError::Venv {
                        python: self.ctx.python.clone(),
                        status: seeded,
                        output: tail(&seed_output),
                    });
                }
                (status, output) = run_logged(install(false), &log).await?;
            }
            if !status.success() {
                return Err(SdistError::PipInstall {
                    name: self.name.clone(),
                    version: self.version.clone(),
                    requirements: requirements.iter().copied().collect::<Vec<_>>().join(" "),
                    status,
                    hint: setuptools_hint(self.name, self.version, &output),
                    output: tail(&output),
                });
            }
        }
        // Only pip writes a log.
        match fs_err::remove_file(&log) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(self.io(e)),
            _ => {}
        }
        // Scripts that pip wrote name the temporary venv's interpreter; ours name the final one.
        relocate_scripts(&tmp.path().join("bin"), tmp.path(), &final_dir).map_err(|e| self.io(e))?;
        let tmp = tmp.keep();
        publish_dir(&tmp, &final_dir).map_err(|e| self.io(e))?;
        debug!("build venv {} ready after {:.1?}", final_dir.display(), started.elapsed());
        Ok(final_dir)
    }

    /// The venv holding exactly `resolved`: from the cache, or installed now by `installer`.
    /// An error is the installer's, for the caller to fall back on pip.
    async fn content_env(
        &self,
        installer: &dyn EnvInstaller,
        interpreter: &Interpreter,
        resolved: &ResolvedEnv,
        envs: &Path,
    ) -> Result<PathBuf, String> {
        let dir = envs.join(format!("c-{}", content_env_key(interpreter, resolved)));
        if dir.join("pyvenv.cfg").is_file() {
            return Ok(dir);
        }
        let lock = env_lock(&dir);
        let _guard = lock.lock().await;
        if dir.join("pyvenv.cfg").is_file() {
            return Ok(dir);
        }
        let io = |e: io::Error| format!("cannot make a build venv under {}: {e}", envs.display());
        let tmp = tempfile::Builder::new().prefix(".tmp-").tempdir_in(envs).map_err(io)?;
        write_venv(tmp.path(), interpreter).map_err(io)?;
        installer.install(resolved, tmp.path(), &dir).await?;
        publish_dir(&tmp.keep(), &dir).map_err(io)?;
        Ok(dir)
    }

    /// Runs one hook through [`HOOK_DRIVER`] in the source tree and returns its result.
    async fn run_hook(
        &self,
        env: &Path,
        backend: &Backend,
        hook: &'static str,
        scratch: &Path,
        then_metadata: bool,
    ) -> Result<HookResult, SdistError> {
        // The driver's directory becomes `sys.path[0]`: keep it free of anything importable
        // (a `wheel` directory there would shadow a missing `wheel` package).
        let driver = scratch.join("driver").join("pep517_driver.py");
        let request = scratch.join(format!("{hook}.request.json"));
        let result = scratch.join(format!("{hook}.result.json"));
        let log = scratch.join(format!("{hook}.log"));
        let metadata_directory = scratch.join("metadata");
        let wheel_directory = scratch.join("wheel");
        let request_json = serde_json::json!({
            "hook": hook,
            "backend": backend.backend,
            "backend_path": backend.backend_path,
            "metadata_directory": metadata_directory,
            "wheel_directory": wheel_directory,
            "result": result,
            "then_metadata": then_metadata,
            "env": hook_env(hook, &self.ctx.work_dir, self.source_dir, self.name, self.version),
        });
        let write = || -> io::Result<()> {
            fs_err::create_dir_all(&metadata_directory)?;
            fs_err::create_dir_all(&wheel_directory)?;
            fs_err::create_dir_all(scratch.join("driver"))?;
            fs_err::write(&driver, HOOK_DRIVER)?;
            fs_err::write(&request, request_json.to_string())
        };
        write().map_err(|e| self.io(e))?;

        let bin = env.join("bin");
        let path = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(&path)))
            .map_err(|e| self.io(io::Error::other(e)))?;
        let configure = |command: &mut Command| self.configure(command, &path);
        let server = self.server(env, backend, &path).await;
        let forked = match &server {
            Some(server) => server.run(self.source_dir, &request, &log).await,
            None => None,
        };
        let (status, output) = match forked {
            Some(status) => {
                debug!("{} {}: {hook} in the fork server of {}", self.name, self.version, env.display());
                let output = std::fs::read(&log).map_err(|e| self.io(e))?;
                (status, String::from_utf8_lossy(&output).into_owned())
            }
            None => {
                let mut command = Command::new(bin.join("python"));
                command.arg(&driver).arg(&request).current_dir(self.source_dir);
                configure(&mut command);
                run_logged(command, &log).await?
            }
        };
        if !status.success() {
            return Err(SdistError::Backend {
                name: self.name.clone(),
                version: self.version.clone(),
                backend: backend.backend.clone(),
                hook,
                status,
                hint: setuptools_hint(self.name, self.version, &output),
                output: tail(&output),
            });
        }
        let text = fs_err::read_to_string(&result).map_err(|e| self.io(e))?;
        serde_json::from_str(&text).map_err(|e| SdistError::HookResult {
            name: self.name.clone(),
            version: self.version.clone(),
            backend: backend.backend.clone(),
            hook,
            problem: format!("its result `{text}` is not what the driver writes: {e}"),
        })
    }
}

/// Name -> version of every distribution in the venv at `env`, from its `.dist-info`
/// directory names (`setuptools-69.0.2.dist-info`); unreadable ones are left out.
fn installed_in(env: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let Ok(libs) = std::fs::read_dir(env.join("lib")) else { return found };
    for lib in libs.flatten() {
        let Ok(dists) = std::fs::read_dir(lib.path().join("site-packages")) else { continue };
        for dist in dists.flatten() {
            let name = dist.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".dist-info")) else { continue };
            if let Some((name, version)) = stem.split_once('-') {
                if let Ok(name) = PackageName::from_str(name) {
                    found.insert(name.to_string(), version.to_string());
                }
            }
        }
    }
    found
}

/// Writes a virtual environment without pip at `dir` for `interpreter`, as `python -m venv
/// --without-pip` does on POSIX: `pyvenv.cfg` (which makes Python use `dir`'s
/// site-packages, not the system's), `bin/python`, `python3` and `pythonX.Y` as symbolic
/// links to the interpreter, and an empty `lib/pythonX.Y/site-packages`.
fn write_venv(dir: &Path, interpreter: &Interpreter) -> io::Result<()> {
    let executable = Path::new(&interpreter.base_executable);
    let home = executable.parent().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("`{}` is not an interpreter path", executable.display()),
        )
    })?;
    let mut parts = interpreter.release.split('.');
    let major_minor = match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => format!("{major}.{minor}"),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("`{}` is not a Python version", interpreter.release),
            ))
        }
    };
    fs_err::create_dir_all(dir.join("lib").join(format!("python{major_minor}")).join("site-packages"))?;
    let bin = dir.join("bin");
    fs_err::create_dir_all(&bin)?;
    for name in ["python".to_string(), "python3".to_string(), format!("python{major_minor}")] {
        fs_err::os::unix::fs::symlink(executable, bin.join(name))?;
    }
    fs_err::write(
        dir.join("pyvenv.cfg"),
        format!(
            "home = {}\ninclude-system-site-packages = false\nversion = {}\nexecutable = {}\n",
            home.display(),
            interpreter.release,
            executable.display()
        ),
    )
}

/// The in-process lock for building the venv at `dir`.
fn env_lock(dir: &Path) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    locks.entry(dir.to_path_buf()).or_default().clone()
}

/// Moves the complete venv `tmp` to `final_dir`. If another process got there first, its
/// venv is as good as ours: ours is removed and theirs used.
fn publish_dir(tmp: &Path, final_dir: &Path) -> io::Result<()> {
    match std::fs::rename(tmp, final_dir) {
        Ok(()) => Ok(()),
        Err(_) if final_dir.join("pyvenv.cfg").is_file() => {
            debug!("another process created {} first; using it", final_dir.display());
            if let Err(err) = fs_err::remove_dir_all(tmp) {
                warn!("cannot remove a spare build venv: {err}");
            }
            Ok(())
        }
        Err(err) => {
            if let Err(cleanup) = fs_err::remove_dir_all(tmp) {
                warn!("cannot remove a failed build venv: {cleanup}");
            }
            Err(io::Error::new(
                err.kind(),
                format!("cannot rename {} to {}: {err}", tmp.display(), final_dir.display()),
            ))
        }
    }
}

/// `name` if it is a single plain path component (what PEP 517 hooks return).
fn plain_name(name: &str) -> Option<&Path> {
    let path = Path::new(name);
    let mut components = path.components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(_)), None) => Some(path),
        _ => None,
    }
}

/// `*.dist-info/METADATA` from a wheel, preferring the dist-info named after the package.
fn read_wheel_metadata(wheel: &Path, name: &PackageName) -> Result<Vec<u8>, String> {
    let file = fs_err::File::open(wheel).map_err(|e| e.to_string())?;
    let mut archive = zip::ZipArchive::new(io::BufReader::new(file))
        .map_err(|e| format!("its wheel `{}` is not a zip file: {e}", wheel.display()))?;
    let candidates: Vec<String> = archive
        .file_names()
        .filter(|n| {
            n.strip_suffix("/METADATA").is_some_and(|dir| dir.ends_with(".dist-info") && !dir.contains('/'))
        })
        .map(str::to_string)
        .collect();
    let wanted = candidates
        .iter()
        .find(|n| {
            n.split('-')
                .next()
                .and_then(|prefix| PackageName::from_str(prefix).ok())
                .is_some_and(|n| &n == name)
        })
        .or_else(|| candidates.first())
        .ok_or_else(|| format!("its wheel `{}` has no .dist-info/METADATA", wheel.display()))?;
    let entry = archive.by_name(wanted).map_err(|e| e.to_string())?;
    let (size, what) = (entry.size(), format!("{wanted} of {}", wheel.display()));
    let mut bytes = Vec::new();
    bounded::Reader::claimed(entry, size, what).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// The host interpreter, as identified for the venv cache key.
#[derive(Debug, Clone)]
struct Interpreter {
    executable: String,
    /// `sys.version`, in full (part of build keys).
    version: String,
    /// `3.11.2`.
    release: String,
    /// The glibc it runs on (`2.36`), empty when unknown.
    glibc: String,
    /// The interpreter a venv is made from: `executable` itself, or, when `python3` is a
    /// venv's, the one that venv was made from (as `python -m venv` does).
    base_executable: String,
}

/// Starts asking `python` what it is in the background, on `runtime`, so that the first
/// sdist build of a resolution does not wait for it: behind a shim (pyenv's) an interpreter
/// takes a few hundred milliseconds to start, and the caller (the resolution's setup) is
/// about to wait as long for the host's pip anyway. A failure is not kept: the first build
/// asks again and reports it.
pub fn prewarm_interpreter(runtime: &tokio::runtime::Handle, python: &Path) {
    let python = python.to_path_buf();
    runtime.spawn(async move {
        if let Err(e) = probe_interpreter(&python).await {
            tracing::debug!("asking {} what it is, ahead of any build: {e}", python.display());
        }
    });
}

/// What `python` is, asked once per process (every sdist build asks): the answer of a
/// successful probe is kept by path.
async fn probe_interpreter(python: &Path) -> Result<Interpreter, SdistError> {
    // One probe per interpreter, however many sdists ask at once: the first sdists of a
    // resolution start together, and an interpreter behind a shim (pyenv's) takes a few
    // hundred milliseconds to start. A failed probe is not kept, so the next caller tries.
    type Cell = std::sync::Arc<tokio::sync::OnceCell<Interpreter>>;
    static PROBED: Mutex<Vec<(PathBuf, Cell)>> = Mutex::new(Vec::new());
    let cell: Cell = {
        let mut probed = PROBED.lock().unwrap_or_else(|e| e.into_inner());
        match probed.iter().find(|(path, _)| path == python) {
            Some((_, cell)) => std::sync::Arc::clone(cell),
            None => {
                let cell = Cell::default();
                probed.push((python.to_path_buf(), std::sync::Arc::clone(&cell)));
                cell
            }
        }
    };
    cell.get_or_try_init(|| run_probe(python)).await.cloned()
}

async fn run_probe(python: &Path) -> Result<Interpreter, SdistError> {
    let mut command = Command::new(python);
    command.args([
        "-c",
        "import platform, sys; print(sys.executable); print(sys.version.replace(chr(10), ' ')); \
         print('%d.%d.%d' % sys.version_info[:3]); print(platform.libc_ver()[1]); \
         print(getattr(sys, '_base_executable', None) or sys.executable)",
    ]);
    clean_env(&mut command);
    let output = command
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| SdistError::Spawn { program: python.to_path_buf(), source })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines();
    match (output.status.success(), lines.next(), lines.next(), lines.next()) {
        (true, Some(executable), Some(version), Some(release)) => Ok(Interpreter {
            executable: executable.to_string(),
            version: version.to_string(),
            release: release.to_string(),
            glibc: lines.next().unwrap_or_default().to_string(),
            base_executable: lines.next().filter(|l| !l.is_empty()).unwrap_or(executable).to_string(),
        }),
        _ => Err(SdistError::Interpreter {
            python: python.to_path_buf(),
            status: output.status,
            output: format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)),
        }),
    }
}

/// A build constraints file: its absolute path and contents (for the cache key).
struct Constraint {
    path: PathBuf,
    contents: Vec<u8>,
}

fn read_constraints(paths: &[PathBuf]) -> Result<Vec<Constraint>, SdistError> {
    paths
        .iter()
        .map(|path| {
            let err = |source| SdistError::BuildConstraint { path: path.clone(), source };
            let absolute = std::path::absolute(path).map_err(err)?;
            let contents = std::fs::read(&absolute).map_err(err)?;
            Ok(Constraint { path: absolute, contents })
        })
        .collect()
}

/// The cache key of a build venv.
fn env_key(
    interpreter: &Interpreter,
    constraints: &[Constraint],
    requirements: &BTreeSet<&str>,
    pip_args: &[String],
) -> String {
    build_key(None, interpreter, requirements, constraints, pip_args)
}

/// The key of a venv holding exactly `resolved`'s wheels for `interpreter`.
fn content_env_key(interpreter: &Interpreter, resolved: &ResolvedEnv) -> String {
    let mut hasher = Sha256::new();
    let mut field = |tag: &str, value: &[u8]| {
        hasher.update(tag.as_bytes());
        hasher.update((value.len() as u64).to_le_bytes());
        hasher.update(value);
    };
    field("python", interpreter.executable.as_bytes());
    field("version", interpreter.version.as_bytes());
    let mut wheels: Vec<String> = resolved
        .files
        .iter()
        .map(|f| format!("{} {}", f.filename, f.sha256.as_deref().unwrap_or(f.url.as_str())))
        .collect();
    wheels.sort();
    for wheel in &wheels {
        field("wheel", wheel.as_bytes());
    }
    hex::encode(&hasher.finalize()[..16])
}

/// The venv at `dir` if there is one: a content-keyed venv's own path when `dir` is a link to
/// it (one venv, one path, one fork server).
fn existing_env(dir: &Path) -> Option<PathBuf> {
    if !dir.join("pyvenv.cfg").is_file() {
        return None;
    }
    match std::fs::read_link(dir) {
        Ok(target) => Some(dir.parent().unwrap_or(Path::new(".")).join(target)),
        Err(_) => Some(dir.to_path_buf()),
    }
}

/// Makes `link` (a requirements key) point at the content-keyed venv `target` beside it,
/// atomically; a link or venv another process put there first stays.
fn link_env(link: &Path, target: &Path) -> io::Result<()> {
    let (Some(name), Some(own)) = (target.file_name(), link.file_name()) else { return Ok(()) };
    // Named after the link: each link has one maker in this process (its lock's holder).
    let tmp = link.with_file_name(format!(".tmp-link-{}-{}", std::process::id(), own.to_string_lossy()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(name, &tmp)?;
    if let Err(e) = std::fs::rename(&tmp, link) {
        let _ = std::fs::remove_file(&tmp);
        if !link.join("pyvenv.cfg").is_file() {
            return Err(e);
        }
    }
    Ok(())
}

/// Where compilers are told the unpacked source is (`-ffile-prefix-map`), whatever temporary
/// directory it is really in: a C extension's debug information and assertions name this
/// path instead, so the wheel's bytes do not depend on the machine or the run.
const REPRODUCIBLE_PATHS: &str = "/usr/src";

/// What the hook's environment gets besides the build venv's (see [`HOOK_DRIVER`]): for
/// `build_wheel`, the compilers' `CFLAGS`/`CXXFLAGS` (the host's, if any) with the build
/// directory of the cache (build venvs' headers) mapped to `/usr/src/.build` and the source
/// directory to `/usr/src/NAME-VERSION` ([`REPRODUCIBLE_PATHS`]; the later map wins).
fn hook_env(
    hook: &str,
    work_dir: &Path,
    source_dir: &Path,
    name: &PackageName,
    version: &Version,
) -> serde_json::Value {
    let mut env = serde_json::Map::new();
    if hook == "build_wheel" {
        let map = format!(
            "-ffile-prefix-map={}={REPRODUCIBLE_PATHS}/.build -ffile-prefix-map={}={REPRODUCIBLE_PATHS}/{name}-{version}",
            work_dir.display(),
            source_dir.display()
        );
        for flags in ["CFLAGS", "CXXFLAGS"] {
            let value = match std::env::var(flags) {
                Ok(host) if !host.trim().is_empty() => format!("{host} {map}"),
                _ => map.clone(),
            };
            env.insert(flags.to_string(), serde_json::Value::String(value));
        }
    }
    serde_json::Value::Object(env)
}

/// The cache key of a wheel built from an sdist.
fn wheel_key(
    sdist_sha256: &[u8],
    interpreter: &Interpreter,
    constraints: &[Constraint],
    pip_args: &[String],
    backend_env: &[(String, String)],
) -> String {
    let mut args = pip_args.to_vec();
    // Only a cross build has an environment; other keys stay as they were.
    args.extend(backend_env.iter().map(|(k, v)| format!("env {k}={v}")));
    args.push(format!("paths {REPRODUCIBLE_PATHS}"));
    build_key(Some(sdist_sha256), interpreter, &BTreeSet::new(), constraints, &args)
}

/// Hashes what a build's result depends on, each field tagged and length-prefixed: the sdist
/// (for built wheels), the interpreter, the requirements (for venvs), the constraint files'
/// contents in a fixed order, and the pip arguments.
fn build_key(
    sdist_sha256: Option<&[u8]>,
    interpreter: &Interpreter,
    requirements: &BTreeSet<&str>,
    constraints: &[Constraint],
    pip_args: &[String],
) -> String {
    let mut hasher = Sha256::new();
    let mut field = |tag: &str, value: &[u8]| {
        hasher.update(tag.as_bytes());
        hasher.update((value.len() as u64).to_le_bytes());
        hasher.update(value);
    };
    if let Some(sha) = sdist_sha256 {
        field("sdist", sha);
    }
    field("python", interpreter.executable.as_bytes());
    field("version", interpreter.version.as_bytes());
    for requirement in requirements {
        field("requirement", requirement.as_bytes());
    }
    let mut contents: Vec<&[u8]> = constraints.iter().map(|c| c.contents.as_slice()).collect();
    contents.sort();
    for content in contents {
        field("constraint", content);
    }
    for arg in pip_args {
        field("pip-arg", arg.as_bytes());
    }
    hex::encode(&hasher.finalize()[..16])
}

/// Rewrites the venv's own path in `bin/` scripts (shebangs of console scripts that pip
/// installed) from where it was built to where it will live: venvs are not relocatable.
fn relocate_scripts(bin: &Path, from: &Path, to: &Path) -> io::Result<()> {
    let (from, to) = (from.as_os_str().as_encoded_bytes(), to.as_os_str().as_encoded_bytes());
    for entry in fs_err::read_dir(bin)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let path = entry.path();
        let bytes = fs_err::read(&path)?;
        if bytes.len() > 1 << 20 || !bytes.windows(from.len()).any(|w| w == from) {
            continue;
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut rest = bytes.as_slice();
        while let Some(at) = rest.windows(from.len()).position(|w| w == from) {
            out.extend_from_slice(&rest[..at]);
            out.extend_from_slice(to);
            rest = &rest[at + from.len()..];
        }
        out.extend_from_slice(rest);
        fs_err::write(&path, out)?;
    }
    Ok(())
}

/// Isolates a child Python and pip from the user's configuration: pip reads only the
/// arguments we pass (`PIP_CONFIG_FILE=/dev/null`, no other `PIP_*`), Python ignores
/// `PYTHONPATH`, `PYTHONHOME` and the user site. `SSL_CERT_FILE` and the rest pass through.
fn clean_env(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key_str = key.to_string_lossy();
        if key_str.starts_with("PIP_")
            || matches!(&*key_str, "PYTHONPATH" | "PYTHONHOME" | "PYTHONSTARTUP" | "VIRTUAL_ENV")
        {
            command.env_remove(&key);
        }
    }
    command.env("PIP_CONFIG_FILE", "/dev/null").env("PYTHONNOUSERSITE", "1").env("PYTHONUNBUFFERED", "1");
}

/// Runs `command` with a clean environment, stdout and stderr interleaved into `log`, and
/// returns its status and output.
async fn run_logged(mut command: Command, log: &Path) -> Result<(ExitStatus, String), SdistError> {
    let program = PathBuf::from(command.as_std().get_program());
    let spawn_err = |source| SdistError::Spawn { program: program.clone(), source };
    let file = std::fs::File::create(log).map_err(spawn_err)?;
    let stderr = file.try_clone().map_err(spawn_err)?;
    clean_env(&mut command);
    command.stdin(Stdio::null()).stdout(Stdio::from(file)).stderr(Stdio::from(stderr)).kill_on_drop(true);
    debug!("running {:?}", command.as_std());
    let status = command.status().await.map_err(spawn_err)?;
    let output = std::fs::read(log).map_err(spawn_err)?;
    Ok((status, String::from_utf8_lossy(&output).into_owned()))
}

/// The last [`OUTPUT_TAIL_LINES`] lines of `output`.
fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let start = lines.len().saturating_sub(OUTPUT_TAIL_LINES);
    lines[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use tempfile::TempDir;

    use super::*;

    type TarBuilder = tar::Builder<GzEncoder<std::fs::File>>;

    fn check<T, E: std::fmt::Display>(result: Result<T, E>) -> T {
        match result {
            Ok(value) => value,
            Err(err) => panic!("{err}"),
        }
    }

    fn temp() -> TempDir {
        check(tempfile::tempdir())
    }

    fn filename(file: &str, project: &str) -> SdistFilename {
        let project = check(PackageName::from_str(project));
        check(SdistFilename::parse(file, &project))
    }

    /// Writes a `.tar.gz` whose entries `add` appends.
    fn write_targz(path: &Path, add: impl FnOnce(&mut TarBuilder) -> io::Result<()>) {
        let file = check(std::fs::File::create(path));
        let mut builder = tar::Builder::new(GzEncoder::new(file, flate2::Compression::fast()));
        check(add(&mut builder));
        let encoder = check(builder.into_inner());
        check(encoder.finish());
    }

    fn add_file(builder: &mut TarBuilder, path: &str, contents: &str) -> io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, path, contents.as_bytes())
    }

    /// Appends an entry whose name is written byte for byte (no validation by the tar crate).
    fn add_raw(
        builder: &mut TarBuilder,
        name: &str,
        kind: tar::EntryType,
        link: &str,
        contents: &str,
    ) -> io::Result<()> {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(kind);
        if !link.is_empty() {
            header.set_link_name(link)?;
        }
        header.set_cksum();
        builder.append(&header, contents.as_bytes())
    }

    /// An sdist `name-version.tar.gz` in `dir` holding `files` under `name-version/`.
    fn sdist(dir: &Path, stem: &str, files: &[(&str, &str)]) -> PathBuf {
        let path = dir.join(format!("{stem}.tar.gz"));
        write_targz(&path, |builder| {
            for (name, contents) in files {
                add_file(builder, &format!("{stem}/{name}"), contents)?;
            }
            Ok(())
        });
        path
    }

    fn ctx(work_dir: &Path) -> BuildContext {
        BuildContext {
            env_installer: None,
            python: PathBuf::from("python3"),
            pip_args: Vec::new(),
            build_constraints: Vec::new(),
            work_dir: work_dir.to_path_buf(),
            backend_env: Vec::new(),
        }
    }

    fn build_envs(work_dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = check(std::fs::read_dir(work_dir.join("build-envs")))
            .map(|entry| check(entry).file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn requires_dist(bytes: &[u8]) -> Vec<String> {
        check(Metadata::parse(bytes)).requires_dist.iter().map(ToString::to_string).collect()
    }

    const STATIC_PKG_INFO: &str = "Metadata-Version: 2.2\nName: static-pkg\nVersion: 1.0\n\
Requires-Dist: numpy>=1.20\nDynamic: Description\n\nLong description.\n";

    #[tokio::test]
    async fn static_pkg_info_is_returned_without_running_python() {
        let dir = temp();
        let path = sdist(
            dir.path(),
            "static_pkg-1.0",
            &[("PKG-INFO", STATIC_PKG_INFO), ("setup.py", "raise SystemExit('never run')\n")],
        );
        let mut ctx = ctx(&dir.path().join("work"));
        ctx.python = PathBuf::from("/nonexistent/python3");
        let bytes =
            check(sdist_metadata(&path, &filename("static_pkg-1.0.tar.gz", "static-pkg"), &ctx).await);
        assert_eq!(bytes, STATIC_PKG_INFO.as_bytes());
        // The unpack directory is gone.
        let leftovers = check(std::fs::read_dir(dir.path().join("work").join("tmp"))).count();
        assert_eq!(leftovers, 0);
    }

    #[tokio::test]
    async fn static_pkg_info_from_a_zip() {
        let dir = temp();
        let path = dir.path().join("static-pkg-1.0.zip");
        let mut zip = zip::ZipWriter::new(check(std::fs::File::create(&path)));
        let options = zip::write::SimpleFileOptions::default();
        check(zip.add_directory("static-pkg-1.0/", options));
        check(zip.start_file("static-pkg-1.0/PKG-INFO", options));
        check(zip.write_all(STATIC_PKG_INFO.as_bytes()));
        check(zip.finish());
        let mut ctx = ctx(&dir.path().join("work"));
        ctx.python = PathBuf::from("/nonexistent/python3");
        let bytes = check(sdist_metadata(&path, &filename("static-pkg-1.0.zip", "static-pkg"), &ctx).await);
        assert_eq!(bytes, STATIC_PKG_INFO.as_bytes());
    }

    /// An installer that records what it is asked and resolves to nothing.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl EnvInstaller for Recorder {
        fn resolve<'a>(
            &'a self,
            request: EnvRequest<'a>,
        ) -> futures::future::BoxFuture<'a, Result<ResolvedEnv, String>> {
            self.0.lock().unwrap().push(format!("resolve {}", request.requirements.join(" ")));
            Box::pin(async { Ok(ResolvedEnv { files: Vec::new() }) })
        }
        fn fetch<'a>(&'a self, _: &'a ResolvedEnv) -> futures::future::BoxFuture<'a, Result<(), String>> {
            self.0.lock().unwrap().push("fetch".to_string());
            Box::pin(async { Ok(()) })
        }
        fn install<'a>(
            &'a self,
            _: &'a ResolvedEnv,
            _: &'a Path,
            _: &'a Path,
        ) -> futures::future::BoxFuture<'a, Result<(), String>> {
            self.0.lock().unwrap().push("install".to_string());
            Box::pin(async { Ok(()) })
        }
    }

    /// The default build venv's wheels are resolved and fetched ahead, once per cache, and
    /// nothing is installed; a cache that has the venv fetches nothing.
    #[tokio::test]
    async fn the_default_env_is_fetched_ahead_once_and_not_installed() {
        let recorded = |dir: &Path| {
            let recorder = Arc::new(Recorder::default());
            let mut with = ctx(dir);
            with.env_installer = Some(recorder.clone());
            (with, recorder)
        };
        let dir = temp();
        let (ahead, recorder) = recorded(dir.path());
        prefetch_default_env(&ahead).await;
        prefetch_default_env(&ahead).await;
        assert_eq!(*recorder.0.lock().unwrap(), ["resolve setuptools>=40.8.0 wheel", "fetch"]);
        assert!(!dir.path().join("build-envs").exists());

        let dir = temp();
        let (made, recorder) = recorded(dir.path());
        // Makes the (empty) default venv; its fork server cannot start without setuptools.
        warm_default_env(&made).await;
        prefetch_default_env(&made).await;
        assert_eq!(*recorder.0.lock().unwrap(), ["resolve setuptools>=40.8.0 wheel", "install"]);
    }

    #[test]
    fn declared_requirements_keep_their_extras() {
        let dir = temp();
        let egg = dir.path().join("demo.egg-info");
        fs_err::create_dir_all(&egg).unwrap();
        fs_err::write(
            egg.join("requires.txt"),
            "six>=1\n\n[social]\nallauth>=0.5\n\n[:sys_platform == \"win32\"]\npywin32\n\n[dev:python_version < \"3.9\"]\nold\n",
        )
        .unwrap();
        assert_eq!(declared_requirements(dir.path()), ["six>=1", "allauth>=0.5; extra == \"social\""]);
        // PKG-INFO wins, markers and all.
        fs_err::write(
            dir.path().join("PKG-INFO"),
            "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: six\nProvides-Extra: social\n\
             Requires-Dist: allauth; extra == \"social\"\n",
        )
        .unwrap();
        assert_eq!(declared_requirements(dir.path()), ["six", "allauth ; extra == 'social'"]);
    }

    #[tokio::test]
    async fn unsupported_archive_says_so() {
        let dir = temp();
        let path = dir.path().join("old-1.0.tar.bz2");
        check(std::fs::write(&path, b"BZh9"));
        let err = sdist_metadata(&path, &filename("old-1.0.tar.bz2", "old"), &ctx(dir.path())).await;
        assert!(matches!(err, Err(SdistError::UnsupportedArchive { extension: ".tar.bz2", .. })));
    }

    fn unpack_err(path: &Path, format: ArchiveFormat, limit: u64) -> String {
        let root = path.with_extension("out");
        check(std::fs::create_dir_all(&root));
        match unpack(path, format, &root, limit) {
            Ok(()) => panic!("{} unpacked", path.display()),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn unsafe_entries_are_refused() {
        let dir = temp();
        let cases: [(&str, tar::EntryType, &str, &str); 4] = [
            ("../evil.txt", tar::EntryType::Regular, "", "it contains `..`"),
            ("pkg-1.0/../../evil.txt", tar::EntryType::Regular, "", "it contains `..`"),
            ("/tmp/evil.txt", tar::EntryType::Regular, "", "it is an absolute path"),
            ("pkg-1.0/link", tar::EntryType::Symlink, "../../evil", "pointing outside"),
        ];
        for (index, (name, kind, link, reason)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("case{index}.tar.gz"));
            write_targz(&path, |b| {
                add_file(b, "pkg-1.0/PKG-INFO", "x")?;
                add_raw(b, name, kind, link, "evil")
            });
            let err = unpack_err(&path, ArchiveFormat::TarGz, MAX_UNPACKED_BYTES);
            assert!(err.contains(reason) && err.contains(name), "{name}: {err}");
        }
        let absolute_link = dir.path().join("abslink.tar.gz");
        write_targz(&absolute_link, |b| {
            add_raw(b, "pkg-1.0/link", tar::EntryType::Symlink, "/etc/passwd", "")
        });
        let err = unpack_err(&absolute_link, ArchiveFormat::TarGz, MAX_UNPACKED_BYTES);
        assert!(err.contains("pointing outside"), "{err}");

        let zip_path = dir.path().join("evil.zip");
        let mut zip = zip::ZipWriter::new(check(std::fs::File::create(&zip_path)));
        check(zip.start_file("../evil.txt", zip::write::SimpleFileOptions::default()));
        check(zip.write_all(b"evil"));
        check(zip.finish());
        let err = unpack_err(&zip_path, ArchiveFormat::Zip, MAX_UNPACKED_BYTES);
        assert!(err.contains("`../evil.txt`"), "{err}");

        let backslash_zip = dir.path().join("backslash.zip");
        let mut zip = zip::ZipWriter::new(check(std::fs::File::create(&backslash_zip)));
        check(zip.start_file("pkg-1.0\\..\\..\\evil.txt", zip::write::SimpleFileOptions::default()));
        check(zip.write_all(b"evil"));
        check(zip.finish());
        let err = unpack_err(&backslash_zip, ArchiveFormat::Zip, MAX_UNPACKED_BYTES);
        assert!(err.contains("it contains `..`"), "{err}");

        assert!(!dir.path().join("evil.txt").exists());
        assert!(!Path::new("/tmp/evil.txt").exists());
    }

    #[test]
    fn links_become_copies_and_size_is_capped() {
        let dir = temp();
        let path = dir.path().join("links.tar.gz");
        write_targz(&path, |b| {
            add_raw(b, "pkg-1.0/docs/readme", tar::EntryType::Symlink, "../README", "")?;
            add_file(b, "pkg-1.0/README", "hello")?;
            add_raw(b, "pkg-1.0/hard", tar::EntryType::Link, "pkg-1.0/README", "")?;
            add_raw(b, "pkg-1.0/src/loop", tar::EntryType::Symlink, "..", "")?;
            add_raw(b, "pkg-1.0/dangling", tar::EntryType::Symlink, "missing", "")
        });
        let root = dir.path().join("out");
        check(std::fs::create_dir(&root));
        check(unpack(&path, ArchiveFormat::TarGz, &root, MAX_UNPACKED_BYTES));
        for copy in ["pkg-1.0/docs/readme", "pkg-1.0/hard"] {
            let copy = root.join(copy);
            assert!(check(std::fs::symlink_metadata(&copy)).file_type().is_file());
            assert_eq!(check(std::fs::read_to_string(&copy)), "hello");
        }
        assert!(!root.join("pkg-1.0/src/loop").exists());
        assert!(!root.join("pkg-1.0/dangling").exists());

        let err = unpack_err(&path, ArchiveFormat::TarGz, 7);
        assert!(err.contains("more than 7 bytes"), "{err}");
    }

    const DYNAMIC_BACKEND: &str = r#"
import os

def get_requires_for_build_wheel(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    print("computing dependencies")
    name = "dynpkg-1.0.dist-info"
    os.makedirs(os.path.join(metadata_directory, name))
    with open(os.path.join(metadata_directory, name, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: dynpkg\nVersion: 1.0\n")
        f.write("Requires-Dist: computed-dep==%d\n" % (6 * 7))
    return name
"#;

    const WHEEL_ONLY_BACKEND: &str = r#"
import os, zipfile

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = "wheelonly-2.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as whl:
        whl.writestr("wheelonly/__init__.py", "")
        whl.writestr(
            "wheelonly-2.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: wheelonly\nVersion: 2.0\nRequires-Dist: from-wheel>=1\n",
        )
    return name
"#;

    const FAILING_BACKEND: &str = r#"
def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    print("running egg_info for broken")
    import pkg_resources_is_gone
"#;

    fn in_tree_backend(module: &str) -> String {
        format!("[build-system]\nrequires = []\nbuild-backend = \"{module}\"\nbackend-path = [\".\"]\n")
    }

    /// `build_wheel` builds once per sdist and host Python; a second call copies the cached
    /// wheel, and a wheel of another project is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn built_wheels_are_cached() {
        let dir = temp();
        let work = dir.path().join("work");
        let ctx = ctx(&work);
        let count = dir.path().join("builds");
        let counting = WHEEL_ONLY_BACKEND
            .replace("    name = ", &format!("    open({:?}, 'a').write('x')\n    name = ", count.display()));
        let source = sdist(
            dir.path(),
            "wheelonly-2.0",
            &[("pyproject.toml", &in_tree_backend("wheelbackend")), ("wheelbackend.py", &counting)],
        );
        let names = filename("wheelonly-2.0.tar.gz", "wheelonly");
        let first = check(build_wheel(&source, &names, &ctx, &dir.path().join("out1")).await);
        let second = check(build_wheel(&source, &names, &ctx, &dir.path().join("out2")).await);
        assert_eq!(first, dir.path().join("out1/wheelonly-2.0-py3-none-any.whl"));
        assert_eq!(second, dir.path().join("out2/wheelonly-2.0-py3-none-any.whl"));
        assert_eq!(check(fs_err::read(&first)), check(fs_err::read(&second)));
        assert_eq!(check(fs_err::read_to_string(&count)), "x");

        let other = sdist(
            dir.path(),
            "other-1.0",
            &[("pyproject.toml", &in_tree_backend("wheelbackend")), ("wheelbackend.py", &counting)],
        );
        let err = build_wheel(&other, &filename("other-1.0.tar.gz", "other"), &ctx, dir.path()).await;
        let err = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("a wheel of another project"), "{err}");
    }

    /// Three in-tree backends with no build requirements share one venv, built concurrently.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pep517_hooks_in_one_shared_venv() {
        let dir = temp();
        let work = dir.path().join("work");
        let ctx = ctx(&work);
        let dynamic = sdist(
            dir.path(),
            "dynpkg-1.0",
            &[
                ("pyproject.toml", &in_tree_backend("mybackend")),
                ("mybackend.py", DYNAMIC_BACKEND),
                // PEP 643: a dynamic Requires-Dist forces the build.
                ("PKG-INFO", "Metadata-Version: 2.2\nName: dynpkg\nVersion: 1.0\nDynamic: Requires-Dist\n"),
            ],
        );
        let wheel_only = sdist(
            dir.path(),
            "wheelonly-2.0",
            &[("pyproject.toml", &in_tree_backend("wheelbackend")), ("wheelbackend.py", WHEEL_ONLY_BACKEND)],
        );
        let failing = sdist(
            dir.path(),
            "broken-0.1",
            &[("pyproject.toml", &in_tree_backend("failing:backend")), ("failing.py", "")],
        );
        let failing_names = filename("broken-0.1.tar.gz", "broken");
        let dynamic_names = filename("dynpkg-1.0.tar.gz", "dynpkg");
        let wheel_only_names = filename("wheelonly-2.0.tar.gz", "wheelonly");
        let (dynamic, wheel_only, missing_attribute) = tokio::join!(
            sdist_metadata(&dynamic, &dynamic_names, &ctx),
            sdist_metadata(&wheel_only, &wheel_only_names, &ctx),
            sdist_metadata(&failing, &failing_names, &ctx),
        );
        assert_eq!(requires_dist(&check(dynamic)), ["computed-dep==42"]);
        assert_eq!(requires_dist(&check(wheel_only)), ["from-wheel>=1"]);
        let err = missing_attribute.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("AttributeError") && err.contains("backend"), "{err}");

        let failing = sdist(
            dir.path(),
            "broken-0.1",
            &[("pyproject.toml", &in_tree_backend("failing")), ("failing.py", FAILING_BACKEND)],
        );
        let err = sdist_metadata(&failing, &failing_names, &ctx).await;
        let Err(err @ SdistError::Backend { .. }) = err else { panic!("{err:?}") };
        let err = format!("{err}\nhint: {}", err.hint().unwrap_or_default());
        for expected in [
            "broken 0.1: the build backend `failing` failed in `prepare_metadata_for_build_wheel`",
            "running egg_info for broken",
            "ModuleNotFoundError: No module named 'pkg_resources_is_gone'",
            "hint: broken 0.1 may need an older setuptools",
            "--build-constraint",
        ] {
            assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
        }
        assert_eq!(build_envs(&work).len(), 1, "{:?}", build_envs(&work));
    }

    /// A pure-Python wheel `buildhelper-VERSION` whose module says which dependency to declare.
    fn write_helper_wheel(dir: &Path, version: &str) {
        let path = dir.join(format!("buildhelper-{version}-py3-none-any.whl"));
        let mut zip = zip::ZipWriter::new(check(std::fs::File::create(path)));
        let options = zip::write::SimpleFileOptions::default();
        let dist_info = format!("buildhelper-{version}.dist-info");
        let files = [
            ("buildhelper/__init__.py".to_string(), format!("DEPENDENCY = 'helped=={version}'\n")),
            (
                format!("{dist_info}/METADATA"),
                format!("Metadata-Version: 2.1\nName: buildhelper\nVersion: {version}\n"),
            ),
            (
                format!("{dist_info}/WHEEL"),
                "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n".to_string(),
            ),
        ];
        let mut record = String::new();
        for (name, contents) in &files {
            check(zip.start_file(name.as_str(), options));
            check(zip.write_all(contents.as_bytes()));
            record.push_str(&format!("{name},,\n"));
        }
        record.push_str(&format!("{dist_info}/RECORD,,\n"));
        check(zip.start_file(format!("{dist_info}/RECORD"), options));
        check(zip.write_all(record.as_bytes()));
        check(zip.finish());
    }

    const HELPER_BACKEND: &str = r#"
import os
import buildhelper

def get_requires_for_build_wheel(config_settings=None):
    return DYNAMIC_REQUIRES

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    name = "helped_pkg-1.0.dist-info"
    os.makedirs(os.path.join(metadata_directory, name))
    with open(os.path.join(metadata_directory, name, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: helped-pkg\nVersion: 1.0\n")
        f.write("Requires-Dist: %s\n" % buildhelper.DEPENDENCY)
    return name
"#;

    /// Build requirements come from a local find-links directory, under a constraints file;
    /// dynamic requirements that the venv already satisfies do not cost a new venv.
    #[tokio::test]
    async fn build_requirements_from_a_local_index_with_constraints() {
        let dir = temp();
        let links = dir.path().join("links");
        check(std::fs::create_dir(&links));
        write_helper_wheel(&links, "1.0");
        write_helper_wheel(&links, "2.0");
        let constraints = dir.path().join("build-constraints.txt");
        check(std::fs::write(&constraints, "buildhelper<2\n"));
        let work = dir.path().join("work");
        let mut ctx = ctx(&work);
        ctx.pip_args =
            vec!["--no-index".to_string(), "--find-links".to_string(), links.to_string_lossy().into_owned()];
        ctx.build_constraints = vec![constraints];

        // Static requirement; the dynamic one is already satisfied.
        let static_backend = HELPER_BACKEND.replace("DYNAMIC_REQUIRES", "['buildhelper<3']");
        let pyproject = "[build-system]\nrequires = [\"buildhelper\"]\n\
build-backend = \"helperbackend\"\nbackend-path = [\".\"]\n";
        let path = sdist(
            dir.path(),
            "helped_pkg-1.0",
            &[("pyproject.toml", pyproject), ("helperbackend.py", &static_backend)],
        );
        let names = filename("helped_pkg-1.0.tar.gz", "helped-pkg");
        let started = std::time::Instant::now();
        assert_eq!(requires_dist(&check(sdist_metadata(&path, &names, &ctx).await)), ["helped==1.0"]);
        assert_eq!(build_envs(&work).len(), 1);
        let cold = started.elapsed();

        // The same build again reuses the venv.
        let started = std::time::Instant::now();
        check(sdist_metadata(&path, &names, &ctx).await);
        assert!(started.elapsed() < cold, "warm {:?} vs cold {cold:?}", started.elapsed());
        assert_eq!(build_envs(&work).len(), 1);

        // Only a dynamic requirement: installed into a venv keyed like the first one's.
        let dynamic_backend = HELPER_BACKEND
            .replace("import buildhelper\n", "")
            .replace("DYNAMIC_REQUIRES", "['buildhelper']")
            .replace("buildhelper.DEPENDENCY", "__import__('buildhelper').DEPENDENCY");
        let path = sdist(
            dir.path(),
            "helped_pkg-1.0",
            &[("pyproject.toml", &in_tree_backend("helperbackend")), ("helperbackend.py", &dynamic_backend)],
        );
        assert_eq!(requires_dist(&check(sdist_metadata(&path, &names, &ctx).await)), ["helped==1.0"]);
        // The empty venv for `requires = []`, and the shared one with buildhelper.
        assert_eq!(build_envs(&work).len(), 2);
    }

    #[tokio::test]
    async fn missing_build_requirement_fails_with_pip_output() {
        let dir = temp();
        let links = dir.path().join("links");
        check(std::fs::create_dir(&links));
        let mut ctx = ctx(&dir.path().join("work"));
        ctx.pip_args = vec!["--no-index".into(), "--find-links".into(), links.to_string_lossy().into_owned()];
        let pyproject = "[build-system]\nrequires = [\"setuptools<70\"]\n";
        let path = sdist(dir.path(), "old_pkg-1.0", &[("pyproject.toml", pyproject), ("setup.py", "")]);
        let err = sdist_metadata(&path, &filename("old_pkg-1.0.tar.gz", "old-pkg"), &ctx).await;
        let Err(err @ SdistError::PipInstall { .. }) = err else { panic!("{err:?}") };
        let err = format!("{err}\nhint: {}", err.hint().unwrap_or_default());
        assert!(err.contains("failed to install build requirements `setuptools<70`"), "{err}");
        assert!(err.contains("No matching distribution found"), "{err}");
        assert!(err.contains("hint: old-pkg 1.0 may need an older setuptools"), "{err}");
    }

    #[test]
    fn losing_the_rename_race_uses_the_winner() {
        let dir = temp();
        let winner = dir.path().join("env");
        check(std::fs::create_dir(&winner));
        check(std::fs::write(winner.join("pyvenv.cfg"), "home = winner\n"));
        check(std::fs::write(winner.join("marker"), ""));
        let loser = dir.path().join(".tmp-loser");
        check(std::fs::create_dir(&loser));
        check(std::fs::write(loser.join("pyvenv.cfg"), "home = loser\n"));
        check(publish_dir(&loser, &winner));
        assert!(!loser.exists());
        assert_eq!(check(std::fs::read_to_string(winner.join("pyvenv.cfg"))), "home = winner\n");

        let fresh = dir.path().join(".tmp-fresh");
        check(std::fs::create_dir(&fresh));
        check(std::fs::write(fresh.join("pyvenv.cfg"), ""));
        check(publish_dir(&fresh, &dir.path().join("env2")));
        assert!(dir.path().join("env2").join("pyvenv.cfg").is_file());
    }

    #[test]
    fn build_system_defaults_and_errors() {
        let dir = temp();
        let ctx = ctx(dir.path());
        let name = check(PackageName::from_str("pkg"));
        let version = check(Version::from_str("1.0"));
        let build =
            Build { sdist: dir.path(), name: &name, version: &version, source_dir: dir.path(), ctx: &ctx };
        let backend = check(build.read_build_system());
        assert_eq!(backend.requires, ["setuptools>=40.8.0", "wheel"]);
        assert_eq!(backend.backend, "setuptools.build_meta:__legacy__");

        check(std::fs::write(dir.path().join("pyproject.toml"), "[tool.black]\nline-length = 100\n"));
        assert_eq!(check(build.read_build_system()).backend, DEFAULT_BACKEND);

        check(std::fs::write(
            dir.path().join("pyproject.toml"),
            "[build-system]\nrequires = [\"flit_core >=3.2,<4\"]\n",
        ));
        let backend = check(build.read_build_system());
        assert_eq!(backend.requires, ["flit_core >=3.2,<4"]);
        assert_eq!(backend.backend, DEFAULT_BACKEND);

        let invalid = [
            ("[build-system]\nbuild-backend = \"x\"\n", "has no `requires` key"),
            ("[build-system]\nrequires = [\"not a requirement!\"]\n", "`not a requirement!`"),
            ("[build-system]\nrequires = []\nbackend-path = [\"../up\"]\n", "leaves the project"),
            ("[build-system\n", "invalid `pyproject.toml`"),
        ];
        for (text, expected) in invalid {
            check(std::fs::write(dir.path().join("pyproject.toml"), text));
            let err = build.read_build_system().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(expected) && err.contains("pkg 1.0"), "{text}: {err}");
        }
    }
}
