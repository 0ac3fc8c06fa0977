//! Byte-compiled modules in wheel layers, as pip writes them at install: without them the
//! first import of each module in a container compiles it (4.9 s for the flagship's
//! `import torch, transformers, open_clip` against 1.2 s with them), and in a read-only root
//! does so at every start.
//!
//! Bytecode is the same on every architecture for one interpreter build, so one compilation
//! serves every platform; what compiles is decided once per build by [`choose`]:
//!
//! 1. the image's own `/usr/bin/pythonX.Y` (the locked `pythonX.Y-minimal` and what it
//!    depends on, unpacked into a temporary root), run natively through the root's own
//!    dynamic loader (`ld.so --library-path ROOT/lib/... ROOT/usr/bin/pythonX.Y` with
//!    `PYTHONHOME=ROOT/usr`: no chroot, no root) when a platform of the manifest has the
//!    host's architecture;
//! 2. else a `pythonX.Y` on `PATH` that runs and is CPython X.Y;
//! 3. else none: no `.pyc`, with a warning.
//!
//! The image's interpreter comes first because the bytes depend on the interpreter's build,
//! not only on its `X.Y`: `marshal` flags an object it has seen more than one reference to
//! (`FLAG_REF`), and which names are referenced elsewhere depends on what the interpreter
//! holds when it compiles. Bullseye's 3.9.2 and a 3.9.18 give different bytes for 26 of
//! 3,813 modules of transformers, torch, scipy, open_clip and six (all equivalent code);
//! bullseye's own amd64 and arm64 builds of 3.9.2 give the same bytes (382 of them compared,
//! the arm64 one under qemu). So the image's
//! interpreter gives the same layers on every amd64 or arm64 machine, as the lock promises,
//! and a host interpreter only the same layers as the same host interpreter. The layer-cache
//! key of wheel layers names the interpreter (its `sys.version`, cache tag and magic
//! number), so layers compiled by one are never reused for another.
//!
//! Deterministic bytes, whatever the order or the number of processes: each module is
//! compiled in a fork of a worker that has read nothing else (so nothing one compilation
//! leaves in the interpreter, such as the names it interned, reaches another: 3.9 interns
//! `{` for good once it has unparsed an annotation under `from __future__ import
//! annotations`), with string hashing fixed (`PYTHONHASHSEED=0`: set constants keep their
//! order), no site, no warnings, and the cycle collector run right before `marshal` (so
//! what garbage happens to be alive does not count as a reference). The `.pyc` header is
//! unchecked-hash (PEP 552: the source's hash, no mtime; Python uses it without reading the
//! source), and the code's file name is the module's path in the image. A few worker
//! processes (one per core, at most [`MAX_WORKERS`]) read modules on stdin; the fork costs
//! about 2 ms of CPU per module on top of the compilation itself (3.4 ms against 1.3 ms in
//! one long-lived process, for transformers' modules), the price of bytes that do not
//! depend on what else was compiled.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use image::{Bytecompiler, Compiled, PySource};
use lockfile::{LockedDebian, Manifest, TargetPlatform};
use pep_types::Arch;
use sha2::{Digest as _, Sha256};

use crate::plan::Bytecode;
use crate::{cross, Error, Reporter};

/// The most worker processes a build starts.
pub const MAX_WORKERS: usize = 4;

/// The cache namespace of image interpreters' identities, by the `.deb`s they come from.
const IDENTITY_NAMESPACE: &str = "python-identity-v1";

/// Prints what the interpreter is, one item per line (see [`Identity::parse`]).
const IDENTITY: &str = r#"import sys
from importlib._bootstrap_external import MAGIC_NUMBER
sys.stdout.buffer.write(('%s\n%d.%d\n%s\n%s\n%s\n%s\n' % (
    sys.implementation.name, sys.version_info[0], sys.version_info[1],
    sys.implementation.cache_tag, MAGIC_NUMBER.hex(), ' '.join(sys.version.split()),
    sys.executable)).encode('utf-8', 'surrogateescape'))
sys.stdout.buffer.flush()
"#;

/// After [`IDENTITY`]: reads `PATH_LEN SOURCE_LEN\n PATH SOURCE` requests and answers each
/// with `ok LEN\n PYC` or `err LEN\n MESSAGE` from a fork, then `done WAIT_STATUS\n`.
const SERVE: &str = r#"import gc, marshal, posix, _imp
from importlib._bootstrap_external import _RAW_MAGIC_NUMBER
gc.collect()
getattr(gc, 'freeze', gc.collect)()
gc.disable()
stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
while True:
    header = stdin.readline()
    if not header:
        break
    path_len, source_len = header.split()
    path = stdin.read(int(path_len)).decode('utf-8', 'surrogateescape')
    source = stdin.read(int(source_len))
    pid = posix.fork()
    if pid == 0:
        try:
            code = compile(source, path, 'exec', dont_inherit=True)
            gc.collect()
            data = (MAGIC_NUMBER + b'\x01\x00\x00\x00'
                    + _imp.source_hash(_RAW_MAGIC_NUMBER, source) + marshal.dumps(code))
            status = b'ok'
        except Exception as e:
            data = ('%s: %s' % (type(e).__name__, e)).encode('utf-8', 'replace')
            status = b'err'
        stdout.write(b'%s %d\n' % (status, len(data)) + data)
        stdout.flush()
        posix._exit(0)
    _, status = posix.waitpid(pid, 0)
    stdout.write(b'done %d\n' % status)
    stdout.flush()
"#;

/// What an interpreter says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `sys.implementation.name`: `cpython`.
    pub implementation: String,
    /// `X.Y` of `sys.version_info`.
    pub version: String,
    /// `sys.implementation.cache_tag`: `cpython-39`.
    pub cache_tag: String,
    /// `importlib.util.MAGIC_NUMBER` in hex: `610d0d0a`.
    pub magic: String,
    /// `sys.version` on one line: `3.9.2 (default, Feb 28 2021, 17:03:44) [GCC 10.2.1 20210110]`.
    pub build: String,
    /// `sys.executable`.
    pub executable: String,
}

impl Identity {
    /// Reads what [`IDENTITY`] prints.
    fn parse(text: &str) -> Result<Identity, String> {
        let lines: Vec<&str> = text.lines().collect();
        let [implementation, version, cache_tag, magic, build, executable] = lines[..] else {
            return Err(format!(
                "it printed {:?}, not its identity",
                text.chars().take(200).collect::<String>()
            ));
        };
        Ok(Identity {
            implementation: implementation.to_string(),
            version: version.to_string(),
            cache_tag: cache_tag.to_string(),
            magic: magic.to_string(),
            build: build.to_string(),
            executable: executable.to_string(),
        })
    }

    /// The identity as a cache entry stores it (what [`Identity::parse`] reads).
    fn to_text(&self) -> String {
        [&self.implementation, &self.version, &self.cache_tag, &self.magic, &self.build, &self.executable]
            .map(|line| format!("{line}\n"))
            .concat()
    }

