//! Java KeyStores (JKS, the format of Debian's `/etc/ssl/certs/java/cacerts`) holding only
//! trusted certificates, written as `sun.security.provider.JavaKeyStore` stores them:
//!
//! ```text
//! u32 0xFEEDFEED, u32 2 (version), u32 count
//! per entry: u32 2 (trusted certificate), UTF alias, u64 creation time (ms),
//!            UTF "X.509", u32 length, the certificate's DER
//! 20 bytes: SHA-1 of (password as UTF-16BE, "Mighty Aphrodite", everything above)
//! ```
//!
//! where a UTF is Java's `DataOutput.writeUTF`: a u16 length and modified UTF-8. Java keeps
//! aliases in lower case (`JavaKeyStore` lowers them as it stores them), so they are written
//! so; entries are written in the order given.

use crate::sha1::Sha1;

const MAGIC: u32 = 0xFEED_FEED;
const VERSION: u32 = 2;
const TRUSTED_CERTIFICATE: u32 = 2;

/// One trusted certificate of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedEntry {
    /// The alias (`debian:isrg_root_x1.pem`), lower-cased as Java lowers it.
    pub alias: String,
    /// The certificate's DER bytes.
    pub der: Vec<u8>,
}

/// The store of `entries` under `password`, each entry created at `created_ms` (ms since the
/// epoch). Errors when an alias or a certificate does not fit the format's length fields.
pub fn write_truststore(
    entries: &[TrustedEntry],
    password: &str,
    created_ms: u64,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.extend_from_slice(&VERSION.to_be_bytes());
    let count =
        u32::try_from(entries.len()).map_err(|_| "too many certificates for a keystore".to_string())?;
    out.extend_from_slice(&count.to_be_bytes());
    for entry in entries {
        out.extend_from_slice(&TRUSTED_CERTIFICATE.to_be_bytes());
        write_utf(&mut out, &java_lowercase(&entry.alias))?;
        out.extend_from_slice(&created_ms.to_be_bytes());
        write_utf(&mut out, "X.509")?;
        let len = u32::try_from(entry.der.len())
            .ok()
            .filter(|n| *n <= i32::MAX as u32)
            .ok_or_else(|| format!("the certificate of `{}` is too large", entry.alias))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&entry.der);
    }
    let mut digest = Sha1::new();
    let password: Vec<u8> = password.encode_utf16().flat_map(u16::to_be_bytes).collect();
    digest.update(&password);
    digest.update(b"Mighty Aphrodite");
    digest.update(&out);
    out.extend_from_slice(&digest.finish());
    Ok(out)
}

/// `alias.toLowerCase(Locale.ENGLISH)`, what `JavaKeyStore` stores an alias as.
pub fn java_lowercase(alias: &str) -> String {
    alias.to_lowercase()
}

/// `DataOutputStream.writeUTF`: the length in bytes (at most 65535), then modified UTF-8:
/// NUL as two bytes, characters outside the BMP as two three-byte surrogates.
fn write_utf(out: &mut Vec<u8>, text: &str) -> Result<(), String> {
    let mut bytes = Vec::with_capacity(text.len());
    for unit in text.encode_utf16() {
        match unit {
            0x0001..=0x007f => bytes.push(unit as u8),
            0x0000 | 0x0080..=0x07ff => {
                bytes.push(0xc0 | (unit >> 6) as u8);
                bytes.push(0x80 | (unit & 0x3f) as u8);
            }
            _ => {
                bytes.push(0xe0 | (unit >> 12) as u8);
                bytes.push(0x80 | ((unit >> 6) & 0x3f) as u8);
                bytes.push(0x80 | (unit & 0x3f) as u8);
            }
        }
    }
    let len =
        u16::try_from(bytes.len()).map_err(|_| format!("the alias `{text}` is too long for a keystore"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_utf8_as_java_writes_it() {
        let mut out = Vec::new();
        write_utf(&mut out, "a\0é€😀").unwrap();
        // 'a', NUL as C0 80, é as C3 A9, € as E2 82 AC, U+1F600 as the surrogates D83D DE00.
        assert_eq!(
            out,
            [0, 14, b'a', 0xc0, 0x80, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]
        );
        assert!(write_utf(&mut Vec::new(), &"x".repeat(70_000)).is_err());
    }

    #[test]
    fn a_store_has_its_header_entries_and_keyed_digest() {
        let entries = [TrustedEntry { alias: "Debian:A.pem".into(), der: vec![0x30, 0x00] }];
        let store = write_truststore(&entries, "changeit", 1_000).unwrap();
        assert_eq!(&store[..12], &[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 1]);
        assert_eq!(&store[12..16], &[0, 0, 0, 2]);
        assert_eq!(&store[16..30], b"\0\x0cdebian:a.pem");
        assert_eq!(&store[30..38], &1_000u64.to_be_bytes());
        assert_eq!(&store[38..45], b"\0\x05X.509");
        assert_eq!(&store[45..51], &[0, 0, 0, 2, 0x30, 0x00]);
        let mut digest = Sha1::new();
        digest.update(&[0, b'c', 0, b'h', 0, b'a', 0, b'n', 0, b'g', 0, b'e', 0, b'i', 0, b't']);
        digest.update(b"Mighty Aphrodite");
        digest.update(&store[..51]);
        assert_eq!(&store[51..], &digest.finish());
        // Another password, another digest.
        assert_ne!(write_truststore(&entries, "other", 1_000).unwrap(), store);
    }
}
