//! The operation: Saldo's unit of truth.
//!
//! An operation is `(author, seq, prev, hlc, hub_seen, body)`, encoded canonically
//! (a format version byte, then the postcard encoding of [`Operation`]), named
//! by the BLAKE3 hash of those bytes ([`OpId`]) and signed by its author with
//! ed25519 over domain-separated bytes that also bind the realm:
//!
//! ```text
//! signed op (storage and wire)              signed message (80 bytes)
//! +---------+----------------+-----------+   +------------------+----------+-------+
//! | version | postcard(op)   | signature |   | SIGNATURE_CONTEXT| realm id | op id |
//! | 1 byte  | variable       | 64 bytes  |   | 16 bytes         | 32 bytes | 32 B  |
//! +---------+----------------+-----------+   +------------------+----------+-------+
//! op id = BLAKE3 derive_key("saldo op id v1", version || postcard(op))
//! ```
//!
//! Decoding never panics and is bounded: at most [`OP_BYTES_MAX`] bytes, every
//! vector and string bounded by its type or by [`Body::check_limits`], and the
//! bytes must be the canonical encoding of what they decode to (re-encoding
//! gives them back), so one operation has exactly one id.
//! The design follows signed append-only logs (Secure Scuttlebutt, Hypercore):
//! per-author hash chains, equivocation as a detectable fork.

use std::collections::HashMap;
use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::hlc::Hlc;
use crate::ids::{AuthorId, ConsumerId, FamilyId, OpId, RealmId, ReceiptNo, ReceiptRange, Seq};
use crate::operator::{OperatorAccount, OperatorRole, PASSWORD_HASH_PREFIX};
use crate::values::{Amount, Balance, Label, ServiceId};

/// The encoding version written as the first byte of every operation.
pub const OP_FORMAT_VERSION: u8 = 2;
/// Largest encoded operation (without its signature).
pub const OP_BYTES_MAX: usize = 64 * 1024;
pub const SIGNATURE_BYTES: usize = 64;
/// Largest signed operation as stored or sent.
pub const SIGNED_OP_BYTES_MAX: usize = OP_BYTES_MAX + SIGNATURE_BYTES;
/// Domain separation: these bytes start every signed message, so an operation
/// signature can never be confused with any other use of the device key.
pub const SIGNATURE_CONTEXT: &[u8; 16] = b"saldo/op/sig/v1\0";
const OP_ID_CONTEXT: &str = "saldo op id v1";
/// Most wallet lines on one top-up receipt.
pub const TOPUP_LINES_MAX: usize = 16;
/// Most verdicts in one hub decision operation.
pub const VERDICTS_PER_OP_MAX: usize = 1024;
/// Most wallets in one balance checkpoint operation.
pub const CHECKPOINT_WALLETS_MAX: usize = 1024;
/// Largest Automerge change carried by one directory operation.
pub const DIRECTORY_CHANGE_BYTES_MAX: usize = 48 * 1024;

/// What a device is allowed to author.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// The realm's authority: every kind of operation, and the decisions.
    Hub,
    /// A shop, pharmacy or office (*esercente*): top-ups, payments of dues,
    /// reversals of its own top-ups, remittances, daily closes.
    CashPoint,
    /// A school device (canteen tablet): service charges.
    SchoolDevice,
    /// The hub's second key for contact data (e-mail, phone), whose log never
    /// leaves the hub: cash points replicate only what identification needs.
    HubContacts,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Hub => "hub",
            Role::CashPoint => "cash point",
            Role::SchoolDevice => "school device",
            Role::HubContacts => "hub contacts",
        }
    }
}

/// Limits the hub grants a device for the time it works without contact, as
/// payment terminals' store-and-forward limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OfflineLimits {
    /// Largest single operation recorded while unconfirmed.
    pub per_operation: Amount,
    /// Largest total of unconfirmed operations.
    pub unconfirmed_total: Balance,
    /// Longest time since the last contact with the hub, in seconds.
    pub offline_secs_max: u32,
}