    /// Whether it can compile for the image's CPython `version` (`3.9`).
    fn check(&self, version: &str) -> Result<(), String> {
        let tag = format!("cpython-{}", version.replace('.', ""));
        if self.implementation != "cpython" || self.version != version || self.cache_tag != tag {
            return Err(format!(
                "it is {} {} (cache tag {}), not CPython {version}",
                self.implementation, self.version, self.cache_tag
            ));
        }
        Ok(())
    }

    /// `CPython 3.9.2, cpython-39`.
    fn short(&self) -> String {
        let release = self.build.split_whitespace().next().unwrap_or(&self.version);
        format!("CPython {release}, {}", self.cache_tag)
    }

    /// What the layer-cache keys of wheel layers hold: everything the bytes depend on
    /// (the tool's own build is in every key already), and where it ran.
    fn key(&self, origin: &str) -> String {
        format!(
            "{} magic {} unchecked-hash, {origin}: {} {}",
            self.cache_tag, self.magic, self.implementation, self.build
        )
    }
}

/// How to start an interpreter: the program, what goes before the interpreter's own
/// options, and its environment.
#[derive(Debug, Clone)]
struct Launch {
    program: PathBuf,
    args: Vec<OsString>,
    /// `Some`: exactly these variables; `None`: this process's, without `PYTHON*`.
    env: Option<Vec<(OsString, OsString)>>,
}

impl Launch {
    /// The interpreter running `script` without site, user site or warnings, with string
    /// hashing fixed and no bytecode written for its own imports.
    fn command(&self, script: &str) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args).args(["-W", "ignore", "-S", "-s", "-c", script]);
        match &self.env {
            Some(env) => {
                command.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
            }
            None => {
                for (key, _) in std::env::vars_os() {
                    if key.to_string_lossy().starts_with("PYTHON") {
                        command.env_remove(key);
                    }
                }
            }
        }
        command.env("PYTHONHASHSEED", "0").env("PYTHONDONTWRITEBYTECODE", "1");
        command
    }

    /// Runs [`IDENTITY`].
    fn probe(&self) -> Result<Identity, String> {
        let output = self
            .command(IDENTITY)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.program.display()))?;
        if !output.status.success() {
            // A traceback's last line says what went wrong, another program's first (a
            // pyenv shim: `pyenv: python3.9: command not found`).
            let stderr = String::from_utf8_lossy(&output.stderr);
            let mut lines = stderr.lines().map(str::trim).filter(|l| !l.is_empty());
            let said = match stderr.contains("Traceback") {
                true => lines.next_back(),
                false => lines.next(),
            };
            return Err(format!("it exits with {} ({})", output.status, said.unwrap_or("no message")));
        }
        Identity::parse(&String::from_utf8_lossy(&output.stdout))
    }
}

/// `pythonX.Y` on `PATH`, if it runs and is CPython X.Y: the workers run its
/// `sys.executable`, so a shim (pyenv's) is asked once.
fn host_interpreter(version: &str) -> Result<(Launch, Identity), String> {
    let program = format!("python{version}");
    let on_path = Launch { program: PathBuf::from(&program), args: Vec::new(), env: None };
    let identity = on_path.probe().map_err(|e| format!("`{program}` on PATH: {e}"))?;
    identity.check(version).map_err(|e| format!("`{program}` on PATH: {e}"))?;
    let launch = match identity.executable.as_str() {
        "" => on_path,
        executable => Launch { program: PathBuf::from(executable), ..on_path },
    };
    Ok((launch, identity))
}

/// An image's interpreter unpacked into a temporary root, and how to run it there.
#[derive(Debug)]
struct ImageRoot {
    _dir: tempfile::TempDir,
    launch: Launch,
}

/// Why the image's interpreter cannot compile here.
#[derive(Debug)]
enum Unusable {
    /// What its packages hold says so (not an executable of this host, no loader, not
    /// CPython X.Y): remembered with its identity's key.
    Always(String),
    /// It failed this time (unpacking, running): tried again by the next build.
    Now(String),
}

impl Unusable {
    fn reason(&self) -> &str {
        match self {
            Unusable::Always(why) | Unusable::Now(why) => why,
        }
    }
}

impl ImageRoot {
    /// Unpacks `debs` into a new directory in `parent` and finds `/usr/bin/python{version}`
    /// and its loader there.
    fn unpack(
        debs: &[(debian::LockedDeb, PathBuf)],
        version: &str,
        arch: Arch,
        parent: &Path,
    ) -> Result<ImageRoot, Unusable> {
        let now = |e: String| Unusable::Now(e);
        fs_err::create_dir_all(parent).map_err(|e| now(e.to_string()))?;
        let dir = tempfile::Builder::new()
            .prefix("python-")
            .tempdir_in(parent)
            .map_err(|e| now(format!("cannot create a directory in {}: {e}", parent.display())))?;
        let root = std::path::absolute(dir.path()).map_err(|e| now(e.to_string()))?;
        debian::unpack(debs, &root).map_err(|e| now(format!("cannot unpack its packages: {e}")))?;
        let launch = image_launch(&root, version, arch).map_err(Unusable::Always)?;
        Ok(ImageRoot { _dir: dir, launch })
    }
}

/// How to run `/usr/bin/python{version}` of the root directory `root` (absolute) natively:
/// through the root's own dynamic loader, its libraries first (and not the host's
/// `ld.so.cache`), with `PYTHONHOME` in the root.
fn image_launch(root: &Path, version: &str, arch: Arch) -> Result<Launch, String> {
    let inside = debian::unpack::RootWriter::new(root);
    let name = format!("/usr/bin/python{version}");
    let python = inside.resolve(&name, true).map_err(|e| e.to_string())?;
    let binary = std::fs::read(&python).map_err(|e| format!("cannot read it: {e}"))?;
    let loader = cross::program_interpreter(&binary, arch)?;
    let loader_path = inside.resolve(&loader, true).map_err(|e| e.to_string())?;
    if !loader_path.is_file() {
        return Err(format!("it needs {loader}, which the image does not have"));
    }
    let triple = cross::triple(arch);
    let dirs: Vec<PathBuf> =
        [format!("lib/{triple}"), format!("usr/lib/{triple}"), "lib".into(), "usr/lib".into()]
            .iter()
            .map(|dir| root.join(dir))
            .filter(|dir| dir.is_dir())
            .collect();
    let library_path = std::env::join_paths(&dirs).map_err(|e| format!("{}: {e}", root.display()))?;
    Ok(Launch {
        program: loader_path,
        args: vec!["--inhibit-cache".into(), "--library-path".into(), library_path, python.into_os_string()],
        env: Some(vec![("PYTHONHOME".into(), root.join("usr").into_os_string())]),
    })
}

