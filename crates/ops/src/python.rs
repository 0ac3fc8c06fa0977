//! The Python side of a run: pip's index configuration, the registry client, the cache and
//! the runtime (one [`IndexSource`] shared by every target), resolution with progress, and dates.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use pep_types::{PackageName, Target, Version};
use py_resolver::{resolve_all, IndexSource, RequirementSet, Resolution, ResolveOptions};
use pypi_client::sdist::BuildContext;
use pypi_client::{
    IndexArgs, IndexConfig, IndexStrategy, PipEnvironment, PypiClient, PypiClientOptions, WheelFilter,
};

use crate::{Error, Reporter};

/// What the Python side of a run needs to know to reach the indexes.
pub struct SourceSetup {
    pub index_args: IndexArgs,
    pub exclude_newer: Option<jiff::Timestamp>,
    pub build_constraints: Vec<PathBuf>,
    pub no_build: bool,
    pub offline: bool,
    pub refresh: bool,
    /// Projects served by one index only (`[[python.index]]` of a manifest).
    pub pinned: Vec<(PackageName, url::Url)>,
    pub index_strategy: IndexStrategy,
    /// `--exclude-newer-package`: per-project cutoffs, `None` for none.
    pub exclude_newer_packages: BTreeMap<PackageName, Option<jiff::Timestamp>>,
    /// Indexes whose files no cutoff applies to.
    pub exclude_newer_exempt: Vec<url::Url>,
}

/// The runtime and the memoised index access for resolving `targets`: pip's index
/// configuration, the cache, the HTTP client, and how sdists get built.
pub fn open_source(
    setup: SourceSetup,
    targets: &[Arc<Target>],
) -> Result<(&'static tokio::runtime::Runtime, Arc<IndexSource>), Error> {
    let runtime = crate::env::runtime()?;
    let cache = crate::env::cache()?;
    let python = PathBuf::from("python3");
    if !setup.no_build {
        // While the host's pip is asked for its default index (another interpreter start).
        pypi_client::sdist::prewarm_interpreter(runtime.handle(), &python);
    }
    let pip_env = PipEnvironment {
        default_index_memo: Some(cache.root().join("host-pip-default-index")),
        ..PipEnvironment::from_process()
    };
    let config = IndexConfig::from_pip_with(&setup.index_args, &pip_env)
        .map_err(|e| Error::from_error("cannot read the package index configuration", e))?;
    let http = crate::env::client(fetch::ClientOptions {
        ca_bundle: config.cert.clone(),
        offline: setup.offline,
        timeout: std::time::Duration::from_secs_f64(config.timeout.unwrap_or(60.0)),
        ..fetch::ClientOptions::default()
    })?;
    let installer = crate::build_env::OwnInstaller::new();
    let build = (!setup.no_build).then(|| BuildContext {
        python,
        pip_args: config.pip_args(),
        build_constraints: setup.build_constraints.clone(),
        work_dir: cache.root().join("builds"),
        backend_env: Vec::new(),
        env_installer: Some(installer.clone()),
    });
    // Wheels that no target can install (other systems, other Pythons) are dropped while
    // pages are parsed: on large pages they are most of the files.
    let kept: Vec<Arc<Target>> = targets.to_vec();
    let keep_wheel = WheelFilter(Arc::new(move |w| kept.iter().any(|t| t.wheel_rank(w).is_some())));
    let client = PypiClient::new(
        config,
        http,
        cache.clone(),
        PypiClientOptions {
            exclude_newer: setup.exclude_newer,
            refresh: setup.refresh,
            offline: setup.offline,
            keep_wheel: Some(keep_wheel),
            pinned: setup.pinned,
            index_strategy: setup.index_strategy,
            exclude_newer_packages: setup.exclude_newer_packages,
            exclude_newer_exempt: setup.exclude_newer_exempt,
            ..PypiClientOptions::default()
        },
    );
    let prefetch = build.clone();
    let source = IndexSource::new(client, build, cache, runtime.handle().clone());
    installer.attach(&source);
    if let Some(build) = prefetch {
        runtime.spawn(async move { pypi_client::sdist::prefetch_default_env(&build).await });
    }
    Ok((runtime, source))
}

/// Resolves for every target with a spinner counting pages and metadata files (on a
/// terminal), then one summary line per target.
pub fn resolve_with_progress(
    source: &Arc<IndexSource>,
    targets: &[Arc<Target>],
    set: &RequirementSet,
    preferences: &[HashMap<PackageName, Version>],
    options: &ResolveOptions,
    printer: &dyn Reporter,
) -> Result<Vec<Resolution>, Error> {
    let started = Instant::now();
    let spinner = printer.spinner(&format!(
        "Resolving for {}",
        targets.iter().map(|t| t.platform()).collect::<Vec<_>>().join(", ")
    ));
    let progress = source.progress();
    let ticker = spinner.clone();
    let base_message = ticker.message();
    // The spinner's own thread redraws; this one only refreshes the counts.
    let counts = std::thread::spawn(move || {
        while !ticker.is_finished() && !ticker.is_hidden() {
            ticker.set_message(format!(
                "{base_message}: {} pages, {} metadata files",
                progress.pages.load(Ordering::Relaxed),
                progress.metadata.load(Ordering::Relaxed)
            ));
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    });
    let resolutions = resolve_all(source, targets, set, preferences, options);
    // The metadata builds' fork servers end with the resolution (and are counted with it).
    source.block_on(pypi_client::shutdown_build_servers());
    spinner.finish_and_clear();
    let _ = counts.join();
    let resolutions = resolutions.map_err(|e| Error::from_error(e.to_string(), e))?;
    let elapsed = started.elapsed().as_secs_f64();
    for r in &resolutions {
        printer.status(format!("Resolved {} packages for {} in {elapsed:.2}s", r.packages.len(), r.target));
    }
    Ok(resolutions)
}

/// `--exclude-newer-package NAME=DATE` / `NAME=false`, as uv spells it.
pub fn parse_exclude_newer_packages(
    values: &[String],
) -> Result<BTreeMap<PackageName, Option<jiff::Timestamp>>, Error> {
    let mut out = BTreeMap::new();
    for value in values {
        let bad = || {
            Error::user(format!("bad --exclude-newer-package `{value}`"))
                .with_hint("write NAME=DATE (YYYY-MM-DD or RFC 3339) or NAME=false, e.g. torch=false")
        };
        let (name, cutoff) = value.split_once('=').ok_or_else(bad)?;
        let name = PackageName::from_str(name.trim()).map_err(|_| bad())?;
        let cutoff = match cutoff.trim() {
            "false" => None,
            date => Some(parse_date(date)?),
        };
        out.insert(name, cutoff);
    }
    Ok(out)
}

/// `2025-05-30` (midnight UTC) or a full RFC 3339 timestamp.
pub fn parse_date(s: &str) -> Result<jiff::Timestamp, Error> {
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(ts);
    }
    s.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| {
            Error::user(format!("bad date `{s}` for --exclude-newer"))
                .with_hint("use YYYY-MM-DD or an RFC 3339 time such as 2025-05-30T00:00:00Z")
        })
}