impl OfflineLimits {
    pub fn default_for_cash_point() -> OfflineLimits {
        OfflineLimits {
            per_operation: Amount::from_minor(50_000).expect("500.00 is a valid amount"),
            unconfirmed_total: Balance::from_minor(500_000).expect("5000.00 is a valid balance"),
            offline_secs_max: 7 * 24 * 3600,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PaymentMethod {
    Cash,
    DebitCard,
    CreditCard,
    Other,
}

impl PaymentMethod {
    pub fn name(self) -> &'static str {
        match self {
            PaymentMethod::Cash => "cash",
            PaymentMethod::DebitCard => "debit-card",
            PaymentMethod::CreditCard => "credit-card",
            PaymentMethod::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<PaymentMethod> {
        match text.trim().to_lowercase().as_str() {
            "cash" | "contanti" => Some(PaymentMethod::Cash),
            "debit-card" | "debit" | "bancomat" => Some(PaymentMethod::DebitCard),
            "credit-card" | "credit" | "carta" => Some(PaymentMethod::CreditCard),
            "other" | "altro" => Some(PaymentMethod::Other),
            _ => None,
        }
    }
}

/// One wallet: a consumer's balance for one service category.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WalletKey {
    pub consumer: ConsumerId,
    pub service: ServiceId,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TopUpLine {
    pub wallet: WalletKey,
    pub amount: Amount,
}

/// A top-up (*ricarica*): one receipt, one or more wallet lines, one method.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TopUp {
    pub receipt: ReceiptNo,
    pub lines: Vec<TopUpLine>,
    pub method: PaymentMethod,
    pub operator: Option<Label>,
}

/// Payment of a due (*pagamento*), for example a quarterly bus fee: credits
/// the wallet (an overpayment stays as credit); idempotent per due.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DuePayment {
    pub due: Label,
    pub receipt: ReceiptNo,
    pub wallet: WalletKey,
    pub amount: Amount,
    pub method: PaymentMethod,
    pub operator: Option<Label>,
}

/// A service charge (a meal, a fee): debits the wallet, down to its floor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceCharge {
    /// The author's unique reference for this charge (a second charge with the
    /// same reference is a duplicate).
    pub reference: Label,
    pub wallet: WalletKey,
    pub amount: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transfer {
    pub from: WalletKey,
    pub to: WalletKey,
    pub amount: Amount,
    pub note: Label,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Refund {
    pub wallet: WalletKey,
    pub amount: Amount,
    pub method: PaymentMethod,
    pub note: Label,
}

/// Why the hub flagged an operation for review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FlagReason {
    RevokedAuthor,
    FrozenAuthor,
    RoleNotAllowed,
    UnknownConsumer,
    NotEnrolledInService,
    OverOperationLimit,
    OverUnconfirmedLimit,
    OfflineTooLong,
    DuplicateReceipt,
    DuplicateDuePayment,
    DuplicateCharge,
    BelowFloor,
    InsufficientFunds,
    ReversalNotAllowed,
    CloseMismatch,
    OverEscrow,
}

impl FlagReason {
    pub const ALL: [FlagReason; 16] = [
        FlagReason::RevokedAuthor,
        FlagReason::FrozenAuthor,
        FlagReason::RoleNotAllowed,
        FlagReason::UnknownConsumer,
        FlagReason::NotEnrolledInService,
        FlagReason::OverOperationLimit,
        FlagReason::OverUnconfirmedLimit,
        FlagReason::OfflineTooLong,
        FlagReason::DuplicateReceipt,
        FlagReason::DuplicateDuePayment,
        FlagReason::DuplicateCharge,
        FlagReason::BelowFloor,
        FlagReason::InsufficientFunds,
        FlagReason::ReversalNotAllowed,
        FlagReason::CloseMismatch,
        FlagReason::OverEscrow,
    ];

    /// The reason with this [`FlagReason::code`].
    pub fn from_code(code: &str) -> Option<FlagReason> {
        FlagReason::ALL.into_iter().find(|r| r.code() == code)
    }

    pub fn describe(self) -> &'static str {
        match self {
            FlagReason::RevokedAuthor => "recorded by a revoked device after its revocation",
            FlagReason::FrozenAuthor => "recorded by a device frozen for equivocation",
            FlagReason::RoleNotAllowed => "the device's role may not record this operation",
            FlagReason::UnknownConsumer => "the consumer is not in the directory",
            FlagReason::NotEnrolledInService => "the consumer is not enrolled in this service",
            FlagReason::OverOperationLimit => "over the device's limit per operation",
            FlagReason::OverUnconfirmedLimit => "over the device's limit of unconfirmed money",
            FlagReason::OfflineTooLong => "recorded after the device's allowed time offline",
            FlagReason::DuplicateReceipt => "receipt number used already, or out of order, on this device",
            FlagReason::DuplicateDuePayment => "this due was already paid",
            FlagReason::DuplicateCharge => "this charge was already recorded",
            FlagReason::BelowFloor => "takes the wallet below its floor",
            FlagReason::InsufficientFunds => "the source wallet does not cover it",
            FlagReason::ReversalNotAllowed => "this reversal is not allowed",
            FlagReason::CloseMismatch => "the totals do not match the receipts",
            FlagReason::OverEscrow => "a debit beyond the device's allowance on this wallet",
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            FlagReason::RevokedAuthor => "revoked_author",
            FlagReason::FrozenAuthor => "frozen_author",
            FlagReason::RoleNotAllowed => "role_not_allowed",
            FlagReason::UnknownConsumer => "unknown_consumer",
            FlagReason::NotEnrolledInService => "not_enrolled_in_service",
            FlagReason::OverOperationLimit => "over_operation_limit",
            FlagReason::OverUnconfirmedLimit => "over_unconfirmed_limit",
            FlagReason::OfflineTooLong => "offline_too_long",
            FlagReason::DuplicateReceipt => "duplicate_receipt",
            FlagReason::DuplicateDuePayment => "duplicate_due_payment",
            FlagReason::DuplicateCharge => "duplicate_charge",
            FlagReason::BelowFloor => "below_floor",
            FlagReason::InsufficientFunds => "insufficient_funds",
            FlagReason::ReversalNotAllowed => "reversal_not_allowed",
            FlagReason::CloseMismatch => "close_mismatch",
            FlagReason::OverEscrow => "over_escrow",
        }
    }
}

/// The hub's word on one operation. The effective verdict on an operation is
/// the one in the hub's decision with the highest sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Verdict {
    Accepted,
    Flagged {
        reason: FlagReason,
        detail: Label,
    },
    /// A hub operator accepted a flagged operation in review.
    ReviewAccepted {
        operator: Label,
        note: Label,
    },
    /// A hub operator rejected a flagged operation in review: it never counts.
    ReviewRejected {
        operator: Label,
        note: Label,
    },
}

