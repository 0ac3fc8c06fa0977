//! The HTTP server: negotiation, redirects, ranges, keep-alive, faults, shutdown.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{get, Conn, JSON, PIP_ACCEPT};
use serde_json::Value;
use test_support::{Index, Sdist, Wheel};

fn demo_index() -> Index {
    let index = Index::new().pep658(true);
    Wheel::new("Demo_Lib", "1.0")
        .requires_python(">=3.8")
        .upload_time("2024-01-01T00:00:00Z")
        .yanked("broken <build>")
        .publish(&index);
    Wheel::new("Demo_Lib", "1.1").publish(&index);
    Sdist::new("Demo_Lib", "1.1").publish(&index);
    index
}

#[test]
fn root_page_in_html_and_json() {
    let index = demo_index();
    Wheel::new("other", "1").publish(&index);
    let server = index.serve();
    assert!(server.url().starts_with("http://127.0.0.1:") && server.url().ends_with("/simple/"));
    let html = get(server.addr(), "/simple/", &[]);
    assert_eq!(html.status, 200);
    assert!(html.header("content-type").unwrap().starts_with("text/html"));
    assert!(html.text().contains("<a href=\"demo-lib/\">demo-lib</a>"));
    let json = get(server.addr(), "/simple/", &[("Accept", JSON)]);
    assert_eq!(json.header("content-type"), Some(JSON));
    let v: Value = serde_json::from_slice(&json.body).unwrap();
    assert_eq!(v["meta"]["api-version"], "1.1");
    assert_eq!(v["projects"], serde_json::json!([{ "name": "demo-lib" }, { "name": "other" }]));
}

#[test]
fn project_page_json_has_pep691_fields() {
    let index = demo_index();
    let server = index.serve();
    let reply = get(server.addr(), "/simple/demo-lib/", &[("Accept", PIP_ACCEPT)]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(JSON));
    let v: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(v["meta"]["api-version"], "1.1");
    assert_eq!(v["name"], "demo-lib");
    assert_eq!(v["versions"], serde_json::json!(["1.0", "1.1"]));
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    let f = &files[0];
    assert_eq!(f["filename"], "Demo_Lib-1.0-py3-none-any.whl");
    assert_eq!(f["url"], "../../files/Demo_Lib-1.0-py3-none-any.whl");
    assert_eq!(f["requires-python"], ">=3.8");
    assert_eq!(f["upload-time"], "2024-01-01T00:00:00Z");
    assert_eq!(f["yanked"], "broken <build>");
    let bytes = std::fs::read(index.file_path("Demo_Lib-1.0-py3-none-any.whl")).unwrap();
    assert_eq!(f["size"], bytes.len());
    assert_eq!(f["hashes"]["sha256"].as_str().unwrap(), sha256(&bytes));
    let meta_hash = f["core-metadata"]["sha256"].as_str().unwrap();
    assert_eq!(files[1]["yanked"], false);
    assert!(files[1].get("requires-python").is_none());
    assert!(files[2].get("core-metadata").is_none(), "no PEP 658 for sdists");

    let metadata = get(server.addr(), "/files/Demo_Lib-1.0-py3-none-any.whl.metadata", &[]);
    assert_eq!(metadata.status, 200);
    assert_eq!(sha256(&metadata.body), meta_hash);
    assert!(metadata.text().starts_with("Metadata-Version: 2.1\nName: Demo_Lib\nVersion: 1.0\n"));
}

#[test]
fn project_page_html_escapes_attributes() {
    let index = demo_index();
    let server = index.serve();
    let reply = get(server.addr(), "/simple/demo-lib/", &[("Accept", "text/html")]);
    assert!(reply.header("content-type").unwrap().starts_with("text/html"));
    let text = reply.text();
    let sha = sha256(&std::fs::read(index.file_path("Demo_Lib-1.0-py3-none-any.whl")).unwrap());
    assert!(
        text.contains(&format!(
            "<a href=\"../../files/Demo_Lib-1.0-py3-none-any.whl#sha256={sha}\" \
             data-requires-python=\"&gt;=3.8\" data-yanked=\"broken &lt;build&gt;\" data-core-metadata=\"sha256="
        )),
        "{text}"
    );
    assert!(text.contains(">Demo_Lib-1.1.tar.gz</a>"));
}

#[test]
fn json_off_pep658_off() {
    let index = Index::new().json(false);
    Wheel::new("a", "1").publish(&index);
    let server = index.serve();
    let reply = get(server.addr(), "/simple/a/", &[("Accept", JSON)]);
    assert!(reply.header("content-type").unwrap().starts_with("text/html"));
    assert!(!reply.text().contains("core-metadata"));
    assert_eq!(get(server.addr(), "/files/a-1-py3-none-any.whl.metadata", &[]).status, 404);
}

#[test]
fn redirects_and_not_found() {
    let server = demo_index().serve();
    for (path, location) in [
        ("/simple/demo-lib", "/simple/demo-lib/"),
        ("/simple/Demo_Lib/", "/simple/demo-lib/"),
        ("/simple/Demo.Lib", "/simple/demo-lib/"),
        ("/simple", "/simple/"),
    ] {
        let reply = get(server.addr(), path, &[]);
        assert_eq!((reply.status, reply.header("location")), (301, Some(location)), "{path}");
    }
    assert_eq!(get(server.addr(), "/simple/nope/", &[]).status, 404);
    assert_eq!(get(server.addr(), "/simple/nope", &[]).status, 404);
    assert_eq!(get(server.addr(), "/files/nope.whl", &[]).status, 404);
    assert_eq!(get(server.addr(), "/elsewhere", &[]).status, 404);
}

