//! `marqo-base debian resolve` and `debian rootfs`, run as the real binary against a signed
//! apt repository built here (dpkg-deb, apt-ftparchive, a throwaway gpg key) and served on
//! 127.0.0.1; plus one test against the live mirror of this host's apt sources (skipped with
//! a note when `MARQO_BASE_SKIP_LIVE=1`).
//!
//! Building the repository is the slow part, so one test runs every local scenario in turn.
//!
//! Exit codes checked here: 0 ok; 2 for a request with no solution, an unknown package, a
//! bad `--arch`, a non-empty `--out`, and a signature that does not verify with `--keyring`
//! (a wrong or missing key is the user's to fix: retrying cannot help, so it is not a
//! network failure); 3 is kept for the network (and `--offline` with nothing cached).

mod common;
// The repository builder of the `debian` crate's own tests.
#[path = "../../debian/tests/common/mod.rs"]
mod apt;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use apt::{write_evil_deb, Deb, Repo, Server};
use common::{Run, TestContext};

fn triplet(arch: &str) -> &'static str {
    if arch == "amd64" {
        "x86_64-linux-gnu"
    } else {
        "aarch64-linux-gnu"
    }
}

/// A small archive with the shapes a real one has: an essential base, a Multi-Arch: same
/// library with per-architecture files, a version relation with an alternative, a virtual
/// package, an arm64-only package, an unsatisfiable one and a malicious one.
fn build_repo() -> Repo {
    let repo = Repo::new();
    let work = repo.dir.path().join("build");
    let pool = repo.pool();
    for arch in ["amd64", "arm64"] {
        Deb::new("base-files", "1")
            .arch(arch)
            .field("Essential", "yes")
            .field("Priority", "required")
            .file("/etc/debian_version", "test\n", 0o644)
            .build(&work, &pool);
        Deb::new("libc-test", "1.0")
            .arch(arch)
            .field("Priority", "required")
            .field("Multi-Arch", "same")
            .file(&format!("/usr/lib/{}/libc-test.so", triplet(arch)), arch, 0o644)
            .build(&work, &pool);
        Deb::new("dash", "1")
            .arch(arch)
            .field("Essential", "yes")
            .field("Pre-Depends", "libc-test")
            .file("/bin/dash", "#!/bin/false\n", 0o755)
            .build(&work, &pool);
        Deb::new("hello", "1")
            .arch(arch)
            .depends("libfoo (>= 1.5) | libfoo-compat, greeting-data, mail-transport-agent")
            .file("/usr/bin/hello", "#!/bin/sh\necho hello\n", 0o755)
            .build(&work, &pool);
        for v in ["1.0", "2.0"] {
            Deb::new("libfoo", v).arch(arch).build(&work, &pool);
        }
    }
    Deb::new("armonly", "1").arch("arm64").build(&work, &pool);
    for deb in [
        Deb::new("libfoo-compat", "1"),
        Deb::new("greeting-data", "1").file("/usr/share/hello/greeting", "hello\n", 0o644),
        Deb::new("mta-a", "1").field("Provides", "mail-transport-agent"),
        Deb::new("broken", "1").depends("libfoo (>= 3)"),
    ] {
        deb.build(&work, &pool);
    }
    write_evil_deb(&pool.join("evil_1.0_all.deb"), "evil", "./usr/../../../evil-escape");
    repo.publish("stable");
    repo
}

/// `debian SUBCOMMAND --suite stable --mirror URL --keyring KEY ARGS...` in the sandbox.
fn debian(ctx: &TestContext, server: &Server, keyring: &Path, sub: &str, args: &[&str]) -> Run {
    let url = server.url();
    let key = keyring.display().to_string();
    let mut all = vec!["debian", sub, "--suite", "stable", "--mirror", &url, "--keyring", &key];
    all.extend_from_slice(args);
    ctx.run(&all)
}

/// Entries of `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

const AMD64_HELLO: &str = "\
base-files=1 amd64
dash=1 amd64
greeting-data=1 all
hello=1 amd64
libc-test=1.0 amd64
libfoo=2.0 amd64
mta-a=1 all
";

