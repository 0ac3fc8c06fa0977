//! `marqo-base build`: a manifest locked against a package index and a signed apt repository
//! (both served on 127.0.0.1 by the test) built into an OCI image layout, checked with tools
//! we did not write (`skopeo`, `umoci`). The live test builds `examples/quickstart` against
//! the real index and mirror; it is skipped with a note when `MARQO_BASE_SKIP_LIVE=1`.

#[path = "../../debian/tests/common/mod.rs"]
mod apt;
mod common;
#[path = "common/world.rs"]
mod world;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use apt::{Deb, Repo, Server as AptServer};
use common::TestContext;
use test_support::{Index, Sdist, Wheel};
use world::{slow_sdist, world, world_with, World};

/// Runs a tool we did not write, in `dir`; panics with its output when it fails.
fn tool(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The hex digest of the first (Debian) layer of the arm64 image in the layout `out`.
fn debian_layer(work: &Path) -> String {
    layer_digests(work, "out", "arm64")[0].trim_start_matches("sha256:").to_string()
}

/// The digest `index.json` names as `tag`.
fn index_digest(layout: &Path, tag: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(layout.join("index.json")).unwrap()).unwrap();
    let found = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no {tag} in {index}"));
    found["digest"].as_str().unwrap().to_string()
}

#[test]
fn builds_both_platforms_reproducibly() {
    let w = world();
    let ctx = &w.ctx;
    let work = ctx.work();
    ctx.run(&["lock"]).success();
    let started = Instant::now();
    let run = ctx.run(&["build", "--oci", "out"]);
    run.success();
    eprintln!("build took {:.2}s", started.elapsed().as_secs_f64());
    assert!(run.stderr.contains("linux/amd64") && run.stderr.contains("linux/arm64"), "{}", run.stderr);
    let leftovers: Vec<String> = std::fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let raw: serde_json::Value =
        serde_json::from_str(&tool(&work, "skopeo", &["inspect", "--raw", "oci:out:latest"])).unwrap();
    let arches: Vec<&str> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(arches, ["amd64", "arm64"], "{raw}");
    assert!(raw["manifests"].as_array().unwrap().iter().all(|m| m["platform"]["os"] == "linux"), "{raw}");

    let config: serde_json::Value = serde_json::from_str(&tool(
        &work,
        "skopeo",
        &["inspect", "--config", "--override-arch", "arm64", "oci:out:latest"],
    ))
    .unwrap();
    assert_eq!(config["architecture"], "arm64", "{config}");
    assert!(config.get("created").is_none(), "{config}");
    let env: Vec<&str> =
        config["config"]["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(env[0], "LANG=C.UTF-8", "{config}");
    assert!(env[1].starts_with("PATH=/usr/local/sbin:/usr/local/bin:"), "{config}");
    assert!(config["config"]["Labels"]["dev.marqo-base.lock-fingerprint"].is_string(), "{config}");

    // The arm64 image, unpacked by umoci: the arm64 .debs and the arm64 wheel, installed.
    tool(&work, "skopeo", &["copy", "--override-arch", "arm64", "oci:out:latest", "oci:one:x"]);
    tool(&work, "umoci", &["unpack", "--rootless", "--image", "one:x", "bundle"]);
    let rootfs = work.join("bundle/rootfs");
    assert_eq!(std::fs::read_to_string(rootfs.join("usr/lib/libc-test-arm64.txt")).unwrap(), "arm64");
    assert!(!rootfs.join("usr/lib/libc-test-amd64.txt").exists());
    assert_eq!(std::fs::read_link(rootfs.join("usr/bin/python3")).unwrap(), Path::new("python3.9"));
    let site = rootfs.join("usr/local/lib/python3.9/dist-packages");
    let init = std::fs::read_to_string(site.join("fast/__init__.py")).unwrap();
    assert!(init.contains("aarch64"), "{init}");
    assert!(site.join("six.py").is_file());
    assert!(site.join("fast-1.0.dist-info/RECORD").is_file());
    assert!(site.join("fast-1.0.dist-info/REQUESTED").is_file(), "fast is a direct requirement");
    assert!(!site.join("six-1.16.0.dist-info/REQUESTED").exists(), "six is a dependency");
    let script = std::fs::read_to_string(rootfs.join("usr/local/bin/fast")).unwrap();
    assert!(script.starts_with("#!/usr/bin/python3.9"), "{script}");
    assert!(script.contains("from fast import main"), "{script}");
    assert!(rootfs.join("var/lib/dpkg/status").is_file());
    let modes = tool(&work, "tar", &["-tvzf", &format!("out/blobs/sha256/{}", debian_layer(&work))]);
    assert!(
        modes.lines().any(|l| l.starts_with("-rw-r----- 0/42 ") && l.ends_with(" etc/secret")),
        "{modes}"
    );
    // ca-certificates' postinst makes the directory of local certificates.
    assert!(
        modes
            .lines()
            .any(|l| l.starts_with("drwxr-xr-x ") && l.ends_with(" usr/local/share/ca-certificates/")),
        "{modes}"
    );
    assert!(
        run.stderr.contains("maintainer scripts: 0 actions replicated, 0 not replicated in 0 packages"),
        "{}",
        run.stderr
    );
    assert!(
        modes.lines().any(|l| l.starts_with("-rwsr-xr-x ") && l.ends_with(" usr/bin/su-test")),
        "{modes}"
    );

    // Built again into another directory: every layer comes from the layer cache, and the
    // index digest is the same; built with --no-cache, every layer is built afresh and the
    // digest is still the same.
    let first = index_digest(&work.join("out"), "latest");
    let again = ctx.run(&["build", "--oci", "again", "--tag", "v1"]);
    again.success();
    assert!(again.stderr.contains("Reusing 6 of 6 layers from the cache"), "{}", again.stderr);
    assert!(!again.stderr.contains("Fetched"), "nothing is fetched for cached layers: {}", again.stderr);
    assert_eq!(first, index_digest(&work.join("again"), "v1"));
    let fresh = ctx.run(&["build", "--oci", "fresh", "--no-cache"]);
    fresh.success();
    assert!(!fresh.stderr.contains("Reusing"), "{}", fresh.stderr);
    assert_eq!(first, index_digest(&work.join("fresh"), "latest"));

    // One platform only: an index with that platform alone.
    ctx.run(&["build", "--oci", "amd", "--platform", "linux/amd64"]).success();
    let raw = tool(&work, "skopeo", &["inspect", "--raw", "oci:amd:latest"]);
    assert!(raw.contains("\"amd64\"") && !raw.contains("\"arm64\""), "{raw}");

    // One platform as a docker-archive, tagged with the manifest's repository.
    ctx.run(&["build", "--docker-archive", "arm.tar", "--platform", "linux/arm64", "--tag", "v2"]).success();
    let config: serde_json::Value =
        serde_json::from_str(&tool(&work, "skopeo", &["inspect", "--config", "docker-archive:arm.tar"]))
            .unwrap();
    assert_eq!(config["architecture"], "arm64", "{config}");
    let tar = tool(&work, "tar", &["-xOf", "arm.tar", "manifest.json"]);
    assert!(tar.contains("\"example/test:v2\""), "{tar}");
    let run = ctx.run(&["build", "--docker-archive", "both.tar"]);
    run.code(2);
    assert!(run.stderr.contains("one platform"), "{}", run.stderr);

    // A non-empty output directory is refused.
    let run = ctx.run(&["build", "--oci", "out"]);
    run.code(2);
    assert!(run.stderr.contains("is not empty"), "{}", run.stderr);
}

/// Every file below `dir` (relative) with its content.
fn files_below(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(next) = todo.pop() {
        for entry in std::fs::read_dir(next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                files.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// Wheels' modules byte-compiled as pip does at install: a `.pyc` for each module that
/// compiles (the Python 2 one is skipped and named with -v), in `__pycache__` and RECORD;
/// the same bytes on both platforms (from one compilation) and on a rebuild. The host's
/// python3.9 imports them at the image's paths (a private mount of the image's site-packages
/// at /usr/local/lib/python3.9/dist-packages: the world's own python3.9 is a shell script),
/// from the `.pyc` without reading the sources (edited first) and without writing any.
/// `[python] compile_bytecode = false` builds without them.
#[test]
fn wheel_modules_are_byte_compiled_as_pip_would() {
    assert!(
        common::host_python39().is_some(),
        "no CPython 3.9 on this host to compile and import the world's modules: ./test.sh \
         unpacks Debian 11's (or put a python3.9 on PATH, or `pyenv install 3.9`)"
    );
    let w = world();
    let ctx = &w.ctx;
    let python = ctx.provide_python39();
    let work = ctx.work();
    ctx.run(&["lock"]).success();
    let run = ctx.run(&["-v", "build", "--oci", "out"]);
    run.success();
    let said = |text: &str| assert!(run.stderr.contains(text), "no `{text}` in:\n{}", run.stderr);
    said("Bytecode: .pyc for linux/amd64, linux/arm64 by python3.9 on PATH (");
    said("since the image's own cannot compile here: /usr/bin/python3.9 of the linux/amd64 image: ");
    said("not an ELF file");
    said("Byte-compiled 4 modules with ");
    said("1 do not compile");
    said("fast/py2_only.py`: SyntaxError");

    let mut sites = Vec::new();
    for arch in ["amd64", "arm64"] {
        tool(&work, "skopeo", &["copy", "--override-arch", arch, "oci:out:latest", &format!("oci:{arch}:x")]);
        let bundle = format!("bundle-{arch}");
        tool(&work, "umoci", &["unpack", "--rootless", "--image", &format!("{arch}:x"), &bundle]);
        let site = work.join(bundle).join("rootfs/usr/local/lib/python3.9/dist-packages");
        let cached: Vec<String> =
            files_below(&site).into_keys().filter(|name| name.contains("__pycache__")).collect();
        assert_eq!(
            cached,
            [
                "__pycache__/six.cpython-39.pyc",
                "fast/__pycache__/__init__.cpython-39.pyc",
                "fast/__pycache__/common.cpython-39.pyc",
            ],
            "{arch}"
        );
        for (dist_info, want) in [("fast-1.0.dist-info", 2), ("six-1.16.0.dist-info", 1)] {
            let record = std::fs::read_to_string(site.join(dist_info).join("RECORD")).unwrap();
            let rows: Vec<&str> = record.lines().filter(|l| l.contains(".pyc,")).collect();
            assert_eq!(rows.len(), want, "{arch} {dist_info}: {record}");
            for row in rows {
                let fields: Vec<&str> = row.split(',').collect();
                let bytes = std::fs::read(site.join(fields[0])).unwrap();
                assert_eq!(fields[1], image::record_hash(&bytes), "{arch}: {row}");
                assert_eq!(fields[2], bytes.len().to_string(), "{arch}: {row}");
            }
        }
        sites.push(site);
    }
    // One compilation serves both platforms: a module the same on both has the same bytes.
    for module in ["__pycache__/six.cpython-39.pyc", "fast/__pycache__/common.cpython-39.pyc"] {
        assert_eq!(
            std::fs::read(sites[0].join(module)).unwrap(),
            std::fs::read(sites[1].join(module)).unwrap()
        );
    }
    let fresh = ctx.run(&["build", "--oci", "fresh", "--no-cache"]);
    fresh.success();
    assert_eq!(index_digest(&work.join("out"), "latest"), index_digest(&work.join("fresh"), "latest"));

    // Imported at the image's path, with the sources edited: the code is the compiled code.
    let site = &sites[0];
    std::fs::write(site.join("fast/common.py"), "ANSWER = 'the edited source'\n").unwrap();
    let before = files_below(site);
    let script = "import sys\n\
                  sys.path.insert(0, '/usr/local/lib/python3.9/dist-packages')\n\
                  import fast, fast.common, six\n\
                  print(sorted(fast.common.ANSWER), fast.TAG)\n\
                  print(fast.__file__, fast.__cached__)\n\
                  print(six.__cached__)";
    let mount = "mount -t tmpfs tmpfs /usr/local && mkdir -p /usr/local/lib/python3.9/dist-packages && \
                 mount --bind \"$1\" /usr/local/lib/python3.9/dist-packages && exec \"$2\" -c \"$3\"";
    assert!(!python.starts_with("/usr/local"), "{python:?} would be hidden by the mount");
    let printed = tool(
        &work,
        "unshare",
        &[
            "--mount",
            "--fork",
            "sh",
            "-c",
            mount,
            "sh",
            site.to_str().unwrap(),
            python.to_str().unwrap(),
            script,
        ],
    );
    let dist = "/usr/local/lib/python3.9/dist-packages";
    assert_eq!(
        printed,
        format!(
            "['forty', 'two'] cp39-cp39-manylinux2014_x86_64\n\
             {dist}/fast/__init__.py {dist}/fast/__pycache__/__init__.cpython-39.pyc\n\
             {dist}/__pycache__/six.cpython-39.pyc\n"
        )
    );
    assert_eq!(files_below(site), before, "importing wrote nothing");

    // Switched off: no .pyc, and the plan says why.
    let manifest = ctx
        .read("marqo-base.toml")
        .replace("version = \"3.9\"\n", "version = \"3.9\"\ncompile_bytecode = false\n");
    ctx.write("marqo-base.toml", &manifest);
    ctx.run(&["lock"]).success();
    let off = ctx.run(&["build", "--oci", "off", "--platform", "linux/amd64"]);
    off.success();
    assert!(off.stderr.contains("Bytecode: no .pyc: [python] compile_bytecode = false"), "{}", off.stderr);
    assert!(!off.stderr.contains("Byte-compiled"), "{}", off.stderr);
    tool(&work, "umoci", &["unpack", "--rootless", "--image", "off:latest", "bundle-off"]);
    let site = work.join("bundle-off/rootfs/usr/local/lib/python3.9/dist-packages");
    let files = files_below(&site);
    assert!(files.contains_key("fast/common.py"), "{:?}", files.keys());
    assert!(!files.keys().any(|name| name.contains("__pycache__")), "{:?}", files.keys());
}

/// Without a Python 3.9 to compile with (none on PATH, the image's not runnable), the build
/// says so and goes on without `.pyc`.
#[test]
fn without_an_interpreter_there_is_no_bytecode_and_a_warning() {
    let w = world();
    let ctx = &w.ctx;
    ctx.run(&["lock"]).success();
    let out = ctx
        .command(&["build", "--oci", "out", "--platform", "linux/arm64"])
        .env("PATH", ctx.bin().join("none"))
        .output()
        .unwrap();
    let run = common::Run::from(out);
    run.success();
    assert!(run.stderr.contains("Bytecode: no .pyc: no Python 3.9 to compile with: "), "{}", run.stderr);
    assert!(run.stderr.contains("`python3.9` on PATH: cannot run python3.9"), "{}", run.stderr);
    assert!(
        run.stderr.contains(" WARN the image gets no .pyc, so its first imports compile"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("Byte-compiled"), "{}", run.stderr);
}

/// The layer digests of the image of `platform` (`linux/amd64`) in the layout `dir`.
fn layer_digests(work: &Path, dir: &str, arch: &str) -> Vec<String> {
    let manifest: serde_json::Value = serde_json::from_str(&tool(
        work,
        "skopeo",
        &["inspect", "--raw", "--override-arch", arch, &format!("oci:{dir}:latest")],
    ))
    .unwrap();
    let manifest = match manifest.get("manifests") {
        // skopeo printed the index: read the platform's manifest from the layout.
        Some(list) => {
            let entry =
                list.as_array().unwrap().iter().find(|m| m["platform"]["architecture"] == arch).unwrap();
            let digest = entry["digest"].as_str().unwrap().trim_start_matches("sha256:");
            let blob = std::fs::read_to_string(work.join(dir).join("blobs/sha256").join(digest)).unwrap();
            serde_json::from_str(&blob).unwrap()
        }
        None => manifest,
    };
    manifest["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_string()).collect()
}

/// Moving one package to another version changes exactly one layer of each platform.
#[test]
fn bumping_one_package_changes_one_layer() {
    let w = world();
    let ctx = &w.ctx;
    let work = ctx.work();
    ctx.run(&["lock"]).success();
    ctx.run(&["build", "--oci", "before"]).success();
    ctx.write("constraints.txt", "six<1.18\n");
    ctx.run(&["lock", "-P", "six"]).success();
    assert!(ctx.read("marqo-base.lock").contains("name = \"six\"\nversion = \"1.17.0\""));
    let after = ctx.run(&["build", "--oci", "after"]);
    after.success();
    // Only the layer with six is built again, on each platform, and the SBOM's (last),
    // which lists six's new version.
    assert!(after.stderr.contains("Reusing 4 of 6 layers"), "{}", after.stderr);
    for arch in ["amd64", "arm64"] {
        let before = layer_digests(&work, "before", arch);
        let after = layer_digests(&work, "after", arch);
        assert_eq!(before.len(), after.len(), "{arch}: {before:?} {after:?}");
        let (sbom_before, sbom_after) = (before.last().unwrap(), after.last().unwrap());
        assert_ne!(sbom_before, sbom_after, "{arch}: the SBOM names six 1.17.0");
        let n = before.len() - 1;
        let changed = before[..n].iter().zip(&after[..n]).filter(|(a, b)| a != b).count();
        assert_eq!(changed, 1, "{arch}: {before:?} {after:?}");
    }
}

/// A gzipped tar of `entries` (path, content; a content starting with `->` is a symlink).
fn tar_gz(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut builder =
        tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (path, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o755);
        if let Some(target) = content.strip_prefix("->") {
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder.append_link(&mut header, path, target).unwrap();
        } else {
            header.set_size(content.len() as u64);
            // `append_data` refuses `..`; the header's name is written as is.
            header.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, content.as_bytes()).unwrap();
        }
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `[[file]]` entries: a local file with a mode, a local directory, and a download pinned by
/// sha256 and extracted; each a layer of its own. An archive that would write outside its
/// directory, and a download whose hash is wrong, are refused.
#[test]
fn files_are_locked_and_built() {
    let w = world();
    let ctx = &w.ctx;
    let work = ctx.work();
    let archive = tar_gz(&[("vespa/bin/vespa", "#!/bin/sh\necho vespa\n"), ("vespa/current", "->bin")]);
    let sha = sha256_hex(&archive);
    let bad = tar_gz(&[("ok.txt", "ok"), ("../../etc/evil", "evil")]);
    let bad_sha = sha256_hex(&bad);
    let (good_body, bad_body) = (archive.clone(), bad.clone());
    let server = test_support::scripted::Server::start(move |req| match req.path.as_str() {
        "/vespa.tar.gz" => test_support::scripted::Reply::ok(good_body.clone()),
        "/evil.tar.gz" => test_support::scripted::Reply::ok(bad_body.clone()),
        _ => test_support::scripted::Reply::status(404),
    });
    std::fs::create_dir_all(work.join("files/conf")).unwrap();
    ctx.write("files/start.sh", "#!/bin/sh\necho start\n");
    ctx.write("files/conf/app.conf", "key = value\n");
    let manifest = ctx.read("marqo-base.toml");
    let with_files = format!(
        "{manifest}\n[[file]]\nsrc = \"files/start.sh\"\nto = \"/app/start.sh\"\nmode = 0o755\n\n\
         [[file]]\nsrc = \"files/conf\"\nto = \"/etc/app\"\n\n\
         [[file]]\nurl = \"{}\"\nsha256 = \"{sha}\"\nto = \"/opt\"\nextract = true\n",
        server.url("/vespa.tar.gz")
    );
    ctx.write("marqo-base.toml", &with_files);
    ctx.run(&["lock"]).success();
    let lock = ctx.read("marqo-base.lock");
    assert!(lock.contains("[[file]]\nto = \"/app/start.sh\"\nsrc = \"files/start.sh\""), "{lock}");
    assert!(lock.contains(&format!("sha256 = \"{sha}\"")), "{lock}");
    ctx.run(&["lock", "--check"]).success();
    let run = ctx.run(&["build", "--oci", "out", "--platform", "linux/amd64"]);
    run.success();
    assert_eq!(layer_digests(&work, "out", "amd64").len(), 7, "debian, 2 wheel buckets, 3 files, the SBOM");

    tool(&work, "umoci", &["unpack", "--rootless", "--image", "out:latest", "bundle"]);
    let rootfs = work.join("bundle/rootfs");
    use std::os::unix::fs::PermissionsExt;
    let start = rootfs.join("app/start.sh");
    assert_eq!(std::fs::read_to_string(&start).unwrap(), "#!/bin/sh\necho start\n");
    assert_eq!(std::fs::metadata(&start).unwrap().permissions().mode() & 0o777, 0o755);
    assert_eq!(std::fs::read_to_string(rootfs.join("etc/app/app.conf")).unwrap(), "key = value\n");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("opt/vespa/bin/vespa")).unwrap(),
        "#!/bin/sh\necho vespa\n"
    );
    assert_eq!(std::fs::read_link(rootfs.join("opt/vespa/current")).unwrap(), Path::new("bin"));

    // A local source edited after locking: the lock is stale.
    ctx.write("files/conf/app.conf", "key = other\n");
    let run = ctx.run(&["lock", "--check"]);
    run.code(1);
    assert!(run.stderr.contains("files/conf"), "{}", run.stderr);
    ctx.write("files/conf/app.conf", "key = value\n");

    // An archive with `..` is refused at build time and nothing is written.
    ctx.write(
        "marqo-base.toml",
        &format!(
            "{manifest}\n[[file]]\nurl = \"{}\"\nsha256 = \"{bad_sha}\"\nto = \"/opt\"\nextract = true\n",
            server.url("/evil.tar.gz")
        ),
    );
    ctx.run(&["lock"]).success();
    let run = ctx.run(&["build", "--oci", "evil", "--platform", "linux/amd64"]);
    run.code(2);
    assert!(run.stderr.contains("leaves the directory"), "{}", run.stderr);
    assert!(!ctx.exists("evil"));

    // A download that does not match its sha256 is refused by lock, naming the file.
    ctx.write(
        "marqo-base.toml",
        &format!(
            "{manifest}\n[[file]]\nurl = \"{}\"\nsha256 = \"{}\"\nto = \"/opt\"\n",
            server.url("/vespa.tar.gz"),
            sha256_hex(b"not the archive")
        ),
    );
    let before = ctx.read("marqo-base.lock");
    let run = ctx.run(&["lock"]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("vespa.tar.gz"), "{}", run.stderr);
    assert_eq!(before, ctx.read("marqo-base.lock"), "a failed lock leaves the lock as it was");
}

#[test]
fn stale_lock_and_unsupported_inputs_are_errors() {
    let w = world();
    let ctx = &w.ctx;
    let run = ctx.run(&["build", "--oci", "out"]);
    run.code(2);
    assert!(run.stderr.contains("marqo-base lock"), "{}", run.stderr);

    ctx.run(&["lock"]).success();
    let req = ctx.read("requirements.in");
    ctx.write("requirements.in", &format!("{req}six\n"));
    let run = ctx.run(&["build", "--oci", "out"]);
    run.code(2);
    assert!(run.stderr.contains("stale") && run.stderr.contains("marqo-base lock"), "{}", run.stderr);
    assert!(!ctx.exists("out"));

    ctx.write("requirements.in", &req);
    let run = ctx.run(&["build", "--oci", "out", "--platform", "linux/riscv64"]);
    run.code(2);
}

/// A package locked as an sdist is built into a wheel on this host (with the manifest's
/// build constraints), once, and installed on both platforms; the lock names the sdist only.
#[test]
fn locked_sdist_is_built_and_installed() {
    let w = world_with(Some(slow_sdist()));
    let ctx = &w.ctx;
    let work = ctx.work();
    ctx.run(&["lock"]).success();
    let lock = ctx.read("marqo-base.lock");
    assert!(lock.contains("slow-2.0.tar.gz") && !lock.contains("slow-2.0-"), "{lock}");

    let log = work.join("backend.log");
    let build = |out: &str| {
        let started = Instant::now();
        let run: common::Run =
            ctx.command(&["build", "--oci", out]).env("TEST_BACKEND_LOG", &log).output().unwrap().into();
        run.success();
        eprintln!("build took {:.2}s", started.elapsed().as_secs_f64());
        run
    };
    let run = build("out");
    assert!(run.stderr.contains("Built 1 wheels from 1 sdists"), "{}", run.stderr);
    let hooks = std::fs::read_to_string(&log).unwrap();
    assert_eq!(hooks.lines().filter(|l| *l == "build_wheel slow 2.0").count(), 1, "{hooks}");

    tool(&work, "skopeo", &["copy", "--override-arch", "arm64", "oci:out:latest", "oci:one:x"]);
    tool(&work, "umoci", &["unpack", "--rootless", "--image", "one:x", "bundle"]);
    let site = work.join("bundle/rootfs/usr/local/lib/python3.9/dist-packages");
    assert_eq!(std::fs::read_to_string(site.join("slow/__init__.py")).unwrap(), "SLOW = True\n");
    for file in ["METADATA", "WHEEL", "RECORD", "INSTALLER", "REQUESTED"] {
        assert!(site.join("slow-2.0.dist-info").join(file).is_file(), "no {file}");
    }
    assert!(std::fs::read_to_string(site.join("fast/__init__.py")).unwrap().contains("aarch64"));

    // Built again: the wheel comes from the cache (no hook runs) and the image is the same.
    build("again");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), hooks);
    assert_eq!(index_digest(&work.join("out"), "latest"), index_digest(&work.join("again"), "latest"));
    assert_eq!(ctx.read("marqo-base.lock"), lock);
}

/// A backend that compiles `native.c` with `$CC $CFLAGS -g` into the wheel before the test
/// backend builds it: what a C extension's build does with paths.
const COMPILING_BACKEND: &str = r#"

_test_build_wheel = build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    import subprocess

    cc = os.environ.get("CC", "cc")
    flags = os.environ.get("CFLAGS", "").split()
    subprocess.check_call([cc, "-g", "-O1", "-c", "native.c", "-o", "slow/native.o"] + flags)
    return _test_build_wheel(wheel_directory, config_settings, metadata_directory)
"#;

/// A wheel built from an sdist with compiled code is the same whichever machine (cache
/// directory, temporary directory) builds it: the compiler is told where the source is with
/// `-ffile-prefix-map`, so debug information names `/usr/src/NAME-VERSION`. Two builds from
/// two empty caches give one image.
#[test]
fn compiled_code_in_sdists_does_not_depend_on_where_it_was_built() {
    let sdist = Sdist::new("slow", "2.0")
        .build_requires("helper")
        .file("slow/__init__.py", "SLOW = True\n")
        .file("native.c", "int slow_native(int x) { return x * 2; }\n")
        .file("slow/native.o", "replaced by the build")
        .backend(&format!("{}{COMPILING_BACKEND}", test_support::BACKEND_SRC));
    let w = world_with(Some(sdist));
    let ctx = &w.ctx;
    let work = ctx.work();
    ctx.run(&["lock"]).success();
    for (out, cache) in [("one", "cache-one"), ("two", "cache-two/deeper")] {
        let run: common::Run = ctx
            .command(&["build", "--oci", out])
            .env("MARQO_BASE_CACHE_DIR", work.join(cache))
            .output()
            .unwrap()
            .into();
        run.success();
        assert!(
            run.stderr.contains("Built 2 wheels from 1 sdists")
                || run.stderr.contains("Built 1 wheels from 1 sdists"),
            "{}",
            run.stderr
        );
    }
    tool(&work, "skopeo", &["copy", "--override-arch", "amd64", "oci:one:latest", "oci:unpacked:x"]);
    tool(&work, "umoci", &["unpack", "--rootless", "--image", "unpacked:x", "bundle"]);
    let object =
        std::fs::read(work.join("bundle/rootfs/usr/local/lib/python3.9/dist-packages/slow/native.o"))
            .unwrap();
    let text = String::from_utf8_lossy(&object);
    assert!(text.contains("/usr/src/slow-2.0"), "the object names the mapped source directory");
    assert!(!text.contains("cache-one"), "the object names the cache directory");
    assert_eq!(index_digest(&work.join("one"), "latest"), index_digest(&work.join("two"), "latest"));
}

/// An sdist that builds an x86_64 wheel on this host fits linux/amd64, not linux/arm64.
#[test]
fn sdist_built_for_another_platform_is_an_error() {
    let backend = test_support::BACKEND_SRC.replace("py3-none-any", "py3-none-manylinux2014_x86_64");
    let w = world_with(Some(slow_sdist().backend(&backend)));
    let ctx = &w.ctx;
    ctx.run(&["lock"]).success();
    ctx.run(&["build", "--oci", "amd", "--platform", "linux/amd64"]).success();
    let run = ctx.run(&["build", "--oci", "out"]);
    run.code(2);
    // Built again with a cross compiler when there is one (this backend ignores it), the
    // wheel is still for x86_64; a pure-Python wheel is no stable-ABI extension either.
    assert!(
        run.stderr.contains("`slow` builds a py3-none-manylinux2014_x86_64 wheel on this host, which ")
            && run.stderr.contains("linux/arm64 cannot use")
            && (run.stderr.contains("no aarch64-linux-gnu-gcc")
                || run.stderr.contains("no extension module")),
        "{}",
        run.stderr
    );
    assert!(!ctx.exists("out"));
}

/// `examples/quickstart` for both platforms from the live index and mirror; each image's own
/// Python imports the installed wheels: amd64 in a chroot, arm64 under qemu-aarch64-static
/// (the build itself runs nothing of either image).
#[test]
fn live_quickstart_both_platforms() {
    let Some(ctx) = common::live_quickstart() else { return };
    // The host's pip configuration and apt sources are what a user's run would use.
    let started = Instant::now();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_marqo-base"))
            .current_dir(ctx.work())
            .env("MARQO_BASE_CACHE_DIR", ctx.cache())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["lock"]);
    run(&["build", "--oci", "out"]);
    eprintln!("lock + build took {:.2}s", started.elapsed().as_secs_f64());
    let work = ctx.work();
    // Every path of every package has the mode and owner dpkg gives it (setgid `shadow`
    // tools, base-files' `staff` directory, ...).
    for arch in ["amd64", "arm64"] {
        let layer = check_debian_layer_owners(&work, "out", arch, &ctx.cache());
        assert_eq!(layer["usr/bin/chage"], ("-rwxr-sr-x".to_string(), "0/42".to_string()), "{arch}");
    }
    for arch in ["amd64", "arm64"] {
        let image = format!("oci:{arch}:x");
        tool(&work, "skopeo", &["copy", "--override-arch", arch, "oci:out:latest", &image]);
    }
    tool(&work, "umoci", &["unpack", "--rootless", "--image", "amd64:x", "bundle"]);
    let site = work.join("bundle/rootfs/usr/local/lib/python3.11/dist-packages");
    let before = files_below(&site);
    let printed = tool(
        &work,
        "chroot",
        &[
            "bundle/rootfs",
            "/usr/bin/python3.11",
            "-c",
            "import requests, numpy; print(numpy.__version__, numpy.__cached__)",
        ],
    );
    assert_eq!(
        printed.trim(),
        "1.23.4 /usr/local/lib/python3.11/dist-packages/numpy/__pycache__/__init__.cpython-311.pyc"
    );
    // The modules came byte-compiled (by the image's own python3.11): importing wrote none.
    assert_eq!(files_below(&site).len(), before.len());
    assert!(before.contains_key("requests/__pycache__/api.cpython-311.pyc"));
    // The standard library came byte-compiled too, as Debian's maintainer scripts leave it
    // (checked-hash .pyc: PEP 552 flags 3), and its imports write nothing.
    let stdlib = work.join("bundle/rootfs/usr/lib/python3.11");
    let before = files_below(&stdlib);
    let pyc = std::fs::read(stdlib.join("email/mime/__pycache__/text.cpython-311.pyc")).unwrap();
    assert_eq!(pyc[4..8], [3, 0, 0, 0]);
    let imports = "import email.mime.text, concurrent.futures, xml.dom.minidom, sitecustomize";
    // This host sets PYTHONDONTWRITEBYTECODE, which would hide a missing .pyc.
    let out = Command::new("chroot")
        .current_dir(&work)
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .args(["bundle/rootfs", "/usr/bin/python3.11", "-c", imports])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(files_below(&stdlib).len(), before.len(), "importing the standard library wrote .pyc");
    // A console script, with the image's interpreter in its shebang.
    let printed = tool(&work, "chroot", &["bundle/rootfs", "/usr/local/bin/tqdm", "--version"]);
    assert_eq!(printed.trim(), "4.66.5");

    tool(&work, "umoci", &["unpack", "--rootless", "--image", "arm64:x", "bundle-arm64"]);
    let printed = tool(
        &work,
        "qemu-aarch64-static",
        &[
            "-L",
            "bundle-arm64/rootfs",
            "bundle-arm64/rootfs/usr/bin/python3.11",
            "-c",
            "import platform, requests, numpy; print(platform.machine(), numpy.__version__)",
        ],
    );
    assert_eq!(printed.trim(), "aarch64 1.23.4");
}

/// The flagship (`examples/marqo-base`: Marqo's requirements on Debian bullseye) built for
/// both platforms from its committed lock, then Marqo's stack imported in each: amd64 in a
/// chroot, arm64 under `qemu-aarch64-static -L`. Multi-GB: ignored, run by
/// `MARQO_BASE_FLAGSHIP=1 ./test.sh` (which includes ignored tests); uses the user's cache.
#[test]
#[ignore = "the multi-GB flagship, minutes: MARQO_BASE_FLAGSHIP=1 ./test.sh -p marqo-base --test build live_flagship"]
fn live_flagship_both_platforms() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/marqo-base");
    let work = tempfile::tempdir_in(std::env::var_os("TMPDIR").unwrap_or("/tmp".into())).unwrap();
    let work = work.path();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_marqo-base"))
        .args(["build", "--manifest"])
        .arg(example.join("marqo-base.toml"))
        .arg("--oci")
        .arg(work.join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    eprintln!("{stderr}\nflagship build took {:.1}s", started.elapsed().as_secs_f64());

    let imports = "import torch, transformers, open_clip, onnxruntime, cv2, PIL, numpy, psutil; \
                   print(torch.__version__, numpy.__version__, psutil.cpu_count() > 0)";
    for arch in ["amd64", "arm64"] {
        let image = format!("oci:{arch}:x");
        tool(work, "skopeo", &["copy", "--override-arch", arch, "oci:out:latest", &image]);
        let bundle = format!("bundle-{arch}");
        tool(work, "umoci", &["unpack", "--rootless", "--image", &format!("{arch}:x"), &bundle]);
        let rootfs = format!("{bundle}/rootfs");
        if arch == "amd64" {
            // The device nodes a container runtime gives every container (torch reads
            // /dev/urandom when it is imported).
            for (name, minor) in [("null", "3"), ("zero", "5"), ("random", "8"), ("urandom", "9")] {
                let node = work.join(&rootfs).join("dev").join(name);
                let _ = std::fs::remove_file(&node);
                tool(work, "mknod", &["-m", "666", node.to_str().unwrap(), "c", "1", minor]);
            }
        }
        let run = |argv: &[&str]| -> String {
            // amd64: chroot with its own /proc, as in any container (the JVM finds libjli.so
            // through $ORIGIN, which needs /proc/self/exe); arm64: qemu with the rootfs as -L.
            let mount_proc = format!("--mount-proc={rootfs}/proc");
            let first = format!("{rootfs}{}", argv[0]);
            let mut full: Vec<&str> = Vec::new();
            let program = if arch == "amd64" {
                full.extend(["--fork", "--pid", "--mount", &mount_proc, "chroot", &rootfs, argv[0]]);
                "unshare"
            } else {
                full.extend(["-L", &rootfs, &first]);
                "qemu-aarch64-static"
            };
            full.extend(&argv[1..]);
            let mut command = Command::new(program);
            if arch == "arm64" {
                // qemu's -L prefixes the paths a program opens, but the kernel resolves an
                // absolute symlink against the host's root: libblas.so.3 reaches its file
                // through /etc/alternatives (checked below), so name its directories.
                command.env(
                    "LD_LIBRARY_PATH",
                    "/usr/lib/aarch64-linux-gnu/blas:/usr/lib/aarch64-linux-gnu/lapack",
                );
            }
            let out = command.args(&full).current_dir(work).output().unwrap();
            let text =
                format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "{arch} {argv:?}: {text}");
            text
        };
        let printed = run(&["/usr/bin/python3.9", "-c", imports]);
        eprintln!("{arch}: {printed}");
        assert!(printed.starts_with("1.13.1") && printed.contains("1.23.4 True"), "{arch}: {printed}");
        let java = if arch == "amd64" { "amd64" } else { "arm64" };
        let printed = run(&[&format!("/usr/lib/jvm/java-17-openjdk-{java}/bin/java"), "-version"]);
        assert!(printed.contains("openjdk version \"17"), "{arch}: {printed}");
        assert!(run(&["/usr/bin/redis-server", "--version"]).contains("Redis server v=6"), "{arch}");
        assert!(run(&["/usr/bin/ffmpeg", "-version"]).contains("ffmpeg version 4"), "{arch}");
        // The alternatives chain of libblas.so.3 ends at a file of the image.
        let triple = if arch == "amd64" { "x86_64-linux-gnu" } else { "aarch64-linux-gnu" };
        let link =
            std::fs::read_link(work.join(&rootfs).join(format!("usr/lib/{triple}/libblas.so.3"))).unwrap();
        let target = std::fs::read_link(work.join(&rootfs).join(link.strip_prefix("/").unwrap())).unwrap();
        assert!(work.join(&rootfs).join(target.strip_prefix("/").unwrap()).is_file(), "{arch}: {target:?}");
    }
}

