//! Tag arithmetic and the tag list's pagination: `--tag next` is the highest pure-integer
//! tag plus one.

/// The longest tag the distribution spec allows (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`).
const MAX_TAG_LEN: usize = 128;

/// The tag `--tag next` gives after `tags`: the highest tag made only of digits, plus one;
/// `1` when there is none. `007` counts as 7. Numbers of any length count (the arithmetic is
/// on the decimal digits, so `18446744073709551615` is followed by `18446744073709551616`,
/// never by a wrapped or repeated number); an error when the next number would be longer
/// than a tag may be.
pub fn next_tag<'a>(tags: impl IntoIterator<Item = &'a str>) -> Result<String, String> {
    let highest = tags
        .into_iter()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .map(|t| match t.trim_start_matches('0') {
            "" => "0",
            digits => digits,
        })
        // Without leading zeros, a longer number is a larger one.
        .max_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    let Some(highest) = highest else { return Ok("1".to_string()) };
    let next = increment(highest);
    if next.len() > MAX_TAG_LEN {
        return Err(format!(
            "the highest integer tag is {}… ({} digits); the next number would be longer than the {MAX_TAG_LEN} \
             characters a tag may have",
            &highest[..12],
            highest.len()
        ));
    }
    Ok(next)
}

/// `digits` (ASCII digits, no leading zeros) plus one.
fn increment(digits: &str) -> String {
    let mut out: Vec<u8> = digits.bytes().collect();
    for b in out.iter_mut().rev() {
        if *b == b'9' {
            *b = b'0';
        } else {
            *b += 1;
            return String::from_utf8(out).unwrap_or_default();
        }
    }
    out.insert(0, b'1');
    String::from_utf8(out).unwrap_or_default()
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
        let next = |tags: &[&str]| next_tag(tags.iter().copied()).unwrap();
        assert_eq!(next(&[]), "1");
        assert_eq!(next(&["latest", "v3"]), "1");
        assert_eq!(next(&["1", "7", "latest", "v3"]), "8");
        assert_eq!(next(&["009", "10"]), "11");
        assert_eq!(next(&["0", "000"]), "1");
        assert_eq!(next(&["99999999999999999999999", "2"]), "100000000000000000000000");
        assert_eq!(next(&["18446744073709551615", "9"]), "18446744073709551616");
        assert_eq!(next(&["-1", "+4", "4.0"]), "1");
        assert_eq!(next(&[&"9".repeat(127)]), format!("1{}", "0".repeat(127)));
        let err = next_tag([&*"9".repeat(128)]).unwrap_err();
        assert!(err.contains("128 digits") && err.contains("longer than the 128 characters"), "{err}");
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
