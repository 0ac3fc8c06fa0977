//! The inputs fingerprint and `Lock::check`: the same inputs anywhere give the same value;
//! any edit to any input changes it, and the check names the input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lockfile::{inputs_fingerprint, read_path_digest, Error, Freshness, Inputs, Lock};
use sha2::{Digest, Sha256};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/marqo-base")
}

/// Copies a directory tree (modes kept by `fs::copy`).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let dest = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

/// A copy of the fixture under a fresh temp dir, at `<tmp>/<sub>`.
fn copy_fixture(sub: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join(sub);
    copy_tree(&fixture_dir(), &dir);
    (tmp, dir.join("marqo-base.toml"))
}

fn stale_reasons(lock: &Lock, manifest: &Path) -> Vec<String> {
    match lock.check(manifest).expect("check") {
        Freshness::Stale { reasons } => reasons,
        Freshness::Fresh => panic!("expected a stale lock"),
    }
}

fn append(path: &Path, text: &str) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes.extend_from_slice(text.as_bytes());
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn names_every_input_relative_to_the_manifest() {
    let inputs = Inputs::read(&fixture_dir().join("marqo-base.toml")).expect("inputs");
    let names: Vec<&str> = inputs.files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "files/nltk_data",
            "files/start-marqo.sh",
            "marqo-base.toml",
            "requirements/base.in",
            "requirements/build-constraints.txt",
            "requirements/constraints.txt",
            "requirements/requirements.in",
        ]
    );
    // For plain files: sha256 of `sha256sum`'s lines, sorted by name.
    let listing: String = inputs
        .files
        .iter()
        .map(|(name, digest)| format!("{}  {name}\n", digest.trim_start_matches("sha256:")))
        .collect();
    assert_eq!(inputs.fingerprint, format!("sha256:{}", hex::encode(Sha256::digest(listing.as_bytes()))));
    let own = std::fs::read(fixture_dir().join("requirements/base.in")).expect("read");
    assert_eq!(inputs.files["requirements/base.in"], format!("sha256:{}", hex::encode(Sha256::digest(&own))));
}

#[test]
fn same_inputs_elsewhere_same_fingerprint() {
    let here = inputs_fingerprint(&fixture_dir().join("marqo-base.toml")).expect("fingerprint");
    let (_a, a) = copy_fixture("one/checkout");
    let (_b, b) = copy_fixture("somewhere/else/entirely");
    assert_eq!(inputs_fingerprint(&a).expect("a"), here);
    assert_eq!(inputs_fingerprint(&b).expect("b"), here);
    // A relative manifest path gives the same value too.
    let dir = a.parent().expect("dir");
    let relative = pathdiff(dir);
    assert_eq!(inputs_fingerprint(&relative.join("marqo-base.toml")).expect("relative"), here);
    // mtimes are not inputs.
    let file = std::fs::File::options().append(true).open(dir.join("requirements/base.in")).expect("open");
    file.set_modified(std::time::SystemTime::UNIX_EPOCH).expect("set mtime");
    assert_eq!(inputs_fingerprint(&a).expect("after touch"), here);
}

/// `dir` as a path relative to the current directory.
fn pathdiff(dir: &Path) -> PathBuf {
    let cwd = std::env::current_dir().expect("cwd");
    let up = cwd.components().count() - 1;
    let mut rel = PathBuf::new();
    for _ in 0..up {
        rel.push("..");
    }
    rel.join(dir.strip_prefix("/").expect("absolute"))
}

