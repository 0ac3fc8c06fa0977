//! Software bills of materials: `build --sbom DIR` writes one document per platform (SPDX
//! 2.3, or CycloneDX 1.5), the image carries the SPDX one, and both list exactly the lock's
//! packages of their platform, with the licenses and source packages the packages declare.
//! Documents are checked by validators we did not write (`pyspdxtools` of spdx-tools,
//! cyclonedx-python-lib's JSON validator) in a throwaway venv.

#[path = "../../debian/tests/common/mod.rs"]
mod apt;
mod common;
#[path = "common/world.rs"]
mod world;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use world::world;

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The lock's `(kind, name, version)` of `platform`: `deb` and `pypi`.
fn locked(lock: &lockfile::Lock, platform: &str) -> BTreeSet<(String, String, String)> {
    let on = |platforms: &[lockfile::TargetPlatform]| platforms.iter().any(|p| p.to_string() == platform);
    let debs = lock
        .debian
        .iter()
        .filter(|d| on(&d.platforms))
        .map(|d| ("deb".into(), d.name.clone(), d.version.clone()));
    let wheels = lock
        .python
        .iter()
        .filter(|p| on(&p.platforms))
        .map(|p| ("pypi".into(), p.name.clone(), p.version.clone()));
    debs.chain(wheels).collect()
}

/// The `(kind, name, version)` of an SPDX document's packages that have a package URL.
fn spdx_packages(doc: &Value) -> BTreeSet<(String, String, String)> {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let purl = p["externalRefs"][0]["referenceLocator"].as_str()?;
            let kind = purl.strip_prefix("pkg:")?.split('/').next()?.to_string();
            Some((kind, p["name"].as_str()?.to_string(), p["versionInfo"].as_str()?.to_string()))
        })
        .collect()
}

/// The same of a CycloneDX document's components.
fn cyclonedx_packages(doc: &Value) -> BTreeSet<(String, String, String)> {
    doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| {
            let kind = c["purl"].as_str()?.strip_prefix("pkg:")?.split('/').next()?.to_string();
            Some((kind, c["name"].as_str()?.to_string(), c["version"].as_str()?.to_string()))
        })
        .collect()
}

/// The SPDX document inside the layout's image of `platform`: the file at
/// /usr/share/marqo-base/sbom.spdx.json of its last layer.
fn sbom_in_image(layout: &Path, platform: &str) -> Vec<u8> {
    let blob = |digest: &str| layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    let index = read_json(&layout.join("index.json"));
    let root = read_json(&blob(index["manifests"][0]["digest"].as_str().unwrap()));
    let (os, arch) = platform.split_once('/').unwrap();
    let image = root["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["os"] == os && m["platform"]["architecture"] == arch)
        .unwrap();
    let manifest = read_json(&blob(image["digest"].as_str().unwrap()));
    let last = manifest["layers"].as_array().unwrap().last().unwrap();
    let file = std::fs::File::open(blob(last["digest"].as_str().unwrap())).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut names = Vec::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if name == "usr/share/marqo-base/sbom.spdx.json" {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            return bytes;
        }
        names.push(name);
    }
    panic!("the last layer of {platform} holds {names:?}, not the SBOM");
}

/// A venv with the validators, or `None` with MARQO_BASE_SKIP_LIVE=1 (they come from the
/// package index).
fn validators(dir: &Path) -> Option<PathBuf> {
    if std::env::var_os("MARQO_BASE_SKIP_LIVE").is_some_and(|v| v == "1") {
        eprintln!(
            "MARQO_BASE_SKIP_LIVE=1: the SBOMs are not checked by pyspdxtools and cyclonedx-python-lib"
        );
        return None;
    }
    let venv = dir.join("venv");
    assert!(Command::new("python3").args(["-m", "venv"]).arg(&venv).status().unwrap().success());
    let pip = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "spdx-tools==0.8.5", "cyclonedx-python-lib[json-validation]==11.12.0"])
        .output()
        .unwrap();
    assert!(pip.status.success(), "{}", String::from_utf8_lossy(&pip.stderr));
    Some(venv)
}

fn check_spdx(venv: &Path, file: &Path) {
    let out = Command::new(venv.join("bin/pyspdxtools")).arg("-i").arg(file).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && !said.contains("invalid"), "{}: {said}", file.display());
}

