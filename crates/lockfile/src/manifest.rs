//! `marqo-base.toml`: what goes into the image. Unknown keys and bad values are errors that
//! name the file, line, column and key, with a hint.
//!
//! ```toml
//! [image]
//! repository = "marqoai/marqo-base"
//! platforms = ["linux/amd64", "linux/arm64"]
//! env = { NLTK_DATA = "/root/nltk_data" }
//! entrypoint = ["/bin/bash"]
//!
//! [debian]
//! suite = "bullseye"
//! packages = ["python3.9", "ffmpeg", "redis-server"]
//!
//! [python]
//! version = "3.9"
//! requirements = ["requirements/requirements.in"]
//! build_constraints = ["requirements/build-constraints.txt"]
//! compile_bytecode = true       # the default: .pyc in the image, as pip compiles them
//!
//! [[python.index]]              # torch from its own index, on amd64 only
//! url = "https://download.example.invalid/whl/cpu"
//! packages = ["torch"]
//! platforms = ["linux/amd64"]
//! exclude_newer = false         # its pages publish no upload times
//!
//! [[file]]
//! url = "https://example.invalid/vespa-8.513.17.tar.gz"
//! sha256 = "..."
//! to = "/opt/vespa"
//! extract = true
//! ```

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use pep_types::{Arch, PackageName, Target, TargetError};
use serde::Deserialize;

use crate::de;
use crate::diag::{key_path, Seg, Source};
use crate::error::{Error, ParseError};
use crate::platform::TargetPlatform;

/// A parsed and checked `marqo-base.toml`. Relative paths in it are already resolved against
/// the manifest's directory; [`Manifest::input_name`] gives them back as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// `[image]`: platforms and the image config.
    pub image: Image,
    /// `[debian]`: the system packages, if any.
    pub debian: Option<Debian>,
    /// `[python]`: the Python requirements, if any.
    pub python: Option<Python>,
    /// `[[file]]`: local files and hash-pinned downloads, in manifest order.
    pub files: Vec<FileEntry>,
    /// `[cache]`: where built layers are shared between machines, if anywhere.
    pub cache: Option<Cache>,
    path: PathBuf,
}

/// `[cache]`: a layer cache in a registry (`registry = "HOST/REPO"`), read by every build and
/// push of the manifest and written with `--cache-write`. Part of the manifest like any
/// other line (editing it makes the lock stale, as any edit does), never of a layer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    /// The repository that holds the layers: `HOST[:PORT]/REPOSITORY`, no tag.
    pub registry: String,
}

/// `[image]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// Where `push` sends the image: `marqoai/marqo-base`, or with a registry host. No tag:
    /// tags are chosen when pushing.
    #[serde(default)]
    pub repository: Option<String>,
    /// The platforms to build, in the order of the image index. Not empty, no repeats.
    pub platforms: Vec<TargetPlatform>,
    /// `Env` of the image config.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `WorkingDir`: an absolute path.
    #[serde(default)]
    pub workdir: Option<String>,
    /// `User`: a name or `uid[:gid]`.
    #[serde(default)]
    pub user: Option<String>,
    /// `Entrypoint` (exec form).
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd` (exec form).
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// `Labels`; marqo-base adds its own `org.opencontainers.image.*` and the lock fingerprint.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// An image to build on (`REF`), pinned by digest in the lock. Without it, the image is
    /// built from scratch.
    #[serde(default)]
    pub base: Option<String>,
}

/// `[debian]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Debian {
    /// `bullseye`, `bookworm`, ...: the release, read as Debian's own images configure apt:
    /// the suite itself, `SUITE-updates` and `SUITE-security` (see `updates`, `security`).
    pub suite: String,
    /// Packages to install (with their dependencies): `name`, `name=VERSION` (held at that
    /// version, as `apt-mark hold` would), or `name/SUITE` (from that suite, which may be
    /// `NotAutomatic`, such as backports).
    #[serde(default, deserialize_with = "deb_names")]
    pub packages: Vec<String>,
    /// The mirror's root URL (for the suite and `SUITE-updates`); else the one in this host's
    /// apt sources.
    #[serde(default, deserialize_with = "opt_index_url")]
    pub mirror: Option<String>,
    /// Read `SUITE-updates` too (as Debian's images do).
    #[serde(default = "yes")]
    pub updates: bool,
    /// Read `SUITE-security` too (as Debian's images do).
    #[serde(default = "yes")]
    pub security: bool,
    /// The security archive's root URL; else `mirror` when the manifest names one, else the
    /// host's apt source of a `*-security` suite.
    #[serde(default, deserialize_with = "opt_index_url")]
    pub security_mirror: Option<String>,
    /// `[[debian.source]]`: more apt sources (private repositories, backports), after the
    /// release's own.
    #[serde(default)]
    pub source: Vec<DebianSource>,
    /// An OpenPGP keyring for the suite's `InRelease`; else the host's archive keyring.
    #[serde(default)]
    pub keyring: Option<PathBuf>,
    /// Follow `Recommends` too.
    #[serde(default)]
    pub recommends: bool,
    /// Add the `Essential: yes` / `Priority: required` set. Ignored on top of a base image.
    #[serde(default = "yes")]
    pub essential: bool,
    /// PEM certificates to trust besides Debian's (a private CA): each is installed as
    /// `/usr/local/share/ca-certificates/NAME.crt` and added to the CA bundle, the hash links
    /// and the Java truststore, as update-ca-certificates does. Their content is an input of
    /// the lock.
    #[serde(default)]
    pub ca_certificates: Vec<PathBuf>,
}

