//! The service layer's types as UniFFI records, and back: field by field,
//! nothing decided here. Money is text (`"20.50"`, euros), ids are hex.

use saldo_api::consumers::{
    ConsumerDetail, ConsumerRef, ConsumerSummary, Movement, MovementKind, MovementStatus, SearchResults, WalletDetail,
    WalletSummary,
};
use saldo_api::payments::{PaymentMethodApi, TopUpLineRequest, TopUpRequest};
use saldo_api::receipt::{self as api_receipt, ReceiptKind, TextWidth};
use saldo_api::status::{BalanceChanged, Status};
use saldo_sync::{Amount, ConsumerId, ServiceId};

use crate::error::{SaldoError, invalid};

/// How a family paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PaymentMethod {
    Cash,
    DebitCard,
    CreditCard,
    /// Only in logs recorded from the command line; refused for new payments.
    Other,
}

impl From<PaymentMethod> for PaymentMethodApi {
    fn from(method: PaymentMethod) -> Self {
        match method {
            PaymentMethod::Cash => PaymentMethodApi::Cash,
            PaymentMethod::DebitCard => PaymentMethodApi::DebitCard,
            PaymentMethod::CreditCard => PaymentMethodApi::CreditCard,
            PaymentMethod::Other => PaymentMethodApi::Other,
        }
    }
}

impl From<PaymentMethodApi> for PaymentMethod {
    fn from(method: PaymentMethodApi) -> Self {
        match method {
            PaymentMethodApi::Cash => PaymentMethod::Cash,
            PaymentMethodApi::DebitCard => PaymentMethod::DebitCard,
            PaymentMethodApi::CreditCard => PaymentMethod::CreditCard,
            PaymentMethodApi::Other => PaymentMethod::Other,
        }
    }
}

/// The language of printed receipts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Language {
    Italian,
    English,
}

impl From<Language> for saldo_api::Lang {
    fn from(language: Language) -> Self {
        match language {
            Language::Italian => saldo_api::Lang::It,
            Language::English => saldo_api::Lang::En,
        }
    }
}

/// The node's state, for the app's status bar.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NodeStatus {
    /// The hub is reachable.
    pub online: bool,
    /// Operations recorded here that the hub has not confirmed yet, and their total (euros).
    pub unconfirmed_operations: u64,
    pub unconfirmed_total: String,
    /// When the hub was last heard from (milliseconds since 1970), if ever.
    pub last_hub_contact_ms: Option<u64>,
    pub realm_name: String,
    /// This device's id (hex) and name as enrolled.
    pub device_id: Option<String>,
    pub device_name: String,
    /// What `--peer` takes to reach this node.
    pub addresses: Vec<String>,
    /// Why this device records nothing now, if so.
    pub recording_held: Option<String>,
    /// A fork of this device's own log, described, if one was seen.
    pub forked: Option<String>,
    pub at_ms: u64,
}

impl From<Status> for NodeStatus {
    fn from(s: Status) -> Self {
        NodeStatus {
            online: s.online,
            unconfirmed_operations: s.unconfirmed_operations,
            unconfirmed_total: s.unconfirmed_total.to_string(),
            last_hub_contact_ms: s.last_hub_contact_ms,
            realm_name: s.realm_name,
            device_id: s.device.map(|d| d.to_hex()),
            device_name: s.device_name,
            addresses: s.addresses,
            recording_held: s.recording_held,
            forked: s.forked,
            at_ms: s.at_ms,
        }
    }
}

/// A wallet's balances moved (a top-up recorded here, the hub confirming it).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BalanceChange {
    pub consumer: String,
    pub service: String,
    pub confirmed: String,
    pub provisional: String,
}

impl From<BalanceChanged> for BalanceChange {
    fn from(b: BalanceChanged) -> Self {
        BalanceChange {
            consumer: b.consumer.to_hex(),
            service: b.service.to_string(),
            confirmed: b.confirmed.to_string(),
            provisional: b.provisional.to_string(),
        }
    }
}

/// A wallet's balances as a search shows them.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Wallet {
    pub service: String,
    /// What the hub confirmed.
    pub confirmed: String,
    /// Confirmed plus what this node recorded that the hub has not confirmed yet.
    pub provisional: String,
}

impl From<WalletSummary> for Wallet {
    fn from(w: WalletSummary) -> Self {
        Wallet {
            service: w.service.to_string(),
            confirmed: w.confirmed.to_string(),
            provisional: w.provisional.to_string(),
        }
    }
}

