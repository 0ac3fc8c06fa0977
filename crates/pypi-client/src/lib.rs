//! The Python package index side of marqo-base: index configuration as pip reads it, the
//! simple repository API (PEP 503 HTML, PEP 691 JSON), wheel metadata without downloading
//! wheels (PEP 658, zip range requests), and sdists.

mod client;
pub mod config;
mod error;
mod html;
pub mod metadata;
pub mod sdist;
pub mod simple;
mod wheel;
mod zygote;

/// Ends the fork servers that metadata builds started (see `sdist`).
pub use zygote::shutdown as shutdown_build_servers;

pub use client::{IndexStrategy, PypiClient, PypiClientOptions, MAX_INDEX_PAGE, MAX_METADATA_FILE};
pub use config::{ConfigError, IndexArgs, IndexConfig, PipEnvironment};
pub use error::Error;
pub use simple::{DistFile, PageContext, ParseError, ProjectPage, WheelFilter};
#[doc(hidden)]
pub use wheel::fuzz_zip;
