//! The generated wheels and sdists are well-formed and deterministic.

use std::io::{Cursor, Read};

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};
use test_support::{Index, Sdist, Wheel};

fn zip_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("valid zip");
    (0..archive.len())
        .map(|i| {
            let mut f = archive.by_index(i).unwrap();
            assert_eq!(f.compression(), zip::CompressionMethod::Deflated);
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().to_string(), data)
        })
        .collect()
}

fn entry<'a>(entries: &'a [(String, Vec<u8>)], name: &str) -> &'a str {
    let data = &entries.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name}")).1;
    std::str::from_utf8(data).unwrap()
}

fn b64(data: &[u8]) -> String {
    // Independent of the crate's encoder: via hex and a plain table walk.
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits: String = data.iter().map(|b| format!("{b:08b}")).collect();
    bits.as_bytes()
        .chunks(6)
        .map(|c| {
            let s = format!("{:0<6}", std::str::from_utf8(c).unwrap());
            table[usize::from_str_radix(&s, 2).unwrap()] as char
        })
        .collect()
}

#[test]
fn wheel_has_metadata_wheel_entry_points_and_a_valid_record() {
    let wheel = Wheel::new("foo-bar", "1.0")
        .requires("bar>=1")
        .requires("baz; platform_machine == 'aarch64'")
        .requires_python(">=3.8")
        .extra("cli", &["click>=8"])
        .tag("cp39-cp39-manylinux_2_17_aarch64.manylinux2014_aarch64")
        .build_tag("1")
        .file("foo_bar/__init__.py", "VALUE = 1\n")
        .entry_point("console_scripts", "foo", "foo_bar:main");
    assert_eq!(wheel.filename(), "foo_bar-1.0-1-cp39-cp39-manylinux_2_17_aarch64.manylinux2014_aarch64.whl");
    let bytes = wheel.build();
    assert_eq!(bytes, wheel.build(), "deterministic");
    let entries = zip_entries(&bytes);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "foo_bar/__init__.py",
            "foo_bar-1.0.dist-info/METADATA",
            "foo_bar-1.0.dist-info/WHEEL",
            "foo_bar-1.0.dist-info/entry_points.txt",
            "foo_bar-1.0.dist-info/RECORD",
        ]
    );
    assert_eq!(
        entry(&entries, "foo_bar-1.0.dist-info/METADATA"),
        "Metadata-Version: 2.1\nName: foo-bar\nVersion: 1.0\nRequires-Python: >=3.8\n\
         Provides-Extra: cli\nRequires-Dist: bar>=1\n\
         Requires-Dist: baz; platform_machine == 'aarch64'\nRequires-Dist: click>=8; extra == \"cli\"\n"
    );
    assert_eq!(
        entry(&entries, "foo_bar-1.0.dist-info/WHEEL"),
        "Wheel-Version: 1.0\nGenerator: test-support\nRoot-Is-Purelib: false\nBuild: 1\n\
         Tag: cp39-cp39-manylinux_2_17_aarch64\nTag: cp39-cp39-manylinux2014_aarch64\n"
    );
    assert_eq!(
        entry(&entries, "foo_bar-1.0.dist-info/entry_points.txt"),
        "[console_scripts]\nfoo = foo_bar:main\n\n"
    );
    let record = entry(&entries, "foo_bar-1.0.dist-info/RECORD");
    let lines: Vec<&str> = record.lines().collect();
    assert_eq!(lines.len(), entries.len());
    assert_eq!(*lines.last().unwrap(), "foo_bar-1.0.dist-info/RECORD,,");
    for (line, (name, data)) in lines.iter().zip(&entries).take(entries.len() - 1) {
        let expected = format!("{name},sha256={},{}", b64(&Sha256::digest(data)), data.len());
        assert_eq!(*line, expected);
    }
}

#[test]
fn pure_wheels_are_purelib() {
    let entries = zip_entries(&Wheel::new("a", "1").build());
    assert!(entry(&entries, "a-1.dist-info/WHEEL").contains("Root-Is-Purelib: true\nTag: py3-none-any\n"));
}

