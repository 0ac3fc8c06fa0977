//! Nothing on disk is trusted: cached wheels, `.deb`s, layers and registry blobs swapped,
//! truncated or edited behind the tool's back are noticed before use, evicted and fetched
//! (or built) again, or, offline, named in an error; built layouts share no writable file
//! with the cache.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::apt::{Deb, Repo, Server as AptServer};
use crate::common::{Run, TestContext};
use test_support::{DockerRegistry, Index, TestImage, Wheel};

struct World {
    index: Index,
    _index_server: test_support::Server,
    _apt: AptServer,
    repo: Repo,
    ctx: TestContext,
}

/// One platform (amd64), a pure wheel `fast` (`fast/__init__.py` says GOOD) and two `.deb`s.
fn world() -> World {
    crate::apt::require_tools();
    let index = Index::new();
    Wheel::new("fast", "1.0").file("fast/__init__.py", "STATE = 'GOOD'\n").publish(&index);
    let index_server = index.serve();
    let repo = Repo::new();
    let (work, pool) = (repo.dir.path().join("build"), repo.pool());
    Deb::new("python3.9", "3.9.2-1")
        .arch("amd64")
        .depends("libc-test")
        .file("/usr/bin/python3.9", "#!/bin/sh\necho python\n", 0o755)
        .build(&work, &pool);
    Deb::new("libc-test", "1.0")
        .arch("amd64")
        .file("/usr/lib/libc-test.txt", "libc GOOD\n", 0o644)
        .build(&work, &pool);
    repo.publish("stable");
    let apt = AptServer::start(repo.root());
    let ctx = TestContext::new();
    ctx.write("requirements.in", &format!("--index-url {}\nfast\n", index_server.url()));
    ctx.write(
        "marqo-base.toml",
        &format!(
            "[image]\nplatforms = [\"linux/amd64\"]\n\n\
             [debian]\nsuite = \"stable\"\nmirror = \"{}\"\nkeyring = \"{}\"\nessential = false\n\
             packages = [\"python3.9\"]\n\n\
             [python]\nversion = \"3.9\"\nrequirements = [\"requirements.in\"]\n",
            apt.url(),
            repo.keyring.display()
        ),
    );
    World { index, _index_server: index_server, _apt: apt, repo, ctx }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The `sha256` of the lock's entry `name = "NAME"`.
fn locked_sha256(ctx: &TestContext, name: &str) -> String {
    let lock = ctx.read("marqo-base.lock");
    let at = lock.find(&format!("name = \"{name}\"")).unwrap_or_else(|| panic!("no {name} in\n{lock}"));
    let rest = &lock[at..];
    let sha = rest.find("sha256 = \"").unwrap() + "sha256 = \"".len();
    rest[sha..sha + 64].to_string()
}

fn cache_blob(ctx: &TestContext, hex: &str) -> PathBuf {
    ctx.cache().join("blobs/sha256").join(hex)
}

/// Replaces `path` (a read-only file, perhaps) by `bytes`, writing in place as a clumsy user
/// or a bad disk would: the same inode, so every hard link sees it.
fn overwrite_in_place(path: &Path, bytes: &[u8]) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// `wheel` with `member` replaced by `content`: another valid zip.
fn tampered_wheel(wheel: &[u8], member: &str, content: &str) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(wheel)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let name = file.name().to_string();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        if name == member {
            bytes = content.as_bytes().to_vec();
        }
        out.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut out, &bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The layer digests (hex) of the one image of the layout `dir`.
fn layers(dir: &Path) -> Vec<String> {
    let blob = |digest: &str| dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    let index = read_json(&dir.join("index.json"));
    let mut digest = index["manifests"][0]["digest"].as_str().unwrap().to_string();
    let mut doc = read_json(&blob(&digest));
    if doc.get("manifests").is_some() {
        digest = doc["manifests"][0]["digest"].as_str().unwrap().to_string();
        doc = read_json(&blob(&digest));
    }
    doc["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string())
        .collect()
}

/// The content of `member` in any layer of the layout `dir`.
fn file_in_image(dir: &Path, member: &str) -> Option<String> {
    for layer in layers(dir) {
        let file = std::fs::File::open(dir.join("blobs/sha256").join(&layer)).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        for entry in tar.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.path().unwrap().to_string_lossy().trim_start_matches("./") == member {
                let mut text = String::new();
                entry.read_to_string(&mut text).unwrap();
                return Some(text);
            }
        }
    }
    None
}

/// Every blob of the layout `dir` hashes to its name.
#[track_caller]
fn assert_blobs_true(dir: &Path) {
    for entry in std::fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(sha256_hex(&std::fs::read(&path).unwrap()), name, "{}", path.display());
    }
}