#[test]
fn against_a_signed_repository() {
    apt::require_tools();
    let started = Instant::now();
    let repo = build_repo();
    let server = Server::start(repo.root());
    let key = repo.keyring.clone();
    eprintln!("repository ready in {:.2}s", started.elapsed().as_secs_f64());
    let ctx = TestContext::new();

    // Both architectures in one run: a header per block, sorted lines, `all` packages
    // in each block, the essential set by default.
    let run = debian(&ctx, &server, &key, "resolve", &["--arch", "amd64", "--arch", "linux/arm64", "hello"]);
    run.success();
    let arm64 = AMD64_HELLO.replace("amd64", "arm64");
    assert_eq!(run.stdout, format!("# amd64\n{AMD64_HELLO}\n# arm64\n{arm64}"));
    for needle in ["Resolved 7 packages for amd64 from stable", "Resolved 7 packages for arm64", "Done in"] {
        assert!(run.stderr.contains(needle), "`{needle}` missing in:\n{}", run.stderr);
    }

    // One architecture: no header. Without the essential set: only what hello needs.
    let run = debian(&ctx, &server, &key, "resolve", &["--arch", "arm64", "--no-essential", "hello"]);
    run.success();
    assert_eq!(
        run.stdout, "greeting-data=1 all\nhello=1 arm64\nlibfoo=2.0 arm64\nmta-a=1 all\n",
        "{}",
        run.stderr
    );
    let run = debian(&ctx, &server, &key, "resolve", &["--arch", "amd64", "--no-essential", "libfoo (<< 2)"]);
    assert_eq!(run.success().stdout, "libfoo=1.0 amd64\n");

    // --offline answers from what the runs above verified and cached.
    let run = debian(&ctx, &server, &key, "resolve", &["--arch", "amd64", "--offline", "hello"]);
    assert_eq!(run.success().stdout, AMD64_HELLO);

    unsatisfiable_requests(&ctx, &server, &key);
    wrong_keys(&ctx, &server, &repo);
    rootfs(&ctx, &server, &key);
    eprintln!("all scenarios in {:.2}s", started.elapsed().as_secs_f64());
}

fn unsatisfiable_requests(ctx: &TestContext, server: &Server, key: &Path) {
    let run = debian(ctx, server, key, "resolve", &["--arch", "arm64", "hello", "broken"]);
    run.code(2);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    for needle in
        ["error: no solution for arm64", "broken 1 depends on `libfoo (>= 3)`", "libfoo 2.0", "hint:"]
    {
        assert!(run.stderr.contains(needle), "`{needle}` missing in:\n{}", run.stderr);
    }
    let run = debian(ctx, server, key, "resolve", &["--arch", "amd64", "armonly"]);
    run.code(2);
    assert!(run.stderr.contains("no package `armonly` for amd64"), "{}", run.stderr);
    let run = debian(ctx, server, key, "resolve", &["--arch", "riscv64", "hello"]);
    run.code(2);
    assert!(run.stderr.contains("unsupported architecture `riscv64`"), "{}", run.stderr);
}

fn wrong_keys(ctx: &TestContext, server: &Server, repo: &Repo) {
    // The index is signed, but not by a key of this keyring: exit 2, naming the keyring.
    let run = debian(ctx, server, &repo.wrong_keyring, "resolve", &["--arch", "amd64", "hello"]);
    run.code(2);
    let wrong = repo.wrong_keyring.display().to_string();
    for needle in ["InRelease does not verify with", wrong.as_str(), "not in the keyring", "--keyring"] {
        assert!(run.stderr.contains(needle), "`{needle}` missing in:\n{}", run.stderr);
    }
    assert!(run.stdout.is_empty());
    // A keyring that does not exist.
    let run =
        debian(ctx, server, Path::new("/nonexistent/key.gpg"), "resolve", &["--arch", "amd64", "hello"]);
    run.code(2);
    assert!(run.stderr.contains("cannot use the keyring /nonexistent/key.gpg"), "{}", run.stderr);
}

/// `dpkg --audit` on the root's database prints nothing: every package's files, md5sums and
/// database format are where dpkg looks (`info/NAME:ARCH.list` for `Multi-Arch: same`).
fn dpkg_audit_is_clean(root: &Path) {
    let out = Command::new("dpkg")
        .arg(format!("--admindir={}", root.join("var/lib/dpkg").display()))
        .arg("--audit")
        .output()
        .unwrap();
    let audit = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && audit.is_empty(), "dpkg --audit of {}: {audit}", root.display());
}