/// The package of `/usr/bin/python{version}` locked for `platform` (`python3.9-minimal`,
/// else `python3.9`) and every locked package it depends on, sorted by name.
fn interpreter_debs<'a>(
    lock: &'a lockfile::Lock,
    platform: TargetPlatform,
    version: &str,
) -> Result<Vec<&'a LockedDebian>, String> {
    let by_name: HashMap<&str, &LockedDebian> =
        lock.debian_for(platform).map(|d| (d.name.as_str(), d)).collect();
    let minimal = format!("python{version}-minimal");
    let full = format!("python{version}");
    let first = [minimal.as_str(), full.as_str()]
        .into_iter()
        .find(|name| by_name.contains_key(name))
        .ok_or_else(|| format!("the lock has no {minimal} for {platform}"))?;
    let mut todo = vec![first];
    let mut found: Vec<&LockedDebian> = Vec::new();
    while let Some(name) = todo.pop() {
        let Some(deb) = by_name.get(name) else { continue };
        if found.iter().any(|d| d.name == name) {
            continue;
        }
        found.push(deb);
        todo.extend(deb.dependencies.iter().flatten().map(String::as_str));
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// The cache key of the identity of the interpreter that `debs` unpack to.
/// The key of what [`identity_key`] names in a registry cache: the same on every machine
/// running this release.
fn portable_identity_key(local: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(
        format!("marqo-base python identity\nrelease {}\n{local}\n", env!("CARGO_PKG_VERSION")).as_bytes(),
    );
    hex::encode(hasher.finalize())
}

fn identity_key(debs: &[&LockedDebian], arch: Arch) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("python identity, run natively on {}\n", arch.name()).as_bytes());
    for deb in debs {
        hasher.update(
            format!("{} {} {} {}\n", deb.name, deb.version, deb.arch, deb.file.sha256.hex()).as_bytes(),
        );
    }
    hex::encode(hasher.finalize())
}

/// Where the compiling interpreter comes from.
#[derive(Debug)]
enum Origin {
    Host { launch: Launch, identity: Identity },
    Image { platform: TargetPlatform, debs: Vec<LockedDebian>, identity: Identity, root: Option<ImageRoot> },
}

/// What [`choose`] decided: what the plan says and keys wheel layers on, and how to make
/// the compiler if a wheel layer has to be built.
#[derive(Debug)]
pub struct Decision {
    /// For the plan.
    pub setting: Bytecode,
    origin: Option<Origin>,
    version: String,
}

impl Decision {
    fn none(summary: String) -> Decision {
        Decision { setting: Bytecode { interpreter: None, summary }, origin: None, version: String::new() }
    }

    /// The compiler for the wheel layers of `platforms` platforms, `None` without bytecode.
    /// The image's interpreter is fetched and unpacked into `scratch` first if [`choose`]
    /// did not need to; for more than one platform, the `.pyc` are kept there too.
    pub fn compiler(
        &mut self,
        manifest: &Manifest,
        platforms: usize,
        offline: bool,
        scratch: &Path,
        printer: &dyn Reporter,
    ) -> Result<Option<PyCompiler>, Error> {
        let Some(origin) = &mut self.origin else { return Ok(None) };
        let (launch, identity, who) = match origin {
            Origin::Host { launch, identity } => {
                (launch.clone(), identity.clone(), format!("{}", launch.program.display()))
            }
            Origin::Image { platform, debs, identity, root } => {
                if root.is_none() {
                    let debs: Vec<&LockedDebian> = debs.iter().collect();
                    let unpacked = unpack_interpreter(
                        manifest,
                        &debs,
                        &self.version,
                        platform.arch(),
                        scratch,
                        offline,
                        printer,
                    )?;
                    *root = Some(unpacked.map_err(|e| {
                        let python = format!("/usr/bin/python{} of the {platform} image", self.version);
                        Error::user(format!("cannot byte-compile with {python}: {}", e.reason()))
                            .with_hint("set [python] compile_bytecode = false to build without .pyc")
                    })?);
                }
                let launch = root
                    .as_ref()
                    .map(|r| r.launch.clone())
                    .ok_or_else(|| Error::internal("no image root"))?;
                (launch, identity.clone(), format!("/usr/bin/python{} of the {platform} image", self.version))
            }
        };
        let keep = (platforms > 1).then(|| scratch.join("bytecode"));
        Ok(Some(PyCompiler::new(launch, identity, who, default_workers(), keep)))
    }
}

/// One worker per core, at most [`MAX_WORKERS`].
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_WORKERS)
}

/// Fetches the interpreter's `.deb`s and unpacks them into a directory in `parent`; the
/// inner error says why the interpreter cannot run from there.
fn unpack_interpreter(
    manifest: &Manifest,
    debs: &[&LockedDebian],
    version: &str,
    arch: Arch,
    parent: &Path,
    offline: bool,
    printer: &dyn Reporter,
) -> Result<Result<ImageRoot, Unusable>, Error> {
    let paths = crate::build::fetch_debian(manifest, debs, offline, printer)?;
    let debs: Vec<(debian::LockedDeb, PathBuf)> = debs
        .iter()
        .map(|d| (crate::build::locked_deb(d), paths.get(&d.file.sha256).cloned().unwrap_or_default()))
        .collect();
    Ok(ImageRoot::unpack(&debs, version, arch, parent))
}

/// Decides whether and with which interpreter the wheel layers of `platforms` get `.pyc`
/// (see the module docs). Probing the image's interpreter the first time fetches and
/// unpacks its packages; what it is (or why it cannot compile here, when its packages say
/// so) is cached by their hashes afterwards, and asked again when not `reuse`
/// (`--no-cache`).
pub fn choose(
    manifest: &Manifest,
    lock: &lockfile::Lock,
    platforms: &[TargetPlatform],
    reuse: bool,
    offline: bool,
    remote: Option<&crate::registry_cache::RegistryCache>,
    printer: &dyn Reporter,
) -> Result<Decision, Error> {
    let Some(python) = &manifest.python else { return Ok(Decision::none("no [python]".into())) };
    if !platforms.iter().any(|p| lock.python_for(*p).next().is_some()) {
        return Ok(Decision::none("no Python packages".into()));
    }
    if !python.compile_bytecode {
        return Ok(Decision::none("no .pyc: [python] compile_bytecode = false".into()));
    }
    let version = crate::plan::major_minor(&python.version)?;
    let got = |origin: Origin, summary: String| {
        let interpreter = match &origin {
            Origin::Host { identity, .. } => identity.key("on the host"),
            Origin::Image { identity, platform, .. } => identity.key(&format!("the {platform} image's")),
        };
        Ok(Decision {
            setting: Bytecode { interpreter: Some(interpreter), summary },
            origin: Some(origin),
            version: version.clone(),
        })
    };
    let names = platforms.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ");
    let image = match image_interpreter(manifest, lock, &version, reuse, offline, remote, printer)? {
        Ok((platform, debs, identity, root)) => {
            let summary = format!(
                ".pyc for {names} by /usr/bin/python{version} of the {platform} image ({}), run natively through its own loader",
                identity.short()
            );
            return got(Origin::Image { platform, debs, identity, root }, summary);
        }
        Err(why) => why,
    };
    match host_interpreter(&version) {
        Ok((launch, identity)) => {
            let summary = format!(
                ".pyc for {names} by python{version} on PATH ({}, {}), since the image's own cannot compile here: {image}",
                launch.program.display(),
                identity.short()
            );
            got(Origin::Host { launch, identity }, summary)
        }
        Err(host) => {
            let summary = format!("no .pyc: no Python {version} to compile with: {image}; {host}");
            tracing::warn!(
                "the image gets no .pyc, so its first imports compile every module: put a \
                 python{version} on PATH, or build on a host of one of the image's platforms \
                 (or set [python] compile_bytecode = false to say so)"
            );
            Ok(Decision::none(summary))
        }
    }
}

