//! The software bill of materials of one platform's image: every Debian package, Python
//! distribution and `[[file]]` in it, with the digests the lock pinned and the licenses the
//! packages declare ([`license`]), as SPDX 2.3 JSON ([`Sbom::to_spdx`], what apko and ko
//! emit) or CycloneDX 1.5 JSON ([`Sbom::to_cyclonedx`]).
//!
//! The bytes are deterministic: packages sorted, identifiers and the document's namespace
//! and serial number derived from its content, and no time but the one given (the build's
//! `SOURCE_DATE_EPOCH`; SPDX requires a creation time, so without one it is the epoch).

pub mod license;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

pub use license::License;

/// The media type of an SPDX JSON document (as an OCI artifact type and blob type).
pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";
/// The media type of a CycloneDX JSON document.
pub const CYCLONEDX_MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

/// A document format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// SPDX 2.3 JSON.
    Spdx,
    /// CycloneDX 1.5 JSON.
    CycloneDx,
}

impl Format {
    /// The file name extension: `spdx.json` or `cdx.json`.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Spdx => "spdx.json",
            Format::CycloneDx => "cdx.json",
        }
    }

    /// The media type of its documents.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Spdx => SPDX_MEDIA_TYPE,
            Format::CycloneDx => CYCLONEDX_MEDIA_TYPE,
        }
    }

    /// `spdx` or `cyclonedx`.
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "spdx" => Some(Format::Spdx),
            "cyclonedx" => Some(Format::CycloneDx),
            _ => None,
        }
    }
}

/// What building a layer learned of one package that the lock does not record: a Debian
/// package's source package, and the license the package declares. Kept beside the layer in
/// the caches (as [`facts_to_text`] writes them), so a layer taken from a cache describes its
/// packages as one just built does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PackageFacts {
    pub name: String,
    pub version: String,
    /// The source package and its version (Debian).
    pub source: Option<(String, String)>,
    pub license: Option<License>,
}

/// The format of [`facts_to_text`]; a text of another version is not read.
const FACTS_VERSION: u64 = 1;

/// `facts` as JSON (sorted: the same facts give the same bytes).
pub fn facts_to_text(facts: &[PackageFacts]) -> String {
    let mut facts = facts.to_vec();
    facts.sort();
    let packages: Vec<Value> = facts
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "version": f.version,
                "source": f.source.as_ref().map(|(name, version)| json!([name, version])),
                "license": f.license.as_ref().map(|l| json!({"expression": l.expression, "refs": l.refs})),
            })
        })
        .collect();
    json!({"version": FACTS_VERSION, "packages": packages}).to_string()
}

/// Reads what [`facts_to_text`] wrote; an error says what is wrong.
pub fn facts_from_text(text: &str) -> Result<Vec<PackageFacts>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if value["version"].as_u64() != Some(FACTS_VERSION) {
        return Err(format!("not version {FACTS_VERSION} package facts"));
    }
    let packages = value["packages"].as_array().ok_or("no `packages` list")?;
    let string = |v: &Value, what: &str| v.as_str().map(str::to_string).ok_or_else(|| format!("no `{what}`"));
    packages
        .iter()
        .map(|p| {
            let source = match &p["source"] {
                Value::Null => None,
                Value::Array(pair) if pair.len() == 2 => {
                    Some((string(&pair[0], "source")?, string(&pair[1], "source")?))
                }
                _ => return Err("a `source` that is not [name, version]".to_string()),
            };
            let license = match &p["license"] {
                Value::Null => None,
                l => {
                    let refs = l["refs"]
                        .as_object()
                        .ok_or("a license without `refs`")?
                        .iter()
                        .map(|(id, name)| Ok((id.clone(), string(name, "refs")?)))
                        .collect::<Result<BTreeMap<String, String>, String>>()?;
                    Some(License { expression: string(&l["expression"], "expression")?, refs })
                }
            };
            Ok(PackageFacts {
                name: string(&p["name"], "name")?,
                version: string(&p["version"], "version")?,
                source,
                license,
            })
        })
        .collect()
}

