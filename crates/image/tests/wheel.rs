//! Wheels built here with the zip crate, installed into a layer, extracted with GNU tar and
//! used by the host's `python3`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use image::{
    install_wheel, record_hash, Bytecompiler, Compiled, InstallOptions, LayerOptions, LayerWriter, PySource,
    Scheme, WheelError,
};
use zip::write::SimpleFileOptions;

const SITE: &str = "usr/local/lib/python3.9/dist-packages";

/// A wheel under construction: files with their modes, and how its RECORD is written.
struct Wheel {
    name: &'static str,
    version: &'static str,
    purelib: bool,
    files: Vec<(String, u32, Vec<u8>)>,
    symlinks: Vec<(String, String)>,
    /// Files whose RECORD row gets a wrong hash.
    corrupt: Vec<String>,
}

impl Wheel {
    fn new(name: &'static str, version: &'static str) -> Wheel {
        let mut wheel = Wheel {
            name,
            version,
            purelib: true,
            files: Vec::new(),
            symlinks: Vec::new(),
            corrupt: Vec::new(),
        };
        wheel = wheel.file(
            &format!("{name}-{version}.dist-info/METADATA"),
            &format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"),
        );
        wheel
    }

    fn file(mut self, path: &str, content: &str) -> Wheel {
        self.files.push((path.to_string(), 0o644, content.as_bytes().to_vec()));
        self
    }

    fn executable(mut self, path: &str, content: &str) -> Wheel {
        self.files.push((path.to_string(), 0o755, content.as_bytes().to_vec()));
        self
    }

    fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join(format!("{}-{}-py3-none-any.whl", self.name, self.version));
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let dist_info = format!("{}-{}.dist-info", self.name, self.version);
        let root = if self.purelib { "true" } else { "false" };
        let wheel_file =
            format!("Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: {root}\nTag: py3-none-any\n");
        let mut files = self.files.clone();
        files.push((format!("{dist_info}/WHEEL"), 0o644, wheel_file.into_bytes()));
        let mut record = String::new();
        for (name, mode, content) in &files {
            zip.start_file(name, SimpleFileOptions::default().unix_permissions(*mode)).unwrap();
            zip.write_all(content).unwrap();
            let hash = if self.corrupt.contains(name) {
                record_hash(b"something else")
            } else {
                record_hash(content)
            };
            if !name.starts_with("unlisted/") {
                record.push_str(&format!("{name},{hash},{}\n", content.len()));
            }
        }
        for (name, target) in &self.symlinks {
            zip.add_symlink(name, target, SimpleFileOptions::default()).unwrap();
            record.push_str(&format!("{name},{},{}\n", record_hash(target.as_bytes()), target.len()));
        }
        record.push_str(&format!("{dist_info}/RECORD,,\n"));
        zip.start_file(format!("{dist_info}/RECORD"), SimpleFileOptions::default()).unwrap();
        zip.write_all(record.as_bytes()).unwrap();
        zip.finish().unwrap();
        path
    }
}

fn options(requested: bool) -> InstallOptions<'static> {
    InstallOptions {
        python: "/usr/bin/python3.9".to_string(),
        requested,
        strict_record: true,
        bytecode: None,
    }
}

/// A pure package with a `.data/scripts` script, `.data/data` and `.data/headers` files, a
/// console script and a GUI script.
fn hello_wheel() -> Wheel {
    Wheel::new("hello_pkg", "1.2.3")
        .file("hello_pkg/__init__.py", "def main():\n    print('hello from', __name__)\n    return 0\n")
        .file(
            "hello_pkg/cli.py",
            "class App:\n    @staticmethod\n    def run():\n        print('gui'); return 3\n",
        )
        .executable(
            "hello_pkg-1.2.3.data/scripts/hello-raw",
            "#!python\nimport hello_pkg\nhello_pkg.main()\n",
        )
        .file("hello_pkg-1.2.3.data/scripts/hello.sh", "#!/bin/sh\necho shell\n")
        .file("hello_pkg-1.2.3.data/data/share/hello/data.txt", "data\n")
        .file("hello_pkg-1.2.3.data/headers/hello.h", "int hello(void);\n")
        .file(
            "hello_pkg-1.2.3.dist-info/entry_points.txt",
            "[console_scripts]\nhello = hello_pkg:main\n\n[gui_scripts]\nhello-gui = hello_pkg.cli:App.run\n",
        )
}

