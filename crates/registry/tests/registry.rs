//! The registry client against a real `docker-registry` on 127.0.0.1 (started per test),
//! sometimes behind the test proxy: token auth and its renewal, tag pagination, chunked
//! uploads that survive a dropped request, mounts, and pulls that refuse altered content.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use registry::{
    execute_push, fetch_blobs, plan_push, resolve_pull, BlobAction, ClientOptions, Credentials, LayoutSource,
    PushOptions, Reference, RegistryClient, TagSpec,
};
use test_support::{DockerRegistry, Proxy, TestImage};

fn http() -> reqwest::Client {
    fetch::Client::new(fetch::ClientOptions::default()).unwrap().http().clone()
}

fn client(host: &str, credentials: Option<Credentials>) -> RegistryClient {
    let options =
        ClientOptions { retries: 2, backoff: Duration::from_millis(20), ..ClientOptions::default() };
    RegistryClient::new(http(), host, credentials, &options)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
}

fn no_progress() -> registry::ProgressFn {
    Arc::new(|_| {})
}

/// Pushes the layout at `dir` to `host/repo` with `tags`; returns the tags set.
fn push(
    rt: &tokio::runtime::Runtime,
    client: &RegistryClient,
    dir: &Path,
    target: &str,
    options: &PushOptions,
) -> Vec<String> {
    let target = Reference::parse(target).unwrap();
    let source = LayoutSource::read(dir, None).unwrap();
    rt.block_on(async {
        let plan = plan_push(client, &target, &source, options).await?;
        execute_push(client, &plan, &source, options, None, no_progress()).await
    })
    .unwrap_or_else(|e| panic!("{e}"))
    .tags
}

