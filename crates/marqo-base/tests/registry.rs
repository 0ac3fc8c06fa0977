//! `marqo-base login`, `logout`, `push` and `pull` against a real `docker-registry` started
//! by each test on 127.0.0.1 (sometimes behind the test proxy, which logs requests, injects
//! faults and plays a Bearer-token server), checked with `skopeo`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Run, TestContext};
use test_support::{DockerRegistry, Proxy, TestImage, WrittenImage};

const FINGERPRINT: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// `marqo-base ARGS` in the sandbox, with Docker's config in its HOME and `stdin` piped in.
fn run(ctx: &TestContext, args: &[&str], stdin: &str) -> Run {
    TestContext::run_with_stdin(ctx.registry_command(args), stdin)
}

fn mb(ctx: &TestContext, args: &[&str]) -> Run {
    run(ctx, args, "")
}

/// A two-platform image layout in the sandbox at `name` (ref `latest`).
fn image(ctx: &TestContext, name: &str, seed: u64) -> WrittenImage {
    TestImage::new(seed)
        .layers(&[2048, 4096])
        .label("dev.marqo-base.lock-fingerprint", FINGERPRINT)
        .write(&ctx.work().join(name), "latest")
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo").args(args).output().expect("run skopeo");
    assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn sha256(bytes: &[u8]) -> String {
    oci::Digest::of_bytes(bytes).to_string()
}

/// The digest of the raw manifest or index `reference` (docker://...) names.
fn remote_digest(reference: &str) -> String {
    sha256(&skopeo(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{reference}")]))
}

fn blob_uploads(proxy: &Proxy) -> Vec<String> {
    proxy
        .log()
        .into_iter()
        .filter(|l| {
            l.method == "PATCH"
                || (l.path.contains("/blobs/uploads/") && matches!(l.method.as_str(), "POST" | "PUT"))
        })
        .map(|l| format!("{} {}", l.method, l.path))
        .collect()
}

#[test]
fn push_next_twice_then_skopeo_copies_it_back() {
    let ctx = TestContext::new();
    let registry = DockerRegistry::start();
    let proxy = Proxy::start(&registry.host());
    let img = image(&ctx, "img", 1);
    let repo = format!("{}/base", proxy.host());

    let first =
        mb(&ctx, &["push", &repo, "--oci", "img", "--tag", "next", "--yes", "--record", "pushed.json"]);
    first.success();
    assert_eq!(first.stdout.trim(), format!("{repo}:1@{}", img.index.digest));
    assert!(
        first.stderr.contains("tags:      1 (next)") && first.stderr.contains("linux/arm64"),
        "{}",
        first.stderr
    );
    assert!(first.stderr.contains("to send:   6 blobs"), "{}", first.stderr);

    // skopeo sees the index byte for byte, and copies the whole image back unchanged.
    assert_eq!(remote_digest(&format!("{}/base:1", registry.host())), img.index.digest);
    let back = ctx.work().join("back");
    skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{}/base:1", registry.host()),
        &format!("oci:{}:1", back.display()),
    ]);
    assert_eq!(
        sha256(&skopeo(&["inspect", "--raw", &format!("oci:{}:1", back.display())])),
        img.index.digest
    );
    for blob in &img.blobs {
        assert!(back.join("blobs/sha256").join(&blob.digest[7..]).is_file(), "{} missing", blob.digest);
    }

    // The record says what was pushed.
    let record: serde_json::Value = serde_json::from_str(&ctx.read("pushed.json")).unwrap();
    assert_eq!(record["repository"], repo);
    assert_eq!(record["tags"], serde_json::json!(["1"]));
    assert_eq!(record["digest"], img.index.digest);
    assert_eq!(record["pinned"], format!("{repo}@{}", img.index.digest));
    assert_eq!(record["lock_fingerprint"], FINGERPRINT);
    let platforms = record["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), 2);
    for ((platform, manifest), entry) in img.manifests.iter().zip(platforms) {
        assert_eq!(entry["platform"], *platform);
        assert_eq!(entry["digest"], manifest.digest);
        assert_eq!(entry["manifest_size"], manifest.size);
        assert!(entry["size"].as_u64().unwrap() > 6144, "{entry}");
    }
    let at = record["pushed_at"].as_str().unwrap();
    assert!(regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$").unwrap().is_match(at), "{at}");

    // The same image again: tag 2, and not one blob sent.
    proxy.clear_log();
    let second = mb(&ctx, &["push", &repo, "--oci", "img", "--tag", "next", "--yes"]);
    second.success();
    assert_eq!(second.stdout.trim(), format!("{repo}:2@{}", img.index.digest));
    assert!(
        second.stderr.contains("to send:   0 blobs (0 B)")
            && second.stderr.contains("already there: 6 blobs"),
        "{}",
        second.stderr
    );
    assert_eq!(blob_uploads(&proxy), Vec::<String>::new());

    // A record that cannot be written is refused before anything moves: no number burnt.
    proxy.clear_log();
    let run = mb(
        &ctx,
        &["push", &repo, "--oci", "img", "--tag", "next", "--yes", "--record", "missing/dir/r.json"],
    );
    run.code(2);
    assert!(
        run.stderr.contains("cannot write the record") && run.stderr.contains("nothing was pushed"),
        "{}",
        run.stderr
    );
    assert!(proxy.log().iter().all(|l| l.method != "PUT"), "nothing was put: {:?}", proxy.log().len());
    let third = mb(&ctx, &["push", &repo, "--oci", "img", "--tag", "next", "--yes"]);
    third.success();
    assert_eq!(third.stdout.trim(), format!("{repo}:3@{}", img.index.digest));
}

#[test]
fn next_is_one_past_the_highest_integer_tag_across_pages() {
    let ctx = TestContext::new();
    let registry = DockerRegistry::start();
    let proxy = Proxy::start(&registry.host());
    image(&ctx, "img", 2);
    // distribution 2.8 ignores `n=`: the proxy pages the list as later registries do.
    proxy.paginate_tags(true);
    let repo = format!("{}/tagged", proxy.host());
    mb(
        &ctx,
        &[
            "push", &repo, "--oci", "img", "--tag", "1", "--tag", "7", "--tag", "latest", "--tag", "v3",
            "--yes",
        ],
    )
    .success();
    proxy.clear_log();
    let r = mb(&ctx, &["push", &repo, "--oci", "img", "--tag", "next", "--tags-page-size", "2", "--yes"]);
    r.success();
    assert!(r.stdout.starts_with(&format!("{repo}:8@")), "{}", r.stdout);
    let pages: Vec<String> =
        proxy.log().into_iter().filter(|l| l.path.contains("/tags/list")).map(|l| l.path).collect();
    assert_eq!(pages, ["/v2/tagged/tags/list?n=2", "/v2/tagged/tags/list?n=2&last=7"]);
}

#[test]
fn mounts_blobs_from_a_sibling_repository() {
    let ctx = TestContext::new();
    let registry = DockerRegistry::start();
    let proxy = Proxy::start(&registry.host());
    let img = image(&ctx, "img", 3);
    mb(&ctx, &["push", &format!("{}/base-dev", proxy.host()), "--oci", "img", "--tag", "1", "--yes"])
        .success();
    proxy.clear_log();
    let r = mb(
        &ctx,
        &[
            "push",
            &format!("{}/base", proxy.host()),
            "--oci",
            "img",
            "--tag",
            "1",
            "--mount-from",
            "base-dev",
            "--yes",
        ],
    );
    r.success();
    assert!(r.stderr.contains("to mount:  6 blobs") && r.stderr.contains("6 mounted"), "{}", r.stderr);
    let uploads = blob_uploads(&proxy);
    assert_eq!(uploads.len(), 6, "{uploads:?}");
    assert!(
        uploads.iter().all(|u| u.starts_with("POST") && u.contains("mount=") && u.contains("from=base-dev")),
        "{uploads:?}"
    );
    assert_eq!(remote_digest(&format!("{}/base:1", registry.host())), img.index.digest);
}

#[test]
fn without_a_terminal_push_needs_yes() {
    let ctx = TestContext::new();
    let registry = DockerRegistry::start();
    image(&ctx, "img", 4);
    let r = mb(&ctx, &["push", &format!("{}/base", registry.host()), "--oci", "img", "--tag", "next"]);
    r.code(2);
    assert!(r.stderr.contains("Push to") && r.stderr.contains("no terminal"), "{}", r.stderr);
    assert!(r.stderr.contains("hint: pass --yes"), "{}", r.stderr);
    let tags = Command::new("curl")
        .args(["-s", &format!("http://{}/v2/base/tags/list", registry.host())])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&tags.stdout).contains("NAME_UNKNOWN"), "something was pushed");
}

#[test]
fn bad_references_and_tags_are_user_errors() {
    let ctx = TestContext::new();
    image(&ctx, "img", 5);
    for (reference, needle) in [
        ("127.0.0.1:5/Repo:Bad Tag", "white space"),
        ("", "empty"),
        ("127.0.0.1:5/Repo:1", "upper-case"),
        ("127.0.0.1:5/repo:-x", "tag"),
    ] {
        let r = mb(&ctx, &["push", reference, "--oci", "img", "--tag", "1", "--yes"]);
        r.code(2);
        assert!(r.stderr.contains(needle) && r.stderr.contains("hint:"), "{reference}: {}", r.stderr);
    }
    let r = mb(&ctx, &["push", "127.0.0.1:5/repo", "--oci", "img", "--tag", "a b", "--yes"]);
    r.code(2);
    assert!(r.stderr.contains("`a b` is not a valid tag"), "{}", r.stderr);
    mb(&ctx, &["push", "127.0.0.1:5/repo", "--oci", "img", "--yes"]).code(2);
    let r = mb(&ctx, &["pull", "127.0.0.1:5/Nope", "--oci", "out"]);
    r.code(2);
    assert!(r.stderr.contains("`127.0.0.1:5/Nope` is not a valid image reference"), "{}", r.stderr);
}

#[test]
fn login_checks_the_password_push_uses_it_logout_removes_it() {
    let ctx = TestContext::new();
    let registry = DockerRegistry::with_htpasswd("testuser", "testpass");
    let img = image(&ctx, "img", 6);
    let config = ctx.dir.path().join("home/.docker/config.json");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "{\"psFormat\": \"table\"}\n").unwrap();
    let host = registry.host();

    let r = mb(&ctx, &["push", &format!("{host}/base"), "--oci", "img", "--tag", "1", "--yes"]);
    r.code(2);
    assert!(r.stderr.contains("none are stored") && r.stderr.contains("marqo-base login"), "{}", r.stderr);

    let wrong = run(&ctx, &["login", &host, "--username", "testuser", "--password-stdin"], "hunter2-wrong\n");
    wrong.code(2);
    assert!(
        wrong.stderr.contains("password is wrong") && !wrong.stderr.contains("hunter2"),
        "{}",
        wrong.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "{\"psFormat\": \"table\"}\n",
        "config.json changed"
    );

    run(&ctx, &["login", &host, "-u", "testuser", "--password-stdin"], "testpass\n").success();
    let stored: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(stored["psFormat"], "table");
    assert_eq!(stored["auths"][&host]["auth"], "dGVzdHVzZXI6dGVzdHBhc3M=");

    mb(&ctx, &["push", &format!("{host}/base"), "--oci", "img", "--tag", "1", "--yes"]).success();
    let pull = mb(&ctx, &["pull", &format!("{host}/base:1"), "--oci", "back"]);
    pull.success();
    assert!(!pull.stderr.contains("testpass") && !pull.stdout.contains("testpass"));
    assert_eq!(
        sha256(&skopeo(&["inspect", "--raw", &format!("oci:{}:1", ctx.work().join("back").display())])),
        img.index.digest
    );

    let out = mb(&ctx, &["logout", &host]);
    out.success();
    assert!(out.stderr.contains("Removed"), "{}", out.stderr);
    let stored: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(stored["psFormat"], "table");
    assert!(stored["auths"].get(&host).is_none(), "{stored}");
    mb(&ctx, &["pull", &format!("{host}/base:1"), "--oci", "back2"]).code(2);
}