/// Installs wheels into one layer and extracts it with GNU tar into `dir/root`.
fn install_and_extract(dir: &Path, wheels: &[(PathBuf, bool)]) -> (PathBuf, Vec<image::InstalledWheel>) {
    let scheme = Scheme::debian("3.9");
    let mut layer = LayerWriter::new(dir, LayerOptions::default()).unwrap();
    let installed = wheels
        .iter()
        .map(|(wheel, requested)| install_wheel(wheel, &scheme, &mut layer, &options(*requested)).unwrap());
    let installed: Vec<_> = installed.collect();
    let tarball = dir.join("layer.tar.gz");
    layer.finish_to_file(&tarball).unwrap();
    let root = dir.join("root");
    std::fs::create_dir(&root).unwrap();
    let status = Command::new("tar").arg("-xzf").arg(&tarball).arg("-C").arg(&root).status().unwrap();
    assert!(status.success());
    (root, installed)
}

fn python(root: &Path, args: &[&str]) -> String {
    let output = Command::new("python3")
        .args(args)
        .env("PYTHONPATH", root.join(SITE))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert!(output.status.success() || output.status.code() == Some(3), "{args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn pure_wheel_with_scripts_installs_as_pip_would() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = hello_wheel().write(dir.path());
    let (root, installed) = install_and_extract(dir.path(), &[(wheel, true)]);
    let hello = &installed[0];
    assert_eq!((hello.name.as_str(), hello.version.as_str()), ("hello_pkg", "1.2.3"));
    assert_eq!(hello.dist_info, format!("/{SITE}/hello_pkg-1.2.3.dist-info"));

    // The package imports, and its metadata is readable with the standard library.
    let site = root.join(SITE);
    assert_eq!(python(&root, &["-c", "import hello_pkg; hello_pkg.main()"]), "hello from hello_pkg\n");
    let script = "import importlib.metadata as m; d = m.distribution('hello_pkg'); \
                  print(m.version('hello_pkg'), d.read_text('INSTALLER').strip(), len(d.files), \
                  sorted(e.name for e in d.entry_points))";
    assert_eq!(python(&root, &["-c", script]), "1.2.3 marqo-base 14 ['hello', 'hello-gui']\n");

    // Console and GUI launchers, and the `#!python` script, with the target's shebang.
    let bin = root.join("usr/local/bin");
    for name in ["hello", "hello-gui", "hello-raw"] {
        let text = std::fs::read_to_string(bin.join(name)).unwrap();
        assert!(text.starts_with("#!/usr/bin/python3.9\n"), "{name}: {text}");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(bin.join(name)).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o755, "{name}");
    }
    let hello = bin.join("hello");
    assert_eq!(python(&root, &[hello.to_str().unwrap()]), "hello from hello_pkg\n");
    let gui = Command::new("python3").arg(bin.join("hello-gui")).env("PYTHONPATH", &site).output().unwrap();
    assert_eq!((gui.status.code(), gui.stdout.as_slice()), (Some(3), &b"gui\n"[..]));
    assert_eq!(python(&root, &[bin.join("hello-raw").to_str().unwrap()]), "hello from hello_pkg\n");
    assert_eq!(std::fs::read_to_string(bin.join("hello.sh")).unwrap(), "#!/bin/sh\necho shell\n");
    assert_eq!(std::fs::read_to_string(root.join("usr/local/share/hello/data.txt")).unwrap(), "data\n");
    assert!(root.join("usr/local/include/python3.9/hello_pkg/hello.h").is_file());

    // RECORD: every installed file once, relative to site-packages, hashes that verify.
    let dist_info = site.join("hello_pkg-1.2.3.dist-info");
    assert_eq!(std::fs::read(dist_info.join("REQUESTED")).unwrap(), b"");
    let record = std::fs::read_to_string(dist_info.join("RECORD")).unwrap();
    let rows: Vec<Vec<&str>> = record.lines().map(|line| line.split(',').collect()).collect();
    let paths: Vec<&str> = rows.iter().map(|row| row[0]).collect();
    assert_eq!(
        paths,
        [
            "../../../bin/hello",
            "../../../bin/hello-gui",
            "../../../bin/hello-raw",
            "../../../bin/hello.sh",
            "../../../include/python3.9/hello_pkg/hello.h",
            "../../../share/hello/data.txt",
            "hello_pkg-1.2.3.dist-info/INSTALLER",
            "hello_pkg-1.2.3.dist-info/METADATA",
            "hello_pkg-1.2.3.dist-info/RECORD",
            "hello_pkg-1.2.3.dist-info/REQUESTED",
            "hello_pkg-1.2.3.dist-info/WHEEL",
            "hello_pkg-1.2.3.dist-info/entry_points.txt",
            "hello_pkg/__init__.py",
            "hello_pkg/cli.py",
        ]
    );
    for row in &rows {
        let file = site.join(row[0]);
        if row[0].ends_with("/RECORD") {
            assert_eq!(&row[1..], ["", ""]);
            continue;
        }
        let content = std::fs::read(&file).unwrap();
        assert_eq!(row[1], record_hash(&content), "{}", row[0]);
        assert_eq!(row[2], content.len().to_string(), "{}", row[0]);
    }
    assert_eq!(installed[0].files.len(), rows.len());
    // pip itself reads the RECORD back (it is what `pip uninstall` uses).
    let check = "import importlib.metadata as m; d = m.distribution('hello_pkg'); \
                 print(all(f.hash is None or f.hash.value for f in d.files))";
    assert_eq!(python(&root, &["-c", check]), "True\n");
}