/// Releases that have neither `-updates` nor `-security` suites.
pub const ROLLING_SUITES: &[&str] = &["sid", "unstable", "experimental", "rc-buggy"];

impl Debian {
    /// The suites this section reads, in apt's order: the suite, `SUITE-updates` and
    /// `SUITE-security` (unless turned off, or the release is rolling), then each
    /// `[[debian.source]]` suite.
    pub fn suite_names(&self) -> Vec<String> {
        let mut out = vec![self.suite.clone()];
        if !ROLLING_SUITES.contains(&self.suite.as_str()) {
            if self.updates {
                out.push(format!("{}-updates", self.suite));
            }
            if self.security {
                out.push(format!("{}-security", self.suite));
            }
        }
        out.extend(self.source.iter().flat_map(|s| s.suites.iter().cloned()));
        out
    }

    /// The package a `packages` entry names: `libc6` of `libc6`, `libc6=2.31-13` and
    /// `libc6/bullseye-security`.
    pub fn package_name(request: &str) -> &str {
        request.split(['=', '/']).next().unwrap_or(request)
    }

    /// The name a `ca_certificates` file gets in `/usr/local/share/ca-certificates`: its
    /// own with `.crt` for its extension (`certs/my-ca.pem` is `my-ca.crt`), as
    /// update-ca-certificates only reads `*.crt` files there.
    pub fn ca_certificate_name(path: &Path) -> String {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match name.rsplit_once('.') {
            Some((stem, _)) if !stem.is_empty() => format!("{stem}.crt"),
            _ => format!("{name}.crt"),
        }
    }
}

fn yes() -> bool {
    true
}

/// `[[debian.source]]`: an apt source, with the fields of apt's deb822 `.sources` files.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebianSource {
    /// The archive root (`URIs`).
    #[serde(deserialize_with = "index_url")]
    pub url: String,
    /// Its suites (`Suites`); not empty.
    pub suites: Vec<String>,
    /// Its components (`Components`); `main` when not given.
    #[serde(default = "main_component")]
    pub components: Vec<String>,
    /// The OpenPGP keyring that signs it (`Signed-By`), relative to the manifest; else the
    /// `[debian]` keyring, else the host's archive keyring.
    #[serde(default)]
    pub keyring: Option<PathBuf>,
}

fn main_component() -> Vec<String> {
    vec!["main".to_string()]
}

/// `[python]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Python {
    /// The target interpreter: `3.9` or `3.9.2`.
    pub version: String,
    /// Requirement files (pip's format); not empty.
    pub requirements: Vec<PathBuf>,
    /// Constraint files (`-c`).
    #[serde(default)]
    pub constraints: Vec<PathBuf>,
    /// Constraints for building sdists' metadata.
    #[serde(default)]
    pub build_constraints: Vec<PathBuf>,
    /// Highest `manylinux` glibc accepted (`2.31`); see [`Manifest::glibc`] for the default.
    #[serde(default)]
    pub glibc: Option<String>,
    /// `[[python.index]]`: packages pinned to an index.
    #[serde(default)]
    pub index: Vec<Index>,
    /// How a name on several indexes of the requirement files is served: `first-index` (the
    /// default), `unsafe-first-match` or `unsafe-best-match` (as `compile --index-strategy`).
    #[serde(default)]
    pub index_strategy: Option<String>,
    /// Byte-compile the installed modules into the image, as pip does at install (`build`
    /// writes each `.py` file's `__pycache__/*.pyc`); `false` for no `.pyc`.
    #[serde(default = "yes")]
    pub compile_bytecode: bool,
}

