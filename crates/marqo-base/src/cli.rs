//! Command-line arguments (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The exit codes, in every `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    a check found a difference (compile --check, lock --check: stale outputs)
  2    a user error: bad input, no solution, a hash or size mismatch, nothing cached offline
  3    a network error: an index, mirror or registry unreachable or refusing
  101  a bug in marqo-base (please report it)
  130  interrupted (SIGINT); 143 terminated (SIGTERM): what was being written is removed";

#[derive(Debug, Parser)]
#[command(
    name = "marqo-base",
    version,
    about = "Lock Python requirements and Debian packages for every target platform, from any host",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The command line as parsed and completed: [`Cli`] with the exit codes under every
/// subcommand's `--help` too.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command()
        .mut_subcommands(|sub| sub.after_help(EXIT_CODES).mut_subcommands(|s| s.after_help(EXIT_CODES)))
}

/// Parses the process's arguments (exits with clap's message on bad ones).
pub fn parse() -> Cli {
    use clap::FromArgMatches;
    Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit())
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More detail on stderr (repeat for debug output).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// When to color what is printed: auto (on a terminal, unless NO_COLOR is set), always,
    /// never.
    #[arg(long, global = true, value_enum, default_value_t = ColorMode::Auto, value_name = "WHEN")]
    pub color: ColorMode,
    /// The result on stdout as text, or as one JSON document (tree, why, diff, lock --check,
    /// compile --check, build, push, pull, verify; schemas in docs/json/). Progress and
    /// messages stay on stderr.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text, value_name = "FORMAT")]
    pub format: Format,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorMode {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The manifest.
    #[arg(long, default_value = "marqo-base.toml", value_name = "FILE")]
    pub manifest: PathBuf,
    /// The lock file [default: marqo-base.lock beside the manifest].
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    /// Only these platforms (repeatable) [default: all of the manifest's].
    #[arg(long = "platform", value_name = "PLATFORM")]
    pub platforms: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TreeArgs {
    #[command(flatten)]
    pub graph: GraphArgs,
    /// The packages that depend on NAME, up to the requirements, instead.
    #[arg(long, short = 'i', value_name = "NAME")]
    pub invert: Option<String>,
    /// Show this many levels.
    #[arg(long, value_name = "N")]
    pub depth: Option<usize>,
}

#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The package (Python or Debian).
    pub name: String,
    #[command(flatten)]
    pub graph: GraphArgs,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old lock (say, `git show HEAD:marqo-base.lock > old.lock`).
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The new lock [default: the manifest's, marqo-base.lock beside it].
    #[arg(value_name = "NEW")]
    pub new: Option<PathBuf>,
    /// The manifest both locks are of.
    #[arg(long, default_value = "marqo-base.toml", value_name = "FILE")]
    pub manifest: PathBuf,
}

#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub command: CacheCommand,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Print the cache directory (MARQO_BASE_CACHE_DIR, else $XDG_CACHE_HOME/marqo-base, else
    /// ~/.cache/marqo-base).
    Dir,
    /// Print what the cache holds, by kind: files and bytes.
    Size,
    /// Remove everything, or the kinds named (downloads, index-pages, metadata, build-envs,
    /// layers, debian, other), once no other marqo-base process uses the cache.
    Clean {
        /// Kinds to remove [default: all].
        #[arg(value_name = "KIND")]
        kinds: Vec<String>,
    },
    /// Remove what has not been used for a while (downloads, pages, metadata, layers: by
    /// file; build venvs and built wheels: whole), once no other process uses the cache.
    Prune {
        /// Unused for at least this long: 30d, 12h, 90m, 2w.
        #[arg(long, default_value = "30d", value_name = "AGE")]
        older_than: String,
    },
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the image of marqo-base.toml from its lock into an OCI image layout (no daemon).
    Build(BuildArgs),
    /// Resolve requirements.in files into pinned requirements.txt files (a pip-compile drop-in).
    Compile(Box<CompileArgs>),
    /// Debian system packages: resolve a suite per architecture, or unpack a root filesystem.
    Debian(DebianArgs),
    /// Resolve marqo-base.toml (Python and Debian, every platform) into marqo-base.lock.
    Lock(LockArgs),
    /// What the lock misses (online, read-only): newer Debian packages in the manifest's
    /// sources (security updates marked, with their CVE IDs) and newer Python versions the
    /// requirements allow. Exit 1 when there are updates (with --security: security
    /// updates), 0 when none.
    Outdated(OutdatedArgs),
    /// Log in to a registry: check the credentials with it, then store them as Docker does.
    Login(LoginArgs),
    /// Remove the stored credentials of a registry.
    Logout(LogoutArgs),
    /// Pull an image from a registry into an OCI image layout or a docker-archive.
    Pull(PullArgs),
    /// Push an image from an OCI image layout to a registry (shows the plan, then asks).
    Push(PushArgs),
    /// Signing keys: `key generate` writes a key pair that cosign and skopeo read.
    Key(KeyArgs),
    /// Check that an image (its index and each platform manifest) is signed by a key: exit 0
    /// when all are, 1 naming what is unsigned, signed by other keys, or signed for another
    /// image or repository.
    Verify(VerifyArgs),
    /// Print the dependency graph of each platform from the lock (no network).
    Tree(TreeArgs),
    /// Print every path from a requirement to a package, per platform, or why it is absent.
    Why(WhyArgs),
    /// What changed between two locks, per platform: packages and the image layers it changes.
    Diff(DiffArgs),
    /// What the cache holds, and removing all or part of it (safe while builds run: it waits).
    Cache(CacheArgs),
    /// Print a completion script for a shell (bash: `marqo-base completions bash >
    /// ~/.local/share/bash-completion/completions/marqo-base`).
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// The manifest.
    #[arg(long, default_value = "marqo-base.toml", value_name = "FILE")]
    pub manifest: PathBuf,
    /// The lock file [default: marqo-base.lock beside the manifest].
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    /// Exit 1 naming the inputs that changed if the lock is stale (offline, no resolution).
    #[arg(long)]
    pub check: bool,
    /// Re-resolve everything, ignoring the versions in the existing lock.
    #[arg(short = 'U', long)]
    pub upgrade: bool,
    /// Re-resolve one Python or Debian package (repeatable).
    #[arg(short = 'P', long = "upgrade-package", value_name = "NAME")]
    pub upgrade_package: Vec<String>,
    /// Ignore Python files uploaded after this date or time (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long, alias = "uploaded-prior-to", value_name = "DATE")]
    pub exclude_newer: Option<String>,
    /// Use only the cache.
    #[arg(long)]
    pub offline: bool,
    /// Revalidate every cached index page.
    #[arg(long)]
    pub refresh: bool,
    /// Take every Debian security update (a newer version of a locked package in a
    /// `-security` suite) and move nothing else, as unattended-upgrades would.
    #[arg(long, conflicts_with = "upgrade")]
    pub security: bool,
}

