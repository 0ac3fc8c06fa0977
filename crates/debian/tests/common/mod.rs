//! Test support: `.deb` builders, a signed apt repository made with the real Debian tools
//! (`dpkg-deb`, `apt-ftparchive`, `gpg`), and a static HTTP server on 127.0.0.1.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A package to build with `dpkg-deb`.
#[derive(Debug, Clone)]
pub struct Deb {
    name: String,
    version: String,
    arch: String,
    fields: Vec<(String, String)>,
    files: Vec<(String, Vec<u8>, u32)>,
    symlinks: Vec<(String, String)>,
    dirs: Vec<(String, u32)>,
    hardlinks: Vec<(String, String)>,
    /// Header owners other than root's: path, user, uid, group, gid.
    owners: Vec<(String, String, u64, String, u64)>,
    control_files: Vec<(String, String, u32)>,
}

impl Deb {
    pub fn new(name: &str, version: &str) -> Deb {
        Deb {
            name: name.into(),
            version: version.into(),
            arch: "all".into(),
            fields: Vec::new(),
            files: Vec::new(),
            symlinks: Vec::new(),
            dirs: Vec::new(),
            hardlinks: Vec::new(),
            owners: Vec::new(),
            control_files: Vec::new(),
        }
    }
    pub fn arch(mut self, arch: &str) -> Deb {
        self.arch = arch.into();
        self
    }
    pub fn field(mut self, name: &str, value: &str) -> Deb {
        self.fields.push((name.into(), value.into()));
        self
    }
    pub fn depends(self, v: &str) -> Deb {
        self.field("Depends", v)
    }
    pub fn file(mut self, path: &str, content: &str, mode: u32) -> Deb {
        self.files.push((path.trim_start_matches('/').into(), content.as_bytes().to_vec(), mode));
        self
    }
    pub fn file_bytes(mut self, path: &str, content: &[u8], mode: u32) -> Deb {
        self.files.push((path.trim_start_matches('/').into(), content.to_vec(), mode));
        self
    }
    pub fn symlink(mut self, path: &str, target: &str) -> Deb {
        self.symlinks.push((path.trim_start_matches('/').into(), target.into()));
        self
    }
    /// A directory with its mode (others get the umask's).
    pub fn dir(mut self, path: &str, mode: u32) -> Deb {
        self.dirs.push((path.trim_start_matches('/').into(), mode));
        self
    }
    /// A second name of the file `target` (both relative to the root).
    pub fn hardlink(mut self, path: &str, target: &str) -> Deb {
        self.hardlinks.push((path.trim_start_matches('/').into(), target.trim_start_matches('/').into()));
        self
    }
    /// The owner the data.tar header gives `path` (a hard link: its whole group): names
    /// and ids as a build machine's tar writes them, which need not agree with the image's
    /// account files. Everything else is `root:0`/`root:0`.
    pub fn owned(mut self, path: &str, user: &str, uid: u64, group: &str, gid: u64) -> Deb {
        self.owners.push((path.trim_start_matches('/').into(), user.into(), uid, group.into(), gid));
        self
    }
    pub fn control_file(mut self, name: &str, content: &str, mode: u32) -> Deb {
        self.control_files.push((name.into(), content.into(), mode));
        self
    }