#[test]
fn installing_twice_gives_the_same_layer_and_dependencies_are_not_requested() {
    let dir = tempfile::tempdir().unwrap();
    let hello = hello_wheel().write(dir.path());
    let mut dep = Wheel::new("dep", "0.1").file("dep.py", "VALUE = 42\n");
    dep.purelib = false;
    let dep = dep.write(dir.path());
    let scheme = Scheme::debian("3.9");
    let mut digests = Vec::new();
    for order in [[(&hello, true), (&dep, false)], [(&dep, false), (&hello, true)]] {
        let mut layer = LayerWriter::new(dir.path(), LayerOptions::default()).unwrap();
        for (wheel, requested) in order {
            install_wheel(wheel, &scheme, &mut layer, &options(requested)).unwrap();
        }
        assert!(!layer.contains(&format!("/{SITE}/dep-0.1.dist-info/REQUESTED")));
        assert!(layer.contains(&format!("/{SITE}/dep-0.1.dist-info/INSTALLER")));
        digests.push(layer.finish_to_file(&dir.path().join("layer.tar.gz")).unwrap());
    }
    assert_eq!(digests[0], digests[1]);
    let (root, _) = install_and_extract(dir.path(), &[(dep, false)]);
    assert_eq!(python(&root, &["-c", "import dep; print(dep.VALUE)"]), "42\n");
}

fn install_error(wheel: Wheel) -> WheelError {
    let dir = tempfile::tempdir().unwrap();
    let path = wheel.write(dir.path());
    let mut layer = LayerWriter::new(dir.path(), LayerOptions::default()).unwrap();
    install_wheel(&path, &Scheme::debian("3.9"), &mut layer, &options(true)).unwrap_err()
}

#[test]
fn zip_slip_entries_are_refused() {
    for name in ["../../etc/evil", "/etc/evil", "pkg/../../../../etc/evil", "hello_pkg-1.0.data/data/../../x"]
    {
        let err = install_error(Wheel::new("hello_pkg", "1.0").file(name, "evil"));
        assert!(matches!(err, WheelError::UnsafeEntry { .. }), "{name}: {err}");
        assert!(err.to_string().contains("refusing entry"), "{err}");
    }
    let mut wheel = Wheel::new("hello_pkg", "1.0");
    wheel.symlinks.push(("hello_pkg/link".into(), "/etc".into()));
    let err = install_error(wheel);
    assert!(err.to_string().contains("symbolic links are not allowed"), "{err}");
    let err = install_error(Wheel::new("hello_pkg", "1.0").file("hello_pkg-1.0.data/etc/x", ""));
    assert!(err.to_string().contains("unknown `.data` directory"), "{err}");
}

#[test]
fn files_that_do_not_match_record_are_refused() {
    let mut wheel = Wheel::new("hello_pkg", "1.0").file("hello_pkg/__init__.py", "x = 1\n");
    wheel.corrupt.push("hello_pkg/__init__.py".into());
    let err = install_error(wheel);
    assert!(
        matches!(err, WheelError::RecordMismatch { ref entry, .. } if entry == "hello_pkg/__init__.py"),
        "{err}"
    );

    let err = install_error(Wheel::new("hello_pkg", "1.0").file("unlisted/x.py", ""));
    assert!(matches!(err, WheelError::Unverified { ref entry, .. } if entry == "unlisted/x.py"), "{err}");
}

