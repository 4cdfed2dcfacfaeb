//! What a node says about itself (`GET /status`) and what it pushes to an
//! open page (`GET /events`, server-sent events).

use saldo_sync::{AuthorId, Balance, ConsumerId, RealmId, ServiceId};
use serde::{Deserialize, Serialize};

use crate::session::NodeKind;

/// One peer this node syncs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PeerState {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: AuthorId,
    /// The peer's name (a cash point's), or none for the hub or a stranger.
    pub name: Option<String>,
    /// Whether the peer is this realm's hub.
    pub hub: bool,
    /// The address dialed, or none when the peer dialed in.
    pub addr: Option<String>,
    pub online: bool,
    pub last_contact_ms: Option<u64>,
    pub last_error: Option<String>,
    pub ops_sent: u64,
    pub ops_received: u64,
    pub ops_refused: u64,
    pub wire_sent_bytes: u64,
    pub wire_received_bytes: u64,
    pub handshake_bytes: u64,
    /// Found on the local network, not configured.
    pub found_on_lan: bool,
    /// The peer refused this node for good (another realm), and why.
    pub refused: Option<String>,
}

/// `GET /status`, and the `status` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Status {
    pub node: NodeKind,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub realm: RealmId,
    pub realm_name: String,
    /// This device's id (its public key).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub device: Option<AuthorId>,
    /// This device's name (a cash point's, as enrolled), or the realm's for the hub.
    pub device_name: String,
    /// The hub is reachable (always true at the hub).
    pub online: bool,
    /// What `--peer` takes to reach this node.
    pub addresses: Vec<String>,
    pub peers: Vec<PeerState>,
    /// Operations recorded here that the hub has not confirmed yet.
    pub unconfirmed_operations: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub unconfirmed_total: Balance,
    pub last_hub_contact_ms: Option<u64>,
    /// Operations of the hub's log this node knows exist and does not hold
    /// yet, when it knows.
    pub hub_behind: Option<u64>,
    /// Why this device records nothing now (it checks or fetches its own
    /// log), if so.
    pub recording_held: Option<String>,
    /// A fork of this device's own log, described, if one was seen.
    pub forked: Option<String>,
    /// When this status was taken, by the node's clock.
    pub at_ms: u64,
    /// At the hub: how each channel of the outbox (e-mail, SMS) has fared
    /// since the hub started.
    #[serde(default)]
    pub delivery: Vec<ChannelState>,
}

/// How one channel of the hub's outbox has fared since the hub started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelState {
    pub channel: crate::outbox::ChannelApi,
    /// Its section (`[email]`, `[sms]`) is in the hub's `saldo.toml`.
    pub configured: bool,
    /// Messages the server (SMTP, SMS gateway) accepted.
    pub sent: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// The last failure, while the channel has not delivered since.
    pub last_error: Option<String>,
}

/// A wallet's balances changed (recorded here, or confirmed by the hub).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BalanceChanged {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub consumer: ConsumerId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub service: ServiceId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub confirmed: Balance,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub provisional: Balance,
}

/// One server-sent event of `GET /events`: its JSON `data` carries a
/// `type` (`status` or `balance`) beside the fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Status(Box<Status>),
    Balance(BalanceChanged),
}

impl Event {
    /// The SSE `event:` name, the same as the `type` in the data.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Status(_) => "status",
            Event::Balance(_) => "balance",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_balance_event_is_tagged_and_reads_back() {
        let event = Event::Balance(BalanceChanged {
            consumer: ConsumerId([0xcd; 16]),
            service: ServiceId::parse("mensa").unwrap(),
            confirmed: Balance::from_minor(2_050).unwrap(),
            provisional: Balance::from_minor(-150).unwrap(),
        });
        let json = serde_json::to_string(&event).unwrap();
        assert!(json.starts_with(r#"{"type":"balance","consumer":"cdcd"#), "{json}");
        assert!(json.contains(r#""confirmed":"20.50","provisional":"-1.50""#), "{json}");
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event);
        assert_eq!(event.name(), "balance");
    }
}