#[derive(Debug, Args)]
pub struct OutdatedArgs {
    /// The manifest.
    #[arg(long, default_value = "marqo-base.toml", value_name = "FILE")]
    pub manifest: PathBuf,
    /// The lock file [default: marqo-base.lock beside the manifest].
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    /// List only security updates, and exit 1 only for them (for a nightly CI job).
    #[arg(long)]
    pub security: bool,
    /// Read no changelog for CVE IDs (fetches no `.deb`).
    #[arg(long)]
    pub no_cves: bool,
    /// Leave out the Python pins (reads no Python index).
    #[arg(long)]
    pub no_python: bool,
    /// Use only the cache.
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The manifest.
    #[arg(long, default_value = "marqo-base.toml", value_name = "FILE")]
    pub manifest: PathBuf,
    /// The lock file [default: marqo-base.lock beside the manifest].
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    /// The OCI image layout directory to write (absent or empty).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "docker_archive",
        conflicts_with = "docker_archive"
    )]
    pub oci: Option<PathBuf>,
    /// Write a docker-archive tar (for `docker load`) of one platform instead, tagged
    /// `REPOSITORY:TAG` when the manifest names a repository.
    #[arg(long, value_name = "FILE")]
    pub docker_archive: Option<PathBuf>,
    /// Build only these platforms of the manifest (repeatable) [default: all of them].
    #[arg(long = "platform", value_name = "PLATFORM")]
    pub platforms: Vec<String>,
    /// The name the image index gets in the layout's index.json (the tag of a docker-archive).
    #[arg(long, default_value = "latest", value_name = "NAME")]
    pub tag: String,
    /// Use only the cache.
    #[arg(long)]
    pub offline: bool,
    /// Build every layer afresh instead of reusing layers built before (they are still stored).
    #[arg(long)]
    pub no_cache: bool,
    /// How layers are compressed: gzip (every runtime) or zstd (smaller and faster to unpack;
    /// containerd 1.5+, Docker 23+, podman).
    #[arg(long, default_value = "gzip", value_parser = ["gzip", "zstd"], value_name = "ALGORITHM")]
    pub compression: String,
    /// Also write each platform's software bill of materials into DIR, as OS-ARCH.spdx.json
    /// (or .cdx.json): every Debian package, Python distribution and [[file]] with its
    /// sha256, license and package URL (the image holds the SPDX one too, at
    /// /usr/share/marqo-base/sbom.spdx.json).
    #[arg(long, value_name = "DIR")]
    pub sbom: Option<PathBuf>,
    /// The format of --sbom: spdx (SPDX 2.3 JSON) or cyclonedx (CycloneDX 1.5 JSON).
    #[arg(long, default_value = "spdx", value_parser = ["spdx", "cyclonedx"], value_name = "FORMAT", requires = "sbom")]
    pub sbom_format: String,
    #[command(flatten)]
    pub layer_cache: LayerCacheArgs,
    #[command(flatten)]
    pub net: RegistryNetArgs,
}

