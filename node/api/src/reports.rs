//! The municipality's accounts as types: the daily close per cash point and
//! operator, the remittance statement an *agente contabile* signs, the
//! yearly statement per payer and child (the attestation for the 730,
//! quadro E, code 12) and the movements per service and day that the web
//! UI charts. Amounts are strings, ids hex; every report says whether it
//! counts what the hub counts or, at a cash point, its own provisional
//! operations too, and what is still awaiting a verdict or flagged.
//!
//! [`csv_cell`] neutralises a cell a spreadsheet would run as a formula;
//! [`render_yearly_html`] prints a payer's statement. No I/O here.

use std::fmt::Write as _;

use saldo_sync::{AuthorId, Balance, ConsumerId, OpId, ReceiptNo};
use serde::{Deserialize, Serialize};

use crate::ApiError;
use crate::money::format_eur;
use crate::payments::MethodTotal;
use crate::receipt::escape_html;

/// The most days one report spans (a movements chart, a remittance statement).
pub const REPORT_DAYS_MAX: u32 = 366;
/// The cap on what code 12 (school canteen, *spese di istruzione*) deducts
/// per child and year, in cents (800 EUR).
pub const CODE_12_CAP_MINOR: i64 = 80_000;

/// How a report is answered: JSON (the default), CSV, or printable HTML
/// (the yearly statement only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    #[default]
    Json,
    Csv,
    Html,
}

fn check_day(field: &str, day: u32) -> Result<(), ApiError> {
    let (month, dom) = (day / 100 % 100, day % 100);
    if !(20_000_101..=99_991_231).contains(&day) || !(1..=12).contains(&month) || !(1..=31).contains(&dom) {
        return Err(ApiError::invalid(field, format!("{day} is not a day: write it as YYYYMMDD, like 20261129")));
    }
    Ok(())
}

fn check_hex_author(field: &str, text: &Option<String>) -> Result<(), ApiError> {
    if let Some(text) = text
        && AuthorId::from_hex(text).is_err()
    {
        return Err(ApiError::invalid(
            field,
            format!("'{text}' is not a device id: 64 hex digits, as /cash-points lists"),
        ));
    }
    Ok(())
}

/// `GET /reports/daily-close`: one day, every cash point (or one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct DailyCloseParams {
    /// YYYYMMDD; today when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<u32>,
    /// One cash point's device id (hex); every one when absent. A cashier
    /// reads only their own cash point's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash_point: Option<String>,
    #[serde(default)]
    pub format: ReportFormat,
}

impl DailyCloseParams {
    pub fn validate(&self) -> Result<(), ApiError> {
        if let Some(day) = self.day {
            check_day("day", day)?;
        }
        check_hex_author("cash_point", &self.cash_point)?;
        if self.format == ReportFormat::Html {
            return Err(ApiError::invalid("format", "the daily close comes as json or csv"));
        }
        Ok(())
    }
}

/// `GET /reports/remittances` and `GET /reports/movements`: days `from`
/// to `to`, both included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct PeriodParams {
    /// First day, YYYYMMDD; the first of this month when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<u32>,
    /// Last day included, YYYYMMDD; today when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u32>,
    /// One cash point's device id (hex); every one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash_point: Option<String>,
    #[serde(default)]
    pub format: ReportFormat,
}

impl PeriodParams {
    pub fn validate(&self) -> Result<(), ApiError> {
        if let Some(from) = self.from {
            check_day("from", from)?;
        }
        if let Some(to) = self.to {
            check_day("to", to)?;
        }
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from > to
        {
            return Err(ApiError::invalid(
                "to",
                format!("{to} is before {from}: the period ends on or after it starts"),
            ));
        }
        check_hex_author("cash_point", &self.cash_point)?;
        if self.format == ReportFormat::Html {
            return Err(ApiError::invalid("format", "this report comes as json or csv"));
        }
        Ok(())
    }
}