impl Verdict {
    /// Whether the operation counts in confirmed balances.
    pub fn counts(&self) -> bool {
        matches!(self, Verdict::Accepted | Verdict::ReviewAccepted { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Decision {
    pub target: OpId,
    /// The target's author: a device keeps the verdicts on its own
    /// operations only, even before the operation reaches it again.
    pub author: AuthorId,
    pub verdict: Verdict,
}

/// An Automerge document of the directory. Documents are small and many.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DocId {
    /// A family: payer and consumers (names, PAN, codice fiscale, school, services).
    Family(FamilyId),
    /// A family's contact data (e-mail, phone): stays at the hub.
    Contacts(FamilyId),
    /// A service category with its floor and tariff.
    Service(ServiceId),
}

impl DocId {
    pub fn key(&self) -> String {
        match self {
            DocId::Family(id) => format!("family/{}", id.to_hex()),
            DocId::Contacts(id) => format!("contacts/{}", id.to_hex()),
            DocId::Service(id) => format!("service/{id}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WalletBalance {
    pub wallet: WalletKey,
    pub balance: Balance,
}

/// Every kind of operation (DESIGN.md, "Operations on money" and "Sync").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Body {
    /// The first operation of a realm, by the hub: its key is the realm id.
    Genesis {
        realm_name: Label,
    },
    /// The hub enrols a device with a role and its offline limits.
    Enrol {
        device: AuthorId,
        role: Role,
        name: Label,
        limits: OfflineLimits,
    },
    /// The hub revokes a device; operations after `last_seq_seen` are flagged.
    Revoke {
        device: AuthorId,
        last_seq_seen: Seq,
        reason: Label,
    },
    /// The hub changes a device's offline limits.
    ChangeLimits {
        device: AuthorId,
        limits: OfflineLimits,
    },
    TopUp(TopUp),
    DuePayment(DuePayment),
    ServiceCharge(ServiceCharge),
    /// Reversal (*storno*) of a top-up by the cash point that recorded it.
    Reversal {
        target: OpId,
        reason: Label,
    },
    Transfer(Transfer),
    Refund(Refund),
    /// Cash handed to the treasury (*versamento*) for a range of receipts.
    Remittance {
        receipts: ReceiptRange,
        amount: Balance,
        reference: Label,
    },
    /// A cash point's daily close (*chiusura*), `day` as YYYYMMDD.
    DailyClose {
        day: u32,
        receipts: Option<ReceiptRange>,
        count: u32,
        total: Balance,
    },
    /// The hub's verdicts on operations it received.
    Decisions(Vec<Decision>),
    /// An Automerge change to one directory document.
    DirectoryChange {
        doc: DocId,
        change: Vec<u8>,
    },
    /// Confirmed balances, signed by the hub, as of its own sequence number.
    BalanceCheckpoint {
        as_of: Seq,
        balances: Vec<WalletBalance>,
    },
    /// An allowance for offline debits on one wallet, granted to one device.
    EscrowGrant {
        device: AuthorId,
        wallet: WalletKey,
        amount: Amount,
    },
    /// The hub was running at this time. Written when its log has been
    /// quiet for a while, so a device that holds the hub's log up to a
    /// recent point has provably been in contact with the hub recently.
    Heartbeat,
    /// An operator's account, as the hub writes it (created, password
    /// changed, disabled or enabled): the latest per login is the account.
    /// Cashiers' accounts by the hub's key; administrators' and clerks' by
    /// its contacts key, whose log never leaves the hub.
    Operator(OperatorAccount),
}

/// The kind of an operation, as stored and reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    Genesis = 0,
    Enrol = 1,
    Revoke = 2,
    ChangeLimits = 3,
    TopUp = 4,
    DuePayment = 5,
    ServiceCharge = 6,
    Reversal = 7,
    Transfer = 8,
    Refund = 9,
    Remittance = 10,
    DailyClose = 11,
    Decisions = 12,
    DirectoryChange = 13,
    BalanceCheckpoint = 14,
    EscrowGrant = 15,
    Heartbeat = 16,
    Operator = 17,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Genesis => "genesis",
            OpKind::Enrol => "enrol",
            OpKind::Revoke => "revoke",
            OpKind::ChangeLimits => "change-limits",
            OpKind::TopUp => "top-up",
            OpKind::DuePayment => "due-payment",
            OpKind::ServiceCharge => "service-charge",
            OpKind::Reversal => "reversal",
            OpKind::Transfer => "transfer",
            OpKind::Refund => "refund",
            OpKind::Remittance => "remittance",
            OpKind::DailyClose => "daily-close",
            OpKind::Decisions => "decisions",
            OpKind::DirectoryChange => "directory-change",
            OpKind::BalanceCheckpoint => "balance-checkpoint",
            OpKind::EscrowGrant => "escrow-grant",
            OpKind::Heartbeat => "heartbeat",
            OpKind::Operator => "operator-account",
        }
    }

    /// Operations that move money or need the hub's verdict to count.
    pub fn needs_verdict(self) -> bool {
        matches!(
            self,
            OpKind::TopUp
                | OpKind::DuePayment
                | OpKind::ServiceCharge
                | OpKind::Reversal
                | OpKind::Transfer
                | OpKind::Refund
                | OpKind::Remittance
                | OpKind::DailyClose
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("a top-up needs 1 to {TOPUP_LINES_MAX} wallet lines, this one has {0}")]
    TopUpLines(usize),
    #[error("the same wallet appears twice on one top-up")]
    TopUpDuplicateWallet,
    #[error("a decision operation holds 1 to {VERDICTS_PER_OP_MAX} verdicts, this one has {0}")]
    Verdicts(usize),
    #[error("a balance checkpoint holds at most {CHECKPOINT_WALLETS_MAX} wallets, this one has {0}")]
    CheckpointWallets(usize),
    #[error("a directory change is at most {DIRECTORY_CHANGE_BYTES_MAX} bytes, this one has {0}")]
    DirectoryChangeBytes(usize),
    #[error("a transfer needs two different wallets")]
    TransferToItself,
    #[error("a receipt range must start before it ends")]
    ReceiptRange,
    #[error("an offline limit must not be negative")]
    NegativeLimit,
    #[error("the day {0} is not a date written as YYYYMMDD")]
    Day(u32),
    #[error("the amount {0} must not be negative")]
    NegativeAmount(Balance),
    #[error("a cashier's account names the cash point the cashier works at")]
    CashierWithoutCashPoint,
    #[error("the {0} role works at the hub: its accounts name no cash point")]
    CashPointOfHubRole(&'static str),
    #[error("an operator's password hash must be an argon2id PHC string (starting with {PASSWORD_HASH_PREFIX})")]
    PasswordHash,
}

impl Body {
    pub fn kind(&self) -> OpKind {
        match self {
            Body::Genesis { .. } => OpKind::Genesis,
            Body::Enrol { .. } => OpKind::Enrol,
            Body::Revoke { .. } => OpKind::Revoke,
            Body::ChangeLimits { .. } => OpKind::ChangeLimits,
            Body::TopUp(_) => OpKind::TopUp,
            Body::DuePayment(_) => OpKind::DuePayment,
            Body::ServiceCharge(_) => OpKind::ServiceCharge,
            Body::Reversal { .. } => OpKind::Reversal,
            Body::Transfer(_) => OpKind::Transfer,
            Body::Refund(_) => OpKind::Refund,
            Body::Remittance { .. } => OpKind::Remittance,
            Body::DailyClose { .. } => OpKind::DailyClose,
            Body::Decisions(_) => OpKind::Decisions,
            Body::DirectoryChange { .. } => OpKind::DirectoryChange,
            Body::BalanceCheckpoint { .. } => OpKind::BalanceCheckpoint,
            Body::EscrowGrant { .. } => OpKind::EscrowGrant,
            Body::Heartbeat => OpKind::Heartbeat,
            Body::Operator(_) => OpKind::Operator,
        }
    }

    /// Limits that types alone do not express. Checked on every decode.
    pub fn check_limits(&self) -> Result<(), LimitError> {
        let range_ok = |r: &ReceiptRange| r.first <= r.last;
        let limits_ok = |l: &OfflineLimits| l.unconfirmed_total.minor() >= 0;
        match self {
            Body::TopUp(top_up) => {
                if top_up.lines.is_empty() || top_up.lines.len() > TOPUP_LINES_MAX {
                    return Err(LimitError::TopUpLines(top_up.lines.len()));
                }
                for (i, line) in top_up.lines.iter().enumerate() {
                    if top_up.lines[..i].iter().any(|other| other.wallet == line.wallet) {
                        return Err(LimitError::TopUpDuplicateWallet);
                    }
                }
            }
            Body::Decisions(verdicts) => {
                if verdicts.is_empty() || verdicts.len() > VERDICTS_PER_OP_MAX {
                    return Err(LimitError::Verdicts(verdicts.len()));
                }
            }
            Body::BalanceCheckpoint { balances, .. } => {
                if balances.len() > CHECKPOINT_WALLETS_MAX {
                    return Err(LimitError::CheckpointWallets(balances.len()));
                }
            }
            Body::DirectoryChange { change, .. } => {
                if change.len() > DIRECTORY_CHANGE_BYTES_MAX {
                    return Err(LimitError::DirectoryChangeBytes(change.len()));
                }
            }
            Body::Transfer(transfer) => {
                if transfer.from == transfer.to {
                    return Err(LimitError::TransferToItself);
                }
            }
            Body::Remittance { receipts, amount, .. } => {
                if !range_ok(receipts) {
                    return Err(LimitError::ReceiptRange);
                }
                if amount.minor() < 0 {
                    return Err(LimitError::NegativeAmount(*amount));
                }
            }
            Body::DailyClose { day, receipts, total, .. } => {
                let (month, dom) = (day / 100 % 100, day % 100);
                if !(20_000_101..=99_991_231).contains(day) || !(1..=12).contains(&month) || !(1..=31).contains(&dom) {
                    return Err(LimitError::Day(*day));
                }
                if receipts.as_ref().is_some_and(|r| !range_ok(r)) {
                    return Err(LimitError::ReceiptRange);
                }
                if total.minor() < 0 {
                    return Err(LimitError::NegativeAmount(*total));
                }
            }
            Body::Enrol { limits, .. } | Body::ChangeLimits { limits, .. } => {
                if !limits_ok(limits) {
                    return Err(LimitError::NegativeLimit);
                }
            }
            Body::Operator(account) => {
                match (account.role, account.cash_point) {
                    (OperatorRole::Cashier, None) => return Err(LimitError::CashierWithoutCashPoint),
                    (role, Some(_)) if role != OperatorRole::Cashier => {
                        return Err(LimitError::CashPointOfHubRole(role.name()));
                    }
                    _ => {}
                }
                if !account.password_hash.as_str().starts_with(PASSWORD_HASH_PREFIX) {
                    return Err(LimitError::PasswordHash);
                }
            }
            Body::Genesis { .. }
            | Body::Revoke { .. }
            | Body::DuePayment(_)
            | Body::ServiceCharge(_)
            | Body::Reversal { .. }
            | Body::Refund(_)
            | Body::EscrowGrant { .. }
            | Body::Heartbeat => {}
        }
        Ok(())
    }

    /// The signed cents this operation moves on each wallet, were it to count:
    /// credits positive, debits negative. A reversal moves nothing itself: it
    /// stops its target from counting.
    pub fn wallet_deltas(&self) -> Vec<(WalletKey, i64)> {
        match self {
            Body::TopUp(top_up) => top_up.lines.iter().map(|l| (l.wallet.clone(), l.amount.minor())).collect(),
            Body::DuePayment(p) => vec![(p.wallet.clone(), p.amount.minor())],
            Body::ServiceCharge(c) => vec![(c.wallet.clone(), -c.amount.minor())],
            Body::Transfer(t) => vec![(t.from.clone(), -t.amount.minor()), (t.to.clone(), t.amount.minor())],
            Body::Refund(r) => vec![(r.wallet.clone(), -r.amount.minor())],
            _ => Vec::new(),
        }
    }
}

/// An operation before signing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Operation {
    pub author: AuthorId,
    pub seq: Seq,
    /// The id of the author's previous operation, [`OpId::NONE`] for seq 1.
    pub prev: OpId,
    pub hlc: Hlc,
    /// How much of the hub's log the author held when it recorded this
    /// operation (the hub's own operations: its log before this one). The
    /// hub checks a device's offline limits against it: what the device had
    /// recorded that the hub had not decided by then, and how long before
    /// the hub had written its operation at `hub_seen`.
    pub hub_seen: Seq,
    pub body: Body,
}

impl Operation {
    /// The canonical encoding: the version byte, then postcard.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_extend(self, vec![OP_FORMAT_VERSION]).expect("writing to a Vec cannot fail")
    }

    /// Whether [`Operation::encode`] gives exactly `bytes`: encodes while
    /// comparing, stopping at the first difference, with nothing allocated.
    fn encodes_to(&self, bytes: &[u8]) -> bool {
        let Some((&OP_FORMAT_VERSION, rest)) = bytes.split_first() else { return false };
        postcard::serialize_with_flavor(self, SameAs { expected: rest }).unwrap_or(false)
    }

    pub fn sign(self, realm: &RealmId, key: &DeviceKey) -> SignedOp {
        assert_eq!(self.author, key.author(), "an operation is signed by its own author");
        let bytes = self.encode();
        assert!(bytes.len() <= OP_BYTES_MAX, "operation of {} bytes is over OP_BYTES_MAX", bytes.len());
        let id = op_id_of(&bytes);
        let signature = key.signing_key.sign(&signature_message(realm, &id)).to_bytes();
        let mut signed = bytes;
        signed.extend_from_slice(&signature);
        SignedOp { op: self, id, signed }
    }
}

fn op_id_of(encoded: &[u8]) -> OpId {
    let mut hasher = blake3::Hasher::new_derive_key(OP_ID_CONTEXT);
    hasher.update(encoded);
    OpId(*hasher.finalize().as_bytes())
}

fn signature_message(realm: &RealmId, id: &OpId) -> [u8; 80] {
    let mut message = [0u8; 80];
    message[..16].copy_from_slice(SIGNATURE_CONTEXT);
    message[16..48].copy_from_slice(&realm.0);
    message[48..].copy_from_slice(&id.0);
    message
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("operation of {0} bytes is over the limit of {SIGNED_OP_BYTES_MAX} bytes")]
    TooLarge(usize),
    #[error("operation of {0} bytes is too short to hold a signature")]
    TooShort(usize),
    #[error("operation format version {0} is not supported (this node reads version {OP_FORMAT_VERSION})")]
    Version(u8),
    #[error("operation bytes are malformed: {0}")]
    Malformed(String),
    #[error("operation bytes are not in canonical form")]
    NotCanonical,
    #[error("operation breaks a limit: {0}")]
    Limit(#[from] LimitError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the signature of operation {op} by {author:?} does not verify")]
pub struct BadSignature {
    pub op: OpId,
    pub author: AuthorId,
}

/// A decoded operation with its id, canonical bytes and signature. Holding one
/// does not mean its signature was checked: see [`SignedOp::verify`].
#[derive(Clone, PartialEq, Eq)]
pub struct SignedOp {
    pub op: Operation,
    pub id: OpId,
    /// The encoded operation followed by its signature.
    signed: Vec<u8>,
}

impl fmt::Debug for SignedOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignedOp({} {:?}#{} {})", self.id.short(), self.op.author, self.op.seq, self.op.body.kind().name())
    }
}

/// A postcard output that compares what is written with `expected`: its
/// output is whether all of `expected` was written, and nothing else.
struct SameAs<'a> {
    expected: &'a [u8],
}

impl postcard::ser_flavors::Flavor for SameAs<'_> {
    type Output = bool;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        match self.expected.split_at_checked(data.len()) {
            Some((head, tail)) if head == data => {
                self.expected = tail;
                Ok(())
            }
            _ => Err(postcard::Error::SerializeBufferFull),
        }
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.try_extend(&[data])
    }

    fn finalize(self) -> postcard::Result<bool> {
        Ok(self.expected.is_empty())
    }
}

