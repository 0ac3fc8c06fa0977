//! OCI layouts and docker-archives written by this crate, read back by it and checked with
//! tools we did not write: `skopeo` and `umoci` (`apt-get install skopeo umoci`).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use oci::media_type::{OCI_IMAGE_CONFIG, OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST, OCI_LAYER_TAR_GZIP};
use oci::{
    write_docker_archive, Descriptor, Digest, Error, History, ImageConfig, ImageIndex, ImageManifest,
    OciLayout, Platform, RootFs, RuntimeConfig,
};

const ARCHES: [&str; 2] = ["amd64", "arm64"];

/// A gzip tar layer holding `etc/` and `etc/<file>` = `content`, made deterministically;
/// returns the compressed bytes and the uncompressed tar's digest (the diff_id).
fn layer(file: &str, content: &str) -> (Vec<u8>, Digest) {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_ustar();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    dir.set_mtime(0);
    builder.append_data(&mut dir, "etc/", std::io::empty()).unwrap();
    let mut header = tar::Header::new_ustar();
    header.set_mode(0o644);
    header.set_size(content.len() as u64);
    header.set_mtime(0);
    builder.append_data(&mut header, format!("etc/{file}"), content.as_bytes()).unwrap();
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), Digest::of_bytes(&tar))
}

/// Writes a two-platform image (one layer each, with a different file) under ref `v1` into a
/// new layout at `dir`; returns the layout and the per-platform manifest descriptors.
fn build(dir: &Path) -> (OciLayout, Vec<Descriptor>) {
    let layout = OciLayout::create(dir).unwrap();
    let mut manifests = Vec::new();
    for arch in ARCHES {
        let (gz, diff_id) = layer(&format!("{arch}.txt"), &format!("{arch}\n"));
        let blob = if arch == "amd64" {
            // The streaming path, from a file outside the layout.
            let src = tempfile::NamedTempFile::new().unwrap();
            fs::write(src.path(), &gz).unwrap();
            layout.put_blob_from_file(src.path()).unwrap()
        } else {
            layout.put_blob(&gz).unwrap()
        };
        assert_eq!(blob.digest, Digest::of_bytes(&gz));
        let config = ImageConfig {
            created: None,
            author: None,
            architecture: arch.to_string(),
            os: "linux".to_string(),
            variant: None,
            config: RuntimeConfig {
                env: vec![format!("ARCH={arch}"), "PATH=/usr/bin:/bin".to_string()],
                cmd: Some(vec!["/bin/sh".to_string()]),
                working_dir: Some("/".to_string()),
                labels: BTreeMap::from([("test.arch".to_string(), arch.to_string())]),
                ..RuntimeConfig::default()
            },
            rootfs: RootFs::layers(vec![diff_id]),
            history: vec![History {
                created_by: Some(format!("oci test layer {arch}")),
                ..History::default()
            }],
        };
        let config = layout.put_json(&config, OCI_IMAGE_CONFIG).unwrap();
        let manifest = ImageManifest::new(config, vec![blob.descriptor(OCI_LAYER_TAR_GZIP)]);
        let manifest = layout.put_json(&manifest, OCI_IMAGE_MANIFEST).unwrap();
        manifests.push(manifest.with_platform(Platform::new("linux", arch)));
    }
    let index = layout.put_json(&ImageIndex::new(manifests.clone()), OCI_IMAGE_INDEX).unwrap();
    layout.set_ref("v1", &index).unwrap();
    (layout, manifests)
}