fn rootfs(ctx: &TestContext, server: &Server, key: &Path) {
    let work = ctx.work();
    let run = debian(ctx, server, key, "rootfs", &["--arch", "arm64", "--out", "root/arm64", "hello"]);
    run.success();
    assert!(run.stderr.contains("Wrote root/arm64 for arm64: 7 packages"), "{}", run.stderr);
    let root = work.join("root/arm64");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(read("etc/debian_version"), "test\n");
    assert_eq!(read("usr/lib/aarch64-linux-gnu/libc-test.so"), "arm64");
    assert_eq!(read("usr/bin/hello"), "#!/bin/sh\necho hello\n");
    assert_eq!(read("usr/share/hello/greeting"), "hello\n");
    let status = read("var/lib/dpkg/status");
    assert!(status.contains("Package: hello\nStatus: install ok installed\n"), "{status}");
    assert!(read("var/lib/dpkg/info/hello.list").lines().any(|l| l == "/usr/bin/hello"));
    assert!(
        read("var/lib/dpkg/info/libc-test:arm64.list").contains("/usr/lib/aarch64-linux-gnu/libc-test.so")
    );
    // dpkg itself reads the database we wrote.
    let out = Command::new("dpkg-query")
        .arg(format!("--admindir={}", root.join("var/lib/dpkg").display()))
        .args(["-W", "-f", "${db:Status-Abbrev}${Package}=${Version} ${Architecture}\n"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut listed: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    listed.sort();
    let want: Vec<String> =
        AMD64_HELLO.replace("amd64", "arm64").lines().map(|l| format!("ii {l}")).collect();
    assert_eq!(listed, want);
    dpkg_audit_is_clean(&root);
    assert_eq!(entries(&work.join("root")), ["arm64"], "no staging directory is left behind");

    // A non-empty --out is refused and left alone; --force replaces it.
    std::fs::create_dir_all(work.join("busy")).unwrap();
    std::fs::write(work.join("busy/keep.txt"), "mine\n").unwrap();
    let run = debian(ctx, server, key, "rootfs", &["--arch", "amd64", "--out", "busy", "hello"]);
    run.code(2);
    assert!(run.stderr.contains("busy is not empty") && run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(work.join("busy/keep.txt")).unwrap(), "mine\n");
    let run = debian(ctx, server, key, "rootfs", &["--arch", "amd64", "--out", "busy", "--force", "hello"]);
    run.success();
    assert!(!work.join("busy/keep.txt").exists());
    assert_eq!(
        std::fs::read_to_string(work.join("busy/usr/lib/x86_64-linux-gnu/libc-test.so")).unwrap(),
        "amd64"
    );
    dpkg_audit_is_clean(&work.join("busy"));
    // An empty directory is fine without --force.
    std::fs::create_dir_all(work.join("empty")).unwrap();
    debian(ctx, server, key, "rootfs", &["--arch", "amd64", "--no-essential", "--out", "empty", "libfoo"])
        .success();
    assert!(work.join("empty/var/lib/dpkg/status").is_file());

    // Several architectures need an {arch} template.
    let run =
        debian(ctx, server, key, "rootfs", &["--arch", "amd64", "--arch", "arm64", "--out", "one", "hello"]);
    run.code(2);
    assert!(run.stderr.contains("{arch}"), "{}", run.stderr);
    let run = debian(
        ctx,
        server,
        key,
        "rootfs",
        &["--arch", "amd64", "--arch", "arm64", "--out", "multi/{arch}", "hello"],
    );
    run.success();
    for arch in ["amd64", "arm64"] {
        let lib = work.join(format!("multi/{arch}/usr/lib/{}/libc-test.so", triplet(arch)));
        assert_eq!(std::fs::read_to_string(lib).unwrap(), arch);
    }

    // A package that fails to unpack leaves no tree and no staging directory behind.
    std::fs::create_dir_all(work.join("bad")).unwrap();
    let run = debian(ctx, server, key, "rootfs", &["--arch", "amd64", "--out", "bad/root", "hello", "evil"]);
    run.code(2);
    assert!(run.stderr.contains("package `evil` ships the unsafe path"), "{}", run.stderr);
    assert!(entries(&work.join("bad")).is_empty(), "left behind: {:?}", entries(&work.join("bad")));
}

/// The live mirror of this host's apt sources: bullseye for both architectures in one run.
/// Versions move with point releases, so only names, architectures and shape are checked.
/// Uses the user's cache (as `crates/debian/tests/live.rs` does): a second run reads only
/// the InRelease.
#[test]
fn live_bullseye_resolve_for_both_architectures() {
    if std::env::var_os("MARQO_BASE_SKIP_LIVE").is_some_and(|v| v == "1") {
        test_support::say_skipped("the live Debian mirror test", "MARQO_BASE_SKIP_LIVE=1");
        return;
    }
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_marqo-base"))
        .args(["debian", "resolve", "--suite", "bullseye", "--arch", "amd64", "--arch", "arm64"])
        .args(["python3.9", "libgomp1"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let run = Run::from(out);
    run.success();
    let blocks: Vec<&str> = run.stdout.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{}", run.stdout);
    for (block, arch) in blocks.iter().zip(["amd64", "arm64"]) {
        let mut lines = block.lines();
        assert_eq!(lines.next(), Some(format!("# {arch}").as_str()));
        let mut by_name = std::collections::BTreeMap::new();
        let mut previous = String::new();
        for line in lines {
            let (name_version, line_arch) =
                line.split_once(' ').unwrap_or_else(|| panic!("bad line `{line}`"));
            let (name, version) = name_version.split_once('=').unwrap_or_else(|| panic!("bad line `{line}`"));
            assert!(!version.is_empty() && !version.contains(' '), "{line}");
            assert!(line_arch == arch || line_arch == "all", "{line} in the {arch} block");
            assert!(name > previous.as_str(), "not sorted: {previous} then {name}");
            previous = name.to_string();
            by_name.insert(name.to_string(), line_arch.to_string());
        }
        for name in
            ["python3.9", "python3.9-minimal", "libpython3.9-stdlib", "libgomp1", "libc6", "base-files"]
        {
            assert_eq!(by_name.get(name).map(String::as_str), Some(arch), "{name} for {arch}:\n{block}");
        }
        assert_eq!(by_name.get("debconf").map(String::as_str), Some("all"), "{block}");
        assert!(by_name.len() > 50, "the essential set is in: {} packages", by_name.len());
    }
    assert!(run.stderr.contains("packages for arm64 from bullseye"), "{}", run.stderr);
    eprintln!("live resolve in {:.2}s:\n{}", started.elapsed().as_secs_f64(), run.stderr.trim_end());
}
