//! One target per parser of outside data. Each takes any bytes, must not panic, and checks
//! a round trip where we also write the format. Targets that need a file (a `.deb`, Docker's
//! `config.json`) write the input to a temporary file first.

use std::cmp::Ordering;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use pep_types::PackageName;
use url::Url;

/// A fuzz target: its name (also its corpus directory), the function that runs one input,
/// and tokens of its format for the mutations.
pub struct Target {
    /// `requirements_txt`, ...: the directory under `corpus/`.
    pub name: &'static str,
    /// Runs one input; panics on a bug.
    pub run: fn(&[u8]),
    /// Words and punctuation of the format.
    pub tokens: &'static [&'static [u8]],
}

/// Every target.
pub static TARGETS: &[Target] = &[
    Target { name: "requirements_txt", run: requirements_txt, tokens: REQUIREMENT_TOKENS },
    Target { name: "pep508", run: pep508, tokens: REQUIREMENT_TOKENS },
    Target { name: "wheel_metadata", run: wheel_metadata, tokens: METADATA_TOKENS },
    Target { name: "wheel_zip", run: wheel_zip, tokens: ZIP_TOKENS },
    Target { name: "wheel_texts", run: wheel_texts, tokens: WHEEL_TOKENS },
    Target { name: "simple_html", run: simple_html, tokens: HTML_TOKENS },
    Target { name: "simple_json", run: simple_json, tokens: JSON_TOKENS },
    Target { name: "deb822_packages", run: deb822_packages, tokens: DEB822_TOKENS },
    Target { name: "release", run: release, tokens: DEB822_TOKENS },
    Target { name: "inrelease_armor", run: inrelease_armor, tokens: ARMOR_TOKENS },
    Target { name: "dpkg_version", run: dpkg_version, tokens: DPKG_TOKENS },
    Target { name: "deb_archive", run: deb_archive, tokens: AR_TOKENS },
    Target { name: "oci_manifest", run: oci_manifest, tokens: JSON_TOKENS },
    Target { name: "www_authenticate", run: www_authenticate, tokens: AUTH_TOKENS },
    Target { name: "docker_config", run: docker_config, tokens: JSON_TOKENS },
    Target { name: "image_reference", run: image_reference, tokens: REFERENCE_TOKENS },
    Target { name: "lockfile", run: lockfile, tokens: TOML_TOKENS },
    Target { name: "maintainer_script", run: maintainer_script, tokens: SHELL_TOKENS },
    Target { name: "pem_certificate", run: pem_certificate, tokens: PEM_TOKENS },
    Target { name: "elf_shared_object", run: elf_shared_object, tokens: ELF_TOKENS },
    Target { name: "sigstore", run: sigstore, tokens: SIGSTORE_TOKENS },
    Target { name: "changelog", run: changelog, tokens: CHANGELOG_TOKENS },
    Target { name: "bounded_decompression", run: bounded_decompression, tokens: COMPRESSED_TOKENS },
];

/// Magic numbers and frame pieces of gzip, xz and zstd, and a zstd RLE block of 128 KiB.
const COMPRESSED_TOKENS: &[&[u8]] = &[
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff",
    b"\xfd7zXZ\x00\x00",
    b"YZ",
    b"\x28\xb5\x2f\xfd",
    b"\x28\xb5\x2f\xfd\x00\x38",
    b"\x02\x00\x10\x00",
    b"\x03\x00\x10\x00",
    b"\x00\x00\x00\x00",
    b"\xff\xff",
];

const CHANGELOG_TOKENS: &[&[u8]] = &[
    b" (1.0-1) bullseye-security; urgency=high\n",
    b"\n -- A Maintainer <m@example.invalid>  Mon, 01 Jan 2024 10:00:00 +0000\n",
    b"  * CVE-2024-0727: ",
    b"CVE-",
    b"+deb11u",
    b"~",
    b":",
    b"\n\n",
];

fn changelog(bytes: &[u8]) {
    let _ = debian::changelog::fuzz_changelog(bytes);
}

