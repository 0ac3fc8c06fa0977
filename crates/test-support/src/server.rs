//! A small HTTP/1.1 server for an [`Index`](crate::Index): std threads, keep-alive, ranges.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::index::{project_html, project_json, root_html, root_json, Shared};
use crate::util::{html_escape, normalize, sha256_hex, url_decode, url_encode};

/// How often blocked accepts and reads look at the stop flag.
const POLL: Duration = Duration::from_millis(20);
/// Largest request head we accept.
const MAX_HEAD: usize = 64 * 1024;

/// A running index server on `127.0.0.1`, started by [`Index::serve`](crate::Index::serve).
///
/// Routes: `/simple/` and `/simple/<normalized>/` (PEP 691 JSON if the `Accept` header prefers
/// `application/vnd.pypi.simple.v1+json`, else PEP 503 HTML; a missing slash or an
/// unnormalized name gets a 301, an unknown project a 404), `/files/<name>` (with ranges),
/// `/files/<name>.metadata` (PEP 658, if enabled) and `/files/` (a `--find-links` page).
///
/// Each connection runs in its own thread and serves requests until EOF or
/// `Connection: close`. Dropping the server stops accepting, closes idle connections and
/// joins every thread.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    log: Arc<Log>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Requests seen and faults still to inject.
#[derive(Debug, Default)]
struct Log {
    requests: Mutex<Vec<String>>,
    faults: Mutex<Vec<Fault>>,
}

#[derive(Debug)]
struct Fault {
    prefix: String,
    status: u16,
    remaining: usize,
}

impl Server {
    pub(crate) fn start(shared: Arc<Shared>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("listener address");
        let log = Arc::new(Log::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
            std::thread::Builder::new()
                .name(format!("index-server-{}", addr.port()))
                .spawn(move || accept_loop(listener, shared, log, stop))
                .expect("spawn server thread")
        };
        Self { addr, log, stop, thread: Some(thread) }
    }

    /// The index URL, `http://127.0.0.1:PORT/simple/`.
    pub fn url(&self) -> String {
        format!("{}/simple/", self.base_url())
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of the flat file listing, for pip's `--find-links URL`.
    pub fn find_links_url(&self) -> String {
        format!("{}/files/", self.base_url())
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far as `"<METHOD> <path>"` (path without the query), in arrival order.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.log.requests).clone()
    }

    /// How many requests so far had a path starting with `prefix` (any method).
    pub fn count(&self, prefix: &str) -> usize {
        lock(&self.log.requests)
            .iter()
            .filter(|r| r.split_once(' ').is_some_and(|(_, path)| path.starts_with(prefix)))
            .count()
    }

    /// Forgets the requests seen so far.
    pub fn clear_requests(&self) {
        lock(&self.log.requests).clear();
    }

    /// Answers the next `times` requests whose path starts with `prefix` with `status`
    /// (and a short text body) instead of the real response.
    pub fn fail_next(&self, prefix: &str, status: u16, times: usize) {
        lock(&self.log.faults).push(Fault { prefix: prefix.to_string(), status, remaining: times });
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, log: Arc<Log>, stop: Arc<AtomicBool>) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (shared, log, stop) = (Arc::clone(&shared), Arc::clone(&log), Arc::clone(&stop));
                let spawned = std::thread::Builder::new().name("index-connection".into()).spawn(move || {
                    // A broken connection only ends that connection.
                    let _ = serve_connection(stream, &shared, &log, &stop);
                });
                if let Ok(handle) = spawned {
                    connections.push(handle);
                }
                connections.retain(|h| !h.is_finished());
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(_) => std::thread::sleep(POLL),
        }
    }
    for handle in connections {
        let _ = handle.join();
    }
}

/// A parsed request head.
struct Request {
    method: String,
    path: String,
    version: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn wants_close(&self) -> bool {
        let connection = self.header("connection").unwrap_or("").to_ascii_lowercase();
        if self.version == "HTTP/1.0" {
            !connection.contains("keep-alive")
        } else {
            connection.contains("close")
        }
    }
}

/// A response before serialisation.
struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Response {
    fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self { status, headers: vec![("Content-Type", content_type.to_string())], body: body.into() }
    }

    fn text(status: u16, body: &str) -> Self {
        Self::new(status, "text/plain; charset=utf-8", format!("{body}\n"))
    }

    fn redirect(location: String) -> Self {
        let mut r = Self::text(301, "moved");
        r.headers.push(("Location", location));
        r
    }

    fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

