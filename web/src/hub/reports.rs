//! Reports: the daily close, the remittance statement, the yearly statement
//! and the movements per service and day with their charts (drawn by
//! `plotters` into SVG, each with a table of the same numbers), and the
//! API's CSV of each as a download link.

use leptos::prelude::*;
use leptos::task::spawn_local;
use saldo_api::Lang;
use saldo_api::money::format_eur;
use saldo_api::reports::{
    DailyCloseParams, DailyCloseReport, MovementsReport, PeriodParams, RemittanceReport, ReportFormat, Tally,
    YearlyParams, YearlyReport,
};

use super::charts::{self, Bars, Series};
use super::i18n::{H, ht};
use super::logic::{FieldError, api_url, csv_of, day_text, parse_day};
use super::net;
use super::ui::{Errors, outcome, t};
use crate::app::ctx;
use crate::i18n::method;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Daily,
    Remittances,
    Yearly,
    Movements,
}

impl Kind {
    fn code(self) -> &'static str {
        match self {
            Kind::Daily => "daily",
            Kind::Remittances => "remittances",
            Kind::Yearly => "yearly",
            Kind::Movements => "movements",
        }
    }

    fn of(code: &str) -> Kind {
        match code {
            "remittances" => Kind::Remittances,
            "yearly" => Kind::Yearly,
            "daily" => Kind::Daily,
            _ => Kind::Movements,
        }
    }

    fn title(self) -> H {
        match self {
            Kind::Daily => H::DailyCloseReport,
            Kind::Remittances => H::RemittanceReport,
            Kind::Yearly => H::YearlyReport,
            Kind::Movements => H::MovementsReport,
        }
    }
}

#[derive(Clone)]
enum Shown {
    Daily(DailyCloseReport),
    Remittances(RemittanceReport),
    Yearly(YearlyReport),
    Movements(MovementsReport),
}

fn tally(t: &Tally) -> String {
    format!("{} · {}", t.count, format_eur(t.total))
}

/// What the form asks: the report's JSON URL and its CSV twin (and the
/// printable statement of one payer's year).
fn urls(
    lang: Lang,
    kind: Kind,
    day: &str,
    from: &str,
    to: &str,
    year: &str,
    payer: &str,
) -> Result<(String, String, Option<String>), Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut read = |field: &str, text: &str| {
        parse_day(lang, text).map_err(|e| errors.push(FieldError::new(field, e))).ok().flatten()
    };
    match kind {
        Kind::Daily => {
            let params = DailyCloseParams { day: read("day", day), ..Default::default() };
            params.validate().map_err(|e| vec![e.into()])?;
            if !errors.is_empty() {
                return Err(errors);
            }
            Ok((
                api_url("/reports/daily-close", &params),
                csv_of("/reports/daily-close", &params, |p, f| p.format = f),
                None,
            ))
        }
        Kind::Remittances | Kind::Movements => {
            let params = PeriodParams { from: read("from", from), to: read("to", to), ..Default::default() };
            if !errors.is_empty() {
                return Err(errors);
            }
            params.validate().map_err(|e| vec![e.into()])?;
            let path = if kind == Kind::Movements { "/reports/movements" } else { "/reports/remittances" };
            Ok((api_url(path, &params), csv_of(path, &params, |p, f| p.format = f), None))
        }
        Kind::Yearly => {
            let year = match year.trim() {
                "" => None,
                text => Some(text.parse::<u32>().map_err(|_| {
                    vec![FieldError::new(
                        "year",
                        lang.pick("scrivi l'anno, per esempio 2026", "type the year, like 2026"),
                    )]
                })?),
            };
            let payer = Some(payer.trim().to_uppercase()).filter(|p| !p.is_empty());
            let params = YearlyParams { year, payer, format: ReportFormat::Json };
            params.validate().map_err(|e| vec![e.into()])?;
            let html = params.payer.is_some().then(|| {
                let mut html = params.clone();
                html.format = ReportFormat::Html;
                api_url("/reports/yearly", &html)
            });
            Ok((api_url("/reports/yearly", &params), csv_of("/reports/yearly", &params, |p, f| p.format = f), html))
        }
    }
}

