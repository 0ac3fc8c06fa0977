//! Reproducible image layers.
//!
//! - [`LayerWriter`]: one layer as a deterministic tar stream (sorted entries, fixed owners,
//!   modes and mtime), gzip-compressed while both digests are computed, streamed through files.
//! - [`install_wheel`]: a wheel installed into a layer as pip would (scheme mapping, `.data`
//!   directories, script shebangs, console scripts, `RECORD`, `INSTALLER`, `REQUESTED`),
//!   verifying every file against the wheel's `RECORD`.
//! - [`plan_layers`]: which artifacts share a layer, stable across runs and machines.

mod layer;
mod plan;
mod wheel;

pub use layer::{LayerError, LayerInfo, LayerOptions, LayerWriter, GZIP_LEVEL};
pub use plan::plan_layers;
pub use wheel::{install_wheel, record_hash, InstallOptions, InstalledWheel, Scheme, WheelError, INSTALLER};
