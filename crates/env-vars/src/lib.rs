//! Every environment variable marqo-base reads (or sets for the processes it starts), in one
//! place, each with what it does. Code names them through [`EnvVars`] rather than string
//! literals, so `grep EnvVars::` finds every reader.

/// The names of the environment variables marqo-base uses.
pub struct EnvVars;

impl EnvVars {
    /// The cache directory (default `$XDG_CACHE_HOME/marqo-base`, else
    /// `~/.cache/marqo-base`): index pages, metadata, downloads, built layers.
    pub const MARQO_BASE_CACHE_DIR: &'static str = "MARQO_BASE_CACHE_DIR";
    /// `1`: registries may be reached over plain HTTP when HTTPS fails (`--insecure`).
    pub const MARQO_BASE_INSECURE: &'static str = "MARQO_BASE_INSECURE";
    /// The passphrase of the private key (`key generate`, `push --sign`); when unset it is
    /// asked for on the terminal. Never printed or logged.
    pub const MARQO_BASE_KEY_PASSWORD: &'static str = "MARQO_BASE_KEY_PASSWORD";
    /// Tests only: `1` skips the tests that need the live package index or Debian mirror.
    pub const MARQO_BASE_SKIP_LIVE: &'static str = "MARQO_BASE_SKIP_LIVE";
    /// Tests only: `1` runs the multi-GB flagship image test.
    pub const MARQO_BASE_FLAGSHIP: &'static str = "MARQO_BASE_FLAGSHIP";

    /// The XDG cache directory, under which the cache lives by default.
    pub const XDG_CACHE_HOME: &'static str = "XDG_CACHE_HOME";
    /// The XDG config directory, where pip's user config file is looked for.
    pub const XDG_CONFIG_HOME: &'static str = "XDG_CONFIG_HOME";
    /// The XDG system config directories, where pip's site-wide config files are looked for.
    pub const XDG_CONFIG_DIRS: &'static str = "XDG_CONFIG_DIRS";
    /// The home directory: the cache, pip's and Docker's config files default under it.
    pub const HOME: &'static str = "HOME";
    /// The directories searched for programs (python3, cross compilers, credential helpers).
    pub const PATH: &'static str = "PATH";

    /// A PEM bundle that replaces the system's trusted roots for every HTTPS connection.
    pub const SSL_CERT_FILE: &'static str = "SSL_CERT_FILE";
    /// The directory of Docker's `config.json` (credentials, helpers).
    pub const DOCKER_CONFIG: &'static str = "DOCKER_CONFIG";

    /// pip's own config file (`/dev/null` for none); every `PIP_<OPTION>` is read as pip
    /// reads it (`PIP_INDEX_URL`, `PIP_EXTRA_INDEX_URL`, `PIP_FIND_LINKS`, `PIP_CERT`, ...).
    pub const PIP_CONFIG_FILE: &'static str = "PIP_CONFIG_FILE";
    /// The prefix of pip's option variables.
    pub const PIP_PREFIX: &'static str = "PIP_";
    /// Set for the pip that installs build requirements: the build constraints.
    pub const PIP_CONSTRAINT: &'static str = "PIP_CONSTRAINT";

    /// The mtime of every file in built layers (default 0), for reproducible builds.
    pub const SOURCE_DATE_EPOCH: &'static str = "SOURCE_DATE_EPOCH";
    /// Set: no colour in output.
    pub const NO_COLOR: &'static str = "NO_COLOR";
    /// `tracing` filter directives that override `-v`/`-q` (e.g. `RUST_LOG=debug`).
    pub const RUST_LOG: &'static str = "RUST_LOG";
}
