//! A device's own log, whole before it records. A device restored from an
//! older copy of its data directory (a backup, a VM snapshot, a cloned disk)
//! holds less of its own log than the hub does: if it recorded now, its next
//! operation would take a sequence number already used, and its key would
//! fork. So it records nothing until it holds what the hub or a peer holds of
//! its log (the hub sends a device its own log, so a sync fetches it back):
//!
//! - at the start of `saldo cashpoint`, recording is held for at most
//!   [`OWN_LOG_CHECK_MS`] while the node tries to reach the hub or a peer; a
//!   hello from either ends the hold (offline, the window passes: nothing can
//!   be known, and recording goes on);
//! - a hello that shows the peer holding more of this device's log than it
//!   has stores the seq to reach; recording is refused below it;
//! - `saldo restore` marks the copy, so that nothing is recorded on it before
//!   the node has been started once;
//! - a device whose log forked anyway (its own author row is frozen) records
//!   nothing more and says how to go on: enrol again under a new key, whose
//!   receipt numbers continue after the old one's (`saldo enroll --replaces`).
//!
//! All of it lives in `meta`, so a `saldo topup` in another process on the
//! same data directory obeys it too.

use saldo_sync::reconcile::Session;
use saldo_sync::{AuthorId, Body, Label, OfflineLimits, ReceiptNo, Seq};

use super::{Me, Node, NodeError, PendingEnrolment, Result, token_key};
use crate::store::Tx;

/// How long a device that just started holds recording while it tries to
/// reach the hub or a peer, to learn whether they hold more of its own log.
pub const OWN_LOG_CHECK_MS: u64 = 10_000;

/// Until when (ms since the epoch, u64 LE) recording is held at start.
const META_OWN_LOG_CHECK_UNTIL: &str = "own_log_check_until_ms";
/// The seq of its own log a peer holds and this device does not (u64 LE),
/// then 1 if that peer is the hub.
const META_OWN_LOG_BEHIND: &str = "own_log_behind";
/// Set by `saldo restore`; cleared when the node starts.
const META_RESTORED: &str = "restored_from_backup";
/// On a device enrolled in place of another: the highest receipt number the
/// hub held of the replaced device (u64 LE); its own receipts start above it.
const META_RECEIPTS_AFTER: &str = "receipts_after";
/// On the hub, per enrolment token: the device the new one replaces.
const META_REPLACES: &str = "enrolment_replaces:";
/// On the hub, per device enrolled in place of another: the receipt number
/// its receipts start above (so a replacement of a replacement continues).
const META_RECEIPT_BASE: &str = "receipt_base:";

fn read_u64(bytes: Option<Vec<u8>>) -> Option<u64> {
    bytes.and_then(|b| b.get(..8).and_then(|b| b.try_into().ok())).map(u64::from_le_bytes)
}

/// What holds this device's recording back, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnLogHold {
    /// Its log forked at this seq: it records nothing more.
    Forked { at: Seq },
    /// A peer holds its log up to `peer_holds`; it holds `held`.
    Fetching { held: Seq, peer_holds: Seq, from_hub: bool },
    /// Just started: checking with the hub, for at most this long.
    Checking { ms_left: u64 },
    /// Restored from a backup and not started since.
    Restored,
}

impl OwnLogHold {
    pub fn error(&self, device: &AuthorId) -> NodeError {
        match *self {
            OwnLogHold::Forked { at } => NodeError::Forked { at: at.0, device: device.to_hex() },
            OwnLogHold::Fetching { held, peer_holds, from_hub } => NodeError::FetchingOwnLog {
                held: held.0,
                peer_holds: peer_holds.0,
                holder: if from_hub { "the hub" } else { "a neighbouring device" },
            },
            OwnLogHold::Checking { ms_left } => NodeError::CheckingOwnLog { seconds_left: ms_left.div_ceil(1000) },
            OwnLogHold::Restored => NodeError::RestoredNotStarted,
        }
    }

    /// One line for `saldo status`.
    pub fn describe(&self, device: &AuthorId) -> String {
        match *self {
            OwnLogHold::Forked { .. } => self.error(device).to_string(),
            OwnLogHold::Fetching { held, peer_holds, from_hub } => format!(
                "fetching {} own operations back from {} (this copy holds its log up to #{}, {} holds #{}); recording waits",
                peer_holds.0 - held.0,
                if from_hub { "the hub" } else { "a neighbouring device" },
                held.0,
                if from_hub { "the hub" } else { "it" },
                peer_holds.0
            ),
            OwnLogHold::Checking { ms_left } => format!(
                "checking this device's log with the hub; recording waits (at most {} s more)",
                ms_left.div_ceil(1000)
            ),
            OwnLogHold::Restored => {
                "restored from a backup: start it online (`saldo cashpoint`) before recording".to_string()
            }
        }
    }
}

