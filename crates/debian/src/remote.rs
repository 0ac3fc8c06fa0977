//! Network and cache: the signed `InRelease`, the `Packages` files it vouches for, and the
//! `.deb`s a lock names. Everything goes through the one [`fetch::Client`] and lands in the
//! content-addressed [`fetch::Cache`] only after its hash matched.

use std::io::Read;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::compress::FileCompression;
use crate::release::{parse_release_date, verify_signature, Release};
use crate::resolve::LockedDeb;
use crate::{DebSource, Error, Index, Origin};

/// Cache namespace of the last good `InRelease` per URL, for `--offline` runs.
// v2: entries carry the cache's length-and-checksum line.
const RELEASE_NAMESPACE: &str = "debian/release-v2";

/// The largest `InRelease`, `Release` or `Release.gpg` we read. Debian's are a few hundred
/// KB (one line per index file of every architecture).
pub const MAX_RELEASE: fetch::BodyLimit = fetch::BodyLimit { what: "Release file", bytes: 32 * 1024 * 1024 };

/// The most text all `Packages` files of one architecture may decompress to, together.
/// Debian main's `Packages` is about 50-100 MB per architecture; a file that decompresses
/// past this is a decompression bomb, whatever its signed hash says.
pub const MAX_PACKAGES_TEXT: u64 = 1024 * 1024 * 1024;

/// The reason of the error for a suite the archive does not have.
pub const NO_RELEASE: &str = "neither InRelease nor Release exists";

/// Fetches and verifies the suite's `InRelease` (or `Release` + `Release.gpg`) with the
/// source's keyring, and checks that it is the suite asked for and still valid.
pub async fn fetch_release(
    client: &fetch::Client,
    cache: &fetch::Cache,
    source: &DebSource,
) -> Result<Release, Error> {
    let inrelease = source.dists_url("InRelease")?;
    let shown = fetch::redact(&inrelease);
    let (payload, url) = match get_signed(client, cache, &inrelease).await? {
        Some(bytes) => (verify_signature(&bytes, None, &source.keyring, &shown)?, shown),
        None => {
            let release_url = source.dists_url("Release")?;
            let shown = fetch::redact(&release_url);
            let data = get_signed(client, cache, &release_url).await?.ok_or_else(|| Error::Release {
                url: shown.clone(),
                reason: NO_RELEASE.to_string(),
                hint: format!(
                    "check the suite name `{}` and the mirror {}",
                    source.suite,
                    fetch::redact(&source.mirror)
                ),
            })?;
            let sig_url = source.dists_url("Release.gpg")?;
            let sig = get_signed(client, cache, &sig_url).await?.ok_or_else(|| Error::Release {
                url: shown.clone(),
                reason: "the Release file is not signed (no InRelease, no Release.gpg)".to_string(),
                hint: "use a signed archive; unsigned indexes are never used".to_string(),
            })?;
            (verify_signature(&sig, Some(&data), &source.keyring, &shown)?, shown)
        }
    };
    let text = String::from_utf8(payload).map_err(|_| Error::Release {
        url: url.clone(),
        reason: "the signed text is not UTF-8".to_string(),
        hint: "the mirror serves a broken file".to_string(),
    })?;
    let release = Release::parse(&text, &url)?;
    let names = [release.suite.as_deref(), release.codename.as_deref()];
    if !names.contains(&Some(source.suite.as_str())) && names.iter().any(Option::is_some) {
        return Err(Error::Release {
            url,
            reason: format!(
                "it is for suite {} (codename {}), not `{}`",
                release.suite.as_deref().unwrap_or("?"),
                release.codename.as_deref().unwrap_or("?"),
                source.suite
            ),
            hint: "the mirror redirected to another release; check the suite name".to_string(),
        });
    }
    if source.check_valid_until {
        if let Some(until) = release.valid_until.as_deref() {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
            match parse_release_date(until) {
                Some(t) if t < now => {
                    return Err(Error::Release {
                        url,
                        reason: format!("it expired at {until} (Valid-Until)"),
                        hint: "the mirror is stale or replaying an old index; for an archived snapshot \
                               turn off the Valid-Until check"
                            .to_string(),
                    })
                }
                Some(_) => {}
                None => tracing::warn!("{url}: cannot read Valid-Until `{until}`"),
            }
        }
    }
    Ok(release)
}

/// GETs a small signed file; `None` for 404. The last copy is kept for offline runs (it is
/// verified again when used, like a fresh one).
async fn get_signed(
    client: &fetch::Client,
    cache: &fetch::Cache,
    url: &url::Url,
) -> Result<Option<Vec<u8>>, Error> {
    let what = fetch::redact(url);
    match client.get_bounded(url, None, MAX_RELEASE).await {
        Ok(reply) if reply.is_missing() => Ok(None),
        Ok(reply) => {
            if let Err(e) = cache.write_entry(RELEASE_NAMESPACE, url.as_str(), &reply.body) {
                tracing::debug!("cannot cache {what}: {e}");
            }
            Ok(Some(reply.body.to_vec()))
        }
        Err(fetch::Error::Offline { .. }) => match cache.read_entry(RELEASE_NAMESPACE, url.as_str()) {
            Some(bytes) => Ok(Some(bytes)),
            None => Err(Error::Fetch { what, source: fetch::Error::Offline { url: fetch::redact(url) } }),
        },
        Err(source) => Err(Error::Fetch { what, source }),
    }
}

