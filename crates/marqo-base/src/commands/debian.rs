//! `marqo-base debian resolve|rootfs`: a Debian suite's packages resolved for each
//! architecture and printed as a locked set, or fetched and unpacked into a root filesystem
//! without running anything. The work is in the `debian` crate.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use debian::{LockedDeb, ResolveOptions, Source};

use crate::cli::{DebianArgs, DebianCommand, DebianResolveArgs, DebianRootfsArgs, DebianSetArgs};
use crate::diagnostics::CliError;
use crate::printer::Printer;

/// The Debian architectures the image is built for.
const ARCHES: &[&str] = &["amd64", "arm64"];

pub fn exec(args: DebianArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    match args.command {
        DebianCommand::Resolve(args) => exec_resolve(args, printer),
        DebianCommand::Rootfs(args) => exec_rootfs(args, printer),
    }
}

/// `debian resolve`: the locked set of each architecture on stdout, a summary on stderr.
fn exec_resolve(args: DebianResolveArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    let started = Instant::now();
    let arches = parse_arches(&args.set.arches)?;
    let session = Session::open(&SourceArgs::of(&args.set))?;
    let resolved = session.resolve(&args.set.packages, &set_options(&args.set), &arches, printer)?;

    let mut out = String::new();
    for (i, set) in resolved.sets.iter().enumerate() {
        if resolved.sets.len() > 1 {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&format!("# {}\n", set.arch));
        }
        for deb in &set.debs {
            out.push_str(&format!("{deb}\n"));
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| CliError::from_error("cannot write the package set to stdout", e))?;
    printer.status(format!(
        "Done in {:.2}s (indexes {:.2}s, resolution {:.2}s)",
        started.elapsed().as_secs_f64(),
        resolved.index_time.as_secs_f64(),
        resolved.resolve_time.as_secs_f64()
    ));
    Ok(ExitCode::SUCCESS)
}

/// `debian rootfs`: resolve, fetch every `.deb` once (hash-checked, cached, in parallel),
/// and unpack each architecture's set into its directory.
fn exec_rootfs(args: DebianRootfsArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    let started = Instant::now();
    let arches = parse_arches(&args.set.arches)?;
    let outputs = output_dirs(&args.out, &arches)?;
    // Refuse a directory in the way before any network traffic.
    for out in &outputs {
        check_output(out, args.force)?;
    }
    let session = Session::open(&SourceArgs::of(&args.set))?;
    let resolved = session.resolve(&args.set.packages, &set_options(&args.set), &arches, printer)?;

    // A package of architecture `all` is usually in every set: fetch each file once.
    let mut unique: Vec<LockedDeb> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for deb in resolved.sets.iter().flat_map(|s| &s.debs) {
        if seen.insert(deb.sha256.clone()) {
            unique.push(deb.clone());
        }
    }
    let (paths, fetch_time) = session.fetch_debs(&unique, printer)?;
    let by_hash: HashMap<&str, &PathBuf> = unique.iter().map(|d| d.sha256.as_str()).zip(&paths).collect();

    // Each architecture goes to its own directory: unpack them in parallel (decompressing
    // data.tar.xz is most of the time).
    let unpack_started = Instant::now();
    let jobs: Vec<(&ArchSet, &PathBuf, Vec<Fetched>)> = resolved
        .sets
        .iter()
        .zip(&outputs)
        .map(|(set, out)| {
            let debs = set
                .debs
                .iter()
                .filter_map(|d| by_hash.get(d.sha256.as_str()).map(|p| (d.clone(), (*p).clone())))
                .collect();
            (set, out, debs)
        })
        .collect();
    let spinner = printer.spinner(&format!(
        "Unpacking into {}",
        outputs.iter().map(|o| o.display().to_string()).collect::<Vec<_>>().join(", ")
    ));
    let results: Vec<Result<(usize, Duration), CliError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(_, out, debs)| {
                scope.spawn(move || {
                    let t = Instant::now();
                    unpack_into(out, debs, args.force).map(|paths| (paths, t.elapsed()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(CliError::user("an unpacking thread panicked"))))
            .collect()
    });
    spinner.finish_and_clear();
    let unpack_time = unpack_started.elapsed();
    for ((set, out, debs), result) in jobs.iter().zip(results) {
        let (paths, took) = result?;
        printer.status(format!(
            "Wrote {} for {}: {} packages, {} paths, in {:.2}s",
            out.display(),
            set.arch,
            debs.len(),
            paths,
            took.as_secs_f64()
        ));
    }
    printer.status(format!(
        "Done in {:.2}s (indexes {:.2}s, resolution {:.2}s, fetch {:.2}s, unpack {:.2}s)",
        started.elapsed().as_secs_f64(),
        resolved.index_time.as_secs_f64(),
        resolved.resolve_time.as_secs_f64(),
        fetch_time.as_secs_f64(),
        unpack_time.as_secs_f64()
    ));
    Ok(ExitCode::SUCCESS)
}

/// Where a suite comes from: flags of `debian ...`, or the manifest's `[debian]` for `lock`.
pub(crate) struct SourceArgs<'a> {
    pub suite: &'a str,
    pub mirror: Option<&'a str>,
    pub keyring: Option<&'a std::path::Path>,
    pub offline: bool,
}

