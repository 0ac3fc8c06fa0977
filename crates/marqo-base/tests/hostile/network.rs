//! Network input is bounded, tags never wrap, and messages name what is wrong: servers that
//! answer an endless body (a manifest, a tag list, a token, an index page, a Release file),
//! integer tags past `u64`, and the misleading messages of `compile`.
//!
//! The endless-body runs go under an address-space limit (`prlimit --as`): a client that
//! buffered without bound would hit it and abort (exit 134) instead of giving the error.

use std::process::Command;

use test_support::scripted::{Reply, Request, Server};
use test_support::{DockerRegistry, TestImage};

use crate::common::{Run, TestContext};

/// Address space for one run of the binary: far above what it needs (threads, arenas), far
/// below an endless body.
const ADDRESS_SPACE: &str = "4294967296";

/// `marqo-base ARGS` in the sandbox under [`ADDRESS_SPACE`].
fn bounded_run(ctx: &TestContext, args: &[&str]) -> Run {
    let plain = ctx.command(args);
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--as={ADDRESS_SPACE}")).arg("--").arg(plain.get_program()).args(plain.get_args());
    for (key, value) in plain.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    cmd.env_remove("DOCKER_CONFIG").env_remove("SSL_CERT_FILE").current_dir(ctx.work());
    Run::from(cmd.output().expect("run prlimit marqo-base"))
}

