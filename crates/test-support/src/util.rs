//! Small helpers shared by the builders and the server: names, hashes, escaping.

use sha2::{Digest, Sha256};

/// The PEP 503 normalized form of a project name: lowercase, runs of `-_.` become `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_sep {
                out.push('-');
            }
            in_sep = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_sep = false;
        }
    }
    out
}

/// The name as it appears in wheel and sdist file names and in `.dist-info` directories.
pub(crate) fn dist_name(name: &str) -> String {
    name.replace('-', "_")
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A wheel RECORD line (`path,sha256=<urlsafe b64, no padding>,size`).
pub(crate) fn record_line(path: &str, data: &[u8]) -> String {
    let digest = base64_urlsafe_nopad(&Sha256::digest(data));
    format!("{path},sha256={digest},{}\n", data.len())
}

fn base64_urlsafe_nopad(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Escapes text for an HTML attribute value or element content.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a file name for use as a URL path segment.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        // `+` is encoded as PyTorch's indexes do (`torch-1.13.1%2Bcu116-...whl`): clients must
        // decode file names taken from hrefs.
        if b.is_ascii_alphanumeric() || b"-._~!".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes in a request path; invalid escapes are kept verbatim.
pub(crate) fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Deterministic, incompressible bytes (splitmix64 seeded from `seed`).
pub(crate) fn pseudo_random(seed: &str, len: usize) -> Vec<u8> {
    let mut state = u64::from_le_bytes(Sha256::digest(seed.as_bytes())[..8].try_into().unwrap());
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Says on the test run's own stderr (not captured by the test harness, so it shows in the
/// run's output as `cargo test` prints it) that a live test was skipped, and why.
/// The test's name is its thread's, as libtest names them.
pub fn say_skipped(what: &str, why: &str) {
    use std::io::Write;
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr(), "SKIPPED {test} ({what}): {why}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_names() {
        assert_eq!(normalize("Foo.Bar__baz-Q"), "foo-bar-baz-q");
        assert_eq!(normalize("clip-marqo"), "clip-marqo");
    }

    #[test]
    fn base64_matches_known_values() {
        assert_eq!(base64_urlsafe_nopad(b""), "");
        assert_eq!(base64_urlsafe_nopad(b"f"), "Zg");
        assert_eq!(base64_urlsafe_nopad(b"fo"), "Zm8");
        assert_eq!(base64_urlsafe_nopad(b"foo"), "Zm9v");
        assert_eq!(base64_urlsafe_nopad(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn escapes_and_decodes() {
        assert_eq!(html_escape(">=3.8 \"x\""), "&gt;=3.8 &quot;x&quot;");
        assert_eq!(url_encode("a b+c.whl"), "a%20b%2Bc.whl");
        assert_eq!(url_decode("a%20b%2Bc%zz%"), "a b+c%zz%");
    }
}
