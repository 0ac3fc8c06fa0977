//! Reproducible images: layers, and layers + settings assembled into OCI documents.
//!
//! - [`LayerWriter`]: one layer as a deterministic tar stream (sorted entries, fixed owners,
//!   modes and mtime), compressed while both digests are computed, streamed through files.
//! - [`Compression`]: gzip or zstd, compressed in fixed-size blocks on several threads with
//!   the same bytes whatever the number of threads or the machine.
//! - [`install_wheel`]: a wheel installed into a layer as pip would (scheme mapping, `.data`
//!   directories, script shebangs, console scripts, `RECORD`, `INSTALLER`, `REQUESTED`),
//!   verifying every file against the wheel's `RECORD`, byte-compiled by a [`Bytecompiler`]
//!   (which runs the interpreter; this crate runs nothing).
//! - [`plan_layers`]: which artifacts share a layer, stable across runs and machines.
//! - [`assemble`]: built layers, an [`ImageSpec`] and an optional [`Base`] into an [`Image`]
//!   (configuration and manifest, [`Image::write_to`] an `oci` layout); [`write_index`] for
//!   the platforms' manifests.
//! - [`check_foreign_layer`]: a layer this tool did not write (a registry-cache entry's)
//!   refused unless it holds only what [`LayerWriter`] writes.

mod assemble;
mod compress;
mod foreign;
mod layer;
mod plan;
mod wheel;

pub use assemble::{
    assemble, write_index, Base, Image, ImageLayer, ImageSpec, DEFAULT_PATH, FINGERPRINT_LABEL,
};
pub use compress::{
    compression_of, default_threads, read_layer_member, uncompressed_digest, Compression, BLOCK_SIZE,
    GZIP_LEVEL, ZSTD_LEVEL,
};
pub use foreign::{check_foreign_layer, check_tar, ForeignLayerError};
pub use layer::{LayerError, LayerInfo, LayerOptions, LayerWriter};
pub use plan::plan_layers;
#[doc(hidden)]
pub use wheel::fuzz_wheel_texts;
pub use wheel::{
    cache_path, install_wheel, record_hash, Bytecompiler, Compiled, DirSink, InstallOptions, InstallSink,
    InstalledWheel, PySource, Scheme, WheelError, INSTALLER,
};
