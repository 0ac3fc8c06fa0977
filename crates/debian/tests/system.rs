//! What configuration writes for the system's own tools, checked with those tools: the CA
//! directory against `openssl`, the Java truststore against `keytool` and a real TLS
//! handshake by `java`. The roots are made of this host's own files (its CA certificates),
//! so the tools see real objects.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Deb;
use debian::{ConfigureOptions, LocalCertificate, LockedDeb};

fn stdout(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have(program: &str) -> bool {
    Command::new(program).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
        || Command::new(program).arg("-help").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// A CA and a server certificate it signed for 127.0.0.1, made with openssl in `dir`.
fn make_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| stdout(Command::new("openssl").current_dir(dir).args(args));
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=Marqo  Test   Root CA/O=Test",
        "-keyout",
        "ca.key",
        "-out",
        "my-ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "my-ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
    (dir.join("my-ca.pem"), dir.join("server.pem"), dir.join("server.key"))
}

/// ca-certificates with this host's Mozilla certificates, and ca-certificates-java, unpacked
/// into `root` with `local` trusted too.
fn ca_root(work: &Path, root: &Path, local: Vec<LocalCertificate>) -> usize {
    let mut ca = Deb::new("ca-certificates", "1");
    let mut count = 0;
    let mozilla = Path::new("/usr/share/ca-certificates/mozilla");
    let mut names: Vec<PathBuf> = std::fs::read_dir(mozilla).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for path in names {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        ca = ca.file(
            &format!("/usr/share/ca-certificates/mozilla/{name}"),
            &std::fs::read_to_string(&path).unwrap(),
            0o644,
        );
        count += 1;
    }
    let java = Deb::new("ca-certificates-java", "1").file("/etc/ssl/certs/java/.keep", "", 0o644).file(
        "/etc/default/cacerts",
        "# defaults\n#storepass=''\ncacerts_updates=yes\n",
        0o644,
    );
    let pool = work.join("pool");
    std::fs::create_dir_all(&pool).unwrap();
    let debs: Vec<(LockedDeb, PathBuf)> = [ca, java]
        .iter()
        .map(|deb| {
            let file = deb.build(&work.join("build"), &pool);
            let name = file.split('_').next().unwrap().to_string();
            let locked = LockedDeb {
                name,
                version: "1".into(),
                arch: "all".into(),
                filename: format!("pool/{file}"),
                size: 0,
                sha256: String::new(),
            };
            (locked, pool.join(file))
        })
        .collect();
    let options = ConfigureOptions { local_certificates: local, mtime: 1_700_000_000 };
    debian::unpack_with(&debs, root, &options).unwrap();
    count + options.local_certificates.len()
}

/// `keytool -list` of a store: (alias, SHA-256 fingerprint) pairs.
fn keytool_list(store: &Path, password: &str) -> Result<Vec<(String, String)>, String> {
    let out = Command::new("keytool")
        .args(["-list", "-keystore"])
        .arg(store)
        .args(["-storepass", password])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)));
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut pairs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.contains(", trustedCertEntry,") {
            let alias = line.split(',').next().unwrap().to_string();
            let fp = lines[i + 1].rsplit(": ").next().unwrap().to_string();
            pairs.push((alias, fp));
        }
    }
    Ok(pairs)
}