#[component]
pub fn Reports() -> impl IntoView {
    let ctx = ctx();
    let kind = RwSignal::new(Kind::Movements);
    let (day, from, to) = (RwSignal::new(String::new()), RwSignal::new(String::new()), RwSignal::new(String::new()));
    let (year, payer) = (RwSignal::new(String::new()), RwSignal::new(String::new()));
    let shown = RwSignal::new(None::<Shown>);
    let links = RwSignal::new(None::<(String, Option<String>)>);
    let errors = Errors::new();
    let fields: &'static [&'static str] = &["day", "from", "to", "year", "payer"];
    let show = move || {
        let lang = ctx.lang.get_untracked();
        let k = kind.get_untracked();
        let (json, csv, html) = match urls(
            lang,
            k,
            &day.get_untracked(),
            &from.get_untracked(),
            &to.get_untracked(),
            &year.get_untracked(),
            &payer.get_untracked(),
        ) {
            Ok(urls) => urls,
            Err(found) => return errors.show(found, fields),
        };
        spawn_local(async move {
            let answer = match k {
                Kind::Daily => net::get_url::<DailyCloseReport>(&json).await.map(Shown::Daily),
                Kind::Remittances => net::get_url::<RemittanceReport>(&json).await.map(Shown::Remittances),
                Kind::Yearly => net::get_url::<YearlyReport>(&json).await.map(Shown::Yearly),
                Kind::Movements => net::get_url::<MovementsReport>(&json).await.map(Shown::Movements),
            };
            match answer {
                Ok(report) => {
                    errors.clear();
                    shown.set(Some(report));
                    links.set(Some((csv, html)));
                }
                Err(e) => errors.api(e, fields),
            }
        });
    };
    show();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        show();
    };
    view! {
        <form on:submit=submit class="grid">
            <div class="field">
                <label for="report-kind">{t(H::ReportKind)}</label>
                <select id="report-kind" prop:value=move || kind.get().code()
                    on:change=move |ev| { kind.set(Kind::of(&event_target_value(&ev))); shown.set(None); links.set(None); }>
                    {[Kind::Movements, Kind::Daily, Kind::Remittances, Kind::Yearly].into_iter().map(|k| {
                        view! { <option value=k.code()>{t(k.title())}</option> }
                    }).collect_view()}
                </select>
            </div>
            {date_field(kind, errors, "day", H::Day, day, |k| k == Kind::Daily, H::DayHelp)}
            {date_field(kind, errors, "from", H::From, from, |k| matches!(k, Kind::Remittances | Kind::Movements), H::FromHelp)}
            {date_field(kind, errors, "to", H::To, to, |k| matches!(k, Kind::Remittances | Kind::Movements), H::DayHelp)}
            {text_field(kind, errors, "year", H::Year, year, Some(H::YearHelp))}
            {text_field(kind, errors, "payer", H::FiscalCode, payer, None)}
            {outcome(errors)}
            <button type="submit">{t(H::Show)}</button>
        </form>
        {move || links.get().map(|(csv, html)| view! {
            <p class="downloads">
                <a href=csv download="" id="report-csv">{t(H::DownloadCsv)}</a>
                {html.map(|h| view! { " · " <a href=h target="_blank">{t(H::YearlyReport)}</a> })}
            </p>
        })}
        {move || shown.get().map(|report| { let lang = ctx.lang.get(); render(lang, report) })}
    }
}

fn date_field(
    kind: RwSignal<Kind>,
    errors: Errors,
    id: &'static str,
    label: H,
    value: RwSignal<String>,
    visible: fn(Kind) -> bool,
    help: H,
) -> impl IntoView {
    let error = errors.of(id);
    let (error_id, help_id) = (format!("report-{id}-error"), format!("report-{id}-help"));
    let described = format!("{help_id} {error_id}");
    view! {
        <div class="field" hidden=move || !visible(kind.get())>
            <label for=format!("report-{id}")>{t(label)}</label>
            <input id=format!("report-{id}") type="date" prop:value=value on:input=move |ev| value.set(event_target_value(&ev))
                aria-describedby=described aria-invalid=move || if error().is_some() { "true" } else { "false" } />
            <p class="help" id=help_id>{t(help)}</p>
            <p class="error" id=error_id>{error}</p>
        </div>
    }
}

fn text_field(
    kind: RwSignal<Kind>,
    errors: Errors,
    id: &'static str,
    label: H,
    value: RwSignal<String>,
    help: Option<H>,
) -> impl IntoView {
    let error = errors.of(id);
    let (error_id, help_id) = (format!("report-{id}-error"), format!("report-{id}-help"));
    let described = if help.is_some() { format!("{help_id} {error_id}") } else { error_id.clone() };
    view! {
        <div class="field" hidden=move || kind.get() != Kind::Yearly>
            <label for=format!("report-{id}")>{t(label)}</label>
            <input id=format!("report-{id}") type="text" autocomplete="off" prop:value=value on:input=move |ev| value.set(event_target_value(&ev))
                aria-describedby=described aria-invalid=move || if error().is_some() { "true" } else { "false" } />
            {help.map(|h| view! { <p class="help" id=help_id>{t(h)}</p> })}
            <p class="error" id=error_id>{error}</p>
        </div>
    }
}

