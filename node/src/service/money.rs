//! Money beyond the counter's top-up: payments of dues, reversals
//! (*storno*), transfers and refunds (hub), the daily close and
//! remittances. Each request that records money takes the client's
//! idempotency key: a retry answers what the first recorded.

use saldo_api::payments::{
    DailyClose, DayParams, DuePaymentRequest, Recorded, RefundRequest, Remittance, RemittanceRequest, ReversalRequest,
    TransferRequest,
};
use saldo_api::receipt::Receipt;
use saldo_sync::Label;

use super::{Operator, Result, Service, ServiceError};
use crate::node::Once;

fn name_of(operator: &Operator) -> Result<Label> {
    Label::parse_as(&operator.name, "operator").map_err(|e| ServiceError::invalid("operator", e.to_string()))
}

fn once(operator: &Operator, key: Option<String>) -> Option<Once> {
    key.map(|key| Once { scope: operator.login.to_string(), key })
}

impl Service {
    /// Records the payment of a due on one wallet, with a receipt.
    pub async fn due_payment(
        &self,
        operator: &Operator,
        request: DuePaymentRequest,
        key: Option<String>,
    ) -> Result<Receipt> {
        let (name, once, base) = (name_of(operator)?, once(operator, key), self.verify_base());
        self.write(move |node| Ok(node.record_due_payment_request(&request, Some(&name), once.as_ref(), &base)?)).await
    }

    /// Reverses a top-up recorded here today, with the reversal's receipt.
    pub async fn reversal(
        &self,
        operator: &Operator,
        request: ReversalRequest,
        key: Option<String>,
    ) -> Result<Receipt> {
        let (name, once, base) = (name_of(operator)?, once(operator, key), self.verify_base());
        self.write(move |node| Ok(node.record_reversal_request(&request, Some(&name), once.as_ref(), &base)?)).await
    }

    /// Moves money between two wallets of one family (hub only).
    pub async fn transfer(
        &self,
        operator: &Operator,
        request: TransferRequest,
        key: Option<String>,
    ) -> Result<Recorded> {
        let once = once(operator, key);
        self.write(move |node| Ok(node.record_transfer_request(&request, once.as_ref())?)).await
    }

    /// Hands a wallet's money back to the family (hub only).
    pub async fn refund(&self, operator: &Operator, request: RefundRequest, key: Option<String>) -> Result<Recorded> {
        let once = once(operator, key);
        self.write(move |node| Ok(node.record_refund_request(&request, once.as_ref())?)).await
    }

    /// Closes a day (today when no day is given) at this node.
    pub async fn close_day(&self, operator: &Operator, day: DayParams, key: Option<String>) -> Result<DailyClose> {
        day.validate()?;
        let once = once(operator, key);
        self.write(move |node| Ok(node.record_daily_close(day.day, once.as_ref())?)).await
    }

    /// A day's close as recorded, or what closing it would record.
    pub async fn daily_close(&self, day: DayParams) -> Result<DailyClose> {
        day.validate()?;
        self.read(move |node| Ok(node.daily_close(day.day)?)).await
    }

    /// Records cash handed to the treasury for closed days' receipts.
    pub async fn remittance(
        &self,
        operator: &Operator,
        request: RemittanceRequest,
        key: Option<String>,
    ) -> Result<Remittance> {
        let once = once(operator, key);
        self.write(move |node| Ok(node.record_remittance_request(&request, once.as_ref())?)).await
    }
}
