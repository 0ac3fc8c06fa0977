//! Which distribution formats a package may be installed from: pip's `--only-binary`,
//! `--no-binary` and `--prefer-binary`, with pip's rules for `:all:`, `:none:` and names.

use std::collections::BTreeSet;
use std::str::FromStr;

use pep_types::PackageName;

/// pip's `FormatControl`: the packages restricted to wheels and to sdists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormatControl {
    only_binary: NameSet,
    no_binary: NameSet,
}

/// A set of names, possibly with pip's `:all:` member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct NameSet {
    all: bool,
    names: BTreeSet<PackageName>,
}

/// Which formats one package may come as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Formats {
    pub wheel: bool,
    pub sdist: bool,
}

impl FormatControl {
    /// Applies one `--only-binary VALUE` (comma-separated names, `:all:`, `:none:`).
    pub fn only_binary(&mut self, value: &str) -> Result<(), String> {
        apply(value, &mut self.only_binary, &mut self.no_binary)
    }

    /// Applies one `--no-binary VALUE`.
    pub fn no_binary(&mut self, value: &str) -> Result<(), String> {
        apply(value, &mut self.no_binary, &mut self.only_binary)
    }

    /// The formats `name` may be installed from, as pip's `get_allowed_formats` decides: a
    /// name given to either option beats `:all:` of the other.
    pub fn formats(&self, name: &PackageName) -> Formats {
        let all = Formats { wheel: true, sdist: true };
        if self.only_binary.names.contains(name) {
            Formats { sdist: false, ..all }
        } else if self.no_binary.names.contains(name) {
            Formats { wheel: false, ..all }
        } else if self.only_binary.all {
            Formats { sdist: false, ..all }
        } else if self.no_binary.all {
            Formats { wheel: false, ..all }
        } else {
            all
        }
    }

    /// No restriction at all.
    pub fn is_empty(&self) -> bool {
        *self == FormatControl::default()
    }

    /// The options that reproduce this control, as pip-compile writes them into its output
    /// (`--no-binary` lines, then `--only-binary` lines).
    pub fn pip_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (flag, set) in [("--no-binary", &self.no_binary), ("--only-binary", &self.only_binary)] {
            if set.all {
                out.push(format!("{flag} :all:"));
            }
            out.extend(set.names.iter().map(|n| format!("{flag} {n}")));
        }
        out
    }
}

/// pip's `handle_mutual_excludes`: `value` goes into `target`, and out of `other`.
fn apply(value: &str, target: &mut NameSet, other: &mut NameSet) -> Result<(), String> {
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item {
            ":all:" => {
                *target = NameSet { all: true, names: BTreeSet::new() };
                *other = NameSet::default();
            }
            ":none:" => *target = NameSet::default(),
            _ => {
                let name = PackageName::from_str(item)
                    .map_err(|e| format!("`{item}` is not a package name, :all: or :none:: {e}"))?;
                other.names.remove(&name);
                target.names.insert(name);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> PackageName {
        PackageName::from_str(s).unwrap()
    }

    #[test]
    fn pip_rules() {
        let mut f = FormatControl::default();
        assert!(f.is_empty());
        assert_eq!(f.formats(&name("torch")), Formats { wheel: true, sdist: true });
        f.only_binary(":all:").unwrap();
        f.no_binary("psutil, Clip_Marqo").unwrap();
        assert_eq!(f.formats(&name("torch")), Formats { wheel: true, sdist: false });
        assert_eq!(f.formats(&name("psutil")), Formats { wheel: false, sdist: true });
        assert_eq!(f.formats(&name("clip-marqo")), Formats { wheel: false, sdist: true });
        assert_eq!(f.pip_lines(), ["--no-binary clip-marqo", "--no-binary psutil", "--only-binary :all:"]);
        // A later --only-binary NAME moves the name back; :none: clears a set.
        f.only_binary("psutil").unwrap();
        assert_eq!(f.formats(&name("psutil")), Formats { wheel: true, sdist: false });
        f.only_binary(":none:").unwrap();
        assert_eq!(f.formats(&name("torch")), Formats { wheel: true, sdist: true });
        // --no-binary :all: clears --only-binary entirely.
        f.only_binary("numpy").unwrap();
        f.no_binary(":all:").unwrap();
        assert_eq!(f.formats(&name("numpy")), Formats { wheel: false, sdist: true });
        assert!(f.no_binary("not a name!").is_err());
    }
}