impl<'a> SourceArgs<'a> {
    fn of(args: &'a DebianSetArgs) -> SourceArgs<'a> {
        SourceArgs {
            suite: &args.suite,
            mirror: args.mirror.as_deref(),
            keyring: args.keyring.as_deref(),
            offline: args.offline,
        }
    }
}

fn set_options(args: &DebianSetArgs) -> ResolveOptions {
    ResolveOptions { essential: !args.no_essential, recommends: args.recommends, ..Default::default() }
}

/// The suite, the client and cache that read it, and the runtime they run on.
pub(crate) struct Session {
    pub source: Source,
    pub client: fetch::Client,
    pub cache: fetch::Cache,
    pub runtime: tokio::runtime::Runtime,
}

/// A package of a set and its verified `.deb` in the cache.
type Fetched = (LockedDeb, PathBuf);

/// The package set of one architecture.
pub(crate) struct ArchSet {
    pub arch: &'static str,
    pub debs: Vec<LockedDeb>,
}

/// Every architecture's set, with where the time went.
pub(crate) struct Resolved {
    pub sets: Vec<ArchSet>,
    index_time: Duration,
    resolve_time: Duration,
}

impl Session {
    pub fn open(args: &SourceArgs<'_>) -> Result<Session, CliError> {
        let source = source(args)?;
        let client = fetch::Client::new(fetch::ClientOptions { offline: args.offline, ..Default::default() })
            .map_err(|e| CliError::from_error("cannot set up the HTTP client", e))?;
        let cache = fetch::Cache::from_env().map_err(|e| CliError::from_error("cannot open the cache", e))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::from_error("cannot start the async runtime", e))?;
        Ok(Session { source, client, cache, runtime })
    }

    /// Fetches `debs` (each file once, hash-checked, into the cache) with a spinner and a
    /// summary line; returns their cache paths in order and the time it took.
    pub fn fetch_debs(
        &self,
        debs: &[LockedDeb],
        printer: &Printer,
    ) -> Result<(Vec<PathBuf>, Duration), CliError> {
        let missing: Vec<&LockedDeb> =
            debs.iter().filter(|d| !self.cache.blob_path(&d.sha256).is_ok_and(|p| p.is_file())).collect();
        let download: u64 = missing.iter().map(|d| d.size).sum();
        let started = Instant::now();
        let spinner = printer.spinner(&format!(
            "Fetching {} of {} .debs ({})",
            missing.len(),
            debs.len(),
            megabytes(download)
        ));
        let paths = self.runtime.block_on(debian::fetch_debs(&self.client, &self.cache, &self.source, debs));
        spinner.finish_and_clear();
        let paths = paths.map_err(debian_error)?;
        let took = started.elapsed();
        printer.status(format!(
            "Fetched {} .debs in {:.2}s ({} downloaded, {} .debs from the cache)",
            debs.len(),
            took.as_secs_f64(),
            megabytes(download),
            debs.len() - missing.len()
        ));
        Ok((paths, took))
    }