/// `base = "REF"`: an image built on another, from an OCI layout on disk and from a
/// registry. The lock pins the base by digest; the image has the base's layers under its
/// own, the base's settings under the manifest's.
#[test]
fn images_build_on_a_base_image() {
    let w = world();
    let ctx = &w.ctx;
    let work = ctx.work();
    ctx.run(&["lock"]).success();
    ctx.run(&["build", "--oci", "base"]).success();
    let base_digest = index_digest(&work.join("base"), "latest");
    let base_layers = layer_digests(&work, "base", "arm64");

    // The app: no Debian packages, one more wheel-less file, on top of the base.
    std::fs::create_dir_all(work.join("app")).unwrap();
    ctx.write("app/hello.txt", "hello\n");
    let app = |base: &str| {
        format!(
            "[image]\nbase = \"{base}\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\
             env = {{ APP = \"1\" }}\ncmd = [\"-c\", \"print(1)\"]\n\n\
             [[file]]\nsrc = \"hello.txt\"\nto = \"/app/hello.txt\"\n"
        )
    };
    ctx.write("app/marqo-base.toml", &app("oci:../base:latest"));
    let run = ctx.run(&["lock", "--manifest", "app/marqo-base.toml"]);
    run.success();
    let lock = ctx.read("app/marqo-base.lock");
    assert!(lock.contains(&format!("digest = \"{base_digest}\"")), "{lock}");
    ctx.run(&["build", "--manifest", "app/marqo-base.toml", "--oci", "app-out"]).success();
    let layers = layer_digests(&work, "app-out", "arm64");
    // The base's layers (its SBOM's last), the file, the app's SBOM (which replaces the
    // base's file: it names the base by digest).
    assert_eq!(layers.len(), base_layers.len() + 2, "{layers:?}");
    assert_eq!(layers[..base_layers.len()], base_layers[..]);

    let config: serde_json::Value = serde_json::from_str(&tool(
        &work,
        "skopeo",
        &["inspect", "--config", "--override-arch", "arm64", "oci:app-out:latest"],
    ))
    .unwrap();
    let env: Vec<&str> =
        config["config"]["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(env.contains(&"LANG=C.UTF-8") && env.contains(&"APP=1"), "{config}");
    assert_eq!(config["config"]["Entrypoint"][0], "/usr/bin/python3.9", "the base's entry point: {config}");
    assert_eq!(config["config"]["Cmd"][0], "-c", "{config}");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), layers.len(), "{config}");
    tool(&work, "skopeo", &["copy", "--override-arch", "arm64", "oci:app-out:latest", "oci:app-one:x"]);
    tool(&work, "umoci", &["unpack", "--rootless", "--image", "app-one:x", "app-bundle"]);
    let rootfs = work.join("app-bundle/rootfs");
    assert_eq!(std::fs::read_to_string(rootfs.join("app/hello.txt")).unwrap(), "hello\n");
    assert_eq!(std::fs::read_to_string(rootfs.join("usr/lib/libc-test-arm64.txt")).unwrap(), "arm64");

    // The base moves on: the lock keeps its digest, and build refuses the moved base.
    ctx.write("constraints.txt", "six<1.18\n");
    ctx.run(&["lock", "-P", "six"]).success();
    std::fs::remove_dir_all(work.join("base")).unwrap();
    ctx.run(&["build", "--oci", "base"]).success();
    ctx.run(&["lock", "--manifest", "app/marqo-base.toml"]).success();
    assert_eq!(ctx.read("app/marqo-base.lock"), lock, "the base stays pinned");
    let run = ctx.run(&["build", "--manifest", "app/marqo-base.toml", "--oci", "moved"]);
    run.code(2);
    assert!(run.stderr.contains("lock -P base"), "{}", run.stderr);
    ctx.run(&["lock", "--manifest", "app/marqo-base.toml", "-P", "base"]).success();
    assert_ne!(ctx.read("app/marqo-base.lock"), lock);
    ctx.run(&["build", "--manifest", "app/marqo-base.toml", "--oci", "moved"]).success();

    // From a registry: the base pushed, then pulled by digest for the build.
    let registry = test_support::DockerRegistry::start();
    let reference = format!("{}/base:1", registry.host());
    ctx.run(&["push", &reference, "--oci", "base", "--yes"]).success();
    ctx.write("app/marqo-base.toml", &app(&reference));
    ctx.run(&["lock", "--manifest", "app/marqo-base.toml"]).success();
    let pushed = index_digest(&work.join("base"), "latest");
    assert!(ctx.read("app/marqo-base.lock").contains(&format!("digest = \"{pushed}\"")));
    ctx.run(&["build", "--manifest", "app/marqo-base.toml", "--oci", "from-registry"]).success();
    let layers = layer_digests(&work, "from-registry", "amd64");
    let base = layer_digests(&work, "base", "amd64");
    assert_eq!(layers[..base.len()], base[..]);
}

