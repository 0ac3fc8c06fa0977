//! Debian's `docker-registry` (distribution 2.8) as a throw-away process on 127.0.0.1: a
//! fresh storage directory, a kernel-chosen port (read back from its log), optional htpasswd
//! auth and TLS (a throw-away CA); killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `docker-registry`, `htpasswd` and `skopeo` are installed (`apt-get install
/// docker-registry apache2-utils skopeo`).
pub fn registry_tools_missing() -> Option<&'static str> {
    ["docker-registry", "htpasswd", "skopeo"].into_iter().find(|tool| {
        !std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
    })
}

/// A running registry; dropped, it is killed and its storage removed.
#[derive(Debug)]
pub struct DockerRegistry {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    tls: bool,
}

/// How a [`DockerRegistry`] is set up.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// htpasswd (bcrypt) auth with this user and password.
    pub htpasswd: Option<(String, String)>,
    /// Serve HTTPS with a certificate for 127.0.0.1 and localhost from a throw-away CA.
    pub tls: bool,
    /// Token auth: every request without a token gets a Bearer challenge naming this realm
    /// (instead of htpasswd).
    pub token_realm: Option<String>,
}

impl DockerRegistry {
    /// A plain-HTTP registry with no auth.
    pub fn start() -> DockerRegistry {
        DockerRegistry::start_with(RegistryConfig::default())
    }

    /// A plain-HTTP registry with htpasswd auth.
    pub fn with_htpasswd(user: &str, password: &str) -> DockerRegistry {
        DockerRegistry::start_with(RegistryConfig {
            htpasswd: Some((user.into(), password.into())),
            ..RegistryConfig::default()
        })
    }

    /// A registry set up as `config` says; panics with the registry's log if it does not start.
    pub fn start_with(config: RegistryConfig) -> DockerRegistry {
        if let Some(tool) = registry_tools_missing() {
            panic!("`{tool}` is not installed: apt-get install docker-registry apache2-utils skopeo");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("storage")).expect("storage dir");
        let mut auth = String::new();
        if let Some((user, password)) = &config.htpasswd {
            let status = Command::new("htpasswd")
                .args(["-Bbc"])
                .arg(root.join("htpasswd"))
                .args([user, password])
                .stderr(Stdio::null())
                .status()
                .expect("run htpasswd");
            assert!(status.success(), "htpasswd failed");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                root.join("htpasswd").display()
            );
        }
        if config.tls || config.token_realm.is_some() {
            make_certificates(root);
        }
        if let Some(realm) = &config.token_realm {
            // The registry checks the tokens it gets against this bundle; it is never given one.
            auth = format!(
                "auth:\n  token:\n    realm: {realm}\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
                root.join("ca.pem").display()
            );
        }
        let mut tls = String::new();
        if config.tls {
            tls = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                root.join("cert.pem").display(),
                root.join("key.pem").display()
            );
        }
        let yaml = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\n{auth}http:\n  addr: 127.0.0.1:0\n  secret: test-secret-not-for-prod\n{tls}",
            root.join("storage").display()
        );
        std::fs::write(root.join("config.yml"), yaml).expect("write config.yml");
        let log = std::fs::File::create(root.join("registry.log")).expect("registry.log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(root.join("config.yml"))
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut registry = DockerRegistry { child, dir, port: 0, tls: config.tls };
        registry.port = registry.wait_for_port();
        registry
    }

    fn wait_for_port(&mut self) -> u16 {
        let log_path = self.dir.path().join("registry.log");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(rest) = log.split("listening on 127.0.0.1:").nth(1) {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                if let Ok(port) = digits.parse() {
                    return port;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited with {status}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("docker-registry did not start:\n{}", std::fs::read_to_string(&log_path).unwrap_or_default());
    }

    /// `127.0.0.1:PORT`, as references and skopeo name it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` (or `https://`).
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.host())
    }

    /// The CA certificate that signed a TLS registry's certificate (what to trust).
    pub fn cert(&self) -> Option<PathBuf> {
        self.tls.then(|| self.dir.path().join("ca.pem"))
    }

    /// The registry's storage directory.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The registry's log (access log and messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The working directory (config, log, certificates).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A throw-away CA (`ca.pem`) and a server certificate it signed for 127.0.0.1 and localhost
/// (`cert.pem`, `key.pem`) in `dir`. rustls wants a real chain: it refuses a self-signed
/// server certificate as its own trust anchor.
pub fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-days", "2", "-subj", "/CN=marqo-base test CA", "-keyout", "ca.key", "-out", "ca.pem"],
            &["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
        ]
        .concat(),
    );
    openssl(
        &[&["req"][..], &ec, &["-subj", "/CN=127.0.0.1", "-keyout", "key.pem", "-out", "cert.csr"]].concat(),
    );
    std::fs::write(
        dir.join("cert.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write cert.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "cert.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "cert.ext",
        "-out",
        "cert.pem",
    ]);
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