/// What an image holds, for one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sbom {
    /// The image's name (`marqo-base`): the manifest's directory or image name.
    pub name: String,
    /// `linux/amd64`.
    pub platform: String,
    /// The tool and its version (`marqo-base-0.1.0`).
    pub tool: String,
    /// Seconds since the epoch (`SOURCE_DATE_EPOCH`), if given.
    pub created: Option<u64>,
    /// What identifies the inputs (the lock's fingerprint): part of the namespace.
    pub fingerprint: String,
    /// The image built on, if any.
    pub base: Option<Base>,
    /// The packages and files, in any order (sorted when written).
    pub components: Vec<Component>,
}

/// The base image, by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    /// The reference as the manifest writes it (`debian:bullseye-slim`).
    pub reference: String,
    /// `sha256:…`.
    pub digest: String,
}

/// One package or file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub kind: Kind,
    /// The package name (normalized for Python), or the file's path in the image.
    pub name: String,
    /// The version (empty for a file).
    pub version: String,
    /// The file it came from (`jq_1.6-2.1_amd64.deb`, a wheel, an sdist), or the file's path.
    pub file_name: String,
    /// Its sha256 (64 hex digits).
    pub sha256: String,
    /// Where it was downloaded from, when known (a `[[file]]` URL); written without the
    /// credentials a URL may carry.
    pub download: Option<String>,
    /// The license it declares.
    pub license: Option<License>,
    /// The names of the components of the same kind it depends on (Debian and Python).
    pub dependencies: Vec<String>,
}

/// What a component is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A Debian package of `arch`, built from `source` (name, version) in the suite
    /// `distro` (`bullseye`).
    Debian { arch: String, source: String, source_version: String, distro: String },
    /// A Python distribution.
    Python,
    /// A manifest `[[file]]`.
    File,
}

impl Component {
    fn sort_key(&self) -> (u8, &str, &str, &str) {
        let rank = match self.kind {
            Kind::Debian { .. } => 0,
            Kind::Python => 1,
            Kind::File => 2,
        };
        (rank, &self.name, &self.version, &self.file_name)
    }

    /// Its package URL (`pkg:deb/debian/jq@1.6-2.1?arch=amd64&distro=bullseye`,
    /// `pkg:pypi/six@1.16.0`); `None` for a file.
    pub fn purl(&self) -> Option<String> {
        match &self.kind {
            Kind::Debian { arch, source, source_version, distro } => {
                let mut purl = format!(
                    "pkg:deb/debian/{}@{}?arch={}&distro={}",
                    purl_escape(&self.name),
                    purl_escape(&self.version),
                    purl_escape(arch),
                    purl_escape(distro)
                );
                if source != &self.name || source_version != &self.version {
                    let upstream = if source_version == &self.version {
                        source.clone()
                    } else {
                        format!("{source}@{source_version}")
                    };
                    purl.push_str("&upstream=");
                    purl.push_str(&purl_escape(&upstream));
                }
                Some(purl)
            }
            Kind::Python => Some(format!(
                "pkg:pypi/{}@{}",
                purl_escape(&self.name.to_ascii_lowercase().replace('_', "-")),
                purl_escape(&self.version)
            )),
            Kind::File => None,
        }
    }

    /// The identifier of this component in the document (unique within it).
    fn id(&self) -> String {
        let (prefix, detail) = match &self.kind {
            Kind::Debian { arch, .. } => ("deb", format!("{}-{}-{arch}", self.name, self.version)),
            Kind::Python => ("pypi", format!("{}-{}", self.name, self.version)),
            Kind::File => ("file", self.name.clone()),
        };
        format!("SPDXRef-{prefix}-{}-{}", spdx_id_part(&detail), &self.sha256[..12.min(self.sha256.len())])
    }
}

impl Sbom {
    fn sorted(&self) -> Vec<&Component> {
        let mut components: Vec<&Component> = self.components.iter().collect();
        components.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        components.dedup_by(|a, b| a.sort_key() == b.sort_key());
        components
    }