#[test]
fn any_edit_makes_the_lock_stale_and_check_names_it() {
    let (_tmp, manifest) = copy_fixture("repo");
    let dir = manifest.parent().expect("dir").to_path_buf();
    let lock_path = dir.join("marqo-base.lock");
    let make_lock = || {
        let lock = Lock::new(Inputs::read(&manifest).expect("inputs"));
        lock.write_atomic(&lock_path).expect("write");
        Lock::read(&lock_path).expect("read")
    };

    let lock = make_lock();
    assert_eq!(lock.check(&manifest).expect("check"), Freshness::Fresh);

    let edits: [(&str, &str); 6] = [
        ("marqo-base.toml", "# a comment is an edit too\n"),
        ("requirements/requirements.in", "pandas==1.5.1\n"),
        ("requirements/base.in", "boto3==1.25.4\n"),
        ("requirements/constraints.txt", "certifi==2023.7.22\n"),
        ("requirements/build-constraints.txt", "wheel<0.40\n"),
        ("files/start-marqo.sh", "echo started\n"),
    ];
    for (name, text) in edits {
        let lock = make_lock();
        append(&dir.join(name), text);
        assert_eq!(stale_reasons(&lock, &manifest), [format!("`{name}` changed")], "editing {name}");
    }

    // A file deep in a `src` directory, and only its mode.
    let lock = make_lock();
    append(&dir.join("files/nltk_data/tokenizers/README"), "more\n");
    assert_eq!(stale_reasons(&lock, &manifest), ["`files/nltk_data` changed"]);
    // Modes are not content: the lock pins bytes (modes come from the manifest or the source).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let lock = make_lock();
        for file in ["files/start-marqo.sh", "files/nltk_data/tokenizers/README"] {
            std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o700)).expect("chmod");
        }
        assert_eq!(lock.check(&manifest).expect("check"), Freshness::Fresh);
    }
    // A directory's digest sees a new (even empty) entry and a renamed one.
    let lock = make_lock();
    std::fs::create_dir(dir.join("files/nltk_data/corpora")).expect("mkdir");
    assert_eq!(stale_reasons(&lock, &manifest), ["`files/nltk_data` changed"]);
    let before = read_path_digest(&dir.join("files/nltk_data")).expect("digest");
    std::fs::rename(dir.join("files/nltk_data/corpora"), dir.join("files/nltk_data/corpus")).expect("mv");
    assert_ne!(read_path_digest(&dir.join("files/nltk_data")).expect("digest"), before);

    // A new include, and one that goes away.
    let lock = make_lock();
    std::fs::write(dir.join("requirements/extra.in"), "nltk==3.9.1\n").expect("write");
    append(&dir.join("requirements/base.in"), "-r extra.in\n");
    assert_eq!(
        stale_reasons(&lock, &manifest),
        ["`requirements/base.in` changed", "`requirements/extra.in` is a new input"]
    );
    let lock = make_lock();
    std::fs::write(dir.join("requirements/base.in"), "requests==2.28.1\n").expect("write");
    assert_eq!(
        stale_reasons(&lock, &manifest),
        ["`requirements/base.in` changed", "`requirements/extra.in` is no longer an input"]
    );
}

#[test]
fn a_hand_edited_fingerprint_is_stale() {
    let manifest = fixture_dir().join("marqo-base.toml");
    let mut lock = Lock::new(Inputs::read(&manifest).expect("inputs"));
    lock.inputs.fingerprint = format!("sha256:{}", "0".repeat(64));
    let reasons = stale_reasons(&lock, &manifest);
    assert_eq!(reasons.len(), 1);
    assert!(reasons[0].contains("was it edited?"), "{reasons:?}");
    assert_eq!(Inputs::from_files(BTreeMap::new()).files.len(), 0);
}

#[test]
fn missing_include_names_the_line() {
    let (_tmp, manifest) = copy_fixture("repo");
    let dir = manifest.parent().expect("dir");
    std::fs::remove_file(dir.join("requirements/base.in")).expect("rm");
    let err = Inputs::read(&manifest).expect_err("missing include");
    assert!(matches!(&err, Error::Include { from, .. } if from == "requirements/requirements.in:2"), "{err}");

    std::fs::remove_file(dir.join("requirements/requirements.in")).expect("rm");
    let err = Inputs::read(&manifest).expect_err("missing requirements");
    assert!(
        matches!(&err, Error::Read { path, .. } if path.ends_with("requirements/requirements.in")),
        "{err}"
    );
}

#[test]
fn ca_certificates_are_inputs_and_a_missing_one_is_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let manifest = tmp.path().join("marqo-base.toml");
    std::fs::write(
        &manifest,
        "[image]\nplatforms = [\"linux/amd64\"]\n[debian]\nsuite = \"bullseye\"\nca_certificates = [\"certs/my-ca.crt\"]\n",
    )
    .expect("write");
    let err = Inputs::read(&manifest).expect_err("no certificate yet");
    assert!(
        err.to_string().contains("ca_certificates") && err.to_string().contains("certs/my-ca.crt"),
        "{err}"
    );
    assert!(err.hint().unwrap_or_default().contains("PEM"), "{err:?}");
    std::fs::create_dir(tmp.path().join("certs")).expect("mkdir");
    std::fs::create_dir(tmp.path().join("certs/my-ca.crt")).expect("mkdir");
    let err = Inputs::read(&manifest).expect_err("a directory");
    assert!(err.to_string().contains("not a regular file"), "{err}");
    std::fs::remove_dir(tmp.path().join("certs/my-ca.crt")).expect("rmdir");
    std::fs::write(tmp.path().join("certs/my-ca.crt"), "one\n").expect("write");
    let before = Inputs::read(&manifest).expect("inputs");
    assert!(before.files.contains_key("certs/my-ca.crt"), "{:?}", before.files);
    std::fs::write(tmp.path().join("certs/my-ca.crt"), "two\n").expect("write");
    let after = Inputs::read(&manifest).expect("inputs");
    match before.compare(&after) {
        Freshness::Stale { reasons } => assert_eq!(reasons, ["`certs/my-ca.crt` changed"]),
        Freshness::Fresh => panic!("a changed certificate must make the lock stale"),
    }
}
