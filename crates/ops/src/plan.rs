//! Planning: a manifest, its lock and the platforms to build → the layers of each platform's
//! image, bottom first, each with what it is made of, its history entry and the description
//! of its inputs (what its layer-cache key is the hash of).
//!
//! Pure: nothing here reads a file, asks a cache or the network, so a plan is the same on
//! every machine for the same manifest, lock and options, and tests snapshot it in-process.
//! [`crate::build`] looks each layer up in the layer cache, fetches what the others need, and
//! builds them.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::str::FromStr;

use image::{plan_layers, Compression, LayerOptions};
use lockfile::{FileEntry, FileSource, Lock, LockedDebian, LockedPython, Manifest, TargetPlatform};

use crate::Error;

/// How many buckets the small wheels of a platform are spread over.
pub const WHEEL_BUCKETS: usize = 16;
/// A wheel larger than this (bytes) gets a layer of its own.
pub const BIG_WHEEL: u64 = 32 * 1024 * 1024;

/// What a plan depends on besides the manifest and the lock.
#[derive(Debug, Clone)]
pub struct PlanOptions<'a> {
    /// `--platform` values (each one of the manifest's); empty for all of the manifest's.
    pub platforms: &'a [String],
    /// The normalised names of the direct requirements (their wheels get `REQUESTED`).
    pub requested: &'a HashSet<String>,
    /// The mtime of every layer entry (`SOURCE_DATE_EPOCH`, else 0).
    pub mtime: u64,
    /// What a built sdist depends on besides itself: `path sha256` of each build-constraint
    /// file.
    pub build_constraints: &'a str,
    /// How the layers are compressed.
    pub compression: Compression,
    /// Whether wheel layers get `.pyc`, and from which interpreter.
    pub bytecode: &'a Bytecode,
    /// What the Debian layer's key says of apt's sources in the image
    /// ([`crate::debian::ImageApt::inputs`]).
    pub apt: &'a str,
}

/// Whether wheel layers get `.pyc` and from which interpreter ([`crate::bytecode::choose`]
/// decides, before the plan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bytecode {
    /// The compiling interpreter as wheel layers' inputs name it (everything the bytes
    /// depend on); `None` for no `.pyc`.
    pub interpreter: Option<String>,
    /// What the plan says: which platforms get `.pyc`, from which interpreter and why, or
    /// why none.
    pub summary: String,
}

/// The layers of every platform to build, in the manifest's order.
#[derive(Debug)]
pub struct BuildPlan<'a> {
    pub platforms: Vec<PlatformPlan<'a>>,
    /// `3.9` of the manifest's `[python] version`, when it has one.
    pub python_version: Option<String>,
    /// [`Bytecode::summary`], when a platform has wheel layers.
    pub bytecode: Option<String>,
}

/// The layers of one platform's image, bottom first.
#[derive(Debug)]
pub struct PlatformPlan<'a> {
    pub platform: TargetPlatform,
    pub layers: Vec<PlannedLayer<'a>>,
}

/// One layer, before it is built.
#[derive(Debug)]
pub struct PlannedLayer<'a> {
    pub source: LayerSource<'a>,
    /// Every input of the layer, one per line (the layer-cache key is its hash); `None` for
    /// what is not cached (local `[[file]]` sources, whose bytes the lock does not pin).
    pub inputs: Option<String>,
    /// Its history entry.
    pub created_by: String,
}

