//! The reports as CSV (the `csv` crate), one row per line of the report,
//! amounts as `12.50`, every text cell neutralised ([`csv_cell`]): names,
//! schools and operators come from imported files and must not run as a
//! spreadsheet formula.

use saldo_api::payments::{MethodTotal, PaymentMethodApi};
use saldo_api::reports::{DailyCloseReport, MovementsReport, RemittanceReport, Tally, YearlyReport, csv_cell};

type Result<T> = std::result::Result<T, csv::Error>;

fn finish(writer: csv::Writer<Vec<u8>>) -> Result<String> {
    let bytes = writer.into_inner().map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8(bytes).expect("every cell written is UTF-8"))
}

fn method_total(methods: &[MethodTotal], method: PaymentMethodApi) -> Tally {
    methods
        .iter()
        .find(|m| m.method == method)
        .map_or_else(Tally::default, |m| Tally { count: m.count, total: m.total })
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

const METHODS: [PaymentMethodApi; 4] =
    [PaymentMethodApi::Cash, PaymentMethodApi::DebitCard, PaymentMethodApi::CreditCard, PaymentMethodApi::Other];

/// One row per cash point and operator, then one per cash point (operator
/// `*`): counts and totals per method, receipts, reversals.
pub fn daily_close(report: &DailyCloseReport) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "day",
        "cash_point",
        "cash_point_name",
        "operator",
        "receipts",
        "total",
        "cash_count",
        "cash_total",
        "debit_card_count",
        "debit_card_total",
        "credit_card_count",
        "credit_card_total",
        "other_count",
        "other_total",
        "reversals",
        "reversals_total",
        "first_receipt",
        "last_receipt",
        "closed_by",
        "awaiting_verdict",
        "flagged",
        "provisional",
    ])?;
    for cp in &report.cash_points {
        let mut rows: Vec<(String, Tally, &[MethodTotal], Tally)> =
            cp.operators.iter().map(|o| (o.operator.clone(), o.receipts, &o.per_method[..], o.reversals)).collect();
        rows.push(("*".into(), cp.receipts, &cp.per_method[..], cp.reversals));
        for (operator, receipts, methods, reversals) in rows {
            let mut record = vec![
                report.day.to_string(),
                cp.cash_point.to_hex(),
                csv_cell(&cp.cash_point_name),
                csv_cell(&operator),
                receipts.count.to_string(),
                receipts.total.to_string(),
            ];
            for method in METHODS {
                let t = method_total(methods, method);
                record.extend([t.count.to_string(), t.total.to_string()]);
            }
            record.extend([
                reversals.count.to_string(),
                reversals.total.to_string(),
                opt(cp.first_receipt),
                opt(cp.last_receipt),
                opt(cp.closed_by.map(|o| o.to_hex())),
                cp.pending.awaiting_verdict.count.to_string(),
                cp.pending.flagged.count.to_string(),
                report.provisional.to_string(),
            ]);
            w.write_record(&record)?;
        }
    }
    finish(w)
}

/// One row per cash point: owed before, collected, remitted, owed; the
/// remittances' receipt ranges in one cell.
pub fn remittances(report: &RemittanceReport) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "from",
        "to",
        "cash_point",
        "cash_point_name",
        "owed_before",
        "cash_receipts",
        "cash_collected",
        "card_receipts",
        "card_collected",
        "first_receipt",
        "last_receipt",
        "remittances",
        "remitted",
        "owed",
        "remitted_ranges",
        "awaiting_verdict",
        "flagged",
        "provisional",
    ])?;
    for s in &report.cash_points {
        let ranges = s
            .remittances
            .iter()
            .map(|r| format!("{}-{} {} ({})", r.first_receipt, r.last_receipt, r.amount, r.reference))
            .collect::<Vec<_>>()
            .join("; ");
        w.write_record([
            report.from.to_string(),
            report.to.to_string(),
            s.cash_point.to_hex(),
            csv_cell(&s.cash_point_name),
            s.owed_before.to_string(),
            s.collected_cash.count.to_string(),
            s.collected_cash.total.to_string(),
            s.collected_cards.count.to_string(),
            s.collected_cards.total.to_string(),
            opt(s.first_receipt),
            opt(s.last_receipt),
            s.remitted.count.to_string(),
            s.remitted.total.to_string(),
            s.owed.to_string(),
            csv_cell(&ranges),
            s.pending.awaiting_verdict.count.to_string(),
            s.pending.flagged.count.to_string(),
            report.provisional.to_string(),
        ])?;
    }
    finish(w)
}

/// One row per payer, child and service: traceable, cash and other apart, and refunds.
pub fn yearly(report: &YearlyReport) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "year",
        "payer_fiscal_code",
        "payer_surname",
        "payer_name",
        "child_fiscal_code",
        "child_surname",
        "child_name",
        "school",
        "service",
        "traceable_payments",
        "traceable",
        "cash_payments",
        "cash",
        "other_payments",
        "other",
        "refunds",
        "refunded",
    ])?;
    for payer in &report.payers {
        for child in &payer.children {
            for service in &child.services {
                w.write_record([
                    report.year.to_string(),
                    csv_cell(&payer.payer_fiscal_code),
                    csv_cell(&payer.payer_surname),
                    csv_cell(&payer.payer_name),
                    csv_cell(&child.fiscal_code),
                    csv_cell(&child.surname),
                    csv_cell(&child.name),
                    csv_cell(child.school.as_deref().unwrap_or_default()),
                    csv_cell(&service.service),
                    service.traceable.count.to_string(),
                    service.traceable.total.to_string(),
                    service.cash.count.to_string(),
                    service.cash.total.to_string(),
                    service.other.count.to_string(),
                    service.other.total.to_string(),
                    service.refunded.count.to_string(),
                    service.refunded.total.to_string(),
                ])?;
            }
        }
    }
    finish(w)
}

/// One row per day, service and device.
pub fn movements(report: &MovementsReport) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "day",
        "service",
        "device",
        "device_name",
        "top_ups",
        "top_ups_total",
        "due_payments",
        "due_payments_total",
        "charges",
        "charges_total",
        "reversals",
        "reversals_total",
        "refunds",
        "refunds_total",
        "provisional",
    ])?;
    for row in &report.rows {
        let mut record =
            vec![row.day.to_string(), csv_cell(&row.service), row.device.to_hex(), csv_cell(&row.device_name)];
        for t in [row.top_ups, row.due_payments, row.charges, row.reversals, row.refunds] {
            record.extend([t.count.to_string(), t.total.to_string()]);
        }
        record.push(report.provisional.to_string());
        w.write_record(&record)?;
    }
    finish(w)
}
