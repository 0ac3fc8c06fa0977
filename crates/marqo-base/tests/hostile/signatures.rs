//! What the tool writes, it can read back (issue 30): `push --sign` never stores more
//! signatures of one manifest than `verify` reads. A real `docker-registry` on 127.0.0.1; the
//! signatures already there (1,024 of them, the limit) are written straight through the
//! registry API: the first is ours, the others copies of it with other keys' signatures.

use std::process::{Command, Stdio};

use serde_json::Value;
use test_support::{DockerRegistry, TestImage};

use crate::common::{Run, TestContext};

const PASSWORD: &str = "hostile-signatures-pass";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const SIGNATURE: &str = "dev.cosignproject.cosign/signature";

fn mb(ctx: &TestContext, args: &[&str]) -> Run {
    let mut cmd = ctx.command(args);
    cmd.env_remove("DOCKER_CONFIG")
        .env_remove("SSL_CERT_FILE")
        .env("MARQO_BASE_KEY_PASSWORD", PASSWORD)
        .stdin(Stdio::null());
    let run = Run::from(cmd.output().expect("run marqo-base"));
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl").args(["-fsS"]).args(args).output().expect("run curl");
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// The signature manifest of `digest` in `repo`, as JSON.
fn signature_manifest(registry: &DockerRegistry, repo: &str, digest: &str) -> Value {
    let url = format!("{}/v2/{repo}/manifests/{}.sig", registry.url(), digest.replace(':', "-"));
    serde_json::from_slice(&curl(&["-H", &format!("Accept: {OCI_MANIFEST}"), &url])).unwrap()
}

#[test]
fn push_sign_refuses_the_signature_verify_could_not_read() {
    let ctx = TestContext::new();
    let registry = DockerRegistry::start();
    let repo = "team/base";
    let reference = format!("{}/{repo}", registry.host());
    let img = TestImage::new(40).platforms(&["linux/amd64"]).write(&ctx.work().join("img"), "latest");
    mb(&ctx, &["key", "generate", "--key", "ours.key"]).success();
    mb(&ctx, &["key", "generate", "--key", "theirs.key"]).success();
    let push =
        |key: &str| mb(&ctx, &["push", &reference, "--oci", "img", "--tag", "1", "--yes", "--sign", key]);
    push("ours.key").success();

    // 1,023 more signatures of the index by other keys: the limit, reached.
    let digest = img.index.digest.as_str();
    let mut manifest = signature_manifest(&registry, repo, digest);
    let ours = manifest["layers"][0].clone();
    let layers = manifest["layers"].as_array_mut().unwrap();
    for i in 1..1024 {
        let mut other = ours.clone();
        other["annotations"][SIGNATURE] =
            Value::String(format!("TUVVQ0lRRC1vdGhlci1rZXktc2lnbmF0dXJl{i:04}"));
        layers.push(other);
    }
    let url = format!("{}/v2/{repo}/manifests/{}.sig", registry.url(), digest.replace(':', "-"));
    let body = serde_json::to_vec(&manifest).unwrap();
    let body_file = ctx.work().join("sig.json");
    std::fs::write(&body_file, body).unwrap();
    curl(&[
        "-X",
        "PUT",
        "-H",
        &format!("Content-Type: {OCI_MANIFEST}"),
        "--data-binary",
        &format!("@{}", body_file.display()),
        &url,
    ]);
    let verify = || mb(&ctx, &["verify", &format!("{reference}:1"), "--key", "ours.key.pub"]);
    verify().success();

    // Another key's signature would be the 1,025th: refused, clearly, before any write.
    let run = push("theirs.key");
    run.code(2);
    for needle in
        ["1024", "signatures", &format!("{}.sig", digest.replace(':', "-")), "hint:", "cosign clean"]
    {
        assert!(run.stderr.contains(needle), "`{needle}` missing in:\n{}", run.stderr);
    }
    assert_eq!(signature_manifest(&registry, repo, digest)["layers"].as_array().unwrap().len(), 1024);
    // So our own verify still reads them all, and finds ours.
    verify().success();
    // Signing again with our key adds nothing, so it is no signature too many.
    push("ours.key").success();
    assert_eq!(signature_manifest(&registry, repo, digest)["layers"].as_array().unwrap().len(), 1024);
}