/// The image's interpreter of a manifest platform with the host's architecture, with its
/// identity (from the cache unless not `reuse`, else probed in a root unpacked under the
/// cache); `Err(why not)`.
#[allow(clippy::type_complexity)]
fn image_interpreter(
    manifest: &Manifest,
    lock: &lockfile::Lock,
    version: &str,
    reuse: bool,
    offline: bool,
    remote: Option<&crate::registry_cache::RegistryCache>,
    printer: &dyn Reporter,
) -> Result<Result<(TargetPlatform, Vec<LockedDebian>, Identity, Option<ImageRoot>), String>, Error> {
    let Some(host) = cross::host_arch() else {
        return Ok(Err(format!("this host ({}) is not a platform of images", std::env::consts::ARCH)));
    };
    let Some(platform) = manifest.image.platforms.iter().copied().find(|p| p.arch() == host) else {
        return Ok(Err(format!("no platform of the manifest is this host's ({})", host.name())));
    };
    let debs = match interpreter_debs(lock, platform, version) {
        Ok(debs) => debs,
        Err(why) => return Ok(Err(why)),
    };
    let owned: Vec<LockedDebian> = debs.iter().map(|d| (*d).clone()).collect();
    let cache = crate::env::cache()?;
    let key = identity_key(&debs, host);
    let of_image = |why: &str| format!("/usr/bin/python{version} of the {platform} image: {why}");
    // Shared through the registry cache under a key of the tool's release: a runner with an
    // empty disk then needs neither the packages nor the probe to know the layers' keys.
    let shared_key = portable_identity_key(&key);
    let mut cached = match reuse {
        true => cache.read_entry(IDENTITY_NAMESPACE, &key).and_then(|b| String::from_utf8(b).ok()),
        false => None,
    };
    match (&cached, remote) {
        (None, Some(remote)) if reuse && !offline => {
            if let Some(text) = remote.note(&shared_key) {
                let _ = cache.write_entry(IDENTITY_NAMESPACE, &key, text.as_bytes());
                cached = Some(text);
            }
        }
        // Known here already: shared for the runners that do not know it (`--cache-write`).
        (Some(text), Some(remote)) => remote.put_note(&shared_key, text),
        _ => {}
    }
    if let Some(text) = cached {
        if let Some(why) = text.strip_prefix(UNUSABLE) {
            return Ok(Err(of_image(why.trim_end())));
        }
        if let Some(identity) = Identity::parse(&text).ok().filter(|i| i.check(version).is_ok()) {
            return Ok(Ok((platform, owned, identity, None)));
        }
    }
    let remember = |text: String| {
        if let Err(e) = cache.write_entry(IDENTITY_NAMESPACE, &key, text.as_bytes()) {
            tracing::debug!("cannot cache what the image's interpreter is: {e}");
        }
        if let Some(remote) = remote {
            remote.put_note(&shared_key, &text);
        }
    };
    let unpacked =
        unpack_interpreter(manifest, &debs, version, host, &cache.root().join("tmp"), offline, printer)?;
    let probed = unpacked.and_then(|root| {
        let identity = root.launch.probe().map_err(Unusable::Now)?;
        identity.check(version).map_err(Unusable::Always)?;
        Ok((identity, root))
    });
    match probed {
        Ok((identity, root)) => {
            remember(identity.to_text());
            Ok(Ok((platform, owned, identity, Some(root))))
        }
        Err(unusable) => {
            if let Unusable::Always(why) = &unusable {
                remember(format!("{UNUSABLE}{why}\n"));
            }
            Ok(Err(of_image(unusable.reason())))
        }
    }
}

/// How an identity entry says that the interpreter cannot compile (then why).
const UNUSABLE: &str = "unusable: ";

/// Compiles modules with worker processes of one interpreter (see the module docs); the
/// same module (path and source) is compiled once, whichever platform asks first.
#[derive(Debug)]
pub struct PyCompiler {
    shared: Arc<Shared>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    launch: Launch,
    identity: Identity,
    /// Who compiles, for messages: `/usr/bin/python3.9 of the linux/amd64 image`.
    who: String,
    max_workers: usize,
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Each module's result, by the digest of its path and source.
    memo: Mutex<HashMap<[u8; 32], Arc<Slot>>>,
    /// Where the `.pyc` are kept for the other platforms to ask for (a directory of the
    /// build's scratch, not memory: the flagship's are 180 MB); `None` for one platform,
    /// whose results are forgotten once answered.
    keep: Option<PathBuf>,
}

#[derive(Debug, Default)]
struct Queue {
    jobs: VecDeque<Job>,
    workers: usize,
    closed: bool,
    /// The first failure of the interpreter itself; every later request fails with it.
    failed: Option<String>,
    stats: Stats,
}

/// What the workers did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Modules compiled (each module once).
    pub compiled: usize,
    /// Modules that do not compile.
    pub failed: usize,
    /// Worker processes started (a failure to start one fails the compiler).
    pub workers: usize,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    first: Option<Instant>,
}

#[derive(Debug)]
struct Job {
    key: [u8; 32],
    path: String,
    source: Arc<[u8]>,
    slot: Arc<Slot>,
}

/// The result of one module, once a worker has it.
#[derive(Debug, Default)]
struct Slot {
    result: Mutex<Option<Result<Answer, String>>>,
    done: Condvar,
}

/// What a slot holds: the result, or where its `.pyc` is kept.
#[derive(Debug, Clone)]
enum Answer {
    Ready(Compiled),
    Kept(PathBuf),
}

impl Slot {
    fn set(&self, result: Result<Answer, String>) {
        *self.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        self.done.notify_all();
    }

    fn wait(&self) -> Result<Compiled, String> {
        let mut result = self.result.lock().unwrap_or_else(|e| e.into_inner());
        let answer = loop {
            if let Some(answer) = result.as_ref() {
                break answer.clone()?;
            }
            result = self.done.wait(result).unwrap_or_else(|e| e.into_inner());
        };
        drop(result);
        match answer {
            Answer::Ready(compiled) => Ok(compiled),
            Answer::Kept(path) => match std::fs::read(&path) {
                Ok(pyc) => Ok(Compiled::Pyc(pyc.into())),
                Err(e) => Err(format!("cannot read the kept {}: {e}", path.display())),
            },
        }
    }
}

