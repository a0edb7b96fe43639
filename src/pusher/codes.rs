//! Pusher's close and `pusher:error` codes, as its protocol documents them.
//!
//! The range tells a client what to do: 4000-4099 do not reconnect
//! unchanged, 4100-4199 reconnect after backing off (at least 1 s),
//! 4200-4299 reconnect at once, 4300-4399 anything else.

/// Application only accepts SSL connections, reconnect using wss://.
pub const SSL_ONLY: u16 = 4000;
/// Application does not exist.
pub const APP_DOES_NOT_EXIST: u16 = 4001;
/// Application disabled.
pub const APP_DISABLED: u16 = 4003;
/// Application is over connection quota.
pub const OVER_CONNECTION_QUOTA: u16 = 4004;
/// Path not found.
pub const PATH_NOT_FOUND: u16 = 4005;
/// Invalid version string format.
pub const INVALID_VERSION: u16 = 4006;
/// Unsupported protocol version.
pub const UNSUPPORTED_PROTOCOL: u16 = 4007;
/// No protocol version supplied.
pub const NO_PROTOCOL_VERSION: u16 = 4008;
/// Connection is unauthorized.
pub const UNAUTHORIZED: u16 = 4009;
/// Over capacity (reconnect after backing off).
pub const OVER_CAPACITY: u16 = 4100;
/// Generic reconnect immediately.
pub const RECONNECT_IMMEDIATELY: u16 = 4200;
/// Pong reply not received: a ping was sent to the client, and no reply came.
pub const PONG_NOT_RECEIVED: u16 = 4201;
/// Closed after inactivity.
pub const CLOSED_AFTER_INACTIVITY: u16 = 4202;
/// Client event rejected due to rate limit.
pub const CLIENT_EVENT_RATE_LIMIT: u16 = 4301;
/// Watchlist limit exceeded: only the first 100 user ids are accepted.
pub const WATCHLIST_LIMIT_EXCEEDED: u16 = 4302;

/// Pusher's description of `code`, fit for a close frame's reason; `None`
/// for codes Pusher does not document.
pub fn description(code: u16) -> Option<&'static str> {
    Some(match code {
        SSL_ONLY => "Application only accepts SSL connections, reconnect using wss://",
        APP_DOES_NOT_EXIST => "Application does not exist",
        APP_DISABLED => "Application disabled",
        OVER_CONNECTION_QUOTA => "Application is over connection quota",
        PATH_NOT_FOUND => "Path not found",
        INVALID_VERSION => "Invalid version string format",
        UNSUPPORTED_PROTOCOL => "Unsupported protocol version",
        NO_PROTOCOL_VERSION => "No protocol version supplied",
        UNAUTHORIZED => "Connection is unauthorized",
        OVER_CAPACITY => "Over capacity",
        RECONNECT_IMMEDIATELY => "Generic reconnect immediately",
        PONG_NOT_RECEIVED => "Pong reply not received",
        CLOSED_AFTER_INACTIVITY => "Closed after inactivity",
        CLIENT_EVENT_RATE_LIMIT => "Client event rejected due to rate limit",
        WATCHLIST_LIMIT_EXCEEDED => "Watchlist limit exceeded",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    //! Verifies that every documented code has a description short enough
    //! for a close frame, and that the codes sit in the documented ranges.

    use super::*;

    #[test]
    fn documented_codes_have_descriptions_that_fit_a_close_frame() {
        let codes = [4000, 4001, 4003, 4004, 4005, 4006, 4007, 4008, 4009, 4100, 4200, 4201, 4202, 4301, 4302];
        for code in codes {
            let text = description(code).unwrap_or_else(|| panic!("{code} undocumented"));
            // A close frame's payload is at most 125 bytes, 2 of them the code.
            assert!(text.len() <= 123, "{code}");
        }
        assert_eq!(description(4002), None);
        assert_eq!(description(1000), None);
    }

    #[test]
    fn codes_sit_in_the_range_that_gives_their_reconnect_advice() {
        assert!((4000..4100).contains(&UNAUTHORIZED) && (4000..4100).contains(&APP_DOES_NOT_EXIST));
        assert!((4100..4200).contains(&OVER_CAPACITY));
        assert!((4200..4300).contains(&PONG_NOT_RECEIVED));
        assert!((4300..4400).contains(&CLIENT_EVENT_RATE_LIMIT));
    }
}
