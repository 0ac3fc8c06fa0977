//! Distribution file names: wheels (`name-ver(-build)?-py-abi-plat.whl`) and sdists.

use std::fmt;
use std::str::FromStr;

use pep440_rs::Version;
use pep508_rs::PackageName;

/// A file name that is not a wheel or sdist we understand.
#[derive(Debug, thiserror::Error)]
#[error("`{filename}` is not a valid distribution file name: {reason}")]
pub struct FilenameError {
    pub filename: String,
    pub reason: String,
}

fn err(filename: &str, reason: impl Into<String>) -> FilenameError {
    FilenameError { filename: filename.to_string(), reason: reason.into() }
}

/// A parsed wheel file name (PEP 427 / binary distribution format).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WheelFilename {
    pub name: PackageName,
    pub version: Version,
    /// The optional build tag, kept as written (it only orders otherwise equal wheels).
    pub build: Option<String>,
    /// Python tags (`cp39`, `py3`), split on `.` (compressed tag sets).
    pub python: Vec<String>,
    /// ABI tags (`cp39`, `abi3`, `none`).
    pub abi: Vec<String>,
    /// Platform tags (`manylinux_2_17_x86_64`, `manylinux2014_aarch64`, `any`).
    pub platform: Vec<String>,
}

impl FromStr for WheelFilename {
    type Err = FilenameError;

    fn from_str(filename: &str) -> Result<Self, Self::Err> {
        let stem = filename.strip_suffix(".whl").ok_or_else(|| err(filename, "it does not end in .whl"))?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, build, py, abi, plat) = match parts.as_slice() {
            [n, v, py, abi, plat] => (*n, *v, None, *py, *abi, *plat),
            [n, v, b, py, abi, plat] => (*n, *v, Some(b.to_string()), *py, *abi, *plat),
            _ => return Err(err(filename, "a wheel name has 5 or 6 dash-separated parts")),
        };
        let name = PackageName::from_str(name).map_err(|e| err(filename, e.to_string()))?;
        let version = Version::from_str(version).map_err(|e| err(filename, e.to_string()))?;
        let split = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        Ok(WheelFilename { name, version, build, python: split(py), abi: split(abi), platform: split(plat) })
    }
}

impl fmt::Display for WheelFilename {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.name.as_dist_info_name(), self.version)?;
        if let Some(build) = &self.build {
            write!(f, "-{build}")?;
        }
        write!(f, "-{}-{}-{}.whl", self.python.join("."), self.abi.join("."), self.platform.join("."))
    }
}

/// A source distribution file name: `name-version.tar.gz` (or `.zip`, `.tar.bz2`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SdistFilename {
    pub name: PackageName,
    pub version: Version,
    /// The archive extension, e.g. `.tar.gz`.
    pub extension: &'static str,
}

const SDIST_EXTENSIONS: [&str; 5] = [".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar.xz"];

impl SdistFilename {
    /// Parses an sdist name for a known project. The name part of an sdist is ambiguous
    /// (both name and version may hold dashes), so the project name from the index is needed.
    pub fn parse(filename: &str, project: &PackageName) -> Result<Self, FilenameError> {
        let (stem, extension) = SDIST_EXTENSIONS
            .iter()
            .find_map(|ext| filename.strip_suffix(ext).map(|stem| (stem, *ext)))
            .ok_or_else(|| err(filename, "it is not a .tar.gz, .zip, .tar.bz2 or .tar.xz archive"))?;
        // Try every dash as the separator: the first whose left side normalises to the
        // project name wins.
        for (i, _) in stem.match_indices('-') {
            let (name, version) = (&stem[..i], &stem[i + 1..]);
            if PackageName::from_str(name).is_ok_and(|n| &n == project) {
                let version = Version::from_str(version).map_err(|e| err(filename, e.to_string()))?;
                return Ok(SdistFilename { name: project.clone(), version, extension });
            }
        }
        Err(err(filename, format!("it does not start with the project name `{project}`")))
    }
}

/// Either kind of distribution file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DistFilename {
    Wheel(WheelFilename),
    Sdist(SdistFilename),
}

impl DistFilename {
    /// Parses a file listed on `project`'s index page; `None` for files that are neither a
    /// wheel nor an sdist (eggs, `.exe` installers, ...), which pip ignores too.
    pub fn parse(filename: &str, project: &PackageName) -> Option<Result<Self, FilenameError>> {
        if filename.ends_with(".whl") {
            Some(filename.parse().map(DistFilename::Wheel))
        } else if SDIST_EXTENSIONS.iter().any(|ext| filename.ends_with(ext)) {
            Some(SdistFilename::parse(filename, project).map(DistFilename::Sdist))
        } else {
            None
        }
    }

    pub fn version(&self) -> &Version {
        match self {
            DistFilename::Wheel(w) => &w.version,
            DistFilename::Sdist(s) => &s.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_names() {
        let w: WheelFilename = "torch-1.13.1-cp39-cp39-manylinux2014_aarch64.whl".parse().unwrap();
        assert_eq!(w.name.as_ref(), "torch");
        assert_eq!(w.version.to_string(), "1.13.1");
        assert_eq!(w.platform, ["manylinux2014_aarch64"]);
        let w: WheelFilename =
            "numpy-1.23.4-1-cp39-cp39.cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl".parse().unwrap();
        assert_eq!(w.build.as_deref(), Some("1"));
        assert_eq!(w.abi, ["cp39", "cp310"]);
        assert_eq!(w.platform.len(), 2);
        assert!("foo-1.0.whl".parse::<WheelFilename>().is_err());
        assert!("foo-notaversion-py3-none-any.whl".parse::<WheelFilename>().is_err());
    }

    #[test]
    fn sdist_names() {
        let p = PackageName::from_str("clip-marqo").unwrap();
        let s = SdistFilename::parse("clip-marqo-1.0.2.tar.gz", &p).unwrap();
        assert_eq!(s.version.to_string(), "1.0.2");
        let s = SdistFilename::parse("clip_marqo-1.0.2.zip", &p).unwrap();
        assert_eq!(s.extension, ".zip");
        assert!(SdistFilename::parse("other-1.0.tar.gz", &p).is_err());
        assert!(DistFilename::parse("clip-marqo-1.0.win32.exe", &p).is_none());
    }
}
