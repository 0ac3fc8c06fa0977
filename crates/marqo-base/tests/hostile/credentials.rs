//! A credential goes only where it was given, and only encrypted (issue 30, class 1): a
//! password in a `[[file]]` url reaches the server it names and no output (lock, image, SBOM,
//! push record, JSON, logs at -vv); registry credentials never go to a token server over
//! plain HTTP when the registry speaks HTTPS, nor to a plain-HTTP realm on another host.

use std::io::Read;
use std::path::Path;

use test_support::scripted::{Reply, Server};
use test_support::{sha256_hex, DockerRegistry, RegistryConfig};

use crate::common::{Run, TestContext};

const USER: &str = "alice";
const PASSWORD: &str = "pw-7Qx9-never-written";
/// `Basic` of `alice:pw-7Qx9-never-written`: what the file server wants, and what no output
/// may hold either.
const BASIC: &str = "YWxpY2U6cHctN1F4OS1uZXZlci13cml0dGVu";

/// Every file under `dir` whose text (gzip members unpacked: image layers) holds `wanted`.
fn files_holding(dir: &Path, wanted: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            let kind = entry.file_type().expect("file type");
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let mut bytes = std::fs::read(&path).expect("read file");
            if bytes.starts_with(&[0x1f, 0x8b]) {
                let mut unpacked = Vec::new();
                flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_end(&mut unpacked).expect("gunzip");
                bytes.extend(unpacked);
            }
            if wanted(&String::from_utf8_lossy(&bytes)) {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

fn holds_secret(text: &str) -> bool {
    text.contains(PASSWORD) || text.contains(BASIC)
}

#[track_caller]
fn assert_no_secret(what: &str, run: &Run) {
    assert!(
        !holds_secret(&run.stdout) && !holds_secret(&run.stderr),
        "{what} printed the password:\n{}\n{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn a_password_in_a_file_url_reaches_its_server_and_no_output() {
    let ctx = TestContext::new();
    let content = b"the file behind a password\n".to_vec();
    let served = content.clone();
    let server = Server::start(move |req| {
        if req.header("authorization") != Some(&format!("Basic {BASIC}")) {
            return Reply::status(401).header("WWW-Authenticate", "Basic realm=\"files\"");
        }
        if req.path == "/private/f.txt" {
            Reply::ok(served.clone())
        } else {
            Reply::status(404)
        }
    });
    let registry = DockerRegistry::start();
    ctx.write(
        "marqo-base.toml",
        &format!(
            "[image]\nplatforms = [\"linux/amd64\"]\n\n[[file]]\nurl = \"http://{USER}:{PASSWORD}@127.0.0.1:{}/private/f.txt\"\nsha256 = \"{}\"\nto = \"/opt/f.txt\"\n",
            server.port,
            sha256_hex(&content)
        ),
    );

    let lock = ctx.run(&["lock", "-vv"]);
    lock.success();
    assert_no_secret("lock", &lock);
    let locked = ctx.read("marqo-base.lock");
    assert!(
        locked.contains(&format!("url = \"http://127.0.0.1:{}/private/f.txt\"", server.port)),
        "{locked}"
    );
    // The cache holds the download: build fetches it again with the manifest's credentials.
    std::fs::remove_dir_all(ctx.cache()).expect("empty the cache");
    let check = ctx.run(&["lock", "--check", "-vv"]);
    check.success();
    assert_no_secret("lock --check", &check);

    let build = ctx.run(&["build", "-vv", "--oci", "out", "--sbom", "sbom"]);
    build.success();
    assert_no_secret("build", &build);
    let cdx =
        ctx.run(&["build", "-vv", "--oci", "out-cdx", "--sbom", "sbom-cdx", "--sbom-format", "cyclonedx"]);
    cdx.success();
    assert_no_secret("build (CycloneDX)", &cdx);
    let sbom = std::fs::read_to_string(ctx.work().join("sbom/linux-amd64.spdx.json")).expect("the SPDX SBOM");
    assert!(sbom.contains(&format!("http://127.0.0.1:{}/private/f.txt", server.port)), "{sbom}");

    let repo = format!("{}/app", registry.host());
    let push = ctx
        .command(&[
            "push",
            &repo,
            "--oci",
            "out",
            "--tag",
            "1",
            "--yes",
            "--record",
            "pushed.json",
            "--format",
            "json",
        ])
        .arg("-vv")
        .env_remove("DOCKER_CONFIG")
        .output()
        .expect("run push");
    let push = Run::from(push);
    push.success();
    assert_no_secret("push", &push);

    // Every request to the file server carried the credentials: they went where given.
    let requests = server.requests();
    assert!(requests.iter().filter(|r| r.path == "/private/f.txt").count() >= 2, "{requests:?}");
    // The image in the registry (its SBOM layer, and the SBOM attached beside it) names the
    // download, without its credentials.
    let place = format!("http://127.0.0.1:{}/private/f.txt", server.port);
    let naming = files_holding(&registry.storage(), &|text| text.contains(&place));
    assert!(naming.len() >= 2, "the pushed SBOMs: {naming:?}");
    let leaks: Vec<String> = [ctx.work(), ctx.cache(), registry.storage()]
        .iter()
        .filter(|d| d.exists())
        .flat_map(|d| files_holding(d, &holds_secret))
        .filter(|p| !p.ends_with("marqo-base.toml"))
        .collect();
    assert!(leaks.is_empty(), "the password is in {leaks:?}");
}

/// `marqo-base login HOST` with `password` on stdin (and the test CA trusted, if any).
fn login(ctx: &TestContext, host: &str, ca: Option<&Path>, password: &str) -> Run {
    let mut cmd =
        ctx.registry_command(&["login", host, "-u", USER, "--password-stdin", "-vv", "--retries", "0"]);
    if let Some(ca) = ca {
        cmd.env("SSL_CERT_FILE", ca);
    }
    TestContext::run_with_stdin(cmd, password)
}

#[test]
fn an_https_registry_cannot_send_credentials_to_a_plain_http_token_server() {
    let ctx = TestContext::new();
    let token_server =
        Server::start(|_| Reply::ok(r#"{"token":"t"}"#).header("Content-Type", "application/json"));
    let realm = format!("http://127.0.0.1:{}/token", token_server.port);
    let registry = DockerRegistry::start_with(RegistryConfig {
        tls: true,
        token_realm: Some(realm.clone()),
        ..RegistryConfig::default()
    });
    let run = login(&ctx, &registry.host(), Some(&registry.cert().expect("a TLS registry's CA")), PASSWORD);
    run.code(2);
    for needle in [realm.as_str(), &registry.host(), "plain HTTP", "hint:", "https://"] {
        assert!(run.stderr.contains(needle), "`{needle}` missing in:\n{}", run.stderr);
    }
    assert_no_secret("login", &run);
    assert_eq!(token_server.hits(), 0, "the token server was asked: {:?}", token_server.requests());
    assert!(
        !ctx.work().parent().unwrap().join("home/.docker/config.json").exists(),
        "credentials were stored"
    );
}

#[test]
fn a_plain_http_realm_on_another_host_gets_no_credentials() {
    let ctx = TestContext::new();
    // A loopback registry over plain HTTP naming a token server elsewhere, also plain HTTP
    // (TEST-NET-1). Requests to other hosts go through a recording proxy on 127.0.0.1, so a
    // request for the realm would be seen there, and nothing leaves the machine.
    let registry = Server::start(|_| {
        Reply::status(401).header("WWW-Authenticate", r#"Bearer realm="http://192.0.2.1/token",service="r""#)
    });
    let proxy = Server::start(|_| Reply::status(502));
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
    let host = format!("127.0.0.1:{}", registry.port);
    let mut cmd =
        ctx.registry_command(&["login", &host, "-u", USER, "--password-stdin", "-vv", "--retries", "0"]);
    for (key, value) in
        [("http_proxy", proxy_url.as_str()), ("HTTP_PROXY", &proxy_url), ("NO_PROXY", "127.0.0.1")]
    {
        cmd.env(key, value);
    }
    cmd.env_remove("no_proxy").env_remove("all_proxy").env_remove("ALL_PROXY");
    let run = TestContext::run_with_stdin(cmd, PASSWORD);
    run.code(2);
    for needle in ["http://192.0.2.1/token", host.as_str(), "loopback", "--insecure"] {
        assert!(run.stderr.contains(needle), "`{needle}` missing in:\n{}", run.stderr);
    }
    assert_eq!(proxy.hits(), 0, "the realm was asked (through the proxy): {:?}", proxy.requests());
    assert!(
        registry.requests().iter().all(|r| r.header("authorization").is_none()),
        "{:?}",
        registry.requests()
    );
}
