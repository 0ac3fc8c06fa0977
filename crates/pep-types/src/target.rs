//! Target environments: a CPU architecture, a CPython version and a glibc level. A target
//! stands in for the interpreter we never run: it answers marker questions and says which
//! wheels it can install.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use pep440_rs::Version;
use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder};

use crate::WheelFilename;

type TagRanks = HashMap<String, HashMap<String, HashMap<String, u32>>>;

/// A bad `--platform`, `--python` or `--glibc` value.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("unknown platform `{0}`; expected linux/amd64 or linux/arm64")]
    Platform(String),
    #[error("bad Python version `{0}`; expected X.Y or X.Y.Z, for example 3.9")]
    Python(String),
    #[error("Python `{0}` is not supported: only CPython 3 can be targeted (3.X or 3.X.Y, for example 3.9)")]
    UnsupportedPython(String),
    #[error("bad glibc version `{0}`; expected X.Y, for example 2.28")]
    Glibc(String),
}

/// A CPU architecture we build for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    /// The Docker/Debian name: `amd64`, `arm64`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// `platform_machine` and the wheel tag suffix: `x86_64`, `aarch64`.
    pub fn machine(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64",
            Arch::Arm64 => "aarch64",
        }
    }

    /// The architecture of this machine, if it is one we know.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::Amd64),
            "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }
}

impl FromStr for Arch {
    type Err = TargetError;

    /// Accepts `linux/amd64`, `amd64`, `x86_64`, `linux/arm64`, `arm64`, `aarch64`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix("linux/").unwrap_or(s) {
            "amd64" | "x86_64" => Ok(Arch::Amd64),
            "arm64" | "aarch64" | "arm64/v8" => Ok(Arch::Arm64),
            _ => Err(TargetError::Platform(s.to_string())),
        }
    }
}

/// One environment to resolve for.
#[derive(Debug, Clone)]
pub struct Target {
    pub arch: Arch,
    /// `X.Y.Z`; `X.Y` is taken as `X.Y.0`.
    pub python: Version,
    /// `(major, minor)` of the target's glibc: the highest `manylinux_X_Y` accepted.
    pub glibc: (u32, u32),
    markers: MarkerEnvironment,
    /// python tag -> abi tag -> platform tag -> rank: looked up with borrowed strings, so
    /// ranking a wheel allocates nothing.
    tag_ranks: TagRanks,
}

