//! The built image in a real container runtime (podman + runc, `test_support::Podman`), as
//! users run it and as downstream images build on it: `examples/quickstart` from the live
//! index and mirror (skipped with a note when `MARQO_BASE_SKIP_LIVE=1`), both platforms.

mod common;

use std::path::Path;
use std::process::Command;

use test_support::{Podman, Wheel};

/// The quickstart built from its committed lock, then used: its Python and wheels on both
/// platforms, pip, a clean dpkg database, and a downstream image (`FROM` the layout) that
/// installs a local `.deb` with apt and a local wheel with pip.
#[test]
fn live_quickstart_in_a_container() {
    let Some(ctx) = common::live_quickstart() else { return };
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
            podman.run(&image, platform, None, &["/usr/bin/python3.11", "-c", imports]).success(platform);
        assert_eq!(printed.trim(), format!("{machine} 1.23.4"), "{platform}");
        let printed = podman.run(&image, platform, None, &["/usr/bin/python3.11", "-m", "pip", "--version"]);
        assert!(printed
            .success(platform)
            .starts_with("pip 24.3.1 from /usr/local/lib/python3.11/dist-packages"));
    }
    // dpkg finds every package's files, md5sums and database format where it looks.
    let audit = podman.run(&image, "linux/amd64", None, &["/usr/bin/dpkg", "--audit"]);
    assert_eq!(audit.success("dpkg --audit"), "");
    // What Debian's maintainer scripts leave works as in Debian's own images: PAM's common
    // stacks (su, runuser), base-files' /etc/profile for login shells.
    for platform in ["linux/amd64", "linux/arm64"] {
        let su = podman.run(&image, platform, None, &["/bin/su", "-s", "/bin/sh", "nobody", "-c", "id -un"]);
        assert_eq!(su.success(&format!("su on {platform}")).trim(), "nobody");
        let runuser =
            podman.run(&image, platform, None, &["/sbin/runuser", "-u", "nobody", "--", "id", "-un"]);
        assert_eq!(runuser.success(&format!("runuser on {platform}")).trim(), "nobody");
        let login = podman.run_with(
            &image,
            platform,
            &["--env", "PATH=/usr/bin:/bin"],
            &["/bin/bash", "-lc", "echo $PATH"],
        );
        assert_eq!(
            login.success(&format!("bash -l on {platform}")).trim(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "/etc/profile sets root's PATH"
        );
    }
    // apt installs more from the sources the image was locked from (the host's network),
    // including a package whose postinst runs `adduser --gecos` (chfn, through PAM), and
    // dpkg's database is clean after.
    let apt = podman.run_with(
        &image,
        "linux/amd64",
        &["--network=host"],
        &[
            "/bin/sh",
            "-c",
            "apt-get update -q && apt-get install -y -q curl docker-registry && dpkg --audit \
             && getent passwd docker-registry && curl --version",
        ],
    );
    let printed = apt.success("apt-get install curl docker-registry");
    assert!(printed.contains("curl 7."), "curl did not install: {printed}");
    assert!(printed.contains("docker-registry:x:"), "no docker-registry user: {printed}");

    downstream_image_builds(&podman, &image, &ctx.work().join("downstream"), "python3.11");
}