/// SHA-256 fingerprints (keytool's form) of every certificate of a PEM file.
fn bundle_fingerprints(bundle: &Path) -> Vec<String> {
    stdout(Command::new("keytool").args(["-printcert", "-file"]).arg(bundle))
        .lines()
        .filter_map(|l| l.trim().strip_prefix("SHA256: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn ca_directory_and_java_truststore_are_what_the_tools_expect() {
    if !have("openssl") || !have("keytool") || !Path::new("/usr/share/ca-certificates/mozilla").is_dir() {
        eprintln!(
            "skipped: needs openssl, keytool (apt-get install default-jre-headless) and ca-certificates"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let (ca_pem, server_pem, server_key) = make_ca(work);
    let local =
        LocalCertificate::new("my-ca.crt", std::fs::read(&ca_pem).unwrap(), "certs/my-ca.pem").unwrap();
    let root = work.join("root");
    let count = ca_root(work, &root, vec![local]);
    let certs = root.join("etc/ssl/certs");

    // The local certificate is installed and linked as update-ca-certificates does.
    assert_eq!(
        std::fs::read(root.join("usr/local/share/ca-certificates/my-ca.crt")).unwrap(),
        std::fs::read(&ca_pem).unwrap()
    );
    assert_eq!(
        std::fs::read_link(certs.join("my-ca.pem")).unwrap(),
        Path::new("/usr/local/share/ca-certificates/my-ca.crt")
    );

    // Every hash link names a certificate whose subject hash (by openssl) is its name, and
    // openssl rehash makes the same links from the same files.
    let copy = work.join("rehash");
    std::fs::create_dir(&copy).unwrap();
    let mut ours = Vec::new();
    for entry in std::fs::read_dir(&certs).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".pem") {
            let target = std::fs::read_link(entry.path()).unwrap();
            std::fs::copy(root.join(target.strip_prefix("/").unwrap()), copy.join(&name)).unwrap();
        } else if name.len() > 9
            && name.as_bytes()[8] == b'.'
            && name[..8].chars().all(|c| c.is_ascii_hexdigit())
        {
            // <hash>.N -> X.pem -> /usr/share/ca-certificates/...
            let target = std::fs::read_link(entry.path()).unwrap();
            let pem = std::fs::read_link(certs.join(&target))
                .map(|t| root.join(t.strip_prefix("/").unwrap()))
                .unwrap();
            let hash =
                stdout(Command::new("openssl").args(["x509", "-noout", "-subject_hash", "-in"]).arg(&pem));
            assert_eq!(hash.trim(), &name[..8], "{name} -> {}", target.display());
            ours.push((name.clone(), target.to_string_lossy().into_owned()));
        }
    }
    stdout(Command::new("openssl").arg("rehash").arg(&copy));
    let mut theirs = Vec::new();
    for entry in std::fs::read_dir(&copy).unwrap() {
        let entry = entry.unwrap();
        if let Ok(target) = std::fs::read_link(entry.path()) {
            theirs.push((
                entry.file_name().to_string_lossy().into_owned(),
                target.to_string_lossy().into_owned(),
            ));
        }
    }
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
    assert!(ours.iter().any(|(_, t)| t == "my-ca.pem"));

    // keytool reads the store, checks its integrity digest, and lists exactly the bundle's
    // certificates, under Debian's aliases.
    let store = certs.join("java/cacerts");
    let listed = keytool_list(&store, "changeit").unwrap();
    assert_eq!(listed.len(), count);
    let mut from_store: Vec<String> = listed.iter().map(|(_, fp)| fp.clone()).collect();
    let mut from_bundle = bundle_fingerprints(&certs.join("ca-certificates.crt"));
    from_store.sort();
    from_bundle.sort();
    assert_eq!(from_store, from_bundle);
    let aliases: Vec<&str> = listed.iter().map(|(a, _)| a.as_str()).collect();
    assert!(aliases.contains(&"debian:my-ca.pem"), "{aliases:?}");
    let mut sorted = aliases.clone();
    sorted.sort();
    assert_eq!(aliases, sorted, "entries are sorted by alias");
    for (alias, _) in &listed {
        let file = alias.strip_prefix("debian:").unwrap();
        assert!(
            std::fs::read_dir(&certs).unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .to_lowercase()
                == file),
            "{alias} names no file"
        );
    }
    let wrong = keytool_list(&store, "wrongpass").unwrap_err();
    assert!(wrong.contains("password was incorrect") || wrong.contains("tampered"), "{wrong}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&store).unwrap().permissions().mode() & 0o777, 0o644);
    assert_eq!(
        std::fs::metadata(root.join("etc/default/cacerts")).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The same inputs give the same bytes.
    let again = work.join("again");
    let local =
        LocalCertificate::new("my-ca.crt", std::fs::read(&ca_pem).unwrap(), "certs/my-ca.pem").unwrap();
    ca_root(&work.join("w2"), &again, vec![local]);
    assert_eq!(
        std::fs::read(&store).unwrap(),
        std::fs::read(again.join("etc/ssl/certs/java/cacerts")).unwrap()
    );

    // Java trusts a server whose CA is only the local certificate, with our store as its
    // truststore (of the default type: Java 17 reads a JKS store through its PKCS12 one),
    // and refuses it with a store made without that certificate.
    // `java Tls.java` compiles the source first, which needs a JDK's compiler module.
    if !have("java") || !have("javac") {
        eprintln!("skipped the TLS handshake: needs a JDK (apt-get install default-jdk-headless)");
        return;
    }
    let without = work.join("without");
    ca_root(&work.join("w3"), &without, Vec::new());
    let server = Server::start(work, &server_pem, &server_key);
    let client = work.join("Tls.java");
    std::fs::write(&client, TLS_CLIENT).unwrap();
    let handshake = |store: &Path| {
        Command::new("java")
            .arg(format!("-Djavax.net.ssl.trustStore={}", store.display()))
            .arg(&client)
            .args(["127.0.0.1", &server.port.to_string()])
            .output()
            .unwrap()
    };
    let ok = handshake(&store);
    assert!(
        ok.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("handshake ok CN=127.0.0.1"));
    let refused = handshake(&without.join("etc/ssl/certs/java/cacerts"));
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("PKIX path building failed"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

const TLS_CLIENT: &str = r#"
import javax.net.ssl.*;

public class Tls {
    public static void main(String[] args) throws Exception {
        SSLSocket socket = (SSLSocket) SSLSocketFactory.getDefault().createSocket(args[0], Integer.parseInt(args[1]));
        SSLParameters params = socket.getSSLParameters();
        params.setEndpointIdentificationAlgorithm("HTTPS");
        socket.setSSLParameters(params);
        socket.startHandshake();
        System.out.println("handshake ok " + socket.getSession().getPeerPrincipal().getName());
        socket.close();
    }
}
"#;

/// `openssl s_server` on a free port of 127.0.0.1, stopped when dropped.
struct Server {
    child: std::process::Child,
    port: u16,
}

impl Server {
    fn start(dir: &Path, cert: &Path, key: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new("openssl")
            .current_dir(dir)
            .args(["s_server", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .args(["-naccept", "4", "-quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "s_server did not start");
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(e) = child.stderr.take() {
                    for line in BufReader::new(e).lines() {
                        err.push_str(&line.unwrap_or_default());
                    }
                }
                panic!("s_server exited with {status}: {err}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
