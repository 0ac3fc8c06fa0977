//! Debian packages for an image, without running anything: read a suite's signed index,
//! resolve a package set for one architecture, lock it, fetch the `.deb`s hash-checked,
//! and unpack them with what their maintainer scripts would have done, declaratively.
//!
//! - [`deb822`]: the control-file syntax of `Packages`, `Release`, `status`, `.sources`.
//! - [`version`]: dpkg version ordering.
//! - [`relation`]: `Depends`-style relationship fields.
//! - [`index`]: the `Packages` index of one architecture.
//! - [`source`]: mirror, suite and keyring, from the manifest or this host's apt sources.
//! - [`release`]: `InRelease` signature checks and the hashes it lists.
//! - [`resolve`](mod@resolve): choosing the package set of one architecture.
//! - [`compress`]: `.gz`, `.xz`, `.zst` decoders.
//! - [`remote`]: fetching the verified index and the `.deb`s through [`fetch`].
//! - [`deb`]: reading a `.deb`, streaming its data entries (for layer writers).
//! - [`changelog`]: `changelog.Debian` entries and the CVE IDs they name.
//! - [`unpack`](mod@unpack): writing packages into a root directory safely.
//! - [`owners`]: the owner and mode dpkg would give each path, recorded beside the tree.
//! - [`configure`](mod@configure): what maintainer scripts would do, declaratively.
//! - [`certs`]: PEM and X.509 as the CA tools see them; the manifest's own certificates.
//! - [`jks`]: Java truststores (JKS), as ca-certificates-java writes them.
//! - [`ldcache`]: `/etc/ld.so.cache` as `ldconfig` writes it.
//! - [`scripts`]: what `preinst` and `postinst` scripts do, against what configuration did.
//!
//! ```no_run
//! # async fn example() -> Result<(), debian::Error> {
//! use debian::{fetch_debs, fetch_index, resolve, unpack, ResolveOptions, DebSource};
//! let client = fetch::Client::new(fetch::ClientOptions::default()).expect("client");
//! let cache = fetch::Cache::from_env().expect("cache");
//! let source = DebSource::from_host_apt(Some("bullseye"))?;
//! let index = fetch_index(&client, &cache, &source, "arm64").await?;
//! let opts = ResolveOptions { essential: true, ..Default::default() };
//! let locked = resolve(&index, &["python3.9".to_string()], &opts)?;
//! let paths = fetch_debs(&client, &cache, std::slice::from_ref(&source), &locked).await?;
//! let debs: Vec<_> = locked.into_iter().zip(paths).collect();
//! unpack(&debs, std::path::Path::new("rootfs"))?;
//! # Ok(()) }
//! ```

pub mod certs;
pub mod changelog;
pub mod compress;
pub mod configure;
pub mod deb;
pub mod deb822;
mod error;
mod fresh;
pub mod index;
pub mod jks;
pub mod ldcache;
pub mod owners;
pub mod relation;
pub mod release;
pub mod remote;
pub mod resolve;
pub mod scripts;
mod sha1;
pub mod source;
pub mod unpack;
pub mod version;

pub use certs::LocalCertificate;
pub use configure::{configure, ConfigureOptions, Generated, InstalledPackage};
pub use deb::{DataEntry, Deb, EntryKind};
pub use error::{Error, Unsatisfiable};
pub use index::{is_security_suite, Index, MultiArch, Origin, Package, PackageId, Priority, RelationField};
pub use owners::{Owners, Stat};
pub use relation::{ArchQualifier, Dependency, Op, Relation};
pub use remote::{
    fetch_debs, fetch_index, fetch_index_with, fetch_packages, fetch_release, read_index,
    read_index_blocking, source_of, PackagesFile,
};
pub use resolve::{
    resolve, resolve_explained, set_relations, split_target, LockedDeb, ResolveOptions, SetRelations, Why,
};
pub use scripts::{Outcome, ScriptAction, ScriptReport};
pub use source::DebSource;
pub use unpack::{merged_usr_links, merged_usr_path, unpack, unpack_with, wants_merged_usr, Unpacked};
pub use version::{compare_versions, Version};
