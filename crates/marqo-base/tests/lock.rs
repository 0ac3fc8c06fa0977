//! `marqo-base lock`: a manifest resolved into marqo-base.lock against a package index and a
//! signed apt repository, both served on 127.0.0.1 by the test.

#[path = "../../debian/tests/common/mod.rs"]
mod apt;
mod common;

use apt::{Deb, Repo, Server as AptServer};
use common::TestContext;
use test_support::{Index, Wheel};

struct World {
    _index: test_support::Server,
    _apt: AptServer,
    _repo: Repo,
    ctx: TestContext,
}

fn world() -> World {
    apt::require_tools();
    let index = Index::new();
    Wheel::new("fast", "1.0").tag("cp39-cp39-manylinux2014_x86_64").requires("six").publish(&index);
    Wheel::new("fast", "1.0").tag("cp39-cp39-manylinux2014_aarch64").publish(&index);
    Wheel::new("six", "1.16.0").publish(&index);
    Wheel::new("six", "1.17.0").publish(&index);
    let index_server = index.serve();

    let repo = Repo::new();
    let (work, pool) = (repo.dir.path().join("build"), repo.pool());
    for arch in ["amd64", "arm64"] {
        Deb::new("python3.9", "3.9.2-1").arch(arch).depends("libc-test").build(&work, &pool);
        Deb::new("libc-test", "1.0").arch(arch).build(&work, &pool);
    }
    Deb::new("ca-certificates", "20210119").build(&work, &pool);
    repo.publish("stable");
    let apt_server = AptServer::start(repo.root());

    let ctx = TestContext::new();
    ctx.write("requirements.in", &format!("--index-url {}\nfast\nsix<1.17\n", index_server.url()));
    ctx.write(
        "marqo-base.toml",
        &format!(
            "[image]\nrepository = \"example/quickstart\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n\
             [debian]\nsuite = \"stable\"\nmirror = \"{}\"\nkeyring = \"{}\"\nessential = false\n\
             packages = [\"python3.9\", \"ca-certificates\"]\n\n\
             [python]\nversion = \"3.9\"\nglibc = \"2.28\"\nrequirements = [\"requirements.in\"]\n",
            apt_server.url(),
            repo.keyring.display()
        ),
    );
    World { _index: index_server, _apt: apt_server, _repo: repo, ctx }
}

#[test]
fn lock_check_and_relock() {
    let w = world();
    let ctx = &w.ctx;
    ctx.run(&["lock"]).success();
    let lock = ctx.read("marqo-base.lock");
    // Per-platform Python files, shared ones merged; Debian packages per arch, `all` shared.
    assert!(
        lock.contains(
            "platforms = [\"linux/amd64\"]\ndependencies = [\"six\"]\nfile = { name = \"fast-1.0-cp39-cp39-manylinux2014_x86_64.whl\""
        ),
        "{lock}"
    );
    assert!(
        lock.contains(
            "platforms = [\"linux/arm64\"]\ndependencies = []\nfile = { name = \"fast-1.0-cp39-cp39-manylinux2014_aarch64.whl\""
        ),
        "{lock}"
    );
    assert!(
        lock.contains("name = \"six\"\nversion = \"1.16.0\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]"),
        "{lock}"
    );
    assert!(
        lock.contains(
            "platforms = [\"linux/arm64\"]\ndependencies = [\"libc-test\"]\nsuite = \"stable\"\npath = \"pool/main/python3.9_3.9.2-1_arm64.deb\""
        ),
        "{lock}"
    );
    assert!(lock.contains("arch = \"all\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]"), "{lock}");
    assert!(!lock.contains("127.0.0.1"), "the lock names files, not URLs: {lock}");

    // Fresh: --check passes without any service.
    let run = ctx.run(&["lock", "--check"]);
    run.success();
    assert!(run.stderr.contains("up to date"), "{}", run.stderr);

    // Locking again changes nothing.
    ctx.run(&["lock"]).success();
    assert_eq!(lock, ctx.read("marqo-base.lock"));

    // An edited input makes it stale, naming the file; the lock itself is untouched.
    let req = ctx.read("requirements.in");
    ctx.write("requirements.in", &req.replace("six<1.17", "six"));
    let run = ctx.run(&["lock", "--check"]);
    run.code(1);
    assert!(run.stderr.contains("`requirements.in` changed"), "{}", run.stderr);
    assert_eq!(lock, ctx.read("marqo-base.lock"));

    // Re-locking keeps six at 1.16.0 (still allowed); -P six moves it.
    ctx.run(&["lock"]).success();
    assert!(ctx.read("marqo-base.lock").contains("name = \"six\"\nversion = \"1.16.0\""));
    ctx.run(&["lock", "-P", "six"]).success();
    assert!(ctx.read("marqo-base.lock").contains("name = \"six\"\nversion = \"1.17.0\""));
}