/// `[[python.index]]`: `fast` from its own index on amd64 only (as torch from a CUDA index),
/// from the requirements' index on arm64; `lock` and `build` both follow the pin.
#[test]
fn a_package_pinned_to_an_index_on_one_platform() {
    let w = world();
    let ctx = &w.ctx;
    let work = ctx.work();
    let cuda = Index::new();
    Wheel::new("fast", "1.0+cu")
        .tag("cp39-cp39-manylinux2014_x86_64")
        .requires("six")
        .file("fast/__init__.py", "CUDA = True\n")
        .publish(&cuda);
    let cuda = cuda.serve();
    let manifest = ctx.read("marqo-base.toml");
    ctx.write(
        "marqo-base.toml",
        &format!(
            "{manifest}\n[[python.index]]\nurl = \"{}\"\npackages = [\"fast\"]\nplatforms = [\"linux/amd64\"]\n",
            cuda.url()
        ),
    );
    ctx.run(&["lock"]).success();
    let lock = ctx.read("marqo-base.lock");
    assert!(lock.contains("name = \"fast\"\nversion = \"1.0+cu\"\nplatforms = [\"linux/amd64\"]"), "{lock}");
    assert!(lock.contains("name = \"fast\"\nversion = \"1.0\"\nplatforms = [\"linux/arm64\"]"), "{lock}");
    // six is not on the pinned index: it still comes from the requirements' index.
    assert!(lock.contains("name = \"six\"\nversion = \"1.16.0\""), "{lock}");

    let run = ctx.run(&["build", "--oci", "out", "--no-cache"]);
    run.success();
    tool(&work, "skopeo", &["copy", "--override-arch", "amd64", "oci:out:latest", "oci:one:x"]);
    tool(&work, "umoci", &["unpack", "--rootless", "--image", "one:x", "bundle"]);
    let site = work.join("bundle/rootfs/usr/local/lib/python3.9/dist-packages");
    assert_eq!(std::fs::read_to_string(site.join("fast/__init__.py")).unwrap(), "CUDA = True\n");
}

