//! Which certificates we trust, chosen the way pip chooses them.
//!
//! On the machines we run on, TLS goes through a proxy whose CA is only in the system bundle,
//! so a compiled-in root list would fail where pip works: we read the same files pip does.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::Error;

/// Where distributions put the system CA bundle, most common first.
const SYSTEM_BUNDLES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
    "/etc/pki/tls/cacert.pem",
];

/// The bundle to trust, and whether the user named it (then failing to read it is an error).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BundleChoice {
    Explicit(PathBuf),
    System(PathBuf),
    None,
}

/// pip's order: `--cert` / `PIP_CERT` (given to us as `ca_bundle`), then `SSL_CERT_FILE`,
/// then the system bundle.
pub(crate) fn choose_bundle(
    ca_bundle: Option<&Path>,
    env: impl Fn(&str) -> Option<OsString>,
    exists: impl Fn(&Path) -> bool,
) -> BundleChoice {
    if let Some(path) = ca_bundle {
        return BundleChoice::Explicit(path.to_path_buf());
    }
    if let Some(path) = env(env_vars::EnvVars::SSL_CERT_FILE).filter(|p| !p.is_empty()) {
        return BundleChoice::Explicit(PathBuf::from(path));
    }
    SYSTEM_BUNDLES
        .iter()
        .map(Path::new)
        .find(|p| exists(p))
        .map_or(BundleChoice::None, |p| BundleChoice::System(p.to_path_buf()))
}

/// Reads every certificate of a PEM bundle.
pub(crate) fn read_bundle(path: &Path) -> Result<Vec<reqwest::Certificate>, Error> {
    let bad = |reason: String| Error::CaBundle { path: path.to_path_buf(), reason };
    let pem =
        bounded::read_file(path, bounded::MAX_TEXT_FILE, "a CA bundle").map_err(|e| bad(e.to_string()))?;
    let mut certs = Vec::new();
    for der in rustls_pemfile::certs(&mut pem.as_slice()) {
        let der = der.map_err(|e| bad(format!("not a PEM file ({e})")))?;
        let cert = reqwest::Certificate::from_der(&der)
            .map_err(|e| bad(format!("a certificate cannot be parsed ({e})")))?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(bad("it holds no PEM certificate".to_string()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_order() {
        let none = |_: &str| None;
        let ssl = |k: &str| (k == "SSL_CERT_FILE").then(|| OsString::from("/x/ssl.pem"));
        let all = |_: &Path| true;
        let given = Path::new("/x/cert.pem");
        assert_eq!(choose_bundle(Some(given), ssl, all), BundleChoice::Explicit(given.to_path_buf()));
        assert_eq!(choose_bundle(None, ssl, all), BundleChoice::Explicit("/x/ssl.pem".into()));
        assert_eq!(choose_bundle(None, none, all), BundleChoice::System(SYSTEM_BUNDLES[0].into()));
        assert_eq!(choose_bundle(None, none, |_: &Path| false), BundleChoice::None);
    }

    #[test]
    fn bundle_without_certificates_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = read_bundle(&path).unwrap_err();
        assert!(err.to_string().contains("empty.pem"), "{err}");
    }
}
