//! Text from a server (a tag, an annotation, a platform, an error body, a package name or
//! version from an index) never reaches a terminal raw: a control character in it could move
//! the cursor, erase a line or recolour one, and so rewrite what the user reads (an
//! `UNSIGNED` line into a signed-looking one).
//!
//! [`is_unsafe`] is the one definition of what is escaped; the binary's printer passes all
//! it prints through [`escape_lines`] (and JSON through [`escape_json`]), and an error that
//! carries a server's text escapes it when it is made, with [`escape`].

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` is escaped before it reaches a terminal: every control character (C0, DEL,
/// C1, so ESC, CR, BS, and the CSI of C1), the bidirectional overrides, embeddings, isolates
/// and marks (which reorder what is shown), and the Unicode line and paragraph separators.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// `text` on one line with every [`is_unsafe`] character written as Rust writes it in a
/// string literal: `\n`, `\r`, `\t`, `\u{1b}`, `\u{202e}`. Borrowed when nothing is escaped.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_with(text, |_| false)
}

/// [`escape`], keeping newlines and tabs: for a message of several lines, each line of
/// which is escaped.
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    escape_with(text, |c| c == '\n' || c == '\t')
}

/// A JSON document with every [`is_unsafe`] character that JSON allows raw in a string (DEL,
/// C1, the bidirectional controls) written as `\uXXXX`: the same document for a JSON
/// reader, nothing a terminal acts on. Such characters only occur inside strings, where
/// `\uXXXX` means them.
pub fn escape_json(json: &str) -> Cow<'_, str> {
    if !json.chars().any(is_unsafe) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if (is_unsafe(c) && !c.is_ascii()) || c == '\u{7f}' {
            // Every unsafe character is in the Basic Multilingual Plane: one `\u` escape.
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn escape_with(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unsafe(c) && !keep(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_overrides_are_escaped() {
        let hostile = "1.0\x1b[1A\r  signed\x08\u{9b}2K\u{202e}ok\u{7f}";
        assert_eq!(escape(hostile), "1.0\\u{1b}[1A\\r  signed\\u{8}\\u{9b}2K\\u{202e}ok\\u{7f}");
        assert!(!escape(hostile).chars().any(is_unsafe));
        assert_eq!(escape("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(escape_lines("a\nb\tc\r"), "a\nb\tc\\r");
        assert!(matches!(escape("plain text, ünïcode"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_keeps_its_meaning() {
        let value = serde_json::json!({"tag": "x\x1b[2K\u{9b}\u{202e}\u{7f}y"});
        let text = serde_json::to_string(&value).unwrap();
        let escaped = escape_json(&text);
        assert!(!escaped.chars().any(is_unsafe), "{escaped}");
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, value);
    }
}
