//! `RECORD` files: the CSV of installed paths, hashes and sizes (PEP 376, PEP 627).

use sha2::{Digest, Sha256, Sha384, Sha512};

/// One row of a wheel's `RECORD`: the expected hash and size of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordEntry {
    /// `(algorithm, urlsafe base64 digest without padding)`, when the row has a hash.
    pub hash: Option<(String, String)>,
    /// The size in bytes, when the row has one.
    pub size: Option<u64>,
}

/// Parses a `RECORD` into `(path, entry)` rows, or a line number and a reason.
pub(crate) fn parse_record(text: &str) -> Result<Vec<(String, RecordEntry)>, (usize, String)> {
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let fail = |reason: String| (index + 1, reason);
        let fields = parse_csv_line(line).map_err(|reason| fail(reason.to_string()))?;
        let [path, hash, size] = fields.as_slice() else {
            return Err(fail(format!("expected 3 fields, found {}", fields.len())));
        };
        let hash = if hash.is_empty() {
            None
        } else {
            let (algorithm, digest) =
                hash.split_once('=').ok_or_else(|| fail(format!("hash `{hash}` has no `=`")))?;
            Some((algorithm.to_string(), digest.trim_end_matches('=').to_string()))
        };
        let size = if size.is_empty() {
            None
        } else {
            Some(size.parse().map_err(|_| fail(format!("size `{size}` is not a number")))?)
        };
        rows.push((path.clone(), RecordEntry { hash, size }));
    }
    Ok(rows)
}

/// Splits one CSV line (comma separated, `"` quoting with `""` escapes).
fn parse_csv_line(line: &str) -> Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quoted field"),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err("text after a quoted field"),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err("quote inside an unquoted field"),
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

/// Formats one CSV field, quoting it when it holds a comma, a quote or a line break.
pub(crate) fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// A hasher for one of the algorithms `RECORD` files use.
pub(crate) enum RecordHasher {
    /// sha256, the one pip writes.
    Sha256(Sha256),
    /// sha384.
    Sha384(Sha384),
    /// sha512.
    Sha512(Sha512),
}

impl RecordHasher {
    /// A hasher for `algorithm`, or `None` when it is not one of the sha2 family in use.
    pub(crate) fn new(algorithm: &str) -> Option<RecordHasher> {
        match algorithm {
            "sha256" => Some(RecordHasher::Sha256(Sha256::new())),
            "sha384" => Some(RecordHasher::Sha384(Sha384::new())),
            "sha512" => Some(RecordHasher::Sha512(Sha512::new())),
            _ => None,
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            RecordHasher::Sha256(hasher) => hasher.update(data),
            RecordHasher::Sha384(hasher) => hasher.update(data),
            RecordHasher::Sha512(hasher) => hasher.update(data),
        }
    }

    /// The digest in urlsafe base64 without padding, as `RECORD` stores it.
    pub(crate) fn finish(self) -> String {
        match self {
            RecordHasher::Sha256(hasher) => urlsafe_b64_nopad(&hasher.finalize()),
            RecordHasher::Sha384(hasher) => urlsafe_b64_nopad(&hasher.finalize()),
            RecordHasher::Sha512(hasher) => urlsafe_b64_nopad(&hasher.finalize()),
        }
    }
}

/// The `sha256=<urlsafe base64, no padding>` hash of `data`, as a `RECORD` row holds it.
pub fn record_hash(data: &[u8]) -> String {
    format!("sha256={}", urlsafe_b64_nopad(&Sha256::digest(data)))
}

/// Base64 with the URL-safe alphabet (RFC 4648 §5) and no `=` padding.
pub(crate) fn urlsafe_b64_nopad(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let bits =
            chunk.iter().enumerate().fold(0u32, |acc, (i, byte)| acc | u32::from(*byte) << (16 - 8 * i));
        // 1 byte gives 2 characters, 2 give 3, 3 give 4.
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(bits >> (18 - 6 * i) & 0x3f) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors_without_padding() {
        let cases =
            [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE")];
        for (input, expected) in cases {
            assert_eq!(urlsafe_b64_nopad(input.as_bytes()), expected);
        }
        assert_eq!(urlsafe_b64_nopad(&[0xfb, 0xff]), "-_8");
        // The digest of an empty file, as pip writes it.
        assert_eq!(record_hash(b""), "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
    }

    #[test]
    fn record_rows_with_quotes_and_empty_fields() {
        let text =
            "pkg/__init__.py,sha256=abc,12\n\"pkg/a,b.py\",sha256=de=,3\r\npkg-1.0.dist-info/RECORD,,\n";
        let rows = parse_record(text).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].0, "pkg/a,b.py");
        assert_eq!(rows[1].1.hash, Some(("sha256".to_string(), "de".to_string())));
        assert_eq!(rows[2].1, RecordEntry { hash: None, size: None });
        assert!(parse_record("a,b\n").is_err());
        assert!(parse_record("\"a,b,c\n").is_err());
        assert_eq!(csv_field("a\"b,c"), "\"a\"\"b,c\"");
    }
}