const SITE: &str = "usr/local/lib/python3.9/dist-packages/fast/__init__.py";

#[test]
fn a_swapped_cached_wheel_is_fetched_again_and_never_reaches_a_layer() {
    let w = world();
    let ctx = &w.ctx;
    ctx.run(&["lock"]).success();
    ctx.run(&["build", "--oci", "first"]).success();
    let first = layers(&ctx.work().join("first"));
    let sha = locked_sha256(ctx, "fast");
    let blob = cache_blob(ctx, &sha);
    let good = std::fs::read(&blob).unwrap();
    std::fs::write(&blob, tampered_wheel(&good, "fast/__init__.py", "STATE = 'EVIL'\n")).unwrap();

    let run = ctx.run(&["build", "--no-cache", "--oci", "second"]);
    run.success();
    assert!(run.stderr.contains("was damaged") && run.stderr.contains(&sha), "{}", run.stderr);
    assert_eq!(file_in_image(&ctx.work().join("second"), SITE).as_deref(), Some("STATE = 'GOOD'\n"));
    assert_eq!(std::fs::read(&blob).unwrap(), good, "the wheel was fetched again");
    assert_eq!(layers(&ctx.work().join("second")), first);

    // The layer cache holds only what the good wheel makes.
    ctx.run(&["build", "--oci", "third"]).success();
    assert_eq!(layers(&ctx.work().join("third")), first);
    assert_eq!(file_in_image(&ctx.work().join("third"), SITE).as_deref(), Some("STATE = 'GOOD'\n"));
}

#[test]
fn a_swapped_or_truncated_deb_is_fetched_again_by_debian_rootfs_and_build() {
    let w = world();
    let ctx = &w.ctx;
    let mirror = format!("--mirror={}", w._apt.url());
    let keyring = format!("--keyring={}", w.repo.keyring.display());
    let rootfs = |out: &str, offline: bool| {
        let mut args = vec!["debian", "rootfs", "--suite", "stable", &mirror, &keyring, "--no-essential"];
        args.extend(["--arch", "amd64", "--out", out]);
        if offline {
            args.push("--offline");
        }
        args.push("libc-test");
        ctx.run(&args)
    };
    rootfs("one", false).success();
    let deb = std::fs::read(w.repo.pool().join("libc-test_1.0_amd64.deb")).unwrap();
    let blob = cache_blob(ctx, &sha256_hex(&deb));
    assert!(blob.is_file());

    // Cut short: today's "premature eof" on every later run.
    std::fs::write(&blob, &deb[..deb.len() / 2]).unwrap();
    let run = rootfs("two", false);
    run.success();
    assert!(run.stderr.contains("was damaged"), "{}", run.stderr);
    assert_eq!(std::fs::read(&blob).unwrap(), deb);
    assert_eq!(ctx.read("two/usr/lib/libc-test.txt"), "libc GOOD\n");

    // Offline, a damaged .deb is named, with what to do.
    std::fs::write(&blob, &deb[..10]).unwrap();
    let run = rootfs("three", true);
    run.code(2);
    assert!(run.stderr.contains("libc-test 1.0 (amd64)"), "{}", run.stderr);
    assert!(run.stderr.contains(&blob.display().to_string()), "{}", run.stderr);
    assert!(run.stderr.contains("hint: run once without --offline"), "{}", run.stderr);
    assert!(!ctx.exists("three"));

    // In a build: swapped for another valid .deb.
    ctx.run(&["lock"]).success();
    ctx.run(&["build", "--oci", "first"]).success();
    let other = std::fs::read(w.repo.pool().join("python3.9_3.9.2-1_amd64.deb")).unwrap();
    std::fs::write(&blob, &other).unwrap();
    let run = ctx.run(&["build", "--no-cache", "--oci", "second"]);
    run.success();
    assert!(run.stderr.contains("was damaged"), "{}", run.stderr);
    assert_eq!(
        file_in_image(&ctx.work().join("second"), "usr/lib/libc-test.txt").as_deref(),
        Some("libc GOOD\n")
    );
    assert_eq!(layers(&ctx.work().join("second")), layers(&ctx.work().join("first")));
}

