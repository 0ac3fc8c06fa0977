//! Package relationship fields: `Depends`, `Pre-Depends`, `Recommends`, `Conflicts`,
//! `Breaks` and `Provides`, as in `libc6 (>= 2.28), python3:any | python3-minimal`.

use std::cmp::Ordering;
use std::fmt;

use crate::version::compare_versions;

/// A version relation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `<<`: strictly earlier.
    Lt,
    /// `<=` (also the obsolete `<`): earlier or equal.
    Le,
    /// `=`: exactly.
    Eq,
    /// `>=` (also the obsolete `>`): later or equal.
    Ge,
    /// `>>`: strictly later.
    Gt,
}

impl Op {
    /// Whether `ordering` (of the candidate version against the wanted one) satisfies it.
    pub fn accepts(self, ordering: Ordering) -> bool {
        match self {
            Op::Lt => ordering == Ordering::Less,
            Op::Le => ordering != Ordering::Greater,
            Op::Eq => ordering == Ordering::Equal,
            Op::Ge => ordering != Ordering::Less,
            Op::Gt => ordering == Ordering::Greater,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }
}

/// The architecture qualifier after a package name in a relation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ArchQualifier {
    /// `name:any`: any architecture, if the package is `Multi-Arch: allowed`.
    Any,
    /// `name:native`: the native architecture.
    Native,
    /// `name:ARCH`: that architecture.
    Arch(String),
}

/// One alternative of a relation: `name[:arch] [(op version)]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Relation {
    /// The package (or virtual package) name.
    pub name: String,
    /// The architecture qualifier, if any.
    pub arch: Option<ArchQualifier>,
    /// The version constraint, if any.
    pub version: Option<(Op, String)>,
}

impl Relation {
    /// Whether `version` satisfies the version constraint (always, when there is none).
    pub fn accepts_version(&self, version: &str) -> bool {
        match &self.version {
            None => true,
            Some((op, wanted)) => op.accepts(compare_versions(version, wanted)),
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        match &self.arch {
            None => {}
            Some(ArchQualifier::Any) => f.write_str(":any")?,
            Some(ArchQualifier::Native) => f.write_str(":native")?,
            Some(ArchQualifier::Arch(a)) => write!(f, ":{a}")?,
        }
        if let Some((op, v)) = &self.version {
            write!(f, " ({} {v})", op.as_str())?;
        }
        Ok(())
    }
}

/// One comma-separated item of a relationship field: alternatives separated by `|`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dependency {
    /// The alternatives, in the order written (the first is preferred).
    pub alternatives: Vec<Relation>,
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, alt) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{alt}")?;
        }
        Ok(())
    }
}

/// A relationship field that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse the relation `{text}`: {reason}")]
pub struct RelationError {
    /// The offending item.
    pub text: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// Parses a relationship field. Architecture restrictions (`[amd64]`) and build profiles
/// (`<!nocheck>`), which only source packages use, are parsed and applied for `arch`:
/// an alternative restricted away from `arch` is dropped, and so is a dependency left with
/// no alternative.
pub fn parse_relations(field: &str, arch: &str) -> Result<Vec<Dependency>, RelationError> {
    let mut out = Vec::new();
    for item in field.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let mut alternatives = Vec::new();
        for alt in item.split('|') {
            if let Some(rel) = parse_one(alt.trim(), arch)? {
                alternatives.push(rel);
            }
        }
        if !alternatives.is_empty() {
            out.push(Dependency { alternatives });
        }
    }
    Ok(out)
}

