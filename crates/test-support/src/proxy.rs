//! An HTTP/1.1 proxy on 127.0.0.1 in front of a [`DockerRegistry`](crate::DockerRegistry),
//! for what a real registry will not do on demand: drop an upload midway, cut or alter a
//! blob download, fail with a status, run a hook (another pusher) at a chosen moment, and
//! act as a Bearer-token auth gate with a token server at `/token`. Every request is
//! logged. One request per connection (`Connection: close`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A request the proxy saw, and what it did with it.
#[derive(Debug, Clone)]
pub struct Logged {
    /// `GET`, `PATCH`, ...
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// The request's headers.
    pub headers: Vec<(String, String)>,
    /// The request body's length.
    pub body_len: usize,
    /// The status sent back (0: the connection was dropped).
    pub status: u16,
    /// A fault was injected into this request.
    pub faulted: bool,
}

impl Logged {
    /// A request header by name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

type Hook = Box<dyn FnMut() + Send>;
/// A reply: status, headers, body.
type Reply = (u16, Vec<(String, String)>, Vec<u8>);

#[derive(Default)]
struct Faults {
    /// Drop (close without forwarding) PATCH requests once this many PATCH body bytes have
    /// been forwarded, this many times.
    drop_patch_after: Option<(u64, usize)>,
    patch_bytes: u64,
    /// Cut blob GET replies after this many body bytes, this many times.
    cut_blob_get: Option<(usize, usize)>,
    /// Flip a byte of every blob GET reply.
    tamper_blobs: bool,
    /// Answer requests whose method and path contain these with a status, this many times.
    fail: Vec<(String, String, u16, usize)>,
    /// Page tag lists (`n=`, `last=`, `Link`), which distribution 2.8 does not do.
    paginate_tags: bool,
    /// Run once, after forwarding the first request whose method and path contain these.
    hooks: Vec<(String, String, Option<Hook>)>,
}

/// The token server and gate.
struct TokenAuth {
    user: String,
    password: String,
    /// Valid tokens and the scopes each grants.
    tokens: Mutex<HashMap<String, Vec<String>>>,
    issued: AtomicUsize,
}

struct State {
    upstream: SocketAddr,
    addr: SocketAddr,
    log: Mutex<Vec<Logged>>,
    faults: Mutex<Faults>,
    auth: Option<TokenAuth>,
}

/// A running proxy; dropping it stops it.
pub struct Proxy {
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("addr", &self.state.addr).finish()
    }
}

