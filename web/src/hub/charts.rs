//! The reports' charts: the movements report shaped into series (top-ups
//! per day, per cash point, each service's balance over the period) and
//! drawn by `plotters` into SVG strings the page inserts. Every chart also
//! comes as a table of the same numbers beside it (nothing told by a
//! picture or a colour alone), and series differ by marker shape too.

use std::collections::BTreeMap;

use plotters::prelude::*;
use saldo_api::money::format_eur_cents;
use saldo_api::reports::MovementsReport;

use super::logic::day_text;

/// A bar per label: (label, cents).
pub type Bars = Vec<(String, i64)>;

/// Top-ups summed per day, in day order.
pub fn top_ups_per_day(report: &MovementsReport) -> Bars {
    let mut days = BTreeMap::<u32, i64>::new();
    for row in &report.rows {
        *days.entry(row.day).or_default() += row.top_ups.total.minor();
    }
    days.into_iter().map(|(day, cents)| (day_text(day), cents)).collect()
}

/// Top-ups summed per cash point, largest first.
pub fn top_ups_per_cash_point(report: &MovementsReport) -> Bars {
    let mut points = BTreeMap::<String, i64>::new();
    for row in &report.rows {
        if row.top_ups.count > 0 {
            *points.entry(row.device_name.clone()).or_default() += row.top_ups.total.minor();
        }
    }
    let mut bars: Bars = points.into_iter().collect();
    bars.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    bars
}

/// One service's running balance over the period: (service, [(day, cents)]).
pub type Series = Vec<(String, Vec<(u32, i64)>)>;

/// Each service's money in (top-ups, due payments) less money out (charges,
/// reversals, refunds), added up day by day from the period's start. The
/// tallies are magnitudes; the signs are those of the operations.
pub fn balances_per_service(report: &MovementsReport) -> Series {
    let mut per = BTreeMap::<String, BTreeMap<u32, i64>>::new();
    for row in &report.rows {
        let net = row.top_ups.total.minor() + row.due_payments.total.minor()
            - row.charges.total.minor()
            - row.reversals.total.minor()
            - row.refunds.total.minor();
        *per.entry(row.service.clone()).or_default().entry(row.day).or_default() += net;
    }
    let days: Vec<u32> = {
        let mut all: Vec<u32> = per.values().flat_map(|d| d.keys().copied()).collect();
        all.sort_unstable();
        all.dedup();
        all
    };
    per.into_iter()
        .map(|(service, by_day)| {
            let mut running = 0;
            let points = days
                .iter()
                .map(|day| {
                    running += by_day.get(day).copied().unwrap_or(0);
                    (*day, running)
                })
                .collect();
            (service, points)
        })
        .collect()
}

const WIDTH: u32 = 720;
const HEIGHT: u32 = 320;
const INK: RGBColor = RGBColor(0x1a, 0x1a, 0x1a);
/// Dark enough on white for text and lines (at least 4.5:1).
const PALETTE: [RGBColor; 5] = [
    RGBColor(0x0b, 0x4f, 0x8a),
    RGBColor(0x8a, 0x3b, 0x00),
    RGBColor(0x0d, 0x5c, 0x2e),
    RGBColor(0x6a, 0x1b, 0x9a),
    RGBColor(0xa1, 0x12, 0x1b),
];

fn euro_axis(cents: &i64) -> String {
    // Whole euro on the axis: the table beside it has the cents.
    let text = format_eur_cents(*cents);
    text.replace(",00 €", " €")
}

fn range_of(values: impl Iterator<Item = i64>) -> (i64, i64) {
    let (mut low, mut high) = (0i64, 0i64);
    for v in values {
        low = low.min(v);
        high = high.max(v);
    }
    if low == high {
        high = low + 100;
    }
    let pad = (high - low) / 10;
    (if low < 0 { low - pad } else { low }, high + pad)
}

/// A bar chart as an SVG string; `None` when there is nothing to draw or
/// the drawing failed (the table beside it still has the numbers).
pub fn bar_chart(title: &str, bars: &Bars) -> Option<String> {
    if bars.is_empty() {
        return None;
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let (low, high) = range_of(bars.iter().map(|b| b.1));
        let n = bars.len() as u32;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18).into_font().color(&INK))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d((0u32..n).into_segmented(), low..high)
            .ok()?;
        let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        let label_of = move |v: &SegmentValue<u32>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(bars.len().min(12))
            .x_label_formatter(&label_of)
            .y_label_formatter(&euro_axis)
            .axis_style(INK)
            .label_style(("sans-serif", 13).into_font().color(&INK))
            .draw()
            .ok()?;
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(PALETTE[0].filled())
                    .margin(6)
                    .data(bars.iter().enumerate().map(|(i, b)| (i as u32, b.1))),
            )
            .ok()?;
        root.present().ok()?;
    }
    Some(svg)
}