/// Runs `tool` with `args`, panicking with its stderr if it fails; returns stdout.
fn run(tool: &str, args: &[&str], cwd: &Path) -> String {
    let out = Command::new(tool).args(args).current_dir(cwd).env("HOME", cwd).output().unwrap_or_else(|e| {
        panic!(
            "cannot run `{tool}` ({e}); install it: apt-get install -y --no-install-recommends skopeo umoci"
        )
    });
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn skopeo_and_umoci_read_a_two_platform_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("multi");
    let (layout, manifests) = build(&dir);
    let oci_ref = format!("oci:{}:v1", s(&dir));

    // The index, byte for byte, with both platforms.
    let raw = run("skopeo", &["inspect", "--raw", &oci_ref], tmp.path());
    let index_desc = layout.resolve("v1").unwrap();
    assert_eq!(raw.as_bytes(), layout.read_blob(&index_desc.digest).unwrap());
    let raw = json(&raw);
    assert_eq!(raw["mediaType"], OCI_IMAGE_INDEX);
    let arches: Vec<&str> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(arches, ARCHES);

    // The arm64 image's view: its configuration and its layer.
    let arm = json(&run("skopeo", &["inspect", "--override-arch", "arm64", &oci_ref], tmp.path()));
    assert_eq!(arm["Architecture"], "arm64");
    assert_eq!(arm["Os"], "linux");
    assert_eq!(arm["Labels"]["test.arch"], "arm64");
    assert!(arm["Env"].as_array().unwrap().iter().any(|e| e == "ARCH=arm64"), "{arm}");
    let arm_manifest = layout.read_manifest(&manifests[1]).unwrap();
    assert_eq!(arm["Layers"], serde_json::json!([arm_manifest.layers[0].digest.as_str()]));

    let config =
        run("skopeo", &["inspect", "--override-arch", "arm64", "--config", "--raw", &oci_ref], tmp.path());
    assert_eq!(config.as_bytes(), layout.read_blob(&arm_manifest.config.digest).unwrap());

    // Copy the arm64 image out and unpack it: it has the arm64 file only.
    let single = tmp.path().join("single");
    run(
        "skopeo",
        &["copy", "--override-arch", "arm64", &oci_ref, &format!("oci:{}:x", s(&single))],
        tmp.path(),
    );
    let bundle = tmp.path().join("bundle");
    run("umoci", &["unpack", "--rootless", "--image", &format!("{}:x", s(&single)), s(&bundle)], tmp.path());
    let rootfs = bundle.join("rootfs");
    assert_eq!(fs::read_to_string(rootfs.join("etc/arm64.txt")).unwrap(), "arm64\n");
    assert!(!rootfs.join("etc/amd64.txt").exists());

    // What skopeo wrote is a layout we can read, with the same arm64 manifest.
    let copied = OciLayout::open(&single).unwrap();
    let copied_desc = copied.resolve("x").unwrap();
    assert_eq!(copied_desc.digest, manifests[1].digest);
    assert_eq!(copied.read_manifest(&copied_desc).unwrap(), arm_manifest);
}

#[test]
fn skopeo_reads_a_docker_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, manifests) = build(&tmp.path().join("multi"));
    let index = layout.read_image_index(&layout.resolve("v1").unwrap()).unwrap();
    let amd64 = index.find_platform(&Platform::new("linux", "amd64")).unwrap();
    assert_eq!(amd64.digest, manifests[0].digest);
    let archive = tmp.path().join("amd64.tar");
    write_docker_archive(&layout, amd64, &["marqoai/test:v1".to_string()], &archive).unwrap();

    let inspected =
        json(&run("skopeo", &["inspect", &format!("docker-archive:{}", s(&archive))], tmp.path()));
    assert_eq!(inspected["Architecture"], "amd64");
    assert!(inspected["Env"].as_array().unwrap().iter().any(|e| e == "ARCH=amd64"), "{inspected}");
    let manifest = layout.read_manifest(amd64).unwrap();
    let config = layout.read_config(&manifest.config).unwrap();
    let layers = inspected["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{inspected}");
    // skopeo names a docker-archive's layers by their uncompressed digest.
    assert_eq!(layers[0], config.rootfs.diff_ids[0].as_str());

    // Copy it back out with skopeo, selected by its tag, and unpack: the amd64 file is there.
    let back = tmp.path().join("back");
    run(
        "skopeo",
        &["copy", &format!("docker-archive:{}:marqoai/test:v1", s(&archive)), &format!("oci:{}:x", s(&back))],
        tmp.path(),
    );
    let bundle = tmp.path().join("bundle");
    run("umoci", &["unpack", "--rootless", "--image", &format!("{}:x", s(&back)), s(&bundle)], tmp.path());
    assert_eq!(fs::read_to_string(bundle.join("rootfs/etc/amd64.txt")).unwrap(), "amd64\n");

    // The archive is deterministic: sorted entries, mtime 0, root-owned; and the same twice.
    let mut reader = tar::Archive::new(fs::File::open(&archive).unwrap());
    let mut names = Vec::new();
    for entry in reader.entries().unwrap() {
        let entry = entry.unwrap();
        let h = entry.header();
        assert_eq!((h.mtime().unwrap(), h.uid().unwrap(), h.gid().unwrap()), (0, 0, 0));
        names.push(entry.path().unwrap().to_string_lossy().into_owned());
    }
    let hex = manifest.layers[0].digest.hex();
    let expected = vec![
        format!("{}.json", manifest.config.digest.hex()),
        format!("{hex}/"),
        format!("{hex}/layer.tar"),
        "manifest.json".into(),
    ];
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let again = tmp.path().join("again.tar");
    write_docker_archive(&layout, amd64, &["marqoai/test:v1".to_string()], &again).unwrap();
    assert_eq!(fs::read(&archive).unwrap(), fs::read(&again).unwrap());
}

