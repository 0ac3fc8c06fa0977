//! User files are edited, not replaced (issue 30): `login` and `logout` write Docker's
//! `config.json` through a symbolic link (a dotfiles checkout links it), keep its mode and
//! the keys they do not know, as Docker's CLI does. A real `docker-registry` on 127.0.0.1.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;
use test_support::DockerRegistry;

use crate::common::{Run, TestContext};

fn mb(ctx: &TestContext, args: &[&str], stdin: &str) -> Run {
    let run = TestContext::run_with_stdin(ctx.registry_command(args), stdin);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

#[test]
fn login_and_logout_edit_a_linked_config_json_in_place() {
    let ctx = TestContext::new();
    let registry = DockerRegistry::with_htpasswd("testuser", "testpass");
    let host = registry.host();
    let home = ctx.dir.path().join("home");
    let target = home.join("dotfiles/docker/config.json");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::create_dir_all(home.join(".docker")).unwrap();
    let original = r#"{"psFormat": "table {{.ID}}", "proxies": {"default": {"noProxy": "127.0.0.1"}}, "auths": {"other.example:5000": {"auth": "b3RoZXI6c2VjcmV0"}}, "experimental": "enabled"}"#;
    std::fs::write(&target, original).unwrap();
    // Group-readable, not the 0600 a new file gets: the mode is the user's choice to keep.
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = home.join(".docker/config.json");
    std::os::unix::fs::symlink("../dotfiles/docker/config.json", &link).unwrap();

    let check = |stage: &str| -> Value {
        let meta = std::fs::symlink_metadata(&link).unwrap();
        assert!(meta.file_type().is_symlink(), "after {stage}, config.json is no longer a link");
        assert_eq!(std::fs::read_link(&link).unwrap().to_str(), Some("../dotfiles/docker/config.json"));
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640, "after {stage}, the mode is {mode:o}");
        let stored: Value = serde_json::from_slice(&std::fs::read(&target).unwrap()).unwrap();
        assert_eq!(stored["psFormat"], "table {{.ID}}", "after {stage}: {stored}");
        assert_eq!(stored["proxies"]["default"]["noProxy"], "127.0.0.1", "after {stage}: {stored}");
        assert_eq!(stored["experimental"], "enabled", "after {stage}: {stored}");
        assert_eq!(
            stored["auths"]["other.example:5000"]["auth"], "b3RoZXI6c2VjcmV0",
            "after {stage}: {stored}"
        );
        // Nothing left behind beside the link or the file.
        for dir in [home.join(".docker"), home.join("dotfiles/docker")] {
            let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(
                names,
                vec![std::ffi::OsString::from("config.json")],
                "after {stage} in {}",
                dir.display()
            );
        }
        stored
    };

    mb(&ctx, &["login", &host, "--username", "testuser", "--password-stdin"], "testpass\n").success();
    let stored = check("login");
    assert_eq!(stored["auths"][&host]["auth"], "dGVzdHVzZXI6dGVzdHBhc3M=");

    mb(&ctx, &["logout", &host], "").success();
    let stored = check("logout");
    assert!(stored["auths"].get(&host).is_none(), "{stored}");
}
