//! Reading `marqo-base.toml`: the fixture, the DESIGN example, and errors that say where and
//! how to fix.

use std::path::{Path, PathBuf};

use lockfile::{Error, FileSource, Manifest, ParseError, TargetPlatform};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/marqo-base/marqo-base.toml")
}

/// Parses `text` and returns its error, which must be a located one.
fn parse_error(text: &str) -> ParseError {
    match Manifest::parse(text, Path::new("marqo-base.toml")) {
        Err(Error::Parse(e)) => *e,
        Err(other) => panic!("expected a parse error, got {other}"),
        Ok(m) => panic!("expected an error, parsed {m:?}"),
    }
}

const IMAGE: &str = "[image]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n";

#[test]
fn fixture_parses_with_paths_resolved() {
    let path = fixture();
    let m = Manifest::read(&path).expect("fixture parses");
    let dir = path.parent().expect("fixture dir");
    assert_eq!(m.image.platforms, [TargetPlatform::AMD64, TargetPlatform::ARM64]);
    assert_eq!(m.image.repository.as_deref(), Some("marqoai/marqo-base"));
    assert_eq!(m.image.env.get("NLTK_DATA").map(String::as_str), Some("/root/nltk_data"));
    assert_eq!(m.image.entrypoint, Some(vec!["/bin/bash".to_string()]));
    let debian = m.debian.as_ref().expect("[debian]");
    assert_eq!(debian.suite, "bullseye");
    assert!(debian.essential && !debian.recommends);
    assert_eq!(debian.packages.len(), 13);
    let python = m.python.as_ref().expect("[python]");
    assert_eq!(python.requirements, [dir.join("requirements/requirements.in")]);
    assert_eq!(m.input_name(&python.build_constraints[0]), "requirements/build-constraints.txt");
    assert_eq!(m.glibc(), Some("2.31"));
    let torch = "torch".parse().expect("name");
    assert!(python.index[0].serves(&torch, TargetPlatform::AMD64));
    assert!(!python.index[0].serves(&torch, TargetPlatform::ARM64));
    assert_eq!(m.files.len(), 3);
    assert!(matches!(&m.files[0].source, FileSource::Url { sha256, .. } if sha256.starts_with("9f86d08")));
    assert!(m.files[0].extract);
    assert_eq!(m.files[1].source, FileSource::Local(dir.join("files/start-marqo.sh")));
    assert_eq!(m.files[1].mode, Some(0o755));
}