/// The manifest path of Marqo's case: `fast` from an index shaped like PyTorch's CUDA index
/// (static HTML, `%2B` in hrefs, `linux_x86_64` wheels, no sizes or upload times) on amd64
/// only, locked under `--exclude-newer` with that index exempt; the amd64 image holds the
/// `+cu116` build, the arm64 one the plain version.
#[test]
fn a_pytorch_like_index_locks_and_builds_on_one_platform() {
    let w = world();
    let ctx = &w.ctx;
    let work = ctx.work();
    let cuda = Index::pytorch_like();
    let filename = "fast-1.0+cu116-cp39-cp39-linux_x86_64.whl";
    Wheel::new("fast", "1.0+cu116")
        .tag("cp39-cp39-linux_x86_64")
        .requires("six")
        .file("fast/__init__.py", "CUDA = True\n")
        .publish(&cuda);
    let size = std::fs::metadata(cuda.file_path(filename)).unwrap().len();
    let server = cuda.serve();
    let manifest = ctx.read("marqo-base.toml");
    let pinned = format!(
        "{manifest}\n[[python.index]]\nurl = \"{}\"\npackages = [\"fast\"]\nplatforms = [\"linux/amd64\"]\n",
        server.url()
    );
    ctx.write("marqo-base.toml", &pinned);
    // The index publishes no upload times: a cutoff drops its files, and says how to fix it.
    let run = ctx.run(&["lock", "--exclude-newer", "2030-01-01"]);
    run.code(2);
    assert!(run.stderr.contains("publishes no upload times"), "{}", run.stderr);
    assert!(run.stderr.contains("exclude_newer = false"), "{}", run.stderr);
    ctx.write("marqo-base.toml", &format!("{pinned}exclude_newer = false\n"));
    ctx.run(&["lock", "--exclude-newer", "2030-01-01"]).success();
    let lock = ctx.read("marqo-base.lock");
    // The page gives no size: the lock has the one the server told (a one-byte range reply).
    let entry = format!(
        "name = \"fast\"\nversion = \"1.0+cu116\"\nplatforms = [\"linux/amd64\"]\ndependencies = [\"six\"]\nfile = {{ name = \"{filename}\", size = {size}, "
    );
    assert!(lock.contains(&entry), "{lock}");
    assert!(lock.contains("name = \"fast\"\nversion = \"1.0\"\nplatforms = [\"linux/arm64\"]"), "{lock}");

    ctx.run(&["build", "--oci", "out", "--no-cache"]).success();
    for (arch, dist_info) in [("amd64", "fast-1.0+cu116.dist-info"), ("arm64", "fast-1.0.dist-info")] {
        let image = format!("{arch}:x");
        tool(&work, "skopeo", &["copy", "--override-arch", arch, "oci:out:latest", &format!("oci:{image}")]);
        let bundle = format!("bundle-{arch}");
        tool(&work, "umoci", &["unpack", "--rootless", "--image", &image, &bundle]);
        let site = work.join(&bundle).join("rootfs/usr/local/lib/python3.9/dist-packages");
        assert!(site.join(dist_info).join("RECORD").is_file(), "{arch}: no {dist_info}");
    }
}