/// What to do about a `[[file]]` source outside the manifest's directory.
const OUTSIDE_HINT: &str =
    "copy it beside the manifest, or set `allow_outside = true` on this [[file]] to take it from there";

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The values `[python] index_strategy` takes.
pub const INDEX_STRATEGIES: [&str; 3] = ["first-index", "unsafe-first-match", "unsafe-best-match"];

/// `[[python.index]]`: these packages come from this index (on these platforms), and from no
/// other.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    /// The simple-API root URL.
    #[serde(deserialize_with = "index_url")]
    pub url: String,
    /// Normalized package names; not empty.
    #[serde(deserialize_with = "de::leaves")]
    pub packages: Vec<PackageName>,
    /// The platforms the pin applies to; `None` for all of them.
    #[serde(default, deserialize_with = "de::opt_leaves")]
    pub platforms: Option<Vec<TargetPlatform>>,
    /// `false`: `--exclude-newer` does not filter this index's files. For indexes that
    /// publish no upload times (static PEP 503 pages such as PyTorch's), whose files a cutoff
    /// would otherwise drop.
    #[serde(default = "yes")]
    pub exclude_newer: bool,
}

impl Index {
    /// Whether this index serves `name` for `platform`.
    pub fn serves(&self, name: &PackageName, platform: TargetPlatform) -> bool {
        self.packages.contains(name) && self.platforms.as_ref().is_none_or(|p| p.contains(&platform))
    }
}

/// `[[file]]`: a local file or directory, or a download pinned by sha256, put into the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Where the bytes come from.
    pub source: FileSource,
    /// The absolute destination in the image: the file's path, or the directory a directory
    /// `src` or an extracted archive goes to.
    pub to: String,
    /// Permission bits for the file (for example `0o755`); else the source's.
    pub mode: Option<u32>,
    /// Unpack the archive (`.tar`, `.tar.gz`/`.tgz`, `.tar.xz`, `.tar.zst`, `.zip`) into `to`.
    pub extract: bool,
    /// `allow_outside = true`: `src` may be outside the manifest's directory (an absolute
    /// path, `..` steps, or a symbolic link leading out); refused otherwise, as a build
    /// context refuses it.
    pub allow_outside: bool,
}

/// Where a `[[file]]` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// `src`: a local file or directory (resolved against the manifest's directory).
    Local(PathBuf),
    /// `url` with its `sha256` (lowercase hex).
    Url {
        /// The URL (http or https).
        url: String,
        /// The expected sha256 of the download.
        sha256: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    image: Image,
    #[serde(default)]
    debian: Option<Debian>,
    #[serde(default)]
    python: Option<Python>,
    #[serde(default)]
    file: Vec<RawFile>,
    #[serde(default)]
    cache: Option<Cache>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    src: Option<PathBuf>,
    #[serde(default, deserialize_with = "opt_download_url")]
    url: Option<String>,
    #[serde(default, deserialize_with = "opt_sha256")]
    sha256: Option<String>,
    to: String,
    #[serde(default, deserialize_with = "de::opt_mode")]
    mode: Option<u32>,
    #[serde(default)]
    extract: bool,
    #[serde(default)]
    allow_outside: bool,
}

impl Manifest {
    /// Reads and checks a manifest file.
    /// Besides what [`Manifest::parse`] checks, it looks at the `[[file]]` sources on disk:
    /// one that leads outside the manifest's directory through a symbolic link is refused
    /// (unless `allow_outside = true`), and a file cannot go to `to = "/"`.
    pub fn read(path: &Path) -> Result<Manifest, Error> {
        let text = bounded::read_file_to_string(path, bounded::MAX_TEXT_FILE, "the manifest")
            .map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
        let manifest = Manifest::parse(&text, path)?;
        manifest.check_sources(&Source::new(path, &text))?;
        Ok(manifest)
    }

