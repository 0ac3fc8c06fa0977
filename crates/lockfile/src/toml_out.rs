//! Writing TOML by hand, so the lock's layout (key order, inline `file` tables, blank lines)
//! is fixed by us and not by a serializer's version.

use std::fmt::Write as _;

/// A key: bare when TOML allows it, else a quoted string.
pub(crate) fn key(k: &str) -> String {
    let bare = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        k.to_string()
    } else {
        string(k)
    }
}

/// A basic string with TOML's escapes.
pub(crate) fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `["a", "b"]`.
pub(crate) fn string_array<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(string).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_toml() {
        for s in ["plain", "quote \" and \\ backslash", "tab\tnew\nline\r", "\u{1}\u{7f}", "é ü 中"] {
            let doc = format!("{} = {}\n", key(s), string(s));
            let table: toml::Table = toml::from_str(&doc).expect("valid TOML");
            assert_eq!(table.get(s).and_then(|v| v.as_str()), Some(s), "{doc}");
        }
        assert_eq!(key("marqo-base.toml"), "\"marqo-base.toml\"");
        assert_eq!(key("input_files"), "input_files");
    }
}
