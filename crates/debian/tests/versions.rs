//! dpkg version ordering checked against `dpkg --compare-versions` itself.

use std::cmp::Ordering;
use std::process::Command;

use debian::{compare_versions, Version};

/// Versions chosen to hit every rule: epochs, `~` before the end, letters before other
/// characters, leading zeros, revisions with `-` in the upstream part, `+b` binNMUs.
const VERSIONS: &[&str] = &[
    "0",
    "1",
    "1.0",
    "1.00",
    "1.0-0",
    "1.0-1",
    "1.0-1~bpo10+1",
    "1.0-1+b1",
    "1.0-1.1",
    "1.0-10",
    "1.0-9",
    "1.0~rc1",
    "1.0~rc1~1",
    "1.0~~",
    "1.0~",
    "1.0+",
    "1.0a",
    "1.0A",
    "1.0.1",
    "1.01",
    "1:0.9",
    "2:0",
    "1:1.0-1",
    "10.2.1-6",
    "10.2.1-6+deb11u1",
    "3.9.2-3",
    "3.9.2-3~",
    "2.31-13+deb11u5",
    "2.31-13+deb11u10",
    "5:6.0.16-1+deb11u2",
    "7:4.3.6-0+deb11u1",
    "17.0.11+9-1~deb11u1",
    "1.2-3-4",
    "1.2-3-10",
    "a",
    "a1",
    "1a",
    "1.a",
    "1..0",
    "9",
    "009",
    "1.0-a",
    "1.0-A",
    "1.0-.",
];

fn dpkg(a: &str, op: &str, b: &str) -> bool {
    let status = Command::new("dpkg")
        .args(["--compare-versions", a, op, b])
        .status()
        .expect("dpkg runs (install the dpkg package)");
    status.success()
}

#[test]
fn ordering_matches_dpkg() {
    assert!(
        Command::new("dpkg").arg("--version").output().is_ok(),
        "this test compares with dpkg: install the Debian package dpkg"
    );
    let mut checked = 0;
    for (i, a) in VERSIONS.iter().enumerate() {
        for b in &VERSIONS[i..] {
            let want = if dpkg(a, "lt", b) {
                Ordering::Less
            } else if dpkg(a, "eq", b) {
                Ordering::Equal
            } else {
                Ordering::Greater
            };
            assert_eq!(compare_versions(a, b), want, "compare_versions({a:?}, {b:?})");
            assert_eq!(compare_versions(b, a), want.reverse(), "compare_versions({b:?}, {a:?})");
            if let (Ok(va), Ok(vb)) = (Version::parse(a), Version::parse(b)) {
                assert_eq!(va.cmp(&vb), want, "Version {a:?} vs {b:?}");
            }
            checked += 1;
        }
    }
    assert!(checked > 900);
}