    /// Each component's dependencies as identifiers: names resolved among the components
    /// of the same kind (a name the image lacks is left out).
    fn edges<'a>(&self, components: &[&'a Component]) -> Vec<(&'a Component, Vec<String>)> {
        let mut by_name: BTreeMap<(u8, String), String> = BTreeMap::new();
        for c in components {
            let rank = c.sort_key().0;
            by_name.entry((rank, normalize(&c.name))).or_insert_with(|| c.id());
        }
        components
            .iter()
            .map(|c| {
                let rank = c.sort_key().0;
                let ids: BTreeSet<String> = c
                    .dependencies
                    .iter()
                    .filter_map(|d| by_name.get(&(rank, normalize(d))).cloned())
                    .filter(|id| id != &c.id())
                    .collect();
                (*c, ids.into_iter().collect())
            })
            .collect()
    }

    /// A digest of everything the document says, for its namespace and serial number.
    fn content_digest(&self, components: &[&Component]) -> String {
        let mut hasher = Sha256::new();
        hasher.update(format!("{}\n{}\n{}\n{}\n", self.name, self.platform, self.tool, self.fingerprint));
        if let Some(base) = &self.base {
            hasher.update(format!("base {} {}\n", base.reference, base.digest));
        }
        for c in components {
            hasher.update(format!(
                "{:?} {} {} {} {} {:?} {:?} {:?}\n",
                c.kind,
                c.name,
                c.version,
                c.file_name,
                c.sha256,
                c.download.as_deref().map(redact::strip_credentials),
                c.license,
                c.dependencies
            ));
        }
        hex::encode(hasher.finalize())
    }

    fn created_rfc3339(&self) -> String {
        rfc3339(self.created.unwrap_or(0))
    }

    /// The document in SPDX 2.3 JSON (pretty-printed, with a final newline).
    pub fn to_spdx(&self) -> Vec<u8> {
        let components = self.sorted();
        let digest = self.content_digest(&components);
        let image_id = "SPDXRef-Image".to_string();
        let mut image = container_package(&image_id, &self.name, &self.platform);
        image["comment"] = json!(format!(
            "The {} image built by {} from a lock with fingerprint {}",
            self.platform, self.tool, self.fingerprint
        ));
        let mut packages = vec![image];
        let mut relationships = vec![json!({
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": image_id,
        })];
        if let Some(base) = &self.base {
            let hex = base.digest.strip_prefix("sha256:").unwrap_or(&base.digest);
            let mut package = container_package("SPDXRef-Base", &base.reference, &base.digest);
            package["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": hex}]);
            packages.push(package);
            relationships.push(json!({
                "spdxElementId": image_id,
                "relationshipType": "DESCENDANT_OF",
                "relatedSpdxElement": "SPDXRef-Base",
            }));
        }
        let mut refs: BTreeMap<String, String> = BTreeMap::new();
        for (c, deps) in self.edges(&components) {
            let id = c.id();
            let mut package = Map::new();
            package.insert("SPDXID".into(), json!(id));
            package.insert("name".into(), json!(c.name));
            if !c.version.is_empty() {
                package.insert("versionInfo".into(), json!(c.version));
            }
            package.insert("packageFileName".into(), json!(c.file_name));
            package.insert(
                "downloadLocation".into(),
                json!(c.download.as_deref().map_or("NOASSERTION".into(), redact::strip_credentials)),
            );
            package.insert("filesAnalyzed".into(), json!(false));
            package.insert("checksums".into(), json!([{"algorithm": "SHA256", "checksumValue": c.sha256}]));
            package.insert("licenseConcluded".into(), json!("NOASSERTION"));
            let declared = match &c.license {
                Some(l) => {
                    refs.extend(l.refs.clone());
                    l.expression.clone()
                }
                None => "NOASSERTION".into(),
            };
            package.insert("licenseDeclared".into(), json!(declared));
            package.insert("copyrightText".into(), json!("NOASSERTION"));
            match &c.kind {
                Kind::Debian { source, source_version, .. } => {
                    package.insert("supplier".into(), json!("Organization: Debian"));
                    package.insert(
                        "sourceInfo".into(),
                        json!(format!("built from the Debian source package {source} {source_version}")),
                    );
                    package.insert("primaryPackagePurpose".into(), json!("LIBRARY"));
                }
                Kind::Python => {
                    package.insert("primaryPackagePurpose".into(), json!("LIBRARY"));
                }
                Kind::File => {
                    package.insert("primaryPackagePurpose".into(), json!("FILE"));
                }
            }
            if let Some(purl) = c.purl() {
                package.insert(
                    "externalRefs".into(),
                    json!([{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}]),
                );
            }
            packages.push(Value::Object(package));
            relationships.push(json!({
                "spdxElementId": image_id,
                "relationshipType": "CONTAINS",
                "relatedSpdxElement": id,
            }));
            for dep in deps {
                relationships.push(json!({
                    "spdxElementId": id,
                    "relationshipType": "DEPENDS_ON",
                    "relatedSpdxElement": dep,
                }));
            }
        }
        let mut document = Map::new();
        document.insert("spdxVersion".into(), json!("SPDX-2.3"));
        document.insert("dataLicense".into(), json!("CC0-1.0"));
        document.insert("SPDXID".into(), json!("SPDXRef-DOCUMENT"));
        document.insert("name".into(), json!(format!("{} {}", self.name, self.platform)));
        document.insert(
            "documentNamespace".into(),
            json!(format!(
                "https://spdx.org/spdxdocs/marqo-base/{}-{}",
                spdx_id_part(&self.platform),
                digest
            )),
        );
        document.insert(
            "creationInfo".into(),
            json!({"created": self.created_rfc3339(), "creators": [format!("Tool: {}", self.tool)]}),
        );
        document.insert("documentDescribes".into(), json!([image_id]));
        if !refs.is_empty() {
            let infos: Vec<Value> = refs
                .iter()
                .map(|(id, name)| {
                    json!({
                        "licenseId": id,
                        "name": name,
                        "extractedText": format!("The license named \"{name}\" by the packages that declare it"),
                    })
                })
                .collect();
            document.insert("hasExtractedLicensingInfos".into(), json!(infos));
        }
        document.insert("packages".into(), json!(packages));
        document.insert("relationships".into(), json!(relationships));
        to_bytes(&Value::Object(document))
    }

    /// The document in CycloneDX 1.5 JSON (pretty-printed, with a final newline).
    pub fn to_cyclonedx(&self) -> Vec<u8> {
        let components = self.sorted();
        let digest = self.content_digest(&components);
        let mut out = Vec::new();
        let mut dependencies = Vec::new();
        let image_ref = "image".to_string();
        let mut image_deps: Vec<String> = Vec::new();
        for (c, deps) in self.edges(&components) {
            let id = c.id();
            let mut component = Map::new();
            let kind = if c.kind == Kind::File { "file" } else { "library" };
            component.insert("type".into(), json!(kind));
            component.insert("bom-ref".into(), json!(id));
            if let Kind::Debian { .. } = c.kind {
                component.insert("supplier".into(), json!({"name": "Debian"}));
            }
            component.insert("name".into(), json!(c.name));
            if !c.version.is_empty() {
                component.insert("version".into(), json!(c.version));
            }
            component.insert("hashes".into(), json!([{"alg": "SHA-256", "content": c.sha256}]));
            if let Some(l) = &c.license {
                let licenses = if l.is_spdx_only() {
                    json!([{"expression": l.expression}])
                } else {
                    // Names that are not SPDX identifiers are written as named.
                    let mut names: Vec<&String> = l.refs.values().collect();
                    names.sort();
                    names.dedup();
                    Value::Array(names.into_iter().map(|n| json!({"license": {"name": n}})).collect())
                };
                component.insert("licenses".into(), licenses);
            }
            if let Some(purl) = c.purl() {
                component.insert("purl".into(), json!(purl));
            }
            let mut properties = vec![json!({"name": "marqo-base:file", "value": c.file_name})];
            if let Some(url) = &c.download {
                properties
                    .push(json!({"name": "marqo-base:download", "value": redact::strip_credentials(url)}));
            }
            if let Kind::Debian { source, source_version, .. } = &c.kind {
                properties.push(json!({"name": "marqo-base:debian-source", "value": format!("{source} {source_version}")}));
            }
            component.insert("properties".into(), json!(properties));
            out.push(Value::Object(component));
            image_deps.push(id.clone());
            dependencies.push(json!({"ref": id, "dependsOn": deps}));
        }
        let mut image = json!({
            "type": "container",
            "bom-ref": image_ref,
            "name": self.name,
            "version": self.platform,
            "properties": [{"name": "marqo-base:lock-fingerprint", "value": self.fingerprint}],
        });
        if let Some(base) = &self.base {
            out.push(json!({
                "type": "container",
                "bom-ref": "base",
                "name": base.reference,
                "version": base.digest,
            }));
            image_deps.push("base".into());
            dependencies.push(json!({"ref": "base", "dependsOn": []}));
            image["properties"].as_array_mut().expect("an array").push(
                json!({"name": "marqo-base:base", "value": format!("{}@{}", base.reference, base.digest)}),
            );
        }
        dependencies.insert(0, json!({"ref": image_ref, "dependsOn": image_deps}));
        let mut metadata = Map::new();
        if let Some(secs) = self.created {
            metadata.insert("timestamp".into(), json!(rfc3339(secs)));
        }
        let (tool_name, tool_version) = self.tool.rsplit_once('-').unwrap_or((&self.tool, ""));
        metadata.insert(
            "tools".into(),
            json!({"components": [{"type": "application", "name": tool_name, "version": tool_version}]}),
        );
        metadata.insert("component".into(), image);
        let document = json!({
            "bomFormat": "CycloneDX",
            "specVersion": "1.5",
            "serialNumber": format!("urn:uuid:{}", uuid_from(&digest)),
            "version": 1,
            "metadata": metadata,
            "components": out,
            "dependencies": dependencies,
        });
        to_bytes(&document)
    }

    /// The document in `format`.
    pub fn to_format(&self, format: Format) -> Vec<u8> {
        match format {
            Format::Spdx => self.to_spdx(),
            Format::CycloneDx => self.to_cyclonedx(),
        }
    }
}

