//! The ledger rules, as pure functions.
//!
//! [`decide`] is the hub's verdict on one operation from the facts the store
//! gathered about it ([`Facts`]); [`status`] says whether a money operation
//! counts in confirmed and provisional balances given its verdict and its
//! reversals. Neither touches storage, a clock or the network, so the same
//! rules run in the hub, in replicas, in tests and in the simulator.

use saldo_sync::{FlagReason, Label, OpKind, Role, Seq, Verdict, WalletKey};

fn name(wallet: &WalletKey) -> String {
    format!("{}/{}", wallet.consumer.short(), wallet.service)
}

/// What the hub knows about an operation when it decides.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub kind: Option<OpKind>,
    pub author_role: Option<Role>,
    pub seq: Seq,
    pub revoked_after: Option<Seq>,
    pub frozen_at: Option<Seq>,
    /// The operation is on a branch of its author's log other than the one
    /// the hub holds first (a device restored from an older copy, or cloned).
    pub second_branch: bool,
    /// Its receipt number, for what a reviewer is told.
    pub receipt: Option<u64>,
    /// The author's per-operation limit (cash points and school devices), in cents.
    pub per_operation_limit_minor: Option<i64>,
    /// The operation's total, in cents.
    pub total_minor: i64,
    pub lines: Vec<LineFacts>,
    /// The receipt is not above the highest the device used before it
    /// (devices number receipts in the order of their log).
    pub duplicate_receipt: bool,
    pub duplicate_reference: bool,
    /// For a device's charge: what its allowance on the wallet still covers, in cents.
    pub escrow_remaining_minor: Option<i64>,
    pub reversal: Option<ReversalFacts>,
    pub close: Option<CloseFacts>,
    /// For a device's operation: its offline limits, checked against what
    /// it held of the hub's log when it recorded.
    pub offline: Option<OfflineFacts>,
}

/// A device's operation against its offline limits. The device refuses to
/// record beyond them; these let the hub flag what a device recorded
/// anyway (altered software, a clock turned back).
#[derive(Debug, Clone)]
pub struct OfflineFacts {
    pub unconfirmed_limit_minor: i64,
    pub offline_limit_secs: u32,
    /// The hub seq the device said it held.
    pub hub_seen: Seq,
    /// What the device had recorded that the hub had not decided by its
    /// operation `hub_seen`, in cents.
    pub unconfirmed_before_minor: i64,
    /// How long after the hub wrote its operation `hub_seen` the device
    /// recorded, in ms; `None` when that operation does not exist (yet).
    pub offline_ms: Option<u64>,
}

/// One wallet an operation touches.
#[derive(Debug, Clone)]
pub struct LineFacts {
    pub wallet: WalletKey,
    pub consumer_known: bool,
    pub enrolled: bool,
    /// The confirmed balance, less what devices may still debit offline
    /// (their allowances are reserved), for debits not bound by one.
    pub confirmed_minor: i64,
    pub floor_minor: i64,
    pub delta_minor: i64,
}

#[derive(Debug, Clone)]
pub struct ReversalFacts {
    pub target_found: bool,
    pub target_is_top_up: bool,
    pub same_author: bool,
    pub already_reversed: bool,
    pub receipt_closed: bool,
}

#[derive(Debug, Clone)]
pub struct CloseFacts {
    pub declared_count: Option<u64>,
    pub declared_minor: i64,
    pub counted: u64,
    pub counted_minor: i64,
}

fn flag(reason: FlagReason, detail: impl AsRef<str>) -> Verdict {
    let text = detail.as_ref();
    let detail = Label::parse(text)
        .or_else(|_| Label::parse(&text.chars().take(Label::CHARS_MAX).collect::<String>()))
        .unwrap_or_else(|_| Label::parse(reason.describe()).expect("reason descriptions are labels"));
    Verdict::Flagged { reason, detail }
}

fn cents(minor: i64) -> String {
    rust_decimal::Decimal::new(minor, 2).to_string()
}