/// `GET /reports/yearly`: one calendar year, every payer (or one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct YearlyParams {
    /// The year, like 2026; last year when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<u32>,
    /// The payer's codice fiscale; every payer when absent (HTML needs one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    #[serde(default)]
    pub format: ReportFormat,
}

impl YearlyParams {
    pub fn validate(&self) -> Result<(), ApiError> {
        if let Some(year) = self.year
            && !(2000..=9999).contains(&year)
        {
            return Err(ApiError::invalid("year", format!("{year} is not a year: write it like 2026")));
        }
        if let Some(payer) = &self.payer
            && saldo_sync::CodiceFiscale::parse(payer).is_err()
        {
            return Err(ApiError::invalid("payer", format!("'{payer}' is not a codice fiscale")));
        }
        if self.format == ReportFormat::Html && self.payer.is_none() {
            return Err(ApiError::invalid("payer", "the printable statement is per payer: give their codice fiscale"));
        }
        Ok(())
    }
}

/// A count and a total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tally {
    pub count: u32,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub total: Balance,
}

impl Tally {
    pub fn add(&mut self, minor: i64) {
        self.count += 1;
        self.total = Balance::from_minor(self.total.minor() + minor).unwrap_or(self.total);
    }
}

/// What a report leaves out: operations awaiting the hub's verdict and
/// operations the hub flagged (they count once accepted in review).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pending {
    pub awaiting_verdict: Tally,
    pub flagged: Tally,
}

/// One operator's part of a cash point's day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperatorDay {
    /// As the receipt names them; empty when none was recorded.
    pub operator: String,
    /// Receipts that count, net of reversals.
    pub receipts: Tally,
    pub per_method: Vec<MethodTotal>,
    pub reversals: Tally,
}

/// One cash point's day: its receipts per method and per operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CashPointDay {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub cash_point: AuthorId,
    pub cash_point_name: String,
    /// Receipts that count (a reversed one does not), net of reversals.
    pub receipts: Tally,
    /// First and last receipt number of the day, counted or not.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    pub first_receipt: Option<ReceiptNo>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    pub last_receipt: Option<ReceiptNo>,
    pub per_method: Vec<MethodTotal>,
    /// Reversals recorded that day, with what the reversed receipts took.
    pub reversals: Tally,
    pub operators: Vec<OperatorDay>,
    /// The daily close the cash point recorded for the day, if any.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub closed_by: Option<OpId>,
    pub pending: Pending,
}

/// `GET /reports/daily-close`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DailyCloseReport {
    pub day: u32,
    /// True at a cash point: its own operations awaiting the hub count here.
    pub provisional: bool,
    pub cash_points: Vec<CashPointDay>,
}

/// One remittance (*versamento*) in a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemittanceLine {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub operation: OpId,
    pub day: u32,
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub first_receipt: ReceiptNo,
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub last_receipt: ReceiptNo,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub amount: Balance,
    pub reference: String,
}

/// One cash point's account for a period: the cash it collected for the
/// municipality, what it handed over, what it still owes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemittanceStatement {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub cash_point: AuthorId,
    pub cash_point_name: String,
    /// Cash owed at the start of the period.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub owed_before: Balance,
    /// Cash receipts of the period that count.
    pub collected_cash: Tally,
    /// Card receipts of the period (paid to the municipality's account, not owed).
    pub collected_cards: Tally,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    pub first_receipt: Option<ReceiptNo>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    pub last_receipt: Option<ReceiptNo>,
    pub remitted: Tally,
    pub remittances: Vec<RemittanceLine>,
    /// `owed_before + collected_cash - remitted`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub owed: Balance,
    pub pending: Pending,
}

/// `GET /reports/remittances`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemittanceReport {
    pub from: u32,
    pub to: u32,
    pub provisional: bool,
    pub cash_points: Vec<RemittanceStatement>,
}