fn serve_connection(
    mut stream: TcpStream,
    shared: &Shared,
    log: &Log,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    stream.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let Some(head_len) = read_head(&mut stream, &mut buf, stop)? else {
            return Ok(());
        };
        let head: Vec<u8> = buf.drain(..head_len).collect();
        let Some(request) = parse_head(&head) else {
            write_response(&mut stream, &Response::text(400, "bad request"), false, true)?;
            return Ok(());
        };
        let body_len: usize =
            request.header("content-length").and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        while buf.len() < body_len {
            if !read_more(&mut stream, &mut buf, stop)? {
                return Ok(());
            }
        }
        buf.drain(..body_len);
        lock(&log.requests).push(format!("{} {}", request.method, request.path));
        let response = match take_fault(log, &request.path) {
            Some(status) => Response::text(status, "injected fault"),
            None => route(&request, shared),
        };
        let close = request.wants_close();
        write_response(&mut stream, &response, request.method == "HEAD", close)?;
        if close {
            return Ok(());
        }
    }
}

/// Reads until `buf` holds a complete request head; returns its length with the blank line,
/// or `None` on EOF or shutdown.
fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>, stop: &AtomicBool) -> std::io::Result<Option<usize>> {
    loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(pos + 4));
        }
        if buf.len() > MAX_HEAD || !read_more(stream, buf, stop)? {
            return Ok(None);
        }
    }
}

/// Appends what the peer sent next; `false` on EOF or shutdown.
fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>, stop: &AtomicBool) -> std::io::Result<bool> {
    let mut chunk = [0u8; 8192];
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(true);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

fn parse_head(head: &[u8]) -> Option<Request> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let path = target.split(['?', '#']).next().unwrap_or("");
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(Request {
        method: method.to_string(),
        path: url_decode(path),
        version: version.to_string(),
        headers,
    })
}

fn take_fault(log: &Log, path: &str) -> Option<u16> {
    let mut faults = lock(&log.faults);
    let fault = faults.iter_mut().find(|f| f.remaining > 0 && path.starts_with(&f.prefix))?;
    fault.remaining -= 1;
    Some(fault.status)
}

fn write_response(
    stream: &mut TcpStream,
    response: &Response,
    head_only: bool,
    close: bool,
) -> std::io::Result<()> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", response.status, reason(response.status));
    for (name, value) in &response.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    out.push_str(if close { "Connection: close\r\n\r\n" } else { "Connection: keep-alive\r\n\r\n" });
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&response.body);
    }
    stream.write_all(&bytes)?;
    stream.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

const JSON_TYPE: &str = "application/vnd.pypi.simple.v1+json";
const HTML_TYPE: &str = "text/html; charset=utf-8";

fn route(request: &Request, shared: &Shared) -> Response {
    if request.method != "GET" && request.method != "HEAD" {
        return Response::text(405, "method not allowed").header("Allow", "GET, HEAD".into());
    }
    let path = request.path.as_str();
    if path == "/simple" {
        return Response::redirect("/simple/".into());
    }
    if path == "/simple/" {
        let state = shared.lock();
        return if prefers_json(request, state.json) {
            Response::new(200, JSON_TYPE, root_json(&state))
        } else {
            Response::new(200, HTML_TYPE, root_html(&state))
        }
        .header("Vary", "Accept".into());
    }
    if let Some(rest) = path.strip_prefix("/simple/") {
        let (name, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let normalized = normalize(name);
        let state = shared.lock();
        let Some(files) = state.projects.get(&normalized) else {
            return Response::text(404, "no such project");
        };
        if !tail.is_empty() {
            return Response::text(404, "not found");
        }
        if name != normalized || !rest.ends_with('/') {
            return Response::redirect(format!("/simple/{normalized}/"));
        }
        return if prefers_json(request, state.json) {
            Response::new(200, JSON_TYPE, project_json(&normalized, files, state.pep658))
        } else {
            Response::new(200, HTML_TYPE, project_html(&normalized, files, state.pep658))
        }
        .header("Vary", "Accept".into());
    }
    if path == "/files/" || path == "/files" {
        return Response::new(200, HTML_TYPE, files_html(shared));
    }
    if let Some(filename) = path.strip_prefix("/files/") {
        return serve_file(request, shared, filename);
    }
    Response::text(404, "not found")
}

/// Whether the `Accept` header ranks PEP 691 JSON at least as high as any HTML type.
/// A missing header, or one matching only through `*/*`, gets HTML.
fn prefers_json(request: &Request, json_enabled: bool) -> bool {
    if !json_enabled {
        return false;
    }
    let (mut json_q, mut html_q) = (0.0f32, 0.0f32);
    for item in request.header("accept").unwrap_or("").split(',') {
        let mut params = item.split(';');
        let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = params
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/vnd.pypi.simple.v1+json" | "application/vnd.pypi.simple.latest+json" => {
                json_q = json_q.max(q)
            }
            "text/html"
            | "application/vnd.pypi.simple.v1+html"
            | "application/vnd.pypi.simple.latest+html"
            | "text/*"
            | "*/*" => html_q = html_q.max(q),
            _ => {}
        }
    }
    json_q > 0.0 && json_q >= html_q
}