/// The layer cache in a registry, shared by machines (docs/layer-cache.md).
#[derive(Debug, Args)]
pub struct LayerCacheArgs {
    /// A registry repository that holds built layers by their cache key: layers found there
    /// are not built (nor, when pushing to the same registry, downloaded) [default: the
    /// manifest's [cache] registry].
    #[arg(long = "cache", value_name = "HOST/REPOSITORY")]
    pub cache: Option<String>,
    /// Write the layers the cache lacks into it after a successful build or push (CI;
    /// readers need only pull rights).
    #[arg(long)]
    pub cache_write: bool,
}

#[derive(Debug, Args)]
pub struct CompileArgs {
    /// Requirement files to compile (pip's requirements format), or a project's
    /// pyproject.toml (its static [project] dependencies, as pip-compile reads them).
    #[arg(required = true, value_name = "SRC_FILE")]
    pub src_files: Vec<PathBuf>,
    /// Add this optional-dependencies group of a pyproject.toml input. Repeatable.
    #[arg(long = "extra", value_name = "EXTRA")]
    pub extras: Vec<String>,
    /// Add every optional-dependencies group of a pyproject.toml input.
    #[arg(long)]
    pub all_extras: bool,

    /// Target Python version, X.Y or X.Y.Z [default: the host's python3].
    #[arg(long, value_name = "VERSION")]
    pub python: Option<String>,
    /// Target platform, repeatable: linux/amd64, linux/arm64 [default: the host's].
    #[arg(long = "platform", value_name = "PLATFORM")]
    pub platforms: Vec<String>,
    /// The target's glibc: wheels tagged manylinux up to this level are accepted.
    #[arg(long, default_value = "2.28", value_name = "X.Y")]
    pub glibc: String,

    /// Output file. With several targets, a template: {arch}, {platform}, {python}
    /// (e.g. '{arch}-requirements.txt'), or one file with --universal.
    #[arg(short = 'o', long = "output-file", value_name = "FILE")]
    pub output_file: Option<String>,
    /// One output file for all targets, with environment markers where they differ.
    #[arg(long)]
    pub universal: bool,
    /// Exit 1 (and say what changed) if the output files are not what compile would write.
    #[arg(long)]
    pub check: bool,

    /// Keep extras in pins (by default they are stripped, as with pip-compile --strip-extras).
    #[arg(long)]
    pub no_strip_extras: bool,
    /// Accepted for pip-compile compatibility: stripping extras is the default.
    #[arg(long, hide = true)]
    pub strip_extras: bool,
    /// Do not write `# via` annotations.
    #[arg(long)]
    pub no_annotate: bool,
    /// Write `--hash` options for every file of each pinned version the target can install.
    #[arg(long)]
    pub generate_hashes: bool,