/// Operations that take or give a wallet's money: what a device's offline
/// limits (per operation, unconfirmed total, time offline) bound.
pub fn offline_limits_apply(kind: OpKind) -> bool {
    matches!(kind, OpKind::TopUp | OpKind::DuePayment | OpKind::ServiceCharge | OpKind::Transfer | OpKind::Refund)
}

/// May a device of `role` record operations of `kind`?
pub fn role_may_record(role: Role, kind: OpKind) -> bool {
    match role {
        Role::Hub => true,
        Role::CashPoint => matches!(
            kind,
            OpKind::TopUp | OpKind::DuePayment | OpKind::Reversal | OpKind::Remittance | OpKind::DailyClose
        ),
        Role::SchoolDevice => matches!(kind, OpKind::ServiceCharge),
        Role::HubContacts => false,
    }
}

/// The hub's verdict on an operation that needs one (DESIGN.md, "Operations
/// on money"). Cash taken is real money: a broken rule flags, never drops.
pub fn decide(facts: &Facts) -> Verdict {
    let Some(kind) = facts.kind else {
        return flag(FlagReason::RoleNotAllowed, "not an operation on money");
    };
    let Some(role) = facts.author_role else {
        return flag(FlagReason::RoleNotAllowed, "unknown device");
    };
    if let Some(last_seen) = facts.revoked_after
        && facts.seq > last_seen
    {
        return flag(FlagReason::RevokedAuthor, format!("operation #{} after revocation at #{}", facts.seq, last_seen));
    }
    if let Some(at) = facts.frozen_at {
        // Within a label's 60 characters: the receipt and what happened.
        let receipt = facts.receipt.map_or(String::new(), |r| format!("receipt {r}, "));
        return flag(
            FlagReason::FrozenAuthor,
            if facts.second_branch {
                format!("{receipt}#{}: on a second branch (restored copy?)", facts.seq)
            } else {
                format!("{receipt}#{}: after the log forked at #{at}", facts.seq)
            },
        );
    }
    if !role_may_record(role, kind) {
        return flag(FlagReason::RoleNotAllowed, format!("a {} may not record a {}", role.name(), kind.name()));
    }
    if let Some(limit) = facts.per_operation_limit_minor
        && facts.total_minor > limit
        && role != Role::Hub
        && offline_limits_apply(kind)
    {
        return flag(
            FlagReason::OverOperationLimit,
            format!(
                "{} EUR is over the device's limit of {} EUR per operation",
                cents(facts.total_minor),
                cents(limit)
            ),
        );
    }
    if let Some(offline) = facts.offline.as_ref().filter(|_| role != Role::Hub && offline_limits_apply(kind)) {
        let limit_ms = u64::from(offline.offline_limit_secs) * 1000;
        match offline.offline_ms {
            None if offline.hub_seen == Seq(0) => {
                return flag(FlagReason::OfflineTooLong, "the device recorded without holding any of the hub's log");
            }
            None => {
                return flag(
                    FlagReason::OfflineTooLong,
                    format!(
                        "the device says it held the hub's log up to #{}, which the hub had not written",
                        offline.hub_seen
                    ),
                );
            }
            Some(ms) if ms > limit_ms => {
                return flag(
                    FlagReason::OfflineTooLong,
                    format!(
                        "recorded {} h {} min after the newest hub operation the device held (#{}), over its limit of {} h",
                        ms / 3_600_000,
                        ms % 3_600_000 / 60_000,
                        offline.hub_seen,
                        offline.offline_limit_secs / 3600
                    ),
                );
            }
            Some(_) => {}
        }
        if offline.unconfirmed_before_minor + facts.total_minor > offline.unconfirmed_limit_minor {
            return flag(
                FlagReason::OverUnconfirmedLimit,
                format!(
                    "{} EUR awaited the hub's verdict when the device recorded {} EUR more: over its limit of {} EUR",
                    cents(offline.unconfirmed_before_minor),
                    cents(facts.total_minor),
                    cents(offline.unconfirmed_limit_minor)
                ),
            );
        }
    }
    for line in &facts.lines {
        if !line.consumer_known {
            return flag(FlagReason::UnknownConsumer, format!("wallet {}", name(&line.wallet)));
        }
        if !line.enrolled {
            return flag(FlagReason::NotEnrolledInService, format!("wallet {}", name(&line.wallet)));
        }
    }
    if facts.duplicate_receipt {
        return flag(
            FlagReason::DuplicateReceipt,
            "the receipt number is not above the device's last one: used already, or out of order",
        );
    }
    match kind {
        OpKind::DuePayment if facts.duplicate_reference => {
            return flag(
                FlagReason::DuplicateDuePayment,
                "this due was already paid: accept in review to keep it as credit",
            );
        }
        OpKind::ServiceCharge if facts.duplicate_reference => {
            return flag(FlagReason::DuplicateCharge, "a charge with the same reference was already recorded");
        }
        _ => {}
    }
    if let Some(remaining) = facts.escrow_remaining_minor {
        // A device's debit is bound by the allowance the hub reserved for it,
        // not by the balance (which other devices may be debiting offline).
        if facts.total_minor > remaining {
            return flag(
                FlagReason::OverEscrow,
                format!(
                    "{} EUR is over what is left of the device's allowance on this wallet ({} EUR)",
                    cents(facts.total_minor),
                    cents(remaining.max(0))
                ),
            );
        }
        return Verdict::Accepted;
    }
    for line in facts.lines.iter().filter(|l| l.delta_minor < 0) {
        let after = line.confirmed_minor + line.delta_minor;
        match kind {
            OpKind::ServiceCharge if after < line.floor_minor => {
                return flag(
                    FlagReason::BelowFloor,
                    format!(
                        "wallet {} would go to {} EUR, below its floor of {} EUR",
                        name(&line.wallet),
                        cents(after),
                        cents(line.floor_minor)
                    ),
                );
            }
            OpKind::Transfer | OpKind::Refund if after < 0 => {
                return flag(
                    FlagReason::InsufficientFunds,
                    format!("wallet {} holds {} EUR", name(&line.wallet), cents(line.confirmed_minor)),
                );
            }
            _ => {}
        }
    }
    if let Some(reversal) = &facts.reversal {
        let refuse = |why: &str| flag(FlagReason::ReversalNotAllowed, why);
        if !reversal.target_found {
            return refuse("the reversed operation is not known to the hub");
        }
        if !reversal.target_is_top_up {
            return refuse("only top-ups can be reversed");
        }
        if !reversal.same_author {
            return refuse("only the cash point that recorded a top-up can reverse it");
        }
        if reversal.already_reversed {
            return refuse("the top-up was already reversed");
        }
        if reversal.receipt_closed {
            return refuse("the top-up's receipt is in a day already closed");
        }
    }
    if let Some(close) = &facts.close {
        let count_ok = close.declared_count.is_none_or(|n| n == close.counted);
        if !count_ok || close.declared_minor != close.counted_minor {
            return flag(
                FlagReason::CloseMismatch,
                format!(
                    "declared {} receipts for {} EUR, the hub counts {} for {} EUR",
                    close.declared_count.map_or("-".to_string(), |n| n.to_string()),
                    cents(close.declared_minor),
                    close.counted,
                    cents(close.counted_minor)
                ),
            );
        }
    }
    Verdict::Accepted
}

