//! "Reports reconcile": a month of a realm with three cash points, each
//! day's top-ups (cash and cards, two operators each), payments of dues,
//! reversals, the hub's meal charges, daily closes and weekly remittances,
//! with days advancing on a shared clock and the cash points syncing with
//! the hub every morning and evening. The municipality's accounts must add
//! up: the daily closes sum to the movements, collected minus remitted is
//! what is owed, the yearly statements sum to the top-ups and payments of
//! dues by payer and child, and cash and traceable payments stay apart.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::TimeZone as _;
use saldo_api::payments::{
    DuePaymentRequest, PaymentMethodApi, RefundRequest, RemittanceRequest, ReversalRequest, TopUpLineRequest,
    TopUpRequest, WalletRef,
};
use saldo_node::directory::ServiceRecord;
use saldo_node::node::Node;
use saldo_node::store::Store;
use saldo_node::{Clock, generate, import};
use saldo_sync::{Amount, Balance, ConsumerId, DeviceKey, Label, OfflineLimits, Role, ServiceId, WalletKey};

use super::{catch_up, key, label, service};

/// A clock the test sets to a time of day; each reading moves it one
/// millisecond, so operations of one node keep distinct times.
#[derive(Debug, Default)]
struct DayClock(AtomicU64);

impl DayClock {
    fn set(&self, day: u32, hour: u32) {
        let date = chrono::NaiveDate::from_ymd_opt((day / 10_000) as i32, day / 100 % 100, day % 100).unwrap();
        let at = chrono::Local.from_local_datetime(&date.and_hms_opt(hour, 0, 0).unwrap()).earliest().unwrap();
        self.0.store(at.timestamp_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for DayClock {
    fn now_ms(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst)
    }
}

/// A receipt as the test remembers it: the independent model.
#[derive(Debug, Clone)]
struct Paid {
    cash_point: usize,
    day: u32,
    consumer: ConsumerId,
    service: ServiceId,
    method: PaymentMethodApi,
    minor: i64,
    reversed: bool,
    remitted: bool,
}

struct CashPoint {
    key: DeviceKey,
    node: Node,
    operators: [Label; 2],
}

fn money(minor: i64) -> Balance {
    Balance::from_minor(minor).unwrap()
}

fn deliver_log(hub: &mut Node, cash_point: &mut CashPoint) {
    let ops = cash_point.node.operations_of(&cash_point.key.author()).unwrap();
    for result in hub.ingest(&ops).unwrap() {
        result.unwrap();
    }
}

const DAYS: std::ops::RangeInclusive<u32> = 20261001..=20261028;

#[test]
fn over_a_month_the_daily_closes_movements_remittances_and_yearly_statements_reconcile() {
    let seed = 13;
    let mut rng = fastrand::Rng::with_seed(seed);
    let clock = Arc::new(DayClock::default());
    clock.set(20260930, 9);
    let mut hub = Node::create_hub(
        Store::open_in_memory().unwrap(),
        key(seed, 0),
        key(seed, 1),
        &label("Comune di Prova"),
        clock.clone(),
    )
    .unwrap();
    let mut csv = Vec::new();
    generate::write_csv(&mut csv, 12, seed).unwrap();
    let report = import::import_csv(&mut hub, csv.as_slice(), &|_, _| {}).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    hub.put_service(&ServiceRecord {
        id: service("mensa"),
        name: label("Mensa"),
        floor: Balance::parse("-20").unwrap(),
        tariff: Some(Amount::parse("4.50").unwrap()),
        reminders: Vec::new(),
    })
    .unwrap();
    let text = String::from_utf8(csv).unwrap();
    let mut consumers: Vec<(ConsumerId, ServiceId)> = Vec::new();
    for line in text.lines().skip(1) {
        let code = line.split(',').nth(5).unwrap();
        let view = hub.search(code, 5).unwrap().into_iter().find(|c| c.fiscal_code == code).unwrap();
        consumers.push((ConsumerId::from_hex(&view.consumer).unwrap(), service(&view.services[0])));
    }
    let limits = OfflineLimits {
        per_operation: Amount::parse("500").unwrap(),
        unconfirmed_total: Balance::parse("100000").unwrap(),
        offline_secs_max: 40 * 86_400,
    };
    let mut cash_points: Vec<CashPoint> = Vec::new();
    for (n, name) in ["Edicola Centrale", "Tabaccheria Nord", "Cartoleria Sud"].into_iter().enumerate() {
        let key = key(seed, 10 + n as u8);
        hub.enrol(key.author(), Role::CashPoint, &label(name), limits).unwrap();
        let node = Node::replica(
            Store::open_in_memory().unwrap(),
            hub.realm(),
            Some(DeviceKey::from_secret_bytes(&key.secret_bytes())),
            clock.clone(),
        )
        .unwrap();
        let operators = [label(&format!("Anna {n}")), label(&format!("=Luca {n}"))];
        cash_points.push(CashPoint { key, node, operators });
    }
    let mut paid: Vec<Paid> = Vec::new();
    let mut charges_minor = 0i64;
    let mut remitted_minor = vec![0i64; cash_points.len()];
    for day in DAYS {
        clock.set(day, 8);
        for cp in cash_points.iter_mut() {
            catch_up(&mut cp.node, &mut hub);
        }
        clock.set(day, 9);
        for (n, cp) in cash_points.iter_mut().enumerate() {
            for _ in 0..rng.usize(2..6) {
                let (consumer, service) = consumers[rng.usize(..consumers.len())].clone();
                let method =
                    [PaymentMethodApi::Cash, PaymentMethodApi::DebitCard, PaymentMethodApi::CreditCard][rng.usize(..3)];
                let minor = rng.i64(5..60) * 100 + rng.i64(0..100);
                let operator = cp.operators[rng.usize(..2)].clone();
                let request = TopUpRequest {
                    lines: vec![TopUpLineRequest {
                        consumer,
                        service: service.clone(),
                        amount: Amount::from_minor(minor).unwrap(),
                    }],
                    method,
                };
                let receipt = cp.node.record_top_up_request(&request, Some(&operator), None, "https://x").unwrap();
                paid.push(Paid {
                    cash_point: n,
                    day,
                    consumer,
                    service,
                    method,
                    minor,
                    reversed: false,
                    remitted: false,
                });
                if rng.usize(..8) == 0 {
                    cp.node
                        .record_reversal_request(
                            &ReversalRequest { operation: receipt.operation, reason: label("wrong child") },
                            Some(&operator),
                            None,
                            "https://x",
                        )
                        .unwrap();
                    paid.last_mut().unwrap().reversed = true;
                }
            }
            if rng.usize(..3) == 0 {
                let (consumer, service) = consumers[rng.usize(..consumers.len())].clone();
                let method = [PaymentMethodApi::Cash, PaymentMethodApi::DebitCard][rng.usize(..2)];
                let minor = 12_000;
                let request = DuePaymentRequest {
                    due: label(&format!("retta-{day}-{n}")),
                    wallet: WalletRef { consumer, service: service.clone() },
                    amount: Amount::from_minor(minor).unwrap(),
                    method,
                };
                cp.node.record_due_payment_request(&request, Some(&cp.operators[0]), None, "https://x").unwrap();
                paid.push(Paid {
                    cash_point: n,
                    day,
                    consumer,
                    service,
                    method,
                    minor,
                    reversed: false,
                    remitted: false,
                });
            }
        }
        clock.set(day, 20);
        for (n, cp) in cash_points.iter_mut().enumerate() {
            cp.node.record_daily_close(Some(day), None).unwrap();
            // What the cash point sees of its own day before the hub judged it.
            let own = cp.node.report_daily_close(Some(day), None).unwrap();
            assert!(own.provisional);
            let expected: i64 =
                paid.iter().filter(|p| p.cash_point == n && p.day == day && !p.reversed).map(|p| p.minor).sum();
            let mine = own.cash_points.iter().find(|c| c.cash_point == cp.key.author());
            assert_eq!(mine.map_or(0, |c| c.receipts.total.minor()), expected, "cash point {n} on {day}, its own view");
            assert_eq!(
                mine.map_or(0, |c| c.pending.awaiting_verdict.count + c.pending.flagged.count),
                0,
                "its own operations count here, and a reversed receipt is settled, not pending"
            );
            if day % 7 == 0 {
                let owed: i64 = paid
                    .iter()
                    .filter(|p| p.cash_point == n && !p.reversed && !p.remitted && p.method == PaymentMethodApi::Cash)
                    .map(|p| p.minor)
                    .sum();
                if owed > 0 {
                    let request = RemittanceRequest { amount: money(owed), reference: label(&format!("CRO {day}{n}")) };
                    cp.node.record_remittance_request(&request, None).unwrap();
                    for p in paid.iter_mut().filter(|p| p.cash_point == n && p.method == PaymentMethodApi::Cash) {
                        p.remitted = true;
                    }
                    remitted_minor[n] += owed;
                }
            }
            deliver_log(&mut hub, cp);
        }
        clock.set(day, 21);
        // The canteen charges a meal to some children topped up today.
        for p in paid.iter().filter(|p| p.day == day && !p.reversed).take(3) {
            let wallet = WalletKey { consumer: p.consumer, service: p.service.clone() };
            hub.record_service_charge(
                wallet,
                Amount::parse("4.50").unwrap(),
                &label(&format!("pasto-{day}-{}", p.minor)),
            )
            .unwrap();
            charges_minor += 450;
        }
    }
    // The office refunds part of one child's credit: apart from what was paid.
    let refunded = paid.iter().find(|p| !p.reversed && p.minor > 1_000).unwrap().clone();
    let refund = RefundRequest {
        wallet: WalletRef { consumer: refunded.consumer, service: refunded.service.clone() },
        amount: Amount::parse("5.00").unwrap(),
        method: PaymentMethodApi::Cash,
        reason: label("moved away"),
    };
    hub.record_refund_request(&refund, None).unwrap();
    let counted: Vec<&Paid> = paid.iter().filter(|p| !p.reversed).collect();
    assert!(paid.iter().any(|p| p.reversed), "the month has reversals");

    // The daily closes, per cash point and method, and summed, are the movements of each day.
    let movements = hub.report_movements(Some(*DAYS.start()), Some(*DAYS.end()), None).unwrap();
    assert!(!movements.provisional);
    assert_eq!(
        movements.pending.awaiting_verdict.count + movements.pending.flagged.count,
        0,
        "{:?}",
        movements.pending
    );
    for day in DAYS {
        let closes = hub.report_daily_close(Some(day), None).unwrap();
        assert!(!closes.provisional);
        let mut closes_minor = 0;
        for (n, cp) in cash_points.iter().enumerate() {
            let close = closes.cash_points.iter().find(|c| c.cash_point == cp.key.author()).unwrap();
            assert!(close.closed_by.is_some(), "cash point {n} closed {day}");
            let of_day = || counted.iter().filter(|p| p.cash_point == n && p.day == day);
            assert_eq!(close.receipts.total.minor(), of_day().map(|p| p.minor).sum::<i64>(), "cash point {n} on {day}");
            assert_eq!(close.receipts.count as usize, of_day().count());
            for method in &close.per_method {
                let model: i64 = of_day().filter(|p| p.method == method.method).map(|p| p.minor).sum();
                assert_eq!(method.total.minor(), model, "cash point {n} on {day}, {:?}", method.method);
            }
            let by_operators: i64 = close.operators.iter().map(|o| o.receipts.total.minor()).sum();
            assert_eq!(by_operators, close.receipts.total.minor(), "operators add up to the cash point");
            let reversed = paid.iter().filter(|p| p.cash_point == n && p.day == day && p.reversed);
            assert_eq!(close.reversals.count as usize, reversed.clone().count());
            assert_eq!(close.reversals.total.minor(), reversed.map(|p| p.minor).sum::<i64>());
            closes_minor += close.receipts.total.minor();
        }
        let moved: i64 = movements
            .rows
            .iter()
            .filter(|r| r.day == day)
            .map(|r| r.top_ups.total.minor() + r.due_payments.total.minor())
            .sum();
        assert_eq!(closes_minor, moved, "the closes of {day} sum to its movements");
    }
    let charged: i64 = movements.rows.iter().map(|r| r.charges.total.minor()).sum();
    assert_eq!(charged, charges_minor);

    // Collected minus remitted is what each cash point owes.
    let statements = hub.report_remittances(Some(*DAYS.start()), Some(*DAYS.end()), None).unwrap();
    for (n, cp) in cash_points.iter().enumerate() {
        let s = statements.cash_points.iter().find(|s| s.cash_point == cp.key.author()).unwrap();
        let of = |cash: bool| {
            counted
                .iter()
                .filter(|p| p.cash_point == n && (p.method == PaymentMethodApi::Cash) == cash)
                .map(|p| p.minor)
                .sum::<i64>()
        };
        assert_eq!(s.owed_before, Balance::ZERO);
        assert_eq!(s.collected_cash.total.minor(), of(true), "cash point {n}: cash collected");
        assert_eq!(s.collected_cards.total.minor(), of(false), "cash point {n}: cards, apart");
        assert_eq!(s.remitted.total.minor(), remitted_minor[n]);
        assert_eq!(s.owed.minor(), s.collected_cash.total.minor() - s.remitted.total.minor());
        let unremitted: i64 = counted
            .iter()
            .filter(|p| p.cash_point == n && p.method == PaymentMethodApi::Cash && !p.remitted)
            .map(|p| p.minor)
            .sum();
        assert_eq!(s.owed.minor(), unremitted, "cash point {n}: still owed");
        assert!(s.remittances.iter().all(|r| r.first_receipt <= r.last_receipt));
        // A later period starts from what was owed.
        let later = hub.report_remittances(Some(20261029), Some(20261030), Some(cp.key.author())).unwrap();
        assert_eq!(later.cash_points[0].owed_before, s.owed);
    }

    // The yearly statements sum to the top-ups and payments of dues, by payer and child, cash apart.
    let yearly = hub.report_yearly(Some(2026), None).unwrap();
    let mut by_child: HashMap<ConsumerId, (i64, i64)> = HashMap::new();
    for p in &counted {
        let entry = by_child.entry(p.consumer).or_default();
        if p.method == PaymentMethodApi::Cash {
            entry.1 += p.minor;
        } else {
            entry.0 += p.minor;
        }
    }
    let mut children = 0;
    let mut total = 0;
    for payer in &yearly.payers {
        let (mut traceable, mut cash) = (0, 0);
        for child in &payer.children {
            children += 1;
            assert_eq!(
                by_child.get(&child.consumer).copied().unwrap_or_default(),
                (child.traceable.minor(), child.cash.minor())
            );
            assert_eq!(child.other, Balance::ZERO);
            let refund = if child.consumer == refunded.consumer { 500 } else { 0 };
            assert_eq!(child.refunded.minor(), refund, "refunds apart");
            let services: i64 = child.services.iter().map(|s| s.traceable.total.minor() + s.cash.total.minor()).sum();
            assert_eq!(services, child.traceable.minor() + child.cash.minor());
            traceable += child.traceable.minor();
            cash += child.cash.minor();
        }
        assert_eq!((payer.traceable.minor(), payer.cash.minor()), (traceable, cash), "{}", payer.payer_fiscal_code);
        total += traceable + cash;
    }
    assert_eq!(children, by_child.len());
    let moved: i64 = movements.rows.iter().map(|r| r.top_ups.total.minor() + r.due_payments.total.minor()).sum();
    assert_eq!(total, moved, "the yearly statements sum to the month's top-ups and payments of dues");
    let one = &yearly.payers[0];
    let alone = hub.report_yearly(Some(2026), Some(&one.payer_fiscal_code)).unwrap();
    assert_eq!(alone.payers, vec![one.clone()]);
    assert!(hub.report_yearly(Some(2025), None).unwrap().payers.is_empty());

    // The cash point's own provisional view of a day agrees with the hub's.
    let cp = &mut cash_points[0];
    catch_up(&mut cp.node, &mut hub);
    let own = cp.node.report_daily_close(Some(20261015), None).unwrap();
    let at_hub = hub.report_daily_close(Some(20261015), Some(cp.key.author())).unwrap();
    assert_eq!(own.cash_points[0].receipts, at_hub.cash_points[0].receipts);
    assert_eq!(own.cash_points[0].per_method, at_hub.cash_points[0].per_method);
    assert_eq!(own.cash_points[0].closed_by, at_hub.cash_points[0].closed_by);
}

/// What an office relies on: a receipt the hub flagged shows apart in the
/// reports, as flagged, and does not count until accepted.
#[test]
fn a_flagged_top_up_is_listed_apart_and_not_counted() {
    let seed = 14;
    let clock = Arc::new(DayClock::default());
    clock.set(20261104, 9);
    let mut hub = Node::create_hub(
        Store::open_in_memory().unwrap(),
        key(seed, 0),
        key(seed, 1),
        &label("Comune di Prova"),
        clock.clone(),
    )
    .unwrap();
    let mut csv = Vec::new();
    generate::write_csv(&mut csv, 2, seed).unwrap();
    import::import_csv(&mut hub, csv.as_slice(), &|_, _| {}).unwrap();
    let text = String::from_utf8(csv).unwrap();
    let code = text.lines().nth(1).unwrap().split(',').nth(5).unwrap().to_string();
    let view = hub.search(&code, 5).unwrap().into_iter().find(|c| c.fiscal_code == code).unwrap();
    let (consumer, svc) = (ConsumerId::from_hex(&view.consumer).unwrap(), service(&view.services[0]));
    let device_key = key(seed, 10);
    let limits = OfflineLimits {
        per_operation: Amount::parse("500").unwrap(),
        unconfirmed_total: Balance::parse("100000").unwrap(),
        offline_secs_max: 86_400,
    };
    hub.enrol(device_key.author(), Role::CashPoint, &label("Edicola"), limits).unwrap();
    let mut cp = CashPoint {
        node: Node::replica(
            Store::open_in_memory().unwrap(),
            hub.realm(),
            Some(DeviceKey::from_secret_bytes(&device_key.secret_bytes())),
            clock.clone(),
        )
        .unwrap(),
        key: device_key,
        operators: [label("Anna"), label("Luca")],
    };
    catch_up(&mut cp.node, &mut hub);
    let request = TopUpRequest {
        lines: vec![TopUpLineRequest { consumer, service: svc, amount: Amount::parse("20").unwrap() }],
        method: PaymentMethodApi::Cash,
    };
    cp.node.record_top_up_request(&request, Some(&cp.operators[0]), None, "https://x").unwrap();
    // Awaiting the hub: the cash point counts it provisionally.
    let own = cp.node.report_daily_close(Some(20261104), None).unwrap();
    assert!(own.provisional);
    assert_eq!(own.cash_points[0].receipts.total, money(2_000));
    // The hub revokes the device before the top-up arrives: it is flagged.
    hub.revoke(cp.key.author(), &label("lost")).unwrap();
    deliver_log(&mut hub, &mut cp);
    let close = hub.report_daily_close(Some(20261104), None).unwrap();
    let day = close.cash_points.iter().find(|c| c.cash_point == cp.key.author()).unwrap();
    assert_eq!(day.receipts.count, 0);
    assert_eq!(day.pending.flagged.count, 1);
    assert_eq!(day.pending.flagged.total, money(2_000));
    let movements = hub.report_movements(Some(20261101), Some(20261104), None).unwrap();
    assert_eq!(movements.pending.flagged.count, 1);
    assert!(movements.rows.iter().all(|r| r.device != cp.key.author()));
    // A report spans at most REPORT_DAYS_MAX days: the limit, and one past it.
    assert!(hub.report_movements(Some(20250101), Some(20260101), None).is_ok());
    let refused = hub.report_remittances(Some(20250101), Some(20260102), None).unwrap_err();
    assert!(refused.to_string().contains("at most 366 days"), "{refused}");
}
