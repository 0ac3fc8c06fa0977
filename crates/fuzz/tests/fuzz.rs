//! One test per fuzz target: the checked-in corpus (regressions included), then mutations
//! for a fixed budget. `FUZZ_SECONDS=N` runs each target for N seconds instead and prints
//! the executions (see the crate docs).
//!
//! The seeds come from the generators the other tests use; `cargo test -p fuzz --
//! --ignored write_seed_corpus` writes them again into `corpus/`.

// The .deb and signed-repository builders of the `debian` crate's own tests.
#[path = "../../debian/tests/common/mod.rs"]
mod apt;

use std::path::PathBuf;
use std::time::Duration;

use fuzz::{Budget, Target, TARGETS};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn budget() -> Budget {
    match std::env::var("FUZZ_SECONDS").ok().and_then(|s| s.parse::<u64>().ok()) {
        Some(seconds) => Budget { executions: u64::MAX, time: Duration::from_secs(seconds) },
        // CI: all targets together well within two minutes on two cores in a debug build.
        None => Budget { executions: 3_000, time: Duration::from_secs(4) },
    }
}

fn target(name: &str) -> &'static Target {
    TARGETS.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no target {name}"))
}

fn check(name: &str) {
    let target = target(name);
    let corpus = crate_dir().join("corpus").join(name);
    let started = std::time::Instant::now();
    let report = fuzz::fuzz(target, &corpus, &crate_dir().join("crashes"), budget(), 0x6d62_6675_7a7a);
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{name}: {} executions in {secs:.1}s ({:.0}/s)",
        report.executions,
        report.executions as f64 / secs
    );
    assert!(
        report.crashes.is_empty(),
        "{name}: {} input(s) panicked, kept in {:?}; fix the parser, then move them into {}",
        report.crashes.len(),
        report.crashes,
        corpus.display()
    );
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { check(stringify!($name)) })*

        #[test]
        fn every_target_has_a_test_and_seeds() {
            let tested = [$(stringify!($name)),*];
            for t in TARGETS {
                assert!(tested.contains(&t.name), "{} has no test", t.name);
                let seeds = std::fs::read_dir(crate_dir().join("corpus").join(t.name)).map_or(0, |d| d.count());
                assert!(seeds > 0, "{} has no corpus", t.name);
            }
            assert_eq!(tested.len(), TARGETS.len());
        }
    };
}

targets!(
    changelog,
    requirements_txt,
    pep508,
    wheel_metadata,
    wheel_zip,
    wheel_texts,
    simple_html,
    simple_json,
    deb822_packages,
    release,
    inrelease_armor,
    dpkg_version,
    deb_archive,
    oci_manifest,
    www_authenticate,
    docker_config,
    image_reference,
    lockfile,
    maintainer_script,
    pem_certificate,
    sigstore,
    elf_shared_object,
    bounded_decompression,
);

