//! Channel names: which kind of channel a name denotes, and Pusher's rules
//! for what a name may contain.

/// Pusher's limit on the length of a channel name, prefixes included.
pub const DEFAULT_MAX_CHANNEL_NAME: usize = 164;

/// The prefix of the channel Pusher reserves for events sent to one user
/// (`#server-to-user-{user_id}`); `#` is allowed nowhere else.
pub const SERVER_TO_USER_PREFIX: &str = "#server-to-user-";

/// What a channel name says about who may subscribe and what it carries.
///
/// Cache channels (`cache-`, `private-cache-`, ...) have the kind of their
/// base; [`is_cache`] tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// Anyone who knows the name may subscribe.
    Public,
    /// `private-`: a subscription needs a signature over socket id and name.
    Private,
    /// `private-encrypted-`: like [`ChannelKind::Private`]; payloads are
    /// end-to-end encrypted, which the server never sees into.
    PrivateEncrypted,
    /// `presence-`: like private, and the signature also covers the member's
    /// `channel_data`, which is shared with the other members.
    Presence,
    /// `#server-to-user-{user_id}`: events for one signed-in user.
    ServerToUser,
}

impl ChannelKind {
    /// Whether subscribing takes an `auth` signature (private, encrypted and
    /// presence channels). Server-to-user channels are not signed: the
    /// connection must instead be signed in as that user.
    pub fn requires_auth(self) -> bool {
        matches!(self, ChannelKind::Private | ChannelKind::PrivateEncrypted | ChannelKind::Presence)
    }

    /// Whether the protocol lets clients trigger `client-` events on it: only
    /// on authorized channels, so that every sender was vetted by the app.
    pub fn allows_client_events(self) -> bool {
        self.requires_auth()
    }
}

/// Why a channel name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is the empty string.
    #[error("channel name is empty")]
    Empty,
    /// The name has more characters than allowed.
    #[error("channel name is {len} characters long; at most {max} are allowed")]
    TooLong {
        /// The name's length in characters.
        len: usize,
        /// The longest name allowed.
        max: usize,
    },
    /// The name holds a character outside `A-Z a-z 0-9 _ - = @ , . ;`.
    #[error("channel name has {ch:?} at character {at}; only A-Z, a-z, 0-9 and _-=@,.; are allowed")]
    InvalidChar {
        /// The character refused.
        ch: char,
        /// Its position in the name, counted in characters from 0.
        at: usize,
    },
    /// The name starts with `#` but is not `#server-to-user-{user_id}`.
    #[error("channel names starting with # are reserved; only #server-to-user-<user id> is allowed")]
    Reserved,
    /// The name is `#server-to-user-` with no user id, or one holding
    /// whitespace or control characters.
    #[error("#server-to-user- must be followed by a user id without spaces or control characters")]
    BadUserId,
}

/// The kind of the channel called `name`, if `name` is a valid channel name
/// of at most `max_len` characters.
///
/// Pusher's rules: 1 to `max_len` characters (164 by default, prefixes
/// included) from `A-Z a-z 0-9 _ - = @ , . ;`. The one exception is
/// `#server-to-user-{user_id}`, where the user id may be any string without
/// whitespace or control characters, since apps choose user ids freely.
pub fn classify(name: &str, max_len: usize) -> Result<ChannelKind, NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    let len = name.chars().count();
    if len > max_len {
        return Err(NameError::TooLong { len, max: max_len });
    }
    if let Some(user_id) = name.strip_prefix(SERVER_TO_USER_PREFIX) {
        let valid = !user_id.is_empty() && !user_id.chars().any(|c| c.is_whitespace() || c.is_control());
        return if valid { Ok(ChannelKind::ServerToUser) } else { Err(NameError::BadUserId) };
    }
    if name.starts_with('#') {
        return Err(NameError::Reserved);
    }
    if let Some((at, ch)) = name.chars().enumerate().find(|&(_, c)| !is_name_char(c)) {
        return Err(NameError::InvalidChar { ch, at });
    }
    Ok(kind_of(name))
}

