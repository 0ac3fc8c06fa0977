//! Credentials never reach a message or a log line.

use url::Url;

/// The URL as a string with its credentials replaced by `****`.
///
/// Like pip: `https://user:pass@host/` becomes `https://user:****@host/`, and a lone user
/// name (often a token) becomes `https://****@host/`.
pub fn redact(url: &Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    // Setting credentials fails only for URLs that cannot have any (`data:`, `mailto:`),
    // which have none to hide.
    let redacted = if shown.password().is_some() {
        shown.set_password(Some("****")).is_ok()
    } else {
        shown.set_username("****").is_ok()
    };
    if redacted {
        shown.to_string()
    } else {
        format!("{}://****", url.scheme())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_passwords_and_tokens() {
        let url = Url::parse("https://alice:s3cret@example.invalid/simple/").unwrap();
        assert_eq!(redact(&url), "https://alice:****@example.invalid/simple/");
        let url = Url::parse("https://tok3n@example.invalid/simple/").unwrap();
        assert_eq!(redact(&url), "https://****@example.invalid/simple/");
        let url = Url::parse("https://example.invalid/simple/").unwrap();
        assert_eq!(redact(&url), "https://example.invalid/simple/");
    }
}
