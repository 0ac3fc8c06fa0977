//! Resolving Python requirements for several target environments, and writing the result
//! in pip-compile's format.
//!
//! - [`requirements`]: the pip requirements file format (input and output).
//! - [`source`]: memoised, prefetching access to the indexes.
//! - [`candidates`]: which versions and files a target can install.
//! - `provider`: the PubGrub dependency provider for one target.
//! - [`resolve`]: one solver run per target, in parallel.
//! - [`output`]: per-platform and universal requirements.txt writers.

pub mod candidates;
pub mod format;
pub mod output;
mod prefetch;
mod provider;
mod pyproject;
mod report;
pub mod requirements;
pub mod resolve;
pub mod source;

pub use format::FormatControl;
pub use output::{render_target, render_universal, OutputOptions};
pub use provider::{Pkg, ProviderError};
pub use pyproject::ExtraSelection;
pub use requirements::{Entry, Origin, RequirementSet, RequirementsError};
pub use resolve::{resolve_all, Resolution, ResolveError, ResolveOptions, Resolved};
pub use source::{IndexSource, Progress, SourceError};