#[test]
fn manifest_errors_name_the_line() {
    let w = world();
    let ctx = &w.ctx;
    let manifest = ctx.read("marqo-base.toml");
    ctx.write("marqo-base.toml", &manifest.replace("packages = [\"python3.9\"", "packges = [\"python3.9\""));
    let run = ctx.run(&["lock"]);
    run.code(2);
    assert!(
        run.stderr.contains("marqo-base.toml:") && run.stderr.contains("did you mean `packages`"),
        "{}",
        run.stderr
    );
    assert!(!ctx.exists("marqo-base.lock"));
}

/// `tree` and `why` from the lock alone: `six` is on amd64 only because the amd64 wheel of
/// `fast` requires it (its aarch64 wheel does not), `why six` says so naming both wheels;
/// a requirement whose marker leaves it out names the line and the marker; `tree --invert`
/// walks up to the requirement; names are matched as pip matches them.
#[test]
fn tree_and_why_from_the_lock() {
    let w = world();
    let ctx = &w.ctx;
    let req = ctx.read("requirements.in");
    let index_line = req.lines().next().unwrap().to_string();
    ctx.write(
        "requirements.in",
        &format!("{index_line}\nfast\nsix; platform_machine == \"aarch64\" and python_version < \"3\"\n"),
    );
    ctx.run(&["lock"]).success();
    // No service is needed from here on.
    drop(w._index);

    let why = ctx.run(&["why", "SIX"]);
    why.success();
    assert!(
        why.stdout.contains("linux/amd64: 1 path\n  requirements.in:2: fast 1.0 -> six 1.17.0\n"),
        "{}",
        why.stdout
    );
    assert!(why.stdout.contains("linux/arm64: absent\n"), "{}", why.stdout);
    assert!(
        why.stdout.contains(
            "fast 1.0 needs it on linux/amd64 (fast-1.0-cp39-cp39-manylinux2014_x86_64.whl), but its file here, \
             fast-1.0-cp39-cp39-manylinux2014_aarch64.whl, does not require it"
        ),
        "{}",
        why.stdout
    );
    assert!(why.stdout.contains("requirements.in:3 requires it only where `"), "{}", why.stdout);

    let why = ctx.run(&["why", "libc-test", "--platform", "linux/arm64"]);
    why.success();
    assert_eq!(
        why.stdout, "linux/arm64: 1 path\n  [debian] packages: python3.9 3.9.2-1 -> libc-test 1.0\n",
        "{}",
        why.stdout
    );

    let tree = ctx.run(&["tree", "--platform", "linux/amd64"]);
    tree.success();
    assert_eq!(
        tree.stdout,
        "linux/amd64\npython\n└── fast 1.0 (requirements.in:2)\n    └── six 1.17.0\ndebian\n\
         ├── python3.9 3.9.2-1 ([debian] packages)\n│   └── libc-test 1.0\n└── ca-certificates 20210119 ([debian] packages)\n"
    );
    let inverted = ctx.run(&["tree", "--invert", "six"]);
    inverted.success();
    assert!(
        inverted.stdout.starts_with("linux/amd64\n└── six 1.17.0\n    └── fast 1.0 (requirements.in:2)\n\nlinux/arm64\nsix is not locked for linux/arm64\n"),
        "{}",
        inverted.stdout
    );
    let shallow = ctx.run(&["tree", "--depth", "1", "--platform", "linux/arm64"]);
    shallow.success();
    assert!(!shallow.stdout.contains("libc-test"), "{}", shallow.stdout);

    let unknown = ctx.run(&["why", "nosuch"]);
    unknown.code(2);
    assert!(unknown.stderr.contains("`nosuch` is not locked for any platform"), "{}", unknown.stderr);
    let bad = ctx.run(&["tree", "--platform", "linux/s390x"]);
    bad.code(2);
}