/// Whether `name` is a cache channel (`cache-`, `private-cache-`,
/// `private-encrypted-cache-` or `presence-cache-`), whose last event is
/// kept and replayed to each new subscriber. Says nothing about validity.
pub fn is_cache(name: &str) -> bool {
    ["cache-", "private-cache-", "private-encrypted-cache-", "presence-cache-"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// The user id in a `#server-to-user-{user_id}` name, if `name` is one.
pub fn server_to_user_id(name: &str) -> Option<&str> {
    name.strip_prefix(SERVER_TO_USER_PREFIX).filter(|id| !id.is_empty())
}

/// The kind a syntactically valid name denotes. Cache prefixes need no case
/// of their own: `private-cache-` already starts with `private-`.
fn kind_of(name: &str) -> ChannelKind {
    if name.starts_with("private-encrypted-") {
        ChannelKind::PrivateEncrypted
    } else if name.starts_with("private-") {
        ChannelKind::Private
    } else if name.starts_with("presence-") {
        ChannelKind::Presence
    } else {
        ChannelKind::Public
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '=' | '@' | ',' | '.' | ';')
}

#[cfg(test)]
mod tests {
    //! Verifies that channel names are classified by prefix and refused
    //! exactly where Pusher's naming rules say.

    use super::*;

    const MAX: usize = DEFAULT_MAX_CHANNEL_NAME;

    #[test]
    fn prefixes_decide_the_kind() {
        assert_eq!(classify("news", MAX), Ok(ChannelKind::Public));
        assert_eq!(classify("private-foobar", MAX), Ok(ChannelKind::Private));
        assert_eq!(classify("private-encrypted-x", MAX), Ok(ChannelKind::PrivateEncrypted));
        assert_eq!(classify("presence-room", MAX), Ok(ChannelKind::Presence));
        assert_eq!(classify("#server-to-user-42", MAX), Ok(ChannelKind::ServerToUser));
        // A prefix only counts at the start, and is case-sensitive.
        assert_eq!(classify("my-private-stuff", MAX), Ok(ChannelKind::Public));
        assert_eq!(classify("Private-x", MAX), Ok(ChannelKind::Public));
    }

    #[test]
    fn cache_channels_take_the_kind_of_their_base() {
        assert_eq!(classify("cache-prices", MAX), Ok(ChannelKind::Public));
        assert_eq!(classify("private-cache-prices", MAX), Ok(ChannelKind::Private));
        assert_eq!(classify("private-encrypted-cache-x", MAX), Ok(ChannelKind::PrivateEncrypted));
        assert_eq!(classify("presence-cache-room", MAX), Ok(ChannelKind::Presence));
        for name in ["cache-prices", "private-cache-a", "private-encrypted-cache-a", "presence-cache-a"] {
            assert!(is_cache(name), "{name}");
        }
        for name in ["prices", "private-prices", "my-cache-x", "presence-room", "cachex"] {
            assert!(!is_cache(name), "{name}");
        }
    }

    #[test]
    fn every_allowed_punctuation_mark_is_accepted() {
        assert_eq!(classify("foo-bar_1234@=,.;", MAX), Ok(ChannelKind::Public));
        assert_eq!(classify("private-azAZ9_=@,.;", MAX), Ok(ChannelKind::Private));
    }

    #[test]
    fn other_characters_are_refused_with_their_position() {
        assert_eq!(classify("a b", MAX), Err(NameError::InvalidChar { ch: ' ', at: 1 }));
        assert_eq!(classify("news:1", MAX), Err(NameError::InvalidChar { ch: ':', at: 4 }));
        assert_eq!(classify("café", MAX), Err(NameError::InvalidChar { ch: 'é', at: 3 }));
        assert_eq!(classify("a\nb", MAX), Err(NameError::InvalidChar { ch: '\n', at: 1 }));
        assert_eq!(classify("x#y", MAX), Err(NameError::InvalidChar { ch: '#', at: 1 }));
        assert_eq!(classify("", MAX), Err(NameError::Empty));
    }

    #[test]
    fn length_is_bounded_prefix_included() {
        let longest = format!("private-{}", "a".repeat(MAX - 8));
        assert_eq!(classify(&longest, MAX), Ok(ChannelKind::Private));
        let too_long = format!("{longest}a");
        assert_eq!(classify(&too_long, MAX), Err(NameError::TooLong { len: MAX + 1, max: MAX }));
        assert_eq!(classify("abcd", 3), Err(NameError::TooLong { len: 4, max: 3 }));
        assert_eq!(classify("a", 1), Ok(ChannelKind::Public));
    }

    #[test]
    fn hash_is_reserved_except_for_server_to_user_channels() {
        assert_eq!(classify("#news", MAX), Err(NameError::Reserved));
        assert_eq!(classify("#server-to-user", MAX), Err(NameError::Reserved));
        assert_eq!(classify("#server-to-user-", MAX), Err(NameError::BadUserId));
        assert_eq!(classify("#server-to-user-a b", MAX), Err(NameError::BadUserId));
        assert_eq!(classify("#server-to-user-a\u{0}", MAX), Err(NameError::BadUserId));
        // User ids are the app's choice, so they may hold characters names may not.
        assert_eq!(classify("#server-to-user-auth0|5f:1", MAX), Ok(ChannelKind::ServerToUser));
        assert_eq!(server_to_user_id("#server-to-user-42"), Some("42"));
        assert_eq!(server_to_user_id("#server-to-user-"), None);
        assert_eq!(server_to_user_id("private-42"), None);
    }

    #[test]
    fn only_authorized_channels_need_auth_and_allow_client_events() {
        use ChannelKind::*;
        for kind in [Private, PrivateEncrypted, Presence] {
            assert!(kind.requires_auth() && kind.allows_client_events(), "{kind:?}");
        }
        for kind in [Public, ServerToUser] {
            assert!(!kind.requires_auth() && !kind.allows_client_events(), "{kind:?}");
        }
    }

    #[test]
    fn error_messages_name_the_rule() {
        let message = classify("a b", MAX).unwrap_err().to_string();
        assert!(message.contains("' '") && message.contains("character 1"), "{message}");
        let message = classify(&"a".repeat(200), MAX).unwrap_err().to_string();
        assert!(message.contains("200") && message.contains("164"), "{message}");
    }
}
