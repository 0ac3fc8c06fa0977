//! X.509 certificates as the CA tools of a Debian system see them, without OpenSSL: PEM
//! files, the few DER fields they look at, OpenSSL's subject-name hash (the names of
//! `openssl rehash`'s links in `/etc/ssl/certs`), and the local certificates a manifest adds
//! to `/usr/local/share/ca-certificates`.
//!
//! Only what those tools need is read: a certificate is checked to be a DER `Certificate`
//! (a SEQUENCE of a `TBSCertificate`, an algorithm and a signature), and of its
//! `TBSCertificate` only the fields up to the subject are taken apart. Nothing here verifies
//! a signature or decides trust.

use base64::Engine as _;

use crate::sha1::sha1;
use crate::Error;

/// One `-----BEGIN LABEL-----` ... `-----END LABEL-----` block of a PEM file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemBlock {
    /// `CERTIFICATE`, `PRIVATE KEY`, ...
    pub label: String,
    /// The decoded body.
    pub der: Vec<u8>,
}

/// The PEM blocks of `text`, in order; text outside blocks (comments, `openssl x509 -text`
/// output) is ignored, as OpenSSL and Java ignore it. An error says what is wrong with which
/// block.
pub fn pem_blocks(text: &[u8]) -> Result<Vec<PemBlock>, String> {
    let text = String::from_utf8_lossy(text);
    let mut blocks = Vec::new();
    let mut open: Option<(String, String, usize)> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        match &mut open {
            None => {
                if let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) {
                    open = Some((label.to_string(), String::new(), n + 1));
                }
            }
            Some((label, body, start)) => {
                if let Some(end) = line.strip_prefix("-----END ").and_then(|l| l.strip_suffix("-----")) {
                    if end != label {
                        return Err(format!("line {}: `-----END {end}-----` closes `BEGIN {label}`", n + 1));
                    }
                    let der = base64::engine::general_purpose::STANDARD
                        .decode(body.as_bytes())
                        .map_err(|e| format!("the {label} block of line {start} is not base64: {e}"))?;
                    blocks.push(PemBlock { label: std::mem::take(label), der });
                    open = None;
                } else if line.contains(':') {
                    return Err(format!(
                        "the {label} block of line {start} has headers (`{line}`): it is encrypted or not a certificate"
                    ));
                } else {
                    body.extend(line.chars().filter(|c| !c.is_whitespace()));
                }
            }
        }
    }
    if let Some((label, _, start)) = open {
        return Err(format!("the {label} block of line {start} has no `-----END {label}-----` line"));
    }
    Ok(blocks)
}

/// A DER-encoded X.509 certificate, checked to have the shape of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    /// The byte range of the subject `Name` (its whole TLV) in `der`.
    subject: std::ops::Range<usize>,
}

