//! Every decompression is bounded by what the data claims, and every local read by a size
//! limit (issue 30, classes 2 and 3): a registry-cache layer that is a zstd bomb, a `.deb`
//! whose `data.tar.zst` is one, and requirements files that never end. Each run of the binary
//! is guarded (`prlimit`: 1 GiB of data, 1 GiB per written file; killed after ten minutes),
//! so a tool that does not bound them fails the test instead of taking the machine down with
//! it. Peak memory and time are printed (`-- --nocapture`), not asserted: they are measures.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::apt::{Deb, Repo, Server as AptServer};
use crate::common::{Run, TestContext};
use test_support::{DockerRegistry, Index, Wheel};

const GIB: u64 = 1 << 30;

/// How long a guarded run may take before it is killed: a guard against a runaway, far above
/// what a bounded run takes on a loaded machine, not a measure of speed.
const DEADLINE: Duration = Duration::from_secs(600);

/// `marqo-base ARGS` of `ctx` (with `cache` as its cache, if given), at most 1 GiB of data
/// and 1 GiB per written file, killed after [`DEADLINE`]. Prints its time and peak resident
/// set (`/usr/bin/time`).
fn guarded(ctx: &TestContext, cache: Option<&Path>, args: &[&str]) -> Run {
    guarded_with(ctx, cache, args, &[])
}

/// [`guarded`] with more environment variables.
fn guarded_with(ctx: &TestContext, cache: Option<&Path>, args: &[&str], env: &[(&str, String)]) -> Run {
    let deadline = DEADLINE;
    for (tool, package) in [("/usr/bin/time", "time"), ("/usr/bin/prlimit", "util-linux")] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: install the Debian package {package} (./test.sh does)"
        );
    }
    let inner = ctx.command(args);
    let out = ctx.dir.path().join(format!("run-{}", args.join("-").replace('/', "_")));
    let rss = out.with_extension("rss");
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--data={GIB}")).arg(format!("--fsize={GIB}")).arg("--");
    cmd.arg("/usr/bin/time").arg("-f").arg("%M").arg("-o").arg(&rss).arg(inner.get_program());
    cmd.args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    if let Some(cache) = cache {
        cmd.env("MARQO_BASE_CACHE_DIR", cache);
    }
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.current_dir(inner.get_current_dir().expect("the sandbox's directory"));
    let (stdout, stderr) = (out.with_extension("out"), out.with_extension("err"));
    cmd.stdout(std::fs::File::create(&stdout).unwrap()).stderr(std::fs::File::create(&stderr).unwrap());
    let start = Instant::now();
    let mut child = cmd.stdin(Stdio::null()).spawn().expect("run prlimit marqo-base");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let elapsed = start.elapsed();
    let run = Run {
        code: status.and_then(|s| s.code()).unwrap_or(-1),
        stdout: std::fs::read_to_string(&stdout).unwrap(),
        stderr: std::fs::read_to_string(&stderr).unwrap(),
    };
    assert!(status.is_some(), "`marqo-base {args:?}` still ran after {deadline:?}:\n{}", run.stderr);
    let rss = std::fs::read_to_string(&rss).unwrap();
    // The last line: `time` first notes a command that failed.
    let kib: u64 = rss.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or_else(|| panic!("{rss}"));
    eprintln!("marqo-base {args:?}: exit {}, {elapsed:?}, peak RSS {} MiB", run.code, kib >> 10);
    run
}

/// A zstd frame (window 128 KiB) of `prefix` stored as is, then `zeros` zero bytes as RLE
/// blocks of 128 KiB, 4 bytes each: 100 GiB take 3.2 MB, and no compressor has to run.
fn zstd_bomb(prefix: &[u8], zeros: u64) -> Vec<u8> {
    const BLOCK: u64 = 128 << 10;
    let mut out = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38];
    let header = |out: &mut Vec<u8>, kind: u32, size: u32, last: bool| {
        out.extend_from_slice(&((size << 3) | (kind << 1) | u32::from(last)).to_le_bytes()[..3]);
    };
    let blocks = zeros / BLOCK;
    header(&mut out, 0, prefix.len() as u32, blocks == 0);
    out.extend_from_slice(prefix);
    for i in 0..blocks {
        header(&mut out, 1, BLOCK as u32, i + 1 == blocks);
        out.push(0);
    }
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