const SIGSTORE_TOKENS: &[&[u8]] = &[
    b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
    b"-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
    b"-----BEGIN PUBLIC KEY-----\n",
    b"-----END PUBLIC KEY-----\n",
    b"{\"critical\":",
    b"\"docker-manifest-digest\"",
    b"\"cosign container image signature\"",
    b"\"optional\":null}",
    b"sha256:",
    b"\"N\":",
];

const SHELL_TOKENS: &[&[u8]] = &[
    b"\n",
    b"; ",
    b" && ",
    b" || ",
    b" | ",
    b"$(",
    b")",
    b"`",
    b"${",
    b"}",
    b"\"",
    b"'",
    b"\\\n",
    b" > ",
    b" 2>&1",
    b"<<EOF\n",
    b"\nEOF\n",
    b"case \"$1\" in\n",
    b"configure)",
    b";;\n",
    b"esac\n",
    b"if [ -e /x ]; then\n",
    b"fi\n",
    b"x=/usr/bin\n",
    b"$x",
    b"update-alternatives --install ",
    b"adduser --system ",
    b"dpkg-statoverride --add ",
    b"dpkg-divert --add ",
    b"chmod 600 ",
    b"chown root:root ",
    b"rm -f ",
    b"mkdir -m 755 ",
    b"ln -sf ",
    b"# ",
];
const PEM_TOKENS: &[&[u8]] = &[
    b"-----BEGIN CERTIFICATE-----\n",
    b"-----END CERTIFICATE-----\n",
    b"-----BEGIN PRIVATE KEY-----\n",
    b"Proc-Type: 4,ENCRYPTED\n",
    b"MII",
    b"=\n",
    b"\x30\x82",
    b"\x30\x81",
    b"\x31",
    b"\x06\x03\x55\x04\x03",
    b"\x0c",
    b"\x13",
    b"\x1e",
    b"\xa0\x03\x02\x01\x02",
];
const ELF_TOKENS: &[&[u8]] = &[
    b"\x7fELF\x02\x01\x01\x00",
    b"\x7fELF\x01\x01\x01\x00",
    b"\x03\x00\x3e\x00",
    b"\x03\x00\xb7\x00",
    b"\x02\x00\x00\x00",
    b"\x04\x00\x00\x00",
    b"\x01\x00\x00\x00",
    b"\x05\x00\x00\x00\x00\x00\x00\x00",
    b"\x0e\x00\x00\x00\x00\x00\x00\x00",
    b"GNU\x00",
    b"\xff\xff\xff\xff\xff\xff\xff\xff",
    b"libc.so.6\x00",
];