    /// Reads the signed index once and each architecture's `Packages` (concurrently), then
    /// resolves every architecture (in parallel threads). Prints one summary line per
    /// architecture.
    pub fn resolve(
        &self,
        packages: &[String],
        opts: &ResolveOptions,
        arches: &[&'static str],
        printer: &Printer,
    ) -> Result<Resolved, CliError> {
        let started = Instant::now();
        let spinner = printer.spinner(&format!("Reading {} for {}", self.source.suite, arches.join(", ")));
        let indexes = self.runtime.block_on(async {
            let release = debian::fetch_release(&self.client, &self.cache, &self.source).await?;
            let reads = arches.iter().map(|arch| {
                debian::fetch_index_with(&self.client, &self.cache, &self.source, &release, arch)
            });
            futures::future::try_join_all(reads).await
        });
        spinner.finish_and_clear();
        let indexes = indexes.map_err(debian_error)?;
        let index_time = started.elapsed();

        let started = Instant::now();
        let results: Vec<Result<Vec<LockedDeb>, debian::Error>> = std::thread::scope(|scope| {
            let handles: Vec<_> =
                indexes.iter().map(|index| scope.spawn(|| debian::resolve(index, packages, opts))).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(debian::Error::Io {
                            action: "resolve (the worker thread panicked) for",
                            path: PathBuf::from(&self.source.suite),
                            source: std::io::Error::other("panic"),
                        })
                    })
                })
                .collect()
        });
        let resolve_time = started.elapsed();
        let mut sets = Vec::with_capacity(arches.len());
        for (arch, result) in arches.iter().zip(results) {
            let debs = result.map_err(debian_error)?;
            printer.status(format!(
                "Resolved {} packages for {arch} from {} ({} of .debs)",
                debs.len(),
                self.source.suite,
                megabytes(debs.iter().map(|d| d.size).sum())
            ));
            sets.push(ArchSet { arch, debs });
        }
        Ok(Resolved { sets, index_time, resolve_time })
    }
}

/// The suite's source: `--mirror` (with `--keyring`, else Debian's archive keyring), else the
/// entry of this host's apt sources for the suite (its `Signed-By` unless `--keyring`).
fn source(args: &SourceArgs<'_>) -> Result<Source, CliError> {
    let mut source = match args.mirror {
        Some(mirror) => {
            let url = url::Url::parse(mirror).map_err(|e| {
                CliError::user(format!("--mirror `{mirror}` is not a URL: {e}"))
                    .with_hint("give the archive root, the URL of the directory holding dists/ and pool/")
            })?;
            Source::new(url, args.suite, debian::source::DEFAULT_KEYRING)
        }
        None => Source::from_host_apt(Some(args.suite)).map_err(debian_error)?,
    };
    if let Some(keyring) = args.keyring {
        // gpgv looks a relative keyring name up in its home directory, not here.
        source.keyring = std::path::absolute(keyring).map_err(|e| {
            CliError::from_error(format!("cannot resolve --keyring {}", keyring.display()), e)
        })?;
    }
    Ok(source)
}

/// `--arch` values as Debian names, each once, in the order given; the host's by default.
fn parse_arches(given: &[String]) -> Result<Vec<&'static str>, CliError> {
    if given.is_empty() {
        let host = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => {
                return Err(CliError::user(format!(
                    "this host's architecture `{other}` is not one we resolve for"
                ))
                .with_hint("pass --arch amd64 or --arch arm64"))
            }
        };
        return Ok(vec![host]);
    }
    let mut out: Vec<&'static str> = Vec::new();
    for text in given {
        let name = text.strip_prefix("linux/").unwrap_or(text);
        let name = if name == "arm64/v8" { "arm64" } else { name };
        let arch = ARCHES.iter().copied().find(|a| *a == name).ok_or_else(|| {
            CliError::user(format!("unsupported architecture `{text}`"))
                .with_hint("use amd64 or arm64 (or linux/amd64, linux/arm64)")
        })?;
        if !out.contains(&arch) {
            out.push(arch);
        }
    }
    Ok(out)
}

