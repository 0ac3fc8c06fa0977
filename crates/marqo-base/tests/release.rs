//! Releases at team scale against a real `docker-registry` on 127.0.0.1 (behind the test
//! proxy, which logs every request): `push --manifest` builds what is missing and pushes;
//! the layer cache in the registry (`--cache`) lets a runner with an empty disk push without
//! downloading or compressing anything; native runners push one platform each by digest and
//! `push --index --from` joins them. Images are compared by digest with a local build and
//! read back with `skopeo`.

#[path = "../../debian/tests/common/mod.rs"]
mod apt;
mod common;
#[path = "common/world.rs"]
mod world;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::Run;
use test_support::{DockerRegistry, Proxy};
use world::{world, World};

/// `marqo-base ARGS` as a runner whose cache is `cache` (an empty directory is an empty disk).
fn runner(w: &World, cache: &Path, args: &[&str]) -> Run {
    let out = w.ctx.command(args).env("MARQO_BASE_CACHE_DIR", cache).output().expect("run marqo-base");
    Run::from(out)
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr))
}

/// The digest `index.json` of the layout `dir` names as `latest`.
fn index_digest(dir: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_string()
}

/// Each platform's manifest of the layout `dir`: (architecture, config digest, layer digests).
fn images(dir: &Path) -> Vec<(String, String, Vec<String>)> {
    let blob = |digest: &str| -> serde_json::Value {
        let path = dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let index = blob(&index_digest(dir));
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let manifest = blob(m["digest"].as_str().unwrap());
            let layers = manifest["layers"].as_array().unwrap();
            (
                m["platform"]["architecture"].as_str().unwrap().to_string(),
                manifest["config"]["digest"].as_str().unwrap().to_string(),
                layers.iter().map(|l| l["digest"].as_str().unwrap().to_string()).collect(),
            )
        })
        .collect()
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo").args(args).output().expect("run skopeo");
    assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The digests of the blobs whose bytes were sent (uploads completed with `PUT ?digest=`),
/// and how many blob requests were mounts.
fn sent_and_mounted(proxy: &Proxy) -> (BTreeSet<String>, usize) {
    let mut sent = BTreeSet::new();
    let mut mounted = 0;
    for l in proxy.log() {
        if !l.path.contains("/blobs/uploads/") {
            continue;
        }
        if l.method == "POST" && l.path.contains("mount=") {
            mounted += 1;
        }
        if l.method == "PUT" {
            let digest = l.path.split("digest=").nth(1).unwrap_or_default();
            let digest = digest.split('&').next().unwrap_or_default().replace("%3A", ":");
            sent.insert(digest);
        }
    }
    (sent, mounted)
}

/// The SBOM blobs of a push of `images`: each image's last layer (the SBOM's) and the
/// documents the record says were attached.
fn sbom_blobs(images: &[(String, String, Vec<String>)], record: &serde_json::Value) -> BTreeSet<String> {
    let layers = images.iter().map(|(_, _, layers)| layers.last().unwrap().clone());
    let attachments = record["attachments"].as_array().expect("attachments in the record");
    assert_eq!(attachments.len(), images.len(), "one SBOM per platform: {record}");
    let documents = attachments.iter().map(|a| a["document"].as_str().unwrap().to_string());
    layers.chain(documents).collect()
}

/// The files of the package index and the `.deb`s of the apt repository that were asked for.
fn downloads(w: &World) -> Vec<String> {
    let index = w.index.as_ref().unwrap().requests();
    let wheels = index.into_iter().filter(|r| r.contains(".whl") || r.contains(".tar.gz"));
    let debs = w.apt.requests().into_iter().filter(|r| r.ends_with(".deb"));
    wheels.chain(debs).collect()
}

fn clear_downloads(w: &World) {
    w.index.as_ref().unwrap().clear_requests();
    w.apt.clear_requests();
}

struct Team {
    w: World,
    _registry: DockerRegistry,
    proxy: Proxy,
    host: String,
    /// The index digest of a local build of the lock as it is now.
    local: String,
}