#[test]
fn credential_helpers_store_get_and_erase() {
    let ctx = TestContext::new();
    let registry = DockerRegistry::with_htpasswd("testuser", "testpass");
    image(&ctx, "img", 7);
    // A helper that keeps one JSON document per server in a directory.
    let bin = ctx.dir.path().join("bin");
    let store = ctx.dir.path().join("helper-store");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    let script = format!(
        r#"#!/bin/sh
set -e
store='{}'
case "$1" in
  store) input=$(cat); server=$(printf '%s' "$input" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/'); printf '%s' "$input" > "$store/$(printf '%s' "$server" | tr '/:' '__')" ;;
  get) server=$(cat); f="$store/$(printf '%s' "$server" | tr '/:' '__')"; [ -f "$f" ] || {{ echo "credentials not found in native keychain"; exit 1; }}; cat "$f" ;;
  erase) server=$(cat); f="$store/$(printf '%s' "$server" | tr '/:' '__')"; [ -f "$f" ] || {{ echo "credentials not found in native keychain"; exit 1; }}; rm "$f" ;;
esac
"#,
        store.display()
    );
    let helper = bin.join("docker-credential-test");
    std::fs::write(&helper, script).unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&helper).status().unwrap();
    let config = ctx.dir.path().join("home/.docker/config.json");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, r#"{"credsStore":"test"}"#).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let host = registry.host();
    let with_path = |args: &[&str], stdin: &str| {
        let mut cmd = ctx.command(args);
        cmd.env("PATH", &path)
            .env_remove("DOCKER_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        Run::from(child.wait_with_output().unwrap())
    };

    let login = with_path(&["login", &host, "-u", "testuser", "--password-stdin"], "testpass");
    login.success();
    assert!(login.stderr.contains("docker-credential-test"), "{}", login.stderr);
    let saved = std::fs::read_to_string(store.join(host.replace(':', "_"))).unwrap();
    assert!(
        saved.contains(r#""Username":"testuser""#) && saved.contains(r#""Secret":"testpass""#),
        "{saved}"
    );
    assert!(
        !std::fs::read_to_string(&config).unwrap().contains("testpass"),
        "the secret went into config.json"
    );

    with_path(&["push", &format!("{host}/base"), "--oci", "img", "--tag", "1", "--yes"], "").success();
    with_path(&["logout", &host], "").success();
    assert!(!store.join(host.replace(':', "_")).exists(), "the helper still has the credentials");
    with_path(&["push", &format!("{host}/base"), "--oci", "img", "--tag", "2", "--yes"], "").code(2);
}

#[test]
fn login_through_a_token_server() {
    let ctx = TestContext::new();
    let registry = DockerRegistry::start();
    let proxy = Proxy::with_token_auth(&registry.host(), "alice", "s3cret");
    image(&ctx, "img", 8);
    let host = proxy.host();
    let wrong = run(&ctx, &["login", &host, "-u", "alice", "--password-stdin"], "nope");
    wrong.code(2);
    assert!(wrong.stderr.contains("token server refused"), "{}", wrong.stderr);
    run(&ctx, &["login", &host, "-u", "alice", "--password-stdin"], "s3cret").success();
    mb(&ctx, &["push", &format!("{host}/team/app"), "--oci", "img", "--tag", "next", "--yes"]).success();
    assert!(proxy.tokens_issued() >= 2, "login and push each fetch a token");
}

#[test]
fn an_interrupted_push_resumes_in_the_next_run() {
    let ctx = TestContext::new();
    let registry = DockerRegistry::start();
    let proxy = Proxy::start(&registry.host());
    let img = TestImage::new(9)
        .platforms(&["linux/amd64"])
        .layers(&[1024 * 1024])
        .write(&ctx.work().join("img"), "latest");
    let layer = img.blobs.iter().max_by_key(|b| b.size).unwrap().clone();
    let repo = format!("{}/big", proxy.host());
    // 256 KiB chunks; everything after the first 512 KiB of PATCHes is dropped.
    proxy.drop_patches_after(512 * 1024, usize::MAX);
    let args =
        ["push", &repo, "--oci", "img", "--tag", "1", "--chunk-size", "256K", "--yes", "--retries", "0"];
    let failed = mb(&ctx, &args);
    failed.code(3);
    assert!(failed.stderr.contains("run the same command again to continue"), "{}", failed.stderr);
    assert!(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{}/big:1", registry.host())])
            .output()
            .unwrap()
            .status
            .code()
            != Some(0),
        "the tag exists after a failed push"
    );

    proxy.clear_faults();
    proxy.clear_log();
    let resumed = mb(&ctx, &args);
    resumed.success();
    assert!(
        resumed.stderr.contains(&format!("Resumed the upload of {} at 512.0 KiB", layer.digest)),
        "{}",
        resumed.stderr
    );
    let log = proxy.log();
    let patches: Vec<_> = log.iter().filter(|l| l.method == "PATCH").collect();
    assert_eq!(patches[0].header("content-range"), Some("524288-786431"), "{patches:#?}");
    let sent: u64 = patches.iter().map(|l| l.body_len as u64).sum();
    assert_eq!(sent, layer.size - 512 * 1024, "the second run sent bytes the registry had");
    assert!(!log.iter().any(|l| l.method == "POST"
        && l.path.ends_with("/blobs/uploads/")
        && l.body_len == 0
        && patches.is_empty()));
    assert_eq!(remote_digest(&format!("{}/big:1", registry.host())), img.index.digest);
}

#[test]
fn pull_writes_oci_layouts_and_docker_archives() {
    let ctx = TestContext::new();
    let registry = DockerRegistry::start();
    let img = image(&ctx, "img", 10);
    let repo = format!("{}/base", registry.host());
    mb(&ctx, &["push", &repo, "--oci", "img", "--tag", "42", "--yes"]).success();

    mb(&ctx, &["pull", &format!("{repo}:42"), "--oci", "all"]).success();
    assert_eq!(
        sha256(&skopeo(&["inspect", "--raw", &format!("oci:{}:42", ctx.work().join("all").display())])),
        img.index.digest
    );

    mb(&ctx, &["pull", &format!("{repo}:42"), "--docker-archive", "arm.tar", "--platform", "linux/arm64"])
        .success();
    let inspect: serde_json::Value = serde_json::from_slice(&skopeo(&[
        "inspect",
        &format!("docker-archive:{}", ctx.work().join("arm.tar").display()),
    ]))
    .unwrap();
    assert_eq!(inspect["Architecture"], "arm64");
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(inspect["Labels"]["dev.marqo-base.lock-fingerprint"], FINGERPRINT);

    // One platform into a layout: its manifest, as the registry has it.
    mb(&ctx, &["pull", &format!("{repo}@{}", img.index.digest), "--oci", "amd", "--platform", "linux/amd64"])
        .success();
    let raw = skopeo(&["inspect", "--raw", &format!("oci:{}:latest", ctx.work().join("amd").display())]);
    assert_eq!(sha256(&raw), img.manifests[0].1.digest);

    let missing = mb(&ctx, &["pull", &format!("{repo}:42"), "--oci", "s390x", "--platform", "linux/s390x"]);
    missing.code(2);
    assert!(
        missing.stderr.contains("no image for linux/s390x; it has linux/amd64, linux/arm64"),
        "{}",
        missing.stderr
    );
    let absent = mb(&ctx, &["pull", &format!("{repo}:43"), "--oci", "none"]);
    absent.code(2);
    assert!(absent.stderr.contains("base:43 is not on"), "{}", absent.stderr);
    mb(&ctx, &["pull", &format!("{repo}:42"), "--oci", "all"]).code(2);
}

#[test]
fn pull_refuses_altered_blobs_and_continues_cut_downloads() {
    let ctx = TestContext::new();
    let registry = DockerRegistry::start();
    let proxy = Proxy::start(&registry.host());
    let img = TestImage::new(11).layers(&[512 * 1024]).write(&ctx.work().join("img"), "latest");
    let repo = format!("{}/base", proxy.host());
    mb(&ctx, &["push", &repo, "--oci", "img", "--tag", "1", "--yes"]).success();

    proxy.tamper_blobs(true);
    let tampered = mb(&ctx, &["pull", &format!("{repo}:1"), "--oci", "out"]);
    tampered.code(3);
    assert!(
        tampered.stderr.contains("is corrupt") && tampered.stderr.contains("nothing was written"),
        "{}",
        tampered.stderr
    );
    assert!(!ctx.exists("out"), "a layout was written from altered blobs");
    assert!(std::fs::read_dir(ctx.work()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".out")));

    proxy.tamper_blobs(false);
    proxy.cut_blob_downloads(200 * 1024, usize::MAX);
    let cut = mb(&ctx, &["pull", &format!("{repo}:1"), "--oci", "out", "--retries", "0"]);
    cut.code(3);
    assert!(!ctx.exists("out"));
    proxy.clear_faults();
    proxy.clear_log();
    mb(&ctx, &["pull", &format!("{repo}:1"), "--oci", "out"]).success();
    let ranged: Vec<_> =
        proxy.log().into_iter().filter_map(|l| l.header("range").map(str::to_string)).collect();
    // Each download continues from what the failed runs kept (cut at 200 KiB, or cancelled
    // earlier when another blob failed).
    assert!(
        !ranged.is_empty() && ranged.iter().all(|r| r.starts_with("bytes=") && !r.starts_with("bytes=0-")),
        "{ranged:?}"
    );
    assert_eq!(
        sha256(&skopeo(&["inspect", "--raw", &format!("oci:{}:1", ctx.work().join("out").display())])),
        img.index.digest
    );
}