const REQUIREMENT_TOKENS: &[&[u8]] = &[
    b"==",
    b">=",
    b"~=",
    b"!=",
    b"===",
    b"<",
    b"; ",
    b" and ",
    b" or ",
    b"(",
    b")",
    b"[",
    b"]",
    b"@ ",
    b"python_version",
    b"platform_machine",
    b"extra",
    b"sys_platform",
    b"\"3.9\"",
    b"'x86_64'",
    b" in ",
    b" not in ",
    b"-r ",
    b"-c ",
    b"-f ",
    b"--hash=sha256:",
    b"--index-url ",
    b"--only-binary :all:",
    b" \\\n",
    b"${HOME}",
    b"# ",
    b".*",
    b"+local",
    b"1!",
    b".post1",
    b".dev0",
    b"rc1",
];
const METADATA_TOKENS: &[&[u8]] = &[
    b"Metadata-Version: 2.1\n",
    b"Name: ",
    b"Version: ",
    b"Requires-Dist: ",
    b"Requires-Python: ",
    b"Provides-Extra: ",
    b"Dynamic: ",
    b"\n        ",
    b"; extra == \"x\"",
    b"\n\n",
    b": ",
];
const ZIP_TOKENS: &[&[u8]] = &[
    b"PK\x03\x04",
    b"PK\x01\x02",
    b"PK\x05\x06",
    b"PK\x06\x06",
    b"PK\x06\x07",
    b"\xff\xff\xff\xff",
    b"\x01\x00\x1c\x00",
    b"demo-1.0.dist-info/METADATA",
    b"\x08\x00",
    b"\x00\x00",
];
const WHEEL_TOKENS: &[&[u8]] = &[
    b",sha256=",
    b",",
    b"\"",
    b"\"\"",
    b"\n",
    b"Wheel-Version: 1.0\n",
    b"Root-Is-Purelib: true\n",
    b"[console_scripts]\n",
    b"[gui_scripts]\n",
    b" = ",
    b":main",
    b"..",
    b"/",
    b"\\",
];
const HTML_TOKENS: &[&[u8]] = &[
    b"<a href=\"",
    b"\">",
    b"</a>",
    b"#sha256=",
    b" data-requires-python=\"",
    b"&gt;=3",
    b"&lt;",
    b"&amp;",
    b" data-yanked=\"\"",
    b" data-dist-info-metadata=\"sha256=",
    b"%2B",
    b".whl",
    b".tar.gz",
    b"<!--",
    b"-->",
    b"<base href=\"",
    b"&#x",
    b"&#",
];
const JSON_TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"true",
    b"\\u0000",
    b"\\ud800",
    b"1e999",
    b"\"files\"",
    b"\"filename\"",
    b"\"url\"",
    b"\"hashes\"",
    b"\"sha256\"",
    b"\"meta\"",
    b"\"api-version\"",
    b"\"mediaType\"",
    b"\"schemaVersion\"",
    b"\"manifests\"",
    b"\"layers\"",
    b"\"config\"",
    b"\"digest\"",
    b"\"size\"",
    b"\"platform\"",
    b"\"auths\"",
    b"\"auth\"",
    b"\"credsStore\"",
    b"\"credHelpers\"",
    b"\"identitytoken\"",
    b"\"sha256:",
    b"-1",
    b"18446744073709551616",
];
const DEB822_TOKENS: &[&[u8]] = &[
    b"Package: ",
    b"Version: ",
    b"Architecture: ",
    b"Depends: ",
    b"Pre-Depends: ",
    b"Provides: ",
    b"Multi-Arch: ",
    b"Filename: ",
    b"Size: ",
    b"SHA256:\n ",
    b"\n ",
    b"\n .\n",
    b"\n\n",
    b" | ",
    b" (>= ",
    b":any",
    b"[amd64]",
    b"<!nocheck>",
    b"Suite: ",
    b"Codename: ",
    b"Date: ",
    b"Valid-Until: ",
    b"Acquire-By-Hash: yes\n",
    b"No-Support-for-Architecture-all: Packages\n",
    b"Sat, 01 Jan 2000 00:00:00 UTC",
];
const ARMOR_TOKENS: &[&[u8]] = &[
    b"-----BEGIN PGP SIGNED MESSAGE-----\n",
    b"-----BEGIN PGP SIGNATURE-----\n",
    b"-----END PGP SIGNATURE-----\n",
    b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n",
    b"-----END PGP PUBLIC KEY BLOCK-----\n",
    b"Hash: SHA512\n",
    b"\n\n",
    b"=",
    b"==",
    b"- ",
    b"AAAA",
];
const DPKG_TOKENS: &[&[u8]] =
    &[b":", b"-", b"~", b"+", b".", b"1:", b"0", b"99999999999999999999", b"~~", b"a"];
const AR_TOKENS: &[&[u8]] = &[
    b"!<arch>\n",
    b"debian-binary   ",
    b"control.tar.gz  ",
    b"control.tar.xz  ",
    b"data.tar.zst    ",
    b"`\n",
    b"2.0\n",
    b"0           ",
    b"4294967295  ",
    b"\x1f\x8b",
    b"\xfd7zXZ\x00",
    b"\x28\xb5\x2f\xfd",
];
const AUTH_TOKENS: &[&[u8]] = &[
    b"Bearer ",
    b"Basic ",
    b"realm=",
    b"service=",
    b"scope=",
    b"\"",
    b",",
    b"=",
    b"\\\"",
    b"; rel=\"next\"",
    b"<",
    b">",
    b"repository:a:pull,push",
];
const REFERENCE_TOKENS: &[&[u8]] = &[
    b"/",
    b":",
    b"@sha256:",
    b"localhost",
    b"127.0.0.1:5000",
    b"[::1]",
    b"library/",
    b"__",
    b"-",
    b".",
    b"A",
];
const TOML_TOKENS: &[&[u8]] = &[
    b"[[python]]\n",
    b"[[debian]]\n",
    b"[[file]]\n",
    b"[image]\n",
    b"[python]\n",
    b"[debian]\n",
    b" = ",
    b"\"",
    b"'''",
    b"\"\"\"",
    b"[",
    b"]",
    b"{",
    b"}",
    b"version = 1\n",
    b"mode = 0o4755\n",
    b"sha256 = \"",
    b"platforms = [\"linux/amd64\"]\n",
    b"\\u0000",
    b"inf",
    b"nan",
    b"1979-05-27T07:32:00Z",
];

fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// A requirements file: pip's syntax, options and continuations; every requirement read
/// reads back from its own text.
fn requirements_txt(bytes: &[u8]) {
    let Ok(set) = py_resolver::RequirementSet::parse_str(&text(bytes), "r.in", Path::new("/nonexistent"))
    else {
        return;
    };
    for entry in set.requirements.iter().chain(&set.constraints) {
        reparse(&entry.req);
    }
}

/// A PEP 508 line, also as the marker of a requirement; what parses prints and parses back.
fn pep508(bytes: &[u8]) {
    let line = text(bytes);
    if let Ok(req) = pep_types::parse_requirement(&line) {
        reparse(&req);
    }
    if let Ok(req) = pep_types::parse_requirement(&format!("demo; {line}")) {
        reparse(&req);
    }
}

/// A requirement prints and parses back to itself, unless a marker value holds a quote
/// character: pep508_rs 0.9 writes every value in `'...'`, so `"it's"` does not read back.
/// Our outputs never hold such values (they come from index metadata only after the
/// resolver evaluated them), so that case is only checked not to panic.
fn reparse(req: &pep_types::Req) {
    let shown = req.to_string();
    if shown.split_once(';').is_some_and(|(_, marker)| marker.matches(['\'', '"']).count() % 2 == 1) {
        let _ = pep_types::parse_requirement(&shown);
        return;
    }
    let again =
        pep_types::parse_requirement(&shown).unwrap_or_else(|e| panic!("`{shown}` does not parse back: {e}"));
    assert_eq!(&again, req, "`{shown}` parses back to another requirement");
}

fn wheel_metadata(bytes: &[u8]) {
    let _ = pypi_client::metadata::Metadata::parse(bytes);
}

fn wheel_zip(bytes: &[u8]) {
    pypi_client::fuzz_zip(bytes);
}

fn wheel_texts(bytes: &[u8]) {
    image::fuzz_wheel_texts(&text(bytes));
}

fn page_url() -> Url {
    Url::parse("http://127.0.0.1:1/simple/demo/").expect("a URL")
}

fn simple_html(bytes: &[u8]) {
    let project = PackageName::from_str("demo").expect("a name");
    let _ = pypi_client::simple::parse_html(&text(bytes), &page_url(), &project, &Default::default());
}

fn simple_json(bytes: &[u8]) {
    let project = PackageName::from_str("demo").expect("a name");
    let _ = pypi_client::simple::parse_json(bytes, &page_url(), &project, &Default::default());
}

fn deb822_packages(bytes: &[u8]) {
    let text = text(bytes);
    for paragraph in debian::deb822::paragraphs(&text).flatten() {
        let _ = paragraph.get("Depends").map(|d| debian::relation::parse_relations(d, "amd64"));
    }
    let _ = debian::Index::parse("amd64", text.into_owned(), "Packages");
}

fn release(bytes: &[u8]) {
    let text = text(bytes);
    let _ = debian::release::Release::parse(&text, "Release");
    let _ = debian::release::parse_release_date(&text);
}

fn inrelease_armor(bytes: &[u8]) {
    let _ = debian::release::fuzz_dearmor(bytes);
}

