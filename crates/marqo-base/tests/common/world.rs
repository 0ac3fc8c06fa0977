//! The world of the build and release tests: a package index with `fast` (one wheel per
//! architecture, requiring `six`) and `six` 1.16.0 and 1.17.0 (constrained below 1.17), a
//! signed apt repository with `python3.9` (a shell script) and its libc, and a manifest for
//! both platforms. Used through `#[path]` by the test crates that have the `apt` module.

#![allow(dead_code)]

use crate::apt::{self, Deb, Repo, Server as AptServer};
use crate::common::{self, TestContext};
use test_support::{Index, Sdist, Wheel};

pub struct World {
    pub index: Option<test_support::Server>,
    pub apt: AptServer,
    pub repo: Repo,
    pub ctx: TestContext,
}

/// libc-test's machine-readable copyright file: its SBOM license is `LGPL-2.1-or-later AND
/// (MIT OR LicenseRef-public-domain)`.
pub const LIBC_COPYRIGHT: &str = "Format: https://example.invalid/copyright-format/1.0/\n\
Upstream-Name: libc-test\n\n\
Files: *\nCopyright: 2020 The Test Authors\nLicense: LGPL-2.1+\n\n\
Files: debian/*\nCopyright: 2021 A Maintainer\nLicense: Expat or public-domain\n\n\
License: Expat\n Permission is hereby granted, free of charge...\n";

pub fn world() -> World {
    world_with(None)
}

/// `slow` 2.0 as an sdist whose build needs `helper`.
pub fn slow_sdist() -> Sdist {
    Sdist::new("slow", "2.0").build_requires("helper").file("slow/__init__.py", "SLOW = True\n")
}

/// The world, optionally with an sdist-only `slow` in the requirements: its build needs
/// `helper`, which the manifest's build constraints keep below the broken 2.0.
pub fn world_with(sdist: Option<Sdist>) -> World {
    apt::require_tools();
    let index = Index::new();
    let sdist = sdist.is_some_and(|sdist| {
        sdist.publish(&index);
        Wheel::new("helper", "1.0").file("helper/__init__.py", "").publish(&index);
        Wheel::new("helper", "2.0")
            .file("helper/__init__.py", "raise RuntimeError('helper 2.0 is broken')\n")
            .publish(&index);
        true
    });
    for tag in ["cp39-cp39-manylinux2014_x86_64", "cp39-cp39-manylinux2014_aarch64"] {
        Wheel::new("fast", "1.0")
            .tag(tag)
            .requires("six")
            .file("fast/__init__.py", format!("TAG = {tag:?}\ndef main():\n    print('fast')\n"))
            .file("fast/common.py", "ANSWER = {'forty', 'two'}\n")
            .file("fast/py2_only.py", "print 'a Python 2 test file'\n")
            .entry_point("console_scripts", "fast", "fast:main")
            .field("Classifier", "License :: OSI Approved :: Apache Software License")
            .publish(&index);
    }
    Wheel::new("six", "1.16.0")
        .field("License", "MIT")
        .field("Classifier", "License :: OSI Approved :: MIT License")
        .file("six.py", "# six 1.16\n")
        .publish(&index);
    Wheel::new("six", "1.17.0").file("six.py", "# six 1.17\n").publish(&index);
    let index_server = index.serve();

    let repo = Repo::new();
    let (work, pool) = (repo.dir.path().join("build"), repo.pool());
    for arch in ["amd64", "arm64"] {
        Deb::new("python3.9", "3.9.2-1")
            .arch(arch)
            .depends("libc-test")
            .file("/usr/bin/python3.9", &format!("#!/bin/sh\necho python {arch}\n"), 0o755)
            .symlink("/usr/bin/python3", "python3.9")
            .build(&work, &pool);
        Deb::new("libc-test", "1.0")
            .arch(arch)
            .field("Source", "libc-test-src (0.9-1)")
            .file("/usr/share/doc/libc-test/copyright", LIBC_COPYRIGHT, 0o644)
            .file(&format!("/usr/lib/libc-test-{arch}.txt"), arch, 0o644)
            .file("/etc/secret", "secret", 0o640)
            .owned("/etc/secret", "root", 0, "shadow", 42)
            .file("/usr/bin/su-test", "#!/bin/sh\n", 0o4755)
            .build(&work, &pool);
    }
    Deb::new("ca-certificates", "20210119").build(&work, &pool);
    repo.publish("stable");
    let apt_server = AptServer::start(repo.root());

    let ctx = TestContext::new();
    // The world's python3.9 is a shell script: the host's compiles the wheels' modules.
    if common::host_python39().is_some() {
        ctx.provide_python39();
    }
    let extra = if sdist { "slow\n" } else { "" };
    ctx.write("requirements.in", &format!("--index-url {}\nfast\n{extra}", index_server.url()));
    ctx.write("constraints.txt", "six<1.17\n");
    ctx.write("build-constraints.txt", "helper<2\n");
    ctx.write(
        "marqo-base.toml",
        &format!(
            "[image]\nrepository = \"example/test\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\
             env = {{ LANG = \"C.UTF-8\" }}\nentrypoint = [\"/usr/bin/python3.9\"]\n\n\
             [debian]\nsuite = \"stable\"\nmirror = \"{}\"\nkeyring = \"{}\"\nessential = false\n\
             packages = [\"python3.9\", \"ca-certificates\"]\n\n\
             [python]\nversion = \"3.9\"\nglibc = \"2.28\"\nrequirements = [\"requirements.in\"]\n\
             constraints = [\"constraints.txt\"]\nbuild_constraints = [\"build-constraints.txt\"]\n",
            apt_server.url(),
            repo.keyring.display()
        ),
    );
    World { index: Some(index_server), apt: apt_server, repo, ctx }
}
