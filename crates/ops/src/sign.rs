//! Signing and verifying images with a key pair the user holds, as cosign does (see
//! docs/signing.md): `key generate` writes the pair, `push --sign` stores a signature of the
//! index and of each platform manifest before any tag is set, `verify` checks them.
//! Passphrases come from `MARQO_BASE_KEY_PASSWORD`, else from the user through [`Prompt`];
//! neither they nor keys are ever printed or logged.

use std::io::Write;
use std::path::{Path, PathBuf};

use ::sign::{Payload, PrivateKey, PublicKey};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use env_vars::EnvVars;
use oci::{media_type, Digest, ImageIndex};
use registry::{pull_scope, Plan, Reference, SameSigner, Signature, ToSign};
use zeroize::Zeroizing;

use crate::remote::{client_for, registry_error, runtime, stored_credentials, NetOptions};
use crate::{Error, Reporter};

/// Asks the user for a passphrase, without echo.
pub trait Prompt {
    /// The passphrase typed after `prompt`; an error when there is nobody to ask.
    fn passphrase(&self, prompt: &str) -> Result<Zeroizing<String>, Error>;
}

/// A key pair written by [`generate_key`].
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    /// The encrypted private key.
    pub private: PathBuf,
    /// The public key (`PRIVATE.pub`).
    pub public: PathBuf,
    /// The SHA-256 of the public key's DER.
    pub fingerprint: Digest,
}

/// `PATH.pub`: where the public key of the private key at `path` goes.
pub fn public_key_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Writes a new key pair: `key` (encrypted with the passphrase, mode 0600) and `key.pub`.
/// Refuses to replace either file.
pub fn generate_key(key: &Path, prompt: &dyn Prompt, printer: &dyn Reporter) -> Result<GeneratedKey, Error> {
    let public = public_key_path(key);
    for path in [key, public.as_path()] {
        if path.exists() || path.is_symlink() {
            return Err(Error::user(format!("{} exists; not replacing a key", path.display()))
                .with_hint("name another --key PATH, or remove the old pair first if it is no longer used"));
        }
    }
    let passphrase = match env_passphrase() {
        Some(p) => p,
        None => {
            let first = prompt.passphrase(&format!("Passphrase for the new key {}: ", key.display()))?;
            let second = prompt.passphrase("The same passphrase again: ")?;
            if first != second {
                return Err(Error::user("the two passphrases differ; no key was written")
                    .with_hint("run the command again and type the same passphrase twice"));
            }
            first
        }
    };
    let sign_err = |e: ::sign::Error| Error::from_error("cannot generate a key", e);
    let private = PrivateKey::generate().map_err(sign_err)?;
    let encrypted = private.to_encrypted_pem(passphrase.as_bytes()).map_err(sign_err)?;
    let public_key = private.public_key();
    write_new(key, encrypted.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&public, public_key.to_pem().as_bytes(), 0o644) {
        let _ = std::fs::remove_file(key);
        return Err(e);
    }
    printer.status(format!(
        "Wrote the private key {} and the public key {} ({})",
        key.display(),
        public.display(),
        public_key.fingerprint()
    ));
    Ok(GeneratedKey { private: key.to_path_buf(), public, fingerprint: public_key.fingerprint() })
}

/// Reads and decrypts the private key at `path` (the passphrase from the environment, else
/// asked for).
pub fn read_private_key(path: &Path, prompt: &(impl Prompt + ?Sized)) -> Result<PrivateKey, Error> {
    let text = read_key_file(path, "private")?;
    let passphrase = match env_passphrase() {
        Some(p) => p,
        None => prompt.passphrase(&format!("Passphrase for {}: ", path.display()))?,
    };
    PrivateKey::from_encrypted_pem(&text, passphrase.as_bytes()).map_err(|e| match e {
        ::sign::Error::WrongPassphrase => Error::user(format!("wrong passphrase for {}", path.display()))
            .with_hint(format!(
                "type the passphrase the key was made with, or set {} to it",
                EnvVars::MARQO_BASE_KEY_PASSWORD
            )),
        e => Error::from_error(format!("cannot read the private key {}", path.display()), e)
            .with_hint("pass a key written by `marqo-base key generate`, cosign or skopeo"),
    })
}

