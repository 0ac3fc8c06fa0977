//! Index configuration precedence, with an explicit environment: the host's pip config and
//! this process's variables are never read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pypi_client::{ConfigError, IndexArgs, IndexConfig, PipEnvironment};

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Global, user and site files inside the sandbox, and the given variables only.
    fn env(&self, vars: &[(&str, &str)]) -> PipEnvironment {
        PipEnvironment {
            vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
            global_files: vec![self.path("etc/pip.conf")],
            user_files: vec![self.path("home/.pip/pip.conf"), self.path("home/.config/pip/pip.conf")],
            site_files: vec![self.path("venv/pip.conf")],
            python: None,
            default_index_memo: None,
        }
    }
}

fn load(args: &IndexArgs, env: &PipEnvironment) -> IndexConfig {
    IndexConfig::from_pip_with(args, env).unwrap()
}

fn index(config: &IndexConfig) -> &str {
    config.index_url.as_str()
}

#[test]
fn files_in_pip_order_then_environment_then_command_line() {
    let sb = Sandbox::new();
    sb.write("etc/pip.conf", "[global]\nindex-url = https://global.invalid/simple/\ntimeout = 5\n");
    let mut env = sb.env(&[]);
    assert_eq!(index(&load(&IndexArgs::default(), &env)), "https://global.invalid/simple/");

    sb.write("home/.pip/pip.conf", "[global]\nindex-url = https://legacy-user.invalid/simple/\n");
    assert_eq!(index(&load(&IndexArgs::default(), &env)), "https://legacy-user.invalid/simple/");
    sb.write("home/.config/pip/pip.conf", "[global]\nindex_url = https://user.invalid/simple/\n");
    assert_eq!(index(&load(&IndexArgs::default(), &env)), "https://user.invalid/simple/");
    sb.write("venv/pip.conf", "[global]\nindex-url = https://venv.invalid/simple/\n");
    assert_eq!(index(&load(&IndexArgs::default(), &env)), "https://venv.invalid/simple/");

    let named = sb.write("named.conf", "[global]\nindex-url = https://named.invalid/simple/\n");
    env.vars.insert("PIP_CONFIG_FILE".into(), named.to_string_lossy().into_owned());
    let config = load(&IndexArgs::default(), &env);
    assert_eq!(index(&config), "https://named.invalid/simple/");
    assert_eq!(config.timeout, Some(5.0), "global files are still read");

    env.vars.insert("PIP_INDEX_URL".into(), "https://env.invalid/simple/".into());
    assert_eq!(index(&load(&IndexArgs::default(), &env)), "https://env.invalid/simple/");

    let args = IndexArgs { index_url: Some("https://cli.invalid/simple/".into()), ..Default::default() };
    assert_eq!(index(&load(&args, &env)), "https://cli.invalid/simple/");
}

#[test]
fn pip_config_file_skips_user_files_when_it_exists() {
    let sb = Sandbox::new();
    sb.write(
        "home/.config/pip/pip.conf",
        "[global]\nindex-url = https://user.invalid/simple/\nno-index = yes\n",
    );
    let named = sb.write("named.conf", "[global]\ntimeout = 7\n");
    let env =
        sb.env(&[("PIP_CONFIG_FILE", named.to_str().unwrap()), ("PIP_INDEX_URL", "https://env.invalid/")]);
    let config = load(&IndexArgs::default(), &env);
    assert!(!config.no_index, "the user file was not read");
    assert_eq!(config.timeout, Some(7.0));
}

#[test]
fn install_section_beats_global_section() {
    let sb = Sandbox::new();
    sb.write("etc/pip.conf", "[install]\nindex-url = https://install.invalid/simple/\n");
    sb.write(
        "venv/pip.conf",
        "[global]\nindex-url = https://global.invalid/simple/\n[freeze]\ntimeout = 1\n",
    );
    let config = load(&IndexArgs::default(), &sb.env(&[]));
    assert_eq!(index(&config), "https://install.invalid/simple/", "as in pip, [install] of any file wins");
    assert_eq!(config.timeout, None, "other commands' sections are ignored");
}

#[test]
fn dev_null_disables_every_file() {
    let sb = Sandbox::new();
    sb.write("etc/pip.conf", "[global]\nindex-url = https://global.invalid/simple/\n");
    sb.write("venv/pip.conf", "[global]\nno-index = true\n");
    let env = sb.env(&[("PIP_CONFIG_FILE", "/dev/null"), ("PIP_INDEX_URL", "https://env.invalid/simple/")]);
    let config = load(&IndexArgs::default(), &env);
    assert_eq!(index(&config), "https://env.invalid/simple/");
    assert!(!config.no_index);
}

