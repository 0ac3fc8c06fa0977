//! Debian suites as the pipeline uses them: where a suite comes from, one session (client,
//! cache, runtime) that reads, resolves and fetches it, and unpacking sets into trees.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use debian::{DebSource, LockedDeb, ResolveOptions};

use crate::{Error, Reporter};

/// Where a suite comes from: flags of `debian ...`, or the manifest's `[debian]` for `lock`.
pub struct SourceArgs<'a> {
    pub suite: &'a str,
    pub mirror: Option<&'a str>,
    pub keyring: Option<&'a std::path::Path>,
    pub offline: bool,
}

/// The suite, the client and cache that read it, and the runtime they run on.
pub struct Session {
    pub source: DebSource,
    pub client: fetch::Client,
    pub cache: fetch::Cache,
    pub runtime: &'static tokio::runtime::Runtime,
}

/// A package of a set and its verified `.deb` in the cache.
pub type Fetched = (LockedDeb, PathBuf);

/// The package set of one architecture.
pub struct ArchSet {
    pub arch: &'static str,
    pub debs: Vec<LockedDeb>,
    /// `relations[i]`: what `debs[i]` needs and provides within the set (for the lock).
    pub relations: Vec<debian::SetRelations>,
}

/// Every architecture's set, with where the time went.
pub struct Resolved {
    pub sets: Vec<ArchSet>,
    pub index_time: Duration,
    pub resolve_time: Duration,
}

impl Session {
    pub fn open(args: &SourceArgs<'_>) -> Result<Session, Error> {
        let source = source(args)?;
        let client =
            crate::env::client(fetch::ClientOptions { offline: args.offline, ..Default::default() })?;
        let cache = crate::env::cache()?;
        let runtime = crate::env::runtime()?;
        Ok(Session { source, client, cache, runtime })
    }

    /// Fetches `debs` (each file once, hash-checked, into the cache) with a spinner and a
    /// summary line; returns their cache paths in order and the time it took.
    pub fn fetch_debs(
        &self,
        debs: &[LockedDeb],
        printer: &dyn Reporter,
    ) -> Result<(Vec<PathBuf>, Duration), Error> {
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
        printer: &dyn Reporter,
    ) -> Result<Resolved, Error> {
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
        type Set = (Vec<LockedDeb>, Vec<debian::SetRelations>);
        let results: Vec<Result<Set, Error>> = std::thread::scope(|scope| {
            let handles: Vec<_> = indexes
                .iter()
                .map(|index| {
                    scope.spawn(|| -> Result<Set, Error> {
                        let debs = debian::resolve(index, packages, opts).map_err(debian_error)?;
                        let relations =
                            debian::set_relations(index, &debs, opts.recommends).map_err(debian_error)?;
                        Ok((debs, relations))
                    })
                })
                .collect();
            let panicked =
                || Error::internal(format!("a resolver thread for {} panicked", self.source.suite));
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(panicked()))).collect()
        });
        let resolve_time = started.elapsed();
        let mut sets = Vec::with_capacity(arches.len());
        for (arch, result) in arches.iter().zip(results) {
            let (debs, relations) = result?;
            printer.status(format!(
                "Resolved {} packages for {arch} from {} ({} of .debs)",
                debs.len(),
                self.source.suite,
                megabytes(debs.iter().map(|d| d.size).sum())
            ));
            sets.push(ArchSet { arch, debs, relations });
        }
        Ok(Resolved { sets, index_time, resolve_time })
    }
}

/// The suite's source: `--mirror` (with `--keyring`, else Debian's archive keyring), else the
/// entry of this host's apt sources for the suite (its `Signed-By` unless `--keyring`).
fn source(args: &SourceArgs<'_>) -> Result<DebSource, Error> {
    let mut source = match args.mirror {
        Some(mirror) => {
            let url = url::Url::parse(mirror).map_err(|e| {
                Error::user(format!("--mirror `{mirror}` is not a URL: {e}"))
                    .with_hint("give the archive root, the URL of the directory holding dists/ and pool/")
            })?;
            DebSource::new(url, args.suite, debian::source::DEFAULT_KEYRING)
        }
        None => DebSource::from_host_apt(Some(args.suite)).map_err(debian_error)?,
    };
    if let Some(keyring) = args.keyring {
        // gpgv looks a relative keyring name up in its home directory, not here.
        source.keyring = std::path::absolute(keyring)
            .map_err(|e| Error::from_error(format!("cannot resolve --keyring {}", keyring.display()), e))?;
    }
    Ok(source)
}