impl Target {
    pub fn new(arch: Arch, python: &str, glibc: &str) -> Result<Target, TargetError> {
        let parts: Vec<u32> = python
            .split('.')
            .map(|p| p.parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| TargetError::Python(python.to_string()))?;
        let (major, minor, patch) = match parts.as_slice() {
            [3, minor] => (3, *minor, 0),
            [3, minor, patch] => (3, *minor, *patch),
            [_, _] | [_, _, _] => return Err(TargetError::UnsupportedPython(python.to_string())),
            _ => return Err(TargetError::Python(python.to_string())),
        };
        let (gmaj, gmin) = glibc
            .split_once('.')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .filter(|&(a, _)| a == 2)
            .ok_or_else(|| TargetError::Glibc(glibc.to_string()))?;
        let full = format!("{major}.{minor}.{patch}");
        let short = format!("{major}.{minor}");
        let markers = MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: &full,
            os_name: "posix",
            platform_machine: arch.machine(),
            platform_python_implementation: "CPython",
            platform_release: "",
            platform_system: "Linux",
            platform_version: "",
            python_full_version: &full,
            python_version: &short,
            sys_platform: "linux",
        })
        .map_err(|_| TargetError::Python(python.to_string()))?;
        let mut target = Target {
            arch,
            python: Version::from_str(&full).map_err(|_| TargetError::Python(python.into()))?,
            glibc: (gmaj, gmin),
            markers,
            tag_ranks: HashMap::new(),
        };
        target.tag_ranks = target.compute_tag_ranks(minor);
        Ok(target)
    }

    /// `linux/amd64`.
    pub fn platform(&self) -> String {
        format!("linux/{}", self.arch.name())
    }

    /// `3.9`.
    pub fn python_short(&self) -> String {
        let r = self.python.release();
        format!("{}.{}", r[0], r.get(1).copied().unwrap_or(0))
    }

    /// The marker environment this target's interpreter would report.
    pub fn markers(&self) -> &MarkerEnvironment {
        &self.markers
    }

    /// How well a wheel fits this target: `None` if it cannot be installed, else a rank where
    /// lower is better (the order pip's `packaging.tags.sys_tags()` would give).
    pub fn wheel_rank(&self, wheel: &WheelFilename) -> Option<u32> {
        let mut best: Option<u32> = None;
        for abis in wheel.python.iter().filter_map(|py| self.tag_ranks.get(py.as_str())) {
            for plats in wheel.abi.iter().filter_map(|abi| abis.get(abi.as_str())) {
                for &rank in wheel.platform.iter().filter_map(|plat| plats.get(plat.as_str())) {
                    best = Some(best.map_or(rank, |b| b.min(rank)));
                }
            }
        }
        best
    }

    /// Platform tags this target accepts, most specific first: `manylinux_2_X` from the
    /// target's glibc down (with the legacy aliases), then plain `linux_<arch>` last, as pip's
    /// `packaging.tags` orders them on any Linux machine. `linux_*` wheels are what PyTorch's
    /// CUDA indexes publish; a manylinux wheel of the same version still wins.
    fn platform_tags(&self) -> Vec<String> {
        let m = self.arch.machine();
        let (_, max_minor) = self.glibc;
        // x86_64 manylinux goes back to glibc 2.5; aarch64 starts at 2.17.
        let min_minor = match self.arch {
            Arch::Amd64 => 5,
            Arch::Arm64 => 17,
        };
        let mut tags = Vec::new();
        for minor in (min_minor..=max_minor).rev() {
            tags.push(format!("manylinux_2_{minor}_{m}"));
            let legacy = match minor {
                17 => Some("manylinux2014"),
                12 => Some("manylinux2010"),
                5 => Some("manylinux1"),
                _ => None,
            };
            if let Some(legacy) = legacy {
                tags.push(format!("{legacy}_{m}"));
            }
        }
        tags.push(format!("linux_{m}"));
        tags
    }

    fn compute_tag_ranks(&self, minor: u32) -> TagRanks {
        let plats = self.platform_tags();
        let cp = format!("cp3{minor}");
        let mut order: Vec<String> = Vec::new();
        // CPython-specific: cp3X-cp3X, cp3X-abi3, cp3X-none, then older abi3 wheels.
        for abi in [cp.as_str(), "abi3", "none"] {
            for p in &plats {
                order.push(format!("{cp}-{abi}-{p}"));
            }
        }
        for older in (2..minor).rev() {
            for p in &plats {
                order.push(format!("cp3{older}-abi3-{p}"));
            }
        }
        // Generic Python on this platform.
        let mut generic = vec![format!("py3{minor}"), "py3".to_string()];
        generic.extend((0..minor).rev().map(|m| format!("py3{m}")));
        for py in &generic {
            for p in &plats {
                order.push(format!("{py}-none-{p}"));
            }
        }
        // Pure Python.
        order.push(format!("{cp}-none-any"));
        for py in &generic {
            order.push(format!("{py}-none-any"));
        }
        let mut ranks = TagRanks::new();
        for (i, tag) in order.iter().enumerate() {
            let mut parts = tag.splitn(3, '-');
            let (Some(py), Some(abi), Some(plat)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            ranks
                .entry(py.to_string())
                .or_default()
                .entry(abi.to_string())
                .or_default()
                .entry(plat.to_string())
                .or_insert(i as u32);
        }
        ranks
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (Python {})", self.platform(), self.python_short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rank(t: &Target, name: &str) -> Option<u32> {
        t.wheel_rank(&name.parse().unwrap())
    }

    #[test]
    fn tags_follow_the_target_not_the_host() {
        let arm = Target::new(Arch::Arm64, "3.9", "2.28").unwrap();
        let amd = Target::new(Arch::Amd64, "3.9", "2.28").unwrap();
        let torch_arm = "torch-1.13.1-cp39-cp39-manylinux2014_aarch64.whl";
        let torch_amd = "torch-1.13.1-cp39-cp39-manylinux1_x86_64.whl";
        assert!(rank(&arm, torch_arm).is_some());
        assert!(rank(&arm, torch_amd).is_none());
        assert!(rank(&amd, torch_amd).is_some());
        assert!(rank(&amd, "x-1-cp310-cp310-manylinux1_x86_64.whl").is_none());
        assert!(rank(&amd, "x-1-cp39-cp39-manylinux_2_31_x86_64.whl").is_none());
        assert!(rank(&amd, "x-1-cp39-cp39-manylinux_2_28_x86_64.whl").is_some());
        assert!(rank(&amd, "x-1-cp39-cp39-musllinux_1_1_x86_64.whl").is_none());
        // linux_<arch> (PyTorch's CUDA wheels) is accepted for its own architecture only,
        // after every manylinux tag of the same interpreter and ABI.
        let linux = rank(&amd, "torch-1.13.1+cu116-cp39-cp39-linux_x86_64.whl").unwrap();
        assert!(rank(&arm, "torch-1.13.1+cu116-cp39-cp39-linux_x86_64.whl").is_none());
        assert!(rank(&arm, "x-1-cp39-cp39-linux_aarch64.whl").is_some());
        assert!(rank(&amd, "x-1-cp39-cp39-manylinux1_x86_64.whl").unwrap() < linux);
        assert!(rank(&amd, "x-1-cp39-cp39-manylinux_2_28_x86_64.whl").unwrap() < linux);
        assert!(linux < rank(&amd, "x-1-cp39-abi3-manylinux1_x86_64.whl").unwrap());
        // Specific beats abi3 beats pure.
        let specific = rank(&amd, "x-1-cp39-cp39-manylinux2014_x86_64.whl").unwrap();
        let abi3 = rank(&amd, "x-1-cp37-abi3-manylinux2014_x86_64.whl").unwrap();
        let pure = rank(&amd, "x-1-py3-none-any.whl").unwrap();
        assert!(specific < abi3 && abi3 < pure);
        assert!(rank(&amd, "x-1-py2.py3-none-any.whl").is_some());
        assert!(rank(&amd, "x-1-py2-none-any.whl").is_none());
    }

    #[test]
    fn markers_describe_the_target() {
        let arm = Target::new(Arch::Arm64, "3.9", "2.28").unwrap();
        let m = pep508_rs::MarkerTree::from_str("platform_machine == 'aarch64' and python_version < '3.10'")
            .unwrap();
        assert!(m.evaluate(arm.markers(), &[]));
        let amd = Target::new(Arch::Amd64, "3.11.2", "2.28").unwrap();
        assert!(!m.evaluate(amd.markers(), &[]));
        assert!(Target::new(Arch::Amd64, "3", "2.28").is_err());
        assert!(Target::new(Arch::Amd64, "3.9", "228").is_err());
        assert_eq!("linux/arm64".parse::<Arch>().unwrap(), Arch::Arm64);
        assert!("linux/riscv64".parse::<Arch>().is_err());
    }
}