/// What a layer is made of.
#[derive(Debug)]
pub enum LayerSource<'a> {
    /// The platform's `.deb`s, unpacked together (with users, alternatives, the dpkg status).
    Debian(Vec<&'a LockedDebian>),
    /// Wheels (or sdists, built into wheels) installed as pip would.
    Wheels(Vec<&'a LockedPython>),
    /// A `[[file]]` of the manifest.
    File(&'a FileEntry),
}

/// The inputs some layers need, each once, in the order of first use.
#[derive(Debug, Default)]
pub struct Needs<'a> {
    pub debs: Vec<&'a LockedDebian>,
    pub wheels: Vec<&'a LockedPython>,
    pub files: Vec<&'a FileEntry>,
}

/// The options of every layer of a build: Debian and `[[file]]` layers keep modes exactly
/// (`files::add_entry` normalises the modes a manifest does not set); wheel layers do not.
pub fn layer_options(mtime: u64, exact_modes: bool) -> LayerOptions {
    LayerOptions { mtime, keep_special_bits: exact_modes }
}

impl<'a> BuildPlan<'a> {
    /// Plans the image of `manifest` from `lock`. Errors when a `--platform` is not one of
    /// the manifest's, or the lock has Python packages and the manifest no `[python]`.
    pub fn new(manifest: &'a Manifest, lock: &'a Lock, options: &PlanOptions<'_>) -> Result<Self, Error> {
        let platforms = select_platforms(manifest, options.platforms)?;
        let python_version = match &manifest.python {
            Some(python) => Some(major_minor(&python.version)?),
            None => None,
        };
        if python_version.is_none() && platforms.iter().any(|p| lock.python_for(*p).next().is_some()) {
            return Err(Error::user(format!(
                "the lock has Python packages but {} has no [python] section",
                manifest.path().display()
            ))
            .with_hint("run `marqo-base lock` to update the lock"));
        }
        let platforms = platforms
            .into_iter()
            .map(|platform| PlatformPlan {
                platform,
                layers: plan_platform(platform, manifest, lock, python_version.as_deref(), options),
            })
            .collect::<Vec<PlatformPlan<'a>>>();
        let wheel_layers =
            platforms.iter().flat_map(|p| &p.layers).any(|l| matches!(l.source, LayerSource::Wheels(_)));
        let bytecode = wheel_layers.then(|| options.bytecode.summary.clone());
        Ok(BuildPlan { platforms, python_version, bytecode })
    }

    /// The platforms, in the manifest's order.
    pub fn platform_list(&self) -> Vec<TargetPlatform> {
        self.platforms.iter().map(|p| p.platform).collect()
    }

    /// How many layers all platforms have.
    pub fn layer_count(&self) -> usize {
        self.platforms.iter().map(|p| p.layers.len()).sum()
    }

    /// What the layers for which `build` answers true need, each input once.
    pub fn needs(&self, mut build: impl FnMut(&PlannedLayer<'a>) -> bool) -> Needs<'a> {
        let mut needs = Needs::default();
        for layer in self.platforms.iter().flat_map(|p| &p.layers) {
            if !build(layer) {
                continue;
            }
            match &layer.source {
                LayerSource::Debian(debs) => {
                    for deb in debs {
                        if !needs.debs.iter().any(|d| d.file.sha256 == deb.file.sha256) {
                            needs.debs.push(deb);
                        }
                    }
                }
                LayerSource::Wheels(wheels) => {
                    for wheel in wheels {
                        if !needs.wheels.iter().any(|w| w.file.sha256 == wheel.file.sha256) {
                            needs.wheels.push(wheel);
                        }
                    }
                }
                LayerSource::File(entry) => {
                    if !needs.files.iter().any(|f| f.to == entry.to) {
                        needs.files.push(entry);
                    }
                }
            }
        }
        needs
    }
}

/// The plan as text: per platform, its bytecode, then each layer's history entry and inputs
/// (what tests snapshot, and what `-v` shows).
impl fmt::Display for BuildPlan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for platform in &self.platforms {
            writeln!(f, "{}: {} layers", platform.platform, platform.layers.len())?;
            if let Some(bytecode) = &self.bytecode {
                writeln!(f, "  bytecode: {bytecode}")?;
            }
            for (n, layer) in platform.layers.iter().enumerate() {
                writeln!(f, "  {n}: {}", layer.created_by)?;
                match &layer.inputs {
                    Some(inputs) => {
                        for line in inputs.lines() {
                            writeln!(f, "     | {line}")?;
                        }
                    }
                    None => writeln!(f, "     (not cached)")?,
                }
            }
        }
        Ok(())
    }
}

/// The platforms to build: `--platform` values (each must be one of the manifest's), in the
/// manifest's order; all of the manifest's by default.
pub(crate) fn select_platforms(manifest: &Manifest, given: &[String]) -> Result<Vec<TargetPlatform>, Error> {
    let all = &manifest.image.platforms;
    if given.is_empty() {
        return Ok(all.clone());
    }
    let mut wanted = HashSet::new();
    for text in given {
        let platform = TargetPlatform::from_str(text)
            .map_err(|e| Error::user(format!("unknown platform `{}`", e.given)).with_hint(e.hint))?;
        if !all.contains(&platform) {
            return Err(Error::user(format!(
                "--platform {platform} is not a platform of {}",
                manifest.path().display()
            ))
            .with_hint(format!(
                "the manifest has {}; add it to [image] platforms and run `marqo-base lock`",
                all.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        wanted.insert(platform);
    }
    Ok(all.iter().copied().filter(|p| wanted.contains(p)).collect())
}

/// `3.9` of `3.9` or `3.9.2`.
pub(crate) fn major_minor(version: &str) -> Result<String, Error> {
    let mut parts = version.split('.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) if !major.is_empty() && !minor.is_empty() => {
            Ok(format!("{major}.{minor}"))
        }
        _ => Err(Error::user(format!("[python] version `{version}` is not X.Y or X.Y.Z"))
            .with_hint("write version = \"3.9\"")),
    }
}

/// The first lines of every layer's inputs: how it is compressed and laid out. Written out
/// field by field (not a `Debug` rendering), so a key means the same in every build of the
/// tool that lays the same inputs out the same way.
fn layer_header(kind: &str, options: &PlanOptions<'_>, debian: bool) -> String {
    let layer = layer_options(options.mtime, debian);
    format!(
        "{kind}\ncompression {}\nmtime {} special-bits {}\n",
        options.compression.identity(),
        layer.mtime,
        layer.keep_special_bits
    )
}

/// How a Debian layer's owners are made, in its key: a layer built when every entry was 0:0
/// is not reused for one whose owners come from the packages (see `debian::owners`).
const DEBIAN_OWNERS: &str =
    "owners dpkg: header names through the image's passwd and group, then statoverrides\n";

/// What configuration replicates of the maintainer scripts (`debian::configure`): a new
/// line here when its output changes, so no cache holds a layer made the old way.
const DEBIAN_CONFIGURE: &str = "configure fresh-install: base-files pam-auth-update update-shells \
     shadowconfig dpkg-triggers extended-states\n";

/// The names of the Debian packages the manifest asks for (apt's manually installed ones).
pub fn manual_packages(manifest: &Manifest) -> std::collections::BTreeSet<String> {
    manifest
        .debian
        .iter()
        .flat_map(|d| &d.packages)
        .map(|p| lockfile::Debian::package_name(p).to_string())
        .collect()
}

/// The layers of one platform, bottom first: the Debian packages, then the wheels in the
/// groups of [`plan_layers`], then the manifest's `[[file]]`s.
fn plan_platform<'a>(
    platform: TargetPlatform,
    manifest: &'a Manifest,
    lock: &'a Lock,
    python_version: Option<&str>,
    options: &PlanOptions<'_>,
) -> Vec<PlannedLayer<'a>> {
    let mut layers = Vec::new();
    let debs: Vec<&LockedDebian> = lock.debian_for(platform).collect();
    if !debs.is_empty() {
        let mut inputs = layer_header("debian", options, true);
        inputs.push_str(DEBIAN_OWNERS);
        inputs.push_str(DEBIAN_CONFIGURE);
        // The packages asked for: the rest are marked auto-installed for apt.
        for name in manual_packages(manifest) {
            inputs.push_str(&format!("manual {name}\n"));
        }
        for deb in &debs {
            inputs.push_str(&format!(
                "deb {} {} {} {}\n",
                deb.name,
                deb.version,
                deb.arch,
                deb.file.sha256.hex()
            ));
        }
        // The certificates it trusts, by the digests the lock recorded (build refuses a lock
        // whose inputs changed, and checks the files against these digests as it reads them).
        for cert in manifest.debian.iter().flat_map(|d| &d.ca_certificates) {
            let name = manifest.input_name(cert);
            let digest = lock.inputs.files.get(&name).map_or("unknown", String::as_str);
            inputs.push_str(&format!(
                "ca-certificate {} {name} {digest}\n",
                lockfile::Debian::ca_certificate_name(cert)
            ));
        }
        inputs.push_str(options.apt);
        // The modules Debian's maintainer scripts byte-compile (see `bytecode::debian_modules`).
        match &options.bytecode.interpreter {
            Some(interpreter) => {
                inputs.push_str(&format!("bytecode debian-modules checked-hash {interpreter}\n"))
            }
            None => inputs.push_str("bytecode none\n"),
        }
        layers.push(PlannedLayer {
            created_by: format!("marqo-base: {} Debian packages", debs.len()),
            source: LayerSource::Debian(debs),
            inputs: Some(inputs),
        });
    }
    let wheels: BTreeMap<&str, &LockedPython> =
        lock.python_for(platform).map(|w| (w.name.as_str(), w)).collect();
    if let (Some(version), false) = (python_version, wheels.is_empty()) {
        let items: Vec<(&str, u64)> = wheels.values().map(|w| (w.name.as_str(), w.file.size)).collect();
        for group in plan_layers(&items, WHEEL_BUCKETS, BIG_WHEEL) {
            let mut inputs = layer_header("wheels", options, false);
            inputs.push_str(&format!("python {version}\n"));
            match &options.bytecode.interpreter {
                Some(interpreter) => inputs.push_str(&format!("bytecode {interpreter}\n")),
                None => inputs.push_str("bytecode none\n"),
            }
            let entries: Vec<&LockedPython> = group.iter().map(|name| wheels[name.as_str()]).collect();
            for wheel in &entries {
                let requested = options.requested.contains(&wheel.name);
                inputs.push_str(&format!(
                    "wheel {} {} {} requested={requested}\n",
                    wheel.name,
                    wheel.file.name,
                    wheel.file.sha256.hex()
                ));
                if !wheel.file.name.ends_with(".whl") {
                    inputs.push_str(&format!("built with {}\n", options.build_constraints));
                }
            }
            layers.push(PlannedLayer {
                created_by: format!("marqo-base: pip install {}", group.join(" ")),
                source: LayerSource::Wheels(entries),
                inputs: Some(inputs),
            });
        }
    }
    for entry in &manifest.files {
        let inputs = match &entry.source {
            FileSource::Url { sha256, .. } => Some(format!(
                "{}to {} mode {} extract {}\nsha256 {sha256}\n",
                layer_header("file", options, true),
                entry.to,
                entry.mode.map_or("default".to_string(), |mode| format!("{mode:#o}")),
                entry.extract
            )),
            FileSource::Local(_) => None,
        };
        layers.push(PlannedLayer {
            created_by: format!("marqo-base: file {}", entry.to),
            source: LayerSource::File(entry),
            inputs,
        });
    }
    layers
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const MANIFEST: &str = r#"
[image]
platforms = ["linux/amd64", "linux/arm64"]

[debian]
suite = "bookworm"
packages = ["python3.11"]
ca_certificates = ["certs/my-ca.pem"]

[python]
version = "3.11.2"
requirements = ["requirements.in"]

[[file]]
url = "http://127.0.0.1:1/tool.tar.gz"
sha256 = "1111111111111111111111111111111111111111111111111111111111111111"
to = "/opt/tool.tar.gz"
mode = 0o644

[[file]]
src = "entrypoint.sh"
to = "/usr/local/bin/entrypoint.sh"
mode = 0o755
"#;

    fn lock_text() -> String {
        let digest = |c: char| c.to_string().repeat(64);
        let mut text = String::from(
            "version = 1\ninputs = \"sha256:0000000000000000000000000000000000000000000000000000000000000000\"\n\n[input_files]\n\
             \"certs/my-ca.pem\" = \"sha256:3333333333333333333333333333333333333333333333333333333333333333\"\n",
        );
        for (name, version, arch, c) in
            [("python3.11", "3.11.2-6", "amd64", 'a'), ("python3.11", "3.11.2-6", "arm64", 'b')]
        {
            text.push_str(&format!(
                "\n[[debian]]\nname = \"{name}\"\nversion = \"{version}\"\narch = \"{arch}\"\nplatforms = [\"linux/{arch}\"]\npath = \"pool/main/p/{name}_{version}_{arch}.deb\"\nfile = {{ name = \"{name}_{version}_{arch}.deb\", size = 100, sha256 = \"{}\" }}\n",
                digest(c)
            ));
        }
        for (name, file, size, platforms, c) in [
            ("big", "big-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", 40_000_000u64, "\"linux/amd64\"", 'c'),
            ("big", "big-1.0-cp311-cp311-manylinux_2_17_aarch64.whl", 30_000_000, "\"linux/arm64\"", 'd'),
            ("small", "small-2.0-py3-none-any.whl", 1_000, "\"linux/amd64\", \"linux/arm64\"", 'e'),
            ("srcpkg", "srcpkg-0.1.tar.gz", 2_000, "\"linux/amd64\", \"linux/arm64\"", 'f'),
        ] {
            text.push_str(&format!(
                "\n[[python]]\nname = \"{name}\"\nversion = \"1.0\"\nplatforms = [{platforms}]\nfile = {{ name = \"{file}\", size = {size}, sha256 = \"{}\" }}\n",
                digest(c)
            ));
        }
        text
    }

    const NO_BYTECODE: Bytecode = Bytecode { interpreter: None, summary: String::new() };

    fn image_bytecode() -> Bytecode {
        Bytecode {
            interpreter: Some(
                "cpython-311 magic a70d0d0a unchecked-hash, the linux/amd64 image's: cpython 3.11.2 \
                 (main, Mar 13 2023, 12:18:29) [GCC 12.2.0]"
                    .into(),
            ),
            summary: ".pyc for linux/amd64, linux/arm64 by /usr/bin/python3.11 of the linux/amd64 image \
                      (CPython 3.11.2, cpython-311), run natively through its own loader"
                .into(),
        }
    }

    fn plan_text(platforms: &[String], compression: Compression) -> String {
        plan_with(platforms, compression, &image_bytecode())
    }

    fn plan_with(platforms: &[String], compression: Compression, bytecode: &Bytecode) -> String {
        let manifest = Manifest::parse(MANIFEST, Path::new("/project/marqo-base.toml")).unwrap();
        let lock = Lock::parse(&lock_text(), Path::new("/project/marqo-base.lock")).unwrap();
        let requested: HashSet<String> = ["big".to_string()].into();
        let options = PlanOptions {
            platforms,
            requested: &requested,
            mtime: 1_700_000_000,
            build_constraints: "constraints.txt 2222 ",
            compression,
            bytecode,
            apt: "",
        };
        BuildPlan::new(&manifest, &lock, &options).unwrap().to_string()
    }

    /// The compiling interpreter (or none) is an input of every wheel layer and of nothing
    /// else: another interpreter never reuses a wheel layer, and the Debian and file layers
    /// stay.
    #[test]
    fn the_compiling_interpreter_is_an_input_of_wheel_and_debian_layers_only() {
        // Each layer's lines (its history line and its inputs), in plan order.
        let inputs = |text: &str| -> Vec<String> {
            let mut layers: Vec<String> = Vec::new();
            for line in text.lines() {
                if line.trim_start().starts_with(|c: char| c.is_ascii_digit()) {
                    layers.push(String::new());
                }
                if let Some(layer) = layers.last_mut().filter(|_| line.starts_with("   ")) {
                    layer.push_str(line);
                    layer.push('\n');
                }
            }
            layers
        };
        let host = Bytecode {
            interpreter: Some(
                "cpython-311 magic a70d0d0a unchecked-hash, on the host: cpython 3.11.7".into(),
            ),
            summary: "by the host's".into(),
        };
        let none =
            Bytecode { interpreter: None, summary: "no .pyc: [python] compile_bytecode = false".into() };
        let plans = [image_bytecode(), host, none].map(|b| plan_with(&[], Compression::Gzip, &b));
        assert!(
            plans[2].contains("  bytecode: no .pyc: [python] compile_bytecode = false\n"),
            "{}",
            plans[2]
        );
        assert!(plans[2].contains("| bytecode none\n"), "{}", plans[2]);
        let [image, host, none] = plans.map(|p| inputs(&p));
        for (n, layer) in image.iter().enumerate() {
            let differs = layer != &host[n] && layer != &none[n] && host[n] != none[n];
            assert_eq!(differs, layer.contains("| wheel ") || layer.contains("| deb "), "{layer}");
        }
    }

    #[test]
    fn a_plan_lists_each_platforms_layers_and_their_inputs() {
        insta::assert_snapshot!(plan_text(&[], Compression::Gzip));
    }

    #[test]
    fn a_plan_of_one_platform_has_only_its_layers() {
        let one = plan_text(&["linux/arm64".to_string()], Compression::Zstd);
        assert!(one.starts_with("linux/arm64: "), "{one}");
        assert!(!one.contains("linux/amd64:"), "{one}");
        assert!(one.contains("compression zstd"), "{one}");
    }

    #[test]
    fn a_platform_the_manifest_lacks_is_refused_with_its_platforms() {
        let manifest = Manifest::parse(MANIFEST, Path::new("/project/marqo-base.toml")).unwrap();
        let lock = Lock::parse(&lock_text(), Path::new("/project/marqo-base.lock")).unwrap();
        let requested = HashSet::new();
        let platforms = ["linux/riscv64".to_string()];
        let options = PlanOptions {
            platforms: &platforms,
            requested: &requested,
            mtime: 0,
            build_constraints: "",
            compression: Compression::Gzip,
            bytecode: &NO_BYTECODE,
            apt: "",
        };
        let err = BuildPlan::new(&manifest, &lock, &options).unwrap_err();
        assert!(err.to_string().contains("linux/riscv64"), "{err}");
        assert!(err.hint().unwrap_or_default().contains("linux/amd64, linux/arm64"), "{err:?}");
    }

    #[test]
    fn python_packages_without_a_python_section_are_refused() {
        let manifest_text = MANIFEST.split("[python]").next().unwrap();
        let manifest = Manifest::parse(manifest_text, Path::new("/project/marqo-base.toml")).unwrap();
        let lock = Lock::parse(&lock_text(), Path::new("/project/marqo-base.lock")).unwrap();
        let requested = HashSet::new();
        let options = PlanOptions {
            platforms: &[],
            requested: &requested,
            mtime: 0,
            build_constraints: "",
            compression: Compression::Gzip,
            bytecode: &NO_BYTECODE,
            apt: "",
        };
        let err = BuildPlan::new(&manifest, &lock, &options).unwrap_err();
        assert!(err.to_string().contains("no [python] section"), "{err}");
    }
}
