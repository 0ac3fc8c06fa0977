//! Signing: `key generate`, `push --sign` and `verify` against a real `docker-registry` on
//! 127.0.0.1, judged by code we did not write: skopeo with a `sigstoreSigned` policy and
//! `use-sigstore-attachments`, as podman would pull (skopeo also signs with our key, and
//! `verify` must accept its signature), and, always, a second implementation of cosign's
//! formats on OpenSSL and libsodium (`tests/sigstore/cosign_format.py`) that decrypts our
//! keys, verifies our signatures and signs images `verify` must accept. Debian bookworm
//! builds skopeo with sigstore disabled ("Debian-local change: sigstore disabled"): where the
//! host's skopeo is such, trixie's (built with sigstore) is locked and built by us from the
//! host's mirror (`tests/sigstore/skopeo.toml`), once per test binary, and run in podman. The
//! skopeo checks are skipped with a note only when neither is possible
//! (`MARQO_BASE_SKIP_LIVE=1`, or no podman).

#[path = "../../debian/tests/common/mod.rs"]
mod apt;
mod common;
#[path = "common/world.rs"]
mod world;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::{Run, TestContext};
use test_support::{podman_missing, DockerRegistry, Podman, TestImage, WrittenImage};

const PASSWORD: &str = "pass-Wr0ng-horse-staple";

fn mb(ctx: &TestContext, args: &[&str], password: Option<&str>) -> Run {
    let mut cmd = ctx.command(args);
    cmd.env_remove("DOCKER_CONFIG").env_remove("SSL_CERT_FILE").stdin(std::process::Stdio::null());
    if let Some(password) = password {
        cmd.env("MARQO_BASE_KEY_PASSWORD", password);
    }
    Run::from(cmd.output().expect("run marqo-base"))
}

fn image(ctx: &TestContext, name: &str, seed: u64) -> WrittenImage {
    TestImage::new(seed).layers(&[2048]).write(&ctx.work().join(name), "latest")
}

