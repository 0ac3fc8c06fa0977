//! Debian suites as the pipeline uses them: where a suite comes from, one session (client,
//! cache, runtime) that reads, resolves and fetches it, and unpacking sets into trees.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use debian::{DebSource, LockedDeb, ResolveOptions};
use sha2::Digest as _;

use crate::{Error, Reporter};

/// Where a suite comes from: flags of `debian ...` (one suite, alone).
pub struct SourceArgs<'a> {
    pub suite: &'a str,
    pub mirror: Option<&'a str>,
    pub keyring: Option<&'a std::path::Path>,
    pub offline: bool,
}

/// The sources, the client and cache that read them, and the runtime they run on.
pub struct Session {
    /// In apt's order: the suite, its `-updates` and `-security`, then the manifest's
    /// `[[debian.source]]`s. A package offered by several is fetched from the first.
    pub sources: Vec<DebSource>,
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
    /// A session of one suite (`debian resolve|rootfs`).
    pub fn open(args: &SourceArgs<'_>) -> Result<Session, Error> {
        Session::with_sources(vec![source(args)?], args.offline)
    }

    /// A session of the manifest's `[debian]` sources ([`manifest_sources`]).
    pub fn for_manifest(manifest: &lockfile::Manifest, offline: bool) -> Result<Session, Error> {
        Session::with_sources(manifest_sources(manifest)?, offline)
    }

    fn with_sources(sources: Vec<DebSource>, offline: bool) -> Result<Session, Error> {
        let client = crate::env::client(fetch::ClientOptions { offline, ..Default::default() })?;
        let cache = crate::env::cache()?;
        let runtime = crate::env::runtime()?;
        Ok(Session { sources, client, cache, runtime })
    }