/// Unpacks each architecture's set of `resolved` into its directory of `outputs`, in
/// parallel, from the fetched `.deb`s (`paths[i]` is the file of `unique[i]`); one status line
/// per architecture.
pub fn unpack_sets(
    resolved: &Resolved,
    paths: &[PathBuf],
    unique: &[LockedDeb],
    outputs: &[PathBuf],
    force: bool,
    printer: &dyn Reporter,
) -> Result<(), Error> {
    let by_hash: HashMap<&str, &PathBuf> = unique.iter().map(|d| d.sha256.as_str()).zip(paths).collect();
    // Each architecture goes to its own directory: unpack them in parallel (decompressing
    // data.tar.xz is most of the time).
    let jobs: Vec<(&ArchSet, &PathBuf, Vec<Fetched>)> = resolved
        .sets
        .iter()
        .zip(outputs)
        .map(|(set, out)| {
            let debs = set
                .debs
                .iter()
                .filter_map(|d| by_hash.get(d.sha256.as_str()).map(|p| (d.clone(), (*p).clone())))
                .collect();
            (set, out, debs)
        })
        .collect();
    for (_, out, _) in &jobs {
        crate::env::remove_stale_staging(out, printer);
    }
    let spinner = printer.spinner(&format!(
        "Unpacking into {}",
        outputs.iter().map(|o| o.display().to_string()).collect::<Vec<_>>().join(", ")
    ));
    let results: Vec<Result<(usize, Duration), Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(_, out, debs)| {
                scope.spawn(move || {
                    let t = Instant::now();
                    unpack_into(out, debs, force).map(|paths| (paths, t.elapsed()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(Error::internal("an unpacking thread panicked"))))
            .collect()
    });
    spinner.finish_and_clear();
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
    Ok(())
}

/// Whether `out` may be written: absent, an empty directory, or (with `--force`) any
/// directory.
pub fn check_output(out: &Path, force: bool) -> Result<(), Error> {
    match std::fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::from_error(format!("cannot read {}", out.display()), e)),
        Ok(m) if !m.is_dir() => Err(Error::user(format!("{} exists and is not a directory", out.display()))
            .with_hint("choose another --out")),
        Ok(_) if force || is_empty_dir(out)? => Ok(()),
        Ok(_) => Err(Error::user(format!("{} is not empty", out.display()))
            .with_hint("pass --force to replace it, or choose another --out")),
    }
}

fn is_empty_dir(dir: &Path) -> Result<bool, Error> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| Error::from_error(format!("cannot read the directory {}", dir.display()), e))?;
    Ok(entries.next().is_none())
}

/// Unpacks into a fresh hidden directory beside `out`, then renames it into place, so a
/// failed or interrupted unpack never leaves a partial tree at `out`. An existing `out` (empty,
/// or any with `force`) is moved aside first and deleted last. Returns how many paths the
/// packages shipped.
fn unpack_into(out: &Path, debs: &[Fetched], force: bool) -> Result<usize, Error> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let io = |what: String| move |e: std::io::Error| Error::from_error(what, e);
    fs_err::create_dir_all(&parent).map_err(io(format!("cannot create {}", parent.display())))?;
    let staging = oci::StagingDir::beside(out, "tmp").map_err(|e| {
        Error::from_error(format!("cannot create a temporary directory in {}", parent.display()), e)
    })?;
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
            let holder = oci::StagingDir::beside(out, "old").map_err(|e| {
                Error::from_error(format!("cannot create a temporary directory in {}", parent.display()), e)
            })?;
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
        return Err(Error::from_error(format!("cannot move the new tree to {}", out.display()), e));
    }
    if let Some((holder, _)) = aside {
        // Dropping it removes the replaced tree.
        drop(holder);
    }
    Ok(installed.packages.iter().map(|p| p.files.len()).sum())
}

/// The manifest's `[debian] ca_certificates`, read and checked: each a PEM file with one
/// certificate, named as it is installed (`certs/my-ca.pem` is `my-ca.crt`). Errors name the
/// file as the manifest does, with what to do.
pub fn local_certificates(manifest: &lockfile::Manifest) -> Result<Vec<debian::LocalCertificate>, Error> {
    let mut out = Vec::new();
    for path in manifest.debian.iter().flat_map(|d| &d.ca_certificates) {
        let pem = lockfile::read_ca_certificate(path)?;
        let name = lockfile::Debian::ca_certificate_name(path);
        let cert =
            debian::LocalCertificate::new(&name, pem, &manifest.input_name(path)).map_err(debian_error)?;
        out.push(cert);
    }
    Ok(out)
}

/// A `debian` error as the CLI reports it: exit 3 when the network failed, else 2 (a bad
/// signature or a missing key is the user's to fix: retrying does not help).
pub fn debian_error(err: debian::Error) -> Error {
    Error::from_error(err.to_string(), err)
}

pub(crate) fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