#[test]
fn lists_split_on_whitespace_and_command_line_appends() {
    let sb = Sandbox::new();
    sb.write(
        "etc/pip.conf",
        "[global]\nindex-url = https://main.invalid/simple/\nextra-index-url =\n    https://a.invalid/simple/\n    https://b.invalid/simple/\n",
    );
    let env = sb.env(&[]);
    let args =
        IndexArgs { extra_index_urls: vec!["https://cli.invalid/simple/".into()], ..Default::default() };
    let extras: Vec<String> = load(&args, &env).extra_index_urls.iter().map(|u| u.to_string()).collect();
    assert_eq!(
        extras,
        ["https://a.invalid/simple/", "https://b.invalid/simple/", "https://cli.invalid/simple/"]
    );

    let env = sb.env(&[("PIP_EXTRA_INDEX_URL", "https://e1.invalid/ https://e2.invalid/")]);
    let extras: Vec<String> =
        load(&IndexArgs::default(), &env).extra_index_urls.iter().map(|u| u.to_string()).collect();
    assert_eq!(
        extras,
        ["https://e1.invalid/", "https://e2.invalid/"],
        "the variable replaces the file's list"
    );
}

#[test]
fn missing_find_links_directories_are_ignored() {
    let sb = Sandbox::new();
    let wheels = sb.path("wheels");
    std::fs::create_dir(&wheels).unwrap();
    let links = format!("/nonexistent/opt/wheels {} https://links.invalid/wheels.html", wheels.display());
    let env = sb.env(&[("PIP_FIND_LINKS", &links), ("PIP_INDEX_URL", "https://env.invalid/simple/")]);
    let args = IndexArgs {
        find_links: vec![sb.path("also-missing").to_string_lossy().into_owned()],
        ..Default::default()
    };
    let config = load(&args, &env);
    assert_eq!(
        config.find_links,
        [wheels.to_string_lossy().into_owned(), "https://links.invalid/wheels.html".into()]
    );
}

#[test]
fn cert_timeout_and_no_index() {
    let sb = Sandbox::new();
    sb.write("etc/pip.conf", "[global]\nindex-url = https://main.invalid/\ncert = ~/ca.pem\n");
    let env = sb.env(&[("HOME", "/home/u"), ("PIP_DEFAULT_TIMEOUT", "180"), ("PIP_NO_INDEX", "off")]);
    let config = load(&IndexArgs::default(), &env);
    assert_eq!(config.cert.as_deref(), Some(Path::new("/home/u/ca.pem")));
    assert_eq!(config.timeout, Some(180.0));
    assert!(!config.no_index);
    let env = sb.env(&[("PIP_CERT", "/etc/ssl/env.pem"), ("PIP_NO_INDEX", "1")]);
    let args = IndexArgs { cert: Some("/cli.pem".into()), ..Default::default() };
    let config = load(&args, &env);
    assert_eq!(config.cert.as_deref(), Some(Path::new("/cli.pem")));
    assert!(config.no_index);
    assert!(config.index_urls().is_empty());
    let pip = config.pip_args();
    assert!(pip.windows(2).any(|w| w == ["--cert", "/cli.pem"]), "{pip:?}");
    assert!(pip.contains(&"--no-index".to_string()), "{pip:?}");
    assert_eq!(load(&IndexArgs::default(), &env).cert.as_deref(), Some(Path::new("/etc/ssl/env.pem")));
}

#[test]
fn bad_values_name_their_origin() {
    let sb = Sandbox::new();
    let file = sb.write("etc/pip.conf", "[global]\nindex-url = https://main.invalid/\ntimeout = soon\n");
    let err = IndexConfig::from_pip_with(&IndexArgs::default(), &sb.env(&[])).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&file.display().to_string()) && text.contains("[global]"), "{text}");
    assert!(text.contains("`timeout`") && text.contains("`soon`"), "{text}");
    sb.write("etc/pip.conf", "[global]\nindex-url = https://main.invalid/\n");

    let err =
        IndexConfig::from_pip_with(&IndexArgs::default(), &sb.env(&[("PIP_NO_INDEX", "maybe")])).unwrap_err();
    assert!(err.to_string().contains("PIP_NO_INDEX"), "{err}");

    let args = IndexArgs { index_url: Some("not a url".into()), ..Default::default() };
    let err = IndexConfig::from_pip_with(&args, &sb.env(&[])).unwrap_err();
    assert!(err.to_string().contains("--index-url"), "{err}");

    sb.write("venv/pip.conf", "index-url = x\n");
    let err = IndexConfig::from_pip_with(&IndexArgs::default(), &sb.env(&[])).unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { line: 1, .. }), "{err}");
}

#[test]
fn default_index_comes_from_the_hosts_pip() {
    let sb = Sandbox::new();
    let mut env = sb.env(&[]);
    let err = IndexConfig::from_pip_with(&IndexArgs::default(), &env).unwrap_err();
    assert!(matches!(err, ConfigError::NoDefaultIndex { .. }), "{err}");
    assert!(err.hint().is_some_and(|h| h.starts_with("pass --index-url")), "{err}");

    // A stand-in interpreter that answers like pip would.
    let fake = sb.write("bin/python3", "#!/bin/sh\necho 'http://127.0.0.1:1/simple'\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.python = Some(fake.into_os_string());
    assert_eq!(index(&load(&IndexArgs::default(), &env)), "http://127.0.0.1:1/simple");

    let failing = sb.write("bin/broken", "#!/bin/sh\necho 'ModuleNotFoundError: pip' >&2\nexit 1\n");
    std::fs::set_permissions(&failing, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.python = Some(failing.into_os_string());
    let err = IndexConfig::from_pip_with(&IndexArgs::default(), &env).unwrap_err();
    assert!(err.to_string().contains("ModuleNotFoundError"), "{err}");
}