impl Certificate {
    /// Checks that `der` is one DER `Certificate` and finds its subject.
    pub fn from_der(der: Vec<u8>) -> Result<Certificate, String> {
        let (tag, body, rest) = tlv(&der).ok_or("not DER: the first element is cut short")?;
        if tag != SEQUENCE || !rest.is_empty() {
            return Err("not an X.509 certificate: not one DER SEQUENCE".into());
        }
        let (tbs_tag, tbs, after) = tlv(body).ok_or("not an X.509 certificate: no TBSCertificate")?;
        let (alg_tag, _, after) = tlv(after).ok_or("not an X.509 certificate: no signature algorithm")?;
        let (sig_tag, _, after) = tlv(after).ok_or("not an X.509 certificate: no signature")?;
        if tbs_tag != SEQUENCE || alg_tag != SEQUENCE || sig_tag != BIT_STRING || !after.is_empty() {
            return Err("not an X.509 certificate: not TBSCertificate, algorithm, signature".into());
        }
        let mut fields = tbs;
        let field = |fields: &mut &[u8], want: u8, what: &str| -> Result<(), String> {
            let (tag, _, rest) = tlv(fields).ok_or_else(|| format!("not an X.509 certificate: no {what}"))?;
            if tag != want {
                return Err(format!("not an X.509 certificate: its {what} has tag {tag:#04x}"));
            }
            *fields = rest;
            Ok(())
        };
        if fields.first() == Some(&0xa0) {
            field(&mut fields, 0xa0, "version")?;
        }
        field(&mut fields, INTEGER, "serial number")?;
        field(&mut fields, SEQUENCE, "signature algorithm")?;
        field(&mut fields, SEQUENCE, "issuer")?;
        field(&mut fields, SEQUENCE, "validity")?;
        // `fields` is a slice of `der`: the subject starts where it starts.
        let start = fields.as_ptr() as usize - der.as_ptr() as usize;
        let (subject_tag, _, after_subject) = tlv(fields).ok_or("not an X.509 certificate: no subject")?;
        if subject_tag != SEQUENCE {
            return Err("not an X.509 certificate: its subject is not a Name".into());
        }
        let end = start + (fields.len() - after_subject.len());
        let subject = start..end;
        // Every RDN of the subject must parse (the hash needs them).
        canonical_name(&der[subject.clone()])?;
        Ok(Certificate { der, subject })
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The SHA-1 of the DER bytes (what `openssl rehash` tells duplicates by).
    pub fn sha1_fingerprint(&self) -> [u8; 20] {
        sha1(&self.der)
    }

    /// OpenSSL's subject-name hash (`openssl x509 -subject_hash`, the `<hash>.N` links of a
    /// CA directory): the first four bytes, little-endian, of the SHA-1 of the subject's
    /// canonical encoding.
    pub fn subject_hash(&self) -> u32 {
        // Checked when the certificate was made.
        let canon = canonical_name(&self.der[self.subject.clone()]).unwrap_or_default();
        let md = sha1(&canon);
        u32::from_le_bytes([md[0], md[1], md[2], md[3]])
    }
}

/// The certificates of a PEM file, with an error when it holds anything else.
pub fn read_pem_certificates(text: &[u8]) -> Result<Vec<Certificate>, String> {
    let blocks = pem_blocks(text)?;
    let mut out = Vec::new();
    for block in blocks {
        if block.label != "CERTIFICATE" {
            return Err(format!("it holds a {} block, not only certificates", block.label));
        }
        out.push(Certificate::from_der(block.der)?);
    }
    Ok(out)
}

/// A certificate the manifest adds to the trusted ones, as a file an administrator puts in
/// `/usr/local/share/ca-certificates`: one PEM certificate per file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCertificate {
    /// Its file name there (`my-ca.crt`), which names its link in `/etc/ssl/certs` and its
    /// alias in the Java truststore.
    pub name: String,
    /// The file as given (it goes into the CA bundle as it is).
    pub pem: Vec<u8>,
    /// The certificate in it.
    pub certificate: Certificate,
}

impl LocalCertificate {
    /// Checks `pem` (read from `source`, which errors name) and names it `name` (which must
    /// end with `.crt`, as update-ca-certificates only reads those).
    pub fn new(name: &str, pem: Vec<u8>, source: &str) -> Result<LocalCertificate, Error> {
        let bad = |reason: String, hint: &str| Error::Certificate {
            file: source.to_string(),
            reason,
            hint: hint.to_string(),
        };
        if name.is_empty() || name.starts_with('.') || name.contains('/') || !name.ends_with(".crt") {
            return Err(bad(
                format!("`{name}` cannot be a file name in /usr/local/share/ca-certificates"),
                "name the file NAME.crt (or NAME.pem: it is installed as NAME.crt)",
            ));
        }
        let blocks = pem_blocks(&pem).map_err(|e| {
            bad(
                format!("not a PEM file: {e}"),
                "give the certificate in PEM form: openssl x509 -in FILE -out FILE.crt",
            )
        })?;
        let mut certificates = Vec::new();
        for block in blocks {
            if block.label != "CERTIFICATE" {
                return Err(bad(
                    format!("it holds a {} block, not a certificate", block.label),
                    "give the CA's certificate only (`-----BEGIN CERTIFICATE-----`); never a private key",
                ));
            }
            let cert = Certificate::from_der(block.der).map_err(|e| {
                bad(e, "give the CA's certificate in PEM form: openssl x509 -in FILE -out FILE.crt")
            })?;
            certificates.push(cert);
        }
        let certificate = match certificates.len() {
            1 => certificates.remove(0),
            0 => {
                return Err(bad(
                    "no `-----BEGIN CERTIFICATE-----` block in it".into(),
                    "give the certificate in PEM form: openssl x509 -in FILE -out FILE.crt",
                ))
            }
            n => {
                return Err(bad(
                    format!("it holds {n} certificates; update-ca-certificates links one per file"),
                    "put each certificate in its own file and list every file",
                ))
            }
        };
        Ok(LocalCertificate { name: name.to_string(), pem, certificate })
    }
}