#[test]
fn large_file_puts_the_central_directory_far_from_the_start() {
    let size = 3 * 1024 * 1024;
    let bytes = Wheel::new("big", "1").large_file("big/blob.bin", size).build();
    assert!(bytes.len() > size, "incompressible: {} bytes", bytes.len());
    // End of central directory record: signature, then the directory offset at +16.
    let eocd = bytes.windows(4).rposition(|w| w == [0x50, 0x4b, 0x05, 0x06]).unwrap();
    let cd_offset = u32::from_le_bytes(bytes[eocd + 16..eocd + 20].try_into().unwrap()) as usize;
    assert!(cd_offset > size);
    assert!(bytes.len() - cd_offset < 4096, "directory sits in the tail");
    let entries = zip_entries(&bytes);
    assert_eq!(entries[0].1.len(), size);
    assert_eq!(bytes, Wheel::new("big", "1").large_file("big/blob.bin", size).build());
}

#[test]
fn sdist_holds_pkg_info_pyproject_and_backend() {
    let sdist = Sdist::new("clip-marqo", "1.0.2")
        .requires("torch")
        .requires_python(">=3.8")
        .dynamic("Requires-Dist")
        .build_requires("helper>=1")
        .build_requires_dist("ftfy")
        .file("clip_marqo/__init__.py", "");
    let bytes = sdist.build();
    assert_eq!(bytes, sdist.build(), "deterministic");
    let mut archive = tar::Archive::new(GzDecoder::new(bytes.as_slice()));
    let mut members = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        assert_eq!(e.header().mtime().unwrap(), 1_577_836_800);
        let mut text = String::new();
        e.read_to_string(&mut text).unwrap();
        members.push((path, text));
    }
    let get = |p: &str| &members.iter().find(|(n, _)| n == p).unwrap_or_else(|| panic!("{p}")).1;
    assert_eq!(
        get("clip_marqo-1.0.2/PKG-INFO"),
        "Metadata-Version: 2.2\nName: clip-marqo\nVersion: 1.0.2\nDynamic: Requires-Dist\nRequires-Python: >=3.8\n"
    );
    assert_eq!(
        get("clip_marqo-1.0.2/pyproject.toml"),
        "[build-system]\nrequires = [\"helper>=1\"]\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n"
    );
    assert_eq!(get("clip_marqo-1.0.2/backend.py"), test_support::BACKEND_SRC);
    let config: serde_json::Value = serde_json::from_str(get("clip_marqo-1.0.2/backend.json")).unwrap();
    assert_eq!(config["imports"], serde_json::json!(["helper"]));
    assert!(config["metadata"].as_str().unwrap().ends_with("Requires-Dist: torch\nRequires-Dist: ftfy\n"));
    assert!(members.iter().any(|(n, _)| n == "clip_marqo-1.0.2/clip_marqo/"));
}

#[test]
fn publishing_writes_flat_files_and_static_pages() {
    let index = Index::new();
    let w = Wheel::new("Foo.Bar", "1.0").publish(&index);
    let s = Sdist::new("Foo.Bar", "1.0").publish(&index);
    assert_eq!(w, "Foo.Bar-1.0-py3-none-any.whl");
    assert!(index.find_links_dir().join(&w).is_file());
    assert!(index.file_path(&s).is_file());
    let page = std::fs::read_to_string(index.root().join("simple/foo-bar/index.html")).unwrap();
    assert!(page.contains("href=\"../../files/Foo.Bar-1.0-py3-none-any.whl#sha256="), "{page}");
    let root = std::fs::read_to_string(index.root().join("simple/index.html")).unwrap();
    assert!(root.contains("<a href=\"foo-bar/\">foo-bar</a>"));
}

#[test]
#[should_panic(expected = "already published")]
fn publishing_twice_panics() {
    let index = Index::new();
    Wheel::new("a", "1").publish(&index);
    Wheel::new("a", "1").publish(&index);
}