    /// Builds it into `pool` with dpkg-deb; returns the file name.
    pub fn build(&self, work: &Path, pool: &Path) -> String {
        let dir = work.join(format!("{}_{}_{}", self.name, self.version, self.arch));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("DEBIAN")).unwrap();
        let mut control = format!(
            "Package: {}\nVersion: {}\nArchitecture: {}\nMaintainer: Test <test@example.invalid>\nSection: misc\n",
            self.name, self.version, self.arch
        );
        if !self.fields.iter().any(|(n, _)| n == "Priority") {
            control.push_str("Priority: optional\n");
        }
        for (n, v) in &self.fields {
            control.push_str(&format!("{n}: {v}\n"));
        }
        control.push_str(&format!("Description: test package {}\n Long description.\n", self.name));
        std::fs::write(dir.join("DEBIAN/control"), control).unwrap();
        for (name, content, mode) in &self.control_files {
            let p = dir.join("DEBIAN").join(name);
            std::fs::write(&p, content).unwrap();
            set_mode(&p, *mode);
        }
        for (path, content, mode) in &self.files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
            set_mode(&p, *mode);
        }
        for (path, target) in &self.symlinks {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, &p).unwrap();
        }
        for (path, target) in &self.hardlinks {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::hard_link(dir.join(target), &p).unwrap();
        }
        for (path, _) in &self.dirs {
            std::fs::create_dir_all(dir.join(path)).unwrap();
        }
        for (path, mode) in &self.dirs {
            set_mode(&dir.join(path), *mode);
        }
        let file = format!("{}_{}_{}.deb", self.name, self.version.replace(':', "%3a"), self.arch);
        // The same bytes every time (the SBOM of an image names each .deb's sha256).
        run(Command::new("dpkg-deb")
            .env("SOURCE_DATE_EPOCH", "1600000000")
            .args(["--root-owner-group", "-Zgzip", "--build"])
            .arg(&dir)
            .arg(pool.join(&file)));
        if !self.owners.is_empty() {
            replace_data(&pool.join(&file), &self.data_tar_with_owners(&dir, work));
        }
        file
    }

    /// The data.tar.gz of the tree at `dir`, written entry by entry by GNU tar with the
    /// header owner each path asks for (dpkg-deb can only write root's or the files' own).
    fn data_tar_with_owners(&self, dir: &Path, work: &Path) -> Vec<u8> {
        let mut paths = vec![String::from(".")];
        let mut todo = vec![dir.to_path_buf()];
        while let Some(at) = todo.pop() {
            for entry in std::fs::read_dir(&at).unwrap() {
                let path = entry.unwrap().path();
                let rel = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                if rel == "DEBIAN" {
                    continue;
                }
                if path.symlink_metadata().unwrap().is_dir() {
                    todo.push(path.clone());
                }
                paths.push(format!("./{rel}"));
            }
        }
        paths.sort();
        let tar = work.join(format!("{}_{}_{}.data.tar", self.name, self.version, self.arch));
        let _ = std::fs::remove_file(&tar);
        let owner = |rel: &str| {
            let rel = rel.trim_start_matches("./");
            let found = self.owners.iter().find(|(p, ..)| p == rel);
            found.map_or(("root:0".to_string(), "root:0".to_string()), |(_, u, uid, g, gid)| {
                (format!("{u}:{uid}"), format!("{g}:{gid}"))
            })
        };
        for path in &paths {
            let rel = path.trim_start_matches("./");
            // A hard link goes in with its file, in one run, so tar stores it as a link.
            if self.hardlinks.iter().any(|(link, _)| link == rel) {
                continue;
            }
            let mut names = vec![path.clone()];
            names.extend(self.hardlinks.iter().filter(|(_, t)| t == rel).map(|(l, _)| format!("./{l}")));
            let (user, group) = owner(path);
            run(Command::new("tar")
                .arg(if path == "." { "-cf" } else { "-rf" })
                .arg(&tar)
                .args([
                    "--format=gnu",
                    "--no-recursion",
                    "--mtime=@1600000000",
                    "--owner",
                    &user,
                    "--group",
                    &group,
                    "-C",
                ])
                .arg(dir)
                .args(&names));
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&std::fs::read(&tar).unwrap()).unwrap();
        gz.finish().unwrap()
    }
}