/// Reads the public key at `path`.
pub fn read_public_key(path: &Path) -> Result<PublicKey, Error> {
    let text = read_key_file(path, "public")?;
    PublicKey::from_pem(&text).map_err(|e| {
        Error::from_error(format!("cannot read the public key {}", path.display()), e)
            .with_hint("pass the .pub file written beside the private key (PEM `PUBLIC KEY`, ECDSA P-256)")
    })
}

/// The signatures of a planned push: one of the root (index or manifest) and one of each
/// platform manifest, each for the repository pushed to.
pub fn signatures_for(key: &PrivateKey, plan: &Plan) -> Result<Vec<ToSign>, Error> {
    let mut digests = vec![plan.root.digest.clone()];
    for image in &plan.images {
        if !digests.contains(&image.descriptor.digest) {
            digests.push(image.descriptor.digest.clone());
        }
    }
    let docker_reference = plan.repository.name();
    let public = key.public_key();
    // A signature by this key of the same payload is as good as a new one.
    let same_signer = SameSigner(std::sync::Arc::new(move |stored: &Signature| {
        STANDARD.decode(stored.signature.trim()).is_ok_and(|der| public.verify(&stored.payload, &der).is_ok())
    }));
    digests
        .into_iter()
        .map(|digest| {
            let payload =
                Payload { docker_reference: docker_reference.clone(), manifest_digest: digest.clone() }
                    .to_bytes();
            let signature = key.sign(&payload).map_err(|e| Error::from_error("cannot sign", e))?;
            Ok(ToSign {
                signed: digest,
                signatures: vec![Signature {
                    payload: payload.into(),
                    signature: STANDARD.encode(signature),
                }],
                same_signer: Some(same_signer.clone()),
            })
        })
        .collect()
}

/// What `verify` is asked.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    /// The image: by tag or digest.
    pub reference: Reference,
    /// The public key file.
    pub public_key: PathBuf,
    pub net: NetOptions,
}

/// The verdict on one manifest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Verdict {
    /// At least one signature by the key, for this digest and this repository.
    Signed { signatures: usize },
    /// No signature at all.
    Unsigned,
    /// Signatures, none by this key (their count).
    OtherKeys { signatures: usize },
    /// Signed by this key, but for something else: the reasons.
    Mismatch { reasons: Vec<String> },
}

/// One manifest checked by `verify`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ManifestCheck {
    /// `index`, or the platform of a manifest (`image` for a single-platform root).
    pub what: String,
    pub digest: Digest,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// What `verify` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verification {
    /// `marqo-base.verify/1`.
    pub schema: &'static str,
    /// The reference as resolved: `HOST/REPO@DIGEST`.
    pub reference: String,
    /// The public key's fingerprint.
    pub key: Digest,
    /// The root first, then each platform manifest of an index.
    pub manifests: Vec<ManifestCheck>,
}

impl Verification {
    /// Whether every manifest is signed by the key.
    pub fn all_signed(&self) -> bool {
        self.manifests.iter().all(|m| matches!(m.verdict, Verdict::Signed { .. }))
    }
}

