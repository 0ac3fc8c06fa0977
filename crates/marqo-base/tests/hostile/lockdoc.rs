//! The lock as a checked document, `[[file]]` entries, outputs, and what interrupted runs
//! leave behind: a manifest locked against a package index and a signed apt repository
//! served on 127.0.0.1, then edited, broken or interrupted.

use std::path::Path;

use crate::apt::{self, Deb, Repo, Server as AptServer};
use crate::common::TestContext;
use test_support::{Index, Wheel};

struct World {
    _index: test_support::Server,
    _apt: AptServer,
    _repo: Repo,
    ctx: TestContext,
}

/// `app` needs `dep` everywhere and `amd-only` on x86_64; the Debian `tool` needs `libtool1`.
fn world() -> World {
    apt::require_tools();
    let index = Index::new();
    Wheel::new("app", "1.0")
        .requires("dep")
        .requires("amd-only; platform_machine == \"x86_64\"")
        .file("app/__init__.py", "")
        .publish(&index);
    Wheel::new("dep", "1.0").file("dep/__init__.py", "").publish(&index);
    Wheel::new("amd-only", "1.0").file("amd_only/__init__.py", "").publish(&index);
    let index_server = index.serve();

    let repo = Repo::new();
    let (work, pool) = (repo.dir.path().join("build"), repo.pool());
    for arch in ["amd64", "arm64"] {
        Deb::new("tool", "1.0")
            .arch(arch)
            .depends("libtool1 (>= 1.0)")
            .file("/usr/bin/tool", "#!/bin/sh\n", 0o755)
            .build(&work, &pool);
        Deb::new("libtool1", "1.0").arch(arch).file("/usr/lib/libtool.txt", arch, 0o644).build(&work, &pool);
    }
    repo.publish("stable");
    let apt_server = AptServer::start(repo.root());

    let ctx = TestContext::new();
    ctx.write("requirements.in", &format!("--index-url {}\napp\n", index_server.url()));
    std::fs::create_dir_all(ctx.work().join("files")).unwrap();
    ctx.write("files/motd", "hello\n");
    ctx.write(
        "marqo-base.toml",
        &format!(
            "[image]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n\
             [debian]\nsuite = \"stable\"\nmirror = \"{}\"\nkeyring = \"{}\"\nessential = false\n\
             packages = [\"tool\"]\n\n\
             [python]\nversion = \"3.9\"\nglibc = \"2.28\"\nrequirements = [\"requirements.in\"]\n\n\
             [[file]]\nsrc = \"files/motd\"\nto = \"/etc/motd\"\n",
            apt_server.url(),
            repo.keyring.display()
        ),
    );
    World { _index: index_server, _apt: apt_server, _repo: repo, ctx }
}

/// The lock text without the entry of `kind` (`python`, `debian`) named `name` whose
/// platforms line contains `platform`.
fn without_entry(lock: &str, kind: &str, name: &str, platform: &str) -> String {
    let header = format!("[[{kind}]]\n");
    let blocks: Vec<&str> = lock.split("\n\n").collect();
    let before = blocks.len();
    let kept: Vec<&str> = blocks
        .into_iter()
        .filter(|b| {
            let hit = b.starts_with(&header)
                && b.contains(&format!("\nname = \"{name}\"\n"))
                && b.lines().any(|l| l.starts_with("platforms = ") && l.contains(platform));
            !hit
        })
        .collect();
    assert_eq!(kept.len() + 1, before, "exactly one [[{kind}]] {name} for {platform} in:\n{lock}");
    kept.join("\n\n")
}

#[track_caller]
fn assert_stale(ctx: &TestContext, lock: &str, reason: &str) {
    ctx.write("marqo-base.lock", lock);
    let run = ctx.run(&["lock", "--check"]);
    run.code(1);
    assert!(run.stderr.contains(reason), "expected `{reason}` in:\n{}", run.stderr);
    let run = ctx.run(&["build", "--oci", "out", "--offline"]);
    run.code(2);
    assert!(run.stderr.contains("is stale") && run.stderr.contains(reason), "{}", run.stderr);
    assert!(!Path::new(&ctx.work().join("out")).exists(), "a refused build writes nothing");
}