/// What a child's payments for one service came to in a year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServicePaid {
    pub service: String,
    /// Debit and credit cards: what the 730 counts (since 2020).
    pub traceable: Tally,
    /// Cash: shown apart, not deductible.
    pub cash: Tally,
    /// Recorded as `other` (command-line imports): not known as traceable.
    pub other: Tally,
    /// Handed back to the family by the office (refunds), whatever the method.
    pub refunded: Tally,
}

/// One child's year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChildYear {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub consumer: ConsumerId,
    pub fiscal_code: String,
    pub surname: String,
    pub name: String,
    pub school: Option<String>,
    pub services: Vec<ServicePaid>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub traceable: Balance,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub cash: Balance,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub other: Balance,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub refunded: Balance,
}

impl ChildYear {
    /// What the 730 may count for this child: traceable payments net of
    /// refunds, at most [`CODE_12_CAP_MINOR`].
    pub fn deductible(&self) -> Balance {
        let net = (self.traceable.minor() - self.refunded.minor()).max(0);
        Balance::from_minor(net.min(CODE_12_CAP_MINOR)).unwrap_or(Balance::ZERO)
    }
}

/// A payer's (*adulto pagante*) year: the attestation for the CAF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayerYear {
    pub payer_fiscal_code: String,
    pub payer_surname: String,
    pub payer_name: String,
    pub children: Vec<ChildYear>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub traceable: Balance,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub cash: Balance,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub other: Balance,
}

/// `GET /reports/yearly`: top-ups and payments of dues that count, by
/// payer, child and service, and the refunds apart. Transfers between
/// siblings are not payments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct YearlyReport {
    pub year: u32,
    pub realm_name: String,
    pub payers: Vec<PayerYear>,
}

/// One day's money on one service at one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MovementRow {
    pub day: u32,
    pub service: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub device: AuthorId,
    pub device_name: String,
    /// Top-ups that count (reversed ones do not), their lines on this service.
    pub top_ups: Tally,
    pub due_payments: Tally,
    /// Service charges (meals, fees).
    pub charges: Tally,
    /// Reversals recorded that day: what they undid is already out of `top_ups`.
    pub reversals: Tally,
    pub refunds: Tally,
}

/// `GET /reports/movements`: per day, service and device, in that order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MovementsReport {
    pub from: u32,
    pub to: u32,
    pub provisional: bool,
    pub rows: Vec<MovementRow>,
    pub pending: Pending,
}

/// A cell as a spreadsheet may read it: text starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return would run as a formula (names and
/// schools come from imported files), so it gets a leading `'`.
pub fn csv_cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_string(),
    }
}

fn day_text(day: u32) -> String {
    format!("{:02}/{:02}/{}", day % 100, day / 100 % 100, day / 10_000)
}

