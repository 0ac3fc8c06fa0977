//! PEM (RFC 7468) with one block of a known label: what key files hold.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::Error;

/// `-----BEGIN LABEL-----`, the base64 of `der` in lines of 64, `-----END LABEL-----`.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// The label and bytes of the first PEM block of `text`, if its label is one of `labels`.
/// Headers (`Key: value` lines) are not allowed; text around the block is ignored, as Go's
/// `pem.Decode` does.
pub(crate) fn decode(
    text: &str,
    labels: &[&'static str],
    expected: &'static str,
) -> Result<(&'static str, Vec<u8>), Error> {
    let err = |reason: String| Error::Pem { expected, reason };
    let begin = text.find("-----BEGIN ").ok_or_else(|| err("no `-----BEGIN` line".into()))?;
    let rest = &text[begin + "-----BEGIN ".len()..];
    let end_of_label = rest.find("-----").ok_or_else(|| err("the BEGIN line is not closed".into()))?;
    let found = &rest[..end_of_label];
    let label = labels.iter().find(|l| **l == found).ok_or_else(|| {
        err(format!(
            "the block is `{}`, expected {}",
            found.chars().take(64).collect::<String>(),
            labels.join(" or ")
        ))
    })?;
    let body = &rest[end_of_label + 5..];
    let end_line = format!("-----END {label}-----");
    let end = body.find(&end_line).ok_or_else(|| err(format!("no `{end_line}` line")))?;
    let mut b64 = String::new();
    for line in body[..end].lines() {
        let line = line.trim();
        if line.contains(':') {
            return Err(err("PEM headers are not supported".into()));
        }
        b64.push_str(line);
    }
    let der = STANDARD.decode(b64.as_bytes()).map_err(|e| err(format!("the body is not base64: {e}")))?;
    if der.is_empty() {
        return Err(err("the block is empty".into()));
    }
    Ok((label, der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_strict_labels() {
        let der: Vec<u8> = (0..=200u8).collect();
        let text = encode("PUBLIC KEY", &der);
        assert!(text.lines().all(|l| l.len() <= 64));
        assert_eq!(decode(&text, &["PUBLIC KEY"], "public key").unwrap(), ("PUBLIC KEY", der.clone()));
        let other = decode(&text, &["EC PRIVATE KEY"], "key").unwrap_err().to_string();
        assert!(other.contains("`PUBLIC KEY`"), "{other}");
        assert!(decode("garbage", &["PUBLIC KEY"], "public key").is_err());
        let cut = &text[..text.len() - 10];
        assert!(decode(cut, &["PUBLIC KEY"], "public key").unwrap_err().to_string().contains("END"));
        let bad = text.replace('A', "!");
        assert!(decode(&bad, &["PUBLIC KEY"], "public key").is_err());
    }
}