#[test]
fn a_lock_edited_by_hand_is_stale_naming_the_entry_and_platform() {
    let w = world();
    let ctx = &w.ctx;
    ctx.run(&["lock"]).success();
    let good = ctx.read("marqo-base.lock");
    // What each entry needs is recorded per platform: `app` needs `amd-only` on amd64 only.
    assert!(good.contains("dependencies = [\"amd-only\", \"dep\"]"), "{good}");
    assert!(good.contains("dependencies = [\"dep\"]"), "{good}");
    assert!(good.contains("dependencies = [\"libtool1\"]"), "{good}");
    ctx.run(&["lock", "--check"]).success();

    // A dependency deleted (for one platform), a requirement deleted, a .deb deleted.
    assert_stale(
        ctx,
        &without_entry(&good, "python", "dep", "linux/arm64"),
        "`dep`, a dependency of [[python]] `app` 1.0, is not locked for linux/arm64",
    );
    assert_stale(
        ctx,
        &without_entry(&good, "python", "amd-only", "linux/amd64"),
        "`amd-only`, a dependency of [[python]] `app` 1.0, is not locked for linux/amd64",
    );
    let no_app =
        without_entry(&without_entry(&good, "python", "app", "linux/amd64"), "python", "app", "linux/arm64");
    assert_stale(ctx, &no_app, "`app` (requirements.in:2) is not locked for linux/amd64");
    assert_stale(
        ctx,
        &without_entry(&good, "debian", "libtool1", "linux/arm64"),
        "`libtool1`, a dependency of [[debian]] `tool` 1.0, is not locked for linux/arm64",
    );
    assert_stale(
        ctx,
        &without_entry(&good, "debian", "tool", "linux/amd64"),
        "`tool` ([debian] packages) is not locked for linux/amd64",
    );

    // A [[file]] whose sha256 or size was changed, or that was removed.
    let motd = good.find("to = \"/etc/motd\"").expect("the [[file]] is locked");
    let file_block = &good[motd..];
    let size_line = file_block.lines().find(|l| l.starts_with("size = ")).unwrap();
    assert_stale(
        ctx,
        &good.replace(size_line, "size = 7"),
        "[[file]] to `/etc/motd`: the lock's size 7 is not that of `files/motd` (6 bytes)",
    );
    let sha_line = file_block.lines().find(|l| l.starts_with("sha256 = ")).unwrap();
    let other = format!("sha256 = \"{}\"", "0".repeat(64));
    assert_stale(ctx, &good.replace(sha_line, &other), "[[file]] to `/etc/motd`: the lock's sha256 0000");
    let no_file = good[..good.find("\n\n[[file]]").unwrap()].to_string() + "\n";
    assert_stale(ctx, &no_file, "[[file]] to `/etc/motd` is not locked");

    // A lock written before dependencies were recorded cannot show its closure: stale.
    let old: String =
        good.lines().filter(|l| !l.starts_with("dependencies = ")).map(|l| format!("{l}\n")).collect();
    assert_stale(ctx, &old, "record no dependencies (the lock was written by an older marqo-base)");

    // Put back, it is fresh again, and builds.
    ctx.write("marqo-base.lock", &good);
    ctx.run(&["lock", "--check"]).success();
}

/// `(path, mode, uid)` of every entry of every gzip layer in the layout `dir`.
fn layer_entries(dir: &Path) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for blob in std::fs::read_dir(dir.join("blobs/sha256")).expect("blobs") {
        let bytes = std::fs::read(blob.expect("blob").path()).expect("read blob");
        if !bytes.starts_with(&[0x1f, 0x8b]) {
            continue;
        }
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        for entry in archive.entries().expect("tar") {
            let entry = entry.expect("entry");
            let path = entry.path().expect("path").to_string_lossy().into_owned();
            out.push((path, entry.header().mode().expect("mode")));
        }
    }
    out.sort();
    out
}

fn mode_of(entries: &[(String, u32)], path: &str) -> u32 {
    entries.iter().find(|(p, _)| p == path).unwrap_or_else(|| panic!("{path} not in {entries:?}")).1
}