struct World {
    _index: test_support::Server,
    _apt: AptServer,
    _repo: Repo,
    ctx: TestContext,
}

/// One platform (amd64): a pure wheel `fast`, `python3.9` and the `.deb` it depends on,
/// `libc-test`, whose data is `libc` (a `.deb` file written into the pool), or a good one.
fn world(libc: Option<&dyn Fn(&Path)>) -> World {
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
    match libc {
        Some(write) => write(&pool),
        None => {
            Deb::new("libc-test", "1.0")
                .arch("amd64")
                .file("/usr/lib/libc-test.txt", "libc GOOD\n", 0o644)
                .build(&work, &pool);
        }
    }
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
    World { _index: index_server, _apt: apt, _repo: repo, ctx }
}

#[test]
fn requirements_files_that_never_end_are_refused_by_name() {
    let ctx = TestContext::new();
    ctx.write("requirements.in", "-r /dev/zero\nsix\n");
    let run = guarded(&ctx, None, &["compile", "requirements.in"]);
    run.code(2);
    assert!(run.stderr.contains("/dev/zero"), "{}", run.stderr);
    assert!(run.stderr.contains("is larger than 64 MiB"), "{}", run.stderr);

    ctx.write("plain.in", "six\n");
    let run = guarded(&ctx, None, &["compile", "plain.in", "-c", "/dev/urandom"]);
    run.code(2);
    assert!(run.stderr.contains("/dev/urandom"), "{}", run.stderr);
    assert!(run.stderr.contains("is larger than 64 MiB"), "{}", run.stderr);
}

/// The manifest, the lock and a key that never end: each refused by name, as requirements are.
#[test]
fn a_manifest_lock_or_key_that_never_ends_is_refused_by_name() {
    let ctx = TestContext::new();
    ctx.write("requirements.in", "six\n");
    ctx.write(
        "marqo-base.toml",
        "[image]\nplatforms = [\"linux/amd64\"]\n\n[python]\nversion = \"3.9\"\nrequirements = [\"requirements.in\"]\n",
    );
    for args in [
        &["lock", "--manifest", "/dev/zero"][..],
        &["tree", "--lock", "/dev/zero"],
        &["verify", "127.0.0.1:9/app:1", "--key", "/dev/zero"],
    ] {
        let run = guarded(&ctx, None, args);
        run.code(2);
        assert!(run.stderr.contains("/dev/zero"), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("is larger than"), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn a_deb_whose_data_is_a_decompression_bomb_fails_fast_naming_it() {
    let w = world(Some(&|pool: &Path| {
        // One file of 16 GiB of zeros in 512 KiB of zstd.
        let mut header = tar::Header::new_gnu();
        header.set_path("./usr/lib/libc-test.bin").unwrap();
        header.set_size(16 * GIB);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let control = "Package: libc-test\nVersion: 1.0\nArchitecture: amd64\n\
                       Maintainer: T <t@example.invalid>\nDescription: a bomb\n";
        crate::apt::write_raw_deb_with(
            &pool.join("libc-test_1.0_amd64.deb"),
            control,
            "data.tar.zst",
            zstd_bomb(header.as_bytes(), 16 * GIB),
        );
    }));
    w.ctx.run(&["lock"]).success();
    let run = guarded(&w.ctx, None, &["build", "--oci", "out"]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(run.code > 0, "killed by a signal (the file size or data limit?):\n{}", run.stderr);
    assert!(run.stderr.contains("data.tar.zst of"), "{}", run.stderr);
    assert!(run.stderr.contains("libc-test"), "{}", run.stderr);
    assert!(run.stderr.contains("expands past 256 MiB"), "{}", run.stderr);
    // 256 MiB decoded and written (about 17 s in a debug build on a loaded 2-core machine);
    // unbounded, it is 16 GiB on disk.
    assert!(!w.ctx.work().join("out").exists());
}

/// `curl ARGS`, its output.
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").arg("-fsS").args(args).output().expect("run curl");
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Uploads `blob` into the repository `repo` of the registry at `host`; its digest.
fn upload_blob(host: &str, repo: &str, blob: &Path) -> String {
    let headers = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-X",
        "POST",
        &format!("http://{host}/v2/{repo}/blobs/uploads/"),
    ]);
    let location = headers
        .lines()
        .find_map(|l| l.strip_prefix("Location: ").or_else(|| l.strip_prefix("location: ")))
        .expect("a Location header")
        .trim()
        .to_string();
    let digest = format!("sha256:{}", sha256_hex(&std::fs::read(blob).unwrap()));
    let url = format!("{location}&digest={}", digest.replace(':', "%3A"));
    curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", blob.display()),
        &url,
    ]);
    digest
}

