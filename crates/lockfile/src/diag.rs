//! Turning a byte span or a key path of a TOML file into a [`ParseError`]: line, column, the
//! key path, the source line, and a hint (closest known key for a typo).

use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;

use toml_edit::{ImDocument, Item, Table, Value};

use crate::error::ParseError;

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

impl From<&str> for Seg {
    fn from(key: &str) -> Seg {
        Seg::Key(key.to_string())
    }
}

impl From<usize> for Seg {
    fn from(i: usize) -> Seg {
        Seg::Index(i)
    }
}

/// Builds a key path from keys and indexes: `key_path!["file", 2, "url"]`.
macro_rules! key_path {
    ($($seg:expr),* $(,)?) => { [$($crate::diag::Seg::from($seg)),*] };
}
pub(crate) use key_path;

/// A TOML file being read, kept to locate errors.
pub(crate) struct Source<'a> {
    file: &'a Path,
    text: &'a str,
    /// The span-preserving parse, when the text is valid TOML.
    doc: Option<ImDocument<&'a str>>,
}

impl<'a> Source<'a> {
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Source<'a> {
        Source { file, text, doc: ImDocument::parse(text).ok() }
    }

    /// The error of `toml::from_str`, located and explained.
    pub(crate) fn toml_error(&self, e: &toml::de::Error) -> Box<ParseError> {
        let span = e.span().unwrap_or(0..0);
        let path = match &self.doc {
            Some(doc) => {
                let mut path = Vec::new();
                path_at(doc.as_table(), span.start, &mut path);
                path
            }
            None => Vec::new(),
        };
        let (message, hint) = explain(e.message(), &path);
        self.error_at_span(span, &path, message, hint)
    }

    /// An error about the key or value at `path` (a table points at its header).
    pub(crate) fn error_at(
        &self,
        path: &[Seg],
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Box<ParseError> {
        let span = self.doc.as_ref().and_then(|doc| span_of(doc.as_table(), path)).unwrap_or(0..0);
        self.error_at_span(span, path, message.into(), hint)
    }

    /// The raw text of the value at `path` (`0o755`, `755`), to check how it was written.
    pub(crate) fn raw_value(&self, path: &[Seg]) -> Option<&'a str> {
        let doc = self.doc.as_ref()?;
        let span = span_of(doc.as_table(), path)?;
        self.text.get(span)
    }

    fn error_at_span(
        &self,
        span: Range<usize>,
        path: &[Seg],
        message: String,
        hint: Option<String>,
    ) -> Box<ParseError> {
        let start = floor_char_boundary(self.text, span.start.min(self.text.len()));
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[start..].find('\n').map_or(self.text.len(), |i| start + i);
        let line = self.text[..start].matches('\n').count() + 1;
        let column = self.text[line_start..start].chars().count() + 1;
        // The line is shown in an error: the credentials of a URL in it are not.
        let source_line = redact::mask_credentials_in(self.text[line_start..line_end].trim_end_matches('\r'));
        let end = floor_char_boundary(self.text, span.end.clamp(start, line_end));
        let width = self.text[start..end].chars().count().max(1);
        Box::new(ParseError {
            file: self.file.to_path_buf(),
            line,
            column,
            key: (!path.is_empty()).then(|| display_path(path)),
            message,
            hint,
            source_line,
            width,
        })
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `debian.packages[2]`, `image.env."A B"`.
pub(crate) fn display_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&crate::toml_out::key(k));
            }
            Seg::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

fn contains(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.contains(&offset) || (s.is_empty() && s.start == offset))
}

/// Finds the innermost key or value whose span holds `offset`; pushes its path.
fn path_at(table: &Table, offset: usize, path: &mut Vec<Seg>) -> bool {
    for (name, item) in table.iter() {
        path.push(Seg::Key(name.to_string()));
        if contains(table.key(name).and_then(|k| k.span()), offset) || item_path_at(item, offset, path) {
            return true;
        }
        path.pop();
    }
    false
}

fn item_path_at(item: &Item, offset: usize, path: &mut Vec<Seg>) -> bool {
    match item {
        Item::Value(v) => value_path_at(v, offset, path),
        Item::Table(t) => path_at(t, offset, path) || contains(t.span(), offset),
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                if path_at(t, offset, path) || contains(t.span(), offset) {
                    return true;
                }
                path.pop();
            }
            false
        }
        Item::None => false,
    }
}