#[test]
fn a_tag_taken_meanwhile_moves_next_on_and_an_overwrite_is_a_race() {
    let ctx = TestContext::new();
    let registry = DockerRegistry::start();
    let proxy = Proxy::start(&registry.host());
    let ours = image(&ctx, "ours", 12);
    image(&ctx, "theirs", 13);
    let theirs_dir = ctx.work().join("theirs");
    let other_push = |tag: &str| {
        let (dir, dest) = (theirs_dir.clone(), format!("docker://{}/base:{tag}", registry.host()));
        move || {
            skopeo(&[
                "copy",
                "--all",
                "--dest-tls-verify=false",
                &format!("oci:{}:latest", dir.display()),
                &dest,
            ]);
        }
    };
    let repo = format!("{}/base", proxy.host());

    // Another pusher takes 1 right after our plan listed the tags: we take 2.
    proxy.after("GET", "/tags/list", other_push("1"));
    let r = mb(&ctx, &["push", &repo, "--oci", "ours", "--tag", "next", "--yes"]);
    r.success();
    assert_eq!(r.stdout.trim(), format!("{repo}:2@{}", ours.index.digest));

    // Another pusher overwrites our tag right after we set it: reported, exit 1.
    proxy.after("PUT", "/manifests/3", other_push("3"));
    let r = mb(&ctx, &["push", &repo, "--oci", "ours", "--tag", "next", "--yes", "--record", "r.json"]);
    r.code(1);
    assert!(r.stderr.contains("another push changed") && r.stderr.contains(":3"), "{}", r.stderr);
    assert!(!ctx.exists("r.json"));
}