/// `diff` after `-P` moves one package: that package, on both platforms, and the one wheel
/// layer per platform holding it; nothing else.
#[test]
fn diff_after_one_package_moves() {
    let w = world();
    let ctx = &w.ctx;
    let req = ctx.read("requirements.in");
    ctx.run(&["lock"]).success();
    // six unbounded: a relock keeps 1.16.0 (the lock's version still fits).
    ctx.write("requirements.in", &req.replace("six<1.17", "six"));
    ctx.run(&["lock"]).success();
    std::fs::copy(ctx.work().join("marqo-base.lock"), ctx.work().join("old.lock")).unwrap();
    let same = ctx.run(&["diff", "old.lock"]);
    same.success();
    assert_eq!(same.stdout, "linux/amd64: no change\nlinux/arm64: no change\n");
    // -P six moves it, and only it.
    ctx.run(&["lock", "-P", "six"]).success();
    let run = ctx.run(&["diff", "old.lock", "marqo-base.lock"]);
    run.success();
    for platform in ["linux/amd64", "linux/arm64"] {
        let section: String = run
            .stdout
            .split(&format!("{platform}:\n"))
            .nth(1)
            .unwrap_or("")
            .lines()
            .take(3)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            section.starts_with("  ~ python six 1.16.0 -> 1.17.0\n  layers: 1 of "),
            "{platform}: {}",
            run.stdout
        );
    }
    let missing = ctx.run(&["diff", "nosuch.lock"]);
    missing.code(2);
    assert!(missing.stderr.contains("nosuch.lock does not exist"), "{}", missing.stderr);
}