#[test]
fn an_altered_layout_blob_does_not_reach_the_next_build() {
    let w = world();
    let ctx = &w.ctx;
    ctx.run(&["lock"]).success();
    let run = ctx.run(&["build", "--oci", "first"]);
    run.success();
    let first_dir = ctx.work().join("first");
    let index = std::fs::read(first_dir.join("index.json")).unwrap();
    let layer = layers(&first_dir)[0].clone();
    let path = first_dir.join("blobs/sha256").join(&layer);
    let bytes = std::fs::read(&path).unwrap();
    // Layouts' files are read-only: a plain user cannot edit them at all.
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o222, 0);

    // Edited anyway, in place (the same size), as root can.
    let mut altered = bytes.clone();
    let n = altered.len();
    altered[n / 2] ^= 0xff;
    overwrite_in_place(&path, &altered);
    let run = ctx.run(&["build", "--oci", "second"]);
    run.success();
    assert!(run.stderr.contains("was damaged"), "{}", run.stderr);
    let second = ctx.work().join("second");
    assert_blobs_true(&second);
    assert_eq!(std::fs::read(second.join("index.json")).unwrap(), index, "the same, true digests");
    assert_eq!(std::fs::read(cache_blob(ctx, &layer)).unwrap(), bytes, "the cache holds the real layer");

    // The altered first layout is what its owner made it; the third build reuses the cache.
    let run = ctx.run(&["build", "--oci", "third"]);
    run.success();
    assert!(!run.stderr.contains("damaged"), "{}", run.stderr);
    assert_blobs_true(&ctx.work().join("third"));
}