fn seed(target: &str, name: &str, bytes: &[u8]) {
    let dir = crate_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn repo_file(path: &str) -> Vec<u8> {
    std::fs::read(crate_dir().join("../..").join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The body of `GET path` from a test server, with `accept`.
fn http_get(addr: std::net::SocketAddr, path: &str, accept: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    let at = reply.windows(4).position(|w| w == b"\r\n\r\n").expect("a header end") + 4;
    reply[at..].to_vec()
}

#[test]
#[ignore = "writes the seed corpus; run by hand"]
fn write_seed_corpus() {
    for (name, path) in [
        ("marqo-requirements.in", "examples/marqo-base/requirements.in"),
        ("default-index.in", "examples/marqo-base/requirements-default-index.in"),
        ("build-constraints.txt", "examples/marqo-base/build-constraints.txt"),
        ("quickstart.in", "examples/quickstart/requirements.in"),
        ("fixture.in", "crates/lockfile/tests/fixtures/marqo-base/requirements/requirements.in"),
    ] {
        let bytes = repo_file(path);
        seed("requirements_txt", name, &bytes);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        for (i, line) in
            text.lines().filter(|l| !l.starts_with(['#', '-']) && !l.trim().is_empty()).enumerate().take(6)
        {
            seed("pep508", &format!("{name}-{i}"), line.as_bytes());
        }
    }
    seed(
        "pep508",
        "nested",
        b"demo; ((python_version >= \"3.9\" and (platform_machine == 'x86_64' or extra == 'x')))",
    );
    seed(
        "pep508",
        "deep",
        format!("demo; {}python_version > '3'{}", "(".repeat(20_000), ")".repeat(20_000)).as_bytes(),
    );
    for (name, path) in [
        ("quickstart.toml", "examples/quickstart/marqo-base.toml"),
        ("marqo.toml", "examples/marqo-base/marqo-base.toml"),
        ("quickstart.lock", "examples/quickstart/marqo-base.lock"),
    ] {
        seed("lockfile", name, &repo_file(path));
    }

    // Wheels, their METADATA, RECORD, WHEEL and entry points, and index pages, as the
    // test index publishes them.
    let index = test_support::Index::new().pep658(true);
    test_support::Wheel::new("demo", "1.0")
        .requires("other>=1; python_version < \"3.10\"")
        .extra("http", &["aiohttp"])
        .tag("cp39-cp39-manylinux2014_x86_64")
        .publish(&index);
    test_support::Wheel::new("demo", "2.0").requires_python(">=3.8").publish(&index);
    test_support::Sdist::new("demo", "0.9").publish(&index);
    for entry in std::fs::read_dir(index.find_links_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        if name.ends_with(".metadata") {
            seed("wheel_metadata", &name, &bytes);
        } else if name.ends_with(".whl") {
            seed("wheel_zip", &name, &bytes);
            let mut zip = zip_members(&bytes);
            for (member, text) in zip.iter().filter(|(m, _)| m.ends_with("METADATA")) {
                seed("wheel_metadata", &format!("{name}-{}", member.replace('/', "_")), text);
            }
            zip.retain(|(member, _)| {
                member.ends_with("RECORD") || member.ends_with("WHEEL") || member.ends_with(".txt")
            });
            for (member, text) in zip {
                seed("wheel_texts", &format!("{name}-{}", member.replace('/', "_")), &text);
            }
        }
    }
    seed(
        "wheel_texts",
        "entry_points.txt",
        b"[console_scripts]\ndemo = demo.cli:main\n[gui_scripts]\nx = a.b:c [extra]\n",
    );
    seed("simple_html", "demo.html", &std::fs::read(index.root().join("simple/demo/index.html")).unwrap());
    let server = index.serve();
    seed(
        "simple_json",
        "demo.json",
        &http_get(server.addr(), "/simple/demo/", "application/vnd.pypi.simple.v1+json"),
    );

    // A signed repository: Packages, Release, InRelease, a .deb.
    let repo = apt::Repo::new();
    let work = repo.dir.path().join("build");
    let filename = apt::Deb::new("hello", "1:2.10-3+b1")
        .arch("amd64")
        .depends("libc6 (>= 2.34), libfoo1 | libbar2:any, base-files")
        .field("Multi-Arch", "foreign")
        .field("Provides", "greeting (= 1)")
        .file("/usr/bin/hello", "#!/bin/sh\n", 0o755)
        .control_file("postinst", "#!/bin/sh\nexit 0\n", 0o755)
        .build(&work, &repo.pool());
    repo.publish("stable");
    let dists = repo.root().join("dists/stable");
    seed("deb822_packages", "Packages", &std::fs::read(dists.join("main/binary-amd64/Packages")).unwrap());
    seed("release", "Release", &std::fs::read(dists.join("Release")).unwrap());
    seed("inrelease_armor", "InRelease", &std::fs::read(dists.join("InRelease")).unwrap());

    seed("deb_archive", "hello.deb", &std::fs::read(repo.pool().join(&filename)).unwrap());
    for (i, v) in
        ["1:2.10-3+b1", "2.10~rc1-1", "0.9+git20200101.abc-0ubuntu1~18.04", "1.0\nhello"].iter().enumerate()
    {
        seed("dpkg_version", &format!("v{i}"), v.as_bytes());
    }

    // OCI: a two-platform layout's index, manifests and config.
    let dir = tempfile::tempdir().unwrap();
    let image = test_support::TestImage::new(1).layers(&[512]).write(&dir.path().join("img"), "latest");
    seed("oci_manifest", "index.json", &std::fs::read(dir.path().join("img/index.json")).unwrap());
    let blobs = dir.path().join("img/blobs/sha256");
    let _ = image;
    for entry in std::fs::read_dir(&blobs).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if bytes.first() == Some(&b'{') {
            seed("oci_manifest", &path.file_name().unwrap().to_string_lossy()[..16], &bytes);
        }
    }
    for (i, header) in [
        "Bearer realm=\"http://127.0.0.1:5000/token\",service=\"registry\",scope=\"repository:a/b:pull,push\"",
        "Basic realm=\"test-realm\"",
        "</v2/a/tags/list?last=b&n=2>; rel=\"next\"",
    ]
    .iter()
    .enumerate()
    {
        seed("www_authenticate", &format!("h{i}"), header.as_bytes());
    }
    seed(
        "docker_config",
        "config.json",
        br#"{"auths":{"127.0.0.1:5000":{"auth":"dGVzdHVzZXI6dGVzdHBhc3M="},"ghcr.invalid":{"identitytoken":"x"}},"credHelpers":{"ecr.invalid":"ecr-login"}}"#,
    );
    for (i, r) in [
        "127.0.0.1:5000/marqo-base:42",
        "ubuntu",
        "localhost/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "[::1]:5000/x:tag",
    ]
    .iter()
    .enumerate()
    {
        seed("image_reference", &format!("r{i}"), r.as_bytes());
    }
    let key = sign::PrivateKey::generate().unwrap();
    seed("sigstore", "private.key", key.to_encrypted_pem(b"x").unwrap().as_bytes());
    seed("sigstore", "public.pem", key.public_key().to_pem().as_bytes());
    let payload = sign::Payload {
        docker_reference: "127.0.0.1:5000/team/base".into(),
        manifest_digest: oci::Digest::of_bytes(b"index"),
    };
    seed("sigstore", "payload.json", &payload.to_bytes());
}

/// The members of a zip, read with the `zip` crate the wheel installer uses.
fn zip_members(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut member = archive.by_index(i).unwrap();
            let mut out = Vec::new();
            member.read_to_end(&mut out).unwrap();
            (member.name().to_string(), out)
        })
        .collect()
}
