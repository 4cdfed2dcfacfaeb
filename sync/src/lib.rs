//! `saldo-sync`: Saldo's operation model.
//!
//! Everything here is plain data and pure functions, with no I/O, so that it
//! runs unchanged in a node, a simulator, the mobile shim and the browser:
//! validated value types ([`values`]), identifiers ([`ids`]), hybrid logical
//! clocks ([`hlc`]), the signed, hash-chained operation with its canonical
//! encoding ([`op`]), per-author frontiers ([`frontier`]) and the sync
//! protocol as a state machine ([`reconcile`]).

pub mod bundle;
pub mod frontier;
pub mod hlc;
pub mod ids;
pub mod op;
pub mod operator;
pub mod reconcile;
pub mod values;

pub use frontier::{Frontier, FrontierEntry};
pub use hlc::Hlc;
pub use ids::{AuthorId, ConsumerId, FamilyId, IdError, OpId, RealmId, ReceiptNo, ReceiptRange, Seq};
pub use op::{
    BadSignature, Body, Decision, DecodeError, DeviceKey, DocId, DuePayment, FlagReason, OfflineLimits, OpKind,
    Operation, PaymentMethod, Refund, Role, ServiceCharge, SignedOp, TopUp, TopUpLine, Transfer, Verdict,
    WalletBalance, WalletKey,
};
pub use operator::{OperatorAccount, OperatorLogin, OperatorRole};
pub use values::{
    Amount, AmountError, Balance, CodiceFiscale, CodiceFiscaleError, Label, Pan, PanError, PersonName, ServiceId,
    TextError,
};