fn render(lang: Lang, report: Shown) -> AnyView {
    match report {
        Shown::Daily(r) => daily(lang, r).into_any(),
        Shown::Remittances(r) => remittances(lang, r).into_any(),
        Shown::Yearly(r) => yearly(lang, r).into_any(),
        Shown::Movements(r) => movements(lang, r).into_any(),
    }
}

fn provisional(lang: Lang, provisional: bool) -> impl IntoView {
    provisional
        .then(|| view! { <p class="warning" role="note"><strong>"⚠ "</strong>{ht(lang, H::ProvisionalReport)}</p> })
}

fn daily(lang: Lang, r: DailyCloseReport) -> impl IntoView {
    let rows = r
        .cash_points
        .iter()
        .map(|cp| {
            let methods = cp
                .per_method
                .iter()
                .map(|m| format!("{} {} · {}", method(lang, m.method), m.count, format_eur(m.total)))
                .collect::<Vec<_>>()
                .join("; ");
            let pending = format!("{} / {}", tally(&cp.pending.awaiting_verdict), tally(&cp.pending.flagged));
            view! { <tr><td>{cp.cash_point_name.clone()}</td><td>{tally(&cp.receipts)}</td><td>{methods}</td><td>{tally(&cp.reversals)}</td><td>{pending}</td></tr> }
        })
        .collect_view();
    view! {
        <h2>{format!("{} {}", ht(lang, H::DailyCloseReport), day_text(r.day))}</h2>
        {provisional(lang, r.provisional)}
        <div class="scroll"><table id="report-table">
            <thead><tr><th scope="col">{ht(lang, H::CashPoint)}</th><th scope="col">{ht(lang, H::Receipts)}</th>
                <th scope="col">{crate::i18n::tr(lang, crate::i18n::Text::Method)}</th><th scope="col">{ht(lang, H::Reversals)}</th>
                <th scope="col">{format!("{} / {}", ht(lang, H::Pending), ht(lang, H::Flagged))}</th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
    }
}

fn remittances(lang: Lang, r: RemittanceReport) -> impl IntoView {
    let rows = r
        .cash_points
        .iter()
        .map(|cp| {
            view! { <tr><td>{cp.cash_point_name.clone()}</td><td>{format_eur(cp.owed_before)}</td><td>{tally(&cp.collected_cash)}</td>
                <td>{tally(&cp.collected_cards)}</td><td>{tally(&cp.remitted)}</td><td><strong>{format_eur(cp.owed)}</strong></td></tr> }
        })
        .collect_view();
    view! {
        <h2>{format!("{} {} – {}", ht(lang, H::RemittanceReport), day_text(r.from), day_text(r.to))}</h2>
        {provisional(lang, r.provisional)}
        <div class="scroll"><table id="report-table">
            <thead><tr><th scope="col">{ht(lang, H::CashPoint)}</th><th scope="col">{lang.pick("Da versare prima", "Owed before")}</th>
                <th scope="col">{format!("{} ({})", ht(lang, H::Collected), ht(lang, H::Cash))}</th>
                <th scope="col">{format!("{} ({})", ht(lang, H::Collected), ht(lang, H::Traceable))}</th>
                <th scope="col">{ht(lang, H::Remitted)}</th><th scope="col">{ht(lang, H::Owed)}</th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
    }
}

fn yearly(lang: Lang, r: YearlyReport) -> impl IntoView {
    let rows = r
        .payers
        .iter()
        .flat_map(|p| {
            p.children.iter().map(move |c| {
                view! { <tr><td>{format!("{} {} ({})", p.payer_surname, p.payer_name, p.payer_fiscal_code)}</td>
                    <td>{format!("{} {}", c.surname, c.name)}</td><td>{format_eur(c.traceable)}</td><td>{format_eur(c.cash)}</td>
                    <td>{format_eur(c.other)}</td><td>{format_eur(c.deductible())}</td></tr> }
            })
        })
        .collect_view();
    view! {
        <h2>{format!("{} {} · {}", ht(lang, H::YearlyReport), r.year, r.realm_name)}</h2>
        <div class="scroll"><table id="report-table">
            <thead><tr><th scope="col">{ht(lang, H::Payer)}</th><th scope="col">{crate::i18n::tr(lang, crate::i18n::Text::Child)}</th>
                <th scope="col">{ht(lang, H::Traceable)}</th><th scope="col">{ht(lang, H::Cash)}</th><th scope="col">{ht(lang, H::Other)}</th>
                <th scope="col">{ht(lang, H::Deductible)}</th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
    }
}

