//! A registry layer-cache entry is trusted no further than its key (issue 30, class 8): an
//! entry whose digests all check out but whose layer holds what our layers never hold (a
//! device node, a `..` path, an absolute path) is refused and the layer built here; and the
//! build names each layer it took from the registry cache.
//!
//! Against a real `docker-registry` on 127.0.0.1; the poisoned entries are written with
//! `curl`, as anyone with push rights to the cache repository could.

use std::path::Path;
use std::process::Command;

use sha2::Digest as _;
use test_support::scripted::{Reply, Server};
use test_support::DockerRegistry;

use crate::common::{Run, TestContext};

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A project whose image is one `[[file]]` layer (a download pinned by sha256, so cached by
/// key) and its SBOM's, locked; with the server of the download.
fn project() -> (TestContext, Server) {
    let ctx = TestContext::new();
    let body = b"key = value\n";
    let server = Server::start(|req| match req.path.as_str() {
        "/app.conf" => Reply::ok(&b"key = value\n"[..]),
        _ => Reply::status(404),
    });
    ctx.write(
        "marqo-base.toml",
        &format!(
            "[image]\nplatforms = [\"linux/amd64\"]\n\n[[file]]\nurl = \"{}\"\nsha256 = \"{}\"\nto = \"/etc/app.conf\"\n",
            server.url("/app.conf"),
            sha256_hex(body)
        ),
    );
    ctx.run(&["lock"]).success();
    (ctx, server)
}

/// `marqo-base ARGS` with the cache directory `cache` (a new name is an empty disk).
fn runner(ctx: &TestContext, cache: &str, args: &[&str]) -> Run {
    let mut cmd = ctx.command(args);
    cmd.env("MARQO_BASE_CACHE_DIR", ctx.work().join(cache)).env_remove("DOCKER_CONFIG");
    Run::from(cmd.output().expect("run marqo-base"))
}

fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl").arg("-fsS").args(args).output().expect("run curl");
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// The one `layer-…` tag of the cache repository and its manifest.
fn the_entry(registry: &DockerRegistry) -> (String, serde_json::Value) {
    let tags: serde_json::Value =
        serde_json::from_slice(&curl(&[&format!("{}/v2/team/cache/tags/list", registry.url())])).unwrap();
    let layer_tags: Vec<&str> = tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .filter(|t| t.starts_with("layer-"))
        .collect();
    let [tag] = layer_tags.as_slice() else { panic!("one layer entry expected: {tags}") };
    let manifest = curl(&[
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &format!("{}/v2/team/cache/manifests/{tag}", registry.url()),
    ]);
    (tag.to_string(), serde_json::from_slice(&manifest).unwrap())
}

/// Uploads `blob` into the cache repository (a monolithic upload).
fn put_blob(registry: &DockerRegistry, blob: &[u8], dir: &Path) -> String {
    let digest = format!("sha256:{}", sha256_hex(blob));
    let headers = String::from_utf8(curl(&[
        "-X",
        "POST",
        "-D",
        "-",
        "-o",
        "/dev/null",
        &format!("{}/v2/team/cache/blobs/uploads/", registry.url()),
    ]))
    .unwrap();
    let location = headers
        .lines()
        .find_map(|l| l.strip_prefix("Location: ").or_else(|| l.strip_prefix("location: ")))
        .unwrap_or_else(|| panic!("no Location in {headers}"))
        .trim();
    let location = if location.starts_with("http") {
        location.to_string()
    } else {
        format!("{}{location}", registry.url())
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    let file = dir.join("poison.blob");
    std::fs::write(&file, blob).unwrap();
    curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{location}{separator}digest={digest}"),
    ]);
    digest
}

/// A gzip layer of `entries` (`(path, type)`, written raw, so any path goes): the blob and
/// its tar.
fn poisoned_layer(entries: &[(&str, tar::EntryType)]) -> (Vec<u8>, Vec<u8>) {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, kind) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        let content: &[u8] = if kind.is_file() { b"pwned\n" } else { b"" };
        header.set_size(content.len() as u64);
        if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
            header.set_device_major(8).unwrap();
            header.set_device_minor(0).unwrap();
        }
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        builder.append(&header, content).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    (gz.finish().unwrap(), tar)
}