/// A wallet that an operation awaiting review moves, as the hub sees it
/// when an operator reviews the operation.
#[derive(Debug, Clone)]
pub struct ReviewLine {
    pub wallet: WalletKey,
    /// The wallet's confirmed balance now, in cents. A flagged operation
    /// does not count, so this is the balance without it.
    pub confirmed_minor: i64,
    /// The lowest balance this operation may leave there, in cents: the
    /// service's floor for a charge, zero for a transfer or a refund.
    pub floor_minor: i64,
    pub delta_minor: i64,
    /// What devices' allowances may still charge there once the operation
    /// counts, in cents: reserved, so the hub's own debits leave it be
    /// (invariant 10), and so does an acceptance in review.
    pub reserved_minor: i64,
}

/// A wallet that accepting an operation in review takes below its floor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BelowFloor {
    pub wallet: WalletKey,
    /// The confirmed balance once the operation counts, in cents.
    pub after_minor: i64,
    /// What devices may still charge there on top, in cents.
    pub reserved_minor: i64,
    pub floor_minor: i64,
}

impl BelowFloor {
    /// How far below its floor the wallet goes, reservations charged, in
    /// cents (always above zero).
    pub fn short_minor(&self) -> i64 {
        self.floor_minor - (self.after_minor - self.reserved_minor)
    }
}