impl SignedOp {
    /// Decodes untrusted bytes. Never panics; bounded by [`SIGNED_OP_BYTES_MAX`].
    pub fn decode(signed: &[u8]) -> Result<SignedOp, DecodeError> {
        if signed.len() > SIGNED_OP_BYTES_MAX {
            return Err(DecodeError::TooLarge(signed.len()));
        }
        if signed.len() < SIGNATURE_BYTES + 2 {
            return Err(DecodeError::TooShort(signed.len()));
        }
        let (bytes, signature) = signed.split_at(signed.len() - SIGNATURE_BYTES);
        if bytes[0] != OP_FORMAT_VERSION {
            return Err(DecodeError::Version(bytes[0]));
        }
        let (op, rest): (Operation, &[u8]) =
            postcard::take_from_bytes(&bytes[1..]).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(DecodeError::Malformed(format!("{} bytes left over", rest.len())));
        }
        if !op.encodes_to(bytes) {
            return Err(DecodeError::NotCanonical);
        }
        op.body.check_limits()?;
        let _: &[u8; SIGNATURE_BYTES] = signature.try_into().expect("split at SIGNATURE_BYTES from the end");
        Ok(SignedOp { id: op_id_of(bytes), op, signed: signed.to_vec() })
    }

    /// The bytes to store or send: the encoded operation, then its signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.signed.clone()
    }

    /// The same bytes, borrowed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.signed
    }

    pub fn encoded_len(&self) -> usize {
        self.signed.len()
    }

    fn signature(&self) -> Signature {
        let bytes: &[u8; SIGNATURE_BYTES] =
            self.signed[self.signed.len() - SIGNATURE_BYTES..].try_into().expect("a signed op ends with its signature");
        Signature::from_bytes(bytes)
    }

    pub fn verify(&self, realm: &RealmId) -> Result<(), BadSignature> {
        let bad = || BadSignature { op: self.id, author: self.op.author };
        let key = VerifyingKey::from_bytes(&self.op.author.0).map_err(|_| bad())?;
        key.verify_strict(&signature_message(realm, &self.id), &self.signature()).map_err(|_| bad())
    }
}