const FILES_ONLY: &str = "[image]\nplatforms = [\"linux/amd64\"]\n";

#[test]
fn file_modes_are_kept_exactly() {
    let ctx = TestContext::new();
    std::fs::create_dir_all(ctx.work().join("files/tree")).unwrap();
    for name in ["secret", "open", "setuid", "plain", "tree/script"] {
        ctx.write(&format!("files/{name}"), name);
    }
    use std::os::unix::fs::PermissionsExt;
    let set = |name: &str, mode: u32| {
        std::fs::set_permissions(ctx.work().join(name), std::fs::Permissions::from_mode(mode)).unwrap()
    };
    set("files/plain", 0o664);
    set("files/tree/script", 0o775);
    ctx.write(
        "marqo-base.toml",
        &format!(
            "{FILES_ONLY}\n\
             [[file]]\nsrc = \"files/secret\"\nto = \"/etc/secret\"\nmode = 0o600\n\n\
             [[file]]\nsrc = \"files/open\"\nto = \"/tmp/open\"\nmode = 0o777\n\n\
             [[file]]\nsrc = \"files/setuid\"\nto = \"/usr/bin/su-like\"\nmode = 0o4755\n\n\
             [[file]]\nsrc = \"files/plain\"\nto = \"/etc/plain\"\n\n\
             [[file]]\nsrc = \"files/tree\"\nto = \"/opt/tree\"\nmode = 0o750\n"
        ),
    );
    ctx.run(&["lock"]).success();
    ctx.run(&["build", "--oci", "out"]).success();
    let entries = layer_entries(&ctx.work().join("out"));
    assert_eq!(mode_of(&entries, "etc/secret"), 0o600);
    assert_eq!(mode_of(&entries, "tmp/open"), 0o777);
    assert_eq!(mode_of(&entries, "usr/bin/su-like"), 0o4755);
    // Without `mode`, as before: 0644 or 0755 whatever the checkout's umask gave.
    assert_eq!(mode_of(&entries, "etc/plain"), 0o644);
    assert_eq!(mode_of(&entries, "opt/tree/"), 0o750);
    assert_eq!(mode_of(&entries, "opt/tree/script"), 0o755);
}

#[test]
fn file_sources_outside_the_manifest_directory_are_refused() {
    let ctx = TestContext::new();
    let outside = ctx.dir.path().join("outside.txt");
    std::fs::write(&outside, "not in the build context\n").unwrap();
    std::fs::create_dir_all(ctx.work().join("files")).unwrap();
    std::os::unix::fs::symlink(&outside, ctx.work().join("files/link")).unwrap();
    let cases = [
        (outside.display().to_string(), "is outside the manifest's directory"),
        ("../outside.txt".to_string(), "is outside the manifest's directory"),
        ("files/link".to_string(), "leads outside the manifest's directory"),
    ];
    for (src, message) in cases {
        let manifest = format!("{FILES_ONLY}\n[[file]]\nsrc = \"{src}\"\nto = \"/etc/x\"\n");
        ctx.write("marqo-base.toml", &manifest);
        for command in [&["lock"][..], &["build", "--oci", "out"][..]] {
            let run = ctx.run(command);
            run.code(2);
            assert!(run.stderr.contains("marqo-base.toml:5:"), "names the line of `src`: {}", run.stderr);
            assert!(run.stderr.contains(message), "{command:?} {src}: {}", run.stderr);
            assert!(run.stderr.contains("allow_outside = true"), "{}", run.stderr);
        }
        assert!(!ctx.exists("marqo-base.lock") && !ctx.exists("out"));
        // Named on purpose, it is taken.
        ctx.write("marqo-base.toml", &format!("{manifest}allow_outside = true\n"));
        ctx.run(&["lock"]).success();
        ctx.run(&["build", "--oci", "out"]).success();
        let entries = layer_entries(&ctx.work().join("out"));
        assert!(entries.iter().any(|(p, _)| p == "etc/x"), "{entries:?}");
        std::fs::remove_dir_all(ctx.work().join("out")).unwrap();
        std::fs::remove_file(ctx.work().join("marqo-base.lock")).unwrap();
    }
}