/// `--format json` of tree, why, diff, lock --check and compile --check: one document on
/// stdout each, valid against its schema in docs/json (checked by `jsonschema`), with the
/// values the text output has; commands without a JSON form refuse it.
#[test]
fn json_outputs_follow_their_schemas() {
    let w = world();
    let ctx = &w.ctx;
    ctx.run(&["lock"]).success();
    std::fs::copy(ctx.work().join("marqo-base.lock"), ctx.work().join("old.lock")).unwrap();

    let tree = ctx.run(&["tree", "--format", "json"]);
    tree.success();
    common::validate_json("tree", &tree.stdout);
    let pretty = |text: &str| {
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(text).unwrap()).unwrap()
    };
    // Field names and shapes are the interface: a change shows in the snapshot.
    insta::assert_snapshot!("tree_json", pretty(&tree.stdout));
    let doc: serde_json::Value = serde_json::from_str(&tree.stdout).unwrap();
    assert_eq!(doc["platforms"][0]["platform"], "linux/amd64");
    assert!(doc["platforms"][0]["roots"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "fast" && r["origin"] == "requirements.in:2"));

    for name in ["six", "libc-test", "ca-certificates"] {
        let why = ctx.run(&["why", name, "--format", "json"]);
        why.success();
        common::validate_json("why", &why.stdout);
    }
    let why = ctx.run(&["--format=json", "why", "fast", "--platform", "linux/arm64"]);
    common::validate_json("why", &why.stdout);
    insta::assert_snapshot!("why_json", pretty(&why.stdout));
    let doc: serde_json::Value = serde_json::from_str(&why.stdout).unwrap();
    assert_eq!(doc["platforms"][0]["path_count"], 1, "{}", why.stdout);

    let lock_check = ctx.run(&["lock", "--check", "--format", "json"]);
    lock_check.success();
    common::validate_json("lock-check", &lock_check.stdout);
    assert!(lock_check.stdout.contains("\"state\":\"fresh\""), "{}", lock_check.stdout);

    let req = ctx.read("requirements.in");
    ctx.write("requirements.in", &req.replace("six<1.17", "six"));
    let stale = ctx.run(&["lock", "--check", "--format", "json"]);
    stale.code(1);
    common::validate_json("lock-check", &stale.stdout);
    assert!(
        stale.stdout.contains("\"state\":\"stale\"") && stale.stdout.contains("requirements.in"),
        "{}",
        stale.stdout
    );
    ctx.run(&["lock", "-P", "six"]).success();

    let diff = ctx.run(&["diff", "old.lock", "--format", "json"]);
    diff.success();
    common::validate_json("diff", &diff.stdout);
    insta::assert_snapshot!("diff_json", pretty(&diff.stdout));
    assert!(diff.stdout.contains("{\"change\":\"changed\",\"ecosystem\":\"python\",\"from\":\"1.16.0\",\"name\":\"six\",\"to\":\"1.17.0\"}"), "{}", diff.stdout);

    // compile --check against the same index: missing, then fresh, then stale.
    let compile = |extra: &[&str]| {
        let mut args = vec![
            "compile",
            "requirements.in",
            "--python",
            "3.9",
            "--platform",
            "linux/amd64",
            "-o",
            "pins.txt",
        ];
        args.extend_from_slice(extra);
        ctx.run(&args)
    };
    let missing = compile(&["--check", "--format", "json"]);
    missing.code(1);
    common::validate_json("compile-check", &missing.stdout);
    assert!(missing.stdout.contains("\"state\":\"missing\""), "{}", missing.stdout);
    compile(&[]).success();
    let fresh = compile(&["--check", "--format", "json"]);
    fresh.success();
    common::validate_json("compile-check", &fresh.stdout);
    ctx.write("requirements.in", &req);
    let stale = compile(&["--check", "--format", "json"]);
    stale.code(1);
    common::validate_json("compile-check", &stale.stdout);
    assert!(
        stale.stdout.contains("\"- six==1.17.0\"") && stale.stdout.contains("\"+ six==1.16.0\""),
        "{}",
        stale.stdout
    );

    let refused = ctx.run(&["cache", "size", "--format", "json"]);
    refused.code(2);
    assert!(
        refused.stdout.is_empty() && refused.stderr.contains("`--format json` is available for"),
        "{}",
        refused.stderr
    );
}