#[test]
fn tls_registries_are_trusted_through_ssl_cert_file() {
    let ctx = TestContext::new();
    let registry =
        DockerRegistry::start_with(test_support::RegistryConfig { tls: true, ..Default::default() });
    let img = image(&ctx, "img", 14);
    let repo = format!("{}/secure", registry.host());
    let untrusted = mb(&ctx, &["push", &repo, "--oci", "img", "--tag", "1", "--yes", "--retries", "0"]);
    untrusted.code(3);
    assert!(
        untrusted.stderr.contains("https:") && untrusted.stderr.contains("SSL_CERT_FILE"),
        "{}",
        untrusted.stderr
    );

    let cert = registry.cert().unwrap();
    let with_cert = |args: &[&str]| {
        let out = ctx.command(args).env("SSL_CERT_FILE", &cert).env_remove("DOCKER_CONFIG").output().unwrap();
        Run::from(out)
    };
    with_cert(&["push", &repo, "--oci", "img", "--tag", "1", "--yes"]).success();
    with_cert(&["pull", &format!("{repo}:1"), "--oci", "back"]).success();
    assert_eq!(
        sha256(&skopeo(&["inspect", "--raw", &format!("oci:{}:1", ctx.work().join("back").display())])),
        img.index.digest
    );
}