/// Fetches the verified `Release`, then the `Packages` files of `arch` (and of `all`, when
/// the archive keeps them apart) for every component, each checked against the sha256 the
/// `Release` lists, and parses them into an [`Index`].
pub async fn fetch_index(
    client: &fetch::Client,
    cache: &fetch::Cache,
    source: &DebSource,
    arch: &str,
) -> Result<Index, Error> {
    let release = fetch_release(client, cache, source).await?;
    fetch_index_with(client, cache, source, &release, arch).await
}

/// As [`fetch_index`], with the `Release` already fetched (to read several architectures
/// from one signature check).
pub async fn fetch_index_with(
    client: &fetch::Client,
    cache: &fetch::Cache,
    source: &DebSource,
    release: &Release,
    arch: &str,
) -> Result<Index, Error> {
    let files = fetch_packages(client, cache, source, release, arch).await?;
    let origin = Origin { suite: source.suite.clone(), not_automatic: release.not_automatic };
    read_index_blocking(arch, vec![(origin, files)]).await
}

/// One verified `Packages` file in the cache.
#[derive(Debug, Clone)]
pub struct PackagesFile {
    /// Where the cache holds it.
    pub path: PathBuf,
    /// How it is compressed.
    pub compression: FileCompression,
    /// Its path in the suite (`main/binary-amd64/Packages.xz`), for messages.
    pub name: String,
    /// Its URL, redacted, for messages.
    pub url: String,
}

/// Fetches the `Packages` files of `arch` (and of `all`, when the archive keeps them apart)
/// for every component of `source` into the cache, each checked against the sha256 the
/// verified `release` lists.
pub async fn fetch_packages(
    client: &fetch::Client,
    cache: &fetch::Cache,
    source: &DebSource,
    release: &Release,
    arch: &str,
) -> Result<Vec<PackagesFile>, Error> {
    let release_url = fetch::redact(&source.dists_url("InRelease")?);
    if !release.architectures.is_empty() && !release.architectures.iter().any(|a| a == arch) {
        return Err(Error::Release {
            url: release_url,
            reason: format!(
                "the suite has no architecture `{arch}` (it has {})",
                release.architectures.join(" ")
            ),
            hint: "pick one of the architectures listed".to_string(),
        });
    }
    let mut blobs = Vec::new();
    for component in &source.components {
        let mut dirs = vec![(format!("{component}/binary-{arch}"), true)];
        // As apt: `binary-all` is read only where the Release lists the architecture `all`
        // (the security archive does not: its `all` packages are in every architecture's
        // index, and its `binary-all` files are not kept current).
        let lists_all = release.architectures.is_empty() || release.architectures.iter().any(|a| a == "all");
        if lists_all && !release.all_in_arch_indexes {
            dirs.push((format!("{component}/binary-all"), false));
        }
        for (dir, required) in dirs {
            let Some((file, compression)) =
                ["Packages.xz", "Packages.gz", "Packages"].iter().find_map(|name| {
                    let f = release.file(&format!("{dir}/{name}"))?;
                    Some((f, FileCompression::from_name(name)?))
                })
            else {
                if required {
                    return Err(Error::Release {
                        url: release_url,
                        reason: format!("it lists no Packages file for {dir}"),
                        hint: format!("check the component `{component}` and the architecture `{arch}`"),
                    });
                }
                continue;
            };
            let what = format!("{} of {} (verified by sha256 from InRelease)", file.path, source.suite);
            let plain = source.dists_url(&file.path)?;
            let path = if release.acquire_by_hash {
                let by_hash = source.dists_url(&format!("{dir}/by-hash/SHA256/{}", file.sha256))?;
                match client.download_verified_sized(&by_hash, &file.sha256, Some(file.size), cache).await {
                    Ok(path) => path,
                    Err(fetch::Error::Status { status: 404, .. }) => client
                        .download_verified_sized(&plain, &file.sha256, Some(file.size), cache)
                        .await
                        .map_err(|source| Error::Fetch { what: what.clone(), source })?,
                    Err(source) => return Err(Error::Fetch { what, source }),
                }
            } else {
                client
                    .download_verified_sized(&plain, &file.sha256, Some(file.size), cache)
                    .await
                    .map_err(|source| Error::Fetch { what: what.clone(), source })?
            };
            blobs.push(PackagesFile {
                path,
                compression,
                name: file.path.clone(),
                url: fetch::redact(&plain),
            });
        }
    }
    Ok(blobs)
}