/// A payer's year as a printable A4 page: the attestation a parent takes to
/// the CAF for the 730 (quadro E, rows E8–E12, code 12). Traceable payments
/// and cash are apart; only traceable ones count, up to 800 EUR a child.
pub fn render_yearly_html(payer: &PayerYear, year: u32, realm_name: &str) -> String {
    let e = escape_html;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"it\"><head><meta charset=\"utf-8\"><title>Attestazione pagamenti {year}</title>\
         <style>@page{{size:A4;margin:15mm}}body{{font:11pt sans-serif}}table{{border-collapse:collapse;width:100%}}\
         td,th{{border:1px solid #999;padding:2pt 4pt;text-align:left}}td.n{{text-align:right}}</style></head><body>\
         <h1>{}</h1><h2>Attestazione dei pagamenti {year}</h2>\
         <p>Adulto pagante: <strong>{} {}</strong>, codice fiscale <strong>{}</strong></p>",
        e(realm_name),
        e(&payer.payer_surname),
        e(&payer.payer_name),
        e(&payer.payer_fiscal_code)
    );
    for child in &payer.children {
        let _ = write!(
            out,
            "<h3>{} {} &mdash; codice fiscale {}{}</h3><table><tr><th>Servizio</th><th>Tracciabili (carte)</th>\
             <th>Contanti</th><th>Altro</th><th>Rimborsati</th></tr>",
            e(&child.surname),
            e(&child.name),
            e(&child.fiscal_code),
            child.school.as_deref().map(|s| format!(", {}", e(s))).unwrap_or_default()
        );
        for service in &child.services {
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                e(&service.service),
                format_eur(service.traceable.total),
                format_eur(service.cash.total),
                format_eur(service.other.total),
                format_eur(service.refunded.total)
            );
        }
        let _ = write!(
            out,
            "<tr><th>Totale</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th></tr></table>\
             <p>Importo tracciabile, al netto dei rimborsi, entro il limite di 800,00 € per figlio: <strong>{}</strong></p>",
            format_eur(child.traceable),
            format_eur(child.cash),
            format_eur(child.other),
            format_eur(child.refunded),
            format_eur(child.deductible())
        );
    }
    let _ = write!(
        out,
        "<p>Modello 730, quadro E, righi E8–E12, codice 12 (spese di istruzione: mensa scolastica), al massimo \
         800,00 € per figlio. Dal 2020 sono detraibili solo i pagamenti con mezzi tracciabili: i pagamenti in \
         contanti sono indicati a parte e non sono detraibili.</p><p>Periodo: dal {} al {}.</p></body></html>",
        day_text(year * 10_000 + 101),
        day_text(year * 10_000 + 1231)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_a_spreadsheet_would_run_as_a_formula_is_quoted() {
        for text in ["=HYPERLINK(\"x\")", "+39 333", "-1+1", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(csv_cell(text), format!("'{text}"));
        }
        for text in ["Rossi", "D'Angelo", "", "12.50", "Scuola = media"] {
            assert_eq!(csv_cell(text), text);
        }
    }

    #[test]
    fn a_period_that_ends_before_it_starts_is_refused_naming_the_field() {
        let params = PeriodParams { from: Some(20261110), to: Some(20261101), ..Default::default() };
        assert_eq!(params.validate().unwrap_err().field.as_deref(), Some("to"));
        let params = DailyCloseParams { day: Some(20261340), ..Default::default() };
        assert_eq!(params.validate().unwrap_err().field.as_deref(), Some("day"));
        let params = YearlyParams { format: ReportFormat::Html, ..Default::default() };
        assert_eq!(params.validate().unwrap_err().field.as_deref(), Some("payer"));
    }

    #[test]
    fn the_printable_statement_escapes_names_and_says_cash_does_not_count() {
        let child = ChildYear {
            consumer: ConsumerId([1; 16]),
            fiscal_code: "RSSMRA15A01H501X".into(),
            surname: "<Rossi>".into(),
            name: "Maria".into(),
            school: Some("Scuola & Co".into()),
            services: vec![],
            traceable: Balance::from_minor(90_000).unwrap(),
            cash: Balance::from_minor(1_000).unwrap(),
            other: Balance::ZERO,
            refunded: Balance::from_minor(5_000).unwrap(),
        };
        assert_eq!(child.deductible(), Balance::from_minor(80_000).unwrap(), "capped");
        let payer = PayerYear {
            payer_fiscal_code: "RSSPLA80A01H501X".into(),
            payer_surname: "Rossi".into(),
            payer_name: "Paolo".into(),
            children: vec![child],
            traceable: Balance::from_minor(90_000).unwrap(),
            cash: Balance::from_minor(1_000).unwrap(),
            other: Balance::ZERO,
        };
        let html = render_yearly_html(&payer, 2026, "Comune di Prova");
        assert!(html.contains("&lt;Rossi&gt;") && html.contains("Scuola &amp; Co"), "{html}");
        assert!(html.contains("800,00") && html.contains("contanti") && html.contains("50,00"), "{html}");
        assert!(!html.contains("<Rossi>"));
    }
}