#[test]
fn design_example_parses() {
    // DESIGN.md's "Files" sketch, with the URL's sha256 added (hash-pinned downloads).
    let text = r#"
[image]
repository = "marqoai/marqo-base"
platforms = ["linux/amd64", "linux/arm64"]
env = { NLTK_DATA = "/root/nltk_data" }
entrypoint = ["/bin/bash"]
[debian]
suite = "bullseye"
packages = ["python3.9", "ffmpeg", "redis-server", "openjdk-17-jre-headless", "jq", "lsof"]
[python]
version = "3.9"
requirements = ["requirements/requirements.in"]
[[file]]
url = "https://example.invalid/vespa-8.513.17.tar.gz"   # any URL; the lock keeps its sha256
sha256 = "sha256:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
to = "/opt/vespa"
"#;
    let m = Manifest::parse(text, Path::new("/repo/marqo-base.toml")).expect("parses");
    let python = m.python.as_ref().expect("[python]");
    assert_eq!(python.requirements, [PathBuf::from("/repo/requirements/requirements.in")]);
    // sha256 is kept as lowercase hex, with or without a `sha256:` prefix.
    assert!(
        matches!(&m.files[0].source, FileSource::Url { sha256, .. } if sha256 == "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
    );
    assert!(m.debian.as_ref().is_some_and(|d| d.essential));
}

#[test]
fn unknown_key_names_line_key_and_closest_key() {
    let e = parse_error(&format!("{IMAGE}\n[debian]\nsuite = \"bullseye\"\npackges = [\"jq\"]\n"));
    assert_eq!((e.line, e.column), (6, 1));
    assert_eq!(e.key.as_deref(), Some("debian.packges"));
    assert_eq!(e.message, "unknown key `packges`");
    assert_eq!(e.hint.as_deref(), Some("did you mean `packages`?"));
    assert_eq!(
        e.to_string(),
        "marqo-base.toml:6:1: `debian.packges`: unknown key `packges`\n  |\n6 | packges = [\"jq\"]\n  | ^^^^^^^",
        "the hint is not part of the message: the binary prints it last"
    );

    let e = parse_error(&format!("{IMAGE}[pyton]\nversion = \"3.9\"\n"));
    assert_eq!((e.line, e.key.as_deref()), (3, Some("pyton")));
    assert_eq!(e.hint.as_deref(), Some("did you mean `python`?"));

    let e = parse_error(&format!(
        "{IMAGE}[python]\nversion = \"3.9\"\nrequirements = [\"r.in\"]\n\n[[python.index]]\n\
         url = \"http://127.0.0.1:1/simple\"\npackage = [\"torch\"]\n"
    ));
    assert_eq!((e.line, e.key.as_deref()), (9, Some("python.index[0].package")));
    assert_eq!(e.hint.as_deref(), Some("did you mean `packages`?"));

    let e = parse_error(&format!(
        "{IMAGE}[python]\nversion = \"3.9\"\nrequirements = []\nbuild-constraints = []\n"
    ));
    assert_eq!(e.hint.as_deref(), Some("did you mean `build_constraints`?"));

    // No close key: list the allowed ones.
    let e = parse_error(&format!("{IMAGE}[[file]]\nsrc = \"a\"\ndestination = \"/a\"\n"));
    assert_eq!((e.line, e.key.as_deref()), (5, Some("file[0].destination")));
    let hint = e.hint.expect("hint");
    assert!(hint.starts_with("the keys allowed in `file[0]` are: src, url, sha256, to"), "{hint}");

    // In an inline table.
    let e = parse_error("image = { platforms = [\"linux/amd64\"], entrypont = [\"/bin/sh\"] }\n");
    assert_eq!((e.line, e.column, e.key.as_deref()), (1, 40, Some("image.entrypont")));
    assert_eq!(e.hint.as_deref(), Some("did you mean `entrypoint`?"));
}

#[test]
fn bad_platforms_point_at_the_element() {
    let e = parse_error("[image]\nplatforms = [\n  \"linux/amd64\",\n  \"linux/riscv64\",\n]\n");
    assert_eq!((e.line, e.column), (4, 3));
    assert_eq!(e.key.as_deref(), Some("image.platforms[1]"));
    assert_eq!(e.message, "unknown platform `linux/riscv64`");
    assert_eq!(e.hint.as_deref(), Some("valid platforms: linux/amd64, linux/arm64"));

    let e = parse_error("[image]\nplatforms = [\"aarch64\"]\n");
    assert_eq!(e.hint.as_deref(), Some("did you mean `linux/arm64`?"));

    let e = parse_error("[image]\nplatforms = [\"linux/amd64\", \"linux/amd64\"]\n");
    assert_eq!(
        (e.key.as_deref(), e.message.as_str()),
        (Some("image.platforms[1]"), "`linux/amd64` is listed twice")
    );

    let e = parse_error("[image]\nplatforms = []\n");
    assert_eq!(e.message, "no platforms");

    let e = parse_error(&format!(
        "{IMAGE}[python]\nversion = \"3.9\"\nrequirements = [\"r.in\"]\n[[python.index]]\n\
         url = \"http://127.0.0.1:1/simple\"\npackages = [\"torch\"]\nplatforms = [\"linux/arm64\"]\n\
         [[python.index]]\nurl = \"http://127.0.0.1:2/simple\"\npackages = [\"Torch\"]\n"
    ));
    assert_eq!(e.key.as_deref(), Some("python.index[1].packages[0]"));
    assert_eq!(e.message, "`torch` is already pinned to python.index[0] for linux/arm64");
}

#[test]
fn index_strategy_and_exclude_newer_exemption() {
    let text = format!(
        "{IMAGE}[python]\nversion = \"3.9\"\nrequirements = [\"r.in\"]\nindex_strategy = \"unsafe-best-match\"\n\
         [[python.index]]\nurl = \"http://127.0.0.1:1/whl/cu116\"\npackages = [\"torch\"]\nexclude_newer = false\n\
         [[python.index]]\nurl = \"http://127.0.0.1:2/simple\"\npackages = [\"numpy\"]\n"
    );
    let m = Manifest::parse(&text, Path::new("marqo-base.toml")).expect("parses");
    let python = m.python.as_ref().expect("[python]");
    assert_eq!(python.index_strategy.as_deref(), Some("unsafe-best-match"));
    assert!(!python.index[0].exclude_newer, "exempt");
    assert!(python.index[1].exclude_newer, "by default an index is filtered by the cutoff");

    let e = parse_error(&text.replace("unsafe-best-match", "best"));
    assert_eq!((e.line, e.key.as_deref()), (6, Some("python.index_strategy")));
    assert!(e.message.contains("unknown index strategy `best`"), "{}", e.message);
    assert!(e.hint.as_deref().is_some_and(|h| h.contains("unsafe-first-match")), "{:?}", e.hint);
}

/// `[python] compile_bytecode`: on unless set to `false`; not a boolean is an error at its line.
#[test]
fn bytecode_is_compiled_unless_switched_off() {
    let text = format!("{IMAGE}[python]\nversion = \"3.9\"\nrequirements = [\"r.in\"]\n");
    let python = |text: &str| Manifest::parse(text, Path::new("marqo-base.toml")).expect("parses").python;
    assert!(python(&text).expect("[python]").compile_bytecode, "on by default");
    let off = python(&format!("{text}compile_bytecode = false\n")).expect("[python]");
    assert!(!off.compile_bytecode);
    let e = parse_error(&format!("{text}compile_bytecode = \"no\"\n"));
    assert_eq!((e.line, e.key.as_deref()), (6, Some("python.compile_bytecode")), "{}", e.message);
}

#[test]
fn file_entries_are_checked() {
    let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let e = parse_error(&format!(
        "{IMAGE}[[file]]\nsrc = \"a\"\nto = \"/a\"\n[[file]]\nsrc = \"b\"\nurl = \"https://example.invalid/b\"\nto = \"/b\"\n"
    ));
    assert_eq!((e.line, e.key.as_deref()), (8, Some("file[1].url")));
    assert_eq!(e.message, "a [[file]] has both `src` and `url`");

    let e = parse_error(&format!("{IMAGE}[[file]]\nurl = \"https://example.invalid/b\"\nto = \"/b\"\n"));
    assert_eq!(e.message, "a `url` file needs its `sha256`");
    assert_eq!(e.line, 4);

    let e = parse_error(&format!("{IMAGE}[[file]]\nto = \"/b\"\n"));
    assert_eq!((e.line, e.key.as_deref()), (3, Some("file[0]")));

    let e = parse_error(&format!(
        "{IMAGE}[[file]]\nurl = \"https://example.invalid/b\"\nsha256 = \"abc\"\nto = \"/b\"\n"
    ));
    assert_eq!((e.line, e.column, e.message.as_str()), (5, 10, "bad sha256 `abc`"));

    let e = parse_error(&format!(
        "{IMAGE}[[file]]\nurl = \"ftp://example.invalid/b\"\nsha256 = \"{sha}\"\nto = \"/b\"\n"
    ));
    assert_eq!(e.message, "unsupported URL scheme `ftp` in `ftp://example.invalid/b`");

    let e = parse_error(&format!("{IMAGE}[[file]]\nsrc = \"start.sh\"\nto = \"usr/bin/start\"\n"));
    assert_eq!(e.message, "`usr/bin/start` is not an absolute path");
    assert_eq!(e.hint.as_deref(), Some("paths in the image start with `/`: \"/usr/bin/start\""));

    let e = parse_error(&format!("{IMAGE}[[file]]\nsrc = \"start.sh\"\nto = \"/start\"\nmode = 755\n"));
    assert_eq!((e.line, e.key.as_deref()), (6, Some("file[0].mode")));
    assert_eq!(e.hint.as_deref(), Some("write `mode = 0o755` or `mode = \"755\"`"));

    let m = Manifest::parse(
        &format!("{IMAGE}[[file]]\nsrc = \"start.sh\"\nto = \"/start\"\nmode = \"0750\"\n"),
        Path::new("m.toml"),
    )
    .expect("string mode");
    assert_eq!(m.files[0].mode, Some(0o750));

    let e = parse_error(&format!("{IMAGE}[[file]]\nsrc = \"start.sh\"\nto = \"/start\"\nextract = true\n"));
    assert_eq!(e.message, "cannot extract `start.sh`: not a known archive");

    let e = parse_error(&format!(
        "{IMAGE}[[file]]\nsrc = \"a\"\nto = \"/a/\"\n[[file]]\nsrc = \"b\"\nto = \"/a\"\n"
    ));
    assert_eq!((e.line, e.message.as_str()), (8, "`/a` is already the destination of file[0]"));
}

#[test]
fn bad_values_are_explained() {
    let e = parse_error(&format!("{IMAGE}[debian]\nsuite = 11\n"));
    assert_eq!((e.line, e.column, e.key.as_deref()), (4, 9, Some("debian.suite")));
    assert_eq!(e.message, "invalid type: integer `11`, expected a string");

    let e = parse_error(&format!("{IMAGE}[debian]\npackages = [\"jq\"]\n"));
    assert_eq!((e.line, e.key.as_deref(), e.message.as_str()), (3, Some("debian"), "missing key `suite`"));

    let e = parse_error(&format!("{IMAGE}[debian]\nsuite = \"bullseye\"\npackages = \"jq\"\n"));
    assert_eq!(e.key.as_deref(), Some("debian.packages"));
    assert_eq!(e.hint.as_deref(), Some("write a list: `[\"...\"]`"));

    let e = parse_error(&format!(
        "{IMAGE}[debian]\nsuite = \"bullseye\"\npackages = [\"jq\", \"Redis-Server\"]\n"
    ));
    assert_eq!((e.line, e.column, e.key.as_deref()), (5, 19, Some("debian.packages[1]")));

    let e = parse_error(&format!("{IMAGE}[debian]\nsuite = \"bullseye\"\npackages = [\"jq=\"]\n"));
    assert!(e.hint.as_deref().is_some_and(|h| h.contains("name=VERSION")), "{e:?}");
    let e = parse_error(&format!("{IMAGE}[debian]\nsuite = \"bullseye\"\npackages = [\"jq/\"]\n"));
    assert!(e.hint.as_deref().is_some_and(|h| h.contains("name/SUITE")), "{e:?}");
    let e = parse_error(&format!("{IMAGE}[debian]\nsuite = \"bullseye\"\npackages = [\"jq = 1\"]\n"));
    assert!(e.hint.as_deref().is_some_and(|h| h.contains("`name=VERSION` or `name/SUITE`")), "{e:?}");
    let e = parse_error(&format!(
        "{IMAGE}[debian]\nsuite = \"bullseye\"\npackages = [\"jq=1.6-2.1\", \"jq/bullseye-backports\"]\n"
    ));
    assert_eq!(
        (e.key.as_deref(), e.message.as_str()),
        (Some("debian.packages[1]"), "`jq/bullseye-backports` is listed twice")
    );
    let e = parse_error(&format!(
        "{IMAGE}[debian]\nsuite = \"bullseye\"\n\n[[debian.source]]\nurl = \"http://127.0.0.1:9/\"\nsuites = []\n"
    ));
    assert_eq!((e.key.as_deref(), e.message.as_str()), (Some("debian.source[0].suites"), "no suite"));

    let e = parse_error(&format!("{IMAGE}[python]\nversion = \"3\"\nrequirements = [\"r.in\"]\n"));
    assert_eq!((e.line, e.key.as_deref()), (4, Some("python.version")));
    assert!(e.message.starts_with("bad Python version `3`"), "{}", e.message);

    let e = parse_error(&format!(
        "{IMAGE}[python]\nversion = \"3.9\"\nrequirements = [\"r.in\"]\nglibc = \"231\"\n"
    ));
    assert_eq!(e.key.as_deref(), Some("python.glibc"));

    let e = parse_error(&format!("{IMAGE}[python]\nversion = \"3.9\"\nrequirements = []\n"));
    assert_eq!(e.message, "no requirement files");

    let e = parse_error(&format!("{IMAGE}workdir = \"app\"\n"));
    assert_eq!(e.key.as_deref(), Some("image.workdir"));

    let e =
        parse_error("[image]\nrepository = \"marqoai/marqo-base:latest\"\nplatforms = [\"linux/amd64\"]\n");
    assert_eq!(e.message, "`marqoai/marqo-base:latest` has a tag or digest");

    let e = parse_error("[image]\nplatforms = [\"linux/amd64\"\n");
    assert_eq!(e.line, 3, "{e}");
    assert_eq!(e.key, None);

    let e = parse_error("[image]\nplatforms = [\"linux/amd64\"]\nplatforms = [\"linux/arm64\"]\n");
    assert_eq!(e.line, 3, "{e}");

    let e = parse_error("");
    assert_eq!(e.message, "missing key `image`");
}

#[test]
fn missing_file_is_a_read_error() {
    let err = Manifest::read(Path::new("/nonexistent/marqo-base.toml")).expect_err("no such file");
    assert!(matches!(err, Error::Read { .. }));
    assert!(err.to_string().starts_with("cannot read `/nonexistent/marqo-base.toml`"));
}

#[test]
fn ca_certificates_resolve_and_name_their_file() {
    let text = format!(
        "{IMAGE}[debian]\nsuite = \"bullseye\"\nca_certificates = [\"certs/my-ca.pem\", \"other.crt\", \"ca\"]\n"
    );
    let m = Manifest::parse(&text, Path::new("/project/marqo-base.toml")).expect("parses");
    let certs = &m.debian.as_ref().expect("[debian]").ca_certificates;
    assert_eq!(certs[0], Path::new("/project/certs/my-ca.pem"));
    assert_eq!(m.input_name(&certs[0]), "certs/my-ca.pem");
    let names: Vec<String> = certs.iter().map(|c| lockfile::Debian::ca_certificate_name(c)).collect();
    assert_eq!(names, ["my-ca.crt", "other.crt", "ca.crt"]);

    let e = parse_error(&format!(
        "{IMAGE}[debian]\nsuite = \"bullseye\"\nca_certificates = [\"a/x.crt\", \"b/x.pem\"]\n"
    ));
    assert_eq!(e.key.as_deref(), Some("debian.ca_certificates[1]"));
    assert!(e.message.contains("/usr/local/share/ca-certificates/x.crt"), "{}", e.message);
    assert!(e.hint.as_deref().unwrap_or_default().contains("rename"), "{e:?}");
    let e = parse_error(&format!("{IMAGE}[debian]\nsuite = \"bullseye\"\nca_certificates = [\"certs/\"]\n"));
    assert!(e.message.contains("does not name a certificate file"), "{}", e.message);
    assert_eq!(e.key.as_deref(), Some("debian.ca_certificates[0]"));
}

#[test]
fn debian_sources_holds_and_suites() {
    let text = format!(
        "{IMAGE}[debian]\nsuite = \"bookworm\"\nsecurity_mirror = \"http://127.0.0.1:9/security\"\nupdates = false\n\
         packages = [\"libc6=2.36-9+deb12u9\", \"redis-server/bookworm-backports\", \"jq\"]\n\n\
         [[debian.source]]\nurl = \"http://127.0.0.1:9/backports\"\nsuites = [\"bookworm-backports\"]\nkeyring = \"keys/b.gpg\"\n"
    );
    let m = Manifest::parse(&text, Path::new("/p/marqo-base.toml")).unwrap();
    let d = m.debian.unwrap();
    assert_eq!((d.updates, d.security), (false, true));
    assert_eq!(d.security_mirror.as_deref(), Some("http://127.0.0.1:9/security"));
    let names: Vec<&str> = d.packages.iter().map(|p| lockfile::Debian::package_name(p)).collect();
    assert_eq!(names, ["libc6", "redis-server", "jq"]);
    assert_eq!(d.source.len(), 1);
    assert_eq!(d.source[0].components, ["main"]);
    assert_eq!(d.source[0].keyring.as_deref(), Some(Path::new("/p/keys/b.gpg")));
}