fn files_html(shared: &Shared) -> String {
    let state = shared.lock();
    let mut out = String::from("<!DOCTYPE html>\n<html>\n<head><title>Files</title></head>\n<body>\n");
    for f in state.projects.values().flatten() {
        let href = html_escape(&format!("{}#sha256={}", url_encode(&f.filename), f.sha256));
        out.push_str(&format!("<a href=\"{href}\">{}</a><br/>\n", html_escape(&f.filename)));
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn serve_file(request: &Request, shared: &Shared, filename: &str) -> Response {
    let (body, ranges) = {
        let state = shared.lock();
        let metadata = filename.strip_suffix(".metadata").and_then(|dist| {
            state
                .projects
                .values()
                .flatten()
                .find(|f| f.filename == dist)
                .and_then(|f| f.metadata.clone())
                .filter(|_| state.pep658)
        });
        let known = state.projects.values().flatten().any(|f| f.filename == filename);
        let body = match metadata {
            Some(m) => Some(m),
            None if known => std::fs::read(shared.root().join("files").join(filename)).ok(),
            None => None,
        };
        (body, state.ranges)
    };
    let Some(body) = body else {
        return Response::text(404, "no such file");
    };
    let etag = format!("\"{}\"", &sha256_hex(&body)[..32]);
    let content_type = if filename.ends_with(".metadata") {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    };
    if !ranges {
        return Response::new(200, content_type, body).header("ETag", etag);
    }
    let len = body.len() as u64;
    let range = request.header("range").map(|r| parse_range(r, len));
    let response = match range {
        None | Some(RangeSpec::Ignore) => Response::new(200, content_type, body),
        Some(RangeSpec::Unsatisfiable) => {
            Response::text(416, "range not satisfiable").header("Content-Range", format!("bytes */{len}"))
        }
        Some(RangeSpec::Bytes(start, end)) => {
            Response::new(206, content_type, body[start as usize..=end as usize].to_vec())
                .header("Content-Range", format!("bytes {start}-{end}/{len}"))
        }
    };
    response.header("Accept-Ranges", "bytes".into()).header("ETag", etag)
}

/// What a `Range` header asks of a body of a given length.
#[derive(Debug, PartialEq)]
enum RangeSpec {
    /// Inclusive byte positions, already clamped to the body.
    Bytes(u64, u64),
    Unsatisfiable,
    /// Malformed or multi-range: answer with the whole body, as RFC 9110 allows.
    Ignore,
}

fn parse_range(header: &str, len: u64) -> RangeSpec {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeSpec::Ignore;
    };
    if spec.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return match b.parse::<u64>() {
            Ok(0) => RangeSpec::Unsatisfiable,
            Ok(_) if len == 0 => RangeSpec::Unsatisfiable,
            Ok(n) => RangeSpec::Bytes(len.saturating_sub(n), len - 1),
            Err(_) => RangeSpec::Ignore,
        };
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeSpec::Ignore;
    };
    let end = if b.is_empty() {
        u64::MAX
    } else {
        match b.parse::<u64>() {
            Ok(end) if end >= start => end,
            _ => return RangeSpec::Ignore,
        }
    };
    if start >= len {
        return RangeSpec::Unsatisfiable;
    }
    RangeSpec::Bytes(start, end.min(len - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeSpec::Bytes(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), RangeSpec::Bytes(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), RangeSpec::Bytes(90, 99));
        assert_eq!(parse_range("bytes=-1000", 100), RangeSpec::Bytes(0, 99));
        assert_eq!(parse_range("bytes=50-1000", 100), RangeSpec::Bytes(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 100), RangeSpec::Ignore);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeSpec::Ignore);
        assert_eq!(parse_range("items=0-1", 100), RangeSpec::Ignore);
    }
}