/// One output directory per architecture: `--out` itself, or with several architectures the
/// `{arch}` template filled in.
fn output_dirs(template: &str, arches: &[&str]) -> Result<Vec<PathBuf>, CliError> {
    if arches.len() > 1 && !template.contains("{arch}") {
        return Err(CliError::user(format!("{} architectures but one --out `{template}`", arches.len()))
            .with_hint("use a template such as --out 'rootfs-{arch}', or one --arch"));
    }
    let dirs: Vec<PathBuf> = arches.iter().map(|a| PathBuf::from(template.replace("{arch}", a))).collect();
    for dir in &dirs {
        if dir.file_name().is_none() {
            return Err(CliError::user(format!(
                "--out `{}` does not name a directory to create",
                dir.display()
            ))
            .with_hint("name a new or empty directory, such as --out rootfs"));
        }
    }
    Ok(dirs)
}

/// Whether `out` may be written: absent, an empty directory, or (with `--force`) any
/// directory.
fn check_output(out: &Path, force: bool) -> Result<(), CliError> {
    match std::fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CliError::from_error(format!("cannot read {}", out.display()), e)),
        Ok(m) if !m.is_dir() => {
            Err(CliError::user(format!("{} exists and is not a directory", out.display()))
                .with_hint("choose another --out"))
        }
        Ok(_) if force || is_empty_dir(out)? => Ok(()),
        Ok(_) => Err(CliError::user(format!("{} is not empty", out.display()))
            .with_hint("pass --force to replace it, or choose another --out")),
    }
}

fn is_empty_dir(dir: &Path) -> Result<bool, CliError> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| CliError::from_error(format!("cannot read the directory {}", dir.display()), e))?;
    Ok(entries.next().is_none())
}

/// Unpacks into a fresh hidden directory beside `out`, then renames it into place, so a
/// failed or interrupted unpack never leaves a partial tree at `out`. An existing `out` (empty,
/// or any with `force`) is moved aside first and deleted last. Returns how many paths the
/// packages shipped.
fn unpack_into(out: &Path, debs: &[Fetched], force: bool) -> Result<usize, CliError> {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let io = |what: String| move |e: std::io::Error| CliError::from_error(what, e);
    fs_err::create_dir_all(&parent).map_err(io(format!("cannot create {}", parent.display())))?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempdir_in(&parent)
        .map_err(io(format!("cannot create a temporary directory in {}", parent.display())))?;
    {
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(staging.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(io(format!("cannot set the mode of {}", staging.path().display())))?;
    }
    // On error `staging` is dropped, which removes the partial tree.
    let installed = debian::unpack(debs, staging.path()).map_err(debian_error)?;

    check_output(out, force)?;
    let aside = match std::fs::symlink_metadata(out) {
        Ok(_) if is_empty_dir(out)? => {
            fs_err::remove_dir(out).map_err(io(format!("cannot replace {}", out.display())))?;
            None
        }
        Ok(_) => {
            let holder = tempfile::Builder::new()
                .prefix(&format!(".{name}.old-"))
                .tempdir_in(&parent)
                .map_err(io(format!("cannot create a temporary directory in {}", parent.display())))?;
            let old = holder.path().join("tree");
            fs_err::rename(out, &old).map_err(io(format!("cannot move {} aside", out.display())))?;
            Some((holder, old))
        }
        Err(_) => None,
    };
    let staged = staging.keep();
    if let Err(e) = fs_err::rename(&staged, out) {
        if let Some((_, old)) = &aside {
            let _ = std::fs::rename(old, out);
        }
        let _ = std::fs::remove_dir_all(&staged);
        return Err(CliError::from_error(format!("cannot move the new tree to {}", out.display()), e));
    }
    if let Some((holder, _)) = aside {
        let path = holder.path().to_path_buf();
        if let Err(e) = holder.close() {
            tracing::warn!("cannot remove the replaced tree {}: {e}", path.display());
        }
    }
    Ok(installed.iter().map(|p| p.files.len()).sum())
}

/// A `debian` error as the CLI reports it: exit 3 when the network failed, else 2 (a bad
/// signature or a missing key is the user's to fix: retrying does not help).
fn debian_error(err: debian::Error) -> CliError {
    CliError::from_error(err.to_string(), err)
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
