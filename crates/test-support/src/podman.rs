//! A real container runtime for tests: podman with runc, as `TESTING.md` (section 6) found it
//! works on these machines — runc with cgroupfs (crun refuses hybrid cgroups, there is no
//! systemd), no default ulimits (the VM cannot raise `RLIMIT_NPROC`), no network in the
//! container, and qemu-aarch64 registered with binfmt_misc so arm64 images run under
//! emulation. Each [`Podman`] has its own storage in a temp directory, removed when dropped,
//! so tests neither see each other's images nor leave gigabytes in `/var/lib/containers`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The first of `podman` and `runc` that is not installed (`apt-get install podman runc`).
pub fn podman_missing() -> Option<&'static str> {
    ["podman", "runc"].into_iter().find(|tool| {
        !std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
    })
}

/// A podman with its own storage; dropped, the storage is removed.
#[derive(Debug)]
pub struct Podman {
    dir: tempfile::TempDir,
}

/// What a container printed.
#[derive(Debug)]
pub struct Ran {
    /// Exit status was 0.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Ran {
    fn from(out: Output) -> Ran {
        Ran {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Standard output, after asserting the container succeeded (its output is the message).
    pub fn success(self, what: &str) -> String {
        assert!(self.ok, "{what}:\n{}{}", self.stdout, self.stderr);
        self.stdout
    }
}

impl Podman {
    /// A podman with fresh storage under `TMPDIR`. Panics when podman or runc is missing.
    pub fn new() -> Podman {
        if let Some(tool) = podman_missing() {
            panic!("`{tool}` is not installed: apt-get install podman runc");
        }
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let tmp = std::env::var_os("TMPDIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        // Lowercase: podman names an `oci:DIR` image after DIR, and a name must be lowercase.
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = tempfile::Builder::new()
            .prefix(&format!("podman-{}-{n}", std::process::id()))
            .rand_bytes(0)
            .tempdir_in(tmp)
            .expect("temp dir");
        std::fs::write(dir.path().join("containers.conf"), "[containers]\ndefault_ulimits = []\n")
            .expect("containers.conf");
        Podman { dir }
    }

    /// The reference of the OCI layout `dir`'s `tag`, through a link under this instance's
    /// lowercase directory (podman names the image after the path).
    pub fn layout(&self, dir: &Path, tag: &str) -> String {
        let links = self.dir.path().join("layouts");
        std::fs::create_dir_all(&links).expect("layouts dir");
        let n = std::fs::read_dir(&links).expect("layouts dir").count();
        let link = links.join(n.to_string());
        std::os::unix::fs::symlink(std::path::absolute(dir).expect("absolute path"), &link).expect("link");
        format!("oci:{}:{tag}", link.display())
    }

    /// Registers qemu-aarch64 with binfmt_misc (once per boot) so arm64 images run here; on
    /// an arm64 host there is nothing to do.
    pub fn enable_arm64(&self) {
        if std::env::consts::ARCH == "aarch64" {
            return;
        }
        let binfmt = Path::new("/proc/sys/fs/binfmt_misc");
        if !binfmt.join("register").exists() {
            let status =
                Command::new("mount").args(["-t", "binfmt_misc", "binfmt_misc"]).arg(binfmt).status();
            assert!(status.is_ok_and(|s| s.success()), "cannot mount binfmt_misc");
        }
        if !binfmt.join("qemu-aarch64").exists() {
            let conf = std::fs::read_to_string("/usr/lib/binfmt.d/qemu-aarch64.conf")
                .expect("qemu-user-static's /usr/lib/binfmt.d/qemu-aarch64.conf");
            let line = conf.lines().find(|l| !l.starts_with('#') && !l.trim().is_empty()).expect("a rule");
            std::fs::write(binfmt.join("register"), line).expect("register qemu-aarch64");
        }
    }

    /// `podman` with this instance's storage and the settings these machines need.
    pub fn command(&self) -> Command {
        let root = self.dir.path();
        let mut command = Command::new("podman");
        command
            .env("CONTAINERS_CONF", root.join("containers.conf"))
            .arg("--root")
            .arg(root.join("storage"))
            .arg("--runroot")
            .arg(root.join("run"))
            .args(["--cgroup-manager=cgroupfs", "--runtime", "runc"]);
        command
    }

    /// Runs `argv` in `image` ([`Podman::layout`], a local tag) for `platform`, as `user` when
    /// given; `argv[0]` is the entrypoint, so the image's own is not in the way.
    pub fn run(&self, image: &str, platform: &str, user: Option<&str>, argv: &[&str]) -> Ran {
        let options: Vec<&str> = user.map(|u| vec!["--user", u]).unwrap_or_default();
        self.run_with(image, platform, &options, argv)
    }

    /// [`Podman::run`] with more `podman run` options (`-v HOST:CTR:ro`, `--user NAME`);
    /// without a `--network` option the container has none.
    pub fn run_with(&self, image: &str, platform: &str, options: &[&str], argv: &[&str]) -> Ran {
        let mut command = self.command();
        command.args(["run", "--rm", "--platform", platform, "--entrypoint", argv[0]]);
        if !options.iter().any(|o| o.starts_with("--network")) {
            command.arg("--network=none");
        }
        command.args(options).arg(image).args(&argv[1..]);
        Ran::from(command.output().expect("run podman"))
    }

    /// `podman build` of `containerfile` in `context` for `platform`, tagged `tag`.
    pub fn build(&self, context: &Path, containerfile: &str, platform: &str, tag: &str) -> Ran {
        std::fs::write(context.join("Containerfile"), containerfile).expect("write the Containerfile");
        let out = self
            .command()
            .args(["build", "--network=none", "--platform", platform, "-t", tag, "-f"])
            .arg(context.join("Containerfile"))
            .arg(context)
            .output()
            .expect("run podman build");
        Ran::from(out)
    }
}

impl Default for Podman {
    fn default() -> Podman {
        Podman::new()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Overlay storage holds mounts and files owned by other ids: podman removes it.
        let _ = self.command().args(["system", "reset", "--force"]).output();
    }
}