    /// Ignore files uploaded after this date or time (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long, alias = "uploaded-prior-to", value_name = "DATE")]
    pub exclude_newer: Option<String>,
    /// Re-resolve everything, ignoring the pins in the existing output.
    #[arg(short = 'U', long)]
    pub upgrade: bool,
    /// Re-resolve one package (NAME), or move it to a version (NAME==VERSION). Repeatable.
    #[arg(short = 'P', long = "upgrade-package", value_name = "NAME[==VERSION]")]
    pub upgrade_package: Vec<String>,
    /// Constraint files (pip's -c).
    #[arg(short = 'c', long = "constraint", value_name = "FILE")]
    pub constraints: Vec<PathBuf>,
    /// Constraints for the environments that build sdists (e.g. setuptools<70).
    #[arg(short = 'b', long = "build-constraint", value_name = "FILE")]
    pub build_constraints: Vec<PathBuf>,
    /// Allow pre-releases.
    #[arg(long)]
    pub pre: bool,
    /// Never build sdists: fail on a package that needs a build to tell its dependencies.
    #[arg(long)]
    pub no_build: bool,

    /// Base URL of the package index (as pip's --index-url; default: pip's configuration).
    #[arg(short = 'i', long, value_name = "URL")]
    pub index_url: Option<String>,
    /// More indexes, asked after --index-url (see --index-strategy). Repeatable.
    #[arg(long, value_name = "URL")]
    pub extra_index_url: Vec<String>,
    /// How a name on several indexes is served: first-index (the first index that has the
    /// name serves all its files), unsafe-first-match (versions of earlier indexes first),
    /// unsafe-best-match (all indexes merged, the best version wins: what pip does).
    #[arg(long, default_value = "first-index", value_name = "STRATEGY",
          value_parser = ["first-index", "unsafe-first-match", "unsafe-best-match"])]
    pub index_strategy: String,
    /// Directories or pages of distribution files (pip's --find-links). Repeatable.
    #[arg(short = 'f', long, value_name = "DIR")]
    pub find_links: Vec<String>,
    /// Ignore the package index (only --find-links).
    #[arg(long)]
    pub no_index: bool,
    /// CA bundle for TLS (as pip's --cert).
    #[arg(long, value_name = "PATH")]
    pub cert: Option<PathBuf>,
    /// Do not write the --index-url / --extra-index-url lines into the output.
    #[arg(long)]
    pub no_emit_index_url: bool,
    /// Do not write the --find-links lines into the output.
    #[arg(long)]
    pub no_emit_find_links: bool,

    /// Only wheels for these packages (comma-separated names, :all: or :none:). Repeatable.
    #[arg(long, value_name = "NAMES")]
    pub only_binary: Vec<String>,
    /// Only sdists for these packages (comma-separated names, :all: or :none:). Repeatable.
    #[arg(long, value_name = "NAMES")]
    pub no_binary: Vec<String>,
    /// Prefer an older version with a wheel over a newer one with only an sdist.
    #[arg(long)]
    pub prefer_binary: bool,
    /// A cutoff for one package instead of --exclude-newer: NAME=DATE, or NAME=false to use
    /// all of its files (for an index that publishes no upload times). Repeatable.
    #[arg(long, value_name = "NAME=DATE|false")]
    pub exclude_newer_package: Vec<String>,

    /// Use only the cache; fail if something is missing.
    #[arg(long)]
    pub offline: bool,
    /// Revalidate every cached index page.
    #[arg(long)]
    pub refresh: bool,
}

#[derive(Debug, Args)]
pub struct DebianArgs {
    #[command(subcommand)]
    pub command: DebianCommand,
}

#[derive(Debug, Subcommand)]
pub enum DebianCommand {
    /// Print the locked package set of each architecture: `name=version arch` lines, sorted.
    Resolve(DebianResolveArgs),
    /// Resolve, fetch (hash-checked) and unpack into a root filesystem, running nothing.
    Rootfs(DebianRootfsArgs),
}

