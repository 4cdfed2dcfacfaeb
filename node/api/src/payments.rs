//! Requests that record money, and what they answer: top-ups, payments of
//! dues, reversals (*storno*), transfers, refunds, the daily close
//! (*chiusura*) and remittances (*versamento*). Each of them is sent with an
//! [`IDEMPOTENCY_KEY_HEADER`](crate::IDEMPOTENCY_KEY_HEADER).

use std::collections::BTreeSet;

use saldo_sync::op::TOPUP_LINES_MAX;
use saldo_sync::{Amount, Balance, ConsumerId, Label, OpId, PaymentMethod, ReceiptNo, ServiceId, WalletKey};
use serde::{Deserialize, Serialize};

use crate::ApiError;

/// How the family paid. `other` exists in logs recorded from the command
/// line; the API takes only the first three for new payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethodApi {
    Cash,
    DebitCard,
    CreditCard,
    Other,
}

impl PaymentMethodApi {
    /// Checks a method sent for a new payment (`field` names it).
    pub fn check_new(self, field: &str) -> Result<(), ApiError> {
        match self {
            PaymentMethodApi::Other => {
                Err(ApiError::invalid(field, "choose how the family pays: cash, debit_card or credit_card"))
            }
            _ => Ok(()),
        }
    }

    /// From the name a stored operation carries (`PaymentMethod::name`).
    pub fn from_name(name: &str) -> Option<PaymentMethodApi> {
        PaymentMethod::parse(name).map(PaymentMethodApi::from)
    }
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

/// One wallet: a consumer's balance for one service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WalletRef {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub consumer: ConsumerId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub service: ServiceId,
}

impl From<WalletRef> for WalletKey {
    fn from(wallet: WalletRef) -> Self {
        WalletKey { consumer: wallet.consumer, service: wallet.service }
    }
}

impl From<WalletKey> for WalletRef {
    fn from(wallet: WalletKey) -> Self {
        WalletRef { consumer: wallet.consumer, service: wallet.service }
    }
}

/// One line of a top-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopUpLineRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub consumer: ConsumerId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub service: ServiceId,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "20.50"))]
    pub amount: Amount,
}

/// `POST /topups`: one receipt for one or more wallets of one family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopUpRequest {
    pub lines: Vec<TopUpLineRequest>,
    pub method: PaymentMethodApi,
}

impl TopUpRequest {
    /// What can be checked without the directory: 1 to
    /// [`TOPUP_LINES_MAX`] lines, no wallet twice, a method for a new
    /// payment. (That every child is of one family, the server checks.)
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.lines.is_empty() {
            return Err(ApiError::invalid("lines", "add at least one child and service to top up"));
        }
        if self.lines.len() > TOPUP_LINES_MAX {
            return Err(ApiError::invalid(
                "lines",
                format!(
                    "{} lines on one receipt: at most {TOPUP_LINES_MAX}; record the rest on a second receipt",
                    self.lines.len()
                ),
            ));
        }
        let mut seen = BTreeSet::new();
        for (index, line) in self.lines.iter().enumerate() {
            if !seen.insert((line.consumer, &line.service)) {
                return Err(ApiError::invalid(
                    format!("lines[{index}]"),
                    format!(
                        "the {} wallet of this child is on the receipt twice: put the whole amount on one line",
                        line.service
                    ),
                ));
            }
        }
        self.method.check_new("method")
    }

    /// The sum of the lines.
    pub fn total(&self) -> Balance {
        let cents = self.lines.iter().map(|l| l.amount.minor()).sum();
        Balance::from_minor(cents).expect("at most 16 lines of at most 5,000.00 each")
    }
}

/// `POST /due-payments`: payment of a due (*pagamento*), for example a
/// quarterly bus fee, credited to the wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DuePaymentRequest {
    /// Which due (as written on the notice), so it is paid once.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub due: Label,
    pub wallet: WalletRef,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "120.00"))]
    pub amount: Amount,
    pub method: PaymentMethodApi,
}