    fn check_sources(&self, src: &Source<'_>) -> Checked<()> {
        let dir = std::fs::canonicalize(match self.dir() {
            d if d.as_os_str().is_empty() => Path::new("."),
            d => d,
        });
        for (i, file) in self.files.iter().enumerate() {
            let FileSource::Local(path) = &file.source else { continue };
            // A source that cannot be read is reported where it is read, with its path.
            let Ok(real) = std::fs::canonicalize(path) else { continue };
            if let Ok(dir) = &dir {
                if !file.allow_outside && !real.starts_with(dir) {
                    return Err(src.error_at(
                        &key_path!["file", i, "src"],
                        format!(
                            "`{}` leads outside the manifest's directory (to {})",
                            self.input_name(path),
                            real.display()
                        ),
                        Some(OUTSIDE_HINT.into()),
                    ));
                }
            }
            if file.to.trim_matches('/').is_empty() && !file.extract && !real.is_dir() {
                return Err(src.error_at(
                    &key_path!["file", i, "to"],
                    format!("`{}` is a file; it cannot go to `/`", self.input_name(path)),
                    Some(format!(
                        "name the file's path in the image, such as `to = \"/{}\"`",
                        file_name(path)
                    )),
                ));
            }
        }
        Ok(())
    }

    /// Parses and checks manifest text as if read from `path` (which names the file in errors
    /// and is the base of relative paths). Does no I/O.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, Error> {
        let source = Source::new(path, text);
        let raw: RawManifest = toml::from_str(text).map_err(|e| source.toml_error(&e))?;
        let mut manifest = check(raw, &source)?;
        manifest.path = path.to_path_buf();
        manifest.resolve_paths();
        Ok(manifest)
    }

    /// The manifest file, as given to [`Manifest::read`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory relative paths are resolved against.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new(""))
    }

    /// A path's name relative to the manifest's directory, `/`-separated and without `.` or
    /// `x/..` steps (`requirements/base.in`, `../shared/constraints.txt`); a path outside
    /// the directory written as absolute stays absolute. The same on every clone.
    pub fn input_name(&self, path: &Path) -> String {
        normalize(path.strip_prefix(self.dir()).unwrap_or(path))
    }

    /// The highest glibc the Python wheels may need: `[python] glibc`, else that of the
    /// Debian suite (buster 2.28, bullseye 2.31, bookworm 2.36, trixie 2.41), else `None`.
    pub fn glibc(&self) -> Option<&str> {
        if let Some(glibc) = self.python.as_ref().and_then(|p| p.glibc.as_deref()) {
            return Some(glibc);
        }
        match self.debian.as_ref()?.suite.as_str() {
            "buster" => Some("2.28"),
            "bullseye" => Some("2.31"),
            "bookworm" => Some("2.36"),
            "trixie" => Some("2.41"),
            _ => None,
        }
    }

    fn resolve_paths(&mut self) {
        let dir = self.dir().to_path_buf();
        let join = |p: &mut PathBuf| *p = dir.join(&*p);
        if let Some(python) = &mut self.python {
            python.requirements.iter_mut().for_each(join);
            python.constraints.iter_mut().for_each(join);
            python.build_constraints.iter_mut().for_each(join);
        }
        if let Some(debian) = &mut self.debian {
            if let Some(keyring) = debian.keyring.as_mut() {
                join(keyring);
            }
            for source in &mut debian.source {
                if let Some(keyring) = source.keyring.as_mut() {
                    join(keyring);
                }
            }
            debian.ca_certificates.iter_mut().for_each(join);
        }
        for file in &mut self.files {
            if let FileSource::Local(src) = &mut file.source {
                join(src);
            }
        }
    }
}

