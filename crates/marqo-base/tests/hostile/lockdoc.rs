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