impl DuePaymentRequest {
    pub fn validate(&self) -> Result<(), ApiError> {
        self.method.check_new("method")
    }
}

/// `POST /reversals`: a storno of a top-up the same day, at the cash point
/// that recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReversalRequest {
    /// The receipt's operation (what its verification code names).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub operation: OpId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub reason: Label,
}

/// `POST /transfers` (hub): money from one sibling's wallet to another's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransferRequest {
    pub from: WalletRef,
    pub to: WalletRef,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub amount: Amount,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub reason: Label,
}

impl TransferRequest {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.from == self.to {
            return Err(ApiError::invalid("to", "the transfer goes from a wallet to the same wallet: choose another"));
        }
        Ok(())
    }
}

/// What a transfer, refund or other operation without a receipt answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recorded {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub operation: OpId,
    pub recorded_at_ms: u64,
}

/// `POST /refunds` (hub): money handed back to the family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefundRequest {
    pub wallet: WalletRef,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub amount: Amount,
    pub method: PaymentMethodApi,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub reason: Label,
}

impl RefundRequest {
    pub fn validate(&self) -> Result<(), ApiError> {
        self.method.check_new("method")
    }
}

/// The count and sum of one payment method in a daily close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MethodTotal {
    pub method: PaymentMethodApi,
    pub count: u32,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub total: Balance,
}

/// `POST /daily-close?day=` and `GET /daily-close?day=`: which day, as
/// YYYYMMDD in the realm's time zone; today when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct DayParams {
    /// YYYYMMDD, like 20261129; today when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<u32>,
}

impl DayParams {
    /// Checks that `day` is a date (field `day`), without the calendar's
    /// month lengths, which the server checks.
    pub fn validate(&self) -> Result<(), ApiError> {
        let Some(day) = self.day else { return Ok(()) };
        let (month, dom) = (day / 100 % 100, day % 100);
        if !(20_000_101..=99_991_231).contains(&day) || !(1..=12).contains(&month) || !(1..=31).contains(&dom) {
            return Err(ApiError::invalid("day", format!("{day} is not a day: write it as YYYYMMDD, like 20261129")));
        }
        Ok(())
    }
}

/// `POST /daily-close`: a cash point's close of the day (*chiusura*);
/// `GET /daily-close` reads one, or what closing the day would record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DailyClose {
    /// The close recorded; absent when the day is not closed yet (what
    /// closing it now would record).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub operation: Option<OpId>,
    /// The day closed, as YYYYMMDD (the operation's own form).
    pub day: u32,
    /// Receipts of the day that count (a reversed one does not).
    pub count: u32,
    /// What they took in, net of reversals.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub total: Balance,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    pub first_receipt: Option<ReceiptNo>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    pub last_receipt: Option<ReceiptNo>,
    pub per_method: Vec<MethodTotal>,
    /// Reversals recorded that day (their receipts are not in `count`).
    pub reversals: u32,
    /// What the reversed receipts had taken in.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub reversals_total: Balance,
}

/// `POST /remittances`: cash handed to the treasury (*versamento*) for the
/// receipts of closed days not yet remitted; the amount is their cash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemittanceRequest {
    /// What was handed over; may exceed one line's limit.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub amount: Balance,
    /// The bank's or the treasury's reference.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub reference: Label,
}

impl RemittanceRequest {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.amount.minor() <= 0 {
            return Err(ApiError::invalid("amount", "type the cash handed over, above zero, like 250.00"));
        }
        Ok(())
    }
}