/// `a/./b/../c` -> `a/c`, with `/` separators; leading `..` steps are kept.
pub(crate) fn normalize(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut absolute = false;
    for component in path.components() {
        match component {
            Component::RootDir => absolute = true,
            Component::Prefix(p) => parts.push(p.as_os_str().to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.last().is_some_and(|p| p != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..".to_string());
                }
            }
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

type Checked<T> = Result<T, Box<ParseError>>;

/// The checks serde cannot do: values that depend on each other, and paths.
fn check(raw: RawManifest, src: &Source<'_>) -> Checked<Manifest> {
    check_image(&raw.image, src)?;
    if let Some(debian) = &raw.debian {
        check_debian(debian, src)?;
    }
    if let Some(python) = &raw.python {
        check_python(python, &raw.image.platforms, src)?;
    }
    let mut files = Vec::with_capacity(raw.file.len());
    let mut destinations: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, file) in raw.file.iter().enumerate() {
        if let Some(first) = destinations.insert(file.to.trim_end_matches('/'), i) {
            return Err(src.error_at(
                &key_path!["file", i, "to"],
                format!("`{}` is already the destination of file[{first}]", file.to),
                None,
            ));
        }
        files.push(check_file(file, i, src)?);
    }
    if let Some(cache) = &raw.cache {
        let registry = cache.registry.trim();
        if registry.is_empty() || !registry.contains('/') || registry.contains('@') {
            return Err(src.error_at(
                &key_path!["cache", "registry"],
                format!("`{}` is not a repository", cache.registry),
                Some("name HOST[:PORT]/REPOSITORY, such as registry = \"registry.example.com/acme/marqo-base-cache\"".into()),
            ));
        }
    }
    Ok(Manifest {
        image: raw.image,
        debian: raw.debian,
        python: raw.python,
        files,
        cache: raw.cache,
        path: PathBuf::new(),
    })
}

fn check_image(image: &Image, src: &Source<'_>) -> Checked<()> {
    if image.platforms.is_empty() {
        let all: Vec<&str> = TargetPlatform::ALL.iter().map(|p| p.as_str()).collect();
        return Err(src.error_at(
            &key_path!["image", "platforms"],
            "no platforms",
            Some(format!("list at least one of: {}", all.join(", "))),
        ));
    }
    for (i, platform) in image.platforms.iter().enumerate() {
        if image.platforms[..i].contains(platform) {
            return Err(src.error_at(
                &key_path!["image", "platforms", i],
                format!("`{platform}` is listed twice"),
                None,
            ));
        }
    }
    if let Some(repository) = &image.repository {
        let last = repository.rsplit('/').next().unwrap_or(repository);
        if repository.is_empty() || repository.contains(char::is_whitespace) || repository.contains("://") {
            return Err(src.error_at(
                &key_path!["image", "repository"],
                format!("bad repository `{repository}`"),
                Some("write `[host[:port]/]name/path`, without a scheme".into()),
            ));
        }
        if last.contains(':') || last.contains('@') {
            return Err(src.error_at(
                &key_path!["image", "repository"],
                format!("`{repository}` has a tag or digest"),
                Some("name the repository only; tags are chosen by `push`".into()),
            ));
        }
    }
    if let Some(workdir) = &image.workdir {
        check_image_path(workdir, &key_path!["image", "workdir"], src)?;
    }
    if image.user.as_deref().is_some_and(|u| u.trim().is_empty()) {
        return Err(src.error_at(&key_path!["image", "user"], "empty user", None));
    }
    for name in image.env.keys() {
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            return Err(src.error_at(
                &key_path!["image", "env", name.as_str()],
                format!("bad environment variable name `{name}`"),
                None,
            ));
        }
    }
    if let Some(base) = &image.base {
        if base.trim().is_empty() || base.contains(char::is_whitespace) {
            return Err(src.error_at(
                &key_path!["image", "base"],
                format!("bad image reference `{base}`"),
                Some("write `[host/]name[:tag][@sha256:digest]`".into()),
            ));
        }
    }
    Ok(())
}

fn check_debian(debian: &Debian, src: &Source<'_>) -> Checked<()> {
    if debian.suite.is_empty() || debian.suite.contains(char::is_whitespace) || debian.suite.contains('/') {
        return Err(src.error_at(
            &key_path!["debian", "suite"],
            format!("bad suite `{}`", debian.suite),
            Some("name a suite or codename, for example \"bullseye\"".into()),
        ));
    }
    for (i, name) in debian.packages.iter().enumerate() {
        if debian.packages[..i].iter().any(|n| Debian::package_name(n) == Debian::package_name(name)) {
            return Err(src.error_at(
                &key_path!["debian", "packages", i],
                format!("`{name}` is listed twice"),
                None,
            ));
        }
    }
    if debian.keyring.as_ref().is_some_and(|k| k.as_os_str().is_empty()) {
        return Err(src.error_at(&key_path!["debian", "keyring"], "empty path", None));
    }
    for (i, source) in debian.source.iter().enumerate() {
        if source.suites.is_empty() {
            return Err(src.error_at(
                &key_path!["debian", "source", i, "suites"],
                "no suite",
                Some("name the suites to read, for example suites = [\"bookworm-backports\"]".into()),
            ));
        }
        for (j, suite) in source.suites.iter().enumerate() {
            if suite.is_empty() || suite.contains(char::is_whitespace) {
                return Err(src.error_at(
                    &key_path!["debian", "source", i, "suites", j],
                    format!("bad suite `{suite}`"),
                    None,
                ));
            }
        }
        for (j, component) in source.components.iter().enumerate() {
            if component.is_empty() || component.contains(char::is_whitespace) {
                return Err(src.error_at(
                    &key_path!["debian", "source", i, "components", j],
                    format!("bad component `{component}`"),
                    None,
                ));
            }
        }
        if source.keyring.as_ref().is_some_and(|k| k.as_os_str().is_empty()) {
            return Err(src.error_at(&key_path!["debian", "source", i, "keyring"], "empty path", None));
        }
    }
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (i, path) in debian.ca_certificates.iter().enumerate() {
        let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if file.is_empty() || file.starts_with('.') || path.to_string_lossy().ends_with('/') {
            return Err(src.error_at(
                &key_path!["debian", "ca_certificates", i],
                format!("`{}` does not name a certificate file", path.display()),
                Some(
                    "give the path of a PEM file, relative to the manifest, such as \"certs/my-ca.crt\""
                        .into(),
                ),
            ));
        }
        let name = Debian::ca_certificate_name(path);
        if let Some(first) = names.insert(name.clone(), i) {
            return Err(src.error_at(
                &key_path!["debian", "ca_certificates", i],
                format!(
                    "`{}` would be /usr/local/share/ca-certificates/{name}, as `{}` is",
                    path.display(),
                    debian.ca_certificates[first].display()
                ),
                Some("rename one of the files: each is installed under its own name".into()),
            ));
        }
    }
    Ok(())
}

fn check_python(python: &Python, platforms: &[TargetPlatform], src: &Source<'_>) -> Checked<()> {
    if let Err(e) = Target::new(Arch::Amd64, &python.version, python.glibc.as_deref().unwrap_or("2.31")) {
        let key = match e {
            TargetError::Glibc(_) => "glibc",
            _ => "version",
        };
        return Err(src.error_at(&key_path!["python", key], e.to_string(), None));
    }
    if python.requirements.is_empty() {
        return Err(src.error_at(
            &key_path!["python", "requirements"],
            "no requirement files",
            Some("name at least one, for example `requirements = [\"requirements.in\"]`".into()),
        ));
    }
    for (key, list) in [
        ("requirements", &python.requirements),
        ("constraints", &python.constraints),
        ("build_constraints", &python.build_constraints),
    ] {
        if let Some(i) = list.iter().position(|p| p.as_os_str().is_empty()) {
            return Err(src.error_at(&key_path!["python", key, i], "empty path", None));
        }
    }
    if let Some(strategy) = &python.index_strategy {
        if !INDEX_STRATEGIES.contains(&strategy.as_str()) {
            return Err(src.error_at(
                &key_path!["python", "index_strategy"],
                format!("unknown index strategy `{strategy}`"),
                Some(format!("use one of {}", INDEX_STRATEGIES.join(", "))),
            ));
        }
    }
    // (package, platform) -> index that claims it.
    let mut claimed: BTreeMap<(&PackageName, TargetPlatform), usize> = BTreeMap::new();
    for (i, index) in python.index.iter().enumerate() {
        if index.packages.is_empty() {
            return Err(src.error_at(
                &key_path!["python", "index", i, "packages"],
                "no packages",
                Some("name the packages this index serves; other packages use the default index".into()),
            ));
        }
        let applies: Vec<TargetPlatform> = match &index.platforms {
            None => platforms.to_vec(),
            Some(list) => {
                if list.is_empty() {
                    return Err(src.error_at(
                        &key_path!["python", "index", i, "platforms"],
                        "no platforms",
                        Some("leave `platforms` out to use this index on every platform".into()),
                    ));
                }
                if let Some(j) = list.iter().position(|p| !platforms.contains(p)) {
                    let built: Vec<&str> = platforms.iter().map(|p| p.as_str()).collect();
                    return Err(src.error_at(
                        &key_path!["python", "index", i, "platforms", j],
                        format!("`{}` is not built by this image", list[j]),
                        Some(format!("[image] platforms are: {}", built.join(", "))),
                    ));
                }
                list.clone()
            }
        };
        for (j, name) in index.packages.iter().enumerate() {
            for &platform in &applies {
                if let Some(other) = claimed.insert((name, platform), i) {
                    if other != i {
                        return Err(src.error_at(
                            &key_path!["python", "index", i, "packages", j],
                            format!("`{name}` is already pinned to python.index[{other}] for {platform}"),
                            Some("a package comes from one index per platform".into()),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

fn check_file(file: &RawFile, i: usize, src: &Source<'_>) -> Checked<FileEntry> {
    let at = |key: &str| key_path!["file", i, key];
    let source = match (&file.src, &file.url, &file.sha256) {
        (Some(_), Some(_), _) => {
            return Err(src.error_at(
                &at("url"),
                "a [[file]] has both `src` and `url`",
                Some("use `src` for a local path, or `url` with `sha256` for a download".into()),
            ))
        }
        (Some(_), None, Some(_)) => {
            return Err(src.error_at(
                &at("sha256"),
                "`sha256` is for `url` files",
                Some("local files are hashed when locking; remove `sha256`".into()),
            ))
        }
        (Some(path), None, None) if path.as_os_str().is_empty() => {
            return Err(src.error_at(&at("src"), "empty path", None));
        }
        (Some(path), None, None) => {
            let outside = path.is_absolute() || normalize(path).split('/').next() == Some("..");
            if outside && !file.allow_outside {
                return Err(src.error_at(
                    &at("src"),
                    format!("`{}` is outside the manifest's directory", path.display()),
                    Some(OUTSIDE_HINT.into()),
                ));
            }
            FileSource::Local(path.clone())
        }
        (None, Some(_), None) => {
            return Err(src.error_at(
                &at("url"),
                "a `url` file needs its `sha256`",
                Some("add `sha256 = \"<64 hex digits>\"` (for example from `sha256sum`)".into()),
            ))
        }
        (None, Some(url), Some(sha256)) => FileSource::Url { url: url.clone(), sha256: sha256.clone() },
        (None, None, _) => {
            return Err(src.error_at(
                &key_path!["file", i],
                "a [[file]] needs `src` or `url`",
                Some("use `src` for a local path, or `url` with `sha256` for a download".into()),
            ))
        }
    };
    check_image_path(&file.to, &at("to"), src)?;
    check_destination(&file.to, &source, file.extract, &at("to"), src)?;
    if file.allow_outside && !matches!(source, FileSource::Local(_)) {
        return Err(src.error_at(&at("allow_outside"), "`allow_outside` is for `src` files", None));
    }
    if file.mode.is_some() {
        let raw = src.raw_value(&at("mode")).unwrap_or("");
        if !raw.starts_with("0o") && !raw.starts_with('"') && !raw.starts_with('\'') {
            return Err(src.error_at(
                &at("mode"),
                format!("file mode `{raw}` is not written in octal"),
                Some(format!("write `mode = 0o{raw}` or `mode = \"{raw}\"`")),
            ));
        }
    }
    if file.extract {
        let name = match &source {
            FileSource::Local(path) => path.to_string_lossy().into_owned(),
            FileSource::Url { url, .. } => {
                url::Url::parse(url).map(|u| u.path().to_string()).unwrap_or_else(|_| url.clone())
            }
        };
        if !is_archive(&name) {
            return Err(src.error_at(
                &at("extract"),
                format!("cannot extract `{name}`: not a known archive"),
                Some("archives end in .tar, .tar.gz, .tgz, .tar.xz, .tar.zst or .zip".into()),
            ));
        }
    }
    Ok(FileEntry {
        source,
        to: file.to.clone(),
        mode: file.mode,
        extract: file.extract,
        allow_outside: file.allow_outside,
    })
}

/// A `[[file]]`'s `to` names a place a file or tree can go: no empty or `.` steps, and not
/// the root for a download copied as it is (where a local file's kind is known only on disk,
/// [`Manifest::read`] checks it).
fn check_destination(
    to: &str,
    source: &FileSource,
    extract: bool,
    at: &[Seg],
    src: &Source<'_>,
) -> Checked<()> {
    let inner = to.trim_start_matches('/').trim_end_matches('/');
    if !inner.is_empty() && inner.split('/').any(|part| part.is_empty() || part == ".") {
        let clean: Vec<&str> = inner.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
        return Err(src.error_at(
            at,
            format!("`{to}` has an empty or `.` step"),
            Some(format!("write `to = \"/{}\"`", clean.join("/"))),
        ));
    }
    if inner.is_empty() && !extract && matches!(source, FileSource::Url { .. }) {
        return Err(src.error_at(
            at,
            "a downloaded file cannot go to `/`",
            Some(
                "name the file's path in the image, or set `extract = true` to unpack an archive there"
                    .into(),
            ),
        ));
    }
    Ok(())
}

fn is_archive(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.zst", ".tzst", ".zip"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

fn check_image_path(value: &str, at: &[Seg], src: &Source<'_>) -> Checked<()> {
    if !value.starts_with('/') {
        return Err(src.error_at(
            at,
            format!("`{value}` is not an absolute path"),
            Some(format!("paths in the image start with `/`: \"/{}\"", value.trim_start_matches("./"))),
        ));
    }
    if value.split('/').any(|part| part == "..") || value.contains('\0') {
        return Err(src.error_at(at, format!("`{value}` has a `..` step"), None));
    }
    Ok(())
}

/// A Debian package name (policy 5.6.1), optionally held at a version (`name=VERSION`) or
/// taken from a suite (`name/SUITE`).
struct DebName(String);

impl FromStr for DebName {
    type Err = String;

    fn from_str(s: &str) -> Result<DebName, String> {
        let name = Debian::package_name(s);
        let ok = name.len() >= 2
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
        let rest = &s[name.len()..];
        let rest_ok = match rest.chars().next() {
            None => true,
            Some('=') => {
                let v = &rest[1..];
                !v.is_empty()
                    && v.starts_with(|c: char| c.is_ascii_digit())
                    && v.chars().all(|c| c.is_ascii_alphanumeric() || ".+-~:".contains(c))
            }
            Some(_) => {
                let suite = &rest[1..];
                !suite.is_empty() && !suite.contains(['/', '=']) && !suite.contains(char::is_whitespace)
            }
        };
        if ok && rest_ok {
            Ok(DebName(s.to_string()))
        } else if ok && rest.starts_with('=') {
            Err(format!(
                "bad version in `{s}`\nhint: hold a package at a version with `name=VERSION`, \
                 such as \"libc6=2.31-13+deb11u11\""
            ))
        } else if ok {
            Err(format!("bad suite in `{s}`\nhint: take a package from a suite with `name/SUITE`"))
        } else if s.contains(' ') {
            Err(format!("bad Debian package name `{s}`\nhint: write `name`, `name=VERSION` or `name/SUITE`"))
        } else {
            Err(format!(
                "bad Debian package name `{s}`\nhint: names are lowercase letters, digits, `+`, `-` and `.`"
            ))
        }
    }
}

fn deb_names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    de::leaves::<D, DebName>(d).map(|v| v.into_iter().map(|n| n.0).collect())
}

/// A URL of an index or mirror: http, https or file.
struct IndexUrl(String);

impl FromStr for IndexUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<IndexUrl, String> {
        check_url(s, &["http", "https", "file"]).map(IndexUrl)
    }
}

/// A URL to download: http or https.
struct DownloadUrl(String);

impl FromStr for DownloadUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<DownloadUrl, String> {
        check_url(s, &["http", "https"]).map(DownloadUrl)
    }
}

fn check_url(s: &str, schemes: &[&str]) -> Result<String, String> {
    let shown = || redact::strip_credentials(s);
    match url::Url::parse(s) {
        Ok(url) if schemes.contains(&url.scheme()) => Ok(s.to_string()),
        Ok(url) => Err(format!(
            "unsupported URL scheme `{}` in `{}`\nhint: use one of: {}",
            url.scheme(),
            shown(),
            schemes.join(", ")
        )),
        Err(e) => Err(format!("bad URL `{}`: {e}", shown())),
    }
}

fn index_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de::leaf::<D, IndexUrl>(d).map(|u| u.0)
}

fn opt_index_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    de::opt_leaf::<D, IndexUrl>(d).map(|u| u.map(|u| u.0))
}

fn opt_download_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    de::opt_leaf::<D, DownloadUrl>(d).map(|u| u.map(|u| u.0))
}

/// A sha256 as 64 hex digits (any case, optional `sha256:`), kept lowercase.
pub(crate) struct Sha256Hex(pub(crate) String);

impl FromStr for Sha256Hex {
    type Err = String;

    fn from_str(s: &str) -> Result<Sha256Hex, String> {
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Sha256Hex(hex.to_ascii_lowercase()))
        } else {
            Err(format!("bad sha256 `{s}`\nhint: write the 64 hex digits of the digest"))
        }
    }
}

fn opt_sha256<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    de::opt_leaf::<D, Sha256Hex>(d).map(|h| h.map(|h| h.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_relative_and_normal() {
        assert_eq!(normalize(Path::new("a/./b/../c.in")), "a/c.in");
        assert_eq!(normalize(Path::new("../shared/x.in")), "../shared/x.in");
        assert_eq!(normalize(Path::new("a/../../x")), "../x");
        assert_eq!(normalize(Path::new("/etc/../x")), "/x");
        let m = Manifest::parse("[image]\nplatforms = [\"linux/amd64\"]\n", Path::new("/w/marqo-base.toml"))
            .expect("minimal manifest");
        assert_eq!(m.input_name(Path::new("/w/req/../c.txt")), "c.txt");
        assert_eq!(m.input_name(Path::new("/elsewhere/c.txt")), "/elsewhere/c.txt");
    }
}
