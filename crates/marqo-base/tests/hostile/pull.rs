//! A pull is complete or it fails (issue 30): a registry on 127.0.0.1 whose index nests
//! indexes, lists an artifact beside the images, or lists a manifest twice. An exit 0 leaves
//! a layout skopeo copies whole; anything else fails naming the entry, and writes nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use test_support::scripted::{serve_range, Reply, Request, Server};
use test_support::TestImage;

use crate::common::{Run, TestContext};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A registry serving one repository, `base`, from a map of documents and blobs by digest;
/// the tag `1` names `root`. Every request is logged by the server.
struct Hostile {
    server: Server,
    blobs: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl Hostile {
    /// Starts it with every blob of the layout `dir` (as [`TestImage::write`] wrote it).
    fn start(dir: &Path) -> Hostile {
        let mut blobs = BTreeMap::new();
        for entry in std::fs::read_dir(dir.join("blobs/sha256")).unwrap() {
            let entry = entry.unwrap();
            let hex = entry.file_name().into_string().unwrap();
            blobs.insert(format!("sha256:{hex}"), std::fs::read(entry.path()).unwrap());
        }
        let blobs = Arc::new(Mutex::new(blobs));
        let served = blobs.clone();
        let server = Server::start(move |req: &Request| {
            let blobs = served.lock().unwrap();
            let path = req.path.split('?').next().unwrap_or_default();
            if path == "/v2/" {
                return Reply::ok("{}");
            }
            if let Some(name) = path.strip_prefix("/v2/base/manifests/") {
                let digest =
                    if name == "1" { blobs.get("root").map(|r| digest_of(r)) } else { Some(name.into()) };
                let Some(bytes) = digest.and_then(|d| blobs.get(&d)) else { return Reply::status(404) };
                let doc: Value = serde_json::from_slice(bytes).unwrap_or_default();
                let kind = doc["mediaType"].as_str().unwrap_or(MANIFEST).to_string();
                return Reply::ok(bytes.clone())
                    .header("Content-Type", &kind)
                    .header("Docker-Content-Digest", &digest_of(bytes));
            }
            if let Some(digest) = path.strip_prefix("/v2/base/blobs/") {
                if let Some(bytes) = blobs.get(digest) {
                    return serve_range(req, bytes);
                }
            }
            Reply::status(404)
        });
        Hostile { server, blobs }
    }

    /// Adds a JSON document as a blob; returns its descriptor with `media_type`.
    fn put(&self, doc: &Value, media_type: &str) -> Value {
        let bytes = serde_json::to_vec(doc).unwrap();
        let digest = digest_of(&bytes);
        let size = bytes.len();
        self.blobs.lock().unwrap().insert(digest.clone(), bytes);
        json!({"mediaType": media_type, "digest": digest, "size": size})
    }

    /// Tags an index of `entries` as `1`; returns its digest.
    fn set_root(&self, entries: Vec<Value>) -> String {
        let root = self.put(&index(entries), INDEX);
        let digest = root["digest"].as_str().unwrap().to_string();
        let bytes = self.blobs.lock().unwrap()[&digest].clone();
        self.blobs.lock().unwrap().insert("root".into(), bytes);
        digest
    }

    fn reference(&self) -> String {
        format!("127.0.0.1:{}/base:1", self.server.port)
    }

    /// How many GETs asked for `what` (a manifest or blob digest).
    fn gets(&self, what: &str) -> usize {
        self.server.requests().iter().filter(|r| r.method == "GET" && r.path.ends_with(what)).count()
    }
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn index(entries: Vec<Value>) -> Value {
    json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries})
}