impl Team {
    fn new() -> Team {
        let w = world();
        let registry = DockerRegistry::start();
        let proxy = Proxy::start(&registry.host());
        let host = proxy.host();
        w.ctx.run(&["lock"]).success();
        w.ctx.run(&["build", "--oci", "local"]).success();
        let local = index_digest(&w.ctx.work().join("local"));
        Team { w, _registry: registry, proxy, host, local }
    }

    fn cache_dir(&self, name: &str) -> PathBuf {
        self.w.ctx.dir.path().join(name)
    }

    fn repo(&self, name: &str) -> String {
        format!("{}/team/{name}", self.host)
    }

    /// `push REPO --manifest … --cache CACHE ARGS --yes --format json` as the runner `cache`.
    fn push(&self, cache: &Path, repo: &str, args: &[&str]) -> (Run, serde_json::Value) {
        let (repo, cache_repo) = (self.repo(repo), self.repo("cache"));
        let mut all = vec!["push", &repo, "--manifest", "marqo-base.toml", "--cache", &cache_repo];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--yes", "--format", "json"]);
        let run = runner(&self.w, cache, &all);
        run.success();
        let doc = json(&run);
        (run, doc)
    }
}

#[test]
fn an_empty_runner_pushes_from_the_registry_cache_and_a_bump_sends_one_layer() {
    let team = Team::new();
    let (w, proxy) = (&team.w, &team.proxy);

    // Runner A builds (from its warm cache) and writes every layer into the cache.
    let (a, record) = team.push(&team.cache_dir("cache"), "a", &["--cache-write", "--tag", "next"]);
    assert_eq!(record["digest"], team.local.as_str(), "{}", a.stderr);
    assert_eq!(record["tags"], serde_json::json!(["1"]));
    assert!(a.stderr.contains("entries written"), "{}", a.stderr);

    // Runner B: an empty disk, another repository of the same registry.
    let empty = team.cache_dir("runner-b");
    clear_downloads(w);
    proxy.clear_log();
    let (b, record) = team.push(&empty, "b", &["--tag", "next"]);
    assert_eq!(record["digest"], team.local.as_str(), "{}", b.stderr);
    assert!(
        b.stderr.contains("0 to build, 0 from the local cache, 6 from the registry cache"),
        "the plan before confirmation says where each layer comes from:\n{}",
        b.stderr
    );
    assert_eq!(downloads(w), Vec::<String>::new(), "no wheel or .deb is downloaded:\n{}", b.stderr);
    let (sent, mounted) = sent_and_mounted(proxy);
    let local = images(&w.ctx.work().join("local"));
    // Sent: each platform's config and SBOM (its layer, a few KB, and the same document
    // attached as an artifact, with the empty config `{}`), which no cache holds.
    let configs: BTreeSet<String> = local.iter().map(|(_, c, _)| c.clone()).collect();
    let sboms = sbom_blobs(&local, &record);
    let expected: BTreeSet<String> =
        configs.union(&sboms).cloned().chain([oci::Digest::of_bytes(b"{}").to_string()]).collect();
    assert_eq!(sent, expected, "only the configurations and SBOMs are sent:\n{}", b.stderr);
    let cached: BTreeSet<String> =
        local.iter().flat_map(|(_, _, layers)| layers[..layers.len() - 1].to_vec()).collect();
    assert_eq!(mounted, cached.len(), "every cached layer is mounted from the cache:\n{}", b.stderr);
    assert!(
        !empty.join("blobs").exists()
            || std::fs::read_dir(empty.join("blobs/sha256")).map_or(0, |d| d.count()) == 0
    );
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{}:1", team.repo("b"))]);
    assert_eq!(oci::Digest::of_bytes(raw.as_bytes()).to_string(), team.local);

    // One package moves: runner A (who has the lock change) is not needed; B builds the one
    // layer per platform with six, from six's file alone, and sends only that and the configs.
    w.ctx.write("constraints.txt", "six<1.18\n");
    w.ctx.run(&["lock", "-P", "six"]).success();
    w.ctx.run(&["build", "--oci", "bumped"]).success();
    let before = images(&w.ctx.work().join("local"));
    let after = images(&w.ctx.work().join("bumped"));
    let mut changed = BTreeSet::new();
    for ((arch, _, old), (_, _, new)) in before.iter().zip(&after) {
        // The SBOM's layer (last) changes too: it names six's version.
        let (old, new) = (&old[..old.len() - 1], &new[..new.len() - 1]);
        let moved: Vec<&String> = new.iter().filter(|d| !old.contains(d)).collect();
        assert_eq!(moved.len(), 1, "one layer per platform changes, {arch}: {old:?} -> {new:?}");
        changed.extend(moved.into_iter().cloned());
    }
    let empty = team.cache_dir("runner-b2");
    clear_downloads(w);
    proxy.clear_log();
    let (b2, record) = team.push(&empty, "b", &["--cache-write", "--tag", "next"]);
    assert_eq!(record["digest"], index_digest(&w.ctx.work().join("bumped")).as_str(), "{}", b2.stderr);
    assert_eq!(record["tags"], serde_json::json!(["2"]));
    let got = downloads(w);
    assert!(
        !got.is_empty() && got.iter().all(|d| d.contains("six-1.17.0")),
        "only six's file is downloaded: {got:?}\n{}",
        b2.stderr
    );
    let (sent, _) = sent_and_mounted(proxy);
    let configs: BTreeSet<String> = after.iter().map(|(_, c, _)| c.clone()).collect();
    let sboms = sbom_blobs(&after, &record);
    let expected: BTreeSet<String> = changed.union(&configs).cloned().chain(sboms).collect();
    assert_eq!(
        sent, expected,
        "the changed layers, the configurations and the SBOMs are sent, nothing else:\n{}",
        b2.stderr
    );
}

