//! `saldo report daily-close | remittances | yearly | movements`: the
//! municipality's accounts from a data directory, as text, JSON (`--json`),
//! CSV (`--csv`, cells a spreadsheet would run as formulas neutralised) or,
//! for one payer's year, the printable attestation (`--html`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use saldo_api::reports::{DailyCloseParams, PeriodParams, ReportFormat, YearlyParams, render_yearly_html};

use super::args::DataArg;
use super::render::print_json;
use super::{OutputError, Session};
use crate::reports_csv;

#[derive(Debug, Subcommand)]
pub(super) enum ReportCommand {
    /// One day's close per cash point and operator: count and total per method, receipts, reversals.
    DailyClose {
        #[command(flatten)]
        data: DataArg,
        /// YYYYMMDD; today when absent.
        #[arg(long)]
        day: Option<u32>,
        /// One cash point's device id (hex); every one when absent.
        #[arg(long)]
        cash_point: Option<String>,
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Each cash point's remittance statement: owed before, cash collected, remitted, still owed.
    Remittances {
        #[command(flatten)]
        period: PeriodArgs,
        #[command(flatten)]
        format: FormatArgs,
    },
    /// What each payer paid in a year per child and service, traceable and cash apart
    /// (--html with --payer: the attestation for the 730).
    Yearly {
        #[command(flatten)]
        data: DataArg,
        /// The year; last year when absent.
        #[arg(long)]
        year: Option<u32>,
        /// The payer's codice fiscale; every payer when absent.
        #[arg(long)]
        payer: Option<String>,
        #[command(flatten)]
        format: FormatArgs,
        /// Print the attestation as an HTML page (needs --payer).
        #[arg(long, conflicts_with_all = ["json", "csv"])]
        html: bool,
    },
    /// The money moved per day, service and device.
    Movements {
        #[command(flatten)]
        period: PeriodArgs,
        #[command(flatten)]
        format: FormatArgs,
    },
}

#[derive(Debug, Args)]
pub(super) struct PeriodArgs {
    #[command(flatten)]
    data: DataArg,
    /// First day, YYYYMMDD; the first of this month when absent.
    #[arg(long)]
    from: Option<u32>,
    /// Last day included, YYYYMMDD; today when absent.
    #[arg(long)]
    to: Option<u32>,
    /// One cash point's device id (hex); every one when absent.
    #[arg(long)]
    cash_point: Option<String>,
}

#[derive(Debug, Args)]
pub(super) struct FormatArgs {
    /// Print JSON.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV.
    #[arg(long)]
    csv: bool,
}

impl FormatArgs {
    fn format(&self) -> ReportFormat {
        if self.csv { ReportFormat::Csv } else { ReportFormat::Json }
    }
}

impl ReportCommand {
    pub(super) fn data_dir(&self) -> PathBuf {
        match self {
            ReportCommand::DailyClose { data, .. } | ReportCommand::Yearly { data, .. } => data.data.clone(),
            ReportCommand::Remittances { period, .. } | ReportCommand::Movements { period, .. } => {
                period.data.data.clone()
            }
        }
    }
}

fn period(args: &PeriodArgs, format: ReportFormat) -> PeriodParams {
    PeriodParams { from: args.from, to: args.to, cash_point: args.cash_point.clone(), format }
}

pub(super) fn run(command: ReportCommand) -> Result<()> {
    let session = Session::open(&command.data_dir())?;
    match command {
        ReportCommand::DailyClose { day, cash_point, format, .. } => {
            let params = DailyCloseParams { day, cash_point, format: format.format() };
            let report = session.call(async |s| s.report_daily_close(None, params).await)?;
            if format.csv {
                out!("{}", reports_csv::daily_close(&report)?);
            } else if format.json {
                print_json(&report)?;
            } else {
                outln!("daily close of {}{}", report.day, provisional(report.provisional));
                for cp in &report.cash_points {
                    outln!(
                        "{}: {} receipts, {} EUR (receipts {} to {}); {} reversals, {} EUR; {}",
                        cp.cash_point_name,
                        cp.receipts.count,
                        cp.receipts.total,
                        cp.first_receipt.map_or("-".into(), |r| r.to_string()),
                        cp.last_receipt.map_or("-".into(), |r| r.to_string()),
                        cp.reversals.count,
                        cp.reversals.total,
                        if cp.closed_by.is_some() { "closed" } else { "not closed" }
                    );
                    for m in &cp.per_method {
                        outln!("  {:?}: {} receipts, {} EUR", m.method, m.count, m.total);
                    }
                    pending(&cp.pending)?;
                }
            }
        }
        ReportCommand::Remittances { period: args, format } => {
            let report = session.call(async |s| s.report_remittances(period(&args, format.format())).await)?;
            if format.csv {
                out!("{}", reports_csv::remittances(&report)?);
            } else if format.json {
                print_json(&report)?;
            } else {
                outln!("remittances from {} to {}{}", report.from, report.to, provisional(report.provisional));
                for s in &report.cash_points {
                    outln!(
                        "{}: owed before {} EUR, cash collected {} EUR ({} receipts), remitted {} EUR, owed {} EUR",
                        s.cash_point_name,
                        s.owed_before,
                        s.collected_cash.total,
                        s.collected_cash.count,
                        s.remitted.total,
                        s.owed
                    );
                    for r in &s.remittances {
                        outln!(
                            "  {} receipts {} to {}: {} EUR ({})",
                            r.day,
                            r.first_receipt,
                            r.last_receipt,
                            r.amount,
                            r.reference
                        );
                    }
                    pending(&s.pending)?;
                }
            }
        }
        ReportCommand::Yearly { year, payer, format, html, .. } => {
            if html && payer.is_none() {
                bail!("--html prints one payer's attestation: add --payer CODICE_FISCALE");
            }
            let fmt = if html { ReportFormat::Html } else { format.format() };
            let params = YearlyParams { year, payer, format: fmt };
            let report = session.call(async |s| s.report_yearly(params).await)?;
            if html {
                let Some(payer) = report.payers.first() else {
                    bail!("no payment of this payer counts in {}: check the codice fiscale and --year", report.year);
                };
                out!("{}", render_yearly_html(payer, report.year, &report.realm_name));
            } else if format.csv {
                out!("{}", reports_csv::yearly(&report)?);
            } else if format.json {
                print_json(&report)?;
            } else {
                outln!("payments of {} (traceable / cash / other)", report.year);
                for p in &report.payers {
                    outln!(
                        "{} {} ({}): {} / {} / {} EUR",
                        p.payer_surname,
                        p.payer_name,
                        p.payer_fiscal_code,
                        p.traceable,
                        p.cash,
                        p.other
                    );
                    for c in &p.children {
                        outln!(
                            "  {} {} ({}): {} / {} / {} EUR",
                            c.surname,
                            c.name,
                            c.fiscal_code,
                            c.traceable,
                            c.cash,
                            c.other
                        );
                    }
                }
                outln!("only traceable payments count for the 730 (since 2020), at most 800 EUR a child");
            }
        }
        ReportCommand::Movements { period: args, format } => {
            let report = session.call(async |s| s.report_movements(period(&args, format.format())).await)?;
            if format.csv {
                out!("{}", reports_csv::movements(&report)?);
            } else if format.json {
                print_json(&report)?;
            } else {
                outln!("movements from {} to {}{}", report.from, report.to, provisional(report.provisional));
                for r in &report.rows {
                    outln!(
                        "{} {} {}: top-ups {} ({} EUR), dues {} ({} EUR), charges {} ({} EUR), reversals {}, refunds {}",
                        r.day,
                        r.service,
                        r.device_name,
                        r.top_ups.count,
                        r.top_ups.total,
                        r.due_payments.count,
                        r.due_payments.total,
                        r.charges.count,
                        r.charges.total,
                        r.reversals.count,
                        r.refunds.count
                    );
                }
                pending(&report.pending)?;
            }
        }
    }
    Ok(())
}

fn provisional(provisional: bool) -> &'static str {
    if provisional { " (provisional: this cash point's operations awaiting the hub count)" } else { "" }
}

fn pending(pending: &saldo_api::reports::Pending) -> Result<()> {
    if pending.awaiting_verdict.count > 0 || pending.flagged.count > 0 {
        outln!(
            "  not counted: {} awaiting the hub's verdict ({} EUR), {} flagged ({} EUR)",
            pending.awaiting_verdict.count,
            pending.awaiting_verdict.total,
            pending.flagged.count,
            pending.flagged.total
        );
    }
    Ok(())
}