#[test]
fn ranges() {
    let index = Index::new();
    let name = Wheel::new("big", "1").large_file("big/blob", 100_000).publish(&index);
    let bytes = std::fs::read(index.file_path(&name)).unwrap();
    let len = bytes.len();
    let server = index.serve();
    let path = format!("/files/{name}");
    let mut conn = Conn::open(server.addr());

    let full = conn.send("GET", &path, &[]);
    assert_eq!((full.status, full.header("accept-ranges")), (200, Some("bytes")));
    assert_eq!(full.body, bytes);

    let r = conn.send("GET", &path, &[("Range", "bytes=10-19")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range").unwrap(), format!("bytes 10-19/{len}"));
    assert_eq!(r.body, &bytes[10..20]);

    let r = conn.send("GET", &path, &[("Range", "bytes=-22")]);
    assert_eq!(r.header("content-range").unwrap(), format!("bytes {}-{}/{len}", len - 22, len - 1));
    assert_eq!(r.body, &bytes[len - 22..]);

    let r = conn.send("GET", &path, &[("Range", &format!("bytes={}-", len - 5))]);
    assert_eq!((r.status, r.body.as_slice()), (206, &bytes[len - 5..]));

    let r = conn.send("GET", &path, &[("Range", &format!("bytes={len}-"))]);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range").unwrap(), format!("bytes */{len}"));

    let head = conn.send("HEAD", &path, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length").unwrap(), len.to_string());
    assert!(head.body.is_empty());

    // The connection survived all of it.
    assert_eq!(server.count("/files/"), 6);
    drop(conn);

    let index = Index::new().ranges(false);
    let name = Wheel::new("a", "1").publish(&index);
    let server = index.serve();
    let r = get(server.addr(), &format!("/files/{name}"), &[("Range", "bytes=0-3")]);
    assert_eq!((r.status, r.header("accept-ranges")), (200, None));
    assert!(r.body.len() > 4);
}

#[test]
fn keep_alive_request_log_and_connection_close() {
    let server = demo_index().serve();
    let mut conn = Conn::open(server.addr());
    assert_eq!(conn.send("GET", "/simple/", &[]).status, 200);
    assert_eq!(conn.send("HEAD", "/simple/demo-lib/", &[]).status, 200);
    assert_eq!(conn.send("GET", "/simple/demo-lib/?x=1", &[]).status, 200);
    let last = conn.send("GET", "/files/Demo_Lib-1.1.tar.gz", &[("Connection", "close")]);
    assert_eq!(last.header("connection"), Some("close"));
    assert!(conn.is_closed());
    assert_eq!(
        server.requests(),
        ["GET /simple/", "HEAD /simple/demo-lib/", "GET /simple/demo-lib/", "GET /files/Demo_Lib-1.1.tar.gz"]
    );
    assert_eq!(server.count("/simple/"), 3);
    assert_eq!(server.count("/simple/demo-lib/"), 2);
    server.clear_requests();
    assert!(server.requests().is_empty());
}

#[test]
fn injected_faults_then_recovery() {
    let server = demo_index().serve();
    server.fail_next("/simple/demo", 500, 2);
    assert_eq!(get(server.addr(), "/simple/", &[]).status, 200, "other paths unaffected");
    assert_eq!(get(server.addr(), "/simple/demo-lib/", &[]).status, 500);
    assert_eq!(get(server.addr(), "/simple/demo-lib/", &[]).status, 500);
    assert_eq!(get(server.addr(), "/simple/demo-lib/", &[]).status, 200);
    server.fail_next("/files/", 503, 1);
    assert_eq!(get(server.addr(), "/files/Demo_Lib-1.1.tar.gz", &[]).status, 503);
}

#[test]
fn files_published_after_serve_are_listed() {
    let index = Index::new();
    let server = index.serve();
    assert_eq!(get(server.addr(), "/simple/late/", &[]).status, 404);
    let name = Wheel::new("late", "1").publish(&index);
    assert!(get(server.addr(), "/simple/late/", &[]).text().contains(&name));
    assert!(get(server.addr(), "/files/", &[]).text().contains(&format!("href=\"{name}#sha256=")));
}

#[test]
fn drop_does_not_wait_for_idle_keep_alive_connections() {
    let index = demo_index();
    let server = index.serve();
    let addr = server.addr();
    let mut idle = Conn::open(addr);
    assert_eq!(idle.send("GET", "/simple/", &[]).status, 200);
    let _half_sent = {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /simple/ HTTP/1.1\r\n").unwrap();
        s
    };
    let start = Instant::now();
    drop(server);
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    assert!(idle.is_closed());
    assert!(std::net::TcpStream::connect(addr).is_err(), "listener closed");
}

#[test]
fn curl_sees_negotiation_redirects_and_ranges() {
    assert!(
        Command::new("curl").arg("--version").output().is_ok(),
        "curl is not installed: ./test.sh installs it"
    );
    let index = demo_index();
    let server = index.serve();
    let curl = |args: &[&str]| {
        let out = Command::new("curl").args(["-sS", "--noproxy", "*"]).args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let json = curl(&["-H", &format!("Accept: {PIP_ACCEPT}"), &format!("{}demo-lib/", server.url())]);
    assert_eq!(serde_json::from_str::<Value>(&json).unwrap()["name"], "demo-lib");
    let html = curl(&["-L", &format!("{}Demo_Lib", server.url())]);
    assert!(html.contains("<h1>Links for demo-lib</h1>"));
    let status = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{size_download}",
        "-r",
        "0-99",
        &format!("{}/files/Demo_Lib-1.1-py3-none-any.whl", server.base_url()),
    ]);
    assert_eq!(status, "206 100");
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
