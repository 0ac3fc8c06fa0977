//! The built image in a real container runtime (podman + runc, `test_support::Podman`), as
//! users run it and as downstream images build on it: `examples/quickstart` from the live
//! index and mirror (skipped with a note when `MARQO_BASE_SKIP_LIVE=1`), both platforms.

mod common;

use std::path::Path;
use std::process::Command;

use common::TestContext;
use test_support::{Podman, Wheel};

/// The quickstart built from its committed lock, then used: its Python and wheels on both
/// platforms, pip, a clean dpkg database, and a downstream image (`FROM` the layout) that
/// installs a local `.deb` with apt and a local wheel with pip.
#[test]
fn live_quickstart_in_a_container() {
    if std::env::var_os("MARQO_BASE_SKIP_LIVE").is_some_and(|v| v == "1") {
        eprintln!("MARQO_BASE_SKIP_LIVE=1: skipping a test that needs the live index and mirror");
        return;
    }
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart");
    let ctx = TestContext::new();
    for name in ["marqo-base.toml", "requirements.in", "marqo-base.lock"] {
        ctx.write(name, &std::fs::read_to_string(example.join(name)).unwrap());
    }
    // The host's pip configuration and apt sources are what a user's run would use.
    let out = Command::new(env!("CARGO_BIN_EXE_marqo-base"))
        .current_dir(ctx.work())
        .env("MARQO_BASE_CACHE_DIR", ctx.cache())
        .args(["build", "--oci", "out"])
        .output()
        .unwrap();
    assert!(out.status.success(), "build: {}", String::from_utf8_lossy(&out.stderr));
    let podman = Podman::new();
    let image = podman.layout(&ctx.work().join("out"), "latest");
    podman.enable_arm64();
    let imports =
        "import platform, requests, numpy, orjson, tqdm; print(platform.machine(), numpy.__version__)";
    for (platform, machine) in [("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")] {
        let printed =
            podman.run(&image, platform, None, &["/usr/bin/python3.9", "-c", imports]).success(platform);
        assert_eq!(printed.trim(), format!("{machine} 1.23.4"), "{platform}");
        let printed = podman.run(&image, platform, None, &["/usr/bin/python3.9", "-m", "pip", "--version"]);
        assert!(printed
            .success(platform)
            .starts_with("pip 24.3.1 from /usr/local/lib/python3.9/dist-packages"));
    }
    // dpkg finds every package's files, md5sums and database format where it looks.
    let audit = podman.run(&image, "linux/amd64", None, &["/usr/bin/dpkg", "--audit"]);
    assert_eq!(audit.success("dpkg --audit"), "");

    // A downstream image: a local .deb through apt, a local wheel through pip.
    let context = ctx.work().join("downstream");
    std::fs::create_dir_all(context.join("pkg/DEBIAN")).unwrap();
    std::fs::create_dir_all(context.join("pkg/usr/share/downstream")).unwrap();
    std::fs::write(
        context.join("pkg/DEBIAN/control"),
        "Package: downstream\nVersion: 1.0\nArchitecture: all\nMaintainer: Tests <tests@example.invalid>\n\
         Depends: libc6, python3.9\nDescription: a package a downstream image installs\n",
    )
    .unwrap();
    std::fs::write(context.join("pkg/usr/share/downstream/greeting"), "from the deb\n").unwrap();
    let status = Command::new("dpkg-deb")
        .args(["--root-owner-group", "-b", "pkg", "downstream.deb"])
        .current_dir(&context)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let wheel = Wheel::new("downstream-tool", "0.1")
        .file("downstream_tool/__init__.py", "GREETING = 'from the wheel'\n");
    std::fs::write(context.join(wheel.filename()), wheel.build()).unwrap();
    let containerfile = format!(
        "FROM {image}\n\
         COPY downstream.deb {whl} /tmp/\n\
         RUN apt-get install -y /tmp/downstream.deb && python3.9 -m pip install --no-index /tmp/{whl} && dpkg --audit\n\
         ENTRYPOINT [\"/usr/bin/python3.9\"]\n",
        whl = wheel.filename()
    );
    let built = podman.build(&context, &containerfile, "linux/amd64", "downstream");
    let log = format!("{}{}", built.stdout, built.stderr);
    assert!(built.ok, "podman build: {log}");
    assert!(log.contains("Successfully installed downstream-tool-0.1"), "{log}");
    let printed = podman.run(
        "localhost/downstream",
        "linux/amd64",
        None,
        &[
            "/usr/bin/python3.9",
            "-c",
            "import downstream_tool; print(downstream_tool.GREETING); print(open('/usr/share/downstream/greeting').read().strip())",
        ],
    );
    assert_eq!(printed.success("downstream").trim(), "from the wheel\nfrom the deb");
}
