//! A tiny scripted HTTP/1.1 server on 127.0.0.1 for client tests: one thread per
//! connection, one request per connection, each reply computed by a closure (statuses,
//! headers, byte ranges), every request recorded.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use url::Url;

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A reply to send.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send `body` again and again, with no `Content-Length`, until the client hangs up: a
    /// hostile server's endless reply.
    pub endless: bool,
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply { status: 200, headers: Vec::new(), body: body.into(), endless: false }
    }

    pub fn status(status: u16) -> Reply {
        Reply { status, headers: Vec::new(), body: Vec::new(), endless: false }
    }

    /// A 200 whose body is `chunk` repeated forever (`chunk` must not be empty).
    pub fn endless(chunk: impl Into<Vec<u8>>) -> Reply {
        Reply { endless: true, ..Reply::ok(chunk) }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// Answers a request for `data` honouring a `Range` header, as a file server would.
pub fn serve_range(req: &Request, data: &[u8]) -> Reply {
    let total = data.len();
    let Some(spec) = req.header("range").and_then(|r| r.strip_prefix("bytes=")) else {
        return Reply::ok(data.to_vec());
    };
    let (start, end) = match spec.split_once('-') {
        Some(("", n)) => (total.saturating_sub(n.parse().unwrap()), total - 1),
        Some((a, "")) => (a.parse().unwrap(), total - 1),
        Some((a, b)) => (a.parse().unwrap(), b.parse::<usize>().unwrap().min(total - 1)),
        None => return Reply::status(416),
    };
    if start > end {
        return Reply::status(416).header("Content-Range", &format!("bytes */{total}"));
    }
    Reply {
        status: 206,
        headers: vec![("Content-Range".into(), format!("bytes {start}-{end}/{total}"))],
        body: data[start..=end].to_vec(),
        endless: false,
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// A running server; it lives until the test process ends.
pub struct Server {
    pub port: u16,
    log: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread_log = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (handler, log) = (handler.clone(), thread_log.clone());
                std::thread::spawn(move || serve(stream, &*handler, &log));
            }
        });
        Server { port, log }
    }

    pub fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://127.0.0.1:{}{path}", self.port)).unwrap()
    }

    /// How many requests arrived so far.
    pub fn hits(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<Request>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let request = Request { method, path, headers };
    log.lock().unwrap().push(request.clone());
    let reply = handler(&request);
    let mut out = stream;
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", reply.status);
    if !reply.endless {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = out.write_all(head.as_bytes());
    if reply.endless && !reply.body.is_empty() {
        // Each write of a big buffer; the loop ends when the client closes the connection.
        let big = reply.body.repeat((1 << 20) / reply.body.len() + 1);
        while out.write_all(&big).is_ok() {}
        return;
    }
    let _ = out.write_all(&reply.body);
    let _ = out.flush();
}