/// Swaps the data member of the `.deb` at `path` for `data` (a data.tar.gz).
fn replace_data(path: &Path, data: &[u8]) {
    let deb = std::fs::read(path).unwrap();
    assert_eq!(&deb[..8], b"!<arch>\n");
    let mut members = Vec::new();
    let mut at = 8;
    while at + 60 <= deb.len() {
        let header = &deb[at..at + 60];
        let name = String::from_utf8_lossy(&header[..16]).trim_end().trim_end_matches('/').to_string();
        let size: usize = String::from_utf8_lossy(&header[48..58]).trim().parse().unwrap();
        let body = deb[at + 60..at + 60 + size].to_vec();
        members.push(if name.starts_with("data.tar") {
            ("data.tar.gz".to_string(), data.to_vec())
        } else {
            (name, body)
        });
        at += 60 + size + size % 2;
    }
    let mut ar = b"!<arch>\n".to_vec();
    for (member, bytes) in members {
        ar.extend(
            format!("{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n", member, 0, 0, 0, 100644, bytes.len()).as_bytes(),
        );
        ar.extend(&bytes);
        if bytes.len() % 2 == 1 {
            ar.push(b'\n');
        }
    }
    std::fs::write(path, ar).unwrap();
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes a `.deb` by hand, with a data entry whose raw name is `evil_path` (which
/// dpkg-deb would never build).
pub fn write_evil_deb(path: &Path, name: &str, evil_path: &str) {
    let control = format!(
        "Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: T <t@example.invalid>\nDescription: evil\n"
    );
    let data_tar = tar_gz(&[
        ("./", b"", tar::EntryType::Directory, ""),
        (evil_path, b"pwned\n", tar::EntryType::Regular, ""),
    ]);
    write_raw_deb(path, &control, data_tar);
}

/// Writes a `.deb` (an `ar` archive) by hand from a control file and a ready data.tar.gz,
/// for contents dpkg-deb refuses to build.
pub fn write_raw_deb(path: &Path, control: &str, data: Vec<u8>) {
    write_raw_deb_with(path, control, "data.tar.gz", data);
}

/// [`write_raw_deb`] with a data member of another name (`data.tar.zst`, ...).
pub fn write_raw_deb_with(path: &Path, control: &str, data_member: &str, data: Vec<u8>) {
    let control_tar = tar_gz(&[("./control", control.as_bytes(), tar::EntryType::Regular, "")]);
    let mut ar = b"!<arch>\n".to_vec();
    for (member, bytes) in
        [("debian-binary", b"2.0\n".to_vec()), ("control.tar.gz", control_tar), (data_member, data)]
    {
        ar.extend(
            format!("{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n", member, 0, 0, 0, 100644, bytes.len()).as_bytes(),
        );
        ar.extend(&bytes);
        if bytes.len() % 2 == 1 {
            ar.push(b'\n');
        }
    }
    std::fs::write(path, ar).unwrap();
}

/// A gzipped tar with raw names (no checks), for hand-made bad packages.
pub fn tar_gz(entries: &[(&str, &[u8], tar::EntryType, &str)]) -> Vec<u8> {
    let mut tar = Vec::new();
    for (name, content, kind, link) in entries {
        let mut h = tar::Header::new_gnu();
        {
            let raw = h.as_old_mut();
            raw.name[..name.len()].copy_from_slice(name.as_bytes());
            raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(*kind);
        h.set_mode(if *kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
        h.set_size(content.len() as u64);
        h.set_cksum();
        tar.extend_from_slice(h.as_bytes());
        tar.extend_from_slice(content);
        let pad = (512 - content.len() % 512) % 512;
        tar.extend(std::iter::repeat_n(0u8, pad));
    }
    tar.extend([0u8; 1024]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

/// A signed apt repository under a temp directory.
pub struct Repo {
    pub dir: tempfile::TempDir,
    pub gnupg: tempfile::TempDir,
    /// The binary public keyring that signs it.
    pub keyring: PathBuf,
    /// Another key's keyring, which did not sign it.
    pub wrong_keyring: PathBuf,
}

impl Repo {
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("repo")
    }
    pub fn pool(&self) -> PathBuf {
        self.root().join("pool/main")
    }

    /// Builds `debs` into the pool and writes, signs `dists/<suite>` for amd64 and arm64.
    pub fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        // gpg-agent's socket path must stay short: a short directory directly under /tmp.
        let gnupg = tempfile::Builder::new().prefix("mbg").tempdir_in("/tmp").unwrap();
        std::fs::create_dir_all(dir.path().join("repo/pool/main")).unwrap();
        let g = |args: &[&str]| {
            run(Command::new("gpg").env("GNUPGHOME", gnupg.path()).args(["--batch", "--quiet"]).args(args))
        };
        g(&[
            "--passphrase",
            "",
            "--quick-gen-key",
            "Test Repo <repo@example.invalid>",
            "ed25519",
            "sign",
            "never",
        ]);
        g(&[
            "--passphrase",
            "",
            "--quick-gen-key",
            "Wrong Key <wrong@example.invalid>",
            "ed25519",
            "sign",
            "never",
        ]);
        let keyring = dir.path().join("repo-key.gpg");
        let wrong_keyring = dir.path().join("wrong-key.gpg");
        std::fs::write(&keyring, export(gnupg.path(), "repo@example.invalid")).unwrap();
        std::fs::write(&wrong_keyring, export(gnupg.path(), "wrong@example.invalid")).unwrap();
        Repo { dir, gnupg, keyring, wrong_keyring }
    }

    /// Writes the indexes of `suite` (all packages in the pool) and signs them; with empty
    /// `SUITE-updates` and `SUITE-security` beside it where they do not exist yet, as a
    /// Debian release has them.
    pub fn publish(&self, suite: &str) {
        self.publish_from(suite, "pool/main", &[]);
        for extra in ["updates", "security"] {
            let name = format!("{suite}-{extra}");
            if !self.root().join("dists").join(&name).exists() {
                self.publish_from(&name, "pool/empty", &[]);
            }
        }
    }

    /// Writes and signs the indexes of `suite` from the `.deb`s under `pool` (a directory
    /// relative to the repository root), with more `Release` fields (`NotAutomatic`,
    /// `Valid-Until`).
    pub fn publish_from(&self, suite: &str, pool: &str, fields: &[(&str, &str)]) {
        let root = self.root();
        std::fs::create_dir_all(root.join(pool)).unwrap();
        for arch in ["amd64", "arm64"] {
            let d = root.join(format!("dists/{suite}/main/binary-{arch}"));
            std::fs::create_dir_all(&d).unwrap();
            let packages = run(Command::new("apt-ftparchive")
                .current_dir(&root)
                .args(["--arch", arch, "packages", pool]));
            std::fs::write(d.join("Packages"), &packages).unwrap();
            let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
            xz.write_all(packages.as_bytes()).unwrap();
            std::fs::write(d.join("Packages.xz"), xz.finish().unwrap()).unwrap();
        }
        let mut options = vec![
            "APT::FTPArchive::Release::Origin=Test".to_string(),
            format!("APT::FTPArchive::Release::Suite={suite}"),
            format!("APT::FTPArchive::Release::Codename={suite}"),
            "APT::FTPArchive::Release::Architectures=amd64 arm64".to_string(),
            "APT::FTPArchive::Release::Components=main".to_string(),
        ];
        let mut release = run(Command::new("apt-ftparchive")
            .current_dir(&root)
            .args(options.drain(..).flat_map(|o| ["-o".to_string(), o]))
            .arg("release")
            .arg(format!("dists/{suite}")));
        // Fields apt-ftparchive does not write go before the hashes.
        let extra: String = fields.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
        if let Some(at) = release.find("MD5Sum:") {
            release.insert_str(at, &extra);
        }
        let dists = root.join(format!("dists/{suite}"));
        std::fs::write(dists.join("Release"), release).unwrap();
        run(Command::new("gpg")
            .env("GNUPGHOME", self.gnupg.path())
            .args(["--batch", "--yes", "--local-user", "repo@example.invalid", "--clearsign", "-o"])
            .arg(dists.join("InRelease"))
            .arg(dists.join("Release")));
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf").env("GNUPGHOME", self.gnupg.path()).args(["--kill", "all"]).status();
    }
}

fn export(home: &Path, who: &str) -> Vec<u8> {
    let out = Command::new("gpg").env("GNUPGHOME", home).args(["--batch", "--export", who]).output().unwrap();
    assert!(out.status.success() && !out.stdout.is_empty());
    out.stdout
}

/// A static file server on 127.0.0.1 (HTTP/1.1, one request per connection).
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    requests: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(root: PathBuf) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let (root, log) = (root.clone(), Arc::clone(&log));
                    std::thread::spawn(move || serve(conn, &root, &log));
                }
            }
        });
        Server { addr, stop, thread: Some(thread), requests }
    }

    /// The paths asked for so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    pub fn clear_requests(&self) {
        self.requests.lock().unwrap().clear();
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, root: &Path, log: &std::sync::Mutex<Vec<String>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.trim().is_empty() => break,
            Ok(_) => {}
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    log.lock().unwrap().push(path.clone());
    let safe = !path.split('/').any(|c| c == "..");
    let file = root.join(path.trim_start_matches('/'));
    let mut conn = conn;
    match std::fs::File::open(&file).ok().filter(|_| safe && file.is_file()) {
        Some(mut f) => {
            let mut body = Vec::new();
            f.read_to_end(&mut body).unwrap();
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(&body);
        }
        None => {
            let _ = write!(conn, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    }
}

/// A fetch client and cache in a temp dir.
pub fn client_and_cache() -> (fetch::Client, fetch::Cache, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let opts = fetch::ClientOptions { retries: 0, ..fetch::ClientOptions::default() };
    (fetch::Client::new(opts).unwrap(), fetch::Cache::at(dir.path()), dir)
}

/// Fails with an install hint when a Debian tool these tests drive is missing.
pub fn require_tools() {
    for tool in ["dpkg-deb", "apt-ftparchive", "gpg", "gpgv"] {
        if Command::new(tool).arg("--version").output().is_err() {
            panic!("`{tool}` is missing: apt-get install --no-install-recommends apt-utils gpg gpgv dpkg");
        }
    }
}