#[test]
fn invalid_file_destinations_are_refused_when_the_manifest_is_read() {
    let ctx = TestContext::new();
    ctx.write("motd", "hello\n");
    let sha = "0".repeat(64);
    let cases = [
        ("src = \"motd\"\nto = \"/\"\n", "marqo-base.toml:6:", "cannot go to `/`"),
        (
            &*format!("url = \"http://127.0.0.1:9/x\"\nsha256 = \"{sha}\"\nto = \"/\"\n"),
            "marqo-base.toml:7:",
            "cannot go to `/`",
        ),
        ("src = \"motd\"\nto = \"/etc//motd\"\n", "marqo-base.toml:6:", "has an empty or `.` step"),
        ("src = \"motd\"\nto = \"/etc/./motd\"\n", "marqo-base.toml:6:", "has an empty or `.` step"),
    ];
    for (entry, at, message) in cases {
        ctx.write("marqo-base.toml", &format!("{FILES_ONLY}\n[[file]]\n{entry}"));
        for command in [&["lock"][..], &["build", "--oci", "out"][..]] {
            let run = ctx.run(command);
            run.code(2);
            assert!(run.stderr.contains(at) && run.stderr.contains(message), "{entry}: {}", run.stderr);
        }
    }
    // A directory may go to `/`.
    std::fs::create_dir_all(ctx.work().join("root/etc")).unwrap();
    ctx.write("root/etc/motd", "hello\n");
    ctx.write("marqo-base.toml", &format!("{FILES_ONLY}\n[[file]]\nsrc = \"root\"\nto = \"/\"\n"));
    ctx.run(&["lock"]).success();
    ctx.run(&["build", "--oci", "out"]).success();
}

/// A manifest of one `[[file]]`, locked: builds in a moment.
fn one_file_project() -> TestContext {
    let ctx = TestContext::new();
    ctx.write("motd", "hello\n");
    ctx.write("marqo-base.toml", &format!("{FILES_ONLY}\n[[file]]\nsrc = \"motd\"\nto = \"/etc/motd\"\n"));
    ctx.run(&["lock"]).success();
    ctx
}

#[test]
fn build_outputs_are_not_overwritten_and_tags_are_checked() {
    let ctx = one_file_project();
    ctx.write("image.tar", "keep me\n");
    let run = ctx.run(&["build", "--docker-archive", "image.tar"]);
    run.code(2);
    assert!(run.stderr.contains("image.tar exists") && run.stderr.contains("remove it"), "{}", run.stderr);
    assert_eq!(ctx.read("image.tar"), "keep me\n");
    ctx.run(&["build", "--docker-archive", "new.tar"]).success();

    for tag in ["-bad", ".bad", "a/b", "has space", "x:y", &"a".repeat(129)] {
        let run = ctx.run(&["build", "--oci", "out", &format!("--tag={tag}")]);
        run.code(2);
        assert!(run.stderr.contains("--tag"), "{tag}: {}", run.stderr);
        assert!(!ctx.exists("out"), "{tag}");
    }
    ctx.run(&["build", "--oci", "out", "--tag", &format!("_v1.2-rc{}", "x".repeat(100))]).success();
}

#[test]
fn compile_writes_through_a_symlinked_output_and_refuses_a_read_only_one() {
    let index = Index::new();
    Wheel::new("dep", "1.0").file("dep/__init__.py", "").publish(&index);
    let server = index.serve();
    let ctx = TestContext::new();
    ctx.write("requirements.in", &format!("--index-url {}\ndep\n", server.url()));
    std::fs::create_dir_all(ctx.work().join("pins")).unwrap();
    ctx.write("pins/real.txt", "old\n");
    std::os::unix::fs::symlink("pins/real.txt", ctx.work().join("requirements.txt")).unwrap();
    let compile = [
        "compile",
        "requirements.in",
        "--python",
        "3.9",
        "--platform",
        "linux/amd64",
        "-o",
        "requirements.txt",
    ];
    ctx.run(&compile).success();
    let link = ctx.work().join("requirements.txt");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays a link");
    assert!(ctx.read("pins/real.txt").contains("dep==1.0"), "{}", ctx.read("pins/real.txt"));

    use std::os::unix::fs::PermissionsExt;
    ctx.write("locked.txt", "keep me\n");
    std::fs::set_permissions(ctx.work().join("locked.txt"), std::fs::Permissions::from_mode(0o444)).unwrap();
    let mut args = compile.to_vec();
    *args.last_mut().unwrap() = "locked.txt";
    let run = ctx.run(&args);
    run.code(2);
    assert!(run.stderr.contains("`locked.txt` is read-only"), "{}", run.stderr);
    assert_eq!(ctx.read("locked.txt"), "keep me\n");
}

