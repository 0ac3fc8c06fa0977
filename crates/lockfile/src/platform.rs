//! The platforms an image is built for, as the OCI image index names them.

use std::fmt;
use std::str::FromStr;

use pep_types::Arch;

/// `linux/amd64` or `linux/arm64`: ordered amd64 first, the order of the lock's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetPlatform(Arch);

impl TargetPlatform {
    /// `linux/amd64`.
    pub const AMD64: TargetPlatform = TargetPlatform(Arch::Amd64);
    /// `linux/arm64`.
    pub const ARM64: TargetPlatform = TargetPlatform(Arch::Arm64);
    /// Every platform we build for.
    pub const ALL: [TargetPlatform; 2] = [TargetPlatform::AMD64, TargetPlatform::ARM64];

    /// The platform of an architecture.
    pub fn new(arch: Arch) -> TargetPlatform {
        TargetPlatform(arch)
    }

    /// The CPU architecture (`amd64` for Debian and OCI, `x86_64` for wheel tags).
    pub fn arch(self) -> Arch {
        self.0
    }

    /// `linux/amd64`.
    pub fn as_str(self) -> &'static str {
        match self.0 {
            Arch::Amd64 => "linux/amd64",
            Arch::Arm64 => "linux/arm64",
        }
    }
}

impl fmt::Display for TargetPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A platform name we do not build for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown platform `{given}`\nhint: {hint}")]
pub struct PlatformError {
    /// What was written.
    pub given: String,
    /// The valid names, or the one that was probably meant.
    pub hint: String,
}

impl FromStr for TargetPlatform {
    type Err = PlatformError;

    /// Accepts `linux/amd64`, `linux/arm64` and `linux/arm64/v8`; a bare architecture
    /// (`amd64`, `aarch64`) is refused with a hint naming the full platform.
    fn from_str(s: &str) -> Result<TargetPlatform, PlatformError> {
        match s {
            "linux/amd64" => Ok(TargetPlatform::AMD64),
            "linux/arm64" | "linux/arm64/v8" => Ok(TargetPlatform::ARM64),
            _ => {
                let all: Vec<&str> = TargetPlatform::ALL.iter().map(|p| p.as_str()).collect();
                let hint = match Arch::from_str(s.trim()) {
                    Ok(arch) => format!("did you mean `{}`?", TargetPlatform(arch)),
                    Err(_) => format!("valid platforms: {}", all.join(", ")),
                };
                Err(PlatformError { given: s.to_string(), hint })
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for TargetPlatform {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TargetPlatform, D::Error> {
        crate::de::leaf(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!("linux/arm64/v8".parse::<TargetPlatform>(), Ok(TargetPlatform::ARM64));
        assert_eq!(TargetPlatform::AMD64.to_string(), "linux/amd64");
        let err = "x86_64".parse::<TargetPlatform>().unwrap_err();
        assert_eq!(err.hint, "did you mean `linux/amd64`?");
        let err = "linux/riscv64".parse::<TargetPlatform>().unwrap_err();
        assert_eq!(err.hint, "valid platforms: linux/amd64, linux/arm64");
        assert!(TargetPlatform::AMD64 < TargetPlatform::ARM64);
    }
}
