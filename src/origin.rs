//! Which browser origins may open a WebSocket: the `Origin` header of an
//! upgrade against a list of patterns (`--allowed-origin`, an app's
//! `allowed_origins`).
//!
//! A pattern is `*` (any origin), a full origin (`https://chat.example.com`,
//! `http://localhost:8080`), or a host with an optional port and no scheme
//! (`chat.example.com`, `localhost:8080`), which matches it over any
//! scheme. The host may start with `*.` to match every subdomain (not the
//! domain itself): `https://*.example.com`, `*.example.com`. Comparison
//! ignores ASCII case, as hosts and schemes do. An origin has no path; a
//! pattern with one, or an empty one, is refused when the settings are read.

/// Why a pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pattern:?} is not an origin pattern: {why} (examples: https://chat.example.com, *.example.com, *)")]
pub struct OriginPatternError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// Checks that `pattern` is one this module understands.
pub fn validate(pattern: &str) -> Result<(), OriginPatternError> {
    let error = |why| Err(OriginPatternError { pattern: pattern.to_owned(), why });
    if pattern == "*" {
        return Ok(());
    }
    let authority = match pattern.split_once("://") {
        Some((scheme, rest)) if !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric()) => rest,
        Some(_) => return error("the scheme is not a word"),
        None => pattern,
    };
    let host = authority.strip_prefix("*.").unwrap_or(authority);
    if host.is_empty() || host.starts_with(':') {
        return error("no host");
    }
    if host.contains(['/', '*', ' ', '?', '#']) {
        return error("an origin is scheme://host[:port], without a path or other wildcards");
    }
    Ok(())
}

/// Whether `origin` (an `Origin` header's value) matches any of `patterns`.
/// An empty list allows nothing: callers decide what "no list" means.
pub fn allowed(patterns: &[String], origin: &str) -> bool {
    patterns.iter().any(|pattern| matches(pattern, origin))
}

fn matches(pattern: &str, origin: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let (origin_scheme, origin_authority) = match origin.split_once("://") {
        Some(split) => split,
        // "null" and anything else without a scheme only match a pattern
        // that is exactly it.
        None => return pattern.eq_ignore_ascii_case(origin),
    };
    let authority = match pattern.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case(origin_scheme) => rest,
        Some(_) => return false,
        None => pattern,
    };
    match authority.strip_prefix("*.") {
        Some(domain) => {
            // "*.example.com" matches "a.example.com" and "a.b.example.com".
            let Some(cut) = origin_authority.len().checked_sub(domain.len() + 1) else { return false };
            origin_authority.is_char_boundary(cut)
                && origin_authority[cut..].starts_with('.')
                && origin_authority[cut + 1..].eq_ignore_ascii_case(domain)
                && cut > 0
        }
        None => authority.eq_ignore_ascii_case(origin_authority),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(patterns: &[&str]) -> Vec<String> {
        patterns.iter().map(|p| (*p).to_owned()).collect()
    }

    #[test]
    fn a_full_origin_matches_itself_only_ignoring_case() {
        let patterns = list(&["https://chat.example.com"]);
        assert!(allowed(&patterns, "https://chat.example.com"));
        assert!(allowed(&patterns, "HTTPS://Chat.Example.COM"));
        assert!(!allowed(&patterns, "http://chat.example.com"), "another scheme");
        assert!(!allowed(&patterns, "https://chat.example.com:8443"), "another port");
        assert!(!allowed(&patterns, "https://evil.com"));
        assert!(!allowed(&patterns, "https://chat.example.com.evil.com"));
    }

    #[test]
    fn a_host_without_a_scheme_matches_any_scheme() {
        let patterns = list(&["localhost:8080"]);
        assert!(allowed(&patterns, "http://localhost:8080"));
        assert!(allowed(&patterns, "https://localhost:8080"));
        assert!(!allowed(&patterns, "http://localhost:8081"));
    }

    #[test]
    fn a_wildcard_matches_subdomains_but_not_the_domain_or_lookalikes() {
        for patterns in [list(&["*.example.com"]), list(&["https://*.example.com"])] {
            assert!(allowed(&patterns, "https://a.example.com"));
            assert!(allowed(&patterns, "https://a.b.example.com"));
            assert!(!allowed(&patterns, "https://example.com"));
            assert!(!allowed(&patterns, "https://badexample.com"));
            assert!(!allowed(&patterns, "https://.example.com"));
            assert!(!allowed(&patterns, "https://example.com.evil.org"));
        }
        assert!(!allowed(&list(&["https://*.example.com"]), "http://a.example.com"));
    }

    #[test]
    fn star_allows_all_and_null_only_when_listed() {
        assert!(allowed(&list(&["*"]), "https://anything.org"));
        assert!(!allowed(&list(&["https://a.org"]), "null"));
        assert!(allowed(&list(&["null"]), "null"));
        assert!(!allowed(&[], "https://a.org"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["", "https://", "https://a.org/path", "://a.org", "a*.org", "*.", "https://*", ":80"] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
        for good in ["*", "https://a.org", "a.org", "*.a.org", "http://localhost:8080", "null"] {
            assert!(validate(good).is_ok(), "{good:?}");
        }
    }
}