/// Verifies many signatures, with ed25519 batch verification spread over all
/// cores; a failed batch is re-checked one by one to name the bad operations.
/// Returns one result per operation, in order.
pub fn verify_all(realm: &RealmId, ops: &[&SignedOp]) -> Vec<Result<(), BadSignature>> {
    const CHUNK_MIN: usize = 64;
    if ops.len() < CHUNK_MIN {
        return ops.iter().map(|op| op.verify(realm)).collect();
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(ops.len() / CHUNK_MIN).max(1);
    if threads == 1 {
        return verify_all_here(realm, ops);
    }
    let chunk = ops.len().div_ceil(threads);
    let mut results = Vec::with_capacity(ops.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = ops.chunks(chunk).map(|part| scope.spawn(move || verify_all_here(realm, part))).collect();
        for handle in handles {
            results.extend(handle.join().expect("a verification thread does not panic"));
        }
    });
    results
}

/// [`verify_all`] on the calling thread only: for callers that spread work
/// over cores themselves.
pub fn verify_all_here(realm: &RealmId, ops: &[&SignedOp]) -> Vec<Result<(), BadSignature>> {
    let mut keys = Vec::with_capacity(ops.len());
    let mut decompressed: HashMap<[u8; 32], VerifyingKey> = HashMap::new();
    for op in ops {
        let key = match decompressed.get(&op.op.author.0) {
            Some(key) => *key,
            None => match VerifyingKey::from_bytes(&op.op.author.0) {
                Ok(key) => *decompressed.entry(op.op.author.0).or_insert(key),
                Err(_) => return ops.iter().map(|op| op.verify(realm)).collect(),
            },
        };
        keys.push(key);
    }
    let messages: Vec<[u8; 80]> = ops.iter().map(|op| signature_message(realm, &op.id)).collect();
    let message_refs: Vec<&[u8]> = messages.iter().map(|m| m.as_slice()).collect();
    let signatures: Vec<Signature> = ops.iter().map(|op| op.signature()).collect();
    match ed25519_dalek::verify_batch(&message_refs, &signatures, &keys) {
        // Batch verification is not as strict as `verify_strict` about
        // malleable encodings; that is harmless here because an operation's id
        // hashes its bytes, not its signature. A failure is re-checked one by one.
        Ok(()) => ops.iter().map(|_| Ok(())).collect(),
        Err(_) => ops.iter().map(|op| op.verify(realm)).collect(),
    }
}

