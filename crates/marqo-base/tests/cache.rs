//! `marqo-base cache`: dir, size by kind, prune by last use, clean; and that removing waits
//! for the processes using the cache, so a build running meanwhile stays correct.

mod common;

use std::time::{Duration, Instant};

use common::{pins, TestContext};
use test_support::{Index, Sdist, Wheel};

fn world() -> Index {
    let index = Index::new();
    let sleeper = "import os, time\ntime.sleep(float(os.environ.get('TEST_BUILD_SLEEP', '0')))\n";
    Sdist::new("slow", "1.0")
        .metadata_version("2.1")
        .requires("six")
        .file("sleeper.py", sleeper)
        .hook_imports("sleeper")
        .publish(&index);
    Wheel::new("six", "1.16.0").publish(&index);
    index
}

fn compile_args(url: &str) -> Vec<String> {
    ["compile", "requirements.in", "--python", "3.9", "--platform", "linux/amd64", "--index-url", url]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn kind_line<'a>(size: &'a str, kind: &str) -> &'a str {
    size.lines()
        .find(|l| l.split_whitespace().next() == Some(kind))
        .unwrap_or_else(|| panic!("{kind}: {size}"))
}

fn files_of(size: &str, kind: &str) -> u64 {
    kind_line(size, kind).split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn size_prune_and_clean_by_kind() {
    let index = world();
    let server = index.serve();
    let ctx = TestContext::new();
    ctx.write("requirements.in", "slow\n");
    let args = compile_args(&server.url());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ctx.run(&args).success();

    let dir = ctx.run(&["cache", "dir"]);
    dir.success();
    assert_eq!(dir.stdout.trim(), ctx.cache().display().to_string());

    let size = ctx.run(&["cache", "size"]);
    size.success();
    for kind in ["downloads", "index-pages", "metadata", "build-envs"] {
        assert!(files_of(&size.stdout, kind) > 0, "{kind}: {}", size.stdout);
    }
    assert_eq!(files_of(&size.stdout, "layers"), 0, "{}", size.stdout);
    // Downloads by what their bytes are: compile downloaded the sdist (gzip); of the wheel it
    // read only the metadata.
    let gzip = size.stdout.lines().find(|l| l.ends_with("gzip (sdists, layers, files)"));
    assert!(gzip.is_some_and(|l| l.trim_start().starts_with("1 files")), "{}", size.stdout);
    assert!(!size.stdout.contains("zip (wheels"), "{}", size.stdout);

    // Just used: nothing goes.
    let prune = ctx.run(&["cache", "prune", "--older-than", "1d"]);
    prune.success();
    assert!(prune.stderr.contains("Removed 0 entries"), "{}", prune.stderr);
    // Forty days unused (modification and access times moved back): everything but the
    // small records goes, and an offline compile finds nothing.
    let old = std::process::Command::new("find")
        .arg(ctx.cache())
        .args(["-exec", "touch", "-h", "-d", "40 days ago", "{}", "+"])
        .status()
        .unwrap();
    assert!(old.success());
    let prune = ctx.run(&["cache", "prune", "--older-than", "30d"]);
    prune.success();
    let after = ctx.run(&["cache", "size"]).stdout;
    for kind in ["downloads", "index-pages", "metadata", "build-envs"] {
        assert_eq!(files_of(&after, kind), 0, "{kind}: {after}");
    }
    let mut offline = args.clone();
    offline.push("--offline");
    offline.extend(["-o", "offline.txt"]);
    ctx.run(&offline).code(2);
    ctx.run(&args).success();
    assert_eq!(pins(&ctx.read("requirements.txt")), ["six==1.16.0", "slow==1.0"]);

    // Cleaning one kind leaves the others; cleaning all leaves nothing.
    ctx.run(&["cache", "clean", "index-pages"]).success();
    let after = ctx.run(&["cache", "size"]).stdout;
    assert_eq!(files_of(&after, "index-pages"), 0, "{after}");
    assert!(files_of(&after, "downloads") > 0, "{after}");
    let clean = ctx.run(&["cache", "clean"]);
    clean.success();
    assert!(clean.stderr.contains("Removed"), "{}", clean.stderr);
    let after = ctx.run(&["cache", "size"]).stdout;
    assert!(kind_line(&after, "total").contains(" 0 files"), "{after}");

    let bad = ctx.run(&["cache", "clean", "wheels"]);
    bad.code(2);
    assert!(
        bad.stderr.contains("`wheels` is not a kind") && bad.stderr.contains("downloads"),
        "{}",
        bad.stderr
    );
    let bad = ctx.run(&["cache", "prune", "--older-than", "soon"]);
    bad.code(2);
    assert!(bad.stderr.contains("30d"), "{}", bad.stderr);
}

/// `cache clean` while a compile runs (its sdist's backend takes two seconds) waits for it,
/// says so, and then empties the cache; the compile is untouched and correct.
#[test]
fn clean_waits_for_a_running_compile() {
    let index = world();
    let server = index.serve();
    let ctx = TestContext::new();
    ctx.write("requirements.in", "slow\n");
    let args = compile_args(&server.url());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let compile = ctx.command(&args).env("TEST_BUILD_SLEEP", "2").spawn().expect("start compile");
    // Once the compile holds the cache (it has made its lock file and started building).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ctx.cache().join("builds").exists() {
        assert!(Instant::now() < deadline, "the compile never started building");
        std::thread::sleep(Duration::from_millis(20));
    }
    let clean = ctx.run(&["cache", "clean"]);
    let compiled: common::Run = compile.wait_with_output().expect("wait for compile").into();
    compiled.success();
    clean.success();
    assert!(clean.stderr.contains("Waiting for the other marqo-base processes"), "{}", clean.stderr);
    assert_eq!(pins(&ctx.read("requirements.txt")), ["six==1.16.0", "slow==1.0"]);
    let after = ctx.run(&["cache", "size"]).stdout;
    assert!(kind_line(&after, "total").contains(" 0 files"), "the clean ran after the compile: {after}");
}