fn value_path_at(value: &Value, offset: usize, path: &mut Vec<Seg>) -> bool {
    if !contains(value.span(), offset) {
        return false;
    }
    match value {
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                if value_path_at(v, offset, path) {
                    return true;
                }
                path.pop();
            }
        }
        Value::InlineTable(t) => {
            for (name, v) in t.iter() {
                path.push(Seg::Key(name.to_string()));
                if contains(t.key(name).and_then(|k| k.span()), offset) || value_path_at(v, offset, path) {
                    return true;
                }
                path.pop();
            }
        }
        _ => {}
    }
    true
}

/// The span of the value at `path`; for a table, its header (or its first key).
fn span_of(table: &Table, path: &[Seg]) -> Option<Range<usize>> {
    let (Seg::Key(key), rest) = path.split_first()? else {
        return None;
    };
    item_span(table.get(key)?, rest)
}

fn item_span(item: &Item, path: &[Seg]) -> Option<Range<usize>> {
    match (item, path.split_first()) {
        (Item::Value(v), _) => value_span(v, path),
        (Item::Table(t), None) => table_span(t),
        (Item::Table(t), Some(_)) => span_of(t, path),
        (Item::ArrayOfTables(a), None) => a.get(0).and_then(table_span),
        (Item::ArrayOfTables(a), Some((Seg::Index(i), rest))) => {
            let t = a.get(*i)?;
            if rest.is_empty() {
                table_span(t)
            } else {
                span_of(t, rest)
            }
        }
        _ => None,
    }
}

fn value_span(value: &Value, path: &[Seg]) -> Option<Range<usize>> {
    match (path.split_first(), value) {
        (None, _) => value.span(),
        (Some((Seg::Key(k), rest)), Value::InlineTable(t)) => value_span(t.get(k)?, rest),
        (Some((Seg::Index(i), rest)), Value::Array(a)) => value_span(a.get(*i)?, rest),
        _ => None,
    }
}

fn table_span(t: &Table) -> Option<Range<usize>> {
    t.span().or_else(|| {
        let (name, item) = t.iter().next()?;
        t.key(name).and_then(|k| k.span()).or_else(|| item.span())
    })
}

/// Rewords serde's messages in TOML's terms and adds a hint.
fn explain(message: &str, path: &[Seg]) -> (String, Option<String>) {
    if let Some((message, hint)) = message.split_once("\nhint: ") {
        return (message.to_string(), Some(hint.to_string()));
    }
    if message.starts_with("unknown field `") {
        let quoted = backticked(message);
        if let Some((unknown, known)) = quoted.split_first() {
            let table = match path.len() {
                0 | 1 => "at the top level".to_string(),
                n => format!("in `{}`", display_path(&path[..n - 1])),
            };
            let hint = match closest(unknown, known) {
                Some(best) => format!("did you mean `{best}`?"),
                None if known.is_empty() => "this table takes no keys".to_string(),
                None => format!("the keys allowed {table} are: {}", known.join(", ")),
            };
            return (format!("unknown key `{unknown}`"), Some(hint));
        }
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        return (format!("missing key {rest}"), None);
    }
    if message.starts_with("invalid type: string") && message.ends_with("expected a sequence") {
        return (message.to_string(), Some("write a list: `[\"...\"]`".to_string()));
    }
    // The TOML parser's messages span lines ("invalid array\nexpected `]`").
    (message.trim_end().replace('\n', "; "), None)
}

/// Every `backticked` word of a message, in order.
fn backticked(message: &str) -> Vec<&str> {
    message.split('`').skip(1).step_by(2).collect()
}

/// The known name closest to `word`, if close enough to be a typo.
pub(crate) fn closest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    let fold = |s: &str| s.to_lowercase().replace('-', "_");
    let word_folded = fold(word);
    if let Some(k) = known.iter().find(|k| fold(k) == word_folded) {
        return Some(k);
    }
    known
        .iter()
        .map(|k| (edit_distance(&word_folded, &fold(k)), *k))
        .filter(|(d, k)| *d <= k.chars().count().max(3) / 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur.push(substitute.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_key() {
        let known = ["suite", "packages", "mirror", "keyring", "recommends", "essential"];
        assert_eq!(closest("packges", &known), Some("packages"));
        assert_eq!(closest("Packages", &known), Some("packages"));
        assert_eq!(closest("recomends", &known), Some("recommends"));
        assert_eq!(closest("colour", &known), None);
        assert_eq!(closest("build-constraints", &["build_constraints"]), Some("build_constraints"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
