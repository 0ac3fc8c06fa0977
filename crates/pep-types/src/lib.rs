//! The Python packaging vocabulary: versions (PEP 440), requirements and markers (PEP 508),
//! distribution file names, wheel tags, and the target environments we resolve for.
//!
//! Versions and requirements come from `pep440_rs` / `pep508_rs`; this crate adds what those
//! do not cover and re-exports the rest so the other crates name one place.

mod filename;
mod requirement;
pub mod requirements_txt;
mod specifiers;
mod target;

pub use filename::{DistFilename, FilenameError, SdistFilename, WheelFilename};
pub use requirement::{parse_requirement, RequirementError, MAX_NESTING};
pub use specifiers::{
    after_locals, names_prerelease, pinned_version, specifier_range, specifiers_range, POST_DEV_HOLES,
};
pub use target::{Arch, Target, TargetError};

pub use pep440_rs::{Operator, Version, VersionSpecifier, VersionSpecifiers};
pub use pep508_rs::{ExtraName, MarkerEnvironment, MarkerTree, PackageName, Requirement, VersionOrUrl};

/// The requirement type used everywhere: PEP 508 with plain URLs.
pub type Req = pep508_rs::Requirement<url::Url>;