impl Me {
    /// What holds this device's recording back, as of `tx`: the hub is never held.
    pub(super) fn own_log_hold(&self, tx: &Tx<'_>) -> Result<Option<OwnLogHold>> {
        let Some(me) = self.ctx.own.filter(|_| !self.ctx.is_hub()) else {
            return Ok(None);
        };
        let row = tx.author(&me)?;
        if let Some(at) = row.as_ref().and_then(|r| r.frozen_at) {
            return Ok(Some(OwnLogHold::Forked { at }));
        }
        let held = row.as_ref().map_or(Seq(0), |r| r.head_seq);
        if let Some(bytes) = tx.meta(META_OWN_LOG_BEHIND)?
            && let Some(peer_holds) = read_u64(Some(bytes.clone()))
            && peer_holds > held.0
        {
            let from_hub = bytes.get(8) == Some(&1);
            return Ok(Some(OwnLogHold::Fetching { held, peer_holds: Seq(peer_holds), from_hub }));
        }
        if tx.meta(META_RESTORED)?.is_some() {
            return Ok(Some(OwnLogHold::Restored));
        }
        if let Some(until) = read_u64(tx.meta(META_OWN_LOG_CHECK_UNTIL)?) {
            let ms_left = until.saturating_sub(self.clock.now_ms());
            // A window longer than the limit was set by a clock that has
            // gone back since: it is over.
            if ms_left > 0 && ms_left <= OWN_LOG_CHECK_MS {
                return Ok(Some(OwnLogHold::Checking { ms_left }));
            }
        }
        Ok(None)
    }

    /// Refuses to record while this device's own log may be incomplete, or
    /// once it forked.
    /// In the record path's write transaction: what was to be fetched back
    /// and is here is forgotten with the operation recorded.
    pub(super) fn check_own_log(&self, tx: &Tx<'_>) -> Result<()> {
        match (self.own_log_hold(tx)?, self.ctx.own) {
            (Some(hold), Some(me)) => Err(hold.error(&me)),
            _ => {
                tx.delete_meta(META_OWN_LOG_BEHIND)?;
                Ok(())
            }
        }
    }

    /// The receipt number of this device's next top-up: above every one it
    /// used, and above the replaced device's when it was enrolled in its place.
    pub(super) fn next_receipt(&self, tx: &Tx<'_>, author: &AuthorId) -> Result<ReceiptNo> {
        let last = tx.last_receipt(author)?.map_or(0, |r| r.0);
        let after = read_u64(tx.meta(META_RECEIPTS_AFTER)?).unwrap_or(0);
        Ok(ReceiptNo(last.max(after) + 1))
    }

    /// On the hub, as a token is redeemed by `device`: if the token replaces
    /// another device, the receipt number `device`'s receipts start above
    /// (the highest the hub holds of the replaced device, forks and evidence
    /// included), remembered for a later replacement of `device`.
    pub(super) fn settle_replacement(&self, tx: &Tx<'_>, token: &str, device: &AuthorId) -> Result<Option<u64>> {
        let key = format!("{META_REPLACES}{token}");
        let Some(replaced) = tx.meta(&key)?.and_then(|b| AuthorId::from_slice(&b)) else {
            return Ok(None);
        };
        tx.delete_meta(&key)?;
        let base = receipt_base(tx, &replaced)?;
        tx.set_meta(&format!("{META_RECEIPT_BASE}{}", device.to_hex()), &base.to_le_bytes())?;
        Ok(Some(base))
    }
}

/// The receipt number a device replacing `replaced` starts above.
fn receipt_base(tx: &Tx<'_>, replaced: &AuthorId) -> Result<u64> {
    let held = tx.receipt_max_held(replaced)?;
    let inherited = read_u64(tx.meta(&format!("{META_RECEIPT_BASE}{}", replaced.to_hex()))?).unwrap_or(0);
    Ok(held.max(inherited))
}

impl Node {
    /// What holds this device's recording back now, if anything (`saldo status`).
    pub fn own_log_hold(&mut self) -> Result<Option<OwnLogHold>> {
        let tx = self.store.read()?;
        self.me.own_log_hold(&tx)
    }

    /// As a device's node starts: holds recording for at most
    /// [`OWN_LOG_CHECK_MS`], until a hello from the hub or a peer shows
    /// whether they hold more of this device's log.
    pub fn begin_own_log_check(&mut self) -> Result<()> {
        if self.me.ctx.is_hub() || self.me.ctx.own.is_none() {
            return Ok(());
        }
        let until = self.me.clock.now_ms() + OWN_LOG_CHECK_MS;
        let tx = self.store.write()?;
        tx.set_meta(META_OWN_LOG_CHECK_UNTIL, &until.to_le_bytes())?;
        tx.delete_meta(META_RESTORED)?;
        self.me.commit(tx)?;
        Ok(())
    }