/// Every file under `dir` with its content, by relative path.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn same_inputs_give_byte_identical_layouts() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, _) = build(&tmp.path().join("a"));
    let (b, _) = build(&tmp.path().join("b"));
    assert_eq!(a.resolve("v1").unwrap(), b.resolve("v1").unwrap());
    let (ta, tb) = (tree(a.path()), tree(b.path()));
    assert_eq!(ta, tb);
    // oci-layout, index.json, 2 layers + 2 configs + 2 manifests + 1 index; no temporary files.
    assert_eq!(ta.len(), 9, "{:?}", ta.keys().collect::<Vec<_>>());
}

#[test]
fn a_corrupt_blob_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, manifests) = build(&tmp.path().join("multi"));
    let manifest = layout.read_manifest(&manifests[0]).unwrap();
    let layer = &manifest.layers[0].digest;
    let path = layout.blob_path(layer);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&path, &bytes).unwrap();

    let err = layout.read_blob(layer).unwrap_err();
    assert!(matches!(&err, Error::DigestMismatch { expected, .. } if expected == layer), "{err}");
    assert!(err.to_string().contains(layer.hex()), "{err}");
    let err = write_docker_archive(&layout, &manifests[0], &[], &tmp.path().join("x.tar")).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(!tmp.path().join("x.tar").exists());

    fs::remove_file(&path).unwrap();
    let err = layout.read_blob(layer).unwrap_err();
    assert!(matches!(err, Error::MissingBlob { .. }), "{err}");

    // A document blob that never ends (here 1 GiB, sparse) is refused, not held in memory.
    fs::File::create(&path).unwrap().set_len(1 << 30).unwrap();
    let err = layout.read_blob(layer).unwrap_err();
    let text =
        format!("{err}: {}", std::error::Error::source(&err).map(|e| e.to_string()).unwrap_or_default());
    assert!(text.contains("is larger than 64 MiB"), "{text}");
}

#[test]
fn refs_and_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("multi");
    let (layout, manifests) = build(&dir);

    // set_ref replaces a ref in place and keeps the others.
    layout.set_ref("amd64", &manifests[0]).unwrap();
    layout.set_ref("v1", &manifests[1]).unwrap();
    let index = layout.index().unwrap();
    let refs: Vec<_> = index.manifests.iter().map(|d| (d.ref_name().unwrap(), d.digest.clone())).collect();
    assert_eq!(refs, [("v1", manifests[1].digest.clone()), ("amd64", manifests[0].digest.clone())]);

    let err = layout.resolve("nope").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("`nope` is not in `{}` (refs: v1, amd64)", dir.join("index.json").display())
    );

    // A manifest is not an index.
    assert!(matches!(layout.read_image_index(&manifests[0]), Err(Error::MediaType { .. })));

    // Putting a blob twice stores it once and gives the same descriptor.
    let before = tree(&dir).len();
    assert_eq!(layout.put_blob(b"hello").unwrap(), layout.put_blob(b"hello").unwrap());
    let mut w = layout.blob_writer().unwrap();
    w.write_all(b"hello").unwrap();
    assert_eq!(w.commit().unwrap().digest, Digest::of_bytes(b"hello"));
    assert_eq!(tree(&dir).len(), before + 1);

    assert!(matches!(OciLayout::create(&dir), Err(Error::NotEmpty { .. })));
    assert!(matches!(OciLayout::open(tmp.path()), Err(Error::NotALayout { .. })));
    assert!(OciLayout::open(&dir).is_ok());
}

#[test]
fn reads_a_layout_umoci_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("umoci");
    let image = format!("{}:v1", s(&dir));
    let src = tmp.path().join("hello.txt");
    fs::write(&src, "hello\n").unwrap();
    run("umoci", &["init", "--layout", s(&dir)], tmp.path());
    run("umoci", &["new", "--image", &image], tmp.path());
    run("umoci", &["insert", "--rootless", "--image", &image, s(&src), "/etc/hello.txt"], tmp.path());
    run(
        "umoci",
        &["config", "--image", &image, "--config.env", "FOO=bar", "--architecture", "arm64", "--os", "linux"],
        tmp.path(),
    );

    let layout = OciLayout::open(&dir).unwrap();
    let manifest = layout.read_manifest(&layout.resolve("v1").unwrap()).unwrap();
    let config = layout.read_config(&manifest.config).unwrap();
    assert_eq!(config.platform(), Platform::new("linux", "arm64"));
    assert!(config.config.env.contains(&"FOO=bar".to_string()), "{config:?}");
    assert_eq!(config.rootfs.diff_ids.len(), manifest.layers.len());
    for layer in &manifest.layers {
        layout.read_blob(&layer.digest).unwrap();
    }
}