fn skopeo_raw(reference: &str) -> String {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "skopeo: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bearer_tokens_are_fetched_per_scope_and_renewed_after_expiry() {
    let registry = DockerRegistry::start();
    let proxy = Proxy::with_token_auth(&registry.host(), "alice", "s3cret");
    let work = tempfile::tempdir().unwrap();
    let image = TestImage::new(1).write(&work.path().join("a"), "latest");
    let rt = runtime();
    let options = PushOptions { tags: vec![TagSpec::Named("1".into())], ..PushOptions::default() };

    // No credentials: the token server refuses, and the error names the registry and repository.
    let anonymous = client(&proxy.host(), None);
    let target = Reference::parse(&format!("{}/team/app", proxy.host())).unwrap();
    let source = LayoutSource::read(&work.path().join("a"), None).unwrap();
    let err = rt.block_on(plan_push(&anonymous, &target, &source, &options)).unwrap_err();
    assert!(matches!(err, registry::Error::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains(&proxy.host()) && err.to_string().contains("team/app"), "{err}");

    let c = client(&proxy.host(), Some(Credentials::basic("alice", "s3cret")));
    proxy.clear_log();
    let tags = push(&rt, &c, &work.path().join("a"), &format!("{}/team/app", proxy.host()), &options);
    assert_eq!(tags, ["1"]);
    // One token, fetched once for the push's scope (not once per parallel request) and used
    // for every request: only the ping went without one.
    let issued = proxy.tokens_issued();
    assert_eq!(issued, 1, "{:#?}", proxy.log());
    let refused: Vec<_> = proxy.log().into_iter().filter(|l| l.status == 401).map(|l| l.path).collect();
    assert_eq!(refused, ["/v2/"]);
    assert!(skopeo_raw(&format!("{}/team/app:1", registry.host())).contains(&image.manifests[0].1.digest));

    // Tokens expire: the next request gets a 401, and the client fetches a new token once.
    proxy.expire_tokens();
    let options = PushOptions { tags: vec![TagSpec::Named("2".into())], ..PushOptions::default() };
    assert_eq!(push(&rt, &c, &work.path().join("a"), &format!("{}/team/app", proxy.host()), &options), ["2"]);
    assert_eq!(proxy.tokens_issued(), issued + 1, "one new token after expiry");

    // Wrong password: refused by the token server.
    let wrong = client(&proxy.host(), Some(Credentials::basic("alice", "nope")));
    let err = rt.block_on(wrong.check_login()).unwrap_err();
    assert!(err.to_string().contains("refused the stored credentials"), "{err}");
    assert!(!err.to_string().contains("nope"), "{err}");
}

#[test]
fn tag_lists_are_followed_across_pages() {
    let registry = DockerRegistry::start();
    // distribution 2.8 ignores `n=`: the proxy pages the list as later registries do.
    let proxy = Proxy::start(&registry.host());
    proxy.paginate_tags(true);
    let work = tempfile::tempdir().unwrap();
    TestImage::new(2).write(&work.path().join("a"), "latest");
    let rt = runtime();
    let c = client(&proxy.host(), None);
    let names = ["1", "7", "latest", "v3", "3"];
    let options = PushOptions {
        tags: names.iter().map(|t| TagSpec::Named(t.to_string())).collect(),
        ..PushOptions::default()
    };
    push(&rt, &c, &work.path().join("a"), &format!("{}/paged", proxy.host()), &options);
    proxy.clear_log();
    let mut tags = rt.block_on(c.list_tags("paged", Some(2), "repository:paged:pull")).unwrap();
    tags.sort();
    assert_eq!(tags, ["1", "3", "7", "latest", "v3"]);
    assert_eq!(registry::next_tag(tags.iter().map(String::as_str)).unwrap(), "8");
    assert_eq!(proxy.log().len(), 3, "{:#?}", proxy.log());
    assert!(rt
        .block_on(c.list_tags("nothing-here", Some(2), "repository:nothing-here:pull"))
        .unwrap()
        .is_empty());
}

#[test]
fn a_dropped_chunk_is_resent_from_where_the_registry_stopped() {
    let registry = DockerRegistry::start();
    let proxy = Proxy::start(&registry.host());
    let work = tempfile::tempdir().unwrap();
    let image = TestImage::new(3)
        .platforms(&["linux/amd64"])
        .layers(&[600 * 1024])
        .write(&work.path().join("a"), "latest");
    let rt = runtime();
    let c = client(&proxy.host(), None);
    // 256 KiB chunks; the third PATCH (after 512 KiB went through) is dropped once.
    proxy.drop_patches_after(512 * 1024, 1);
    let options = PushOptions {
        tags: vec![TagSpec::Named("1".into())],
        chunk_size: 256 * 1024,
        ..PushOptions::default()
    };
    push(&rt, &c, &work.path().join("a"), &format!("{}/chunky", proxy.host()), &options);

    let log = proxy.log();
    let patches: Vec<_> = log.iter().filter(|l| l.method == "PATCH").collect();
    let ranges: Vec<&str> =
        patches.iter().filter(|l| !l.faulted).filter_map(|l| l.header("content-range")).collect();
    let last = format!("524288-{}", image.blobs[0].size - 1);
    assert_eq!(ranges, ["0-262143", "262144-524287", last.as_str()]);
    assert!(patches.iter().any(|l| l.faulted), "no PATCH was dropped");
    // After the drop, the client asked the registry where the session stood, and sent
    // nothing twice.
    assert!(log.iter().any(|l| l.method == "GET" && l.path.contains("/blobs/uploads/")), "no status request");
    let sent: usize = patches.iter().filter(|l| !l.faulted).map(|l| l.body_len).sum();
    assert_eq!(sent as u64, image.blobs[0].size);
    assert!(skopeo_raw(&format!("{}/chunky:1", registry.host())).contains(&image.manifests[0].1.digest));
}

#[test]
fn mounts_from_a_sibling_and_skips_what_is_there() {
    let registry = DockerRegistry::start();
    let proxy = Proxy::start(&registry.host());
    let work = tempfile::tempdir().unwrap();
    TestImage::new(4).write(&work.path().join("a"), "latest");
    let rt = runtime();
    let c = client(&proxy.host(), None);
    let options = PushOptions { tags: vec![TagSpec::Named("1".into())], ..PushOptions::default() };
    push(&rt, &c, &work.path().join("a"), &format!("{}/base-dev", proxy.host()), &options);

    let source = LayoutSource::read(&work.path().join("a"), None).unwrap();
    let options = PushOptions { mount_from: vec!["base-dev".into()], ..options };
    let target = Reference::parse(&format!("{}/base", proxy.host())).unwrap();
    let plan = rt.block_on(plan_push(&c, &target, &source, &options)).unwrap();
    assert!(plan.blobs.iter().all(|b| b.action == BlobAction::Mount("base-dev".into())), "{:?}", plan.blobs);
    proxy.clear_log();
    let pushed = rt.block_on(execute_push(&c, &plan, &source, &options, None, no_progress())).unwrap();
    assert_eq!(pushed.mounted, source.blobs.len());
    assert!(pushed.uploaded.is_empty());
    let log = proxy.log();
    assert!(
        log.iter().all(|l| l.method != "PATCH" && !(l.method == "PUT" && l.path.contains("/blobs/"))),
        "{log:#?}"
    );
    assert!(log
        .iter()
        .filter(|l| l.method == "POST")
        .all(|l| l.path.contains("mount=") && l.path.contains("from=base-dev")));

    let plan = rt.block_on(plan_push(&c, &target, &source, &options)).unwrap();
    assert_eq!(plan.count(|a| *a == BlobAction::Present).0, source.blobs.len());
}

#[test]
fn pulls_verify_content_and_resume_cut_downloads() {
    let registry = DockerRegistry::start();
    let proxy = Proxy::start(&registry.host());
    let work = tempfile::tempdir().unwrap();
    let image = TestImage::new(5).layers(&[300 * 1024]).write(&work.path().join("a"), "latest");
    let rt = runtime();
    let c = client(&proxy.host(), None);
    let options = PushOptions { tags: vec![TagSpec::Named("1".into())], ..PushOptions::default() };
    push(&rt, &c, &work.path().join("a"), &format!("{}/pulled", proxy.host()), &options);
    let reference = Reference::parse(&format!("{}/pulled:1", proxy.host())).unwrap();

    // Altered bytes: refused, and nothing lands in the cache.
    let cache = fetch::Cache::at(work.path().join("cache"));
    proxy.tamper_blobs(true);
    let mut pulled = rt.block_on(resolve_pull(&c, &reference, &[])).unwrap();
    assert_eq!(pulled.root.digest.to_string(), image.index.digest);
    let err = rt.block_on(fetch_blobs(&c, &mut pulled, &[], &cache, 1, no_progress())).unwrap_err();
    assert!(matches!(err, registry::Error::DigestMismatch { .. }), "{err}");
    assert!(
        !work.path().join("cache/blobs").exists()
            || std::fs::read_dir(work.path().join("cache/blobs/sha256")).unwrap().next().is_none()
    );

    // A cut download continues with a Range request.
    proxy.tamper_blobs(false);
    proxy.cut_blob_downloads(100 * 1024, 1);
    proxy.clear_log();
    rt.block_on(fetch_blobs(&c, &mut pulled, &[], &cache, 1, no_progress())).unwrap();
    let log = proxy.log();
    assert!(log.iter().any(|l| l.faulted), "nothing was cut");
    assert!(log.iter().any(|l| l.header("range") == Some("bytes=102400-")), "{log:#?}");
    let out = work.path().join("out");
    registry::write_oci(&pulled, &out, "1").unwrap();
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:1", out.display()))
        .output()
        .unwrap();
    assert_eq!(sha256(&raw.stdout), image.index.digest);
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}