    /// Marks a copy restored from a backup: it records nothing before its node has started.
    pub fn mark_restored(&mut self) -> Result<()> {
        if self.me.ctx.is_hub() {
            return Ok(());
        }
        let tx = self.store.write()?;
        tx.set_meta(META_RESTORED, &[1])?;
        self.me.commit(tx)?;
        Ok(())
    }

    /// After a hello from `peer`: ends the hold of the start, and if the
    /// peer holds more of this device's own log than it has, holds recording
    /// until that much is fetched back. Returns (held, the peer's) then.
    pub fn note_peer_holds_own_log(&mut self, peer: AuthorId, session: &Session) -> Result<Option<(Seq, Seq)>> {
        let Some(me) = self.me.ctx.own.filter(|_| !self.me.ctx.is_hub()) else {
            return Ok(None);
        };
        let Some(theirs) = session.peer_frontier() else { return Ok(None) };
        let theirs = theirs.0.get(&me).map_or(Seq(0), |entry| entry.seq);
        let from_hub = peer == self.me.ctx.realm.hub();
        // Read first: most hellos change nothing here, and a write
        // transaction costs a sync of the disk.
        let (held, stored, holding) = {
            let tx = self.store.read()?;
            let held = tx.author(&me)?.map_or(Seq(0), |a| a.head_seq);
            let stored = read_u64(tx.meta(META_OWN_LOG_BEHIND)?).unwrap_or(0);
            let holding = tx.meta(META_OWN_LOG_CHECK_UNTIL)?.is_some() || tx.meta(META_RESTORED)?.is_some();
            (held, stored, holding)
        };
        let behind = theirs > held;
        let raise = behind && theirs.0 > stored.max(held.0);
        // Reached; or the hub, which holds every operation that reached it,
        // holds no more: a neighbour that said more (wrongly, or a branch
        // of a fork the hub will judge) no longer holds recording back.
        let reached = !behind && stored != 0 && (stored <= held.0 || from_hub);
        if raise || reached || holding {
            let tx = self.store.write()?;
            if raise {
                let mut value = theirs.0.to_le_bytes().to_vec();
                value.push(u8::from(from_hub));
                tx.set_meta(META_OWN_LOG_BEHIND, &value)?;
            } else if reached {
                tx.delete_meta(META_OWN_LOG_BEHIND)?;
            }
            tx.delete_meta(META_OWN_LOG_CHECK_UNTIL)?;
            tx.delete_meta(META_RESTORED)?;
            self.me.commit(tx)?;
        }
        Ok(behind.then_some((held, theirs)))
    }

    /// On a device enrolled in place of another: its receipts start above `after`.
    pub fn set_receipts_after(&mut self, after: u64) -> Result<()> {
        let tx = self.store.write()?;
        tx.set_meta(META_RECEIPTS_AFTER, &after.to_le_bytes())?;
        self.me.commit(tx)?;
        Ok(())
    }

    /// On the hub: the receipt number `device`'s receipts start above, when
    /// it was enrolled in place of another device.
    pub fn receipt_base_of(&mut self, device: &AuthorId) -> Result<Option<u64>> {
        let tx = self.store.read()?;
        Ok(read_u64(tx.meta(&format!("{META_RECEIPT_BASE}{}", device.to_hex()))?))
    }

    /// On the hub: a one-time token that enrols a new cash point in place of
    /// `replaces` (a device whose log forked, or lost): the old device is
    /// revoked (if it is not already), in the same transaction, and the new
    /// one's receipt numbers continue after the highest the hub holds of it
    /// when the token is redeemed.
    pub fn create_replacement_token(
        &mut self,
        name: &Label,
        limits: OfflineLimits,
        replaces: AuthorId,
    ) -> Result<[u8; 32]> {
        let key = self.me.hub_key("enrol devices")?;
        if replaces == self.me.ctx.realm.hub() {
            return Err(NodeError::Refused("the hub cannot be replaced by a cash point".into()));
        }
        let mut tx = self.store.write()?;
        let row = tx.author(&replaces)?.ok_or_else(|| NodeError::UnknownDevice(replaces.to_hex()))?;
        if row.role == saldo_sync::Role::HubContacts {
            return Err(NodeError::Refused("the hub's contacts key cannot be replaced by a cash point".into()));
        }
        if row.revoked_after.is_none() {
            let reason = Label::parse("replaced by a new enrolment").expect("a valid label");
            self.me.author(&mut tx, key, Body::Revoke { device: replaces, last_seq_seen: row.head_seq, reason })?;
        }
        let secret = saldo_sync::DeviceKey::generate().secret_bytes();
        let pending = PendingEnrolment { name: name.clone(), limits, created_ms: self.me.clock.now_ms() };
        let token = token_key(&secret);
        tx.set_meta(&token, &postcard::to_stdvec(&pending).expect("encoding to a Vec"))?;
        tx.set_meta(&format!("{META_REPLACES}{token}"), &replaces.0)?;
        self.me.commit(tx)?;
        Ok(secret)
    }
}