/// The index entries of the images `TestImage` wrote, with their platforms.
fn image_entries(dir: &Path) -> Vec<Value> {
    let top: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let digest = top["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let inner: Value =
        serde_json::from_slice(&std::fs::read(dir.join("blobs/sha256").join(digest)).unwrap()).unwrap();
    inner["manifests"].as_array().unwrap().clone()
}

fn pull(ctx: &TestContext, hostile: &Hostile, extra: &[&str]) -> Run {
    let reference = hostile.reference();
    let mut args = vec!["pull", reference.as_str(), "--oci", "out"];
    args.extend_from_slice(extra);
    let run = ctx.run(&args);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

/// `skopeo copy --all` of the pulled layout into another: it reads every manifest and blob
/// the layout's index reaches, and fails on one that is missing.
#[track_caller]
fn assert_skopeo_copies_whole(ctx: &TestContext) {
    let out = ctx.work().join("out");
    let copy = ctx.work().join("copy");
    let run = Command::new("skopeo")
        .args(["copy", "--all", "--quiet"])
        .arg(format!("oci:{}:1", out.display()))
        .arg(format!("oci:{}:1", copy.display()))
        .output()
        .expect("run skopeo (apt-get install skopeo)");
    assert!(
        run.status.success(),
        "skopeo cannot copy the pulled layout: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

fn layout_blobs(ctx: &TestContext) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(ctx.work().join("out/blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// `umoci unpack` of the pulled layout's one image: umoci follows nested indexes down to
/// the manifest, and reads and checks its configuration and every layer.
#[track_caller]
fn assert_umoci_unpacks(ctx: &TestContext) {
    let run = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:1", ctx.work().join("out").display()))
        .arg(ctx.work().join("bundle"))
        .output()
        .expect("run umoci (apt-get install umoci)");
    assert!(
        run.status.success(),
        "umoci cannot unpack the pulled layout: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn a_nested_index_is_followed_and_the_layout_is_whole() {
    let ctx = TestContext::new();
    let src = ctx.work().join("src");
    TestImage::new(31).write(&src, "1");
    let hostile = Hostile::start(&src);
    // An index of one index of the two images, as some build tools push them.
    let inner = hostile.put(&index(image_entries(&src)), INDEX);
    hostile.set_root(vec![inner.clone()]);

    let run = pull(&ctx, &hostile, &[]);
    run.success();
    assert!(run.stderr.contains("linux/amd64, linux/arm64;"), "{}", run.stderr);
    // The root is kept byte for byte, and the index it lists is there: skopeo (which does
    // not follow nested indexes itself) copies that inner index whole, images and all.
    let inner_hex = inner["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    assert!(layout_blobs(&ctx).contains(&inner_hex), "{:?}", layout_blobs(&ctx));
    let out = ctx.work().join("out");
    let mut top: Value = serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    top["manifests"]
        .as_array_mut()
        .unwrap()
        .push(json!({"mediaType": INDEX, "digest": inner["digest"], "size": inner["size"],
               "annotations": {"org.opencontainers.image.ref.name": "inner"}}));
    std::fs::write(out.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    let copy = Command::new("skopeo")
        .args(["copy", "--all", "--quiet"])
        .arg(format!("oci:{}:inner", out.display()))
        .arg(format!("oci:{}:1", ctx.work().join("copy").display()))
        .output()
        .unwrap();
    assert!(copy.status.success(), "{}", String::from_utf8_lossy(&copy.stderr));

    // One platform is found below the nested index too.
    let one = TestContext::new();
    pull(&one, &hostile, &["--platform", "linux/arm64"]).success();
    let inspect = Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!("oci:{}:1", one.work().join("out").display()))
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{}", String::from_utf8_lossy(&inspect.stderr));
    let config: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(config["architecture"], "arm64");
}

#[test]
fn a_chain_of_nested_indexes_within_the_limit_unpacks_with_umoci() {
    let ctx = TestContext::new();
    let src = ctx.work().join("src");
    TestImage::new(35).platforms(&["linux/amd64"]).write(&src, "1");
    let hostile = Hostile::start(&src);
    let mut entry = hostile.put(&index(image_entries(&src)), INDEX);
    for _ in 1..4 {
        entry = hostile.put(&index(vec![entry]), INDEX);
    }
    hostile.set_root(vec![entry]);

    pull(&ctx, &hostile, &[]).success();
    assert_umoci_unpacks(&ctx);
}

#[test]
fn indexes_nested_past_the_limit_are_refused() {
    let ctx = TestContext::new();
    let src = ctx.work().join("src");
    TestImage::new(32).platforms(&["linux/amd64"]).write(&src, "1");
    let hostile = Hostile::start(&src);
    let mut entry = hostile.put(&index(image_entries(&src)), INDEX);
    // Five levels below the root: one past the limit.
    for _ in 0..4 {
        entry = hostile.put(&index(vec![entry]), INDEX);
    }
    hostile.set_root(vec![entry]);

    let run = pull(&ctx, &hostile, &[]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("nests image indexes more than 4 deep"), "{}", run.stderr);
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    assert!(!ctx.exists("out"));
}

#[test]
fn an_artifact_beside_the_images_is_refused_or_left_out_by_platform() {
    let ctx = TestContext::new();
    let src = ctx.work().join("src");
    TestImage::new(33).platforms(&["linux/amd64"]).write(&src, "1");
    let hostile = Hostile::start(&src);
    // An entry whose media type is not a manifest: a tool that pushed a document straight
    // into the index (its blob is on the registry, as a manifest would be).
    let artifact = hostile.put(&json!({"spdxVersion": "SPDX-2.3"}), "application/spdx+json");
    let mut entries = image_entries(&src);
    entries.push(artifact.clone());
    hostile.set_root(entries);

    let run = pull(&ctx, &hostile, &[]);
    run.code(2);
    let digest = artifact["digest"].as_str().unwrap();
    for needle in [digest, "application/spdx+json", "cannot be pulled whole", "hint:", "--platform"] {
        assert!(run.stderr.contains(needle), "`{needle}` missing in:\n{}", run.stderr);
    }
    assert!(!ctx.exists("out"));

    // Choosing the image leaves the artifact out, and the layout is whole.
    let one = TestContext::new();
    pull(&one, &hostile, &["--platform", "linux/amd64"]).success();
    assert_skopeo_copies_whole(&one);
}

#[test]
fn a_manifest_listed_twice_is_fetched_once() {
    let ctx = TestContext::new();
    let src = ctx.work().join("src");
    let written = TestImage::new(34).write(&src, "1");
    let hostile = Hostile::start(&src);
    let entries = image_entries(&src);
    hostile.set_root(vec![entries[0].clone(), entries[1].clone(), entries[0].clone()]);

    let run = pull(&ctx, &hostile, &[]);
    run.success();
    assert!(run.stderr.contains("linux/amd64, linux/arm64;"), "{}", run.stderr);
    for (_, manifest) in &written.manifests {
        assert_eq!(hostile.gets(&manifest.digest), 1, "{:#?}", hostile.server.requests());
    }
    for blob in &written.blobs {
        assert_eq!(hostile.gets(&blob.digest), 1, "{:#?}", hostile.server.requests());
    }
    assert_skopeo_copies_whole(&ctx);
}

#[test]
fn push_index_from_an_index_of_indexes_is_refused_naming_the_entry() {
    let ctx = TestContext::new();
    let src = ctx.work().join("src");
    TestImage::new(36).write(&src, "1");
    let hostile = Hostile::start(&src);
    let inner = hostile.put(&index(image_entries(&src)), INDEX);
    let root = hostile.set_root(vec![inner.clone()]);
    let repo = format!("127.0.0.1:{}/base", hostile.server.port);
    let from = format!("{repo}@{root}");
    let run = ctx.run(&["push", &repo, "--index", "--from", &from, "--tag", "2", "--yes"]);
    run.code(2);
    for needle in [inner["digest"].as_str().unwrap(), INDEX, "not an image manifest", "by digest"] {
        assert!(run.stderr.contains(needle), "`{needle}` missing in:\n{}", run.stderr);
    }
    // Refused while planning: nothing was sent.
    assert!(hostile.server.requests().iter().all(|r| r.method == "GET"), "{:?}", hostile.server.requests());
}