/// Without `strict_record`, as pip: a stale RECORD row is reported, the file is installed,
/// and the installed RECORD has the file's real hash.
#[test]
fn record_problems_are_reported_when_not_strict() {
    let dir = tempfile::tempdir().unwrap();
    let mut wheel = Wheel::new("hello_pkg", "1.0").file("hello_pkg/__init__.py", "x = 1\n");
    wheel.corrupt.push("hello_pkg/__init__.py".into());
    let path = wheel.write(dir.path());
    let mut layer = LayerWriter::new(dir.path(), LayerOptions::default()).unwrap();
    let lenient = InstallOptions { strict_record: false, ..options(false) };
    let installed = install_wheel(&path, &Scheme::debian("3.9"), &mut layer, &lenient).unwrap();
    assert_eq!(installed.record_problems.len(), 1, "{:?}", installed.record_problems);
    assert!(
        installed.record_problems[0].contains("hello_pkg/__init__.py"),
        "{:?}",
        installed.record_problems
    );
    let out = dir.path().join("layer.tar");
    layer.finish_to_file(&out).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(&out).unwrap()));
    let mut record = String::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().ends_with("hello_pkg-1.0.dist-info/RECORD") {
            std::io::Read::read_to_string(&mut entry, &mut record).unwrap();
        }
    }
    let real = image::record_hash(b"x = 1\n");
    assert!(record.contains(&format!("hello_pkg/__init__.py,{real},6")), "{record}");
}

/// A [`Bytecompiler`] that is Python's own: the host's `python3` runs `py_compile` (with
/// unchecked-hash invalidation and each module's installed path as its file name) over the
/// sources written to a directory, one process per wheel.
#[derive(Debug)]
struct PyCompile {
    tag: String,
    dir: PathBuf,
}

impl PyCompile {
    fn new(dir: &Path) -> PyCompile {
        let tag =
            Command::new("python3").args(["-c", "import sys; print(sys.implementation.cache_tag)"]).output();
        let tag = String::from_utf8(tag.unwrap().stdout).unwrap().trim().to_string();
        let dir = dir.join("pycompile");
        std::fs::create_dir(&dir).unwrap();
        PyCompile { tag, dir }
    }
}

const PY_COMPILE: &str = "import py_compile, sys\n\
    for n, dfile in enumerate(sys.argv[1:]):\n\
    \x20   try:\n\
    \x20       py_compile.compile(f'{n}.py', f'{n}.pyc', dfile, doraise=True,\n\
    \x20           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)\n\
    \x20   except py_compile.PyCompileError as e:\n\
    \x20       open(f'{n}.err', 'w').write(e.msg)\n";

impl Bytecompiler for PyCompile {
    fn cache_tag(&self) -> &str {
        &self.tag
    }

