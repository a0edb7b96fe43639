//! Query-string lookup with form-style percent-decoding.

use std::borrow::Cow;

/// The decoded value of the first parameter in `query` whose decoded name is
/// `name`; a parameter without `=` has the empty value.
pub(super) fn param<'a>(query: &'a str, name: &str) -> Option<Cow<'a, str>> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key) == name).then(|| decode(value))
    })
}

/// Every parameter of `query`, decoded, in order; empty pieces (`a=1&&b=2`)
/// are skipped.
pub(super) fn pairs(query: &str) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// `text` with `+` as a space and each `%XX` as the byte it names; a `%` not
/// followed by two hex digits stays as it is. Decoded bytes that are not UTF-8
/// become U+FFFD. Borrowed when there was nothing to decode.
fn decode(text: &str) -> Cow<'_, str> {
    percent_decode(text, true)
}

/// A path segment's `%XX` escapes decoded (`+` stays `+`), as [`decode`]
/// does otherwise.
pub(crate) fn decode_path_segment(text: &str) -> Cow<'_, str> {
    percent_decode(text, false)
}

fn percent_decode(text: &str, plus_is_space: bool) -> Cow<'_, str> {
    if !(text.contains('%') || plus_is_space && text.contains('+')) {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        let escaped = match (byte, bytes.get(at + 1..at + 3)) {
            (b'%', Some(&[high, low])) => hex(high).zip(hex(low)).map(|(h, l)| (h << 4) | l),
            _ => None,
        };
        match (byte, escaped) {
            (_, Some(decoded)) => {
                out.push(decoded);
                at += 3;
            }
            (b'+', None) if plus_is_space => {
                out.push(b' ');
                at += 1;
            }
            (other, None) => {
                out.push(other);
                at += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|value| value as u8)
}

#[cfg(test)]
mod tests {
    //! Verifies that query parameters are found by decoded name and decoded
    //! the way browsers encode forms.

    use super::*;

    #[test]
    fn values_are_percent_decoded_with_plus_as_space() {
        let query = "name=hello+world%21&path=%2Fa%2Fb&utf8=caf%C3%A9&empty=&flag";
        assert_eq!(param(query, "name").as_deref(), Some("hello world!"));
        assert_eq!(param(query, "path").as_deref(), Some("/a/b"));
        assert_eq!(param(query, "utf8").as_deref(), Some("café"));
        assert_eq!(param(query, "empty").as_deref(), Some(""));
        assert_eq!(param(query, "flag").as_deref(), Some(""));
        assert_eq!(param(query, "missing"), None);
    }

    #[test]
    fn the_first_match_wins_and_names_are_decoded_too() {
        assert_eq!(param("a=1&a=2", "a").as_deref(), Some("1"));
        assert_eq!(param("auth%5Fkey=k&auth_key=other", "auth_key").as_deref(), Some("k"));
        assert_eq!(param("a+b=1", "a b").as_deref(), Some("1"));
    }

    #[test]
    fn undecodable_escapes_stay_and_invalid_utf8_is_replaced() {
        assert_eq!(param("v=100%", "v").as_deref(), Some("100%"));
        assert_eq!(param("v=%zz%4", "v").as_deref(), Some("%zz%4"));
        assert_eq!(param("v=%FF", "v").as_deref(), Some("\u{FFFD}"));
        assert_eq!(param("v=%e2%82%ac", "v").as_deref(), Some("€"));
    }

    #[test]
    fn pairs_are_decoded_in_order() {
        let all = pairs("b=2&a=x%20y&&flag");
        let all: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        assert_eq!(all, vec![("b", "2"), ("a", "x y"), ("flag", "")]);
    }

    #[test]
    fn plain_values_are_borrowed() {
        assert!(matches!(param("channel=news", "channel"), Some(Cow::Borrowed("news"))));
        assert!(matches!(param("channel=a%20b", "channel"), Some(Cow::Owned(_))));
    }
}