/// Parses the `Packages` files of several origins into one [`Index`] of `arch`, in a worker
/// thread (decompressing and parsing Debian main takes a second or two).
pub async fn read_index_blocking(
    arch: &str,
    parts: Vec<(Origin, Vec<PackagesFile>)>,
) -> Result<Index, Error> {
    let arch_owned = arch.to_string();
    let task = tokio::task::spawn_blocking(move || read_index(&arch_owned, &parts));
    task.await.map_err(|e| Error::Io {
        action: "parse the index in a worker thread for",
        path: PathBuf::from(arch),
        source: std::io::Error::other(e.to_string()),
    })?
}

/// Parses the `Packages` files of several origins (each part's files read together, all of
/// them bounded by [`MAX_PACKAGES_TEXT`] in all) into one [`Index`] of `arch`.
pub fn read_index(arch: &str, parts: &[(Origin, Vec<PackagesFile>)]) -> Result<Index, Error> {
    let mut texts = Vec::with_capacity(parts.len());
    let mut left = MAX_PACKAGES_TEXT;
    for (origin, files) in parts {
        let text = read_packages(files, arch, left)?;
        left = left.saturating_sub(text.len() as u64);
        texts.push((origin.clone(), text));
    }
    let suites: Vec<&str> = parts.iter().map(|(o, _)| o.suite.as_str()).collect();
    Index::parse_sources(arch, texts, &format!("Packages of {} for {arch}", suites.join(", ")))
}

/// The text of the `Packages` files `blobs` (cache path, compression, path in the suite,
/// URL), one after the other, refused when it passes `limit` bytes in all.
fn read_packages(blobs: &[PackagesFile], arch: &str, limit: u64) -> Result<String, Error> {
    let mut text = String::new();
    for PackagesFile { path, compression, name, url } in blobs {
        let file = std::fs::File::open(path).map_err(crate::error::io_error("open", path))?;
        let decompress = |source| Error::Decompress { file: name.clone(), source };
        let reader = compression.decoder(std::io::BufReader::new(file)).map_err(decompress)?;
        let left = limit.saturating_sub(text.len() as u64);
        let what = format!("{name} for {arch} ({url}, with the Packages files before it)");
        bounded::Reader::ceiling(reader, left, what).read_to_string(&mut text).map_err(decompress)?;
        text.push_str("\n\n");
    }
    Ok(text)
}

/// Downloads every `.deb` of a lock into the cache (in parallel, each checked against its
/// sha256) and returns their paths, in the order given. Each comes from the source of its
/// suite (the first source for a `.deb` that names none).
pub async fn fetch_debs(
    client: &fetch::Client,
    cache: &fetch::Cache,
    sources: &[DebSource],
    debs: &[LockedDeb],
) -> Result<Vec<PathBuf>, Error> {
    let jobs = debs.iter().map(|deb| async move {
        let source = source_of(sources, deb)?;
        let url = source.url(&deb.filename)?;
        let size = Some(deb.size).filter(|&size| size > 0);
        client.download_verified_sized(&url, &deb.sha256, size, cache).await.map_err(|source| Error::Fetch {
            what: format!("{} {} ({})", deb.name, deb.version, deb.arch),
            source,
        })
    });
    futures::future::try_join_all(jobs).await
}

/// The source a locked `.deb` comes from: the one of its suite, else (no suite recorded) the
/// first.
pub fn source_of<'s>(sources: &'s [DebSource], deb: &LockedDeb) -> Result<&'s DebSource, Error> {
    let found = match deb.suite.as_str() {
        "" => sources.first(),
        suite => sources.iter().find(|s| s.suite == suite),
    };
    found.ok_or_else(|| Error::NotFound {
        package: format!("{} {} ({})", deb.name, deb.version, deb.arch),
        arch: deb.arch.clone(),
        hint: format!(
            "the lock takes it from suite `{}`, which none of the sources is ({}); run `marqo-base lock` \
             to lock it from the sources configured now",
            deb.suite,
            sources.iter().map(|s| s.suite.as_str()).collect::<Vec<_>>().join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_text_is_bounded_after_decompression() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Packages.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &vec![b'a'; 1 << 20]).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        let blob = PackagesFile {
            path,
            compression: FileCompression::Gzip,
            name: "main/binary-amd64/Packages.gz".to_string(),
            url: "URL".to_string(),
        };
        let blobs = [blob.clone(), blob];
        assert_eq!(read_packages(&blobs, "amd64", 4 << 20).unwrap().len(), (2 << 20) + 4);
        let err = read_packages(&blobs, "amd64", (1 << 20) + 1000).unwrap_err();
        let Error::Decompress { source, .. } = &err else { panic!("{err}") };
        // What was left of the limit after the first file.
        assert_eq!(bounded::too_large(source).unwrap().bound, bounded::Bound::Ceiling(1000 - 2), "{source}");
    }
}