/// Resolves `request.reference`, and checks the signatures of its root and of each
/// platform manifest against the key.
pub fn verify(request: &VerifyRequest, printer: &dyn Reporter) -> Result<Verification, Error> {
    let key = read_public_key(&request.public_key)?;
    let target = &request.reference;
    let client = client_for(&target.registry, stored_credentials(&target.registry)?, &request.net)?;
    let repo = target.repository.as_str();
    let scope = pull_scope(repo);
    let name = target.name();
    let spinner = printer.spinner(&format!("Reading the signatures of {target}"));
    let result = runtime()?.block_on(async {
        let reference = target
            .digest
            .as_ref()
            .map(|d| d.to_string())
            .or_else(|| target.tag.clone())
            .unwrap_or_else(|| "latest".to_string());
        let root = client.get_manifest(repo, &reference, &scope).await?.ok_or_else(|| {
            registry::Error::NotFound { what: target.to_string(), registry: target.registry.clone() }
        })?;
        let mut manifests = vec![(String::new(), root.digest.clone())];
        if media_type::is_index(&root.media_type) {
            manifests[0].0 = "index".to_string();
            let index: ImageIndex =
                serde_json::from_slice(&root.bytes).map_err(|e| registry::Error::Protocol {
                    url: format!("{name}@{}", root.digest),
                    reason: format!("the index does not parse: {e}"),
                })?;
            for child in index.manifests {
                let what = child.platform.as_ref().map_or_else(|| "manifest".to_string(), |p| p.to_string());
                manifests.push((what, child.digest));
            }
        } else {
            manifests[0].0 = "image".to_string();
        }
        let mut checks = Vec::new();
        for (what, digest) in manifests {
            let signatures = registry::read_signatures(&client, repo, &digest, &scope).await?;
            let verdict = judge(&key, target, &digest, &signatures);
            tracing::debug!("{what} {digest}: {verdict:?}");
            checks.push(ManifestCheck { what, digest, verdict });
        }
        Ok::<_, registry::Error>((root.digest, checks))
    });
    spinner.finish_and_clear();
    let (digest, manifests) = result.map_err(|e| registry_error(&format!("cannot verify {target}"), e))?;
    Ok(Verification {
        schema: "marqo-base.verify/1",
        reference: format!("{name}@{digest}"),
        key: key.fingerprint(),
        manifests,
    })
}

/// The verdict on `signatures` of `digest`: a signature counts when it verifies with `key`
/// and its payload names `digest` and the repository of `target`.
fn judge(key: &PublicKey, target: &Reference, digest: &Digest, signatures: &[Signature]) -> Verdict {
    if signatures.is_empty() {
        return Verdict::Unsigned;
    }
    let (mut good, mut by_key) = (0, 0);
    let mut reasons = Vec::new();
    for signature in signatures {
        let Ok(der) = STANDARD.decode(signature.signature.trim()) else { continue };
        if key.verify(&signature.payload, &der).is_err() {
            continue;
        }
        by_key += 1;
        let payload = match Payload::parse(&signature.payload) {
            Ok(p) => p,
            Err(e) => {
                reasons.push(e.to_string());
                continue;
            }
        };
        if &payload.manifest_digest != digest {
            reasons.push(format!("a signature by this key is of {}, not {digest}", payload.manifest_digest));
            continue;
        }
        let same_repository = Reference::parse(payload.repository())
            .is_ok_and(|r| r.registry == target.registry && r.repository == target.repository);
        if !same_repository {
            reasons.push(format!(
                "a signature by this key is for {}, not {}",
                payload.docker_reference,
                target.name()
            ));
            continue;
        }
        good += 1;
    }
    match (good, by_key) {
        (0, 0) => Verdict::OtherKeys { signatures: signatures.len() },
        (0, _) => Verdict::Mismatch { reasons },
        (n, _) => Verdict::Signed { signatures: n },
    }
}

/// `MARQO_BASE_KEY_PASSWORD`, if set (an empty value is an empty passphrase).
fn env_passphrase() -> Option<Zeroizing<String>> {
    std::env::var(EnvVars::MARQO_BASE_KEY_PASSWORD).ok().map(Zeroizing::new)
}