/// The tag names of the cache repository's layer entries and the manifest under each.
fn entries(team: &Team) -> Vec<(String, String)> {
    let cache = format!("docker://{}", team.repo("cache"));
    let tags: serde_json::Value =
        serde_json::from_str(&skopeo(&["list-tags", "--tls-verify=false", &cache])).unwrap();
    tags["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .filter(|t| t.starts_with("layer-"))
        .map(|t| {
            (t.to_string(), skopeo(&["inspect", "--raw", "--tls-verify=false", &format!("{cache}:{t}")]))
        })
        .collect()
}

/// Puts `manifest` under `tag` of the cache repository, as a hostile writer could.
fn put_manifest(team: &Team, tag: &str, manifest: &str) {
    let url = format!("http://{}/v2/team/cache/manifests/{tag}", team.host);
    let out = Command::new("curl")
        .args(["-fsS", "-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json"])
        .args(["--data-binary", manifest, &url])
        .output()
        .expect("run curl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn wrong_entries_in_the_registry_cache_are_detected_and_built_instead() {
    let team = Team::new();
    let w = &team.w;
    let (a, _) = team.push(&team.cache_dir("cache"), "a", &["--cache-write", "--tag", "1"]);
    let found = entries(&team);
    let local = images(&w.ctx.work().join("local"));
    // The cached layers: all but each image's last (its SBOM's, made for every build).
    let layers: Vec<&String> = local.iter().flat_map(|(_, _, l)| &l[..l.len() - 1]).collect();
    let distinct: BTreeSet<&String> = layers.iter().copied().collect();
    // One entry per distinct layer (a layer of pure wheels is the same on both platforms).
    assert_eq!(found.len(), distinct.len(), "{found:?}\n{}", a.stderr);
    let (victim, good) = &found[0];
    let (_, other) = &found[1];
    let good_json: serde_json::Value = serde_json::from_str(good).unwrap();
    let victim_layer = good_json["layers"][0]["digest"].as_str().unwrap();
    let n = layers.iter().filter(|l| l.as_str() == victim_layer).count();

    // Another key's entry copied under this key's tag: refused by the key it names.
    put_manifest(&team, victim, other);
    let (b, record) = team.push(&team.cache_dir("runner-b"), "b", &["--tag", "1"]);
    assert!(b.stderr.contains("it is the entry of another key"), "{}", b.stderr);
    let plan = format!("{n} to build, 0 from the local cache, {} from the registry cache", 6 - n);
    assert!(b.stderr.contains(&plan), "{plan}:\n{}", b.stderr);
    assert_eq!(record["digest"], team.local.as_str());

    // An entry naming its own key but another layer's blob: a runner that downloads it (a
    // build into a layout) finds that the blob is not the tar the entry says, and builds.
    let mut forged = good_json.clone();
    let theirs: serde_json::Value = serde_json::from_str(other).unwrap();
    forged["layers"] = theirs["layers"].clone();
    put_manifest(&team, victim, &forged.to_string());
    let c = runner(w, &team.cache_dir("runner-c"), &["build", "--oci", "c", "--cache", &team.repo("cache")]);
    c.success();
    assert!(c.stderr.contains("its blob holds a tar of"), "{}", c.stderr);
    assert!(c.stderr.contains(&format!("Reusing {} of 6 layers", 6 - n)), "{}", c.stderr);
    assert_eq!(index_digest(&w.ctx.work().join("c")), team.local);

    // An unreachable cache only slows the build down, with one warning.
    let d =
        runner(w, &team.cache_dir("runner-d"), &["build", "--oci", "d", "--cache", "127.0.0.1:9/team/cache"]);
    d.success();
    assert_eq!(
        d.stderr.matches("the layer cache 127.0.0.1:9/team/cache cannot be").count(),
        1,
        "{}",
        d.stderr
    );
    assert_eq!(index_digest(&w.ctx.work().join("d")), team.local);
}

#[test]
fn native_runners_push_one_platform_each_and_the_index_joins_them() {
    let team = Team::new();
    let w = &team.w;
    let repo = team.repo("n");
    let mut pinned = Vec::new();
    for (platform, cache) in [("linux/amd64", "runner-x"), ("linux/arm64", "runner-y")] {
        let run = runner(
            w,
            &team.cache_dir(cache),
            &["push", &repo, "--manifest", "marqo-base.toml", "--platform", platform, "--by-digest", "--yes"],
        );
        run.success();
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(lines.len(), 1, "{}\n{}", run.stdout, run.stderr);
        assert!(lines[0].starts_with(&format!("{repo}@sha256:")), "{}", run.stdout);
        pinned.push(lines[0].to_string());
    }
    // By digest sets no tag (docker-registry answers 404 for a repository without tags).
    let tags = Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false", &format!("docker://{repo}")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&tags.stdout);
    assert!(!tags.status.success() || !text.contains("\"1\"") && !text.contains("latest"), "{text}");
    for image in &pinned {
        skopeo(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{image}")]);
    }
    let index = runner(
        w,
        &team.cache_dir("runner-z"),
        &[
            "push", &repo, "--index", "--from", &pinned[0], "--from", &pinned[1], "--tag", "next", "--yes",
            "--format", "json",
        ],
    );
    index.success();
    common::validate_json("push", index.stdout.trim());
    let record = json(&index);
    assert_eq!(
        record["digest"],
        team.local.as_str(),
        "the same index as one machine's build:\n{}",
        index.stderr
    );
    assert_eq!(record["tags"], serde_json::json!(["1"]));
    let raw: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{repo}:1"),
    ]))
    .unwrap();
    let platforms: Vec<&str> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"]);

    // The same platform twice, or an image of another repository, is refused.
    let twice = runner(
        w,
        &team.cache_dir("runner-z"),
        &["push", &repo, "--index", "--from", &pinned[0], "--from", &pinned[0], "--tag", "x", "--yes"],
    );
    twice.code(2);
    assert!(twice.stderr.contains("comes twice"), "{}", twice.stderr);
    let elsewhere = pinned[0].replace("/team/n@", "/team/other@");
    let other = runner(
        w,
        &team.cache_dir("runner-z"),
        &["push", &repo, "--index", "--from", &elsewhere, "--tag", "x", "--yes"],
    );
    other.code(2);
    assert!(other.stderr.contains("is not in"), "{}", other.stderr);
}