/// The author, seq and id of a signed operation without decoding it all (the
/// author and seq lead the encoding), for bookkeeping about what a peer
/// holds. `None` when the bytes cannot be an operation; decoding says why.
pub fn peek(bytes: &[u8]) -> Option<(AuthorId, Seq, OpId)> {
    if bytes.len() > SIGNED_OP_BYTES_MAX || bytes.len() < SIGNATURE_BYTES + 34 || bytes[0] != OP_FORMAT_VERSION {
        return None;
    }
    let op_bytes = &bytes[..bytes.len() - SIGNATURE_BYTES];
    let author = AuthorId(op_bytes[1..33].try_into().ok()?);
    let mut seq: u64 = 0;
    for (i, byte) in op_bytes[33..].iter().take(10).enumerate() {
        seq |= u64::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((author, Seq(seq), op_id_of(op_bytes)));
        }
    }
    None
}

/// A device's signing identity (ed25519).
pub struct DeviceKey {
    signing_key: SigningKey,
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceKey({:?})", self.author())
    }
}

impl DeviceKey {
    /// A new key from the operating system's random source. Not in the
    /// browser build: a web page never holds a device key.
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    pub fn generate() -> DeviceKey {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("the operating system provides randomness");
        DeviceKey::from_secret_bytes(&secret)
    }

