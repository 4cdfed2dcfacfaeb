//! The `saldo/join/1` protocol: enrolment tokens, redeemed by a new device at the hub.

use super::endpoint::{PeerAddr, bind_endpoint, endpoint_addr};
use super::status::Shared;
use super::sync::refusal;
use crate::node::NodeError;
use anyhow::{Result, anyhow};
use iroh::endpoint::{Connection, VarInt};
use iroh::protocol::{AcceptError, ProtocolHandler};
use saldo_sync::AuthorId;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// The ALPN a new device uses once, to present its enrolment token.
pub const JOIN_ALPN: &[u8] = b"saldo/join/1";

const TOKEN_PREFIX: &str = "saldo-join-1:";

/// What `saldo enroll` prints and `saldo cashpoint --join` takes: the realm,
/// where its hub listens, and a one-time secret the hub stored the hash of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentToken {
    pub realm: saldo_sync::RealmId,
    pub hub: Vec<PeerAddr>,
    pub secret: [u8; 32],
}

impl EnrolmentToken {
    pub fn encode(&self) -> String {
        format!("{TOKEN_PREFIX}{}", hex::encode(postcard::to_stdvec(self).expect("encoding to a Vec")))
    }

    pub fn decode(text: &str) -> Result<EnrolmentToken> {
        let hex_part = text.trim().strip_prefix(TOKEN_PREFIX).ok_or_else(|| {
            anyhow!("this is not an enrolment token (it starts with {TOKEN_PREFIX}): copy it whole from `saldo enroll`")
        })?;
        let bytes = hex::decode(hex_part)
            .map_err(|_| anyhow!("the enrolment token is damaged: copy it whole from `saldo enroll`"))?;
        postcard::from_bytes(&bytes)
            .map_err(|_| anyhow!("the enrolment token is damaged: copy it whole from `saldo enroll`"))
    }
}

/// What the hub answers a device it enrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The cash point's name.
    pub name: String,
    /// When it replaces another device: the highest receipt number the hub
    /// held of that one; its own receipts start above.
    pub receipts_after: Option<u64>,
    /// The hub's public address, where receipts' verification links point.
    pub public_url: Option<String>,
}

/// The lines of the join answer after the name (names are labels, which
/// hold no line breaks): [`Joined::receipts_after`], [`Joined::public_url`].
const RECEIPTS_AFTER: &str = "receipts-after:";
const PUBLIC_URL: &str = "public-url:";

impl Joined {
    pub(super) fn parse(answer: &str) -> Option<Joined> {
        let mut lines = answer.strip_prefix("ok:")?.split('\n');
        let name = lines.next()?.to_string();
        let mut joined = Joined { name, receipts_after: None, public_url: None };
        for line in lines {
            if let Some(after) = line.strip_prefix(RECEIPTS_AFTER) {
                joined.receipts_after = Some(after.trim().parse().ok()?);
            } else if let Some(url) = line.strip_prefix(PUBLIC_URL) {
                joined.public_url = Some(url.trim().to_string()).filter(|u| !u.is_empty());
            }
            // Lines of a later version are skipped.
        }
        Some(joined)
    }

    pub(super) fn encode(&self) -> String {
        let mut out = format!("ok:{}", self.name);
        if let Some(after) = self.receipts_after {
            out.push_str(&format!("\n{RECEIPTS_AFTER}{after}"));
        }
        if let Some(url) = &self.public_url {
            out.push_str(&format!("\n{PUBLIC_URL}{url}"));
        }
        out
    }
}

/// The hub refused an enrolment token (unknown, used already), in its words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the hub refused: {0}")]
pub struct HubRefused(pub String);

/// Presents `token` to the hub with the device's new `key`; on success the
/// hub has enrolled the key as a cash point, whose name it returns.
pub async fn redeem(token: &EnrolmentToken, key: &saldo_sync::DeviceKey, bind: SocketAddr) -> Result<Joined> {
    let endpoint = bind_endpoint(key, JOIN_ALPN, bind).await?;
    let mut last_error = anyhow!("the token names no hub address");
    for hub in &token.hub {
        let address = endpoint_addr(*hub)?;
        let attempt = async {
            let conn = endpoint.connect(address, JOIN_ALPN).await?;
            let (mut send, mut recv) = conn.open_bi().await?;
            send.write_all(&token.secret).await?;
            send.finish()?;
            let answer = recv.read_to_end(1024).await.map_err(|e| match refusal(&conn) {
                Some(refusal) => anyhow::Error::new(refusal),
                None => anyhow!("{e}"),
            })?;
            conn.close(VarInt::from_u32(0), b"joined");
            let answer = String::from_utf8_lossy(&answer).into_owned();
            match Joined::parse(&answer) {
                Some(joined) => Ok(joined),
                // The hub's answer is a refusal that says so already.
                None => {
                    Err(anyhow::Error::new(HubRefused(answer.strip_prefix("refused: ").unwrap_or(&answer).to_string())))
                }
            }
        };
        match tokio::time::timeout(Duration::from_secs(10), attempt).await {
            Ok(Ok(joined)) => {
                endpoint.close().await;
                return Ok(joined);
            }
            Ok(Err(e)) => last_error = e,
            Err(_) => last_error = anyhow!("no answer from the hub at {}", hub.addr),
        }
    }
    endpoint.close().await;
    Err(last_error)
}

#[derive(Debug, Clone)]
pub(super) struct Join {
    pub(super) shared: Shared,
}

impl ProtocolHandler for Join {
    async fn accept(&self, conn: Connection) -> std::result::Result<(), AcceptError> {
        let device = AuthorId(*conn.remote_id().as_bytes());
        let (mut send, mut recv) = conn.accept_bi().await?;
        let secret = recv.read_to_end(64).await.map_err(AcceptError::from_err)?;
        let answer = match <[u8; 32]>::try_from(secret.as_slice()) {
            Ok(secret) => self.shared.service.redeem_enrolment_token(secret, device).await,
            Err(_) => {
                Err(crate::service::ServiceError::from(NodeError::Refused("a malformed enrolment request".into())))
            }
        };
        let reply = match answer {
            Ok(name) => {
                tracing::info!("enrolled {} as cash point {name:?}", device.to_hex());
                let _ = self.shared.service.refresh_frontier().await;
                let public_url = self.shared.service.public_url().await;
                match self.shared.service.receipt_base_of(device).await {
                    Ok(receipts_after) => Joined { name, receipts_after, public_url }.encode(),
                    // Enrolled, but its first receipt number unknown: the
                    // device must not guess it (it would reuse the replaced
                    // one's numbers); a new token is needed.
                    Err(e) => {
                        tracing::warn!("enrolled {} but cannot read its first receipt number: {e}", device.to_hex());
                        format!(
                            "enrolled, but the hub could not read this cash point's first receipt number ({e}): ask the hub for a new token"
                        )
                    }
                }
            }
            Err(e) => {
                tracing::warn!("refused to enrol {}: {e}", device.to_hex());
                e.to_string()
            }
        };
        send.write_all(reply.as_bytes()).await.map_err(AcceptError::from_err)?;
        send.finish()?;
        let _ = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
        Ok(())
    }
}