impl PyCompiler {
    /// A compiler with at most `max_workers` processes of `launch` (which must be
    /// `identity`); with `keep`, results are kept in that directory (created) for the
    /// modules asked for again.
    fn new(
        launch: Launch,
        identity: Identity,
        who: String,
        max_workers: usize,
        keep: Option<PathBuf>,
    ) -> PyCompiler {
        let keep = keep.filter(|dir| match fs_err::create_dir_all(dir) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!("bytecode is kept in memory: {e}");
                false
            }
        });
        let shared = Shared {
            launch,
            identity,
            who,
            max_workers: max_workers.max(1),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            memo: Mutex::new(HashMap::new()),
            keep,
        };
        PyCompiler { shared: Arc::new(shared), threads: Mutex::new(Vec::new()) }
    }

    /// Who compiles: `/usr/bin/python3.9 of the linux/amd64 image`.
    pub fn who(&self) -> &str {
        &self.shared.who
    }

    /// What the workers did so far.
    pub fn stats(&self) -> Stats {
        self.shared.lock_queue().stats
    }

    /// Starts worker threads (each with its process) for the queued jobs, up to the most.
    fn spawn_workers(&self, queue: &mut Queue) {
        let wanted = queue.jobs.len().min(self.shared.max_workers);
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        while queue.workers < wanted {
            queue.workers += 1;
            // Counted here, not once its process runs: a job list shorter than the time a
            // process takes to start may be done by the first before the second runs.
            queue.stats.workers += 1;
            let shared = Arc::clone(&self.shared);
            threads.push(std::thread::spawn(move || shared.work()));
        }
    }
}

impl Shared {
    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A worker thread: one process, jobs until the queue closes or the interpreter fails.
    fn work(&self) {
        let mut worker = match Worker::start(&self.launch, &self.identity) {
            Ok(worker) => worker,
            Err(e) => return self.fail(format!("cannot start {}: {e}", self.who)),
        };
        while let Some(job) = self.next_job() {
            let result = worker.compile(&job.path, &job.source);
            let mut queue = self.lock_queue();
            match &result {
                Ok(Compiled::Pyc(_)) => queue.stats.compiled += 1,
                Ok(Compiled::Failed(_)) => queue.stats.failed += 1,
                Err(_) => {}
            }
            if let Some(first) = queue.stats.first {
                queue.stats.elapsed = first.elapsed();
            }
            drop(queue);
            match result {
                Ok(compiled) => job.slot.set(Ok(self.keep_answer(&job.key, compiled))),
                Err(e) => {
                    let e = format!("{} failed: {e}", self.who);
                    job.slot.set(Err(e.clone()));
                    return self.fail(e);
                }
            }
        }
    }

    /// `compiled` as the slot holds it: a `.pyc` in the keep directory, if there is one.
    fn keep_answer(&self, key: &[u8; 32], compiled: Compiled) -> Answer {
        let (Some(dir), Compiled::Pyc(pyc)) = (&self.keep, &compiled) else {
            return Answer::Ready(compiled);
        };
        let path = dir.join(format!("{}.pyc", hex::encode(key)));
        match std::fs::write(&path, pyc) {
            Ok(()) => Answer::Kept(path),
            Err(e) => {
                tracing::debug!("cannot keep a .pyc in {}: {e}", dir.display());
                Answer::Ready(compiled)
            }
        }
    }