    fn compile(
        &self,
        sources: &[PySource<'_>],
    ) -> Result<Vec<Compiled>, Box<dyn std::error::Error + Send + Sync>> {
        for (n, source) in sources.iter().enumerate() {
            std::fs::write(self.dir.join(format!("{n}.py")), &source.source[..])?;
        }
        let status = Command::new("python3")
            .args(["-c", PY_COMPILE])
            .args(sources.iter().map(|s| s.path))
            .current_dir(&self.dir)
            .status()?;
        assert!(status.success());
        let results = (0..sources.len())
            .map(|n| match std::fs::read(self.dir.join(format!("{n}.pyc"))) {
                Ok(pyc) => Compiled::Pyc(pyc.into()),
                Err(_) => {
                    Compiled::Failed(std::fs::read_to_string(self.dir.join(format!("{n}.err"))).unwrap())
                }
            })
            .collect();
        for entry in std::fs::read_dir(&self.dir)? {
            std::fs::remove_file(entry?.path())?;
        }
        Ok(results)
    }
}

/// Every file below `root`, with its content.
fn tree(root: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                files.insert(path.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// As pip: every `.py` of the purelib and platlib gets its `__pycache__` file (none for
/// scripts and data), listed in RECORD; a module that does not compile is skipped, a shipped
/// `.pyc` is replaced where a module compiles; the host's `python3` imports the modules from
/// their `.pyc` without writing any, and their code names the installed path in the image.
#[test]
fn modules_are_byte_compiled_as_pip_would() {
    let dir = tempfile::tempdir().unwrap();
    let compiler = PyCompile::new(dir.path());
    let tag = compiler.tag.clone();
    let wheel = Wheel::new("hello_pkg", "1.0")
        .file("hello_pkg/__init__.py", "WHO = 'compiled'\n")
        .file("hello_pkg/cli.py", "def run():\n    return 3\n")
        .file("hello_pkg/py2.py", "print 'python 2'\n")
        .file(&format!("hello_pkg/__pycache__/cli.{tag}.pyc"), "a stale pyc the wheel ships")
        .file(&format!("hello_pkg/__pycache__/py2.{tag}.pyc"), "a pyc the wheel ships")
        .file("hello_pkg-1.0.data/purelib/extra.py", "EXTRA = 1\n")
        .file("hello_pkg-1.0.data/scripts/tool.py", "print('a script')\n")
        .file("hello_pkg-1.0.data/data/share/hello/x.py", "X = 1\n")
        .write(dir.path());
    let scheme = Scheme::debian("3.9");
    let mut layer = LayerWriter::new(dir.path(), LayerOptions::default()).unwrap();
    let with_pyc = InstallOptions { bytecode: Some(&compiler), ..options(false) };
    let installed = install_wheel(&wheel, &scheme, &mut layer, &with_pyc).unwrap();
    assert_eq!(installed.compiled, 3, "{installed:?}");
    assert_eq!(installed.not_compiled.len(), 1, "{installed:?}");
    assert!(installed.not_compiled[0].starts_with(&format!("`/{SITE}/hello_pkg/py2.py`: ")), "{installed:?}");
    assert!(installed.not_compiled[0].contains("SyntaxError"), "{installed:?}");
    let tarball = dir.path().join("layer.tar.gz");
    layer.finish_to_file(&tarball).unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let status = Command::new("tar").arg("-xzf").arg(&tarball).arg("-C").arg(&root).status().unwrap();
    assert!(status.success());

    let site = root.join(SITE);
    let record = std::fs::read_to_string(site.join("hello_pkg-1.0.dist-info/RECORD")).unwrap();
    let rows: Vec<Vec<&str>> = record.lines().map(|line| line.split(',').collect()).collect();
    let cached: Vec<&str> = rows.iter().map(|row| row[0]).filter(|p| p.contains("__pycache__")).collect();
    assert_eq!(
        cached,
        [
            format!("__pycache__/extra.{tag}.pyc"),
            format!("hello_pkg/__pycache__/__init__.{tag}.pyc"),
            format!("hello_pkg/__pycache__/cli.{tag}.pyc"),
            format!("hello_pkg/__pycache__/py2.{tag}.pyc"),
        ]
    );
    for row in rows.iter().filter(|row| !row[0].ends_with("/RECORD")) {
        let content = std::fs::read(site.join(row[0])).unwrap();
        assert_eq!((row[1], row[2]), (record_hash(&content).as_str(), content.len().to_string().as_str()));
    }
    let shipped = std::fs::read(site.join(format!("hello_pkg/__pycache__/py2.{tag}.pyc"))).unwrap();
    assert_eq!(shipped, b"a pyc the wheel ships", "kept: its module does not compile");
    let cli = std::fs::read(site.join(format!("hello_pkg/__pycache__/cli.{tag}.pyc"))).unwrap();
    assert_ne!(cli, b"a stale pyc the wheel ships", "replaced by the compiled one");
    for outside in ["usr/local/bin", "usr/local/share/hello"] {
        assert!(!root.join(outside).join("__pycache__").exists(), "{outside} has no bytecode");
    }

    // The sources are edited after the install: Python still runs the compiled code, since
    // an unchecked-hash `.pyc` is used without looking at its source, and writes nothing.
    std::fs::write(site.join("hello_pkg/__init__.py"), "WHO = 'the source'\n").unwrap();
    let before = tree(&root);
    let check = "import marshal, hello_pkg, hello_pkg.cli, extra\n\
                 print(hello_pkg.WHO, hello_pkg.cli.run(), extra.EXTRA)\n\
                 data = open(hello_pkg.__cached__, 'rb').read()\n\
                 print(int.from_bytes(data[4:8], 'little'), marshal.loads(data[16:]).co_filename)";
    let output = Command::new("python3").args(["-c", check]).env("PYTHONPATH", &site).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("compiled 3 1\n1 /{SITE}/hello_pkg/__init__.py\n"),
        "flags 1: hash-based, unchecked"
    );
    assert_eq!(tree(&root), before, "importing wrote nothing");
}
