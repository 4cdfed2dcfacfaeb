//! Cash points and other devices (hub): enrolment tokens, limits while
//! offline, escrow for charges, revocation.

use saldo_api::cash_points::{
    EnrolmentTokenRequest, EnrolmentTokenResponse, EscrowGrant, EscrowRequest, Limits, LimitsUpdate, RevokeRequest,
};
use saldo_api::payments::Recorded;
use saldo_sync::AuthorId;

use super::{Result, Service, ServiceError};
use crate::net::{EnrolmentToken, PeerAddr};

impl Service {
    /// The addresses this node listened on when it last ran (what an
    /// enrolment token carries of the hub).
    pub async fn listen_addresses(&self) -> Result<Vec<String>> {
        self.read(|node| Ok(node.addresses(crate::node::META_LISTEN)?)).await
    }

    /// A one-time enrolment token for a new cash point (or the replacement
    /// of one, which the token's redemption revokes), carrying the hub's
    /// addresses.
    pub async fn enrolment_token(&self, request: EnrolmentTokenRequest) -> Result<EnrolmentTokenResponse> {
        request.validate()?;
        self.write(move |node| {
            let hub: Vec<PeerAddr> =
                node.addresses(crate::node::META_LISTEN)?.iter().filter_map(|a| a.parse().ok()).collect();
            if hub.is_empty() {
                return Err(ServiceError::conflict(
                    "the hub has never run: start it with `saldo hub` first, so the token can carry its address",
                ));
            }
            let limits = request.limits.to_offline_limits();
            let secret = match request.replaces {
                Some(old) => node.create_replacement_token(&request.name, limits, old)?,
                None => node.create_enrolment_token(&request.name, limits)?,
            };
            let token = EnrolmentToken { realm: node.realm(), hub, secret }.encode();
            Ok(EnrolmentTokenResponse { name: request.name.to_string(), token })
        })
        .await
    }

    /// Revokes `device`: what it records from now on is flagged.
    pub async fn revoke(&self, device: AuthorId, request: RevokeRequest) -> Result<Recorded> {
        self.write(move |node| {
            let op = node.revoke(device, &request.reason)?;
            Ok(Recorded { operation: op.id, recorded_at_ms: op.op.hlc.wall_ms() })
        })
        .await
    }

    /// Changes some of `device`'s limits; returns all of them as they now are.
    pub async fn change_limits(&self, device: AuthorId, update: LimitsUpdate) -> Result<Limits> {
        update.validate()?;
        self.write(move |node| {
            let offline_secs = update.offline_hours.map(|h| h * 3_600);
            let limits = node.change_limits(device, update.per_operation, update.unconfirmed_total, offline_secs)?;
            Ok(Limits::from(limits))
        })
        .await
    }

    /// Lets `device` charge a wallet this much more while offline.
    pub async fn grant_escrow(&self, device: AuthorId, request: EscrowRequest) -> Result<EscrowGrant> {
        self.write(move |node| {
            let op = node.grant_escrow(device, request.wallet.clone().into(), request.amount)?;
            Ok(EscrowGrant { operation: op.id, device, wallet: request.wallet, amount: request.amount })
        })
        .await
    }
}