#[test]
fn offline_a_damaged_wheel_is_named_and_an_empty_cache_is_exit_2() {
    let w = world();
    let ctx = &w.ctx;
    ctx.run(&["lock"]).success();
    ctx.run(&["build", "--oci", "first"]).success();
    let blob = cache_blob(ctx, &locked_sha256(ctx, "fast"));
    let wheel = std::fs::read(&blob).unwrap();
    std::fs::write(&blob, &wheel[..wheel.len() - 1]).unwrap();
    let run = ctx.run(&["build", "--offline", "--no-cache", "--oci", "second"]);
    run.code(2);
    assert!(run.stderr.contains("fast-1.0-py3-none-any.whl (fast 1.0)"), "{}", run.stderr);
    assert!(run.stderr.contains(&blob.display().to_string()), "{}", run.stderr);
    assert!(run.stderr.contains("hint: run the build once without --offline"), "{}", run.stderr);
    assert!(!ctx.exists("second"));

    // Nothing cached at all: a user error (exit 2) in every command, not a network one.
    let empty = ctx.dir.path().join("empty-cache");
    let offline = |args: &[&str]| -> Run {
        Run::from(ctx.command(args).env("MARQO_BASE_CACHE_DIR", &empty).output().unwrap())
    };
    for args in [
        &["build", "--offline", "--oci", "third"][..],
        &["lock", "--offline"],
        &["compile", "--offline", "requirements.in"],
    ] {
        let run = offline(args);
        run.code(2);
        assert!(run.stderr.contains("--offline"), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn a_wheel_the_index_changed_since_locking_is_a_user_error_with_a_lock_hint() {
    let w = world();
    let ctx = &w.ctx;
    ctx.run(&["lock"]).success();
    let name = "fast-1.0-py3-none-any.whl";
    let file = w.index.file_path(name);
    let good = std::fs::read(&file).unwrap();
    std::fs::write(&file, tampered_wheel(&good, "fast/__init__.py", "STATE = 'NEW'\n")).unwrap();
    let run = ctx.run(&["build", "--oci", "out"]);
    run.code(2);
    assert!(run.stderr.contains(name), "{}", run.stderr);
    assert!(run.stderr.contains("marqo-base lock -P fast"), "{}", run.stderr);
    assert!(!run.stderr.contains("--refresh"), "build has no --refresh: {}", run.stderr);
}

#[test]
fn pull_never_writes_a_swapped_cached_blob() {
    let ctx = TestContext::new();
    let registry = DockerRegistry::start();
    let img = TestImage::new(21).layers(&[64 * 1024]).write(&ctx.work().join("img"), "latest");
    let repo = format!("{}/hostile", registry.host());
    ctx.run(&["push", &repo, "--oci", "img", "--tag", "1", "--yes"]).success();
    ctx.run(&["pull", &format!("{repo}:1"), "--oci", "one"]).success();

    // Every cached blob swapped for other bytes of the same size.
    for blob in &img.blobs {
        let path = cache_blob(&ctx, blob.digest.trim_start_matches("sha256:"));
        let size = std::fs::metadata(&path).unwrap().len() as usize;
        std::fs::write(&path, vec![b'x'; size]).unwrap();
    }
    let run = ctx.run(&["pull", &format!("{repo}:1"), "--oci", "two"]);
    run.success();
    assert!(run.stderr.contains("was damaged"), "{}", run.stderr);
    let two = ctx.work().join("two");
    assert_blobs_true(&two);
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", &format!("oci:{}:1", two.display())])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(format!("sha256:{}", sha256_hex(&out.stdout)), img.index.digest);
}

#[test]
fn pushing_a_corrupt_layout_blob_names_it() {
    let ctx = TestContext::new();
    let registry = DockerRegistry::start();
    let img = TestImage::new(22).layers(&[4096]).write(&ctx.work().join("img"), "latest");
    // A layer (not a config: those are read and checked before anything is sent) altered
    // in place, the same size.
    let layer = img.blobs.iter().find(|b| b.size > 1000).unwrap();
    let path = ctx.work().join("img/blobs/sha256").join(layer.digest.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0xff;
    overwrite_in_place(&path, &bytes);
    let run =
        ctx.run(&["push", &format!("{}/corrupt", registry.host()), "--oci", "img", "--tag", "1", "--yes"]);
    run.code(2);
    let shown = format!("img/blobs/sha256/{}", layer.digest.trim_start_matches("sha256:"));
    assert!(run.stderr.contains(&shown) && run.stderr.contains("is corrupt"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: the layout was altered"), "{}", run.stderr);
    assert!(!run.stderr.contains("registry is up"), "{}", run.stderr);
}

#[test]
fn a_file_url_whose_bytes_differ_from_its_sha256_is_a_user_error() {
    let ctx = TestContext::new();
    let server =
        test_support::scripted::Server::start(|_| test_support::scripted::Reply::ok(b"served".to_vec()));
    ctx.write(
        "marqo-base.toml",
        &format!(
            "[image]\nplatforms = [\"linux/amd64\"]\n\n[[file]]\nurl = \"{}\"\nsha256 = \"{}\"\nto = \"/opt/f\"\n",
            server.url("/f.bin"),
            sha256_hex(b"expected")
        ),
    );
    let run = ctx.run(&["lock"]);
    run.code(2);
    assert!(run.stderr.contains("/f.bin") && run.stderr.contains(&sha256_hex(b"served")), "{}", run.stderr);
    assert!(run.stderr.contains("hint: check the url, and that `sha256`"), "{}", run.stderr);
    assert!(!run.stderr.contains("--refresh"), "{}", run.stderr);
}