fn index_digest(dir: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_string()
}

#[test]
fn a_registry_cache_layer_that_is_a_decompression_bomb_is_refused_at_its_claimed_size_and_built() {
    let w = world(None);
    let registry = DockerRegistry::start();
    let (host, cache_repo) = (registry.host(), "team/cache");
    let cache = format!("{host}/{cache_repo}");
    w.ctx.run(&["lock"]).success();
    w.ctx.run(&["build", "--oci", "a", "--cache", &cache, "--cache-write"]).success();
    let a = index_digest(&w.ctx.work().join("a"));

    // Every entry's layer becomes 100 GiB of zeros in 3.2 MB of zstd; the entries keep their
    // claims (key, diff_id, uncompressed size).
    let tags: serde_json::Value =
        serde_json::from_str(&curl(&[&format!("http://{host}/v2/{cache_repo}/tags/list")])).unwrap();
    let tags: Vec<String> = tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str().filter(|t| t.starts_with("layer-")).map(str::to_string))
        .collect();
    assert!(!tags.is_empty(), "no entries were written");
    let bomb = w.ctx.dir.path().join("bomb.zst");
    std::fs::write(&bomb, zstd_bomb(&[], 100 * GIB)).unwrap();
    let size = std::fs::metadata(&bomb).unwrap().len();
    let digest = upload_blob(&host, cache_repo, &bomb);
    for tag in &tags {
        let url = format!("http://{host}/v2/{cache_repo}/manifests/{tag}");
        let accept = "Accept: application/vnd.oci.image.manifest.v1+json";
        let mut entry: serde_json::Value = serde_json::from_str(&curl(&["-H", accept, &url])).unwrap();
        entry["layers"][0]["digest"] = digest.clone().into();
        entry["layers"][0]["size"] = size.into();
        entry["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar+zstd".into();
        let content_type = "Content-Type: application/vnd.oci.image.manifest.v1+json";
        curl(&["-X", "PUT", "-H", content_type, "--data-binary", &entry.to_string(), &url]);
    }

    // An empty runner finds the entries, downloads the blob once, stops decompressing it one
    // byte past each entry's claim, warns, and builds the layers itself.
    let empty = w.ctx.dir.path().join("runner-b");
    let run = guarded(&w.ctx, Some(&empty), &["build", "--oci", "b", "--cache", &cache]);
    run.success();
    assert!(run.stderr.contains(&format!("the layer {digest} expands past its claimed")), "{}", run.stderr);
    assert!(run.stderr.contains("the layer is built"), "{}", run.stderr);
    assert_eq!(index_digest(&w.ctx.work().join("b")), a, "{}", run.stderr);
}

/// A Docker credential helper that never stops printing: its answer is cut off at 1 MiB with
/// an error naming it, and the helper is killed, not read until memory runs out.
#[test]
fn a_credential_helper_that_never_stops_printing_is_cut_off() {
    use test_support::scripted::{Reply, Server};
    let ctx = TestContext::new();
    let registry = Server::start(|_| Reply::status(401).header("WWW-Authenticate", r#"Basic realm="r""#));
    let bin = ctx.dir.path().join("bin");
    let docker = ctx.dir.path().join("docker");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&docker).unwrap();
    let helper = bin.join("docker-credential-endless");
    std::fs::write(&helper, "#!/bin/sh\nexec cat /dev/zero\n").unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(docker.join("config.json"), r#"{"credsStore":"endless"}"#).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let host = format!("127.0.0.1:{}", registry.port);
    let run = guarded_with(
        &ctx,
        None,
        &["pull", &format!("{host}/app:1"), "--oci", "out", "--retries", "0"],
        &[("PATH", path), ("DOCKER_CONFIG", docker.display().to_string())],
    );
    run.code(2);
    assert!(run.stderr.contains("docker-credential-endless get"), "{}", run.stderr);
    assert!(run.stderr.contains("is larger than 1 MiB"), "{}", run.stderr);
}