/// The build's bytes, pinned: the same generated packages give these exact layers on any
/// machine and in any run (a golden test, as apko's). The layers hold every installed byte;
/// the config and index also carry the lock's input fingerprint, which names this run's
/// server ports, so the index is pinned from the same lock under a manifest without them. A
/// change of these digests is a change of what images contain. The wheel layers hold the
/// `.pyc` of their modules, compiled by the host's python3.9 (the world's is a shell
/// script): the same bytes from pyenv's 3.9.18 and bullseye's 3.9.2 for these modules
/// (bigger ones can differ between interpreter builds: see `ops::bytecode`).
///
/// Without a CPython 3.9 on the host (Debian 12 has none) there is no interpreter to make
/// the `.pyc` with, so the world is built with `compile_bytecode = false` and pinned to the
/// digests of that build ([`GOLDEN_NO_BYTECODE`]): the Debian layers are the same.
#[test]
fn golden_layer_digests() {
    let w = world();
    let ctx = &w.ctx;
    let bytecode = common::host_python39().is_some();
    if !bytecode {
        eprintln!("no CPython 3.9 on this host: pinning the build without .pyc");
        let manifest = std::fs::read_to_string(ctx.work().join("marqo-base.toml")).unwrap();
        let manifest = manifest.replacen("[python]\n", "[python]\ncompile_bytecode = false\n", 1);
        assert!(manifest.contains("compile_bytecode = false"), "{manifest}");
        ctx.write("marqo-base.toml", &manifest);
    }
    let (golden_layers, golden_index) =
        if bytecode { (GOLDEN_LAYERS, GOLDEN_INDEX) } else { GOLDEN_NO_BYTECODE };
    let work = ctx.work();
    ctx.run(&["lock"]).success();
    ctx.run(&["build", "--oci", "out"]).success();
    // The SBOM's layer (last) names the lock's fingerprint, and the Debian layer (first) the
    // apt sources, which have this run's ports: they are pinned with the portless build below.
    let got: Vec<(&str, Vec<String>)> = ["amd64", "arm64"]
        .into_iter()
        .map(|arch| {
            let mut layers = layer_digests(&work, "out", arch);
            layers.pop();
            layers.remove(0);
            (arch, layers)
        })
        .collect();
    let want: Vec<(&str, Vec<String>)> = golden_layers
        .iter()
        .map(|(arch, layers)| (*arch, layers[1..].iter().map(|d| format!("sha256:{d}")).collect()))
        .collect();
    assert_eq!(got, want);

    // The same lock under a manifest that names no port (its files come from the cache
    // the build above filled, so nothing is fetched): the whole image, index and all, is
    // pinned, built afresh and from the layer cache alike.
    let golden = work.join("golden");
    std::fs::create_dir(&golden).unwrap();
    let manifest = std::fs::read_to_string(work.join("marqo-base.toml")).unwrap();
    let mirror = regex::Regex::new(r#"mirror = "[^"]*"\nkeyring = "[^"]*""#).unwrap();
    let manifest = mirror.replace(&manifest, r#"mirror = "http://127.0.0.1:9/debian""#);
    std::fs::write(golden.join("marqo-base.toml"), manifest.as_bytes()).unwrap();
    std::fs::write(golden.join("requirements.in"), "--index-url http://127.0.0.1:9/simple\nfast\n").unwrap();
    for name in ["constraints.txt", "build-constraints.txt"] {
        std::fs::copy(work.join(name), golden.join(name)).unwrap();
    }
    let mut lock = lockfile::Lock::read(&work.join("marqo-base.lock")).unwrap();
    lock.inputs = lockfile::Inputs::read(&golden.join("marqo-base.toml")).unwrap();
    lock.write_atomic(&golden.join("marqo-base.lock")).unwrap();
    for (out, extra) in [("golden-fresh", "--no-cache"), ("golden-cached", "--tag=latest")] {
        let manifest = golden.join("marqo-base.toml");
        ctx.run(&["build", "--offline", extra, "--manifest", manifest.to_str().unwrap(), "--oci", out])
            .success();
        let index = std::fs::read_to_string(work.join(out).join("index.json")).unwrap();
        let debian: Vec<String> =
            ["amd64", "arm64"].iter().map(|arch| layer_digests(&work, out, arch)[0].clone()).collect();
        let want: Vec<String> =
            golden_layers.iter().map(|(_, layers)| format!("sha256:{}", layers[0])).collect();
        assert_eq!(debian, want, "{out}: the Debian layers");
        assert!(index.contains(golden_index), "{out}: {index}");
    }
}

/// The image index of [`golden_layer_digests`]'s portless build.
const GOLDEN_INDEX: &str = "sha256:ea8f87cceee83d4b58dc06f18ec16280437252e5c0c2c0a5e5db4951a33d7891";

/// [`GOLDEN_LAYERS`] and [`GOLDEN_INDEX`] of the build with `compile_bytecode = false`.
const GOLDEN_NO_BYTECODE: ([(&str, &[&str]); 2], &str) = (
    [
        (
            "amd64",
            &[
                "0438ee635f4a7c9c3f06d0e0b82b0127829a082e97067ff3109e9496aa3612fd",
                "d2d674ae0603d0c06234734cc933f1eda6edb896ae8ca717fe1f65b353259d50",
                "3b3b7bb3551d330a79c450f86ddb670c314a2fb0ac5612ac2d350fc856590e68",
            ],
        ),
        (
            "arm64",
            &[
                "eb6ec2b3e45fbb63d54e747e2b12139ef86fa8f205f6dd75c18bce10d3a6a0ab",
                "1df22027eecbf15b52a4693cfa85b7e1475a4094091d76eaefd94806c77268e6",
                "3b3b7bb3551d330a79c450f86ddb670c314a2fb0ac5612ac2d350fc856590e68",
            ],
        ),
    ],
    "sha256:2ae66ae93b1fe20e9dfc1dc0954cb80bd78cb80f01ccb1042d4320eebfe1ba3d",
);

/// Per platform, in image order: the `.deb`s, then the wheel buckets (the bucket holding
/// only `six`, the same wheel on both platforms, is the same layer on both).
const GOLDEN_LAYERS: [(&str, &[&str]); 2] = [
    (
        "amd64",
        &[
            "0438ee635f4a7c9c3f06d0e0b82b0127829a082e97067ff3109e9496aa3612fd",
            "117cff9ffedd5fe3659e64b039a272f5e54bd76953fc961f1e435cd2b2cbef42",
            "2bd0b3a0a4444202f6b5a30c6992be7b747c67742eb9abb1c65f48d4e5b7de24",
        ],
    ),
    (
        "arm64",
        &[
            "eb6ec2b3e45fbb63d54e747e2b12139ef86fa8f205f6dd75c18bce10d3a6a0ab",
            "471adf6faa7164905a77ee2235067a4fcb6c47abe5321fb299edf3d227037f34",
            "2bd0b3a0a4444202f6b5a30c6992be7b747c67742eb9abb1c65f48d4e5b7de24",
        ],
    ),
];

/// Packages whose data.tar headers give some paths owners other than root's, as real ones
/// do: base-passwd's account files (whose ids the image gets), setgid `shadow` tools (one
/// hard-linked, one symlinked to), a `mail` group that the build machine's tar wrote with
/// another id than the image's (the name decides, as in dpkg), owners the image does not
/// know (their ids stand), a directory two packages ship with different modes (the first
/// one unpacked keeps it, as dpkg leaves an existing directory alone), and redis-tools,
/// whose postinst gives its directories to the `redis` system user and whose config file
/// has a statoverride.
fn owners_world() -> World {
    apt::require_tools();
    let repo = Repo::new();
    let (work, pool) = (repo.dir.path().join("build"), repo.pool());
    for arch in ["amd64", "arm64"] {
        Deb::new("base-passwd", "3.5.52")
            .arch(arch)
            .file(
                "/usr/share/base-passwd/passwd.master",
                "root:x:0:0:root:/root:/bin/bash\nmail:x:8:8:mail:/var/mail:/usr/sbin/nologin\n\
                 nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                0o644,
            )
            .file(
                "/usr/share/base-passwd/group.master",
                "root:x:0:\nadm:x:4:\ntty:x:5:\nmail:x:8:\nshadow:x:42:\nstaff:x:50:\nnogroup:x:65534:\n",
                0o644,
            )
            .build(&work, &pool);
        Deb::new("base-files", "11.1")
            .arch(arch)
            .file("/etc/debian_version", "11.1\n", 0o644)
            .dir("/root", 0o700)
            .dir("/tmp", 0o1777)
            .dir("/var/local", 0o2775)
            .owned("/var/local", "root", 0, "staff", 50)
            .dir("/var/mail", 0o2775)
            .owned("/var/mail", "root", 0, "mail", 1234)
            .build(&work, &pool);
        Deb::new("shadow-tools", "1")
            .arch(arch)
            .file("/usr/bin/chage", &format!("#!/bin/false {arch}\n"), 0o2755)
            .owned("/usr/bin/chage", "root", 0, "shadow", 42)
            .hardlink("/usr/bin/chage-again", "/usr/bin/chage")
            .symlink("/usr/bin/chage-link", "chage")
            .owned("/usr/bin/chage-link", "root", 0, "shadow", 42)
            .file("/usr/bin/su-test", "#!/bin/false\n", 0o4755)
            .file("/usr/lib/unknown-owner", "x\n", 0o640)
            .owned("/usr/lib/unknown-owner", "nosuchuser", 4321, "nosuchgroup", 4322)
            .dir("/var/local", 0o755)
            .build(&work, &pool);
        Deb::new("redis-tools", "6.0.16-1")
            .arch(arch)
            .file("/etc/redis/redis.conf", "bind 127.0.0.1\n", 0o644)
            .control_file("conffiles", "/etc/redis/redis.conf\n", 0o644)
            .dir("/var/lib/redis", 0o755)
            .build(&work, &pool);
    }
    repo.publish("stable");
    let apt_server = AptServer::start(repo.root());
    let ctx = TestContext::new();
    ctx.write(
        "marqo-base.toml",
        &format!(
            "[image]\nrepository = \"example/owners\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n\
             [debian]\nsuite = \"stable\"\nmirror = \"{}\"\nkeyring = \"{}\"\nessential = false\n\
             packages = [\"base-passwd\", \"base-files\", \"shadow-tools\", \"redis-tools\"]\n",
            apt_server.url(),
            repo.keyring.display()
        ),
    );
    World { index: None, apt: apt_server, repo, ctx }
}

#[test]
fn debian_layers_have_the_owners_and_modes_dpkg_gives_whoever_builds() {
    let w = owners_world();
    let ctx = &w.ctx;
    let work = ctx.work();
    ctx.run(&["lock"]).success();
    ctx.run(&["build", "--oci", "out"]).success();
    for arch in ["amd64", "arm64"] {
        let layer = check_debian_layer_owners(&work, "out", arch, &ctx.cache());
        // What the comparison implies, spelled out for the shapes this world has.
        let want = [
            ("usr/bin/chage", "-rwxr-sr-x", "0/42"),
            ("usr/bin/chage-link", "lrwxrwxrwx", "0/42"),
            ("usr/bin/su-test", "-rwsr-xr-x", "0/0"),
            ("usr/lib/unknown-owner", "-rw-r-----", "4321/4322"),
            ("var/mail", "drwxrwsr-x", "0/8"),
            ("var/local", "drwxrwsr-x", "0/50"),
            ("tmp", "drwxrwxrwt", "0/0"),
            ("root", "drwx------", "0/0"),
            ("etc/redis", "drwxrws---", "100/100"),
            ("etc/redis/redis.conf", "-rw-r-----", "100/100"),
            ("var/lib/redis", "drwxr-x---", "100/100"),
            ("var/log/redis", "drwxr-s---", "100/4"),
            ("etc/shadow", "-rw-r-----", "0/42"),
        ];
        for (path, mode, owner) in want {
            let got = layer.get(path).map(|(m, o)| (m.as_str(), o.as_str()));
            assert_eq!(got, Some((mode, owner)), "{arch}: {path}");
        }
        // Both names of the hard-linked file: one carries the content, one links to it.
        let again = &layer["usr/bin/chage-again"];
        assert_eq!((&again.0[1..], again.1.as_str()), ("rwxr-sr-x", "0/42"), "{arch}");
    }

    // The same build by an unprivileged user (which cannot chown, and whose setgid bits the
    // kernel would drop on files of others' groups): the same layers, byte for byte.
    assert_eq!(
        tool(&work, "id", &["-u"]).trim(),
        "0",
        "the build as an unprivileged user needs root to switch users (CI runs as root): run as root, or --skip this test"
    );
    let nobody = ctx.dir.path().join("nobody");
    for dir in ["home", "cache", "work"] {
        std::fs::create_dir_all(nobody.join(dir)).unwrap();
        std::os::unix::fs::chown(nobody.join(dir), Some(65534), Some(65534)).unwrap();
    }
    // Readable by anyone: the manifest, its lock and the repository's keyring.
    for dir in [ctx.dir.path(), work.as_path(), w.repo.dir.path()] {
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let template = ctx.command(&[]);
    let mut build = Command::new("setpriv");
    build.args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_marqo-base")]);
    for (key, value) in template.get_envs() {
        match value {
            Some(value) => build.env(key, value),
            None => build.env_remove(key),
        };
    }
    build
        .env("HOME", nobody.join("home"))
        .env("XDG_CACHE_HOME", nobody.join("home/.cache"))
        .env("XDG_CONFIG_HOME", nobody.join("home/.config"))
        .env("MARQO_BASE_CACHE_DIR", nobody.join("cache"))
        .current_dir(&work)
        .args(["build", "--oci"])
        .arg(nobody.join("work/out"));
    let run = common::Run::from(build.output().unwrap());
    run.success();
    for arch in ["amd64", "arm64"] {
        assert_eq!(
            layer_digests(&work, "out", arch),
            layer_digests(&nobody.join("work"), "out", arch),
            "{arch}: the unprivileged build's layers differ"
        );
    }
}

/// Checks the Debian layer of `arch` in the layout `layout` against the packages it was made
/// from, as dpkg would install them, with tools we did not write: for every path of every
/// locked `.deb` (read from `cache`), `dpkg-deb -c` gives the header's owner names and GNU
/// tar the ids; a name the image's own `/etc/passwd` or `/etc/group` (from the layer) knows
/// gives its id there, an unknown one leaves the header's id. A later package's file
/// replaces an earlier one's; a directory keeps what the first package gave it. The
/// statoverrides the image's dpkg database lists, and the chowns of the postinsts of the
/// system users' packages, go on top. The layer (GNU tar, `--numeric-owner`) must have
/// every path with the same mode string and owner. Returns the layer's paths' modes and
/// owners (`uid/gid`).
fn check_debian_layer_owners(
    work: &Path,
    layout: &str,
    arch: &str,
    cache: &Path,
) -> std::collections::BTreeMap<String, (String, String)> {
    use std::collections::BTreeMap;
    let digest = layer_digests(work, layout, arch)[0].trim_start_matches("sha256:").to_string();
    let blob = work.join(layout).join("blobs/sha256").join(digest);
    let blob = blob.to_str().unwrap();
    let mut layer = BTreeMap::new();
    for line in tool(work, "tar", &["--numeric-owner", "-tvzf", blob]).lines() {
        let (mode, owner, path) = listing_line(line);
        layer.insert(path, (mode, owner));
    }
    let read = |path: &str| tool(work, "tar", &["-xzOf", blob, path]);
    let ids = |text: &str| -> BTreeMap<String, String> {
        text.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                Some((f.first()?.to_string(), f.get(2)?.to_string()))
            })
            .rev() // the first line of a name wins
            .collect()
    };
    let (users, groups) = (ids(&read("etc/passwd")), ids(&read("etc/group")));

    let lock = lockfile::Lock::read(&work.join("marqo-base.lock")).unwrap();
    let platform: lockfile::TargetPlatform = format!("linux/{arch}").parse().unwrap();
    let mut debs: Vec<&lockfile::LockedDebian> = lock.debian_for(platform).collect();
    debs.sort_by_key(|d| d.name != "base-files");
    let mut want: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    let merged = layer.get("bin").is_some_and(|(mode, _)| mode.starts_with('l'));
    for deb in &debs {
        let file = cache.join("blobs/sha256").join(deb.file.sha256.hex());
        let file = file.to_str().unwrap();
        let named = tool(work, "dpkg-deb", &["-c", file]);
        let numeric =
            tool(work, "sh", &["-c", &format!("dpkg-deb --fsys-tarfile {file} | tar -tv --numeric-owner")]);
        assert_eq!(named.lines().count(), numeric.lines().count(), "{file}");
        for (by_name, by_id) in named.lines().zip(numeric.lines()) {
            let (mode, names, path) = listing_line(by_name);
            let (_, ids_, same) = listing_line(by_id);
            assert_eq!(path, same, "{file}");
            if path.is_empty() {
                continue;
            }
            let (user, group) = names.split_once('/').unwrap();
            let (uid, gid) = ids_.split_once('/').unwrap();
            let uid = users.get(user).map_or(uid, String::as_str);
            let gid = groups.get(group).map_or(gid, String::as_str);
            let entry = (mode.clone(), format!("{uid}/{gid}"), deb.name.clone());
            // A merged-/usr root (bookworm on): `bin`, `lib`, ... are links into `usr/`, and
            // what packages ship below them lands there.
            let path = match merged {
                true if mode.starts_with('d')
                    && debian::merged_usr_links(arch).iter().any(|(l, _)| *l == path) =>
                {
                    continue
                }
                true => debian::merged_usr_path(&path, arch).into_owned(),
                false => path,
            };
            if !(mode.starts_with('d') && want.contains_key(&path)) {
                want.insert(path, entry);
            }
        }
    }
    let set = |want: &mut BTreeMap<String, (String, String, String)>,
               path: &str,
               mode: u32,
               owner: String,
               why: &str| {
        let kind = layer.get(path).map_or('?', |(m, _)| m.chars().next().unwrap());
        want.insert(path.to_string(), (mode_string(kind, mode), owner, why.to_string()));
    };
    // dpkg writes no statoverride file when there is none.
    let overrides = if layer.contains_key("var/lib/dpkg/statoverride") {
        read("var/lib/dpkg/statoverride")
    } else {
        String::new()
    };
    for line in overrides.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let owner = format!("{}/{}", users[f[0]], groups[f[1]]);
        set(
            &mut want,
            f[3].trim_start_matches('/'),
            u32::from_str_radix(f[2], 8).unwrap(),
            owner,
            "statoverride",
        );
    }
    // base-files' postinst moves /var/run and /var/lock to /run (bookworm's ships them as
    // directories).
    for path in ["var/run", "var/lock"] {
        if layer.get(path).is_some_and(|(mode, _)| mode.starts_with('l')) {
            set(&mut want, path, 0o777, "0/0".to_string(), "base-files postinst");
        }
    }
    // What the postinsts of Debian's redis-tools (`adduser --system redis`) chown and chmod.
    if debs.iter().any(|d| d.name == "redis-tools") {
        let redis = |group: &str| format!("{}/{}", users["redis"], groups[group]);
        set(&mut want, "var/log/redis", 0o2750, redis("adm"), "redis-tools postinst");
        set(&mut want, "var/lib/redis", 0o750, redis("redis"), "redis-tools postinst");
        set(&mut want, "etc/redis", 0o2770, redis("redis"), "redis-tools postinst");
    }
    let mut wrong = Vec::new();
    for (path, (mode, owner, from)) in &want {
        // Which name of a hard-linked file carries the content is the archive's choice.
        let same_kind = |m: &str| m.replacen('h', "-", 1);
        match layer.get(path) {
            Some((m, o)) if same_kind(m) == same_kind(mode) && o == owner => {}
            got => wrong.push(format!("{path}: {from} gives {mode} {owner}, the layer has {got:?}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "{arch}: {} of {} paths differ:\n{}",
        wrong.len(),
        want.len(),
        wrong.join("\n")
    );
    eprintln!("{arch}: {} paths of {} packages have dpkg's modes and owners", want.len(), debs.len());
    layer
}

/// Mode string, `uid/gid` (or `user/group`) and path (no `./`, no trailing `/`, no link
/// target) of a line of `tar -tv` or `dpkg-deb -c`.
fn listing_line(line: &str) -> (String, String, String) {
    let fields: Vec<&str> = line.splitn(6, ' ').filter(|f| !f.is_empty()).collect();
    let mut rest = line;
    // mode, owner, size, date, time: then the path.
    for _ in 0..5 {
        rest = rest.trim_start();
        rest = &rest[rest.find(' ').unwrap()..];
    }
    let mut path = rest.trim_start();
    for sep in [" -> ", " link to "] {
        if let Some((p, _)) = path.split_once(sep) {
            path = p;
        }
    }
    let path = path.trim_start_matches("./").trim_end_matches('/').to_string();
    (fields[0].to_string(), fields[1].to_string(), path)
}

/// `ls -l`'s mode string of a `kind` (`d`, `-`, `l`) with permission bits `mode`.
fn mode_string(kind: char, mode: u32) -> String {
    let mut s = String::from(kind);
    for (shift, special, set, unset) in [(6, 0o4000, 's', 'S'), (3, 0o2000, 's', 'S'), (0, 0o1000, 't', 'T')]
    {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(match (bits & 1 != 0, mode & special != 0) {
            (true, true) => set,
            (false, true) => unset,
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// Runs openssl in `dir`.
fn openssl(dir: &Path, args: &[&str]) -> String {
    tool(dir, "openssl", args)
}

/// Whether `program` can be started.
fn available(program: &str) -> bool {
    Command::new(program).arg("-help").output().is_ok()
}

/// A Debian set whose scripts do things the build replicates and things it does not, a CA
/// of its own and one the manifest adds, Java's truststore and a real shared library: built
/// for amd64 and checked with `-v`, keytool, openssl and ldconfig. Then the manifest's
/// certificate is changed (the lock goes stale, the Debian layer is rebuilt) and broken (each
/// error names the file and what to do).
#[test]
fn maintainer_scripts_local_certificates_and_ld_so_cache() {
    apt::require_tools();
    let repo = Repo::new();
    let (work, pool) = (repo.dir.path().join("build"), repo.pool());
    let certs = repo.dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    openssl(
        &certs,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Distro Root",
            "-keyout",
            "distro.key",
            "-out",
            "distro.crt",
        ],
    );
    let distro = std::fs::read_to_string(certs.join("distro.crt")).unwrap();
    let libz = ["/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1"]
        .iter()
        .find_map(|p| std::fs::canonicalize(p).ok());
    let mut libc_bin = Deb::new("libc-bin", "2.31-13")
        .arch("amd64")
        .file("/etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n", 0o644)
        .file("/etc/ld.so.conf.d/libc.conf", "/usr/local/lib\n", 0o644);
    if let Some(libz) = &libz {
        let name = libz.file_name().unwrap().to_string_lossy().into_owned();
        libc_bin = libc_bin
            .file_bytes(&format!("/usr/lib/x86_64-linux-gnu/{name}"), &std::fs::read(libz).unwrap(), 0o644)
            .symlink("/usr/lib/x86_64-linux-gnu/libz.so.1", &name);
    }
    libc_bin.build(&work, &pool);
    Deb::new("tool", "1")
        .arch("amd64")
        .file("/usr/bin/tool-real", "#!/bin/sh\n", 0o755)
        .control_file(
            "postinst",
            "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n\
             \tupdate-alternatives --install /usr/bin/tool tool /usr/bin/tool-real 10\n\
             \tupdate-mime-database /usr/share/mime\n\
             \tdeb-systemd-helper enable tool.service\n\
             \trm -f /etc/tool.conf.dpkg-old\nfi\n",
            0o755,
        )
        .build(&work, &pool);
    Deb::new("ca-certificates", "20210119")
        .file("/usr/share/ca-certificates/distro/Distro_Root.crt", &distro, 0o644)
        .control_file("postinst", "#!/bin/sh\nset -e\nupdate-ca-certificates --fresh\n", 0o755)
        .build(&work, &pool);
    Deb::new("ca-certificates-java", "20190909")
        .depends("ca-certificates")
        .file("/etc/default/cacerts", "#storepass=''\ncacerts_updates=yes\n", 0o644)
        .file("/etc/ssl/certs/java/.placeholder", "", 0o644)
        .control_file("postinst", "#!/bin/sh\nset -e\nchmod 600 /etc/default/cacerts || true\n", 0o755)
        .build(&work, &pool);
    repo.publish("stable");
    let server = AptServer::start(repo.root());

    let ctx = TestContext::new();
    std::fs::create_dir(ctx.work().join("certs")).unwrap();
    openssl(
        &ctx.work().join("certs"),
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=My   Private  CA",
            "-keyout",
            "my-ca.key",
            "-out",
            "my-ca.pem",
        ],
    );
    let manifest = format!(
        "[image]\nplatforms = [\"linux/amd64\"]\n\n[debian]\nsuite = \"stable\"\nmirror = \"{}\"\nkeyring = \"{}\"\n\
         essential = false\npackages = [\"libc-bin\", \"tool\", \"ca-certificates-java\"]\n\
         ca_certificates = [\"certs/my-ca.pem\"]\n",
        server.url(),
        repo.keyring.display()
    );
    ctx.write("marqo-base.toml", &manifest);
    ctx.run(&["lock"]).success();
    let run = ctx.run(&["-v", "build", "--oci", "out"]);
    run.success();

    // -v: a line per action of each script, with what became of it; then one summary.
    for want in [
        "tool postinst:4: update-alternatives --install /usr/bin/tool tool /usr/bin/tool-real 10: replicated \
         (/var/lib/dpkg/alternatives/tool has it)",
        "tool postinst:5: update-mime-database /usr/share/mime: not replicated (update-mime-database is not run)",
        "tool postinst:6: deb-systemd-helper enable tool.service: not needed in a container",
        "tool postinst:7: rm -f /etc/tool.conf.dpkg-old: nothing to do on a fresh install",
        "ca-certificates postinst:3: update-ca-certificates --fresh: replicated",
        "ca-certificates-java postinst:3: chmod 600 /etc/default/cacerts: replicated (/etc/default/cacerts has mode 600)",
    ] {
        assert!(run.stderr.contains(want), "no `{want}` in:\n{}", run.stderr);
    }
    assert!(
        run.stderr.contains(
            "maintainer scripts: 3 actions replicated, 1 not replicated in 1 packages (build -v lists them); \
             1 not needed in a container, 1 with nothing to do on a fresh install (linux/amd64)"
        ),
        "{}",
        run.stderr
    );
    // Without -v, the summary only; from the layer cache, the same summary.
    let again = ctx.run(&["build", "--oci", "again"]);
    again.success();
    assert!(again.stderr.contains("Reusing 1 of 1 layers"), "{}", again.stderr);
    assert!(
        again.stderr.contains("maintainer scripts: 3 actions replicated, 1 not replicated"),
        "{}",
        again.stderr
    );
    assert!(!again.stderr.contains("update-mime-database"), "{}", again.stderr);

    let wd = ctx.work();
    tool(&wd, "umoci", &["unpack", "--rootless", "--image", "out:latest", "bundle"]);
    let root = wd.join("bundle/rootfs");
    let local = std::fs::read_to_string(wd.join("certs/my-ca.pem")).unwrap();
    assert_eq!(
        std::fs::read_to_string(root.join("usr/local/share/ca-certificates/my-ca.crt")).unwrap(),
        local
    );
    let bundle = std::fs::read_to_string(root.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert_eq!(bundle, format!("{distro}{local}"), "Debian's certificates first, then the local ones");
    // The hash link of each, as openssl names it.
    for (path, link_target) in
        [(wd.join("certs/my-ca.pem"), "my-ca.pem"), (certs.join("distro.crt"), "Distro_Root.pem")]
    {
        let hash = openssl(&wd, &["x509", "-noout", "-subject_hash", "-in", path.to_str().unwrap()]);
        let link = root.join(format!("etc/ssl/certs/{}.0", hash.trim()));
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new(link_target), "{}", link.display());
    }
    assert_eq!(
        std::fs::read_link(root.join("etc/ssl/certs/my-ca.pem")).unwrap(),
        Path::new("/usr/local/share/ca-certificates/my-ca.crt")
    );
    if available("keytool") {
        let listed = tool(
            &wd,
            "keytool",
            &[
                "-list",
                "-keystore",
                root.join("etc/ssl/certs/java/cacerts").to_str().unwrap(),
                "-storepass",
                "changeit",
            ],
        );
        assert!(listed.contains("Your keystore contains 2 entries"), "{listed}");
        assert!(
            listed.contains("debian:my-ca.pem,") && listed.contains("debian:distro_root.pem,"),
            "{listed}"
        );
    } else {
        eprintln!("keytool is missing (apt-get install default-jre-headless): the truststore's listing is not checked");
    }
    if let (Some(_), true) = (&libz, available("ldconfig")) {
        let cache = root.join("etc/ld.so.cache");
        let printed = tool(&wd, "ldconfig", &["-p", "-C", cache.to_str().unwrap()]);
        assert!(
            printed.contains("libz.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libz.so.1"),
            "{printed}"
        );
    } else {
        eprintln!("no libz.so.1 or ldconfig on this host: the ld.so.cache is not checked");
    }

    // A changed certificate makes the lock stale, and a new lock a new Debian layer.
    let first_layer = layer_digests(&wd, "out", "amd64")[0].clone();
    std::fs::rename(wd.join("certs/my-ca.pem"), wd.join("certs/old.pem")).unwrap();
    openssl(
        &wd.join("certs"),
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=New CA",
            "-keyout",
            "new.key",
            "-out",
            "my-ca.pem",
        ],
    );
    let check = ctx.run(&["lock", "--check"]);
    check.code(1);
    assert!(check.stderr.contains("`certs/my-ca.pem` changed"), "{}", check.stderr);
    ctx.run(&["build", "--oci", "stale"]).code(2);
    ctx.run(&["lock"]).success();
    ctx.run(&["build", "--oci", "new"]).success();
    assert_ne!(layer_digests(&wd, "new", "amd64")[0], first_layer);

    // Certificates that are not: each error names the file and what to do, before anything
    // is resolved.
    for (content, says, hint) in [
        ("not a certificate at all\n", "no `-----BEGIN CERTIFICATE-----` block", "openssl x509"),
        (
            "-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----\n",
            "holds a PRIVATE KEY block",
            "never a private key",
        ),
        ("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n", "not base64", "PEM form"),
    ] {
        std::fs::write(wd.join("certs/my-ca.pem"), content).unwrap();
        let run = ctx.run(&["lock", "--offline"]);
        run.code(2);
        assert!(
            run.stderr.contains("certs/my-ca.pem") && run.stderr.contains(says),
            "{says}:\n{}",
            run.stderr
        );
        assert!(run.stderr.contains(hint), "{hint}:\n{}", run.stderr);
    }
    std::fs::remove_file(wd.join("certs/my-ca.pem")).unwrap();
    let run = ctx.run(&["lock", "--offline"]);
    run.code(2);
    assert!(
        run.stderr.contains("ca_certificates") && run.stderr.contains("certs/my-ca.pem"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("relative to the manifest"), "{}", run.stderr);
}

/// `build --format json`: one document on stdout, valid against docs/json/build.schema.json,
/// naming the index digest that the layout holds and each platform's manifest.
#[test]
fn build_reports_as_json() {
    let w = world();
    let ctx = &w.ctx;
    ctx.run(&["lock"]).success();
    let run = ctx.run(&["build", "--oci", "out", "--format", "json"]);
    run.success();
    common::validate_json("build", &run.stdout);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["kind"], "index");
    assert_eq!(doc["digest"], index_digest(&ctx.work().join("out"), "latest"), "{}", run.stdout);
    assert_eq!(doc["platforms"].as_array().unwrap().len(), 2, "{}", run.stdout);
    assert!(run.stderr.contains("Wrote out"), "messages stay on stderr: {}", run.stderr);
}

/// `cache prune` during a `build` (whose sdist's backend takes two seconds) waits for the
/// build to finish, says so, then prunes; the build's image is the one an undisturbed build
/// gives.
#[test]
fn prune_during_a_build_waits_and_the_build_stays_correct() {
    let sleeper = "import os, time\ntime.sleep(float(os.environ.get('TEST_BUILD_SLEEP', '0')))\n";
    let w = world_with(Some(slow_sdist().file("sleeper.py", sleeper).hook_imports("sleeper")));
    let ctx = &w.ctx;
    ctx.run(&["lock"]).success();
    ctx.run(&["build", "--oci", "reference"]).success();
    let reference = index_digest(&ctx.work().join("reference"), "latest");
    // The sdist is built again (its venv and wheel gone), slowly, while prune is asked for.
    ctx.run(&["cache", "clean", "build-envs"]).success();
    let build = ctx
        .command(&["build", "--oci", "out", "--no-cache"])
        .env("TEST_BUILD_SLEEP", "2")
        .spawn()
        .expect("start build");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ctx.cache().join("builds").exists() {
        assert!(std::time::Instant::now() < deadline, "the build never started on the sdist");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let prune = ctx.run(&["cache", "prune", "--older-than", "0s"]);
    let built: common::Run = build.wait_with_output().expect("wait for build").into();
    built.success();
    prune.success();
    assert!(prune.stderr.contains("Waiting for the other marqo-base processes"), "{}", prune.stderr);
    assert_eq!(index_digest(&ctx.work().join("out"), "latest"), reference);
    let size = ctx.run(&["cache", "size"]).stdout;
    let downloads = size.lines().find(|l| l.trim_start().starts_with("downloads")).unwrap();
    assert!(downloads.contains(" 0 files"), "the prune ran after the build: {size}");
}