#[track_caller]
fn assert_mentions(run: &Run, needles: &[&str]) {
    for needle in needles {
        assert!(run.stderr.contains(needle), "`{needle}` missing in:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

/// A registry that answers `/v2/` and hands every other request to `rest`.
fn fake_registry(rest: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
    Server::start(move |req| if req.path == "/v2/" { Reply::ok("{}") } else { rest(req) })
}

#[test]
fn an_endless_manifest_is_refused_at_the_limit() {
    let ctx = TestContext::new();
    let server = fake_registry(|req| {
        if req.path.contains("/manifests/") {
            Reply::endless(&b"{\"schemaVersion\":2,"[..])
                .header("Content-Type", "application/vnd.oci.image.index.v1+json")
        } else {
            Reply::status(404)
        }
    });
    let reference = format!("127.0.0.1:{}/base:1", server.port);
    let run = bounded_run(&ctx, &["pull", &reference, "--oci", "out"]);
    run.code(3);
    assert_mentions(
        &run,
        &["manifest from", &format!("127.0.0.1:{}/v2/base/manifests/1", server.port), "4 MiB", "hint:"],
    );
    assert!(!ctx.exists("out"));
}

#[test]
fn an_endless_tag_list_stops_push_tag_next() {
    let ctx = TestContext::new();
    TestImage::new(7).layers(&[2048]).write(&ctx.work().join("img"), "latest");
    let server = fake_registry(|req| {
        if req.path.starts_with("/v2/base/tags/list") {
            Reply::endless(&b"{\"tags\":[\"1\",\"2\","[..]).header("Content-Type", "application/json")
        } else {
            Reply::status(404)
        }
    });
    let repo = format!("127.0.0.1:{}/base", server.port);
    let run = bounded_run(&ctx, &["push", &repo, "--oci", "img", "--tag", "next", "--yes"]);
    run.code(3);
    assert_mentions(&run, &["tag list page", "/v2/base/tags/list", "64 MiB", "hint:"]);
    // Nothing was sent: the plan failed before any upload or tag.
    assert!(server.requests().iter().all(|r| r.method == "GET"), "{:?}", server.requests());
}

#[test]
fn an_endless_token_reply_is_refused() {
    let ctx = TestContext::new();
    let port = std::sync::Arc::new(std::sync::OnceLock::<u16>::new());
    let seen = port.clone();
    let server = Server::start(move |req| {
        if req.path.starts_with("/token") {
            return Reply::endless(&b"{\"token\":\"aaaaaaaa"[..]).header("Content-Type", "application/json");
        }
        let realm = format!("http://127.0.0.1:{}/token", seen.get().copied().unwrap_or_default());
        Reply::status(401)
            .header("WWW-Authenticate", &format!("Bearer realm=\"{realm}\",service=\"test\""))
            .header("Content-Type", "application/json")
    });
    port.set(server.port).unwrap();
    let reference = format!("127.0.0.1:{}/base:1", server.port);
    let run = bounded_run(&ctx, &["pull", &reference, "--oci", "out"]);
    run.code(3);
    assert_mentions(&run, &["token reply from", &format!("127.0.0.1:{}/token", server.port), "1 MiB"]);
}

#[test]
fn an_endless_index_page_is_refused() {
    let ctx = TestContext::new();
    ctx.write("requirements.in", "demo\n");
    let server = Server::start(|_| Reply::endless(&b"<a href=\"demo-1.0.tar.gz\">x</a>\n"[..]));
    let url = format!("http://127.0.0.1:{}/simple/", server.port);
    let run = bounded_run(
        &ctx,
        &["compile", "requirements.in", "--python", "3.9", "--platform", "linux/amd64", "--index-url", &url],
    );
    run.code(3);
    assert_mentions(&run, &["index page at", &format!("{url}demo/"), "256 MiB", "hint:"]);
}

#[test]
fn an_endless_release_file_is_refused() {
    let ctx = TestContext::new();
    let keyring = ctx.write("keyring.gpg", "");
    let server = Server::start(|_| Reply::endless(&b"Origin: Debian\nLabel: Debian\n"[..]));
    let mirror = format!("http://127.0.0.1:{}/debian", server.port);
    let run = bounded_run(
        &ctx,
        &[
            "debian",
            "resolve",
            "--suite",
            "stable",
            "--mirror",
            &mirror,
            "--keyring",
            &keyring.display().to_string(),
            "--arch",
            "amd64",
            "hello",
        ],
    );
    run.code(3);
    assert_mentions(&run, &["Release file at", &format!("{mirror}/dists/stable/InRelease"), "32 MiB"]);
}

/// `marqo-base push REPO --oci img --tag TAG --yes` against a real registry.
fn push(ctx: &TestContext, repo: &str, tag: &str) -> Run {
    let mut cmd = ctx.command(&["push", repo, "--oci", "img", "--tag", tag, "--yes"]);
    cmd.env_remove("DOCKER_CONFIG").env_remove("SSL_CERT_FILE");
    Run::from(cmd.output().expect("run marqo-base"))
}

#[test]
fn tag_next_counts_past_u64_and_refuses_a_too_long_number() {
    let ctx = TestContext::new();
    let img = TestImage::new(11).layers(&[1024]).write(&ctx.work().join("img"), "latest");
    let registry = DockerRegistry::start();
    let repo = format!("{}/base", registry.host());

    push(&ctx, &repo, "18446744073709551615").success();
    let run = push(&ctx, &repo, "next");
    run.success();
    assert_eq!(
        run.stdout.trim(),
        format!("{repo}:18446744073709551616@{}", img.index.digest),
        "{}",
        run.stderr
    );

    let longest = "9".repeat(128);
    push(&ctx, &repo, &longest).success();
    let run = push(&ctx, &repo, "next");
    run.code(2);
    assert_mentions(&run, &["--tag next", "128 digits", "longer than the 128 characters a tag may have"]);
}

/// An index with `demo` 1.0 and 2.0 (pure-Python wheels).
fn demo_index() -> test_support::Index {
    let index = test_support::Index::new();
    test_support::Wheel::new("demo", "1.0").publish(&index);
    test_support::Wheel::new("demo", "2.0").publish(&index);
    index
}

fn compile(ctx: &TestContext, input: &str, extra: &[&str]) -> Run {
    let mut args = vec!["compile", input, "--python", "3.9", "--platform", "linux/amd64"];
    args.extend_from_slice(extra);
    ctx.run(&args)
}

#[test]
fn two_conflicting_pins_name_both_lines() {
    let index = demo_index();
    let server = index.serve();
    let ctx = TestContext::new();
    ctx.write("base.in", "demo==2.0\n");
    ctx.write("requirements.in", "# app\ndemo==1.0\n-r base.in\n");
    let run = compile(&ctx, "requirements.in", &["--index-url", &server.url()]);
    run.code(2);
    assert_mentions(
        &run,
        &["`demo==1.0` (requirements.in:2) and `demo==2.0` (base.in:1) allow no common version", "hint:"],
    );
    assert!(!run.stderr.contains('∅'), "{}", run.stderr);

    // A constraint file's line is named the same way.
    ctx.write("requirements.in", "demo>=2\n");
    ctx.write("constraints.txt", "\n\ndemo<2\n");
    let run = compile(&ctx, "requirements.in", &["--index-url", &server.url(), "-c", "constraints.txt"]);
    run.code(2);
    assert_mentions(&run, &["`demo>=2` (requirements.in:1) and `demo<2` (constraints.txt:3)"]);
}

#[test]
fn an_unsupported_python_says_what_is_supported() {
    let ctx = TestContext::new();
    ctx.write("requirements.in", "demo\n");
    for version in ["2.7", "4.0", "4.0.1"] {
        let run = ctx.run(&[
            "compile",
            "requirements.in",
            "--python",
            version,
            "--index-url",
            "http://127.0.0.1:9/",
        ]);
        run.code(2);
        assert_mentions(
            &run,
            &[&format!("Python `{version}` is not supported: only CPython 3 can be targeted")],
        );
    }
    let run =
        ctx.run(&["compile", "requirements.in", "--python", "three", "--index-url", "http://127.0.0.1:9/"]);
    run.code(2);
    assert_mentions(&run, &["bad Python version `three`; expected X.Y or X.Y.Z"]);
}

#[test]
fn a_byte_order_mark_is_stripped_as_pip_does() {
    let index = demo_index();
    let server = index.serve();
    let ctx = TestContext::new();
    ctx.write("requirements.in", "\u{feff}demo==1.0\n");
    let run = compile(&ctx, "requirements.in", &["--index-url", &server.url()]);
    run.success();
    assert!(
        ctx.read("requirements.txt").lines().any(|l| l == "demo==1.0"),
        "{}",
        ctx.read("requirements.txt")
    );
}

#[test]
fn find_links_resolve_as_pip_does_and_a_missing_one_is_a_warning() {
    let index = demo_index();
    let ctx = TestContext::new();
    let wheels = ctx.work().join("sub/wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    let wheel = "demo-1.0-py3-none-any.whl";
    std::fs::copy(index.find_links_dir().join(wheel), wheels.join(wheel)).unwrap();
    // `-f wheels` inside sub/requirements.in is sub/wheels, though the run is in the parent.
    ctx.write("sub/requirements.in", "--no-index\n-f wheels\n-f nowhere\ndemo\n");
    let mut cmd = ctx.command(&[
        "compile",
        "sub/requirements.in",
        "--python",
        "3.9",
        "--platform",
        "linux/amd64",
        "--find-links",
        "missing-on-the-command-line",
    ]);
    // The host's kind of setting: a PIP_FIND_LINKS directory that does not exist.
    cmd.env("PIP_FIND_LINKS", "/nonexistent/opt/wheels");
    let run = Run::from(cmd.output().unwrap());
    run.success();
    assert!(ctx.read("sub/requirements.txt").lines().any(|l| l == "demo==1.0"), "{}", run.stderr);
    assert_mentions(
        &run,
        &[
            "sub/requirements.in:3: find-links location `nowhere` is ignored",
            "find-links location `missing-on-the-command-line` (from option --find-links) is ignored",
            "find-links location `/nonexistent/opt/wheels` (from environment variable PIP_FIND_LINKS) is ignored",
        ],
    );

    // On the command line a relative directory is relative to the working directory.
    ctx.write("top.in", "--no-index\ndemo\n");
    compile(&ctx, "top.in", &["--find-links", "sub/wheels", "-o", "top.txt"]).success();
    assert!(ctx.read("top.txt").lines().any(|l| l == "demo==1.0"), "{}", ctx.read("top.txt"));
}
