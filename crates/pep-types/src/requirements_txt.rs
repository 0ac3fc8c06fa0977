//! Lexing pip's requirements file format: logical lines as pip sees them, before any option
//! or requirement is parsed. Shared by the resolver (which parses them) and the lock's input
//! fingerprint (which only follows `-r`/`-c`).

/// Joins `\` continuations, strips comments and expands `${VAR}`; yields each non-empty
/// logical line with the number of the physical line it starts on (1-based).
pub fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    let mut flush = |start: usize, line: &mut String| {
        let expanded = expand_env(line.trim());
        if !expanded.is_empty() {
            out.push((start, expanded));
        }
        line.clear();
    };
    for (i, raw) in text.lines().enumerate() {
        if current.is_empty() {
            start = i + 1;
        }
        let line = strip_comment(raw);
        if let Some(body) = line.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
            continue;
        }
        current.push_str(line);
        flush(start, &mut current);
    }
    if !current.is_empty() {
        flush(start, &mut current);
    }
    out
}

/// pip's rule: `#` starts a comment at the start of a line or after whitespace.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return line[..i].trim_end();
        }
    }
    line.trim_end()
}

/// `${NAME}` (uppercase letters, digits, `_`) is replaced by the environment variable, as
/// pip does; no other form is expanded.
fn expand_env(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end)
                if after[..end].chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') =>
            {
                out.push_str(&std::env::var(&after[..end]).unwrap_or_default());
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_pip_sees_them() {
        let text = "a==1  # pinned\n# only a comment\n\nlong \\\n  >=2\nurl#frag\n${MARQO_BASE_UNSET_VAR}x\n";
        assert_eq!(
            logical_lines(text),
            [
                (1, "a==1".to_string()),
                (4, "long    >=2".to_string()),
                (6, "url#frag".to_string()),
                (7, "x".to_string())
            ]
        );
    }
}
