//! Tag arithmetic and the tag list's pagination: `--tag next` is the highest pure-integer
//! tag plus one.

/// The tag `--tag next` gives after `tags`: the highest tag made only of digits, plus one;
/// `1` when there is none. `007` counts as 7; tags too large for a `u64` are ignored.
pub fn next_tag<'a>(tags: impl IntoIterator<Item = &'a str>) -> String {
    let highest = tags
        .into_iter()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|t| t.parse::<u64>().ok())
        .max();
    match highest {
        Some(n) => n.saturating_add(1).to_string(),
        None => "1".to_string(),
    }
}

/// The target of a `Link: <URL>; rel="next"` header (the tag list's next page), if any.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            let Some((key, value)) = p.split_once('=') else { return false };
            key.trim().eq_ignore_ascii_case("rel")
                && value.trim().trim_matches('"').split(' ').any(|r| r == "next")
        });
        is_next.then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_integer() {
        assert_eq!(next_tag([]), "1");
        assert_eq!(next_tag(["latest", "v3"]), "1");
        assert_eq!(next_tag(["1", "7", "latest", "v3"]), "8");
        assert_eq!(next_tag(["009", "10"]), "11");
        assert_eq!(next_tag(["99999999999999999999999", "2"]), "3");
        assert_eq!(next_tag(["-1", "+4", "4.0"]), "1");
    }

    #[test]
    fn link_header() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<http://x/prev>; rel="prev", <http://x/next>; rel=next"#).as_deref(),
            Some("http://x/next")
        );
        assert_eq!(next_link(r#"</a>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
