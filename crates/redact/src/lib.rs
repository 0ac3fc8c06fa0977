//! Credentials never leave where they were given.
//!
//! A user may put a password or token in a URL (`https://user:pass@host/...`: a `[[file]]`
//! `url`, an index or mirror URL). What marqo-base writes (a lock, an SBOM, a requirements
//! file, an image's apt sources, JSON) holds the URL through [`without_credentials`], the one
//! function that strips them; messages and log lines show it through [`redact`], which masks
//! them as pip does so that the reader still sees that credentials were used.

use url::Url;

/// The URL with no user name and no password: what every output that keeps a URL writes.
pub fn without_credentials(url: &Url) -> Url {
    let mut url = url.clone();
    // Only URLs that cannot carry credentials (`data:`, `mailto:`) refuse these, and they
    // carry none.
    let _ = url.set_password(None);
    let _ = url.set_username("");
    url
}

/// [`without_credentials`] for a URL kept as text: text that is not a URL loses whatever
/// stands between `://` and an `@` in its authority; text without credentials comes back
/// unchanged (not normalised).
pub fn strip_credentials(text: &str) -> String {
    match Url::parse(text) {
        Ok(url) if url.username().is_empty() && url.password().is_none() => text.to_string(),
        Ok(url) => without_credentials(&url).to_string(),
        Err(_) => {
            let Some((scheme, rest)) = text.split_once("://") else { return text.to_string() };
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => text.to_string(),
            }
        }
    }
}

/// `text` (a line of a file, for an error) with the credentials of every URL in it replaced by
/// as many `*`: the line keeps its columns, so what points into it still points right.
pub fn mask_credentials_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let authority_end =
            tail.find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>') || c.is_whitespace());
        let authority = &tail[..authority_end.unwrap_or(tail.len())];
        match authority.rfind('@') {
            Some(at) => {
                out.extend(std::iter::repeat_n('*', authority[..at].chars().count()));
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// The URL as a string with its credentials replaced by `****`, for messages.
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

    #[test]
    fn strips_user_names_passwords_and_tokens() {
        let url = Url::parse("https://alice:s3cret@example.invalid:8443/f.tar?x=1#y").unwrap();
        assert_eq!(without_credentials(&url).as_str(), "https://example.invalid:8443/f.tar?x=1#y");
        assert_eq!(strip_credentials("https://tok3n@example.invalid/a"), "https://example.invalid/a");
        assert_eq!(strip_credentials("http://a:b@127.0.0.1:1/f"), "http://127.0.0.1:1/f");
        // No credentials: the text as given, even where the URL parser would normalise it.
        assert_eq!(strip_credentials("HTTPS://Example.invalid"), "HTTPS://Example.invalid");
        // Not a URL (a bad port): the authority's credentials go all the same.
        assert_eq!(strip_credentials("https://u:p@w@host:99999/x"), "https://host:99999/x");
        assert_eq!(strip_credentials("https://host:99999/a@b"), "https://host:99999/a@b");
        assert_eq!(strip_credentials("not a url"), "not a url");
    }

    #[test]
    fn masks_credentials_in_a_line() {
        assert_eq!(
            mask_credentials_in(r#"url = "https://al:pw@h/x@y", b = 'http://t@h2'"#),
            r#"url = "https://*****@h/x@y", b = 'http://*@h2'"#
        );
        assert_eq!(mask_credentials_in("https://h/a, no@creds"), "https://h/a, no@creds");
    }
}