/// Parses one alternative; `None` when an architecture restriction excludes it.
fn parse_one(text: &str, arch: &str) -> Result<Option<Relation>, RelationError> {
    let err = |reason| RelationError { text: text.to_string(), reason };
    let mut rest = text;
    let name_end = rest.find(|c: char| c.is_whitespace() || "([<".contains(c)).unwrap_or(rest.len());
    let (name_part, tail) = rest.split_at(name_end);
    rest = tail.trim_start();
    let (name, qualifier) = match name_part.split_once(':') {
        Some((n, q)) => (
            n,
            Some(match q {
                "any" => ArchQualifier::Any,
                "native" => ArchQualifier::Native,
                "" => return Err(err("empty architecture qualifier")),
                other => ArchQualifier::Arch(other.to_string()),
            }),
        ),
        None => (name_part, None),
    };
    if name.is_empty() {
        return Err(err("missing package name"));
    }
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c)) {
        return Err(err("invalid package name"));
    }
    let mut version = None;
    if let Some(inner) = rest.strip_prefix('(') {
        let close = inner.find(')').ok_or_else(|| err("missing `)`"))?;
        let constraint = inner[..close].trim();
        rest = inner[close + 1..].trim_start();
        let (op, v) = if let Some(v) = constraint.strip_prefix("<<") {
            (Op::Lt, v)
        } else if let Some(v) = constraint.strip_prefix("<=") {
            (Op::Le, v)
        } else if let Some(v) = constraint.strip_prefix(">>") {
            (Op::Gt, v)
        } else if let Some(v) = constraint.strip_prefix(">=") {
            (Op::Ge, v)
        } else if let Some(v) = constraint.strip_prefix('=') {
            (Op::Eq, v)
        } else if let Some(v) = constraint.strip_prefix('<') {
            (Op::Le, v)
        } else if let Some(v) = constraint.strip_prefix('>') {
            (Op::Ge, v)
        } else {
            return Err(err("unknown version operator"));
        };
        let v = v.trim();
        if v.is_empty() || v.contains(char::is_whitespace) {
            return Err(err("missing or malformed version"));
        }
        version = Some((op, v.to_string()));
    }
    let mut included = true;
    if let Some(inner) = rest.strip_prefix('[') {
        let close = inner.find(']').ok_or_else(|| err("missing `]`"))?;
        let list: Vec<&str> = inner[..close].split_whitespace().collect();
        rest = inner[close + 1..].trim_start();
        let negated = list.iter().all(|a| a.starts_with('!'));
        included = if negated {
            !list.iter().any(|a| arch_matches(&a[1..], arch))
        } else {
            list.iter().any(|a| arch_matches(a, arch))
        };
    }
    // Build profiles only matter when building source packages: ignore them.
    while let Some(inner) = rest.strip_prefix('<') {
        let close = inner.find('>').ok_or_else(|| err("missing `>`"))?;
        rest = inner[close + 1..].trim_start();
    }
    if !rest.is_empty() {
        return Err(err("unexpected text after the relation"));
    }
    Ok(included.then(|| Relation { name: name.to_string(), arch: qualifier, version }))
}

/// Whether an architecture name or wildcard (`any`, `linux-any`, `any-amd64`) names `arch`.
fn arch_matches(pattern: &str, arch: &str) -> bool {
    pattern == arch || pattern == "any" || pattern == "linux-any" || pattern == format!("any-{arch}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_alternatives_versions_and_qualifiers() {
        let deps = parse_relations(
            "libc6 (>= 2.28), python3:any | python3-minimal (<< 3.10~),\n dpkg (>=1.19), x:native, y:arm64 (= 1)",
            "amd64",
        )
        .unwrap();
        assert_eq!(deps.len(), 5);
        assert_eq!(deps[0].alternatives[0].version, Some((Op::Ge, "2.28".to_string())));
        assert_eq!(deps[1].alternatives[0].arch, Some(ArchQualifier::Any));
        assert_eq!(deps[1].alternatives[1].version, Some((Op::Lt, "3.10~".to_string())));
        assert_eq!(deps[2].alternatives[0].version, Some((Op::Ge, "1.19".to_string())));
        assert_eq!(deps[3].alternatives[0].arch, Some(ArchQualifier::Native));
        assert_eq!(deps[4].alternatives[0].arch, Some(ArchQualifier::Arch("arm64".into())));
        assert_eq!(deps[1].to_string(), "python3:any | python3-minimal (<< 3.10~)");
    }

    #[test]
    fn obsolete_operators_and_restrictions() {
        let deps = parse_relations("a (< 2), b (> 1), c [arm64] | d [!arm64], e [arm64] <!nocheck>", "amd64")
            .unwrap();
        assert_eq!(deps[0].alternatives[0].version, Some((Op::Le, "2".to_string())));
        assert_eq!(deps[1].alternatives[0].version, Some((Op::Ge, "1".to_string())));
        assert_eq!(deps[2].alternatives.len(), 1);
        assert_eq!(deps[2].alternatives[0].name, "d");
        assert_eq!(deps.len(), 3);
        assert!(parse_relations("a (>= )", "amd64").is_err());
        assert!(parse_relations("a (~ 1)", "amd64").is_err());
        assert!(parse_relations("A", "amd64").is_err());
        assert!(parse_relations("a b", "amd64").is_err());
        assert!(parse_relations("a (>= 1", "amd64").is_err());
    }

    #[test]
    fn version_acceptance() {
        let rel = &parse_relations("a (>> 1.0~rc1)", "amd64").unwrap()[0].alternatives[0];
        assert!(rel.accepts_version("1.0"));
        assert!(!rel.accepts_version("1.0~rc1"));
        assert!(!rel.accepts_version("0.9"));
    }
}