/// A gzipped `changelog.Debian` of libc-test: two security entries above the locked 1.0
/// and one CVE below it, which is not the update's.
fn libc_changelog() -> Vec<u8> {
    let text = "libc-test (1.0+deb1u2) stable-security; urgency=high\n\n  \
                * CVE-2026-2222: fix an overflow.\n\n -- Sec <s@example.invalid>  Mon, 02 Nov 2026 10:00:00 +0000\n\n\
                libc-test (1.0+deb1u1) stable-security; urgency=high\n\n  \
                * debian/patches/CVE-2026-1111.patch: new.\n  * Also CVE-2026-2222, partly.\n\n \
                -- Sec <s@example.invalid>  Mon, 01 Nov 2026 10:00:00 +0000\n\n\
                libc-test (1.0) stable; urgency=medium\n\n  * CVE-2020-0001: old news.\n\n \
                -- M <m@example.invalid>  Mon, 01 Jan 2024 10:00:00 +0000\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

/// The release's three suites and a backports suite, as Debian has them: `lock` takes the
/// highest version across stable, -updates and -security but nothing from the NotAutomatic
/// backports unless asked (`name/SUITE`); `outdated` names the security update with the
/// CVE IDs of its changelog and exits 1; `lock --security` moves that package alone, after
/// which `outdated --security` exits 0; the built image's apt sources are read by apt itself;
/// an expired `Valid-Until` is refused at `lock`, never at `build`.
#[test]
fn security_updates_are_locked_listed_and_applied() {
    apt::require_tools();
    let repo = Repo::new();
    let work = repo.dir.path().join("build");
    let pool = |name: &str| {
        let dir = repo.root().join("pool").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    };
    for arch in ["amd64", "arm64"] {
        Deb::new("libc-test", "1.0").arch(arch).build(&work, &pool("main"));
        Deb::new("tool", "1.0").arch(arch).build(&work, &pool("main"));
    }
    Deb::new("app", "1.0").depends("libc-test").build(&work, &pool("main"));
    Deb::new("app", "2.0").depends("libc-test").build(&work, &pool("backports"));
    repo.publish("stable");
    repo.publish_from(
        "stable-backports",
        "pool/backports",
        &[("NotAutomatic", "yes"), ("ButAutomaticUpgrades", "yes")],
    );
    let apt_server = AptServer::start(repo.root());

    let ctx = TestContext::new();
    let manifest = |packages: &str| {
        format!(
            "[image]\nrepository = \"example/patched\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n\
             [debian]\nsuite = \"stable\"\nmirror = \"{url}\"\nkeyring = \"{key}\"\nessential = false\n\
             packages = [{packages}]\n\n\
             [[debian.source]]\nurl = \"{url}\"\nsuites = [\"stable-backports\"]\n",
            url = apt_server.url(),
            key = repo.keyring.display()
        )
    };
    ctx.write("marqo-base.toml", &manifest("\"app\", \"tool\""));
    let run = ctx.run(&["lock"]);
    run.success();
    let lock = ctx.read("marqo-base.lock");
    assert!(lock.contains("name = \"app\"\nversion = \"1.0\""), "NotAutomatic 2.0 was taken:\n{lock}");
    assert!(lock.contains("suite = \"stable\"\npath = \"pool/main/app_1.0_all.deb\""), "{lock}");

    // Updates arrive: a security build of libc-test, a plain update of tool.
    for arch in ["amd64", "arm64"] {
        Deb::new("libc-test", "1.0+deb1u2")
            .arch(arch)
            .file_bytes("/usr/share/doc/libc-test/changelog.Debian.gz", &libc_changelog(), 0o644)
            .build(&work, &pool("security"));
        Deb::new("tool", "1.1").arch(arch).build(&work, &pool("updates"));
    }
    repo.publish_from("stable-security", "pool/security", &[]);
    repo.publish_from("stable-updates", "pool/updates", &[]);

    // One of the newer .debs is out of reach: the other binary of its source gives the
    // changelog, and the updates are listed all the same.
    let arm64_deb = pool("security").join("libc-test_1.0+deb1u2_arm64.deb");
    let aside = repo.dir.path().join("aside.deb");
    std::fs::rename(&arm64_deb, &aside).unwrap();
    let run = ctx.run(&["outdated", "--no-python"]);
    std::fs::rename(&aside, &arm64_deb).unwrap();
    run.code(1);
    let want = "debian libc-test 1.0 -> 1.0+deb1u2 (stable-security) linux/amd64 security: CVE-2026-1111 CVE-2026-2222\n";
    assert!(run.stdout.contains(want), "{}", run.stdout);
    assert!(run.stdout.contains("debian tool 1.0 -> 1.1 (stable-updates) linux/amd64\n"), "{}", run.stdout);
    assert!(!run.stdout.contains("app"), "a NotAutomatic version is no update:\n{}", run.stdout);
    assert!(run.stderr.contains("lock --security"), "{}", run.stderr);
    let run = ctx.run(&["--format", "json", "outdated", "--security"]);
    run.code(1);
    common::validate_json("outdated", &run.stdout);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let updates = doc["debian"].as_array().unwrap();
    assert_eq!(updates.len(), 2, "libc-test on each platform, tool left out: {doc}");
    assert_eq!(updates[0]["cves"], serde_json::json!(["CVE-2026-1111", "CVE-2026-2222"]), "{doc}");
    assert_eq!(updates[0]["changelog_complete"], true, "{doc}");

    // lock --security moves libc-test and nothing else; then nothing security is missing.
    ctx.run(&["lock", "--security"]).success();
    let relocked = ctx.read("marqo-base.lock");
    assert!(
        relocked.contains(
            "name = \"libc-test\"\nversion = \"1.0+deb1u2\"\narch = \"amd64\"\nplatforms = [\"linux/amd64\"]\n\
             dependencies = []\nsuite = \"stable-security\"\npath = \"pool/security/libc-test_1.0+deb1u2_amd64.deb\""
        ),
        "{relocked}"
    );
    assert!(relocked.contains("name = \"tool\"\nversion = \"1.0\""), "tool moved too:\n{relocked}");
    assert_eq!(relocked.matches("version = \"1.0+deb1u2\"").count(), 2, "{relocked}");
    ctx.run(&["outdated", "--security", "--no-cves"]).success();
    ctx.write("old.lock", &lock);
    let diff = ctx.run(&["diff", "old.lock"]);
    diff.success();
    assert!(
        diff.stdout.contains("~ debian libc-test 1.0 (stable) -> 1.0+deb1u2 (stable-security)\n"),
        "{}",
        diff.stdout
    );

    // Held at a version, a package stays; outdated still names what it misses.
    ctx.write("marqo-base.toml", &manifest("\"app\", \"tool\", \"libc-test=1.0\""));
    ctx.run(&["lock", "--security"]).success();
    assert!(ctx.read("marqo-base.lock").contains("name = \"libc-test\"\nversion = \"1.0\"\n"));
    let run = ctx.run(&["outdated", "--security", "--no-cves"]);
    run.code(1);
    assert!(
        run.stdout
            .contains("debian libc-test 1.0 -> 1.0+deb1u2 (stable-security) linux/amd64 security held\n"),
        "{}",
        run.stdout
    );

    // Asked of backports by name, it comes from there; until relocked, the lock is stale.
    ctx.write("marqo-base.toml", &manifest("\"app/stable-backports\", \"tool\""));
    ctx.run(&["lock", "--check"]).code(1);
    ctx.run(&["lock"]).success();
    let lock = ctx.read("marqo-base.lock");
    assert!(lock.contains("name = \"app\"\nversion = \"2.0\""), "{lock}");
    assert!(lock.contains("suite = \"stable-backports\""), "{lock}");
    // A lock edited to take a package from a suite the manifest does not read is stale.
    ctx.write("marqo-base.lock", &lock.replace("suite = \"stable-backports\"", "suite = \"elsewhere\""));
    let check = ctx.run(&["lock", "--check"]);
    check.code(1);
    assert!(
        check.stderr.contains("locked from suite `elsewhere`, which [debian] no longer reads"),
        "{}",
        check.stderr
    );
    ctx.write("marqo-base.lock", &lock);

    // The image's apt sources, read by apt: every suite, signed by the keyring it ships.
    ctx.run(&["build", "--oci", "out", "--platform", "linux/amd64"]).success();
    let rootfs = ctx.work().join("rootfs");
    let out = std::process::Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}:latest", ctx.work().join("out").display()))
        .arg(format!("oci:{}:amd64", ctx.work().join("one").display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = std::process::Command::new("umoci")
        .args(["raw", "unpack", "--rootless", "--image"])
        .arg(format!("{}:amd64", ctx.work().join("one").display()))
        .arg(&rootfs)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sources = std::fs::read_to_string(rootfs.join("etc/apt/sources.list.d/debian.sources")).unwrap();
    let stanza = format!(
        "Types: deb\nURIs: {}\nSuites: stable stable-updates stable-security stable-backports\nComponents: main\n\
         Signed-By: /etc/apt/keyrings/repo-key.gpg\n",
        apt_server.url()
    );
    assert!(sources.contains(&stanza), "{sources}");
    assert_eq!(
        std::fs::read(rootfs.join("etc/apt/keyrings/repo-key.gpg")).unwrap(),
        std::fs::read(&repo.keyring).unwrap()
    );
    // A private apt (nothing of the host's configuration) that reads only those sources.
    let apt_root = ctx.work().join("apt");
    for dir in [
        "etc/apt/sources.list.d",
        "etc/apt/apt.conf.d",
        "etc/apt/trusted.gpg.d",
        "lists/partial",
        "cache/archives/partial",
        "log",
    ] {
        std::fs::create_dir_all(apt_root.join(dir)).unwrap();
    }
    std::fs::write(apt_root.join("status"), "").unwrap();
    let host_sources =
        sources.replace("/etc/apt/keyrings/", &format!("{}/etc/apt/keyrings/", rootfs.display()));
    std::fs::write(apt_root.join("etc/apt/sources.list.d/debian.sources"), host_sources).unwrap();
    let r = apt_root.display();
    let apt_config = apt_root.join("apt.conf");
    std::fs::write(
        &apt_config,
        format!(
            "Dir \"{r}/\";\nDir::State \"{r}/\";\nDir::State::lists \"{r}/lists/\";\nDir::State::status \"{r}/status\";\n\
             Dir::Cache \"{r}/cache/\";\nDir::Etc \"{r}/etc/apt/\";\nDir::Etc::Parts \"{r}/etc/apt/apt.conf.d/\";\n\
             Dir::Etc::TrustedParts \"{r}/etc/apt/trusted.gpg.d/\";\nDir::Log \"{r}/log/\";\n\
             APT::Architecture \"amd64\";\nAcquire::Languages \"none\";\nAPT::Sandbox::User \"root\";\n"
        ),
    )
    .unwrap();
    let apt = |args: &[&str]| {
        std::process::Command::new("apt-get").env("APT_CONFIG", &apt_config).args(args).output().unwrap()
    };
    let update = apt(&["update"]);
    let text =
        format!("{}{}", String::from_utf8_lossy(&update.stdout), String::from_utf8_lossy(&update.stderr));
    assert!(
        update.status.success() && !text.contains("W:") && !text.contains("E:"),
        "apt-get update: {text}"
    );
    for suite in ["stable ", "stable-updates ", "stable-security ", "stable-backports "] {
        assert!(text.contains(suite), "{suite}not read by apt: {text}");
    }

    // An expired index is refused at lock, with a hint; the lock still builds.
    repo.publish_from(
        "stable-security",
        "pool/security",
        &[("Valid-Until", "Mon, 01 Jan 2024 00:00:00 UTC")],
    );
    let run = ctx.run(&["lock", "-P", "tool"]);
    run.code(2);
    assert!(run.stderr.contains("expired") && run.stderr.contains("hint:"), "{}", run.stderr);
    ctx.run(&["build", "--oci", "out2", "--platform", "linux/amd64"]).success();
}

/// A release without `-updates` and `-security` suites on its mirror: `lock` names the suite
/// it cannot find and how to leave it out; with `security = false` and `updates = false` it
/// locks, and the image's apt sources then list the suite alone.
#[test]
fn a_missing_security_suite_is_named_with_a_hint() {
    apt::require_tools();
    let repo = Repo::new();
    let work = repo.dir.path().join("build");
    Deb::new("tool", "1.0").build(&work, &repo.pool());
    repo.publish_from("solo", "pool/main", &[]);
    let apt_server = AptServer::start(repo.root());
    let ctx = TestContext::new();
    let manifest = |extra: &str| {
        format!(
            "[image]\nplatforms = [\"linux/amd64\"]\n\n[debian]\nsuite = \"solo\"\nmirror = \"{}\"\nkeyring = \"{}\"\n\
             essential = false\npackages = [\"tool\"]\n{extra}",
            apt_server.url(),
            repo.keyring.display()
        )
    };
    ctx.write("marqo-base.toml", &manifest(""));
    let run = ctx.run(&["lock"]);
    run.code(2);
    assert!(run.stderr.contains("solo-updates") || run.stderr.contains("solo-security"), "{}", run.stderr);
    assert!(run.stderr.contains("= false"), "{}", run.stderr);
    ctx.write("marqo-base.toml", &manifest("security = false\nupdates = false\n"));
    ctx.run(&["lock"]).success();
    assert!(ctx.read("marqo-base.lock").contains("suite = \"solo\"\n"));
}