/// What accepting an operation in review does to its wallets: accepting
/// makes it count, so each wallet moves from its confirmed balance by the
/// operation's deltas there, and devices may still charge what is reserved
/// for them. Returns the wallets that can then end below their floor, which
/// an operator must see and confirm a second time. A wallet already below
/// its floor is named only if the operation takes from it.
pub fn below_floor_if_accepted(lines: &[ReviewLine]) -> Vec<BelowFloor> {
    let mut out: Vec<BelowFloor> = Vec::new();
    let mut seen: Vec<&WalletKey> = Vec::new();
    for line in lines {
        if seen.contains(&&line.wallet) {
            continue;
        }
        seen.push(&line.wallet);
        let same = || lines.iter().filter(|l| l.wallet == line.wallet);
        let delta: i64 = same().map(|l| l.delta_minor).sum();
        let floor = same().map(|l| l.floor_minor).max().unwrap_or(line.floor_minor);
        let after = line.confirmed_minor + delta;
        let reserved = line.reserved_minor.max(0);
        if delta < 0 && after - reserved < floor {
            out.push(BelowFloor {
                wallet: line.wallet.clone(),
                after_minor: after,
                reserved_minor: reserved,
                floor_minor: floor,
            });
        }
    }
    out
}

/// What a node knows about a money operation to say whether it counts.
#[derive(Debug, Clone, Copy)]
pub struct StatusInput {
    /// The effective verdict counts (accepted, or accepted in review). An
    /// operation of the hub itself is accepted by being recorded.
    pub accepted: bool,
    /// No verdict is held yet.
    pub pending: bool,
    /// Recorded by this node.
    pub own: bool,
    /// Is a reversal (which moves nothing itself).
    pub is_reversal: bool,
    /// A counted reversal of this operation is held.
    pub reversed: bool,
    /// A reversal of this operation counts provisionally on this node.
    pub reversed_provisionally: bool,
}