/// dpkg versions: what parses prints as given and compares equal to itself; comparison is
/// antisymmetric.
fn dpkg_version(bytes: &[u8]) {
    let text = text(bytes);
    let (a, b) = text.split_once('\n').unwrap_or((&text, "1.0"));
    if let Ok(version) = debian::Version::parse(a) {
        let shown = version.to_string();
        let again =
            debian::Version::parse(&shown).unwrap_or_else(|e| panic!("`{shown}` does not parse back: {e}"));
        assert_eq!(again.to_string(), shown);
        assert_eq!(debian::compare_versions(a, a), Ordering::Equal, "`{a}` is not equal to itself");
    }
    assert_eq!(debian::compare_versions(a, b), debian::compare_versions(b, a).reverse(), "`{a}` vs `{b}`");
    let _ = debian::relation::parse_relations(a, "arm64");
}

/// Decompression with a claimed size: `[compression][claim: u16 BE][stream]`. Through
/// `bounded::Reader`, each decoder (Debian's gzip, xz, zstd; a layer's gzip, zstd) yields
/// exactly what the same decoder yields unbounded when that fits the claim, and an error
/// naming the claim when it does not; never more than the claim.
fn bounded_decompression(bytes: &[u8]) {
    use std::io::Read;
    let [selector, hi, lo, stream @ ..] = bytes else { return };
    let claim = u64::from(u16::from_be_bytes([*hi, *lo]));
    let debian = [
        debian::compress::FileCompression::Gzip,
        debian::compress::FileCompression::Xz,
        debian::compress::FileCompression::Zstd,
    ];
    match usize::from(*selector) % 5 {
        i @ 0..=2 => {
            let decoder = || debian[i].decoder(stream);
            // The reference: the same decoder, cut one byte past the claim.
            let mut reference = Vec::new();
            let reference = decoder()
                .and_then(|mut d| (&mut d).take(claim + 1).read_to_end(&mut reference))
                .map(|_| reference);
            let mut out = Vec::new();
            let got =
                decoder().and_then(|d| bounded::Reader::claimed(d, claim, "fuzz").read_to_end(&mut out));
            assert!(out.len() as u64 <= claim, "{} bytes out of a claim of {claim}", out.len());
            match (reference, got) {
                (Ok(reference), got) if reference.len() as u64 > claim => {
                    let err = got.expect_err("more than the claim reads without an error");
                    assert!(bounded::too_large(&err).is_some(), "not the claim's error: {err}");
                }
                (Ok(reference), Ok(_)) => assert_eq!(reference, out),
                (Ok(reference), Err(e)) => {
                    panic!("{} bytes fit the claim {claim}, yet: {e}", reference.len())
                }
                (Err(_), Ok(_)) => panic!("the unbounded decoder fails, the bounded one does not"),
                (Err(_), Err(_)) => {}
            }
        }
        i => {
            let compression = if i == 3 { image::Compression::Gzip } else { image::Compression::Zstd };
            let Some(file) = temp_file(stream) else { return };
            if let Ok((_, size)) = image::uncompressed_digest(file.path(), compression, claim, "fuzz") {
                assert!(size <= claim, "{size} bytes out of a claim of {claim}");
            }
        }
    }
}

/// A `.deb` (ar members, compressed control tarballs) from a file.
fn deb_archive(bytes: &[u8]) {
    let Some(file) = temp_file(bytes) else { return };
    let _ = debian::Deb::new(file.path(), "demo").read_control();
}

/// OCI and Docker manifests, indexes and configs: what deserializes serializes and
/// deserializes to the same value.
fn oci_manifest(bytes: &[u8]) {
    fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug>(
        bytes: &[u8],
    ) {
        if let Ok(value) = serde_json::from_slice::<T>(bytes) {
            let written = serde_json::to_vec(&value).expect("serializes");
            let back: T = serde_json::from_slice(&written).expect("reads back");
            assert_eq!(back, value);
        }
    }
    round_trip::<oci::ImageManifest>(bytes);
    round_trip::<oci::ImageIndex>(bytes);
    round_trip::<oci::ImageConfig>(bytes);
}

fn www_authenticate(bytes: &[u8]) {
    let text = text(bytes);
    let _ = registry::parse_challenge(&text);
    let _ = registry::next_link(&text);
}