    /// The next job; `None` once the queue is closed or the interpreter failed.
    fn next_job(&self) -> Option<Job> {
        let mut queue = self.lock_queue();
        loop {
            if queue.failed.is_some() {
                return None;
            }
            if let Some(job) = queue.jobs.pop_front() {
                return Some(job);
            }
            if queue.closed {
                return None;
            }
            queue = self.wake.wait(queue).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Records the interpreter's failure and fails every queued job with it.
    fn fail(&self, error: String) {
        let (error, jobs) = {
            let mut queue = self.lock_queue();
            let error = queue.failed.get_or_insert(error).clone();
            (error, queue.jobs.drain(..).collect::<Vec<Job>>())
        };
        self.wake.notify_all();
        for job in jobs {
            job.slot.set(Err(error.clone()));
        }
    }
}

impl Bytecompiler for PyCompiler {
    fn cache_tag(&self) -> &str {
        &self.shared.identity.cache_tag
    }

    fn compile(
        &self,
        sources: &[PySource<'_>],
    ) -> Result<Vec<Compiled>, Box<dyn std::error::Error + Send + Sync>> {
        let mut slots = Vec::with_capacity(sources.len());
        let mut keys = Vec::with_capacity(sources.len());
        let mut jobs = Vec::new();
        {
            let mut memo = self.shared.memo.lock().unwrap_or_else(|e| e.into_inner());
            for source in sources {
                let mut hasher = Sha256::new();
                hasher.update((source.path.len() as u64).to_le_bytes());
                hasher.update(source.path.as_bytes());
                hasher.update(&source.source[..]);
                let key: [u8; 32] = hasher.finalize().into();
                keys.push(key);
                let slot = memo.entry(key).or_insert_with(|| {
                    let slot = Arc::new(Slot::default());
                    jobs.push(Job {
                        key,
                        path: source.path.to_string(),
                        source: Arc::clone(source.source),
                        slot: Arc::clone(&slot),
                    });
                    slot
                });
                slots.push(Arc::clone(slot));
            }
        }
        {
            let mut queue = self.shared.lock_queue();
            if let Some(error) = &queue.failed {
                return Err(error.clone().into());
            }
            if !jobs.is_empty() {
                queue.stats.first.get_or_insert_with(Instant::now);
                queue.jobs.extend(jobs);
                self.spawn_workers(&mut queue);
                self.shared.wake.notify_all();
            }
        }
        let results: Result<Vec<Compiled>, String> = slots.iter().map(|slot| slot.wait()).collect();
        if self.shared.keep.is_none() {
            // One platform: nobody asks again.
            let mut memo = self.shared.memo.lock().unwrap_or_else(|e| e.into_inner());
            for key in &keys {
                memo.remove(key);
            }
        }
        Ok(results?)
    }
}

impl Drop for PyCompiler {
    fn drop(&mut self) {
        self.shared.lock_queue().closed = true;
        self.shared.wake.notify_all();
        for thread in self.threads.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            let _ = thread.join();
        }
    }
}

/// One worker process.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    /// Starts the interpreter on [`SERVE`] and checks that it is the one expected.
    fn start(launch: &Launch, expected: &Identity) -> Result<Worker, String> {
        let mut child = launch
            .command(&format!("{IDENTITY}{SERVE}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err("no pipes to the interpreter".into());
        };
        let mut worker = Worker { child, stdin, stdout: BufReader::new(stdout) };
        let mut text = String::new();
        for _ in 0..6 {
            worker.stdout.read_line(&mut text).map_err(|e| e.to_string())?;
        }
        let identity = Identity::parse(&text)?;
        if identity.build != expected.build
            || identity.cache_tag != expected.cache_tag
            || identity.magic != expected.magic
        {
            return Err(format!(
                "it is {} ({}), not {} ({}) as probed",
                identity.build, identity.cache_tag, expected.build, expected.cache_tag
            ));
        }
        Ok(worker)
    }

    /// Compiles one module; an error means the worker is unusable.
    fn compile(&mut self, path: &str, source: &[u8]) -> Result<Compiled, String> {
        let io = |e: std::io::Error| format!("the worker stopped: {e}");
        self.stdin.write_all(format!("{} {}\n", path.len(), source.len()).as_bytes()).map_err(io)?;
        self.stdin.write_all(path.as_bytes()).map_err(io)?;
        self.stdin.write_all(source).map_err(io)?;
        self.stdin.flush().map_err(io)?;
        let line = self.read_line()?;
        let (kind, number) = line.split_once(' ').ok_or_else(|| format!("the worker answered {line:?}"))?;
        let number: u64 = number.parse().map_err(|_| format!("the worker answered {line:?}"))?;
        if kind == "done" {
            // The fork died before answering (a crash of the compiler on this module).
            return Ok(Compiled::Failed(format!("the interpreter died compiling it (wait status {number})")));
        }
        let mut data = Vec::new();
        (&mut self.stdout).take(number).read_to_end(&mut data).map_err(io)?;
        if data.len() as u64 != number {
            return Err("the worker's answer is cut short".into());
        }
        let done = self.read_line()?;
        if !done.starts_with("done ") {
            return Err(format!("the worker answered {done:?}"));
        }
        match kind {
            "ok" => Ok(Compiled::Pyc(data.into())),
            "err" => Ok(Compiled::Failed(String::from_utf8_lossy(&data).into_owned())),
            _ => Err(format!("the worker answered {line:?}")),
        }
    }

    fn read_line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) => Err(format!("the worker exited ({})", self.exit_status())),
            Ok(_) => Ok(line.trim_end().to_string()),
            Err(e) => Err(format!("cannot read from the worker: {e}")),
        }
    }

    fn exit_status(&mut self) -> String {
        match self.child.wait() {
            Ok(status) => status.to_string(),
            Err(e) => e.to_string(),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Idle between modules: nothing is lost.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDENTITY_TEXT: &str = "cpython\n3.9\ncpython-39\n610d0d0a\n3.9.2 (default, Feb 28 2021, 17:03:44) [GCC 10.2.1 20210110]\n/usr/bin/python3.9\n";

    #[test]
    fn identities_are_read_and_checked() {
        let identity = Identity::parse(IDENTITY_TEXT).unwrap();
        assert_eq!(Identity::parse(&identity.to_text()).unwrap(), identity);
        assert!(identity.check("3.9").is_ok());
        let err = identity.check("3.11").unwrap_err();
        assert!(err.contains("not CPython 3.11"), "{err}");
        assert_eq!(identity.short(), "CPython 3.9.2, cpython-39");
        let key = identity.key("on the host");
        assert!(
            key.starts_with("cpython-39 magic 610d0d0a unchecked-hash, on the host: cpython 3.9.2 (default"),
            "{key}"
        );
        let pypy = IDENTITY_TEXT.replace("cpython\n", "pypy\n").replace("cpython-39", "pypy39");
        assert!(Identity::parse(&pypy).unwrap().check("3.9").is_err());
        assert!(Identity::parse("Python 3.9.2\n").is_err());
    }

    /// The `X.Y` of the host's Debian `/usr/bin/python3`.
    fn system_python_version() -> String {
        let target = std::fs::canonicalize("/usr/bin/python3").expect("/usr/bin/python3");
        let name = target.file_name().unwrap().to_string_lossy().into_owned();
        name.strip_prefix("python").expect("python3.X").to_string()
    }

    /// Runs `script` with the host's `python3` on `args`; its stdout.
    fn python3(script: &str, args: &[&Path]) -> String {
        let out = Command::new("/usr/bin/python3").arg("-c").arg(script).args(args).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// The host's own root taken as an image's: its `/usr/bin/python3.X` runs through the
    /// loader its ELF header names, with the root's libraries. The `.pyc` files are checked
    /// by the same interpreter's `importlib` and `marshal`, and are the same bytes whatever
    /// the order and the number of workers.
    #[test]
    fn an_image_interpreter_compiles_through_its_own_loader() {
        let version = system_python_version();
        let host = cross::host_arch().expect("amd64 or arm64");
        let launch = image_launch(Path::new("/"), &version, host).unwrap();
        assert!(launch.program.to_string_lossy().contains("ld-linux"), "{launch:?}");
        let identity = launch.probe().unwrap();
        identity.check(&version).unwrap();

        let modules: [(&str, &[u8]); 4] = [
            ("/usr/local/lib/python3/dist-packages/pkg/__init__.py", b"VALUE = {'a', 'b', 'c'}\n"),
            ("/usr/local/lib/python3/dist-packages/pkg/b.py", b"# -*- coding: latin-1 -*-\nNAME = '\xe9'\n"),
            ("/usr/local/lib/python3/dist-packages/pkg/py2.py", b"print 'python 2'\n"),
            ("/usr/local/lib/python3/dist-packages/pkg/nul.py", b"x = 1\0\n"),
        ];
        let shared: Vec<Arc<[u8]>> = modules.iter().map(|(_, source)| Arc::from(*source)).collect();
        let sources: Vec<PySource<'_>> =
            modules.iter().zip(&shared).map(|((path, _), source)| PySource { path, source }).collect();
        let kept = tempfile::tempdir().unwrap();
        let keep = Some(kept.path().join("kept"));
        let compiler = PyCompiler::new(launch.clone(), identity.clone(), "test".into(), 2, keep);
        let results = compiler.compile(&sources).unwrap();
        assert!(
            matches!(&results[2], Compiled::Failed(e) if e.starts_with("SyntaxError")),
            "{:?}",
            results[2]
        );
        assert!(matches!(&results[3], Compiled::Failed(_)), "{:?}", results[3]);
        let stats = compiler.stats();
        assert_eq!((stats.compiled, stats.failed, stats.workers), (2, 2, 2));
        // Asked again (by another platform), the same modules are answered from where the
        // compiler keeps them.
        assert_eq!(std::fs::read_dir(kept.path().join("kept")).unwrap().count(), 2);
        assert_eq!(compiler.compile(&sources[..1]).unwrap()[0], results[0]);
        assert_eq!(compiler.stats().compiled, 2);
        drop(compiler);
        // Without a place to keep them, nothing is kept: asked again, compiled again.
        let forgetful = PyCompiler::new(launch.clone(), identity.clone(), "test".into(), 1, None);
        assert_eq!(forgetful.compile(&sources[..1]).unwrap()[0], results[0]);
        assert_eq!(forgetful.compile(&sources[..1]).unwrap()[0], results[0]);
        assert_eq!(forgetful.stats().compiled, 2);
        drop(forgetful);

        let dir = tempfile::tempdir().unwrap();
        for (n, ((path, source), result)) in modules.iter().zip(&results).take(2).enumerate() {
            let Compiled::Pyc(pyc) = result else { panic!("{path}: {result:?}") };
            let (src, cached) = (dir.path().join(format!("{n}.py")), dir.path().join(format!("{n}.pyc")));
            std::fs::write(&src, source).unwrap();
            std::fs::write(&cached, pyc).unwrap();
            let check = "import importlib.util, marshal, sys\n\
                         data = open(sys.argv[2], 'rb').read()\n\
                         assert data[:4] == importlib.util.MAGIC_NUMBER\n\
                         assert data[8:16] == importlib.util.source_hash(open(sys.argv[1], 'rb').read())\n\
                         code = marshal.loads(data[16:])\n\
                         scope = {}\n\
                         exec(code, scope)\n\
                         print(int.from_bytes(data[4:8], 'little'), code.co_filename, sorted(scope.get('VALUE', scope.get('NAME'))))";
            let printed = python3(check, &[&src, &cached]);
            let value = if n == 0 { "['a', 'b', 'c']" } else { "['é']" };
            assert_eq!(printed, format!("1 {path} {value}\n"));
        }

        let reversed: Vec<PySource<'_>> = sources.iter().rev().copied().collect();
        let again = PyCompiler::new(launch, identity, "test".into(), 1, None).compile(&reversed).unwrap();
        assert_eq!(again.into_iter().rev().collect::<Vec<_>>(), results);
    }

    /// A CPython 3.9 or 3.10 of the host: they keep state between compilations that 3.11
    /// does not (see [`a_module_compiles_the_same_whatever_was_compiled_before`]).
    fn python_39() -> Launch {
        let pyenv = std::env::var_os("PYENV_ROOT")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".pyenv")));
        for version in ["3.9", "3.10"] {
            if let Ok((launch, _)) = host_interpreter(version) {
                return launch;
            }
            let versions =
                pyenv.iter().flat_map(|root| std::fs::read_dir(root.join("versions")).into_iter().flatten());
            for entry in versions.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let python = entry.path().join(format!("bin/python{version}"));
                if name.starts_with(&format!("{version}.")) && python.is_file() {
                    return Launch { program: python, args: Vec::new(), env: None };
                }
            }
        }
        panic!(
            "this test needs a CPython 3.9 or 3.10 on the host: ./test.sh unpacks Debian 11's \
             python3.9 where there is none (or put python3.9 on PATH, or `pyenv install 3.9`)"
        );
    }

    /// 3.9 interns `{` for good once it has unparsed an annotation under `from __future__
    /// import annotations`, and marshal marks interned strings: a worker that compiled such a
    /// module before would give another module other bytes, a fork of a fresh one does not.
    #[test]
    fn a_module_compiles_the_same_whatever_was_compiled_before() {
        let launch = python_39();
        let identity = launch.probe().unwrap();
        let (annotation, quote): (Arc<[u8]>, Arc<[u8]>) = (
            Arc::from(&b"from __future__ import annotations\nx: dict = {}\n"[..]),
            Arc::from(&b"x = '{'\n"[..]),
        );
        let annotated = PySource { path: "/s/a.py", source: &annotation };
        let brace = PySource { path: "/s/b.py", source: &quote };
        let alone = PyCompiler::new(launch.clone(), identity.clone(), "test".into(), 1, None)
            .compile(&[brace])
            .unwrap();
        let after = PyCompiler::new(launch.clone(), identity, "test".into(), 1, None)
            .compile(&[annotated, brace])
            .unwrap();
        assert_eq!(after[1], alone[0]);

        // What a worker without forks gives: the state leaks.
        let script = "import marshal, sys\n\
                      b = marshal.dumps(compile(\"x = '{'\\n\", '/s/b.py', 'exec'))\n\
                      compile('from __future__ import annotations\\nx: dict = {}\\n', '/s/a.py', 'exec')\n\
                      print(b == marshal.dumps(compile(\"x = '{'\\n\", '/s/b.py', 'exec')))";
        let out = launch.command(script).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "False\n", "{out:?}");
    }

    /// An interpreter that dies is an error of every module waiting for it, not a module
    /// that does not compile; so is one that is not what was probed.
    #[test]
    fn a_broken_interpreter_is_an_error() {
        let version = system_python_version();
        let launch = image_launch(Path::new("/"), &version, cross::host_arch().unwrap()).unwrap();
        let mut identity = launch.probe().unwrap();
        identity.build = "3.0.0 (another build)".into();
        let one: Arc<[u8]> = Arc::from(&b"x = 1\n"[..]);
        let source = PySource { path: "/s/a.py", source: &one };
        let err = PyCompiler::new(launch.clone(), identity, "the test's".into(), 2, None)
            .compile(&[source])
            .unwrap_err();
        assert!(err.to_string().contains("not 3.0.0 (another build)"), "{err}");

        let missing = Launch { program: PathBuf::from("/nonexistent/python3.9"), ..launch };
        assert!(missing.probe().is_err());
    }
}