/// `cosign_format.py ARGS` with Debian's Python (python3-cryptography, python3-nacl).
#[track_caller]
fn cosign_format(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigstore/cosign_format.py");
    let out = Command::new("/usr/bin/python3").arg(script).args(args).output().expect("run python3");
    assert!(out.status.success(), "cosign_format.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// How many signatures of `digest` in `repo` the public key `public` made, by
/// cosign_format.py.
fn signatures_by(host: &str, repo: &str, digest: &str, public: &Path) -> usize {
    let base = format!("http://{host}");
    cosign_format(&["verify", &base, repo, digest, &public.display().to_string()]).trim().parse().unwrap()
}

/// The skopeo that runs the sigstore checks: the host's when it has sigstore, else Debian
/// trixie's in podman.
#[derive(Clone)]
enum Skopeo {
    Host,
    Trixie(Arc<Trixie>),
}

impl Skopeo {
    /// The skopeo whose sigstore checks count, given what the host's printed when it tried
    /// one: the host's, unless it has sigstore disabled; then trixie's; `None` (with a note)
    /// when that cannot be had here either.
    fn with_sigstore(host_attempt: &Output) -> Option<Skopeo> {
        if !String::from_utf8_lossy(&host_attempt.stderr).contains("sigstore disabled") {
            return Some(Skopeo::Host);
        }
        trixie().map(Skopeo::Trixie)
    }

    /// `skopeo ARGS`; in the container, on the host's network (the registry listens on
    /// 127.0.0.1) with `dir` mounted where it is, so paths under it mean the same.
    fn run(&self, dir: &Path, args: &[String]) -> Output {
        match self {
            Skopeo::Host => Command::new("skopeo").args(args).output().expect("run skopeo"),
            Skopeo::Trixie(trixie) => trixie
                .podman
                .command()
                .args(["run", "--rm", "--network=host", "--entrypoint", "/usr/bin/skopeo", "-v"])
                .arg(format!("{0}:{0}", dir.display()))
                .arg(&trixie.image)
                .args(args)
                .output()
                .expect("run podman"),
        }
    }
}

/// Debian trixie's skopeo, loaded into a podman of its own.
struct Trixie {
    podman: Podman,
    /// The image's ID in that podman's storage.
    image: String,
}

/// Built once per test binary (`None` inside: it cannot be built here); removed at exit.
static TRIXIE: Mutex<Option<Option<Arc<Trixie>>>> = Mutex::new(None);

extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

/// Removes the podman storage (statics are never dropped).
extern "C" fn remove_trixie() {
    if let Ok(mut trixie) = TRIXIE.lock() {
        trixie.take();
    }
}

/// Trixie's skopeo: `tests/sigstore/skopeo.toml` locked and built by us from the host's apt
/// mirror (the user's cache, as the other live tests) for this host's architecture, loaded
/// into podman. `None`, with a note, with `MARQO_BASE_SKIP_LIVE=1` or without podman.
fn trixie() -> Option<Arc<Trixie>> {
    let mut slot = TRIXIE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(trixie) = slot.as_ref() {
        return trixie.clone();
    }
    let skip = |why: &str| {
        test_support::say_skipped(
            "skopeo's sigstore policy checks (Debian 12's skopeo has sigstore disabled)",
            why,
        );
    };
    if std::env::var_os("MARQO_BASE_SKIP_LIVE").is_some_and(|v| v == "1") {
        skip("MARQO_BASE_SKIP_LIVE=1 (trixie's skopeo is built from the live mirror)");
        *slot = Some(None);
        return None;
    }
    if let Some(tool) = podman_missing() {
        panic!("`{tool}` is not installed (trixie's skopeo runs in podman): ./test.sh installs it");
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigstore/skopeo.toml"))
            .expect("read tests/sigstore/skopeo.toml");
    let (platform, manifest) = match std::env::consts::ARCH {
        "aarch64" => ("linux/arm64", manifest.replace("\"linux/amd64\"", "\"linux/arm64\"")),
        _ => ("linux/amd64", manifest),
    };
    std::fs::write(dir.path().join("marqo-base.toml"), manifest).unwrap();
    for args in [&["lock"][..], &["build", "--oci", "out"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_marqo-base"))
            .args(args)
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run marqo-base");
        assert!(out.status.success(), "{args:?} of skopeo.toml: {}", String::from_utf8_lossy(&out.stderr));
    }
    let podman = Podman::new();
    let pulled = podman
        .command()
        .args(["pull", "-q", &podman.layout(&dir.path().join("out"), "latest")])
        .output()
        .expect("run podman");
    assert!(pulled.status.success(), "podman pull: {}", String::from_utf8_lossy(&pulled.stderr));
    let image = String::from_utf8(pulled.stdout).unwrap().trim().to_string();
    let trixie = Arc::new(Trixie { podman, image });
    // SAFETY: registers a plain function with the C library, which calls it at exit.
    assert_eq!(unsafe { atexit(remove_trixie) }, 0, "atexit");
    *slot = Some(Some(trixie.clone()));
    let version = Skopeo::Trixie(trixie.clone()).run(dir.path(), &["--version".to_string()]);
    assert!(version.status.success(), "skopeo --version: {}", String::from_utf8_lossy(&version.stderr));
    eprintln!(
        "note: the host's skopeo has sigstore disabled; {} (Debian trixie, {platform}) locked, built \
         and loaded into podman in {:.1}s runs the policy checks",
        String::from_utf8_lossy(&version.stdout).trim(),
        started.elapsed().as_secs_f64()
    );
    Some(trixie)
}

fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo").args(args).output().expect("run skopeo")
}

#[track_caller]
fn skopeo_ok(args: &[&str]) -> String {
    let out = skopeo(args);
    assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A policy that accepts images of `scope` (`HOST/NAMESPACE`) only when signed by
/// `public_key`, and a registries.d that reads (and writes) sigstore attachments there.
struct Policy {
    dir: PathBuf,
    policy: PathBuf,
    registries_d: PathBuf,
}

impl Policy {
    fn new(dir: &Path, name: &str, host: &str, scope: &str, public_key: &Path) -> Policy {
        let policy = dir.join(format!("{name}-policy.json"));
        let doc = serde_json::json!({
            "default": [{"type": "reject"}],
            "transports": {
                "docker": {
                    scope: [{
                        "type": "sigstoreSigned",
                        "keyPath": public_key,
                        "signedIdentity": {"type": "matchRepository"}
                    }]
                },
                "oci": {"": [{"type": "insecureAcceptAnything"}]}
            }
        });
        std::fs::write(&policy, doc.to_string()).unwrap();
        let registries_d = dir.join(format!("{name}-registries.d"));
        std::fs::create_dir_all(&registries_d).unwrap();
        std::fs::write(
            registries_d.join("local.yaml"),
            format!("docker:\n  {host}:\n    use-sigstore-attachments: true\n"),
        )
        .unwrap();
        Policy { dir: dir.to_path_buf(), policy, registries_d }
    }

    /// `skopeo copy` of `reference` (docker://) into a new OCI layout in the policy's
    /// directory.
    fn copy(&self, skopeo: &Skopeo, reference: &str, extra: &[&str]) -> Output {
        let out = self.dir.join(format!("copy-{}", reference.replace(['/', ':', '@'], "_")));
        let _ = std::fs::remove_dir_all(&out);
        let mut args = vec![
            "--policy".to_string(),
            self.policy.display().to_string(),
            "--registries.d".to_string(),
            self.registries_d.display().to_string(),
            "copy".to_string(),
            "--src-tls-verify=false".to_string(),
            // The policy judges the source's signatures; an OCI layout cannot store them.
            "--remove-signatures".to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(format!("docker://{reference}"));
        args.push(format!("oci:{}:x", out.display()));
        skopeo.run(&self.dir, &args)
    }
}

#[track_caller]
fn accepted(out: &Output) {
    assert!(out.status.success(), "skopeo refused: {}", String::from_utf8_lossy(&out.stderr));
}

/// skopeo refused the image for its signatures (the policy's verdict, not another error:
/// "Source image rejected: A signature was required, but no signature exists", "...: Signature
/// for identity ... is not accepted", ...).
#[track_caller]
fn refused(out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "skopeo accepted what it should refuse");
    assert!(stderr.contains("Source image rejected"), "skopeo failed for another reason: {stderr}");
}

/// Generates the key pair `name` (and `name.pub`) in the sandbox.
fn generate(ctx: &TestContext, name: &str, password: &str) -> PathBuf {
    mb(ctx, &["key", "generate", "--key", name], Some(password)).success();
    ctx.work().join(name)
}

#[test]
fn key_generate_writes_cosigns_format_and_keeps_existing_keys() {
    let ctx = TestContext::new();
    let run = mb(&ctx, &["-vv", "key", "generate", "--key", "keys.key"], Some(PASSWORD));
    run.success();
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD), "{}", run.stderr);
    let private = ctx.read("keys.key");
    let public = ctx.read("keys.key.pub");
    assert!(private.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"), "{private}");
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{public}");
    let mode = std::fs::metadata(ctx.work().join("keys.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The public key is P-256 as openssl reads it.
    let text = Command::new("openssl")
        .args(["pkey", "-pubin", "-in", "keys.key.pub", "-noout", "-text"])
        .current_dir(ctx.work())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("P-256"), "{text:?}");
    // OpenSSL and libsodium open the private key with the passphrase: it is the .pub's.
    let passphrase = ctx.write("passphrase", PASSWORD);
    let key = ctx.work().join("keys.key").display().to_string();
    assert_eq!(cosign_format(&["decrypt", &key, &passphrase.display().to_string()]), public);

    let again = mb(&ctx, &["key", "generate", "--key", "keys.key"], Some(PASSWORD));
    again.code(2);
    assert!(again.stderr.contains("keys.key exists") && again.stderr.contains("hint:"), "{}", again.stderr);
    assert_eq!(ctx.read("keys.key"), private, "the old key was replaced");
    std::fs::remove_file(ctx.work().join("keys.key")).unwrap();
    // Its .pub alone is enough to refuse.
    mb(&ctx, &["key", "generate", "--key", "keys.key"], Some(PASSWORD)).code(2);
    assert!(!ctx.exists("keys.key"));
}

#[test]
fn bad_keys_and_passphrases_are_clear_errors() {
    let ctx = TestContext::new();
    let registry = DockerRegistry::start();
    let repo = format!("{}/team/base", registry.host());
    image(&ctx, "img", 3);
    generate(&ctx, "k", PASSWORD);
    let push = |key: &str, password: Option<&str>| {
        mb(&ctx, &["-vv", "push", &repo, "--oci", "img", "--tag", "1", "--yes", "--sign", key], password)
    };
    let wrong = push("k", Some("not-it"));
    wrong.code(2);
    assert!(wrong.stderr.contains("wrong passphrase for k"), "{}", wrong.stderr);
    assert!(wrong.stderr.contains("hint:") && !wrong.stderr.contains("not-it"), "{}", wrong.stderr);
    ctx.write("corrupt.key", "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n");
    let corrupt = push("corrupt.key", Some(PASSWORD));
    corrupt.code(2);
    assert!(corrupt.stderr.contains("cannot read the private key corrupt.key"), "{}", corrupt.stderr);
    let public_as_private = push("k.pub", Some(PASSWORD));
    public_as_private.code(2);
    assert!(public_as_private.stderr.contains("PUBLIC KEY"), "{}", public_as_private.stderr);
    // Nothing was pushed: the key is read before anything is sent.
    let tags = skopeo(&["list-tags", "--tls-verify=false", &format!("docker://{repo}")]);
    assert!(!tags.status.success() || !String::from_utf8_lossy(&tags.stdout).contains("\"1\""));
    let verify = mb(&ctx, &["verify", &format!("{repo}:1"), "--key", "k"], None);
    verify.code(2);
    assert!(verify.stderr.contains("cannot read the public key k"), "{}", verify.stderr);
}

#[test]
fn signed_pushes_pass_skopeos_policy_and_verify() {
    let ctx = TestContext::new();
    let registry = DockerRegistry::start();
    let host = registry.host();
    let work = ctx.work();
    let img = image(&ctx, "img", 1);
    let ours = generate(&ctx, "ours.key", PASSWORD);
    let theirs = generate(&ctx, "theirs.key", "another-passphrase");
    let ours_pub = work.join("ours.key.pub");
    let theirs_pub = work.join("theirs.key.pub");
    let repo = format!("{host}/team/base");

    let run = mb(
        &ctx,
        &[
            "-vv",
            "push",
            &repo,
            "--oci",
            "img",
            "--tag",
            "1",
            "--yes",
            "--sign",
            "ours.key",
            "--record",
            "pushed.json",
        ],
        Some(PASSWORD),
    );
    run.success();
    assert!(!run.stderr.contains(PASSWORD) && !run.stdout.contains(PASSWORD));
    assert!(!run.stderr.contains(&ctx.read("ours.key")[40..100]), "key material in the log");
    assert!(run.stderr.contains("3 manifests signed"), "{}", run.stderr);
    let record: serde_json::Value = serde_json::from_str(&ctx.read("pushed.json")).unwrap();
    common::validate_json("push", &ctx.read("pushed.json"));
    let signed: Vec<&str> =
        record["signatures"].as_array().unwrap().iter().map(|s| s["signed"].as_str().unwrap()).collect();
    let mut expected = vec![img.index.digest.as_str()];
    expected.extend(img.manifests.iter().map(|(_, m)| m.digest.as_str()));
    assert_eq!(signed, expected);
    // Where cosign keeps them, with the digest the record names.
    for entry in record["signatures"].as_array().unwrap() {
        let tag = entry["tag"].as_str().unwrap();
        assert_eq!(tag, format!("{}.sig", entry["signed"].as_str().unwrap().replace(':', "-")));
        let raw = skopeo_ok(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{repo}:{tag}")]);
        assert_eq!(
            oci::Digest::of_bytes(raw.as_bytes()).to_string(),
            entry["signature_manifest"].as_str().unwrap()
        );
        let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
        let layer = &manifest["layers"][0];
        assert_eq!(layer["mediaType"], "application/vnd.dev.cosign.simplesigning.v1+json");
        assert!(layer["annotations"]["dev.cosignproject.cosign/signature"].is_string());
    }

    // OpenSSL verifies each signature with our public key, and none with theirs.
    for digest in &expected {
        assert_eq!(signatures_by(&host, "team/base", digest, &ours_pub), 1, "{digest}");
        assert_eq!(signatures_by(&host, "team/base", digest, &theirs_pub), 0, "{digest}");
    }

    let scope = format!("{host}/team");
    let accept_ours = Policy::new(&work, "ours", &host, &scope, &ours_pub);
    let accept_theirs = Policy::new(&work, "theirs", &host, &scope, &theirs_pub);
    let skopeo = Skopeo::with_sigstore(&accept_ours.copy(&Skopeo::Host, &format!("{repo}:1"), &[]));
    if let Some(skopeo) = &skopeo {
        // Signed by our key: accepted, by tag, by digest, all platforms.
        accepted(&accept_ours.copy(skopeo, &format!("{repo}:1"), &[]));
        accepted(&accept_ours.copy(skopeo, &format!("{repo}@{}", img.index.digest), &["--all"]));
        accepted(&accept_ours.copy(skopeo, &format!("{repo}:1"), &["--override-arch", "arm64"]));
        // Another key's policy refuses it.
        refused(&accept_theirs.copy(skopeo, &format!("{repo}:1"), &[]));
        // Copied with its signature (skopeo reads and writes the attachment) to another
        // repository: the signed identity is team/base, so matchRepository refuses it there.
        let moved = format!("{host}/team/moved:1");
        let copy = [
            "--insecure-policy",
            "--override-arch",
            "amd64",
            "--registries.d",
            &accept_ours.registries_d.display().to_string(),
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{repo}:1"),
            &format!("docker://{moved}"),
        ]
        .map(String::from);
        let out = skopeo.run(&work, &copy);
        assert!(out.status.success(), "skopeo copy: {}", String::from_utf8_lossy(&out.stderr));
        let amd64 = &img.manifests.iter().find(|(p, _)| p == "linux/amd64").unwrap().1.digest;
        assert_eq!(signatures_by(&host, "team/moved", amd64, &ours_pub), 1, "the signature came along");
        let elsewhere = accept_ours.copy(skopeo, &moved, &[]);
        refused(&elsewhere);
        assert!(String::from_utf8_lossy(&elsewhere.stderr).contains("not accepted"), "{elsewhere:?}");
        let verify = mb(&ctx, &["verify", &moved, "--key", "ours.key.pub"], None);
        verify.code(1);
        assert!(
            verify.stdout.contains("MISMATCH") && verify.stdout.contains("team/base"),
            "{}",
            verify.stdout
        );
    }
    let ok = mb(&ctx, &["verify", &format!("{repo}:1"), "--key", "ours.key.pub"], None);
    ok.success();
    assert!(
        ok.stdout.contains("index") && ok.stdout.contains("linux/amd64") && ok.stdout.contains("linux/arm64"),
        "{}",
        ok.stdout
    );
    assert_eq!(ok.stdout.lines().filter(|l| l.contains("signed (1 signature")).count(), 3, "{}", ok.stdout);
    let other =
        mb(&ctx, &["verify", &format!("{repo}@{}", img.index.digest), "--key", "theirs.key.pub"], None);
    other.code(1);
    assert!(
        other.stderr.contains("signed by another key") && other.stderr.contains("index"),
        "{}",
        other.stderr
    );

    // The same image re-tagged by hand, unsigned, in another repository: refused.
    skopeo_ok(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{repo}:1"),
        &format!("docker://{host}/team/copied:1"),
    ]);
    if let Some(skopeo) = &skopeo {
        refused(&accept_ours.copy(skopeo, &format!("{host}/team/copied:1"), &[]));
    }
    let unsigned = mb(&ctx, &["verify", &format!("{host}/team/copied:1"), "--key", "ours.key.pub"], None);
    unsigned.code(1);
    assert!(
        unsigned.stdout.contains("UNSIGNED") && unsigned.stderr.contains("unsigned"),
        "{}",
        unsigned.stderr
    );
    // Another image pushed unsigned to the signed repository: refused too.
    image(&ctx, "img2", 2);
    mb(&ctx, &["push", &repo, "--oci", "img2", "--tag", "2", "--yes"], None).success();
    if let Some(skopeo) = &skopeo {
        refused(&accept_ours.copy(skopeo, &format!("{repo}:2"), &[]));
    }
    mb(&ctx, &["verify", &format!("{repo}:2"), "--key", "ours.key.pub"], None).code(1);

    // Pushing again with the same key adds no second signature (and moves no manifest).
    mb(
        &ctx,
        &[
            "push",
            &repo,
            "--oci",
            "img",
            "--tag",
            "1",
            "--yes",
            "--sign",
            "ours.key",
            "--record",
            "again.json",
        ],
        Some(PASSWORD),
    )
    .success();
    let again: serde_json::Value = serde_json::from_str(&ctx.read("again.json")).unwrap();
    assert_eq!(again["signatures"], record["signatures"]);
    for digest in &expected {
        assert_eq!(signatures_by(&host, "team/base", digest, &ours_pub), 1, "{digest}");
    }

    // A second signer appends: both keys' signatures are there and each verifies.
    mb(
        &ctx,
        &["push", &repo, "--oci", "img", "--tag", "1", "--yes", "--sign", "theirs.key"],
        Some("another-passphrase"),
    )
    .success();
    for digest in &expected {
        assert_eq!(signatures_by(&host, "team/base", digest, &ours_pub), 1, "{digest}");
        assert_eq!(signatures_by(&host, "team/base", digest, &theirs_pub), 1, "{digest}");
    }
    if let Some(skopeo) = &skopeo {
        accepted(&accept_theirs.copy(skopeo, &format!("{repo}:1"), &[]));
        accepted(&accept_ours.copy(skopeo, &format!("{repo}:1"), &[]));
    }
    mb(&ctx, &["verify", &format!("{repo}:1"), "--key", "ours.key.pub"], None).success();
    let json =
        mb(&ctx, &["verify", &format!("{repo}:1"), "--key", "theirs.key.pub", "--format", "json"], None);
    json.success();
    common::validate_json("verify", json.stdout.trim());
    let doc: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(doc["manifests"].as_array().unwrap().len(), 3);
    assert!(doc["manifests"].as_array().unwrap().iter().all(|m| m["status"] == "signed"), "{doc}");
    let _ = (ours, theirs);
}

#[test]
fn signatures_made_elsewhere_with_our_key_are_accepted() {
    let ctx = TestContext::new();
    let registry = DockerRegistry::start();
    let host = registry.host();
    let work = ctx.work();
    let img = image(&ctx, "img", 5);
    let key = generate(&ctx, "ours.key", PASSWORD).display().to_string();
    let passphrase = ctx.write("passphrase", PASSWORD).display().to_string();
    generate(&ctx, "theirs.key", "theirs");

    // Pushed unsigned, then signed by OpenSSL with our key (cosign's layout, written by
    // cosign_format.py): the index and each platform manifest.
    let reference = format!("{host}/team/elsewhere:1");
    mb(&ctx, &["push", &reference, "--oci", "img", "--yes"], None).success();
    mb(&ctx, &["verify", &reference, "--key", "ours.key.pub"], None).code(1);
    let base = format!("http://{host}");
    let identity = format!("{host}/team/elsewhere");
    cosign_format(&["sign", &base, "team/elsewhere", &img.index.digest, &key, &passphrase, &identity]);
    let partly = mb(&ctx, &["verify", &reference, "--key", "ours.key.pub"], None);
    partly.code(1);
    assert!(partly.stderr.contains("linux/amd64") && !partly.stderr.contains("index"), "{}", partly.stderr);
    for (_, manifest) in &img.manifests {
        cosign_format(&["sign", &base, "team/elsewhere", &manifest.digest, &key, &passphrase, &identity]);
    }
    let run = mb(&ctx, &["verify", &reference, "--key", "ours.key.pub"], None);
    run.success();
    assert_eq!(run.stdout.lines().filter(|l| l.contains("signed (1 signature")).count(), 3, "{}", run.stdout);
    mb(&ctx, &["verify", &reference, "--key", "theirs.key.pub"], None).code(1);
    // A signature for another repository does not count for this one.
    let other = format!("{host}/team/other:1");
    mb(&ctx, &["push", &other, "--oci", "img", "--yes"], None).success();
    for digest in std::iter::once(&img.index.digest).chain(img.manifests.iter().map(|(_, m)| &m.digest)) {
        cosign_format(&["sign", &base, "team/other", digest, &key, &passphrase, &identity]);
    }
    let elsewhere = mb(&ctx, &["verify", &other, "--key", "ours.key.pub"], None);
    elsewhere.code(1);
    assert!(
        elsewhere.stdout.contains("MISMATCH") && elsewhere.stdout.contains("team/elsewhere"),
        "{}",
        elsewhere.stdout
    );

    // A key pair made by OpenSSL and libsodium signs a push; OpenSSL verifies what we stored.
    cosign_format(&["generate", &work.join("openssl.key").display().to_string(), &passphrase]);
    let by_openssl_key = format!("{host}/team/openssl-key");
    mb(
        &ctx,
        &["push", &by_openssl_key, "--oci", "img", "--tag", "1", "--yes", "--sign", "openssl.key"],
        Some(PASSWORD),
    )
    .success();
    mb(&ctx, &["verify", &format!("{by_openssl_key}:1"), "--key", "openssl.key.pub"], None).success();
    assert_eq!(signatures_by(&host, "team/openssl-key", &img.index.digest, &work.join("openssl.key.pub")), 1);

    // A signature tag holding something else is an error, not a pass.
    let garbage = format!("{host}/team/garbage");
    mb(&ctx, &["push", &format!("{garbage}:1"), "--oci", "img", "--yes"], None).success();
    let sig_tag = format!("{}.sig", img.index.digest.replace(':', "-"));
    mb(&ctx, &["push", &format!("{garbage}:{sig_tag}"), "--oci", "img", "--yes"], None).success();
    let bad = mb(&ctx, &["verify", &format!("{garbage}:1"), "--key", "ours.key.pub"], None);
    bad.code(3);
    assert!(bad.stderr.contains("not an image manifest"), "{}", bad.stderr);

    // skopeo signing with our key (where it has sigstore): verify accepts its signature.
    let policy = Policy::new(&work, "ours", &host, &format!("{host}/team"), &work.join("ours.key.pub"));
    let by_skopeo = format!("{host}/team/by-skopeo:1");
    let sign = [
        "--insecure-policy",
        // One platform, the same on any host.
        "--override-arch",
        "amd64",
        "--registries.d",
        &policy.registries_d.display().to_string(),
        "copy",
        "--dest-tls-verify=false",
        "--sign-by-sigstore-private-key",
        &key,
        "--sign-passphrase-file",
        &passphrase,
        &format!("oci:{}:latest", work.join("img").display()),
        &format!("docker://{by_skopeo}"),
    ]
    .map(|s| s.to_string());
    let host_attempt = Skopeo::Host.run(&work, &sign);
    if let Some(skopeo) = Skopeo::with_sigstore(&host_attempt) {
        let signed = skopeo.run(&work, &sign);
        assert!(signed.status.success(), "skopeo: {}", String::from_utf8_lossy(&signed.stderr));
        let amd64 = &img.manifests.iter().find(|(p, _)| p == "linux/amd64").unwrap().1.digest;
        assert_eq!(signatures_by(&host, "team/by-skopeo", amd64, &work.join("ours.key.pub")), 1);
        accepted(&policy.copy(&skopeo, &by_skopeo, &[]));
        let run = mb(&ctx, &["verify", &by_skopeo, "--key", "ours.key.pub"], None);
        run.success();
        assert!(run.stdout.contains("signed (1 signature"), "{}", run.stdout);
    }
}

#[test]
fn native_runners_sign_by_digest_and_the_index_they_join() {
    let ctx = TestContext::new();
    let registry = DockerRegistry::start();
    let host = registry.host();
    let repo = format!("{host}/team/native");
    generate(&ctx, "ours.key", PASSWORD);
    let mut from = Vec::new();
    for (name, platform, seed) in [("amd", "linux/amd64", 21), ("arm", "linux/arm64", 22)] {
        TestImage::new(seed).platforms(&[platform]).write(&ctx.work().join(name), "latest");
        let run = mb(
            &ctx,
            &["push", &repo, "--oci", name, "--by-digest", "--yes", "--sign", "ours.key"],
            Some(PASSWORD),
        );
        run.success();
        let pinned = run.stdout.trim().to_string();
        // Each runner's image is signed on its own, before any index names it.
        mb(&ctx, &["verify", &pinned, "--key", "ours.key.pub"], None).success();
        from.push(pinned);
    }
    let mut args = vec![
        "push",
        repo.as_str(),
        "--index",
        "--tag",
        "1",
        "--yes",
        "--sign",
        "ours.key",
        "--format",
        "json",
    ];
    for f in &from {
        args.extend(["--from", f.as_str()]);
    }
    let run = mb(&ctx, &args, Some(PASSWORD));
    run.success();
    let record: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(record["signatures"].as_array().unwrap().len(), 3, "{record}");
    let ok = mb(&ctx, &["verify", &format!("{repo}:1"), "--key", "ours.key.pub"], None);
    ok.success();
    assert_eq!(ok.stdout.lines().filter(|l| l.contains("signed (1 signature")).count(), 3, "{}", ok.stdout);
}

/// Runs `marqo-base ARGS` on a pseudo-terminal (util-linux `script`) that types `input`.
fn on_terminal(ctx: &TestContext, args: &[&str], input: &str) -> Run {
    let mut command = vec![env!("CARGO_BIN_EXE_marqo-base").to_string()];
    command.extend(args.iter().map(|a| a.to_string()));
    // The sandbox's environment, as `ctx.command` sets it.
    let sandbox = ctx.command(&[]);
    let line = command.join(" ");
    let mut script = Command::new("script");
    for (key, value) in sandbox.get_envs() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    let mut child = script
        .args(["-qec", &line, "/dev/null"])
        .current_dir(ctx.work())
        .env_remove("MARQO_BASE_KEY_PASSWORD")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run script");
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().unwrap();
        for line in input.lines() {
            // One line at a time, once the prompt has turned echo off (typed before, the
            // terminal would echo it).
            std::thread::sleep(std::time::Duration::from_millis(1000));
            stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
            stdin.flush().unwrap();
        }
    }
    Run::from(child.wait_with_output().unwrap())
}

#[test]
fn passphrases_are_asked_on_the_terminal_without_echo() {
    let ctx = TestContext::new();
    let differ = on_terminal(&ctx, &["key", "generate", "--key", "t.key"], "first-secret\nsecond-secret\n");
    assert_ne!(differ.code, 0, "{}{}", differ.stdout, differ.stderr);
    assert!(differ.stdout.contains("the two passphrases differ"), "{}", differ.stdout);
    assert!(!ctx.exists("t.key") && !ctx.exists("t.key.pub"));
    let run = on_terminal(&ctx, &["key", "generate", "--key", "t.key"], "typed-secret\ntyped-secret\n");
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("Passphrase for the new key") && run.stdout.contains("The same passphrase again")
    );
    // The terminal shows the prompts, never what was typed.
    assert!(!run.stdout.contains("typed-secret") && !run.stderr.contains("typed-secret"), "{}", run.stdout);
    let passphrase = ctx.write("passphrase", "typed-secret");
    let key = ctx.work().join("t.key").display().to_string();
    assert_eq!(cosign_format(&["decrypt", &key, &passphrase.display().to_string()]), ctx.read("t.key.pub"));
}

#[test]
fn push_manifest_builds_and_signs_in_one_step() {
    let w = world::world();
    let registry = DockerRegistry::start();
    let repo = format!("{}/team/built", registry.host());
    w.ctx.run(&["lock"]).success();
    generate(&w.ctx, "ours.key", PASSWORD);
    let run = mb(
        &w.ctx,
        &[
            "push",
            &repo,
            "--manifest",
            "marqo-base.toml",
            "--tag",
            "next",
            "--yes",
            "--sign",
            "ours.key",
            "--format",
            "json",
        ],
        Some(PASSWORD),
    );
    run.success();
    // The preview, shown before anything is built, says the push signs.
    assert!(run.stderr.contains("signatures: the index and each platform manifest"), "{}", run.stderr);
    let record: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(record["tags"], serde_json::json!(["1"]));
    assert_eq!(
        record["signatures"].as_array().unwrap().len(),
        1 + record["platforms"].as_array().unwrap().len()
    );
    mb(&w.ctx, &["verify", &format!("{repo}:1"), "--key", "ours.key.pub"], None).success();
}
