//! Parsing PEP 508 requirements from outside input without letting the input choose how deep
//! the parser recurses: `pep508_rs` parses nested marker parentheses recursively, so a line of
//! 20,000 `(` (in a requirements file, or in any wheel's `Requires-Dist` on an index) would
//! overflow the stack and abort the process. Nesting is counted first, iteratively.

use std::str::FromStr;

use crate::Req;

/// How deeply parentheses may nest in one requirement. Real markers nest two or three levels.
pub const MAX_NESTING: usize = 64;

/// A requirement that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RequirementError {
    /// Parentheses nest deeper than [`MAX_NESTING`].
    #[error("parentheses nest {depth} levels deep, more than the {MAX_NESTING} allowed")]
    TooDeep {
        /// How deep they nest.
        depth: usize,
    },
    /// Not PEP 508.
    #[error(transparent)]
    Pep508(#[from] Box<<Req as FromStr>::Err>),
}

/// Parses a PEP 508 requirement, refusing one nested deeper than [`MAX_NESTING`] before the
/// (recursive) parser sees it.
pub fn parse_requirement(text: &str) -> Result<Req, RequirementError> {
    let depth = nesting(text);
    if depth > MAX_NESTING {
        return Err(RequirementError::TooDeep { depth });
    }
    Req::from_str(text).map_err(|e| RequirementError::Pep508(Box::new(e)))
}

/// The deepest nesting of `(` outside quoted strings.
fn nesting(text: &str) -> usize {
    let (mut depth, mut deepest, mut quote) = (0usize, 0usize, None);
    for c in text.chars() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, ')') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let deep = format!("foo; {}python_version > '3'{}", "(".repeat(20_000), ")".repeat(20_000));
        assert!(matches!(parse_requirement(&deep), Err(RequirementError::TooDeep { depth: 20_000 })));
        let ok = "foo[bar]>=1.0; (python_version > '3' and (os_name == 'posix' or sys_platform == 'linux'))";
        assert_eq!(parse_requirement(ok).unwrap().name.as_ref(), "foo");
        // Parentheses inside quoted values do not count.
        let quoted = format!("foo; platform_version == '{}'", "(".repeat(1000));
        assert_eq!(nesting(&quoted), 0);
        assert!(parse_requirement("foo (==1.0").is_err());
        assert!(matches!(parse_requirement("foo >= = 2"), Err(RequirementError::Pep508(_))));
    }
}