/// A line per service as an SVG string, each with its own marker shape and
/// a legend naming it.
pub fn line_chart(title: &str, series: &Series) -> Option<String> {
    let days: Vec<u32> = series.first().map(|s| s.1.iter().map(|p| p.0).collect()).unwrap_or_default();
    if days.is_empty() {
        return None;
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let (low, high) = range_of(series.iter().flat_map(|s| s.1.iter().map(|p| p.1)));
        let last = days.len().saturating_sub(1).max(1) as u32;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18).into_font().color(&INK))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(0u32..last, low..high)
            .ok()?;
        let day_labels = days.clone();
        let label_of = move |i: &u32| day_labels.get(*i as usize).map(|d| day_text(*d)).unwrap_or_default();
        chart
            .configure_mesh()
            .x_labels(days.len().min(8))
            .x_label_formatter(&label_of)
            .y_label_formatter(&euro_axis)
            .axis_style(INK)
            .label_style(("sans-serif", 13).into_font().color(&INK))
            .draw()
            .ok()?;
        for (index, (service, points)) in series.iter().enumerate() {
            let color = PALETTE[index % PALETTE.len()];
            let coords: Vec<(u32, i64)> = points.iter().enumerate().map(|(i, p)| (i as u32, p.1)).collect();
            chart
                .draw_series(LineSeries::new(coords.clone(), color.stroke_width(2)))
                .ok()?
                .label(service.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            let shape = index % 3;
            chart
                .draw_series(coords.into_iter().map(move |c| -> DynElement<'static, SVGBackend, (u32, i64)> {
                    match shape {
                        0 => Circle::new(c, 4, color.filled()).into_dyn(),
                        1 => TriangleMarker::new(c, 5, color.filled()).into_dyn(),
                        _ => Cross::new(c, 4, color.stroke_width(2)).into_dyn(),
                    }
                }))
                .ok()?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(INK)
            .label_font(("sans-serif", 13).into_font().color(&INK))
            .draw()
            .ok()?;
        root.present().ok()?;
    }
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use saldo_api::reports::{MovementRow, Pending, Tally};
    use saldo_sync::{AuthorId, Balance};

    fn tally(cents: i64) -> Tally {
        Tally { count: u32::from(cents != 0), total: Balance::from_minor(cents).unwrap() }
    }

    fn row(day: u32, service: &str, device: &str, top_ups: i64, charges: i64) -> MovementRow {
        MovementRow {
            day,
            service: service.into(),
            device: AuthorId([device.len() as u8; 32]),
            device_name: device.into(),
            top_ups: tally(top_ups),
            due_payments: tally(0),
            charges: tally(charges),
            reversals: tally(0),
            refunds: tally(0),
        }
    }

    fn report() -> MovementsReport {
        MovementsReport {
            from: 20261101,
            to: 20261103,
            provisional: false,
            rows: vec![
                row(20261101, "mensa", "Farmacia", 2000, 0),
                row(20261101, "mensa", "Edicola Verdi", 1500, 0),
                row(20261102, "mensa", "scuola", 0, 450),
                row(20261103, "trasporto", "Farmacia", 3000, 0),
            ],
            pending: Pending::default(),
        }
    }

    #[test]
    fn movements_are_shaped_per_day_per_cash_point_and_per_service() {
        let report = report();
        assert_eq!(
            top_ups_per_day(&report),
            vec![("01/11/2026".into(), 3500), ("02/11/2026".into(), 0), ("03/11/2026".into(), 3000)]
        );
        assert_eq!(top_ups_per_cash_point(&report), vec![("Farmacia".into(), 5000), ("Edicola Verdi".into(), 1500)]);
        assert_eq!(
            balances_per_service(&report),
            vec![
                ("mensa".into(), vec![(20261101, 3500), (20261102, 3050), (20261103, 3050)]),
                ("trasporto".into(), vec![(20261101, 0), (20261102, 0), (20261103, 3000)]),
            ]
        );
    }

    #[test]
    fn charts_are_svg_drawn_by_plotters_with_their_labels() {
        let report = report();
        let bars = bar_chart("Ricariche per giorno", &top_ups_per_day(&report)).unwrap();
        assert!(bars.starts_with("<svg"), "{bars}");
        assert!(bars.contains("Ricariche per giorno") && bars.contains("01/11/2026"), "{bars}");
        assert!(bars.contains("<rect"), "{bars}");
        let lines = line_chart("Saldo per servizio", &balances_per_service(&report)).unwrap();
        assert!(lines.contains("mensa") && lines.contains("trasporto") && lines.contains("<polyline"), "{lines}");
        assert!(bar_chart("x", &Vec::new()).is_none());
        assert!(line_chart("x", &Vec::new()).is_none());
    }
}