fn docker_config(bytes: &[u8]) {
    let Some(file) = temp_file(bytes) else { return };
    if let Ok(config) = registry::DockerConfig::read(file.path()) {
        let _ = config.helper_for("127.0.0.1:5000");
        // Only `auths` entries: a helper would be run as a program.
        if config.helper_for("127.0.0.1:5000").is_none() {
            let _ = config.get("127.0.0.1:5000");
        }
    }
}

/// Image references: what parses prints and parses back to the same reference.
fn image_reference(bytes: &[u8]) {
    let text = text(bytes);
    if let Ok(reference) = registry::Reference::parse(&text) {
        let shown = reference.to_string();
        let again = registry::Reference::parse(&shown)
            .unwrap_or_else(|e| panic!("`{shown}` does not parse back: {e}"));
        assert_eq!(again.to_string(), shown);
    }
    let _ = registry::parse_registry(&text);
}

/// `marqo-base.toml` and `marqo-base.lock`; a lock that parses is written and parsed back
/// unchanged.
fn lockfile(bytes: &[u8]) {
    let text = text(bytes);
    let _ = lockfile::Manifest::parse(&text, Path::new("marqo-base.toml"));
    if let Ok(lock) = lockfile::Lock::parse(&text, Path::new("marqo-base.lock")) {
        let written = lock.to_toml_string();
        let back = lockfile::Lock::parse(&written, Path::new("marqo-base.lock"))
            .unwrap_or_else(|e| panic!("a written lock does not parse back: {e}\n{written}"));
        assert_eq!(back.to_toml_string(), written);
    }
}

/// A maintainer script: split into commands and judged, whatever it holds.
fn maintainer_script(bytes: &[u8]) {
    let _ = debian::scripts::fuzz_script(&text(bytes));
}

/// A certificate file as the manifest gives it, and a CA directory's files as
/// `openssl rehash` and the Java truststore read them: what is accepted has a subject hash
/// and goes into a truststore that has its integrity digest.
fn pem_certificate(bytes: &[u8]) {
    if let Ok(local) = debian::LocalCertificate::new("x.crt", bytes.to_vec(), "x.crt") {
        let _ = local.certificate.subject_hash();
        let entry =
            debian::jks::TrustedEntry { alias: "debian:x.pem".into(), der: local.certificate.der().to_vec() };
        let store = debian::jks::write_truststore(&[entry], "changeit", 0).expect("one entry fits");
        assert_eq!(&store[..4], b"\xfe\xed\xfe\xed");
    }
    if let Ok(certs) = debian::certs::read_pem_certificates(bytes) {
        for cert in certs {
            let _ = (cert.subject_hash(), cert.sha1_fingerprint());
        }
    }
}

/// Key files and signature payloads, as `push --sign` and `verify` read them: a public key
/// round-trips through its PEM; a payload through its bytes. A private key is tried with
/// the seeds' passphrase `x` (the scrypt limits keep each try bounded).
fn sigstore(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        let _ = sign::Payload::parse(bytes);
        return;
    };
    if let Ok(key) = sign::PublicKey::from_pem(text) {
        assert_eq!(sign::PublicKey::from_pem(&key.to_pem()).expect("our PEM reads back"), key);
    }
    if let Ok(key) = sign::PrivateKey::from_encrypted_pem(text, b"x") {
        let signature = key.sign(b"m").expect("signs");
        key.public_key().verify(b"m", &signature).expect("verifies its own signature");
    }
    if let Ok(payload) = sign::Payload::parse(bytes) {
        assert_eq!(sign::Payload::parse(&payload.to_bytes()).expect("our payload reads back"), payload);
    }
}

/// A shared object as `ldconfig` reads it, for both architectures.
fn elf_shared_object(bytes: &[u8]) {
    let Some(file) = temp_file(bytes) else { return };
    for arch in ["amd64", "arm64"] {
        let _ = debian::ldcache::read_elf(file.path(), arch);
    }
}

fn temp_file(bytes: &[u8]) -> Option<tempfile::NamedTempFile> {
    let mut file = tempfile::NamedTempFile::new().ok()?;
    file.write_all(bytes).ok()?;
    Some(file)
}