    pub fn from_secret_bytes(secret: &[u8; 32]) -> DeviceKey {
        DeviceKey { signing_key: SigningKey::from_bytes(secret) }
    }

    pub fn secret_bytes(&self) -> [u8; 32] {
        self.signing_key.to_bytes()
    }

    pub fn author(&self) -> AuthorId {
        AuthorId(self.signing_key.verifying_key().to_bytes())
    }

    /// Signs a message that callers in this crate have domain-separated.
    pub(crate) fn sign_message(&self, message: &[u8]) -> [u8; SIGNATURE_BYTES] {
        self.signing_key.sign(message).to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(key: &DeviceKey) -> Operation {
        Operation {
            author: key.author(),
            seq: Seq(3),
            prev: OpId([7; 32]),
            hlc: Hlc::from_parts(1_700_000_000_000, 2),
            hub_seen: Seq(0),
            body: Body::TopUp(TopUp {
                receipt: ReceiptNo(12),
                lines: vec![TopUpLine {
                    wallet: WalletKey { consumer: ConsumerId([1; 16]), service: ServiceId::parse("mensa").unwrap() },
                    amount: Amount::parse("12.50").unwrap(),
                }],
                method: PaymentMethod::Cash,
                operator: None,
            }),
        }
    }

    /// Bytes that decode to an operation but are not how it encodes (here,
    /// its seq as an overlong varint) are refused: one operation, one encoding.
    #[test]
    fn an_operation_in_a_non_canonical_encoding_is_refused() {
        let key = DeviceKey::generate();
        let signed = sample(&key).sign(&RealmId([9; 32]), &key).to_bytes();
        assert_eq!(signed[33], 3, "the seq follows the version and the author");
        let mut overlong = signed[..33].to_vec();
        overlong.extend_from_slice(&[0x83, 0x00]);
        overlong.extend_from_slice(&signed[34..]);
        assert!(matches!(SignedOp::decode(&overlong), Err(DecodeError::NotCanonical)));
        let mut longer = signed.clone();
        longer.insert(signed.len() - SIGNATURE_BYTES, 0);
        assert!(SignedOp::decode(&longer).is_err(), "a byte more is refused");
        assert!(SignedOp::decode(&signed).is_ok());
        let op = sample(&key);
        let mut other = op.encode();
        assert!(op.encodes_to(&other));
        let last = other.len() - 1;
        other[last] ^= 1;
        assert!(!op.encodes_to(&other), "the same length, another byte");
    }

    #[test]
    fn a_signed_operation_decodes_to_itself_and_verifies_only_in_its_realm() {
        let key = DeviceKey::generate();
        let realm = RealmId([9; 32]);
        let signed = sample(&key).sign(&realm, &key);
        let decoded = SignedOp::decode(&signed.to_bytes()).unwrap();
        assert_eq!(decoded, signed);
        decoded.verify(&realm).unwrap();
        assert!(decoded.verify(&RealmId([8; 32])).is_err());
    }

    #[test]
    fn decoding_rejects_oversized_short_versioned_and_trailing_bytes() {
        let key = DeviceKey::generate();
        let realm = RealmId([9; 32]);
        let bytes = sample(&key).sign(&realm, &key).to_bytes();
        assert!(matches!(SignedOp::decode(&vec![1u8; SIGNED_OP_BYTES_MAX + 1]), Err(DecodeError::TooLarge(_))));
        assert!(matches!(SignedOp::decode(&bytes[..10]), Err(DecodeError::TooShort(_))));
        let mut versioned = bytes.clone();
        versioned[0] = 1;
        assert_eq!(SignedOp::decode(&versioned), Err(DecodeError::Version(1)));
        let mut trailing = bytes[..bytes.len() - SIGNATURE_BYTES].to_vec();
        trailing.push(0);
        trailing.extend_from_slice(&bytes[bytes.len() - SIGNATURE_BYTES..]);
        assert!(SignedOp::decode(&trailing).is_err());
    }

    #[test]
    fn batch_verification_names_the_one_forged_operation() {
        let key = DeviceKey::generate();
        let realm = RealmId([9; 32]);
        let mut ops: Vec<SignedOp> =
            (1..=200).map(|seq| Operation { seq: Seq(seq), ..sample(&key) }.sign(&realm, &key)).collect();
        let last = ops[77].signed.len() - 5;
        ops[77].signed[last] ^= 1;
        let refs: Vec<&SignedOp> = ops.iter().collect();
        let results = verify_all(&realm, &refs);
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
        assert!(results[77].is_err());
    }

    #[test]
    fn flag_reasons_round_trip_through_their_codes() {
        for reason in FlagReason::ALL {
            assert_eq!(FlagReason::from_code(reason.code()), Some(reason));
        }
        assert_eq!(FlagReason::from_code("nonsense"), None);
    }

    #[test]
    fn limits_are_enforced_at_the_limit_and_one_past_it() {
        let key = DeviceKey::generate();
        let line = |i: u8| TopUpLine {
            wallet: WalletKey { consumer: ConsumerId([i; 16]), service: ServiceId::parse("mensa").unwrap() },
            amount: Amount::parse("1").unwrap(),
        };
        let top_up = |n: u8| {
            Body::TopUp(TopUp {
                receipt: ReceiptNo(1),
                lines: (0..n).map(line).collect(),
                method: PaymentMethod::Cash,
                operator: None,
            })
        };
        assert!(top_up(TOPUP_LINES_MAX as u8).check_limits().is_ok());
        assert_eq!(top_up(TOPUP_LINES_MAX as u8 + 1).check_limits(), Err(LimitError::TopUpLines(17)));
        assert_eq!(top_up(0).check_limits(), Err(LimitError::TopUpLines(0)));
        let change = |n: usize| Body::DirectoryChange {
            doc: DocId::Service(ServiceId::parse("x").unwrap()),
            change: vec![0; n],
        };
        assert!(change(DIRECTORY_CHANGE_BYTES_MAX).check_limits().is_ok());
        assert!(change(DIRECTORY_CHANGE_BYTES_MAX + 1).check_limits().is_err());
        let _ = key;
    }
}