/// `push --format json` prints the record `--record` writes (the same document), and `pull
/// --format json` what it fetched; both valid against their schemas in docs/json.
#[test]
fn push_and_pull_report_as_json() {
    let ctx = TestContext::new();
    let registry = DockerRegistry::start();
    let img = image(&ctx, "img", 7);
    let repo = format!("{}/jsonout", registry.host());
    let push = mb(
        &ctx,
        &["push", &repo, "--oci", "img", "--tag", "next", "--yes", "--record", "r.json", "--format", "json"],
    );
    push.success();
    common::validate_json("push", &push.stdout);
    let record = ctx.read("r.json");
    common::validate_json("push", &record);
    let printed: serde_json::Value = serde_json::from_str(&push.stdout).unwrap();
    let written: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(printed["digest"], written["digest"]);
    assert_eq!(printed["digest"], img.index.digest.to_string());
    assert_eq!(printed["tags"], serde_json::json!(["1"]));

    let pull = mb(&ctx, &["pull", &format!("{repo}:1"), "--oci", "back", "--format", "json"]);
    pull.success();
    common::validate_json("pull", &pull.stdout);
    let pulled: serde_json::Value = serde_json::from_str(&pull.stdout).unwrap();
    assert_eq!(pulled["digest"], img.index.digest.to_string());
    assert_eq!(pulled["format"], "oci");
}