/// The modules of a Debian root that its maintainer scripts byte-compile at configure time,
/// as absolute paths: `pythonX.Y-minimal` compiles what `libpythonX.Y-minimal` ships under
/// `/usr/lib/pythonX.Y/`, `pythonX.Y` what `libpythonX.Y-stdlib` ships there, and a package
/// whose `postinst` runs `py3compile -p NAME` its modules under `/usr/lib/python3/`.
pub(crate) fn debian_modules(packages: &[debian::InstalledPackage]) -> Vec<&str> {
    let names: std::collections::HashSet<&str> = packages.iter().map(|p| p.locked.name.as_str()).collect();
    let mut out = Vec::new();
    for p in packages {
        let name = p.locked.name.as_str();
        let stdlib = name.strip_prefix("libpython").and_then(|rest| {
            let (version, kind) = rest.split_once('-')?;
            let compiler = match kind {
                "minimal" => format!("python{version}-minimal"),
                "stdlib" => format!("python{version}"),
                _ => return None,
            };
            names.contains(compiler.as_str()).then(|| format!("/usr/lib/python{version}/"))
        });
        let py3compile = p
            .control
            .get("postinst")
            .is_some_and(|script| String::from_utf8_lossy(script).contains(&format!("py3compile -p {name}")));
        let dirs: Vec<String> =
            stdlib.into_iter().chain(py3compile.then(|| "/usr/lib/python3/".to_string())).collect();
        for file in &p.files {
            if file.ends_with(".py") && dirs.iter().any(|d| file.starts_with(d.as_str())) {
                out.push(file.as_str());
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Byte-compiles [`debian_modules`] of the unpacked `root` in place, as the maintainer
/// scripts would: each regular file's `__pycache__/NAME.TAG.pyc`, checked-hash (PEP 552:
/// Python checks it against the source, so a module a later `apt-get` upgrade replaces is
/// never shadowed by its old bytecode), owned by root. A module that does not compile is
/// left without, as `py_compile` leaves it. Returns how many `.pyc` were written.
pub(crate) fn compile_debian_modules(
    root: &Path,
    unpacked: &mut debian::Unpacked,
    compiler: &dyn Bytecompiler,
) -> Result<usize, Error> {
    let io = |what: &str, path: &Path| {
        let message = format!("cannot {what} {}", path.display());
        move |e: std::io::Error| Error::from_error(message, e)
    };
    let real_root = fs_err::canonicalize(root).map_err(io("resolve", root))?;
    let mut paths = Vec::new();
    let mut sources = Vec::new();
    for path in debian_modules(&unpacked.packages) {
        // The stdlib of another Python than the compiler's keeps its modules uncompiled.
        let version = path.trim_start_matches("/usr/lib/python").split('/').next().unwrap_or("");
        let tag = format!("cpython-{}", version.replace('.', ""));
        if version != "3" && compiler.cache_tag() != tag {
            continue;
        }
        // A link (`sitecustomize.py` to /etc) is compiled as what it leads to in the root,
        // as py_compile reads it in the image; a dangling one is left alone.
        let Some(on_disk) = file_in_root(root, path.trim_start_matches('/')) else { continue };
        let bytes = fs_err::read(&on_disk).map_err(io("read", &on_disk))?;
        paths.push(path.to_string());
        sources.push(Arc::<[u8]>::from(bytes));
    }
    let jobs: Vec<PySource<'_>> =
        paths.iter().zip(&sources).map(|(path, source)| PySource { path, source }).collect();
    let compiled = compiler
        .compile(&jobs)
        .map_err(|e| Error::internal(format!("cannot byte-compile the Debian packages' modules: {e}")))?;
    let mut written = 0;
    for (path, result) in paths.iter().zip(compiled) {
        let pyc = match result {
            Compiled::Pyc(bytes) => bytes,
            Compiled::Failed(why) => {
                tracing::debug!("{path} does not compile, as py_compile would find: {why}");
                continue;
            }
        };
        let Some(cached) = image::cache_path(path.trim_start_matches('/'), compiler.cache_tag()) else {
            continue;
        };
        let target = root.join(&cached);
        let dir = target.parent().unwrap_or(root);
        // Written only inside the root: the module's directory must be in it, `__pycache__`
        // a directory (not a link a package shipped), and the `.pyc` not there already.
        let inside = dir
            .parent()
            .and_then(|d| std::fs::canonicalize(d).ok())
            .is_some_and(|d| d.starts_with(&real_root));
        match std::fs::symlink_metadata(dir) {
            _ if !inside => continue,
            Ok(meta) if !meta.is_dir() => continue,
            Ok(_) => {}
            Err(_) => {
                fs_err::create_dir(dir).map_err(io("create", dir))?;
                let meta = fs_err::symlink_metadata(dir).map_err(io("read", dir))?;
                unpacked.owners.record_added(&meta, dir.to_path_buf(), 0o755);
            }
        }
        if std::fs::symlink_metadata(&target).is_ok() {
            continue;
        }
        let mut bytes = pyc.to_vec();
        // PEP 552 flags: hash-based (bit 0), and checked against the source (bit 1).
        if let Some(flags) = bytes.get_mut(4) {
            *flags |= 0b10;
        }
        fs_err::write(&target, &bytes).map_err(io("write", &target))?;
        let meta = fs_err::symlink_metadata(&target).map_err(io("read", &target))?;
        unpacked.owners.record_added(&meta, target, 0o644);
        written += 1;
    }
    Ok(written)
}

/// The regular file `path` (relative to `root`) is, or leads to through symbolic links that
/// stay inside `root` (absolute targets start from it, as in the image); `None` for anything
/// else (a dangling link, a directory, a link out of the root, a loop).
///
/// Only the last component's links are followed as the image would; a directory on the way
/// that is a link out of the root makes it `None` rather than a read of the host's file.
fn file_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    const RULES: safe_path::Rules =
        safe_path::Rules { absolute: safe_path::Absolute::FromRoot, windows: safe_path::Windows::Literal };
    let mut parts: Vec<String> =
        safe_path::normalize(path, RULES).ok()?.into_iter().map(str::to_string).collect();
    for _ in 0..16 {
        let on_disk = parts.iter().fold(root.to_path_buf(), |p, part| p.join(part));
        let meta = std::fs::symlink_metadata(&on_disk).ok()?;
        if meta.is_file() {
            // A link among the directories on the way could still lead out.
            let real = std::fs::canonicalize(&on_disk).ok()?;
            return real.starts_with(std::fs::canonicalize(root).ok()?).then_some(on_disk);
        }
        if !meta.file_type().is_symlink() {
            return None;
        }
        let target = std::fs::read_link(&on_disk).ok()?;
        let target = target.to_str()?;
        let base: Vec<&str> = parts[..parts.len() - 1].iter().map(String::as_str).collect();
        parts = safe_path::resolve(&base, target, RULES).ok()?.into_iter().map(str::to_string).collect();
    }
    None
}

#[cfg(test)]
mod debian_module_tests {
    use super::file_in_root;

    #[test]
    fn links_are_followed_inside_the_root_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/lib/python3.11")).unwrap();
        std::fs::create_dir_all(root.join("etc/python3.11")).unwrap();
        std::fs::write(root.join("etc/python3.11/sitecustomize.py"), "").unwrap();
        std::fs::write(root.join("usr/lib/python3.11/os.py"), "").unwrap();
        let link = |target: &str, name: &str| std::os::unix::fs::symlink(target, root.join(name)).unwrap();
        link("/etc/python3.11/sitecustomize.py", "usr/lib/python3.11/sitecustomize.py");
        link("os.py", "usr/lib/python3.11/alias.py");
        link("/etc/python3.11/missing.py", "usr/lib/python3.11/dangling.py");
        link("../../../../../../etc/passwd", "usr/lib/python3.11/escape.py");
        link("/etc", "usr/lib/python3.11/hostdir");
        let found =
            |path: &str| file_in_root(root, path).map(|p| p.strip_prefix(root).unwrap().to_path_buf());
        assert_eq!(found("usr/lib/python3.11/os.py").unwrap().to_str(), Some("usr/lib/python3.11/os.py"));
        assert_eq!(
            found("usr/lib/python3.11/sitecustomize.py").unwrap().to_str(),
            Some("etc/python3.11/sitecustomize.py")
        );
        assert_eq!(found("usr/lib/python3.11/alias.py").unwrap().to_str(), Some("usr/lib/python3.11/os.py"));
        assert_eq!(found("usr/lib/python3.11/dangling.py"), None);
        assert_eq!(found("usr/lib/python3.11/escape.py"), None);
        assert_eq!(found("usr/lib/python3.11/hostdir/passwd"), None);
    }
}
