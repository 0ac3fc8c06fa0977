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
    /// The name or an extra ends with `.`, `-` or `_` (which `pep508_rs` 0.9 would panic on
    /// when more text follows).
    #[error("the name `{0}` must end with a letter or a digit")]
    Name(String),
    /// A character outside ASCII where PEP 508 has only ASCII: everywhere but quoted
    /// strings (`pep508_rs` 0.9 can panic slicing inside such a character), or in a line
    /// that does not parse anyway.
    #[error("`{character}` (U+{:04X}) is not allowed here: outside quoted values a requirement is ASCII", *character as u32)]
    NonAscii {
        /// The character.
        character: char,
    },
    /// A marker value in double quotes holds a `'`: PEP 508 allows it, but a requirement is
    /// written back with its values in single quotes (as `pep508_rs` prints them), which
    /// would not parse again, so an output file would be broken.
    #[error("the marker value \"{0}\" holds a `'`, which cannot be written back")]
    Quote(String),
    /// Not PEP 508.
    #[error(transparent)]
    Pep508(#[from] Box<<Req as FromStr>::Err>),
}

/// Parses a PEP 508 requirement, refusing one nested deeper than [`MAX_NESTING`] before the
/// (recursive) parser sees it.
pub fn parse_requirement(text: &str) -> Result<Req, RequirementError> {
    if let Some(character) = non_ascii_outside_quotes(text) {
        return Err(RequirementError::NonAscii { character });
    }
    let depth = nesting(text);
    if depth > MAX_NESTING {
        return Err(RequirementError::TooDeep { depth });
    }
    let name: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    if name.ends_with(['.', '-', '_']) {
        return Err(RequirementError::Name(name));
    }
    // The same for extras (`foo[bar-]`), which pep508_rs 0.9 panics on too.
    let rest = text.trim_start()[name.len()..].trim_start();
    if let Some(extras) = rest.strip_prefix('[') {
        let extras = extras.split(']').next().unwrap_or_default();
        let mut words = extras.split(|c: char| c == ',' || c.is_whitespace());
        if let Some(bad) = words.find(|e| e.ends_with(['.', '-', '_'])) {
            return Err(RequirementError::Name(bad.to_string()));
        }
    }
    if !text.is_ascii() {
        // pep508_rs 0.9 measures error spans in characters and slices bytes with them, so an
        // error near a multi-byte character panics. The same text with every such character
        // made ASCII has the same structure: if it does not parse, neither does the original,
        // and its error is not safe to build.
        let ascii: String = text.chars().map(|c| if c.is_ascii() { c } else { 'a' }).collect();
        if Req::from_str(&ascii).is_err() {
            let character = text.chars().find(|c| !c.is_ascii()).unwrap_or_default();
            return Err(RequirementError::NonAscii { character });
        }
    }
    if let Some(value) = text.split('"').skip(1).step_by(2).find(|v| v.contains('\'')) {
        return Err(RequirementError::Quote(value.to_string()));
    }
    Req::from_str(text).map_err(|e| RequirementError::Pep508(Box::new(e)))
}

/// The first character outside ASCII that is not inside a (closed) quoted string.
fn non_ascii_outside_quotes(text: &str) -> Option<char> {
    let mut quote = None;
    // Inside a quote that may never close: it only counts as quoted if it does.
    let mut pending = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), _) if c == q => {
                quote = None;
                pending = None;
            }
            (Some(_), c) if !c.is_ascii() => pending = pending.or(Some(c)),
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, c) if !c.is_ascii() => return Some(c),
            _ => {}
        }
    }
    pending
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
    fn a_name_ending_in_punctuation_is_an_error_not_a_panic() {
        // Found by the fuzz target `pep508` (crates/fuzz/corpus/pep508/crash-name-trailing-dot).
        for text in ["onnzruntime. not in #", "foo- >=1", "foo_ ; python_version > '3'", "foo."] {
            assert!(matches!(parse_requirement(text), Err(RequirementError::Name(_))), "{text}");
        }
        assert!(parse_requirement("foo.bar-baz_1 >= 1").is_ok());
        // An extra, found by the fuzz target `pep508` (crash-extra-trailing-dash).
        assert!(matches!(parse_requirement("foo[on_versionz-\r\nx"), Err(RequirementError::Name(_))));
        assert!(parse_requirement("foo[a-b, c]").is_ok());
        // Found by the fuzz target `requirements_txt` (crash-non-ascii-in-marker).
        let err = parse_requirement("torch; platform_machine == \"arm64\" or\u{feff} x == 'y'").unwrap_err();
        assert!(matches!(err, RequirementError::NonAscii { character: '\u{feff}' }), "{err}");
        assert!(parse_requirement("foo; platform_version == '\u{e9}t\u{e9}'").is_ok());
        // Found by a longer run of `requirements_txt` (crash-quote-in-marker-value): written
        // back in single quotes, the value would end early.
        let err = parse_requirement("torch; platform_machine == \"x86_64'x\"").unwrap_err();
        assert!(matches!(err, RequirementError::Quote(_)), "{err}");
        assert!(parse_requirement("torch; platform_machine == \"x86_64\" and os_name == 'posix'").is_ok());
        let unclosed = "torch; platform_machine == \"arm64\" or\"\u{feff} he";
        assert!(matches!(parse_requirement(unclosed), Err(RequirementError::NonAscii { .. })));
        let unclosed = "t; platform_machine == \"arm64\" or\"\u{feff} he-dir == \"aarch64\"";
        assert!(matches!(parse_requirement(unclosed), Err(RequirementError::NonAscii { .. })));
    }

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