impl Proxy {
    /// A proxy forwarding to the registry at `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> Proxy {
        Proxy::start_inner(upstream, None)
    }

    /// A proxy that also demands Bearer tokens, issued at `/token` to `user`/`password`
    /// (Basic auth) for the scopes asked, as Docker Hub's token flow does.
    pub fn with_token_auth(upstream: &str, user: &str, password: &str) -> Proxy {
        let auth = TokenAuth {
            user: user.into(),
            password: password.into(),
            tokens: Mutex::new(HashMap::new()),
            issued: AtomicUsize::new(0),
        };
        Proxy::start_inner(upstream, Some(auth))
    }

    fn start_inner(upstream: &str, auth: Option<TokenAuth>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("address");
        let state = Arc::new(State {
            upstream: upstream.parse().expect("upstream is 127.0.0.1:PORT"),
            addr,
            log: Mutex::default(),
            faults: Mutex::default(),
            auth,
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let state = Arc::clone(&state);
                            std::thread::spawn(move || handle(stream, &state));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Proxy { state, stop, thread: Some(thread) }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn host(&self) -> String {
        self.state.addr.to_string()
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<Logged> {
        self.state.log.lock().unwrap().clone()
    }

    /// Forgets the requests logged so far.
    pub fn clear_log(&self) {
        self.state.log.lock().unwrap().clear();
    }

    /// Drops PATCH requests (closing the connection, forwarding nothing) once `bytes` of
    /// PATCH bodies have gone through, `times` times (`usize::MAX`: always).
    pub fn drop_patches_after(&self, bytes: u64, times: usize) {
        let mut faults = self.state.faults.lock().unwrap();
        faults.drop_patch_after = Some((bytes, times));
        faults.patch_bytes = 0;
    }

    /// Cuts blob GET replies after `bytes` body bytes, `times` times.
    pub fn cut_blob_downloads(&self, bytes: usize, times: usize) {
        self.state.faults.lock().unwrap().cut_blob_get = Some((bytes, times));
    }

    /// Alters one byte of every blob GET reply.
    pub fn tamper_blobs(&self, on: bool) {
        self.state.faults.lock().unwrap().tamper_blobs = on;
    }

    /// Answers `times` requests whose method is `method` and whose path contains `path` with
    /// `status`, without forwarding them.
    pub fn fail(&self, method: &str, path: &str, status: u16, times: usize) {
        self.state.faults.lock().unwrap().fail.push((method.into(), path.into(), status, times));
    }

    /// Pages `GET .../tags/list` replies by their `n=` (default 100) and `last=`, with a
    /// `Link: <...>; rel="next"` header while tags remain, as later registries do.
    pub fn paginate_tags(&self, on: bool) {
        self.state.faults.lock().unwrap().paginate_tags = on;
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        let mut faults = self.state.faults.lock().unwrap();
        faults.drop_patch_after = None;
        faults.cut_blob_get = None;
        faults.tamper_blobs = false;
        faults.fail.clear();
    }

    /// Runs `hook` once, after forwarding the first request with this method and a path
    /// containing `path`, before the reply goes back (a concurrent client acting then).
    pub fn after(&self, method: &str, path: &str, hook: impl FnMut() + Send + 'static) {
        self.state.faults.lock().unwrap().hooks.push((method.into(), path.into(), Some(Box::new(hook))));
    }

    /// Invalidates every token issued so far (they "expire").
    pub fn expire_tokens(&self) {
        if let Some(auth) = &self.state.auth {
            auth.tokens.lock().unwrap().clear();
        }
    }

    /// How many tokens the token server issued.
    pub fn tokens_issued(&self) -> usize {
        self.state.auth.as_ref().map_or(0, |a| a.issued.load(Ordering::Relaxed))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Incoming {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Incoming {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn handle(stream: TcpStream, state: &State) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(stream);
    let Some(request) = read_request(&mut reader) else { return };
    let mut client = reader.into_inner();
    let mut entry = Logged {
        method: request.method.clone(),
        path: request.path.clone(),
        headers: request.headers.clone(),
        body_len: request.body.len(),
        status: 0,
        faulted: false,
    };

    if let Some(auth) = &state.auth {
        if let Some(reply) = gate(auth, state, &request) {
            entry.status = reply.0;
            state.log.lock().unwrap().push(entry);
            let _ = write_reply(&mut client, reply.0, &reply.1, &reply.2, None);
            return;
        }
    }

    let mut faults = state.faults.lock().unwrap();
    if let Some(i) =
        faults.fail.iter().position(|(m, p, _, n)| *n > 0 && *m == request.method && request.path.contains(p))
    {
        faults.fail[i].3 -= 1;
        let status = faults.fail[i].2;
        drop(faults);
        entry.status = status;
        entry.faulted = true;
        state.log.lock().unwrap().push(entry);
        let _ = write_reply(&mut client, status, &[], b"", None);
        return;
    }
    if request.method == "PATCH" {
        if let Some((limit, times)) = faults.drop_patch_after {
            if times > 0 && faults.patch_bytes + request.body.len() as u64 > limit {
                faults.drop_patch_after = Some((limit, times - 1));
                drop(faults);
                entry.faulted = true;
                state.log.lock().unwrap().push(entry);
                let _ = client.shutdown(Shutdown::Both);
                return;
            }
        }
        faults.patch_bytes += request.body.len() as u64;
    }
    drop(faults);

    let Some((status, mut headers, mut body)) = forward(state, &request) else {
        state.log.lock().unwrap().push(entry);
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    entry.status = status;
    let paginate = state.faults.lock().unwrap().paginate_tags;
    if paginate && status == 200 && request.method == "GET" && request.path.contains("/tags/list") {
        (headers, body) = page_of_tags(&request.path, headers, &body);
    }

    let mut cut = None;
    let is_blob_get = request.method == "GET"
        && request.path.contains("/blobs/sha256:")
        && (status == 200 || status == 206);
    {
        let mut faults = state.faults.lock().unwrap();
        if is_blob_get && faults.tamper_blobs && !body.is_empty() {
            let last = body.len() - 1;
            body[last] ^= 0xff;
            entry.faulted = true;
        }
        if is_blob_get {
            if let Some((bytes, times)) = faults.cut_blob_get {
                if times > 0 && body.len() > bytes {
                    faults.cut_blob_get = Some((bytes, times - 1));
                    cut = Some(bytes);
                    entry.faulted = true;
                }
            }
        }
        let hook = faults
            .hooks
            .iter_mut()
            .find(|(m, p, h)| h.is_some() && *m == request.method && request.path.contains(p.as_str()))
            .and_then(|(_, _, h)| h.take());
        drop(faults);
        if let Some(mut hook) = hook {
            hook();
        }
    }
    state.log.lock().unwrap().push(entry);
    let head_only = request.method == "HEAD";
    let _ = write_reply(&mut client, status, &headers, if head_only { b"" } else { &body }, cut);
}

/// One page of a tag list reply, for `n=` and `last=` in `path`, with a `Link` to the next.
fn page_of_tags(
    path: &str,
    mut headers: Vec<(String, String)>,
    body: &[u8],
) -> (Vec<(String, String)>, Vec<u8>) {
    let Ok(serde_json::Value::Object(mut reply)) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (headers, body.to_vec());
    };
    let mut tags: Vec<String> = reply
        .get("tags")
        .and_then(|t| t.as_array())
        .map(|t| t.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    tags.sort();
    let n: usize = query_values(path, "n").first().and_then(|n| n.parse().ok()).unwrap_or(100);
    let last = query_values(path, "last").into_iter().next();
    let rest: Vec<String> = tags.into_iter().filter(|t| last.as_ref().is_none_or(|l| t > l)).collect();
    let page: Vec<String> = rest.iter().take(n).cloned().collect();
    if rest.len() > n {
        let base = path.split('?').next().unwrap_or_default();
        let next = format!("<{base}?n={n}&last={}>; rel=\"next\"", page.last().cloned().unwrap_or_default());
        headers.push(("Link".into(), next));
    }
    reply.insert("tags".into(), serde_json::json!(page));
    (headers, serde_json::to_vec(&reply).unwrap_or_default())
}

/// Answers token requests and refuses `/v2/` requests without a token for their scope.
fn gate(auth: &TokenAuth, state: &State, request: &Incoming) -> Option<Reply> {
    let json = || vec![("Content-Type".to_string(), "application/json".to_string())];
    if request.path.starts_with("/token") {
        let expected = format!("Basic {}", base64(&format!("{}:{}", auth.user, auth.password)));
        if request.header("authorization") != Some(expected.as_str()) {
            return Some((401, json(), br#"{"details":"incorrect username or password"}"#.to_vec()));
        }
        let scopes: Vec<String> = query_values(&request.path, "scope");
        let n = auth.issued.fetch_add(1, Ordering::Relaxed) + 1;
        let token = format!("token-{n}");
        auth.tokens.lock().unwrap().insert(token.clone(), scopes);
        let body = format!(r#"{{"token":"{token}","access_token":"{token}","expires_in":300}}"#);
        return Some((200, json(), body.into_bytes()));
    }
    if !request.path.starts_with("/v2/") {
        return Some((404, json(), b"{}".to_vec()));
    }
    let (repository, action) = required_scope(request);
    let granted = request
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| auth.tokens.lock().unwrap().get(t).cloned());
    let allowed = match (&granted, &repository) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(scopes), Some(repo)) => scopes.iter().any(|s| {
            s.strip_prefix("repository:").and_then(|s| s.rsplit_once(':')).is_some_and(|(name, actions)| {
                name == repo && actions.split(',').any(|a| a == action || a == "*")
            })
        }),
    };
    if allowed {
        return None;
    }
    let scope = repository.map(|r| format!(",scope=\"repository:{r}:{action}\"")).unwrap_or_default();
    let challenge = format!("Bearer realm=\"http://{}/token\",service=\"test\"{scope}", state.addr);
    let mut headers = json();
    headers.push(("WWW-Authenticate".into(), challenge));
    Some((
        401,
        headers,
        br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec(),
    ))
}

/// The repository a `/v2/NAME/...` path is about, and `pull` or `push`.
fn required_scope(request: &Incoming) -> (Option<String>, &'static str) {
    let path = request.path.split('?').next().unwrap_or_default();
    let rest = path.strip_prefix("/v2/").unwrap_or_default();
    let repository = ["/blobs/", "/manifests/", "/tags/"]
        .iter()
        .filter_map(|m| rest.find(m))
        .min()
        .map(|i| rest[..i].to_string());
    let action = if matches!(request.method.as_str(), "GET" | "HEAD") { "pull" } else { "push" };
    (repository, action)
}

fn query_values(path: &str, key: &str) -> Vec<String> {
    let query = path.split_once('?').map(|(_, q)| q).unwrap_or_default();
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}

fn base64(input: &str) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = input.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Incoming> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let headers = read_headers(reader)?;
    let find =
        |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let body = if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(reader)?
    } else {
        let len: usize = find("content-length").and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body).ok()?;
        body
    };
    Some(Incoming { method, path, headers, body })
}

fn read_headers(reader: &mut impl BufRead) -> Option<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Some(headers);
        }
        let (k, v) = line.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
}

fn read_chunked(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        if size == 0 {
            read_headers(reader)?;
            return Some(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).ok()?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf).ok()?;
    }
}

/// Sends `request` to the registry and reads its whole reply.
fn forward(state: &State, request: &Incoming) -> Option<Reply> {
    let mut upstream = TcpStream::connect(state.upstream).ok()?;
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.path);
    for (k, v) in &request.headers {
        let skip = ["connection", "content-length", "transfer-encoding", "keep-alive"]
            .iter()
            .any(|h| k.eq_ignore_ascii_case(h))
            || (state.auth.is_some() && k.eq_ignore_ascii_case("authorization"));
        if !skip {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", request.body.len()));
    upstream.write_all(head.as_bytes()).ok()?;
    upstream.write_all(&request.body).ok()?;
    let mut reader = BufReader::new(upstream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).ok()?;
    let status: u16 = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let headers = read_headers(&mut reader)?;
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    let body = if request.method == "HEAD" || status == 204 || status == 304 {
        Vec::new()
    } else if chunked {
        read_chunked(&mut reader)?
    } else {
        let mut body = Vec::new();
        reader.read_to_end(&mut body).ok()?;
        body
    };
    let headers = headers
        .into_iter()
        .filter(|(k, _)| {
            !k.eq_ignore_ascii_case("transfer-encoding") && !k.eq_ignore_ascii_case("connection")
        })
        .filter(|(k, _)| request.method == "HEAD" || !k.eq_ignore_ascii_case("content-length"))
        .collect();
    Some((status, headers, body))
}

/// Writes a reply; with `cut`, only that many body bytes (then the connection is closed).
fn write_reply(
    client: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    cut: Option<usize>,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    let has_length = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_length {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    client.write_all(head.as_bytes())?;
    client.write_all(&body[..cut.unwrap_or(body.len()).min(body.len())])?;
    client.flush()?;
    client.shutdown(Shutdown::Both)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_rfc() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("user:pass", "dXNlcjpwYXNz"),
        ] {
            assert_eq!(super::base64(plain), encoded);
        }
    }
}