/// A chart and the table of its numbers.
fn bar_figure(id: &'static str, lang: Lang, title: H, bars: Bars, head: &'static str) -> impl IntoView {
    let svg = charts::bar_chart(ht(lang, title), &bars);
    let rows = bars.iter().map(|(label, cents)| view! { <tr><td>{label.clone()}</td><td>{saldo_api::money::format_eur_cents(*cents)}</td></tr> }).collect_view();
    view! {
        <figure class="chart" id=id>
            {svg.map(|svg| view! { <div class="chart-svg" role="img" aria-label=ht(lang, title) inner_html=svg></div> })}
            <figcaption>{ht(lang, title)}</figcaption>
            <details><summary>{lang.pick("I numeri del grafico", "The chart's numbers")}</summary>
                <table><thead><tr><th scope="col">{head}</th><th scope="col">{ht(lang, H::TopUps)}</th></tr></thead><tbody>{rows}</tbody></table>
            </details>
        </figure>
    }
}

fn line_figure(lang: Lang, series: Series) -> impl IntoView {
    let svg = charts::line_chart(ht(lang, H::BalancesPerService), &series);
    let rows = series
        .iter()
        .flat_map(|(service, points)| {
            points.iter().map(move |(day, cents)| view! { <tr><td>{service.clone()}</td><td>{day_text(*day)}</td><td>{saldo_api::money::format_eur_cents(*cents)}</td></tr> })
        })
        .collect_view();
    view! {
        <figure class="chart" id="chart-services">
            {svg.map(|svg| view! { <div class="chart-svg" role="img" aria-label=ht(lang, H::BalancesPerService) inner_html=svg></div> })}
            <figcaption>{ht(lang, H::BalancesPerService)}" — "{ht(lang, H::BalancesPerServiceHelp)}</figcaption>
            <details><summary>{lang.pick("I numeri del grafico", "The chart's numbers")}</summary>
                <table><thead><tr><th scope="col">{ht(lang, H::Service)}</th><th scope="col">{ht(lang, H::Day)}</th><th scope="col">{crate::i18n::tr(lang, crate::i18n::Text::Balance)}</th></tr></thead><tbody>{rows}</tbody></table>
            </details>
        </figure>
    }
}

fn movements(lang: Lang, r: MovementsReport) -> impl IntoView {
    let empty = r.rows.is_empty();
    let per_day = charts::top_ups_per_day(&r);
    let per_point = charts::top_ups_per_cash_point(&r);
    let per_service = charts::balances_per_service(&r);
    let mut rows = r.rows.clone();
    rows.sort_by(|a, b| (a.day, &a.service, &a.device_name).cmp(&(b.day, &b.service, &b.device_name)));
    let rows = rows
        .iter()
        .map(|m| {
            view! { <tr><td>{day_text(m.day)}</td><td>{m.service.clone()}</td><td>{m.device_name.clone()}</td>
            <td>{tally(&m.top_ups)}</td><td>{tally(&m.due_payments)}</td><td>{tally(&m.charges)}</td>
            <td>{tally(&m.reversals)}</td><td>{tally(&m.refunds)}</td></tr> }
        })
        .collect_view();
    view! {
        <h2>{format!("{} {} – {}", ht(lang, H::MovementsReport), day_text(r.from), day_text(r.to))}</h2>
        {provisional(lang, r.provisional)}
        <p>{format!("{}: {} · {}: {}", ht(lang, H::Pending), tally(&r.pending.awaiting_verdict), ht(lang, H::Flagged), tally(&r.pending.flagged))}</p>
        {empty.then(|| view! { <p>{ht(lang, H::NoData)}</p> })}
        <div class="charts" hidden=empty>
            {bar_figure("chart-days", lang, H::TopUpsPerDay, per_day, ht(lang, H::Day))}
            {bar_figure("chart-cash-points", lang, H::TopUpsPerCashPoint, per_point, ht(lang, H::CashPoint))}
            {line_figure(lang, per_service)}
        </div>
        <div class="scroll"><table id="report-table">
            <thead><tr><th scope="col">{ht(lang, H::Day)}</th><th scope="col">{ht(lang, H::Service)}</th><th scope="col">{ht(lang, H::CashPoint)}</th>
                <th scope="col">{ht(lang, H::TopUps)}</th><th scope="col">{ht(lang, H::DuePayments)}</th><th scope="col">{ht(lang, H::Charges)}</th>
                <th scope="col">{ht(lang, H::Reversals)}</th><th scope="col">{ht(lang, H::Refunds)}</th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
    }
}