/// The hidden staging trees beside `out` in `dir`.
fn staging_trees(dir: &Path, out: &str) -> Vec<String> {
    let prefix = format!(".{out}.");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    names.sort();
    names
}

/// A project whose one layer takes a while to compress (incompressible bytes), so a build
/// can be caught mid-way.
fn slow_project() -> TestContext {
    let ctx = TestContext::new();
    std::fs::write(ctx.work().join("big.bin"), test_support::pseudo_random(7, 48 << 20)).unwrap();
    ctx.write("marqo-base.toml", &format!("{FILES_ONLY}\n[[file]]\nsrc = \"big.bin\"\nto = \"/big.bin\"\n"));
    ctx.run(&["lock"]).success();
    ctx
}

/// Starts `build --oci out` and waits until its staging tree exists.
fn build_until_staged(ctx: &TestContext) -> std::process::Child {
    let mut child = ctx
        .command(&["build", "--oci", "out"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the build");
    let started = std::time::Instant::now();
    while staging_trees(&ctx.work(), "out").iter().all(|n| !n.starts_with(".out.tmp-")) {
        assert!(child.try_wait().unwrap().is_none(), "the build ended before it staged anything");
        assert!(started.elapsed().as_secs() < 60, "no staging tree after 60 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    child
}

fn signal(child: &std::process::Child, signal: &str) {
    let status = std::process::Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

#[test]
fn an_interrupted_build_leaves_no_temporary_tree() {
    let ctx = slow_project();
    for (sig, code) in [("-TERM", 143), ("-INT", 130)] {
        let mut child = build_until_staged(&ctx);
        signal(&child, sig);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "{sig}: the build was stopped mid-way and said so");
        assert_eq!(staging_trees(&ctx.work(), "out"), Vec::<String>::new(), "{sig}");
        assert!(!ctx.exists("out"), "{sig}");
    }
}

#[test]
fn a_killed_build_s_tree_is_removed_by_the_next_but_a_live_one_is_not() {
    let ctx = slow_project();
    let mut child = build_until_staged(&ctx);
    signal(&child, "-KILL");
    child.wait().unwrap();
    let left = staging_trees(&ctx.work(), "out");
    assert_eq!(left.len(), 1, "SIGKILL leaves its tree: {left:?}");

    // A tree another live process holds, with the lock a build takes (flock(1) of util-linux).
    let live = ctx.work().join(".out.tmp-live01");
    std::fs::create_dir(&live).unwrap();
    let mut holder = std::process::Command::new("flock")
        .args(["--exclusive", "--nonblock", "--no-fork"])
        .arg(&live)
        .args(["sleep", "600"])
        .spawn()
        .expect("flock(1) from util-linux");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(holder.try_wait().unwrap().is_none(), "flock holds the tree");

    let run = ctx.run(&["build", "--oci", "out"]);
    run.success();
    assert!(
        run.stderr.contains(&format!(
            "Removed 1 temporary tree left beside out by an interrupted run: {}",
            left[0]
        )),
        "{}",
        run.stderr
    );
    assert_eq!(staging_trees(&ctx.work(), "out"), [".out.tmp-live01"], "the live tree is kept");
    holder.kill().unwrap();
    holder.wait().unwrap();
    std::fs::remove_dir_all(ctx.work().join("out")).unwrap();
    let run = ctx.run(&["build", "--oci", "out"]);
    run.success();
    assert!(run.stderr.contains("Removed 1 temporary tree"), "{}", run.stderr);
    assert_eq!(staging_trees(&ctx.work(), "out"), Vec::<String>::new());
}