/// A downstream image `FROM` `image` (a layout reference): a local `.deb` through apt and a
/// local wheel through pip, in `context`; then the built image runs both with its `python`
/// (`python3.11`).
fn downstream_image_builds(podman: &Podman, image: &str, context: &Path, python: &str) {
    // A downstream image: a local .deb through apt, a local wheel through pip.
    std::fs::create_dir_all(context.join("pkg/DEBIAN")).unwrap();
    std::fs::create_dir_all(context.join("pkg/usr/share/downstream")).unwrap();
    std::fs::write(
        context.join("pkg/DEBIAN/control"),
        format!("Package: downstream\nVersion: 1.0\nArchitecture: all\nMaintainer: Tests <tests@example.invalid>\n\
         Depends: libc6, {python}\nDescription: a package a downstream image installs\n"),
    )
    .unwrap();
    std::fs::write(context.join("pkg/usr/share/downstream/greeting"), "from the deb\n").unwrap();
    let status = Command::new("dpkg-deb")
        .args(["--root-owner-group", "-b", "pkg", "downstream.deb"])
        .current_dir(context)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let wheel = Wheel::new("downstream-tool", "0.1")
        .file("downstream_tool/__init__.py", "GREETING = 'from the wheel'\n");
    std::fs::write(context.join(wheel.filename()), wheel.build()).unwrap();
    let containerfile = format!(
        "FROM {image}\n\
         COPY downstream.deb {whl} /tmp/\n\
         RUN apt-get install -y /tmp/downstream.deb && {python} -m pip install --no-index /tmp/{whl} && dpkg --audit\n\
         ENTRYPOINT [\"/usr/bin/{python}\"]\n",
        whl = wheel.filename()
    );
    let built = podman.build(context, &containerfile, "linux/amd64", "downstream");
    let log = format!("{}{}", built.stdout, built.stderr);
    assert!(built.ok, "podman build: {log}");
    assert!(log.contains("Successfully installed downstream-tool-0.1"), "{log}");
    let printed = podman.run(
        "localhost/downstream",
        "linux/amd64",
        None,
        &[
            &format!("/usr/bin/{python}"),
            "-c",
            "import downstream_tool; print(downstream_tool.GREETING); print(open('/usr/share/downstream/greeting').read().strip())",
        ],
    );
    assert_eq!(printed.success("downstream").trim(), "from the wheel\nfrom the deb");
}

