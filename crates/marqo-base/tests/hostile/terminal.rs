//! Nothing from a server reaches the terminal raw (issue 30, class 7): a platform string, an
//! error body or a requirement from an index that holds escape sequences, carriage returns
//! or bidirectional overrides is printed escaped, so a hostile registry cannot move the
//! cursor up and rewrite an `UNSIGNED` line into a signed-looking one.

use test_support::scripted::{Reply, Server};

use crate::common::{Run, TestContext};

/// What a hostile server puts into its strings: up one line, back to its start, and a text of
/// its own; then a C1 CSI, a right-to-left override and a backspace.
const HOSTILE: &str = "\u{1b}[1A\r  signed (1 signature(s) by this key)\u{9b}2K\u{202e}\u{8}";
/// The same, as the printer writes it: every control character visible.
const ESCAPED: &str = "\\u{1b}[1A\\r  signed (1 signature(s) by this key)\\u{9b}2K\\u{202e}\\u{8}";

/// HOSTILE as a JSON string's content (what the server's document holds).
fn json_hostile() -> String {
    let quoted = serde_json::to_string(HOSTILE).unwrap();
    quoted[1..quoted.len() - 1].to_string()
}

/// No control character but newlines and tabs, and no bidirectional override, in `text`.
#[track_caller]
fn assert_inert(what: &str, text: &str) {
    let raw: Vec<char> = text
        .chars()
        .filter(|&c| {
            (c.is_control() && c != '\n' && c != '\t')
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
        })
        .collect();
    assert!(raw.is_empty(), "{what} holds raw {raw:?}:\n{}", text.escape_debug());
}

#[track_caller]
fn assert_terminal_safe(run: &Run) {
    assert_inert("stdout", &run.stdout);
    assert_inert("stderr", &run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

fn run_plain(ctx: &TestContext, args: &[&str]) -> Run {
    let mut cmd = ctx.command(args);
    cmd.env_remove("DOCKER_CONFIG").env_remove("SSL_CERT_FILE").stdin(std::process::Stdio::null());
    Run::from(cmd.output().expect("run marqo-base"))
}

#[test]
fn a_platform_string_cannot_rewrite_an_unsigned_line() {
    let ctx = TestContext::new();
    let mut keygen = ctx.command(&["key", "generate", "--key", "k.key"]);
    keygen.env("MARQO_BASE_KEY_PASSWORD", "pw").stdin(std::process::Stdio::null());
    Run::from(keygen.output().unwrap()).success();
    let child = format!("sha256:{}", "ab".repeat(32));
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{child}","size":420,"platform":{{"os":"linux","architecture":"amd64","variant":"\n{}"}}}}]}}"#,
        json_hostile()
    );
    let server = Server::start(move |req| match req.path.as_str() {
        "/v2/" => Reply::ok("{}"),
        "/v2/base/manifests/1" => {
            Reply::ok(index.clone()).header("Content-Type", "application/vnd.oci.image.index.v1+json")
        }
        _ => Reply::status(404),
    });
    let reference = format!("127.0.0.1:{}/base:1", server.port);
    let run = run_plain(&ctx, &["verify", &reference, "--key", "k.key.pub"]);
    run.code(1);
    assert_terminal_safe(&run);
    // The line is still there, still UNSIGNED, with the server's text shown for what it is.
    let line = run.stdout.lines().find(|l| l.contains(&child)).unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(line.contains(&format!("linux/amd64/\\n{ESCAPED}")), "{line}");
    assert!(line.ends_with("UNSIGNED: no signature"), "{line}");
    assert!(run.stderr.contains("is not signed by"), "{}", run.stderr);

    // The JSON report keeps the platform as the server sent it, in JSON's own escapes.
    let run = run_plain(&ctx, &["--format", "json", "verify", &reference, "--key", "k.key.pub"]);
    run.code(1);
    assert_terminal_safe(&run);
    let doc: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let whats: Vec<&str> =
        doc["manifests"].as_array().unwrap().iter().filter_map(|m| m["what"].as_str()).collect();
    assert!(whats.contains(&format!("linux/amd64/\n{HOSTILE}").as_str()), "{whats:?}");
}

#[test]
fn a_registry_error_body_is_shown_escaped_on_one_line() {
    let ctx = TestContext::new();
    let body =
        format!(r#"{{"errors":[{{"code":"DENIED","message":"no\nhint: all good{}"}}]}}"#, json_hostile());
    let server = Server::start(move |req| match req.path.as_str() {
        "/v2/" => Reply::ok("{}"),
        _ => Reply { status: 403, ..Reply::ok(body.clone()) }.header("Content-Type", "application/json"),
    });
    let reference = format!("127.0.0.1:{}/base:1", server.port);
    let run = run_plain(&ctx, &["pull", &reference, "--oci", "out"]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert_terminal_safe(&run);
    assert!(run.stderr.contains(&format!("DENIED no\\nhint: all good{ESCAPED}")), "{}", run.stderr);
    // The server's newline made no line of its own.
    assert!(!run.stderr.lines().any(|l| l.starts_with("hint: all good")), "{}", run.stderr);
    assert!(!ctx.exists("out"));
}

#[test]
fn a_requirement_from_an_index_is_shown_escaped() {
    let index = test_support::Index::new();
    test_support::Wheel::new("demo", "1.0").requires(&format!("other{HOSTILE}")).publish(&index);
    let server = index.serve();
    let ctx = TestContext::new();
    ctx.write("requirements.in", "demo\n");
    let run = ctx.run(&[
        "compile",
        "requirements.in",
        "--python",
        "3.9",
        "--platform",
        "linux/amd64",
        "--index-url",
        &server.url(),
    ]);
    assert_terminal_safe(&run);
    assert!(run.stderr.contains("\\u{1b}[1A\\r"), "{}", run.stderr);
}

/// An index entry's media type (a JSON string the registry chose) in the refusal of an
/// artifact: shown on its line, its newline escaped, so it forges no `hint:` line.
#[test]
fn a_media_type_from_an_index_makes_no_line_of_its_own() {
    let ctx = TestContext::new();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/x-thing\nhint: all good, nothing was refused",
            "digest": format!("sha256:{}", "a".repeat(64)),
            "size": 2
        }]
    })
    .to_string();
    let server = Server::start(move |req| match req.path.as_str() {
        "/v2/" => Reply::ok("{}"),
        _ => Reply::ok(index.clone()).header("Content-Type", "application/vnd.oci.image.index.v1+json"),
    });
    let reference = format!("127.0.0.1:{}/base:1", server.port);
    let run = run_plain(&ctx, &["pull", &reference, "--oci", "out"]);
    run.code(2);
    assert_terminal_safe(&run);
    assert!(run.stderr.contains("application/x-thing\\nhint: all good"), "{}", run.stderr);
    assert!(!run.stderr.lines().any(|l| l.starts_with("hint: all good")), "{}", run.stderr);
    assert!(!ctx.exists("out"));
}