fn check_cyclonedx(venv: &Path, file: &Path) {
    let script = "import sys\n\
                  from cyclonedx.schema import SchemaVersion\n\
                  from cyclonedx.validation.json import JsonStrictValidator\n\
                  error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())\n\
                  sys.exit(f'invalid: {error}' if error else 0)\n";
    let out = Command::new(venv.join("bin/python")).args(["-c", script]).arg(file).output().unwrap();
    assert!(out.status.success(), "{}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
}

/// Both platforms' SBOMs: valid (pyspdxtools; the CycloneDX validator), exactly the lock's
/// packages of the platform, with licenses from the packages' metadata and copyright files
/// and the Debian source package; the image's own copy is the same bytes; a build from an
/// empty cache and a warm one give byte-identical documents and the same image.
#[test]
fn sboms_list_the_locks_packages_and_are_reproducible() {
    let w = world();
    let ctx = &w.ctx;
    ctx.run(&["lock"]).success();
    let run = ctx.run(&["build", "--oci", "out", "--sbom", "sbom"]);
    run.success();
    assert!(run.stderr.contains("Wrote the SBOMs (SPDX 2.3) to sbom"), "{}", run.stderr);
    let lock = lockfile::Lock::read(&ctx.work().join("marqo-base.lock")).unwrap();
    let venv = validators(ctx.dir.path());
    for platform in ["linux/amd64", "linux/arm64"] {
        let file = ctx.work().join("sbom").join(format!("{}.spdx.json", platform.replace('/', "-")));
        let doc = read_json(&file);
        assert_eq!(spdx_packages(&doc), locked(&lock, platform), "{platform}");
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        assert_eq!(doc["creationInfo"]["created"], "1970-01-01T00:00:00Z", "no wall-clock time");
        let package = |name: &str| {
            doc["packages"].as_array().unwrap().iter().find(|p| p["name"] == name).cloned().unwrap()
        };
        assert_eq!(package("six")["licenseDeclared"], "MIT");
        assert_eq!(package("fast")["licenseDeclared"], "Apache-2.0");
        let libc = package("libc-test");
        assert_eq!(libc["licenseDeclared"], "LGPL-2.1-or-later AND (MIT OR LicenseRef-public-domain)");
        assert_eq!(libc["sourceInfo"], "built from the Debian source package libc-test-src 0.9-1");
        let arch = platform.split('/').nth(1).unwrap();
        assert_eq!(
            libc["externalRefs"][0]["referenceLocator"],
            format!("pkg:deb/debian/libc-test@1.0?arch={arch}&distro=stable&upstream=libc-test-src%400.9-1")
        );
        let libc_sha = lock.debian.iter().find(|d| d.name == "libc-test" && d.arch == arch).unwrap();
        assert_eq!(libc["checksums"][0]["checksumValue"], libc_sha.file.sha256.hex());
        assert_eq!(package("python3.9")["licenseDeclared"], "NOASSERTION", "not machine-readable");
        // The image CONTAINS each package; fast DEPENDS_ON six.
        let relations = doc["relationships"].as_array().unwrap();
        let contains = relations.iter().filter(|r| r["relationshipType"] == "CONTAINS").count();
        assert_eq!(contains, locked(&lock, platform).len());
        let id = |name: &str| package(name)["SPDXID"].clone();
        assert!(relations.iter().any(|r| r["relationshipType"] == "DEPENDS_ON"
            && r["spdxElementId"] == id("fast")
            && r["relatedSpdxElement"] == id("six")));
        assert!(relations.iter().any(|r| r["relationshipType"] == "DEPENDS_ON"
            && r["spdxElementId"] == id("python3.9")
            && r["relatedSpdxElement"] == id("libc-test")));
        assert_eq!(sbom_in_image(&ctx.work().join("out"), platform), std::fs::read(&file).unwrap());
        if let Some(venv) = &venv {
            check_spdx(venv, &file);
        }
    }
    let image = common_index(&ctx.work().join("out"));

    // Warm (every layer from the cache) and from an empty cache: the same bytes.
    ctx.run(&["build", "--oci", "warm", "--sbom", "warm-sbom"]).success();
    let empty = ctx.dir.path().join("empty-cache");
    let cold = ctx
        .command(&["build", "--oci", "cold", "--sbom", "cold-sbom"])
        .env("MARQO_BASE_CACHE_DIR", &empty)
        .output()
        .unwrap();
    common::Run::from(cold).success();
    for platform in ["linux-amd64", "linux-arm64"] {
        let name = format!("{platform}.spdx.json");
        let first = std::fs::read(ctx.work().join("sbom").join(&name)).unwrap();
        assert_eq!(
            std::fs::read(ctx.work().join("warm-sbom").join(&name)).unwrap(),
            first,
            "warm {platform}"
        );
        assert_eq!(
            std::fs::read(ctx.work().join("cold-sbom").join(&name)).unwrap(),
            first,
            "cold {platform}"
        );
    }
    assert_eq!(common_index(&ctx.work().join("warm")), image);
    assert_eq!(common_index(&ctx.work().join("cold")), image);

    // CycloneDX: the same packages, valid.
    ctx.run(&["build", "--oci", "cdx", "--sbom", "cdx-sbom", "--sbom-format", "cyclonedx"]).success();
    for platform in ["linux/amd64", "linux/arm64"] {
        let file = ctx.work().join("cdx-sbom").join(format!("{}.cdx.json", platform.replace('/', "-")));
        let doc = read_json(&file);
        assert_eq!(doc["specVersion"], "1.5");
        assert_eq!(cyclonedx_packages(&doc), locked(&lock, platform), "{platform}");
        if let Some(venv) = &venv {
            check_cyclonedx(venv, &file);
        }
    }
    assert_eq!(common_index(&ctx.work().join("cdx")), image, "the format of --sbom is not part of the image");
}

/// Bad `--sbom` paths are refused before anything is built.
#[test]
fn an_sbom_path_that_is_a_file_is_refused_first() {
    let w = world();
    let ctx = &w.ctx;
    ctx.run(&["lock"]).success();
    ctx.write("taken", "a file");
    let run = ctx.run(&["build", "--oci", "out", "--sbom", "taken"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--sbom taken is not a directory"), "{}", run.stderr);
    assert!(!ctx.work().join("out").exists(), "nothing built");
    let run = ctx.run(&["build", "--oci", "out", "--sbom-format", "cyclonedx"]);
    assert_eq!(run.code, 2, "--sbom-format needs --sbom: {}", run.stderr);
}

/// `push` attaches each platform's SBOM to its manifest as an OCI 1.1 artifact (found through
/// the `sha256-DIGEST` tag on docker-registry 2.8, which lacks the referrers API), before the
/// tag; the record lists them (valid against its schema); `pull --sbom` fetches the same
/// bytes `build --sbom` wrote; an image without one is refused before anything is pulled.
#[test]
fn pushed_sboms_are_attached_and_pulled_back() {
    let w = world();
    let ctx = &w.ctx;
    let registry = test_support::DockerRegistry::start();
    let repo = format!("{}/team/sbom", registry.host());
    ctx.run(&["lock"]).success();
    ctx.run(&["build", "--oci", "out", "--sbom", "built"]).success();
    let push = ctx.run(&["push", &repo, "--oci", "out", "--tag", "1", "--yes", "--record", "pushed.json"]);
    push.success();
    assert!(push.stderr.contains("SBOMs: 2, attached to their platform manifests"), "{}", push.stderr);
    assert!(push.stderr.contains("2 SBOMs attached"), "{}", push.stderr);
    let record = std::fs::read_to_string(ctx.work().join("pushed.json")).unwrap();
    common::validate_json("push", &record);
    let record: Value = serde_json::from_str(&record).unwrap();
    let attachments = record["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 2, "{record}");
    for (attachment, platform) in attachments.iter().zip(record["platforms"].as_array().unwrap()) {
        assert_eq!(attachment["subject"], platform["digest"]);
        assert_eq!(attachment["artifact_type"], "application/spdx+json");
        let subject = attachment["subject"].as_str().unwrap().replace(':', "-");
        assert_eq!(attachment["found_through"], format!("tag {subject}"));
        // What a referrers client reads from the fallback tag: an index of the artifact.
        let raw = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{repo}:{subject}"))
            .output()
            .unwrap();
        assert!(raw.status.success(), "{}", String::from_utf8_lossy(&raw.stderr));
        let index: Value = serde_json::from_slice(&raw.stdout).unwrap();
        assert_eq!(index["manifests"][0]["digest"], attachment["manifest"]);
        assert_eq!(index["manifests"][0]["artifactType"], "application/spdx+json");
        let raw = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{repo}@{}", attachment["manifest"].as_str().unwrap()))
            .output()
            .unwrap();
        let artifact: Value = serde_json::from_slice(&raw.stdout).unwrap();
        assert_eq!(artifact["subject"]["digest"], platform["digest"]);
        assert_eq!(artifact["layers"][0]["digest"], attachment["document"]);
    }
    // Pushed again: the artifacts are there already, the tag index is not grown.
    ctx.run(&["push", &repo, "--oci", "out", "--tag", "2", "--yes"]).success();
    let pull = ctx.run(&[
        "pull",
        &format!("{repo}:2"),
        "--oci",
        "pulled",
        "--sbom",
        "pulled-sbom",
        "--format",
        "json",
    ]);
    pull.success();
    common::validate_json("pull", &pull.stdout);
    for name in ["linux-amd64.spdx.json", "linux-arm64.spdx.json"] {
        assert_eq!(
            std::fs::read(ctx.work().join("pulled-sbom").join(name)).unwrap(),
            std::fs::read(ctx.work().join("built").join(name)).unwrap(),
            "{name}"
        );
    }
    let subject = attachments[0]["subject"].as_str().unwrap().replace(':', "-");
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{repo}:{subject}"))
        .output()
        .unwrap();
    let index: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");

    // An image made elsewhere has none: refused before its blobs are fetched.
    test_support::TestImage::new(7).platforms(&["linux/amd64"]).write(&ctx.work().join("plain"), "latest");
    let plain = format!("{}/team/plain", registry.host());
    ctx.run(&["push", &plain, "--oci", "plain", "--tag", "1", "--yes"]).success();
    let refused = ctx.run(&["pull", &format!("{plain}:1"), "--oci", "plain-pulled", "--sbom", "plain-sbom"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("(linux/amd64) has no SBOM attached"), "{}", refused.stderr);
    assert!(!refused.stderr.contains("Pulling"), "nothing downloaded: {}", refused.stderr);
    assert!(!ctx.work().join("plain-pulled").exists());
}

fn common_index(layout: &Path) -> String {
    read_json(&layout.join("index.json"))["manifests"][0]["digest"].as_str().unwrap().to_string()
}