/// An SPDX package of purpose `CONTAINER` (the image, its base) that asserts nothing else.
fn container_package(id: &str, name: &str, version: &str) -> Value {
    json!({
        "SPDXID": id,
        "name": name,
        "versionInfo": version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
    })
}

fn to_bytes(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("JSON values always serialize");
    bytes.push(b'\n');
    bytes
}

/// A name as pip and Debian compare them (case and `-_.` runs alike).
fn normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// `detail` with what an SPDX identifier cannot hold (anything but letters, digits, `.`
/// and `-`) as `-`.
fn spdx_id_part(detail: &str) -> String {
    detail.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).collect()
}

/// Percent-encoding of a package URL part (RFC 3986 unreserved characters stay).
fn purl_escape(part: &str) -> String {
    let mut out = String::new();
    for b in part.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A version-4-shaped UUID made of the first bytes of a hex digest.
fn uuid_from(hex: &str) -> String {
    let h: Vec<char> = hex.chars().take(32).collect();
    let mut s: String = h.iter().collect();
    // Version 4, variant 10xx: what validators expect of the shape.
    s.replace_range(12..13, "4");
    let variant = u8::from_str_radix(&s[16..17], 16).unwrap_or(0) & 0x3 | 0x8;
    s.replace_range(16..17, &format!("{variant:x}"));
    format!("{}-{}-{}-{}-{}", &s[0..8], &s[8..12], &s[12..16], &s[16..20], &s[20..32])
}

/// `secs` since the epoch as `YYYY-MM-DDThh:mm:ssZ`.
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The proleptic Gregorian date of `days` since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sbom {
        let deb = |name: &str, deps: &[&str]| Component {
            kind: Kind::Debian {
                arch: "amd64".into(),
                source: if name == "libc6" { "glibc".into() } else { name.into() },
                source_version: "2.31-13+deb11u5".into(),
                distro: "bullseye".into(),
            },
            name: name.into(),
            version: "2.31-13+deb11u5".into(),
            file_name: format!("{name}_2.31-13+deb11u5_amd64.deb"),
            sha256: "ab".repeat(32),
            download: None,
            license: License::from_declaration("LGPL-2.1+ or public-domain"),
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
        };
        Sbom {
            name: "quickstart".into(),
            platform: "linux/amd64".into(),
            tool: "marqo-base-0.1.0".into(),
            created: None,
            fingerprint: "f".repeat(16),
            base: None,
            components: vec![
                Component {
                    kind: Kind::Python,
                    name: "six".into(),
                    version: "1.16.0".into(),
                    file_name: "six-1.16.0-py2.py3-none-any.whl".into(),
                    sha256: "cd".repeat(32),
                    download: None,
                    license: License::from_declaration("MIT"),
                    dependencies: vec![],
                },
                deb("bash", &["libc6", "not-here"]),
                deb("libc6", &[]),
            ],
        }
    }

    #[test]
    fn spdx_is_deterministic_and_complete() {
        let sbom = sample();
        let mut shuffled = sbom.clone();
        shuffled.components.reverse();
        assert_eq!(sbom.to_spdx(), shuffled.to_spdx());
        let doc: Value = serde_json::from_slice(&sbom.to_spdx()).unwrap();
        assert_eq!(doc["creationInfo"]["created"], "1970-01-01T00:00:00Z");
        let packages = doc["packages"].as_array().unwrap();
        assert_eq!(packages.len(), 4);
        let bash = packages.iter().find(|p| p["name"] == "bash").unwrap();
        assert_eq!(
            bash["externalRefs"][0]["referenceLocator"],
            "pkg:deb/debian/bash@2.31-13%2Bdeb11u5?arch=amd64&distro=bullseye"
        );
        let libc = packages.iter().find(|p| p["name"] == "libc6").unwrap();
        assert!(libc["externalRefs"][0]["referenceLocator"].as_str().unwrap().ends_with("&upstream=glibc"));
        assert_eq!(bash["licenseDeclared"], "LGPL-2.1-or-later OR LicenseRef-public-domain");
        assert_eq!(doc["hasExtractedLicensingInfos"][0]["licenseId"], "LicenseRef-public-domain");
        let depends: Vec<&Value> = doc["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["relationshipType"] == "DEPENDS_ON")
            .collect();
        assert_eq!(depends.len(), 1, "only the dependency the image has");
        let mut dated = sbom.clone();
        dated.created = Some(1_700_000_000);
        let doc: Value = serde_json::from_slice(&dated.to_spdx()).unwrap();
        assert_eq!(doc["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    }

    #[test]
    fn cyclonedx_has_the_same_components() {
        let doc: Value = serde_json::from_slice(&sample().to_cyclonedx()).unwrap();
        assert_eq!(doc["components"].as_array().unwrap().len(), 3);
        assert!(doc["metadata"].get("timestamp").is_none());
        let serial = doc["serialNumber"].as_str().unwrap();
        assert_eq!(serial.len(), "urn:uuid:".len() + 36);
        assert_eq!(&serial[9 + 14..9 + 15], "4");
        let six = doc["components"].as_array().unwrap().iter().find(|c| c["name"] == "six").unwrap();
        assert_eq!(six["purl"], "pkg:pypi/six@1.16.0");
        assert_eq!(six["licenses"][0]["expression"], "MIT");
    }

    #[test]
    fn facts_round_trip_and_garbage_is_an_error() {
        let facts = vec![
            PackageFacts {
                name: "zlib1g".into(),
                version: "1".into(),
                source: Some(("zlib".into(), "1".into())),
                license: License::from_declaration("Zlib or odd"),
            },
            PackageFacts { name: "six".into(), version: "1.16.0".into(), source: None, license: None },
        ];
        let text = facts_to_text(&facts);
        let mut sorted = facts.clone();
        sorted.sort();
        assert_eq!(facts_from_text(&text).unwrap(), sorted);
        let mut reversed = facts.clone();
        reversed.reverse();
        assert_eq!(facts_to_text(&reversed), text);
        for bad in ["", "[]", "{\"version\": 2}", "{\"version\": 1, \"packages\": [{\"name\": 1}]}"] {
            assert!(facts_from_text(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
