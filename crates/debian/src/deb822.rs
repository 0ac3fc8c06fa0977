//! The deb822 control-file syntax: paragraphs of `Name: value` fields separated by blank
//! lines, with continuation lines starting with a space or tab.
//!
//! Used for `Packages`, `Release`, `.deb` control files, the dpkg status file and apt's
//! `.sources` files. Parsing borrows from the text: a field's value is a slice of it, with
//! its continuation lines still in place, so a 40 MB `Packages` file costs no copies.

use std::fmt;

/// One `Name: value` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// The field name as written.
    pub name: &'a str,
    /// The value: the rest of the first line and every continuation line, trimmed (so a
    /// value whose first line is empty starts with its first continuation line).
    pub value: &'a str,
}

/// One paragraph (stanza).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paragraph<'a> {
    /// The fields in the order written.
    pub fields: Vec<Field<'a>>,
    /// The whole paragraph as written, from its first field to the end of its last line
    /// (without the trailing newline).
    pub text: &'a str,
    /// The 1-based line number of its first field.
    pub line: usize,
}

impl<'a> Paragraph<'a> {
    /// The value of the field `name` (field names are case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name)).map(|f| f.value)
    }
}

/// A syntax error, with the 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// The line with the problem.
    pub line: usize,
    /// What is wrong.
    pub reason: &'static str,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for SyntaxError {}

/// Iterates over the paragraphs of `text`. Lines starting with `#` are comments.
pub fn paragraphs(text: &str) -> Paragraphs<'_> {
    Paragraphs { text, pos: 0, line: 0 }
}

/// Parses a text that must hold exactly one paragraph (a `.deb` control file).
pub fn single_paragraph(text: &str) -> Result<Paragraph<'_>, SyntaxError> {
    let mut iter = paragraphs(text);
    let first = iter.next().transpose()?.ok_or(SyntaxError { line: 1, reason: "no paragraph" })?;
    match iter.next().transpose()? {
        None => Ok(first),
        Some(extra) => Err(SyntaxError { line: extra.line, reason: "more than one paragraph" }),
    }
}

/// The iterator returned by [`paragraphs`].
#[derive(Debug, Clone)]
pub struct Paragraphs<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Paragraphs<'a> {
    /// The next line (without its newline) and its start offset, advancing.
    fn next_line(&mut self) -> Option<(usize, &'a str)> {
        if self.pos >= self.text.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.text[start..];
        let (line, advance) = match rest.find('\n') {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += advance;
        self.line += 1;
        Some((start, line.strip_suffix('\r').unwrap_or(line)))
    }

    fn peek_is_continuation(&self) -> bool {
        matches!(self.text.as_bytes().get(self.pos), Some(b' ' | b'\t'))
            && !self.text[self.pos..].split('\n').next().unwrap_or("").trim().is_empty()
    }
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Result<Paragraph<'a>, SyntaxError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut fields = Vec::new();
        let mut start = None;
        let mut end = 0;
        let mut first_line = 0;
        while let Some((offset, line)) = self.next_line() {
            if line.trim().is_empty() {
                if start.is_some() {
                    break;
                }
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                return Some(Err(SyntaxError {
                    line: self.line,
                    reason: "continuation line without a field before it",
                }));
            }
            let Some(colon) = line.find(':') else {
                return Some(Err(SyntaxError { line: self.line, reason: "expected `Name: value`" }));
            };
            let name = &line[..colon];
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Some(Err(SyntaxError { line: self.line, reason: "invalid field name" }));
            }
            if start.is_none() {
                start = Some(offset);
                first_line = self.line;
            }
            let value_start = offset + colon + 1;
            let mut value_end = offset + line.len();
            while self.peek_is_continuation() {
                if let Some((o, l)) = self.next_line() {
                    value_end = o + l.len();
                }
            }
            end = value_end;
            let value = self.text[value_start..value_end].trim();
            fields.push(Field { name, value });
        }
        let start = start?;
        Some(Ok(Paragraph { fields, text: &self.text[start..end], line: first_line }))
    }
}

/// The lines of a multi-line value (the first line, then each continuation line without
/// its leading whitespace); a `.` line stands for an empty line.
pub fn value_lines(value: &str) -> impl Iterator<Item = &str> {
    value.lines().map(|l| {
        let l = l.trim();
        if l == "." {
            ""
        } else {
            l
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_continuations_and_comments() {
        let text = "# comment\nPackage: foo\nDepends: a,\n b (>= 1)\nDescription: short\n long\n .\n more\n\n\n\nPackage: bar\r\nVersion: 1\n";
        let ps: Vec<_> = paragraphs(text).collect::<Result<_, _>>().unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].get("package"), Some("foo"));
        assert_eq!(ps[0].get("Depends"), Some("a,\n b (>= 1)"));
        assert_eq!(ps[0].line, 2);
        let desc: Vec<_> = value_lines(ps[0].get("Description").unwrap()).collect();
        assert_eq!(desc, ["short", "long", "", "more"]);
        assert!(ps[0].text.starts_with("Package: foo") && ps[0].text.ends_with(" more"));
        assert_eq!(ps[1].get("Version"), Some("1"));
        assert_eq!(ps[1].line, 12);
    }

    #[test]
    fn empty_values_and_errors() {
        let p = single_paragraph("A:\nB: x\n").unwrap();
        assert_eq!(p.get("A"), Some(""));
        assert_eq!(single_paragraph(" x\n").unwrap_err().line, 1);
        assert_eq!(single_paragraph("A: 1\nnonsense\n").unwrap_err().line, 2);
        assert!(single_paragraph("A: 1\n\nB: 2\n").is_err());
        assert!(single_paragraph("\n\n").is_err());
    }
}
