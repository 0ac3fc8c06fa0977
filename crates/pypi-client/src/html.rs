//! Just enough HTML for PEP 503 pages: `<a>` and `<base>` tags with their attributes.
//!
//! Index pages are machine-written lists of anchors, so a tolerant scanner is enough and
//! spares a full HTML parser (and its compile time). Attribute values are entity-decoded
//! (`data-requires-python="&gt;=3.7"`).

/// One tag of interest: its lower-cased name and attributes (names lower-cased, values
/// decoded; `None` for an attribute without a value, such as a bare `data-yanked`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tag {
    pub name: String,
    pub attrs: Vec<(String, Option<String>)>,
}

impl Tag {
    /// The attribute's value; `Some(None)` when present without a value.
    pub fn attr(&self, name: &str) -> Option<Option<&str>> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_deref())
    }
}

/// The `<a>` and `<base>` tags of a page, in order.
pub(crate) fn tags(html: &str) -> Vec<Tag> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        if let Some(after) = rest.strip_prefix("!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let name_len = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
        let name = rest[..name_len].to_ascii_lowercase();
        rest = &rest[name_len..];
        if name != "a" && name != "base" {
            continue;
        }
        let (attrs, after) = attributes(rest);
        rest = after;
        out.push(Tag { name, attrs });
    }
    out
}

/// Parses attributes up to the closing `>`; returns them and the text after the tag.
fn attributes(mut s: &str) -> (Vec<(String, Option<String>)>, &str) {
    let mut attrs = Vec::new();
    loop {
        s = s.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
        if s.is_empty() {
            return (attrs, s);
        }
        if let Some(after) = s.strip_prefix('>') {
            return (attrs, after);
        }
        let end = s.find(|c: char| c.is_whitespace() || "=>/".contains(c)).unwrap_or(s.len());
        let name = s[..end].to_ascii_lowercase();
        s = s[end..].trim_start();
        let value = if let Some(after_eq) = s.strip_prefix('=') {
            let v = after_eq.trim_start();
            let (raw, after) = match v.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let body = &v[1..];
                    match body.find(q) {
                        Some(close) => (&body[..close], &body[close + 1..]),
                        None => (body, ""),
                    }
                }
                _ => {
                    let end = v.find(|c: char| c.is_whitespace() || c == '>').unwrap_or(v.len());
                    (&v[..end], &v[end..])
                }
            };
            s = after;
            Some(decode_entities(raw))
        } else {
            None
        };
        if !name.is_empty() {
            attrs.push((name, value));
        } else if value.is_none() {
            // A stray character we cannot read as an attribute: skip it.
            let mut chars = s.chars();
            chars.next();
            s = chars.as_str();
        }
    }
}

/// Decodes the character references that appear in index pages: the XML five and numeric.
pub(crate) fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').filter(|&semi| semi <= 10).and_then(|semi| {
            let entity = &rest[1..semi];
            let ch = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity.strip_prefix('#').and_then(|num| {
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => num.parse().ok(),
                    };
                    code.and_then(char::from_u32)
                }),
            };
            ch.map(|c| (c, semi))
        });
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_and_attributes() {
        let html = r#"<!DOCTYPE html><html><head><base href="/files/"><!-- <a href="hidden"> --></head>
<body><A HREF="a-1.0.tar.gz#sha256=ab" data-requires-python="&gt;=3.7,&lt;4" data-yanked>a-1.0</A><br/>
<a href='b.whl' data-yanked="bad &amp; broken" data-dist-info-metadata=true>b</a>
<a href=c.whl>c</a></body></html>"#;
        let tags = tags(html);
        assert_eq!(tags.len(), 4);
        assert_eq!(tags[0].name, "base");
        assert_eq!(tags[1].attr("href"), Some(Some("a-1.0.tar.gz#sha256=ab")));
        assert_eq!(tags[1].attr("data-requires-python"), Some(Some(">=3.7,<4")));
        assert_eq!(tags[1].attr("data-yanked"), Some(None));
        assert_eq!(tags[2].attr("data-yanked"), Some(Some("bad & broken")));
        assert_eq!(tags[2].attr("data-dist-info-metadata"), Some(Some("true")));
        assert_eq!(tags[3].attr("href"), Some(Some("c.whl")));
        assert_eq!(tags[3].attr("data-yanked"), None);
    }

    #[test]
    fn entities() {
        assert_eq!(decode_entities("&gt;=3.6, !=3.0.*&#44;&#x3C;4 & more"), ">=3.6, !=3.0.*,<4 & more");
        assert_eq!(decode_entities("&unknown; &"), "&unknown; &");
    }
}