    /// The suites read, for messages: `bullseye, bullseye-updates, bullseye-security`.
    pub fn suites(&self) -> String {
        self.sources.iter().map(|s| s.suite.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// Fetches `debs` (each file once, hash-checked, into the cache, each from the source of
    /// its suite) with a spinner and a summary line; returns their cache paths in order and
    /// the time it took.
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
        let paths = self.runtime.block_on(debian::fetch_debs(&self.client, &self.cache, &self.sources, debs));
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

    /// Reads every source's signed `Release` once, then each architecture's `Packages` of
    /// every source (concurrently), into one index per architecture, in `arches`' order.
    pub fn read_indexes(
        &self,
        arches: &[&'static str],
        printer: &dyn Reporter,
    ) -> Result<Vec<debian::Index>, Error> {
        let spinner = printer.spinner(&format!("Reading {} for {}", self.suites(), arches.join(", ")));
        let indexes = self.runtime.block_on(async {
            let releases = futures::future::try_join_all(self.sources.iter().map(|source| async move {
                debian::fetch_release(&self.client, &self.cache, source)
                    .await
                    .map_err(|e| missing_suite(e, source))
            }))
            .await?;
            let reads = arches.iter().map(|arch| {
                let releases = &releases;
                async move {
                    let files = self.sources.iter().zip(releases).enumerate().map(
                        |(i, (source, release))| async move {
                            // A suite beside the release's own that has no such architecture (an
                            // amd64-only vendor repository) offers nothing there, as apt has it.
                            let lacks = !release.architectures.is_empty()
                                && !release.architectures.iter().any(|a| a == arch);
                            let files = match i > 0 && lacks {
                                true => {
                                    tracing::debug!("{} has no {arch} packages", source.suite);
                                    Vec::new()
                                }
                                false => {
                                    debian::fetch_packages(&self.client, &self.cache, source, release, arch)
                                        .await?
                                }
                            };
                            let origin = debian::Origin {
                                suite: source.suite.clone(),
                                not_automatic: release.not_automatic,
                            };
                            Ok::<_, debian::Error>((origin, files))
                        },
                    );
                    let parts = futures::future::try_join_all(files).await.map_err(debian_error)?;
                    debian::read_index_blocking(arch, parts).await.map_err(debian_error)
                }
            });
            futures::future::try_join_all(reads).await
        });
        spinner.finish_and_clear();
        indexes
    }

    /// Reads the indexes ([`Session::read_indexes`]), then resolves every architecture (in
    /// parallel threads) with `opts`. Prints one summary line per architecture.
    pub fn resolve(
        &self,
        packages: &[String],
        opts: &ResolveOptions,
        arches: &[&'static str],
        printer: &dyn Reporter,
    ) -> Result<Resolved, Error> {
        let started = Instant::now();
        let indexes = self.read_indexes(arches, printer)?;
        let index_time = started.elapsed();
        let opts: Vec<ResolveOptions> = indexes.iter().map(|_| opts.clone()).collect();
        let (sets, resolve_time) = self.resolve_indexes(&indexes, packages, &opts, arches, printer)?;
        Ok(Resolved { sets, index_time, resolve_time })
    }

    /// Resolves `packages` in each of `indexes` (of `arches`, in order) with its own options,
    /// in parallel threads.
    pub fn resolve_indexes(
        &self,
        indexes: &[debian::Index],
        packages: &[String],
        opts: &[ResolveOptions],
        arches: &[&'static str],
        printer: &dyn Reporter,
    ) -> Result<(Vec<ArchSet>, Duration), Error> {
        let started = Instant::now();
        type Set = (Vec<LockedDeb>, Vec<debian::SetRelations>);
        let results: Vec<Result<Set, Error>> = std::thread::scope(|scope| {
            let handles: Vec<_> = indexes
                .iter()
                .zip(opts)
                .map(|(index, opts)| {
                    scope.spawn(move || -> Result<Set, Error> {
                        let debs = debian::resolve(index, packages, opts).map_err(debian_error)?;
                        let relations =
                            debian::set_relations(index, &debs, opts.recommends).map_err(debian_error)?;
                        Ok((debs, relations))
                    })
                })
                .collect();
            let panicked = || Error::internal(format!("a resolver thread for {} panicked", self.suites()));
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(panicked()))).collect()
        });
        let resolve_time = started.elapsed();
        let mut sets = Vec::with_capacity(arches.len());
        for (arch, result) in arches.iter().zip(results) {
            let (debs, relations) = result?;
            let moved = debs
                .iter()
                .filter(|d| !d.suite.is_empty() && Some(&d.suite) != self.sources.first().map(|s| &s.suite))
                .count();
            let from = match moved {
                0 => self.sources.first().map_or(String::new(), |s| s.suite.clone()),
                n => format!(
                    "{} ({n} from its other suites)",
                    self.sources.first().map_or("", |s| s.suite.as_str())
                ),
            };
            printer.status(format!(
                "Resolved {} packages for {arch} from {from} ({} of .debs)",
                debs.len(),
                megabytes(debs.iter().map(|d| d.size).sum())
            ));
            sets.push(ArchSet { arch, debs, relations });
        }
        Ok((sets, resolve_time))
    }
}

/// A suite the archive does not have, with what to do: for the `-updates` and `-security`
/// suites the manifest implies, how to point at them or leave them out.
fn missing_suite(err: debian::Error, source: &DebSource) -> Error {
    let missing =
        matches!(&err, debian::Error::Release { reason, .. } if reason == debian::remote::NO_RELEASE);
    let hint = match missing {
        true if source.suite.ends_with("-security") => Some(format!(
            "{} has no suite `{}`: name the security archive with [debian] security_mirror, or set \
             security = false if the release has no security suite",
            fetch::redact(&source.mirror),
            source.suite
        )),
        true if source.suite.ends_with("-updates") => Some(format!(
            "{} has no suite `{}`: set [debian] updates = false if the release has none",
            fetch::redact(&source.mirror),
            source.suite
        )),
        _ => None,
    };
    let err = debian_error(err);
    match hint {
        Some(hint) => err.with_hint(hint),
        None => err,
    }
}

/// The suite's source: `--mirror` (with `--keyring`, else Debian's archive keyring), else the
/// entry of this host's apt sources for the suite (its `Signed-By` unless `--keyring`).
fn source(args: &SourceArgs<'_>) -> Result<DebSource, Error> {
    let mut source = match args.mirror {
        Some(mirror) => {
            DebSource::new(mirror_url(mirror, "--mirror")?, args.suite, debian::source::DEFAULT_KEYRING)
        }
        None => DebSource::from_host_apt(Some(args.suite)).map_err(debian_error)?,
    };
    if let Some(keyring) = args.keyring {
        source.keyring = absolute_keyring(keyring)?;
    }
    Ok(source)
}

fn mirror_url(mirror: &str, what: &str) -> Result<url::Url, Error> {
    url::Url::parse(mirror).map_err(|e| {
        Error::user(format!("{what} `{}` is not a URL: {e}", fetch::strip_credentials(mirror)))
            .with_hint("give the archive root, the URL of the directory holding dists/ and pool/")
    })
}

fn absolute_keyring(keyring: &Path) -> Result<PathBuf, Error> {
    // gpgv looks a relative keyring name up in its home directory, not here.
    std::path::absolute(keyring)
        .map_err(|e| Error::from_error(format!("cannot resolve the keyring {}", keyring.display()), e))
}

/// The apt sources of a manifest's `[debian]`, in apt's order, as Debian's own images
/// configure them: the suite and `SUITE-updates` from `mirror` (else the host's apt source
/// of the suite), `SUITE-security` from `security_mirror` (else `mirror`, else the host's
/// apt source of a `*-security` suite), then each `[[debian.source]]` suite. No suite
/// appears twice: the lock names each `.deb`'s suite.
pub fn manifest_sources(manifest: &lockfile::Manifest) -> Result<Vec<DebSource>, Error> {
    let Some(debian) = &manifest.debian else { return Ok(Vec::new()) };
    let suite = debian.suite.as_str();
    let keyring = debian.keyring.as_deref().map(absolute_keyring).transpose()?;
    let from = |mirror: Option<&str>, suite: &str, what: &str| -> Result<DebSource, Error> {
        let mut source = match mirror {
            Some(url) => DebSource::new(mirror_url(url, what)?, suite, debian::source::DEFAULT_KEYRING),
            None => DebSource::from_host_apt(Some(suite)).map_err(debian_error)?,
        };
        if let Some(keyring) = &keyring {
            source.keyring = keyring.clone();
        }
        Ok(source)
    };
    let main = from(debian.mirror.as_deref(), suite, "[debian] mirror")?;
    let mut sources = vec![main.clone()];
    if !lockfile::ROLLING_SUITES.contains(&suite) {
        if debian.updates {
            sources.push(DebSource { suite: format!("{suite}-updates"), ..main.clone() });
        }
        if debian.security {
            let mirror = debian.security_mirror.as_deref().or(debian.mirror.as_deref());
            let mut security = from(mirror, &format!("{suite}-security"), "[debian] security_mirror")
                .map_err(|e| {
                    e.with_hint(
                        "name the security archive with [debian] security_mirror (or mirror), or set \
                         security = false in [debian] to lock without security updates",
                    )
                })?;
            security.components = main.components.clone();
            sources.push(security);
        }
    }
    for extra in &debian.source {
        let url = mirror_url(&extra.url, "[[debian.source]] url")?;
        for suite in &extra.suites {
            let mut source = DebSource::new(url.clone(), suite, debian::source::DEFAULT_KEYRING);
            source.components = extra.components.clone();
            if let Some(keyring) =
                extra.keyring.as_deref().map(absolute_keyring).transpose()?.or(keyring.clone())
            {
                source.keyring = keyring;
            }
            sources.push(source);
        }
    }
    for (i, source) in sources.iter().enumerate() {
        if sources[..i].iter().any(|s| s.suite == source.suite) {
            return Err(Error::user(format!(
                "{}: the suite `{}` is read from two sources",
                manifest.path().display(),
                source.suite
            ))
            .with_hint("the lock names each package's suite: list each suite once"));
        }
    }
    Ok(sources)
}

/// What an image gets so apt works in it and in images built `FROM` it: the sources it was
/// locked from as `/etc/apt/sources.list.d/debian.sources` (deb822, no credentials), and
/// the keyrings they are signed with that no Debian package ships (Debian's archive
/// keyring is named where `debian-archive-keyring` installs it).
#[derive(Debug, Clone, Default)]
pub struct ImageApt {
    /// Relative path and content of each file.
    pub files: Vec<(String, Vec<u8>)>,
    /// What a Debian layer's key says of them: each file's path and sha256.
    pub inputs: String,
}

/// Where the sources file goes.
pub const IMAGE_SOURCES: &str = "etc/apt/sources.list.d/debian.sources";

impl ImageApt {
    /// The files for `sources`, reading the keyrings that go into the image.
    pub fn for_sources(sources: &[DebSource]) -> Result<ImageApt, Error> {
        if sources.is_empty() {
            return Ok(ImageApt::default());
        }
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut keyrings: Vec<(&Path, String)> = Vec::new();
        // One stanza per archive, components and keyring, its suites in the sources' order.
        let mut stanzas: Vec<(String, &[String], String, Vec<&str>)> = Vec::new();
        for source in sources {
            let signed_by = if source.keyring == Path::new(debian::source::DEFAULT_KEYRING) {
                debian::source::DEFAULT_KEYRING.to_string()
            } else if let Some((_, at)) = keyrings.iter().find(|(k, _)| *k == source.keyring) {
                at.clone()
            } else {
                let bytes = read_keyring(&source.keyring)?;
                let name =
                    source.keyring.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let mut at = format!("etc/apt/keyrings/{name}");
                if files.iter().any(|(p, _)| *p == at) {
                    at = format!("etc/apt/keyrings/{}-{name}", keyrings.len());
                }
                files.push((at.clone(), bytes));
                keyrings.push((&source.keyring, format!("/{at}")));
                format!("/{at}")
            };
            let url = fetch::without_credentials(&source.mirror).to_string();
            match stanzas
                .iter_mut()
                .find(|(u, c, k, _)| *u == url && *c == source.components.as_slice() && *k == signed_by)
            {
                Some((_, _, _, suites)) => suites.push(&source.suite),
                None => stanzas.push((url, &source.components, signed_by, vec![&source.suite])),
            }
        }
        let mut text = String::from("# The sources this image was locked from (marqo-base).\n");
        for (url, components, signed_by, suites) in &stanzas {
            text.push_str(&format!(
                "\nTypes: deb\nURIs: {url}\nSuites: {}\nComponents: {}\nSigned-By: {signed_by}\n",
                suites.join(" "),
                components.join(" ")
            ));
        }
        files.insert(0, (IMAGE_SOURCES.to_string(), text.into_bytes()));
        let inputs = files
            .iter()
            .map(|(path, bytes)| format!("apt {path} {}\n", hex::encode(sha2::Sha256::digest(bytes))))
            .collect();
        Ok(ImageApt { files, inputs })
    }
}

/// A keyring to copy into the image: a file, bounded.
fn read_keyring(path: &Path) -> Result<Vec<u8>, Error> {
    const MAX_KEYRING: u64 = bounded::MAX_KEYRING;
    let meta = fs_err::metadata(path)
        .map_err(|e| Error::from_error(format!("cannot read the keyring {}", path.display()), e))?;
    if !meta.is_file() || meta.len() > MAX_KEYRING {
        return Err(Error::user(format!(
            "the keyring {} is not a file of at most {} MB, which the image's apt sources can name",
            path.display(),
            MAX_KEYRING >> 20
        ))
        .with_hint("give the keyring as one .gpg or .asc file"));
    }
    bounded::read_file(path, MAX_KEYRING, "a keyring")
        .map_err(|e| Error::from_error(format!("cannot read the keyring {}", path.display()), e))
}

/// The version apt would upgrade a locked package to, when the index has a newer one: the
/// highest of its name and architecture that apt takes without being asked, or from the
/// suite the lock took it from (a `NotAutomatic` suite the manifest asked for), or from
/// `NotAutomatic` suites when they alone have the package.
pub fn newer_candidate<'a>(
    index: &'a debian::Index,
    locked: &lockfile::LockedDebian,
) -> Option<debian::Package<'a>> {
    let manual_only = index.only_manual(&locked.name);
    let best = index.by_name(&locked.name).find(|p| {
        p.architecture() == locked.arch
            && (p.automatic()
                || manual_only
                || locked.suite.as_deref().is_some_and(|s| p.origins().any(|o| o.suite == s)))
    })?;
    (debian::compare_versions(best.version(), &locked.version) == std::cmp::Ordering::Greater).then_some(best)
}

/// Unpacks each architecture's set of `resolved` into its directory of `outputs`, in
/// parallel, from the fetched `.deb`s (`paths[i]` is the file of `unique[i]`); one status line
/// per architecture. `requests` are the packages asked for (apt marks the rest that the
/// base set does not bring as auto-installed).
pub fn unpack_sets(
    resolved: &Resolved,
    requests: &[String],
    paths: &[PathBuf],
    unique: &[LockedDeb],
    outputs: &[PathBuf],
    force: bool,
    printer: &dyn Reporter,
) -> Result<(), Error> {
    let by_hash: HashMap<&str, &PathBuf> = unique.iter().map(|d| d.sha256.as_str()).zip(paths).collect();
    // `a | b` asks for whichever is chosen; `name=version` and `name/suite` for name.
    let manual: BTreeSet<String> = requests
        .iter()
        .flat_map(|r| r.split('|'))
        .map(|r| {
            let r = r.trim();
            r[..r.find([' ', '(', '=', '/', ':']).unwrap_or(r.len())].to_string()
        })
        .collect();
    let manual = &manual;
    // Shadow's tools date the accounts' last password change by SOURCE_DATE_EPOCH too.
    let mtime = crate::build::source_date_epoch()?;
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
                    unpack_into(out, debs, manual, mtime, force).map(|paths| (paths, t.elapsed()))
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
fn unpack_into(
    out: &Path,
    debs: &[Fetched],
    manual: &BTreeSet<String>,
    mtime: u64,
    force: bool,
) -> Result<usize, Error> {
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
    let options = debian::ConfigureOptions { manual: manual.clone(), mtime, ..Default::default() };
    let installed = debian::unpack_with(debs, staging.path(), &options).map_err(debian_error)?;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn source(url: &str, suite: &str, keyring: &Path) -> DebSource {
        DebSource::new(url::Url::parse(url).unwrap(), suite, keyring)
    }

    #[test]
    fn the_images_sources_group_archives_and_carry_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("a/repo.gpg");
        let other = dir.path().join("b/repo.gpg");
        for (path, bytes) in [(&private, "one"), (&other, "two")] {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        let debian = Path::new(debian::source::DEFAULT_KEYRING);
        let apt = ImageApt::for_sources(&[
            source("http://mirror.invalid/debian", "bookworm", debian),
            source("http://mirror.invalid/debian", "bookworm-updates", debian),
            source("http://mirror.invalid/debian-security", "bookworm-security", debian),
            source("https://alice:s3cret@apt.invalid/repo", "extra", &private),
            source("https://apt2.invalid/repo", "more", &other),
        ])
        .unwrap();
        let paths: Vec<&str> = apt.files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, [IMAGE_SOURCES, "etc/apt/keyrings/repo.gpg", "etc/apt/keyrings/1-repo.gpg"]);
        let text = String::from_utf8(apt.files[0].1.clone()).unwrap();
        assert!(!text.contains("alice") && !text.contains("s3cret"), "{text}");
        assert!(
            text.contains(
                "URIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\
                 Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
            ),
            "{text}"
        );
        assert!(text.contains("URIs: https://apt.invalid/repo\nSuites: extra\nComponents: main\nSigned-By: /etc/apt/keyrings/repo.gpg\n"), "{text}");
        assert!(text.contains("Signed-By: /etc/apt/keyrings/1-repo.gpg\n"), "{text}");
        assert_eq!(apt.files[2].1, b"two");
        assert_eq!(apt.inputs.lines().count(), 3);
        // A keyring that is a directory cannot be named in the image.
        let err = ImageApt::for_sources(&[source("http://m.invalid/", "x", dir.path())]).unwrap_err();
        assert!(err.hint().is_some(), "{err}");
    }

    #[test]
    fn a_locked_deb_comes_from_its_suites_source() {
        let debian = Path::new(debian::source::DEFAULT_KEYRING);
        let sources = [
            source("http://m.invalid/debian", "bookworm", debian),
            source("http://m.invalid/debian-security", "bookworm-security", debian),
        ];
        let deb = |suite: &str| LockedDeb { suite: suite.to_string(), ..Default::default() };
        assert_eq!(debian::source_of(&sources, &deb("")).unwrap().suite, "bookworm");
        assert_eq!(
            debian::source_of(&sources, &deb("bookworm-security")).unwrap().suite,
            "bookworm-security"
        );
        let err = debian::source_of(&sources, &deb("bullseye")).unwrap_err();
        assert!(err.hint().is_some_and(|h| h.contains("bookworm, bookworm-security")), "{err}");
    }
}