/// What a remittance recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Remittance {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub operation: OpId,
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub first_receipt: ReceiptNo,
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub last_receipt: ReceiptNo,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub amount: Balance,
    pub reference: String,
    pub recorded_at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(consumer: u8, service: &str, amount: &str) -> TopUpLineRequest {
        TopUpLineRequest {
            consumer: ConsumerId([consumer; 16]),
            service: ServiceId::parse(service).unwrap(),
            amount: Amount::parse(amount).unwrap(),
        }
    }

    #[test]
    fn a_top_up_has_one_to_sixteen_lines_each_wallet_once() {
        let mut request = TopUpRequest { lines: vec![], method: PaymentMethodApi::Cash };
        assert_eq!(request.validate().unwrap_err().field.as_deref(), Some("lines"));
        request.lines = vec![line(1, "mensa", "20"), line(2, "mensa", "20"), line(1, "scuolabus", "5")];
        assert!(request.validate().is_ok());
        assert_eq!(request.total(), Balance::from_minor(4_500).unwrap());
        request.lines.push(line(2, "mensa", "1"));
        let error = request.validate().unwrap_err();
        assert_eq!(error.field.as_deref(), Some("lines[3]"));
        assert!(error.message.contains("twice"));
        request.lines = (0..=TOPUP_LINES_MAX as u8).map(|i| line(i, "mensa", "1")).collect();
        assert!(request.validate().unwrap_err().message.contains("at most 16"));
        request.lines.pop();
        assert!(request.validate().is_ok());
        request.method = PaymentMethodApi::Other;
        assert_eq!(request.validate().unwrap_err().field.as_deref(), Some("method"));
    }

    #[test]
    fn a_top_up_reads_from_json_with_amounts_as_strings_and_refuses_bad_ones() {
        let consumer = "01".repeat(16);
        let json = format!(
            r#"{{"lines":[{{"consumer":"{consumer}","service":"mensa","amount":"20.50"}}],"method":"debit_card"}}"#
        );
        let request: TopUpRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(request.lines[0].amount.minor(), 2_050);
        assert_eq!(request.method, PaymentMethodApi::DebitCard);
        assert_eq!(serde_json::from_str::<TopUpRequest>(&serde_json::to_string(&request).unwrap()).unwrap(), request);
        for bad in ["12.345", "-5", "0", "1e3"] {
            assert!(serde_json::from_str::<TopUpRequest>(&json.replace("20.50", bad)).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<TopUpRequest>(&json.replace("\"20.50\"", "20.5")).is_err());
    }

    #[test]
    fn methods_map_both_ways_with_the_operation_model() {
        for method in [PaymentMethod::Cash, PaymentMethod::DebitCard, PaymentMethod::CreditCard, PaymentMethod::Other] {
            assert_eq!(PaymentMethod::from(PaymentMethodApi::from(method)), method);
            assert_eq!(PaymentMethodApi::from_name(method.name()), Some(method.into()));
        }
    }

    #[test]
    fn a_transfer_goes_between_two_wallets_and_a_remittance_is_above_zero() {
        let wallet = WalletRef { consumer: ConsumerId([1; 16]), service: ServiceId::parse("mensa").unwrap() };
        let request = TransferRequest {
            from: wallet.clone(),
            to: wallet,
            amount: Amount::parse("5").unwrap(),
            reason: Label::parse("sibling").unwrap(),
        };
        assert_eq!(request.validate().unwrap_err().field.as_deref(), Some("to"));
        let remittance = RemittanceRequest { amount: Balance::ZERO, reference: Label::parse("CRO 123").unwrap() };
        assert_eq!(remittance.validate().unwrap_err().field.as_deref(), Some("amount"));
    }

    #[test]
    fn a_day_is_written_yyyymmdd() {
        assert!(DayParams::default().validate().is_ok());
        assert!(DayParams { day: Some(20_261_129) }.validate().is_ok());
        for bad in [202_611_290, 20_261_329, 20_261_100, 20_261_132, 19_991_231] {
            let error = DayParams { day: Some(bad) }.validate().unwrap_err();
            assert_eq!(error.field.as_deref(), Some("day"), "{bad}");
        }
    }
}