/// A child as a search shows them.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Consumer {
    pub consumer: String,
    pub surname: String,
    pub name: String,
    pub pan_masked: String,
    pub pan: String,
    pub fiscal_code: String,
    pub family: String,
    pub school: Option<String>,
    pub school_class: Option<String>,
    pub wallets: Vec<Wallet>,
}

impl From<ConsumerSummary> for Consumer {
    fn from(c: ConsumerSummary) -> Self {
        Consumer {
            consumer: c.consumer.to_hex(),
            surname: c.surname.to_string(),
            name: c.name.to_string(),
            pan_masked: c.pan_masked,
            pan: c.pan.to_string(),
            fiscal_code: c.fiscal_code.to_string(),
            family: c.family.to_hex(),
            school: c.school.map(|s| s.to_string()),
            school_class: c.class.map(|s| s.to_string()),
            wallets: c.wallets.into_iter().map(Wallet::from).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SearchResult {
    pub consumers: Vec<Consumer>,
    /// More matched than were returned: type more.
    pub truncated: bool,
}

impl From<SearchResults> for SearchResult {
    fn from(r: SearchResults) -> Self {
        SearchResult { consumers: r.consumers.into_iter().map(Consumer::from).collect(), truncated: r.truncated }
    }
}

/// A sibling: who may share one receipt.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Sibling {
    pub consumer: String,
    pub surname: String,
    pub name: String,
    pub pan_masked: String,
}

impl From<ConsumerRef> for Sibling {
    fn from(c: ConsumerRef) -> Self {
        Sibling {
            consumer: c.consumer.to_hex(),
            surname: c.surname.to_string(),
            name: c.name.to_string(),
            pan_masked: c.pan_masked,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MovementType {
    TopUp,
    DuePayment,
    ServiceCharge,
    Reversal,
    Transfer,
    Refund,
    DailyClose,
    Remittance,
}

impl From<MovementKind> for MovementType {
    fn from(kind: MovementKind) -> Self {
        match kind {
            MovementKind::TopUp => MovementType::TopUp,
            MovementKind::DuePayment => MovementType::DuePayment,
            MovementKind::ServiceCharge => MovementType::ServiceCharge,
            MovementKind::Reversal => MovementType::Reversal,
            MovementKind::Transfer => MovementType::Transfer,
            MovementKind::Refund => MovementType::Refund,
            MovementKind::DailyClose => MovementType::DailyClose,
            MovementKind::Remittance => MovementType::Remittance,
        }
    }
}

/// Where a movement stands with the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MovementState {
    Provisional,
    Accepted,
    Flagged,
    Rejected,
    Reversed,
    Pending,
}

impl From<MovementStatus> for MovementState {
    fn from(status: MovementStatus) -> Self {
        match status {
            MovementStatus::Provisional => MovementState::Provisional,
            MovementStatus::Accepted => MovementState::Accepted,
            MovementStatus::Flagged => MovementState::Flagged,
            MovementStatus::Rejected => MovementState::Rejected,
            MovementStatus::Reversed => MovementState::Reversed,
            MovementStatus::Pending => MovementState::Pending,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WalletMovement {
    pub operation: String,
    pub kind: MovementType,
    pub receipt_number: Option<u64>,
    pub method: Option<PaymentMethod>,
    pub recorded_at_ms: u64,
    /// Signed: what it did to the wallet.
    pub amount: String,
    pub state: MovementState,
    pub reason: Option<String>,
}

impl From<Movement> for WalletMovement {
    fn from(m: Movement) -> Self {
        WalletMovement {
            operation: m.operation.to_hex(),
            kind: m.kind.into(),
            receipt_number: m.receipt.map(|r| r.0),
            method: m.method.map(PaymentMethod::from),
            recorded_at_ms: m.recorded_at_ms,
            amount: m.amount.to_string(),
            state: m.status.into(),
            reason: m.reason,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WalletBalance {
    pub service: String,
    pub service_name: String,
    pub confirmed: String,
    pub provisional: String,
    /// How far below zero a service charge may take it.
    pub floor: String,
    pub tariff: Option<String>,
    /// Newest first.
    pub movements: Vec<WalletMovement>,
}

impl From<WalletDetail> for WalletBalance {
    fn from(w: WalletDetail) -> Self {
        WalletBalance {
            service: w.service.to_string(),
            service_name: w.service_name,
            confirmed: w.confirmed.to_string(),
            provisional: w.provisional.to_string(),
            floor: w.floor.to_string(),
            tariff: w.tariff.map(|t| t.to_string()),
            movements: w.movements.into_iter().map(WalletMovement::from).collect(),
        }
    }
}

/// A child's wallets with their last movements, and their siblings.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Balances {
    pub consumer: Consumer,
    pub siblings: Vec<Sibling>,
    pub wallets: Vec<WalletBalance>,
}

impl From<ConsumerDetail> for Balances {
    fn from(d: ConsumerDetail) -> Self {
        Balances {
            consumer: d.summary.into(),
            siblings: d.siblings.into_iter().map(Sibling::from).collect(),
            wallets: d.wallets.into_iter().map(WalletBalance::from).collect(),
        }
    }
}

/// One wallet to top up: the child (id from a search), the service, euros (`"20.50"`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TopUpLine {
    pub consumer: String,
    pub service: String,
    pub amount: String,
}

/// The top-up the app asks for, as the service layer takes it; a value
/// that does not parse names its field (`lines[0].amount`).
pub(crate) fn top_up_request(lines: Vec<TopUpLine>, method: PaymentMethod) -> Result<TopUpRequest, SaldoError> {
    let lines = lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            Ok(TopUpLineRequest {
                consumer: consumer_id(&line.consumer, &format!("lines[{i}].consumer"))?,
                service: ServiceId::parse(&line.service).map_err(|e| invalid(format!("lines[{i}].service"), e))?,
                amount: Amount::parse(&line.amount).map_err(|e| invalid(format!("lines[{i}].amount"), e))?,
            })
        })
        .collect::<Result<Vec<_>, SaldoError>>()?;
    Ok(TopUpRequest { lines, method: method.into() })
}

pub(crate) fn consumer_id(text: &str, field: &str) -> Result<ConsumerId, SaldoError> {
    ConsumerId::from_hex(text)
        .map_err(|_| invalid(field, format!("{text:?} is not a consumer id: 32 hexadecimal digits, as a search gives")))
}

pub(crate) fn operation_id(text: &str, field: &str) -> Result<saldo_sync::OpId, SaldoError> {
    saldo_sync::OpId::from_hex(text).map_err(|_| {
        invalid(field, format!("{text:?} is not an operation id: 64 hexadecimal digits, as a receipt gives"))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ReceiptType {
    TopUp,
    DuePayment,
    Reversal,
}

impl From<ReceiptKind> for ReceiptType {
    fn from(kind: ReceiptKind) -> Self {
        match kind {
            ReceiptKind::TopUp => ReceiptType::TopUp,
            ReceiptKind::DuePayment => ReceiptType::DuePayment,
            ReceiptKind::Reversal => ReceiptType::Reversal,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReceiptLine {
    pub consumer: String,
    pub consumer_name: String,
    pub pan_masked: String,
    pub service: String,
    pub service_name: String,
    pub amount: String,
    pub balance_after: String,
    /// The balance after is not confirmed by the hub yet.
    pub provisional: bool,
}

/// Another receipt this one reverses, or that reversed it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReceiptRef {
    pub operation: String,
    pub receipt_number: u64,
    pub recorded_at_ms: u64,
    pub recorded_at_local: String,
}

impl From<api_receipt::ReceiptRef> for ReceiptRef {
    fn from(r: api_receipt::ReceiptRef) -> Self {
        ReceiptRef {
            operation: r.operation.to_hex(),
            receipt_number: r.receipt_number.0,
            recorded_at_ms: r.recorded_at_ms,
            recorded_at_local: r.recorded_at_local,
        }
    }
}

/// A receipt as data, and as the text a Bluetooth thermal printer prints
/// (58 mm paper: 32 columns; 80 mm: 48), as the service layer renders it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Receipt {
    pub operation: String,
    pub kind: ReceiptType,
    pub realm: String,
    pub cash_point: String,
    pub operator: Option<String>,
    pub receipt_number: u64,
    pub recorded_at_ms: u64,
    pub recorded_at_local: String,
    pub method: PaymentMethod,
    pub due: Option<String>,
    pub reason: Option<String>,
    pub lines: Vec<ReceiptLine>,
    pub total: String,
    /// Recorded here and not confirmed by the hub yet: the paper says so.
    pub provisional: bool,
    pub verification_code: String,
    pub verification_url: String,
    pub reverses: Option<ReceiptRef>,
    pub reversed_by: Option<ReceiptRef>,
    pub text_32: String,
    pub text_48: String,
}

/// `receipt` as a record, its text in `language`.
pub(crate) fn receipt(r: api_receipt::Receipt, language: Language) -> Receipt {
    let text_32 = api_receipt::render_text(&r, TextWidth::Columns32, language.into());
    let text_48 = api_receipt::render_text(&r, TextWidth::Columns48, language.into());
    Receipt {
        operation: r.operation.to_hex(),
        kind: r.kind.into(),
        realm: r.realm,
        cash_point: r.cash_point,
        operator: r.operator,
        receipt_number: r.receipt_number.0,
        recorded_at_ms: r.recorded_at_ms,
        recorded_at_local: r.recorded_at_local,
        method: r.method.into(),
        due: r.due,
        reason: r.reason,
        lines: r
            .lines
            .into_iter()
            .map(|l| ReceiptLine {
                consumer: l.consumer.to_hex(),
                consumer_name: l.consumer_name,
                pan_masked: l.pan_masked,
                service: l.service.to_string(),
                service_name: l.service_name,
                amount: l.amount.to_string(),
                balance_after: l.balance_after.to_string(),
                provisional: l.provisional,
            })
            .collect(),
        total: r.total.to_string(),
        provisional: r.provisional,
        verification_code: r.verification_code,
        verification_url: r.verification_url,
        reverses: r.reverses.map(ReceiptRef::from),
        reversed_by: r.reversed_by.map(ReceiptRef::from),
        text_32,
        text_48,
    }
}

/// Who is logged in.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OperatorInfo {
    pub login: String,
    pub name: String,
    pub role: Role,
    pub cash_point_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Role {
    Administrator,
    Clerk,
    Cashier,
}

impl From<saldo_node::service::Operator> for OperatorInfo {
    fn from(o: saldo_node::service::Operator) -> Self {
        use saldo_api::session::OperatorRole;
        let role = match o.role {
            OperatorRole::Administrator => Role::Administrator,
            OperatorRole::Clerk => Role::Clerk,
            OperatorRole::Cashier => Role::Cashier,
        };
        OperatorInfo { login: o.login, name: o.name, role, cash_point_name: o.cash_point_name }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(amount: &str) -> TopUpLine {
        TopUpLine { consumer: "ab".repeat(16), service: "mensa".into(), amount: amount.into() }
    }

    #[test]
    fn a_top_up_is_taken_field_by_field_and_a_bad_value_names_its_field() {
        let request = top_up_request(vec![line("20.50"), line("1")], PaymentMethod::DebitCard).unwrap();
        assert_eq!(request.method, PaymentMethodApi::DebitCard);
        assert_eq!(request.lines[0].amount, Amount::parse("20.50").unwrap());
        assert_eq!(request.lines[0].consumer, ConsumerId([0xab; 16]));
        assert_eq!(request.lines[1].service.to_string(), "mensa");

        let field_of = |error: SaldoError| match error {
            SaldoError::InvalidInput { field, message } => (field.unwrap(), message),
            other => panic!("not an invalid input: {other:?}"),
        };
        let (field, message) =
            field_of(top_up_request(vec![line("1"), line("12.345")], PaymentMethod::Cash).unwrap_err());
        assert_eq!(field, "lines[1].amount");
        assert!(message.contains("12.345"), "{message}");
        let mut bad = line("1");
        bad.consumer = "nobody".into();
        let (field, message) = field_of(top_up_request(vec![bad], PaymentMethod::Cash).unwrap_err());
        assert_eq!(field, "lines[0].consumer");
        assert!(message.contains("32 hexadecimal digits"), "{message}");
        let (field, _) = field_of(operation_id("12", "operation").unwrap_err());
        assert_eq!(field, "operation");
    }

    #[test]
    fn enums_map_one_to_one() {
        for method in [PaymentMethod::Cash, PaymentMethod::DebitCard, PaymentMethod::CreditCard, PaymentMethod::Other] {
            assert_eq!(PaymentMethod::from(PaymentMethodApi::from(method)), method);
        }
        assert_eq!(MovementType::from(MovementKind::DailyClose), MovementType::DailyClose);
        assert_eq!(MovementState::from(MovementStatus::Pending), MovementState::Pending);
        assert_eq!(ReceiptType::from(ReceiptKind::Reversal), ReceiptType::Reversal);
        assert_eq!(saldo_api::Lang::from(Language::English), saldo_api::Lang::En);
    }
}
