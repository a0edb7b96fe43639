//! What tells a presence channel's members, and the app's webhooks, that a
//! member came or went, and the webhooks that a channel was occupied or
//! vacated: the same words whether one node decided it (a single node, or
//! a cluster while Redis is away) or the cluster's shared count did.

use super::audience;
use crate::channels::{ChannelChange, Publication};
use crate::pusher::webhook::WebhookEvent;
use crate::pusher::{protocol, App, Apps};
use serde_json::value::RawValue;

/// A member's arrival or departure: the frame for the channel's Pusher
/// members and the webhook event.
pub(crate) struct MemberNews {
    pub(crate) publication: Publication,
    pub(crate) webhook: WebhookEvent,
}

/// `user_id` joined presence channel `channel` (its first connection).
pub(crate) fn member_added(channel: &str, user_id: &str, info: Option<&RawValue>) -> MemberNews {
    MemberNews {
        publication: audience::pusher_only(protocol::member_added(channel, user_id, info)),
        webhook: WebhookEvent::MemberAdded { channel: channel.to_owned(), user_id: user_id.to_owned() },
    }
}

/// `user_id` left presence channel `channel` (its last connection).
pub(crate) fn member_removed(channel: &str, user_id: &str) -> MemberNews {
    MemberNews {
        publication: audience::pusher_only(protocol::member_removed(channel, user_id)),
        webhook: WebhookEvent::MemberRemoved { channel: channel.to_owned(), user_id: user_id.to_owned() },
    }
}

/// The webhook event of channel `channel` becoming occupied or vacated.
pub(crate) fn occupancy(channel: &str, change: ChannelChange) -> WebhookEvent {
    let channel = channel.to_owned();
    match change {
        ChannelChange::Occupied => WebhookEvent::ChannelOccupied { channel },
        ChannelChange::Vacated => WebhookEvent::ChannelVacated { channel },
    }
}

/// The app and channel of core channel `key` when it is one whose occupancy
/// is told: a channel of a configured app, not one of the service's own (a
/// room's roster, a Socket.IO socket's own room).
pub(crate) fn counted_channel<'a>(apps: &'a Apps, key: &'a str) -> Option<(&'a App, &'a str)> {
    let (app, channel) = audience::split(key)?;
    let app = apps.by_id(app)?;
    (!audience::is_service_channel(channel)).then_some((app, channel))
}