/// The text of a key file; `which` is `private` or `public`. Key files are small: a larger
/// one is not a key.
fn read_key_file(path: &Path, which: &str) -> Result<Zeroizing<String>, Error> {
    const MAX_KEY_FILE: u64 = bounded::MAX_KEY_FILE;
    let hint = match which {
        "private" => "pass the private key file `marqo-base key generate --key PATH` wrote",
        _ => "pass the PATH.pub file `marqo-base key generate --key PATH` wrote",
    };
    let size = std::fs::metadata(path)
        .map_err(|e| {
            Error::from_error(format!("cannot read the {which} key {}", path.display()), e).with_hint(hint)
        })?
        .len();
    if size > MAX_KEY_FILE {
        return Err(
            Error::user(format!("{} is {size} bytes: not a {which} key", path.display())).with_hint(hint)
        );
    }
    let what = format!("the {which} key");
    let bytes = Zeroizing::new(bounded::read_file(path, MAX_KEY_FILE, &what).map_err(|e| {
        Error::from_error(format!("cannot read the {which} key {}", path.display()), e).with_hint(hint)
    })?);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::user(format!("{} is not a PEM file", path.display())).with_hint(hint))?;
    Ok(Zeroizing::new(text.to_string()))
}

/// Writes `bytes` to the new file `path` with `mode`: a temporary file in its directory,
/// synced, then linked into place only if `path` still does not exist.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| Error::from_error(format!("cannot write {}", path.display()), e);
    let mut file = tempfile::Builder::new()
        .prefix(".key.tmp-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(fail)?;
    // The umask may have narrowed the mode; set it exactly.
    file.as_file().set_permissions(std::fs::Permissions::from_mode(mode)).map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.as_file().sync_all().map_err(fail)?;
    file.persist_noclobber(path).map_err(|e| {
        Error::from_error(format!("cannot write {}", path.display()), e.error)
            .with_hint("another process may have written a key there meanwhile; name another --key PATH")
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Reference {
        Reference::parse("127.0.0.1:5000/team/base:1").unwrap()
    }

    fn signed(key: &PrivateKey, reference: &str, digest: &Digest) -> Signature {
        let payload =
            Payload { docker_reference: reference.into(), manifest_digest: digest.clone() }.to_bytes();
        let signature = STANDARD.encode(key.sign(&payload).unwrap());
        Signature { payload: payload.into(), signature }
    }

    #[test]
    fn verdicts() {
        let key = PrivateKey::generate().unwrap();
        let other = PrivateKey::generate().unwrap();
        let digest = Digest::of_bytes(b"index");
        let public = key.public_key();
        assert_eq!(judge(&public, &target(), &digest, &[]), Verdict::Unsigned);
        let good = signed(&key, "127.0.0.1:5000/team/base", &digest);
        assert_eq!(
            judge(&public, &target(), &digest, std::slice::from_ref(&good)),
            Verdict::Signed { signatures: 1 }
        );
        // skopeo's form, with the tag.
        let tagged = signed(&key, "127.0.0.1:5000/team/base:1", &digest);
        assert_eq!(judge(&public, &target(), &digest, &[tagged]), Verdict::Signed { signatures: 1 });
        let theirs = signed(&other, "127.0.0.1:5000/team/base", &digest);
        assert_eq!(
            judge(&public, &target(), &digest, std::slice::from_ref(&theirs)),
            Verdict::OtherKeys { signatures: 1 }
        );
        assert_eq!(judge(&public, &target(), &digest, &[theirs, good]), Verdict::Signed { signatures: 1 });
        let elsewhere = signed(&key, "127.0.0.1:5000/team/other", &digest);
        assert!(matches!(judge(&public, &target(), &digest, &[elsewhere]), Verdict::Mismatch { .. }));
        let of_another = signed(&key, "127.0.0.1:5000/team/base", &Digest::of_bytes(b"x"));
        assert!(matches!(judge(&public, &target(), &digest, &[of_another]), Verdict::Mismatch { .. }));
        // A payload changed after signing.
        let mut tampered = signed(&key, "127.0.0.1:5000/team/base", &digest);
        let text = String::from_utf8(tampered.payload.to_vec()).unwrap().replace("team/base", "team/evil");
        tampered.payload = text.into_bytes().into();
        assert_eq!(judge(&public, &target(), &digest, &[tampered]), Verdict::OtherKeys { signatures: 1 });
        let garbage = Signature { payload: "x".into(), signature: "!!".into() };
        assert_eq!(judge(&public, &target(), &digest, &[garbage]), Verdict::OtherKeys { signatures: 1 });
    }
}