/// (counts in confirmed balances, counts in this node's provisional balances).
pub fn status(input: StatusInput) -> (bool, bool) {
    let provisional_base = input.accepted || (input.own && input.pending);
    if input.is_reversal {
        return (input.accepted, provisional_base);
    }
    (input.accepted && !input.reversed, provisional_base && !input.reversed_provisionally)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top_up_facts() -> Facts {
        Facts {
            kind: Some(OpKind::TopUp),
            author_role: Some(Role::CashPoint),
            seq: Seq(5),
            per_operation_limit_minor: Some(50_000),
            total_minor: 1_000,
            lines: vec![LineFacts {
                wallet: WalletKey {
                    consumer: saldo_sync::ConsumerId([1; 16]),
                    service: saldo_sync::ServiceId::parse("mensa").unwrap(),
                },
                consumer_known: true,
                enrolled: true,
                confirmed_minor: 0,
                floor_minor: 0,
                delta_minor: 1_000,
            }],
            ..Facts::default()
        }
    }

    fn reason(verdict: Verdict) -> Option<FlagReason> {
        match verdict {
            Verdict::Flagged { reason, .. } => Some(reason),
            _ => None,
        }
    }

    #[test]
    fn a_plain_top_up_is_accepted() {
        assert_eq!(decide(&top_up_facts()), Verdict::Accepted);
    }

    #[test]
    fn broken_rules_flag_with_their_reason() {
        let check = |edit: &dyn Fn(&mut Facts), expected: FlagReason| {
            let mut facts = top_up_facts();
            edit(&mut facts);
            assert_eq!(reason(decide(&facts)), Some(expected));
        };
        check(&|f| f.revoked_after = Some(Seq(4)), FlagReason::RevokedAuthor);
        check(&|f| f.frozen_at = Some(Seq(2)), FlagReason::FrozenAuthor);
        check(&|f| f.author_role = Some(Role::SchoolDevice), FlagReason::RoleNotAllowed);
        check(&|f| f.total_minor = 50_001, FlagReason::OverOperationLimit);
        check(&|f| f.lines[0].consumer_known = false, FlagReason::UnknownConsumer);
        check(&|f| f.lines[0].enrolled = false, FlagReason::NotEnrolledInService);
        check(&|f| f.duplicate_receipt = true, FlagReason::DuplicateReceipt);
        check(
            &|f| {
                f.kind = Some(OpKind::ServiceCharge);
                f.author_role = Some(Role::SchoolDevice);
                f.lines[0].delta_minor = -6_000;
                f.lines[0].floor_minor = -5_000;
            },
            FlagReason::BelowFloor,
        );
        check(
            &|f| {
                f.kind = Some(OpKind::Refund);
                f.author_role = Some(Role::Hub);
                f.lines[0].delta_minor = -1;
            },
            FlagReason::InsufficientFunds,
        );
    }

    /// An operator accepting a flagged charge in review is told when it takes
    /// the wallet below its floor, and by how much.
    #[test]
    fn accepting_a_charge_in_review_names_the_wallets_it_takes_below_their_floor() {
        let wallet = WalletKey {
            consumer: saldo_sync::ConsumerId([1; 16]),
            service: saldo_sync::ServiceId::parse("mensa").unwrap(),
        };
        let line = |confirmed_minor, delta_minor| ReviewLine {
            wallet: wallet.clone(),
            confirmed_minor,
            floor_minor: -5_000,
            delta_minor,
            reserved_minor: 0,
        };
        // -45.00 less 17.00 is -62.00: 12.00 below the floor of -50.00.
        let below = below_floor_if_accepted(&[line(-4_500, -1_700)]);
        assert_eq!(
            below,
            vec![BelowFloor { wallet: wallet.clone(), after_minor: -6_200, reserved_minor: 0, floor_minor: -5_000 }]
        );
        assert_eq!(below[0].short_minor(), 1_200);
        // Above the floor, but not once devices charge the 10.00 reserved for them.
        let reserved = ReviewLine { reserved_minor: 1_000, ..line(-3_000, -1_500) };
        let below = below_floor_if_accepted(&[reserved]);
        assert_eq!((below[0].after_minor, below[0].short_minor()), (-4_500, 500));
        // Down to the floor exactly is within it; a credit never goes below.
        assert!(below_floor_if_accepted(&[line(-4_500, -500)]).is_empty());
        assert!(below_floor_if_accepted(&[line(-9_000, 100)]).is_empty());
        // Two lines on one wallet add up.
        assert_eq!(below_floor_if_accepted(&[line(0, -3_000), line(0, -3_000)])[0].after_minor, -6_000);
    }

    #[test]
    fn a_revoked_device_keeps_what_it_recorded_before_revocation() {
        let mut facts = top_up_facts();
        facts.revoked_after = Some(Seq(5));
        assert_eq!(decide(&facts), Verdict::Accepted);
    }

    #[test]
    fn reversals_stop_their_target_from_counting() {
        let base = StatusInput {
            accepted: true,
            pending: false,
            own: false,
            is_reversal: false,
            reversed: false,
            reversed_provisionally: false,
        };
        assert_eq!(status(base), (true, true));
        assert_eq!(status(StatusInput { reversed: true, reversed_provisionally: true, ..base }), (false, false));
        let own_pending = StatusInput { accepted: false, pending: true, own: true, ..base };
        assert_eq!(status(own_pending), (false, true));
        assert_eq!(status(StatusInput { own: false, ..own_pending }), (false, false));
    }
}