const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const UTF8_STRING: u8 = 0x0c;

/// One DER element: its tag, its content and what follows it; `None` when it is cut short,
/// has a multi-byte tag or an indefinite or overlong length.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// A DER length prefix.
fn der_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    der_length(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

/// The canonical encoding OpenSSL hashes a `Name` by (`x509_name_canon`): each RDN as a DER
/// SET of its attributes, string values turned into lower-case UTF-8 with spaces trimmed and
/// runs of spaces collapsed, the SETs concatenated without the outer SEQUENCE.
fn canonical_name(name: &[u8]) -> Result<Vec<u8>, String> {
    let bad = |what: &str| format!("not an X.509 certificate: its subject has {what}");
    let (_, mut rdns, _) = tlv(name).ok_or_else(|| bad("a cut-short name"))?;
    let mut out = Vec::new();
    while !rdns.is_empty() {
        let (tag, mut attributes, rest) = tlv(rdns).ok_or_else(|| bad("a cut-short RDN"))?;
        if tag != SET {
            return Err(bad("an RDN that is not a SET"));
        }
        rdns = rest;
        let mut entries = Vec::new();
        while !attributes.is_empty() {
            let (tag, atv, rest) = tlv(attributes).ok_or_else(|| bad("a cut-short attribute"))?;
            if tag != SEQUENCE {
                return Err(bad("an attribute that is not a SEQUENCE"));
            }
            attributes = rest;
            let (oid_tag, oid, rest) = tlv(atv).ok_or_else(|| bad("an attribute without a type"))?;
            let (value_tag, value, after) = tlv(rest).ok_or_else(|| bad("an attribute without a value"))?;
            if oid_tag != OID || !after.is_empty() {
                return Err(bad("an attribute that is not a type and a value"));
            }
            let mut entry = der(OID, oid);
            match canonical_string(value_tag, value) {
                Some(text) => entry.extend(der(UTF8_STRING, &text?)),
                None => entry.extend(der(value_tag, value)),
            }
            entries.push(der(SEQUENCE, &entry));
        }
        // A DER SET OF is sorted by the encodings (OpenSSL: memcmp, then the shorter first).
        entries.sort_by(|a, b| {
            let n = a.len().min(b.len());
            a[..n].cmp(&b[..n]).then(a.len().cmp(&b.len()))
        });
        out.extend(der(SET, &entries.concat()));
    }
    Ok(out)
}

/// A string value as OpenSSL canonicalises it (`asn1_string_canon`), or `None` for a type it
/// copies as it is.
fn canonical_string(tag: u8, value: &[u8]) -> Option<Result<Vec<u8>, String>> {
    let text: String = match tag {
        // PrintableString, T61String, IA5String, VisibleString: one byte a character.
        0x13 | 0x14 | 0x16 | 0x1a => value.iter().map(|b| *b as char).collect(),
        UTF8_STRING => match std::str::from_utf8(value) {
            Ok(s) => s.to_string(),
            Err(_) => {
                return Some(Err("not an X.509 certificate: a UTF8String of its subject is not UTF-8".into()))
            }
        },
        // BMPString: UCS-2; UniversalString: UCS-4.
        0x1e | 0x1c => {
            let width = if tag == 0x1e { 2 } else { 4 };
            if value.len() % width != 0 {
                return Some(Err(
                    "not an X.509 certificate: a wide string of its subject is cut short".into()
                ));
            }
            let mut s = String::new();
            for c in value.chunks_exact(width) {
                let code = c.iter().fold(0u32, |acc, b| (acc << 8) | *b as u32);
                match char::from_u32(code) {
                    Some(ch) => s.push(ch),
                    None => {
                        return Some(Err(
                            "not an X.509 certificate: a wide string of its subject is not Unicode".into(),
                        ))
                    }
                }
            }
            s
        }
        _ => return None,
    };
    let space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let bytes = text.as_bytes();
    let start = bytes.iter().position(|b| !space(*b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !space(*b)).map_or(start, |i| i + 1);
    let mut out = Vec::with_capacity(end - start);
    let mut in_space = false;
    for &b in &bytes[start..end] {
        if space(b) {
            if !in_space {
                out.push(b' ');
            }
            in_space = true;
        } else {
            out.push(b.to_ascii_lowercase());
            in_space = false;
        }
    }
    Some(Ok(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 65535, 65536] {
            let content = vec![7u8; len];
            let encoded = der(SEQUENCE, &content);
            let (tag, body, rest) = tlv(&encoded).unwrap();
            assert_eq!((tag, body.len(), rest.len()), (SEQUENCE, len, 0));
        }
        assert!(tlv(&[0x30, 0x85, 1, 2, 3, 4, 5]).is_none(), "five length bytes");
        assert!(tlv(&[0x30, 0x80]).is_none(), "indefinite length");
        assert!(tlv(&[0x30, 0x05, 1]).is_none(), "cut short");
        assert!(tlv(&[0x1f, 0x01, 0x00]).is_none(), "multi-byte tag");
    }

    #[test]
    fn strings_are_canonicalised_as_openssl_does() {
        let canon = |tag, v: &[u8]| canonical_string(tag, v).unwrap().unwrap();
        assert_eq!(canon(0x13, b"  My   CA\tRoot  "), b"my ca root");
        assert_eq!(canon(UTF8_STRING, "Fő  TANÚ".as_bytes()), "fő tanÚ".as_bytes());
        assert_eq!(canon(0x1e, &[0, b'A', 0, b' ', 0, b' ', 0, b'B']), b"a b");
        assert_eq!(canon(0x14, &[0xe9]), "é".as_bytes());
        assert!(canonical_string(0x04, b"x").is_none(), "an OCTET STRING is copied");
        assert!(canonical_string(0x1e, &[0]).unwrap().is_err());
    }

    #[test]
    fn pem_blocks_and_their_errors() {
        let text = b"comment\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\ntrailer\n";
        assert_eq!(
            pem_blocks(text).unwrap(),
            vec![PemBlock { label: "CERTIFICATE".into(), der: vec![0, 1, 2, 3] }]
        );
        assert!(pem_blocks(b"-----BEGIN CERTIFICATE-----\nAAEC\n").unwrap_err().contains("no `-----END"));
        assert!(pem_blocks(b"-----BEGIN X-----\n!!!!\n-----END X-----\n").unwrap_err().contains("base64"));
        assert!(pem_blocks(b"-----BEGIN X-----\nProc-Type: 4,ENCRYPTED\n-----END X-----\n")
            .unwrap_err()
            .contains("headers"));
        assert!(pem_blocks(b"no blocks at all").unwrap().is_empty());
    }

    #[test]
    fn a_local_certificate_that_is_not_one_is_refused_with_a_hint() {
        let err = |pem: &[u8]| LocalCertificate::new("x.crt", pem.to_vec(), "certs/x.crt").unwrap_err();
        let e = err(b"just text");
        assert!(e.to_string().contains("certs/x.crt") && e.to_string().contains("no `-----BEGIN"), "{e}");
        assert!(e.hint().unwrap().contains("openssl x509"));
        let e = err(b"-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----\n");
        assert!(e.to_string().contains("PRIVATE KEY"), "{e}");
        let e = err(b"-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n");
        assert!(e.to_string().contains("not DER") || e.to_string().contains("not an X.509"), "{e}");
        let e = LocalCertificate::new("x.pem", Vec::new(), "certs/x.pem").unwrap_err();
        assert!(e.to_string().contains("x.pem"), "{e}");
    }
}