/// The index digest of the layout `dir`.
fn index_digest(ctx: &TestContext, dir: &str) -> String {
    let index: serde_json::Value = serde_json::from_str(&ctx.read(&format!("{dir}/index.json"))).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_string()
}

#[test]
fn the_build_names_each_layer_it_took_from_the_registry_cache() {
    let (ctx, _server) = project();
    let registry = DockerRegistry::start();
    let cache = format!("{}/team/cache", registry.host());
    runner(&ctx, "cache-a", &["build", "--oci", "a", "--cache", &cache, "--cache-write"]).success();
    let (_, entry) = the_entry(&registry);
    let digest = entry["layers"][0]["digest"].as_str().unwrap();

    let b = runner(&ctx, "cache-b", &["build", "--oci", "b", "--cache", &cache]);
    b.success();
    assert!(b.stderr.contains("(1 from the registry cache)"), "{}", b.stderr);
    let named = format!("from the registry cache {cache} ({digest})");
    let line =
        b.stderr.lines().find(|l| l.contains(&named)).unwrap_or_else(|| panic!("{named}:\n{}", b.stderr));
    assert!(line.contains("linux/amd64") && line.contains("app.conf"), "{line}");
    assert_eq!(index_digest(&ctx, "b"), index_digest(&ctx, "a"));
}

#[test]
fn a_cache_layer_with_a_device_node_or_an_escaping_path_is_refused_and_built() {
    let (ctx, _server) = project();
    let registry = DockerRegistry::start();
    let cache = format!("{}/team/cache", registry.host());
    runner(&ctx, "cache-a", &["build", "--oci", "a", "--cache", &cache, "--cache-write"]).success();
    let built = index_digest(&ctx, "a");
    let (tag, entry) = the_entry(&registry);
    let poisons: [(&[(&str, tar::EntryType)], &str); 4] = [
        (
            &[("etc/app.conf", tar::EntryType::Regular), ("dev/sda", tar::EntryType::Block)],
            "`dev/sda` is a device node",
        ),
        (
            &[("etc/app.conf", tar::EntryType::Regular), ("../etc/x", tar::EntryType::Regular)],
            "`../etc/x` climbs with `..`",
        ),
        (&[("/etc/app.conf", tar::EntryType::Regular)], "`/etc/app.conf` is an absolute path"),
        (
            &[("etc", tar::EntryType::Symlink), ("etc/app.conf", tar::EntryType::Regular)],
            "`etc/app.conf` lies below `etc`, which is not a directory in this layer",
        ),
    ];
    for (i, (entries, why)) in poisons.iter().enumerate() {
        // Valid digests: the blob is what the entry says, its tar is the entry's diff_id and size.
        let (blob, tar) = poisoned_layer(entries);
        let digest = put_blob(&registry, &blob, &ctx.work());
        let mut poisoned = entry.clone();
        poisoned["layers"][0]["digest"] = digest.clone().into();
        poisoned["layers"][0]["size"] = blob.len().into();
        let annotations = &mut poisoned["annotations"];
        annotations["dev.marqo-base.cache.diff-id"] = format!("sha256:{}", sha256_hex(&tar)).into();
        annotations["dev.marqo-base.cache.uncompressed-size"] = tar.len().to_string().into();
        curl(&[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
            "--data-binary",
            &poisoned.to_string(),
            &format!("{}/v2/team/cache/manifests/{tag}", registry.url()),
        ]);

        let out = format!("poisoned-{i}");
        let run = runner(&ctx, &format!("cache-{out}"), &["build", "--oci", &out, "--cache", &cache]);
        run.success();
        assert!(
            run.stderr.contains(&format!("refusing the entry {tag} of the layer cache {cache}")),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(why), "{why}:\n{}", run.stderr);
        assert!(!run.stderr.contains("from the registry cache"), "{}", run.stderr);
        // Built here: the image a clean build gives, without the poisoned blob.
        assert_eq!(index_digest(&ctx, &out), built, "{}", run.stderr);
        assert!(!ctx.exists(&format!("{out}/blobs/sha256/{}", digest.trim_start_matches("sha256:"))));
    }
}