/// What both `debian` commands read: the suite, where it comes from, and what to resolve.
#[derive(Debug, Args)]
pub struct DebianSetArgs {
    /// Debian suite or codename: bullseye, bookworm, trixie, ...
    #[arg(long, value_name = "SUITE")]
    pub suite: String,
    /// Target architecture, repeatable: amd64, arm64 (or linux/amd64, linux/arm64) [default: the host's].
    #[arg(long = "arch", value_name = "ARCH")]
    pub arches: Vec<String>,
    /// Archive root (the URL of the directory holding dists/ and pool/) [default: this host's apt sources].
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// OpenPGP keyring that must have signed the suite's InRelease (.gpg, .asc or a directory)
    /// [default: the apt source's Signed-By, else debian-archive-keyring].
    #[arg(long, value_name = "PATH")]
    pub keyring: Option<PathBuf>,
    /// Leave out what a minimal Debian needs (`Essential: yes`, `Priority: required`): only the
    /// packages named and their dependencies.
    #[arg(long)]
    pub no_essential: bool,
    /// Follow Recommends too (an unsatisfiable one is skipped, as apt does).
    #[arg(long)]
    pub recommends: bool,
    /// Use only the cache: the last verified InRelease, its Packages files and the .debs.
    #[arg(long)]
    pub offline: bool,
    /// Packages: names, name=version, or relations such as 'python3 (>= 3.9)' or 'a | b'.
    #[arg(required = true, value_name = "PKG")]
    pub packages: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DebianResolveArgs {
    #[command(flatten)]
    pub set: DebianSetArgs,
}

#[derive(Debug, Args)]
pub struct DebianRootfsArgs {
    #[command(flatten)]
    pub set: DebianSetArgs,
    /// The directory to write. With several --arch, a template with {arch} (e.g. 'rootfs-{arch}').
    #[arg(long, value_name = "DIR")]
    pub out: String,
    /// Replace the directory if it is not empty.
    #[arg(long)]
    pub force: bool,
}

/// How the registry commands reach a registry.
#[derive(Debug, Args)]
pub struct RegistryNetArgs {
    /// Allow plain HTTP when HTTPS fails (always allowed for 127.0.0.1, ::1 and localhost).
    #[arg(long, env = env_vars::EnvVars::MARQO_BASE_INSECURE)]
    pub insecure: bool,
    /// How many times a request that failed transiently (connection, 5xx) is tried again.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub retries: u32,
}

impl RegistryNetArgs {
    pub fn options(&self) -> ops::remote::NetOptions {
        ops::remote::NetOptions { insecure: self.insecure, retries: self.retries }
    }
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry: HOST or HOST:PORT (docker.io for Docker Hub).
    #[arg(value_name = "REGISTRY")]
    pub registry: String,
    /// The user name.
    #[arg(short, long, value_name = "NAME")]
    pub username: String,
    /// Read the password (or access token) from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub net: RegistryNetArgs,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry: HOST or HOST:PORT.
    #[arg(value_name = "REGISTRY")]
    pub registry: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Where to push: HOST[:PORT]/REPOSITORY[:TAG].
    #[arg(value_name = "REFERENCE")]
    pub reference: String,
    /// The OCI image layout to push (as `build --oci DIR` writes it).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["manifest", "index"])]
    pub oci: Option<PathBuf>,
    /// Build this manifest's lock (what no cache has) and push it, in one step.
    #[arg(long, value_name = "FILE", conflicts_with = "index")]
    pub manifest: Option<PathBuf>,
    /// With --manifest: the lock file [default: marqo-base.lock beside the manifest].
    #[arg(long, value_name = "FILE", requires = "manifest")]
    pub lock: Option<PathBuf>,
    /// With --manifest: only these platforms (repeatable) [default: all of the manifest's].
    #[arg(long = "platform", value_name = "PLATFORM", requires = "manifest")]
    pub platforms: Vec<String>,
    /// With --manifest: how layers are compressed.
    #[arg(long, default_value = "gzip", value_parser = ["gzip", "zstd"], value_name = "ALGORITHM")]
    pub compression: String,
    /// With --manifest: build every layer afresh instead of reusing layers built before.
    #[arg(long, requires = "manifest")]
    pub no_cache: bool,
    #[command(flatten)]
    pub layer_cache: LayerCacheArgs,
    /// Push the images by digest and set no tag: one platform's runner's half of a
    /// multi-platform release (then `push --index --from`); prints REPO@DIGEST per platform.
    #[arg(long, conflicts_with_all = ["tags", "index"])]
    pub by_digest: bool,
    /// Push one multi-platform index of the --from images (already in the repository, by
    /// digest), in the order given.
    #[arg(long, requires = "from")]
    pub index: bool,
    /// With --index: a platform image (or an index of some) as REPO@sha256:… (repeatable).
    #[arg(long, value_name = "REFERENCE", requires = "index")]
    pub from: Vec<String>,
    /// The image of the layout to push, by its name in index.json [default: its only one].
    #[arg(long = "ref", value_name = "NAME")]
    pub r#ref: Option<String>,
    /// A tag to set (repeatable); `next` is the highest integer tag of the repository plus one.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Push without asking for confirmation (needed when there is no terminal).
    #[arg(short, long)]
    pub yes: bool,
    /// Write what was pushed (tags, digests, sizes, lock fingerprint) to this JSON file.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Mount blobs that this repository of the same registry has instead of sending them
    /// (repeatable).
    #[arg(long, value_name = "REPOSITORY")]
    pub mount_from: Vec<String>,
    /// Blobs larger than this are sent in chunks of this size, resumable after a failure.
    #[arg(long, default_value = "16M", value_name = "SIZE")]
    pub chunk_size: String,
    /// Tags per page when listing the repository's tags for `--tag next` [default: the
    /// registry's].
    #[arg(long, value_name = "N")]
    pub tags_page_size: Option<u32>,
    /// Sign the index and each platform manifest with this private key (as `key generate`,
    /// cosign or skopeo wrote it; passphrase from MARQO_BASE_KEY_PASSWORD, else asked). The
    /// signatures are stored as cosign stores them (tag sha256-HEX.sig) before any tag is set.
    #[arg(long, value_name = "KEY")]
    pub sign: Option<PathBuf>,
    #[command(flatten)]
    pub net: RegistryNetArgs,
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write a new ECDSA P-256 key pair: PATH, the private key encrypted with a passphrase
    /// (MARQO_BASE_KEY_PASSWORD, else asked twice), mode 0600; PATH.pub, the public key.
    /// The format is cosign's and skopeo's (`ENCRYPTED SIGSTORE PRIVATE KEY`, `PUBLIC KEY`).
    Generate(KeyGenerateArgs),
}

#[derive(Debug, Args)]
pub struct KeyGenerateArgs {
    /// Where to write the private key; the public key goes to PATH.pub. Neither may exist.
    #[arg(long, value_name = "PATH")]
    pub key: PathBuf,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The image: HOST[:PORT]/REPOSITORY[:TAG][@DIGEST].
    #[arg(value_name = "REFERENCE")]
    pub reference: String,
    /// The public key (PEM `PUBLIC KEY`, such as the PATH.pub of `key generate`).
    #[arg(long, value_name = "PUB")]
    pub key: PathBuf,
    #[command(flatten)]
    pub net: RegistryNetArgs,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// What to pull: HOST[:PORT]/REPOSITORY[:TAG][@DIGEST].
    #[arg(value_name = "REFERENCE")]
    pub reference: String,
    /// Write an OCI image layout into this new (or empty) directory.
    #[arg(long, value_name = "DIR", conflicts_with = "docker_archive")]
    pub oci: Option<PathBuf>,
    /// Write a docker-archive tar (for `docker load`) of one platform.
    #[arg(long, value_name = "FILE")]
    pub docker_archive: Option<PathBuf>,
    /// The platforms to pull (repeatable) [default: all for --oci, this machine's for
    /// --docker-archive].
    #[arg(long = "platform", value_name = "PLATFORM")]
    pub platforms: Vec<String>,
    /// Also fetch the SBOM attached to each platform's image (OCI referrers, or the
    /// `sha256-DIGEST` tag) into DIR as OS-ARCH.spdx.json (or .cdx.json); an image without one
    /// is an error, found before anything is downloaded.
    #[arg(long, value_name = "DIR")]
    pub sbom: Option<PathBuf>,
    #[command(flatten)]
    pub net: RegistryNetArgs,
}