/// The flagship (`examples/marqo-base`) as Marqo uses it, in podman: the ML stack imports on
/// both platforms, byte-compiled (a first import in a fresh container within 1.5x of the
/// second), Java trusts the CA bundle and a CA added through the manifest (`keytool`, a TLS
/// handshake with a local server), Redis runs as `redis` from Debian's config, `dpkg --audit`
/// is clean, pip installs, and a downstream image builds. Multi-GB: ignored, run by
/// `MARQO_BASE_FLAGSHIP=1 ./test.sh` (which includes ignored tests); uses the user's cache.
#[test]
#[ignore = "the multi-GB flagship, minutes: MARQO_BASE_FLAGSHIP=1 ./test.sh -p marqo-base --test container live_flagship"]
fn live_flagship_in_a_container() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/marqo-base");
    let tmp = std::env::var_os("TMPDIR").unwrap_or("/tmp".into());
    let work = tempfile::tempdir_in(tmp).unwrap();
    let work = work.path();
    for entry in std::fs::read_dir(&example).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), work.join(entry.file_name())).unwrap();
        }
    }
    // A CA of our own, trusted through the manifest; a TLS server with a certificate it signed.
    let tls = work.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(&tls).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=marqo-base test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
    ]);
    std::fs::copy(tls.join("ca.crt"), work.join("test-ca.crt")).unwrap();
    let manifest = std::fs::read_to_string(work.join("marqo-base.toml")).unwrap();
    let manifest = manifest.replacen("[debian]\n", "[debian]\nca_certificates = [\"test-ca.crt\"]\n", 1);
    std::fs::write(work.join("marqo-base.toml"), manifest).unwrap();

    let marqo_base = |args: &[&str]| {
        let started = std::time::Instant::now();
        let out =
            Command::new(env!("CARGO_BIN_EXE_marqo-base")).args(args).current_dir(work).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?}: {stderr}");
        eprintln!("{stderr}{args:?} took {:.1}s", started.elapsed().as_secs_f64());
    };
    let cut = std::fs::read_to_string(example.join("exclude-newer")).unwrap();
    marqo_base(&["lock", "--exclude-newer", cut.trim()]);
    marqo_base(&["build", "--oci", "out"]);

    let podman = Podman::new();
    podman.enable_arm64();
    let image = podman.layout(&work.join("out"), "latest");
    let imports = "import torch, transformers, open_clip, onnxruntime, cv2, PIL, numpy, psutil; \
                   print(torch.__version__, numpy.__version__, psutil.cpu_count() > 0)";
    for platform in ["linux/amd64", "linux/arm64"] {
        let printed =
            podman.run(&image, platform, None, &["/usr/bin/python3.9", "-c", imports]).success(platform);
        assert!(printed.starts_with("1.13.1") && printed.contains("1.23.4 True"), "{platform}: {printed}");
    }
    // Java: the truststore lists the bundle's certificates and ours, and a handshake with a
    // server whose certificate our CA signed succeeds with Java's default trust.
    let listed = podman
        .run(
            &image,
            "linux/amd64",
            None,
            &["/usr/bin/keytool", "-list", "-cacerts", "-storepass", "changeit"],
        )
        .success("keytool");
    let count = listed.lines().filter(|l| l.contains("trustedCertEntry")).count();
    assert!(count > 100, "{listed}");
    assert!(listed.to_lowercase().contains("test-ca"), "our CA is not in the truststore:\n{listed}");
    let java = work.join("java");
    std::fs::create_dir_all(&java).unwrap();
    std::fs::write(
        java.join("Handshake.java"),
        "public class Handshake { public static void main(String[] a) throws Exception {\n\
         javax.net.ssl.SSLSocket s = (javax.net.ssl.SSLSocket) javax.net.ssl.SSLSocketFactory.getDefault()\n\
         .createSocket(\"127.0.0.1\", Integer.parseInt(a[0])); s.startHandshake();\n\
         System.out.println(\"handshake with \" + s.getSession().getPeerPrincipal()); s.close(); } }\n",
    )
    .unwrap();
    let javac = Command::new("javac").args(["--release", "17", "Handshake.java"]).current_dir(&java).output();
    let javac = javac.expect("javac (test.sh installs openjdk-17-jdk-headless with MARQO_BASE_FLAGSHIP=1)");
    assert!(javac.status.success(), "javac: {}", String::from_utf8_lossy(&javac.stderr));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &port.to_string(),
            "-cert",
            "server.crt",
            "-key",
            "server.key",
            "-naccept",
            "1",
            "-quiet",
        ])
        .current_dir(&tls)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mount = format!("{}:/handshake:ro", java.display());
    let handshake = podman.run_with(
        &image,
        "linux/amd64",
        &["--network=host", "-v", &mount],
        &["/usr/bin/java", "-cp", "/handshake", "Handshake", &port.to_string()],
    );
    let _ = server.kill();
    let _ = server.wait();
    assert!(handshake.success("java handshake").contains("handshake with CN=127.0.0.1"));

    // Redis as its own user, from Debian's config (owned by redis, as its postinst makes it).
    let redis = "redis-server /etc/redis/redis.conf --daemonize yes && \
                 for i in 1 2 3 4 5 6 7 8 9 10; do redis-cli ping 2>/dev/null && exit 0; sleep 0.3; done; \
                 cat /var/log/redis/redis-server.log; exit 1";
    let printed =
        podman.run(&image, "linux/amd64", Some("redis"), &["/bin/sh", "-c", redis]).success("redis");
    assert_eq!(printed.trim(), "PONG");

    let audit = podman.run(&image, "linux/amd64", None, &["/usr/bin/dpkg", "--audit"]);
    assert_eq!(audit.success("dpkg --audit"), "");
    downstream_image_builds(&podman, &image, &work.join("downstream"), "python3.9");

    // Byte-compiled at build: Python writes nothing on the first import, so a fresh
    // container's first import is about as fast as its second.
    let timed = "import time; t = time.perf_counter(); import torch, transformers, open_clip; \
                 print(time.perf_counter() - t)";
    let script = format!("python3.9 -c '{timed}' && python3.9 -c '{timed}'");
    let printed =
        podman.run(&image, "linux/amd64", None, &["/bin/sh", "-c", &script]).success("import times");
    let times: Vec<f64> = printed.lines().map(|l| l.trim().parse().unwrap()).collect();
    eprintln!("first import {:.2}s, second {:.2}s", times[0], times[1]);
    assert!(times[0] <= 1.5 * times[1], "first import {times:?} (no .pyc in the image?)");
}
