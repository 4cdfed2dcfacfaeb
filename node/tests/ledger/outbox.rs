//! What the hub queues for families, over a real SQLite hub: one receipt per
//! channel the family chose when a top-up counts (recorded at the hub or
//! ingested from a cash point, once however often it arrives, a flagged one
//! once accepted in review), nothing for a family that chose none or for a
//! cash point, and one reminder per downward crossing of a threshold.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use saldo_node::directory::ServiceRecord;
use saldo_node::node::{Node, TopUpRequestLine};
use saldo_node::store::Store;
use saldo_node::store::outbox::{Channel, OutboxRow, Purpose};
use saldo_node::{Clock, generate, import};
use saldo_sync::{
    Amount, Balance, Body, ConsumerId, DeviceKey, Hlc, Label, OfflineLimits, OpId, Operation, PaymentMethod, RealmId,
    ReceiptNo, Role, Seq, ServiceId, SignedOp, TopUp, TopUpLine, WalletKey,
};

#[derive(Debug, Default)]
struct StepClock(AtomicU64);

impl Clock for StepClock {
    fn now_ms(&self) -> u64 {
        1_790_000_000_000 + self.0.fetch_add(1, Ordering::SeqCst)
    }
}

fn key(n: u8) -> DeviceKey {
    DeviceKey::from_secret_bytes(&blake3::derive_key("saldo outbox test key", &[n]))
}

fn label(text: &str) -> Label {
    Label::parse(text).unwrap()
}

fn amount(text: &str) -> Amount {
    Amount::parse(text).unwrap()
}

/// A cash point signing its own log, offline.
struct CashPoint {
    key: DeviceKey,
    seq: u64,
    head: OpId,
    receipts: u64,
}

impl CashPoint {
    fn top_up(&mut self, realm: &RealmId, wallet: &WalletKey, amount: Amount, recorded_ms: u64) -> SignedOp {
        self.seq += 1;
        self.receipts += 1;
        let op = Operation {
            author: self.key.author(),
            seq: Seq(self.seq),
            prev: self.head,
            hlc: Hlc::from_parts(recorded_ms, 0),
            hub_seen: Seq(1),
            body: Body::TopUp(TopUp {
                receipt: ReceiptNo(self.receipts),
                lines: vec![TopUpLine { wallet: wallet.clone(), amount }],
                method: PaymentMethod::Cash,
                operator: None,
            }),
        }
        .sign(realm, &self.key);
        self.head = op.id;
        op
    }
}

/// The families of the test, by what they chose.
struct Families {
    /// No choice made, e-mail and phone given: both channels.
    both: ConsumerId,
    /// `notify=none`.
    none: ConsumerId,
    /// `notify=sms`, `language=en`.
    sms_en: ConsumerId,
}

struct Realm {
    hub: Node,
    families: Families,
    cash_point: CashPoint,
}

/// A hub with three families (one child each, canteen at 5.00 EUR a meal,
/// reminders at 3 meals left and none left) and an enrolled cash point.
fn realm() -> Realm {
    let mut hub = Node::create_hub(
        Store::open_in_memory().unwrap(),
        key(0),
        key(1),
        &label("Comune di Prova"),
        Arc::new(StepClock::default()),
    )
    .unwrap();
    hub.set_meta_text(saldo_node::node::META_PUBLIC_URL, "https://saldo.prova.example.it/").unwrap();
    // Three generated families, each given both contacts and its choice.
    let mut generated = Vec::new();
    generate::write_csv(&mut generated, 40, 11).unwrap();
    let mut reader = csv::Reader::from_reader(generated.as_slice());
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<&str> = headers.iter().collect();
    header.extend(["notify", "language"]);
    out.write_record(&header).unwrap();
    let mut payers: Vec<String> = Vec::new();
    let mut children: Vec<String> = Vec::new();
    for record in reader.records() {
        let record = record.unwrap();
        let payer = record[column("payer_fiscal_code")].to_string();
        if payers.contains(&payer) || payers.len() == 3 {
            continue;
        }
        let choice = [("", ""), ("none", ""), ("sms", "en")][payers.len()];
        payers.push(payer);
        children.push(record[column("consumer_fiscal_code")].to_string());
        let mut fields: Vec<String> = record.iter().map(str::to_string).collect();
        fields[column("email")] = format!("famiglia{}@example.org", payers.len());
        fields[column("phone")] = format!("+39 333 000000{}", payers.len());
        fields[column("services")] = "Mensa".into();
        fields.extend([choice.0.to_string(), choice.1.to_string()]);
        out.write_record(&fields).unwrap();
    }
    let csv = out.into_inner().unwrap();
    let report = import::import_csv(&mut hub, csv.as_slice(), &|_, _| {}).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    hub.put_service(&ServiceRecord {
        id: mensa(),
        name: label("Mensa"),
        floor: Balance::parse("-50").unwrap(),
        tariff: Some(amount("5.00")),
        reminders: vec![3, 0],
    })
    .unwrap();
    let child = |n: usize| ConsumerId::derive(&saldo_sync::CodiceFiscale::parse(&children[n]).unwrap());
    let families = Families { both: child(0), none: child(1), sms_en: child(2) };
    let cash_point = CashPoint { key: key(2), seq: 0, head: OpId::NONE, receipts: 0 };
    let limits = OfflineLimits {
        per_operation: amount("500"),
        unconfirmed_total: Balance::parse("5000").unwrap(),
        offline_secs_max: 86_400 * 365,
    };
    hub.enrol(cash_point.key.author(), Role::CashPoint, &label("Edicola Centrale"), limits).unwrap();
    Realm { hub, families, cash_point }
}

fn mensa() -> ServiceId {
    ServiceId::parse("mensa").unwrap()
}

fn wallet(consumer: ConsumerId) -> WalletKey {
    WalletKey { consumer, service: mensa() }
}

fn outbox(hub: &mut Node) -> Vec<OutboxRow> {
    // The ingest notes receipts due; the service's writer expands them
    // into messages after the commit.
    hub.expand_receipts_due(u32::MAX).unwrap();
    let tx = hub.store_mut().read().unwrap();
    let mut rows = tx.outbox_messages(None, None, 1_000).unwrap();
    rows.reverse();
    // Receipts are queued as data and written out when read.
    rows.iter_mut().for_each(saldo_node::outbox::queue::materialize);
    rows
}

fn about(hub: &mut Node, op: &OpId) -> Vec<OutboxRow> {
    outbox(hub).into_iter().filter(|m| m.about == op.0).collect()
}

fn top_up_at_hub(hub: &mut Node, consumer: ConsumerId, amount_text: &str) -> OpId {
    let line = TopUpRequestLine { consumer, service: mensa(), amount: amount(amount_text) };
    let receipt = hub.record_top_up(&[line], PaymentMethod::Cash, Some(&label("Ufficio"))).unwrap();
    OpId::from_hex(&receipt.verification_code).unwrap()
}

fn child_name(hub: &mut Node, consumer: &ConsumerId) -> String {
    let tx = hub.store_mut().read().unwrap();
    let row = tx.consumer(consumer).unwrap().unwrap();
    format!("{} {}", row.surname, row.name)
}

#[test]
fn a_top_up_at_the_hub_queues_one_receipt_per_channel_the_family_chose() {
    let mut r = realm();
    let op = top_up_at_hub(&mut r.hub, r.families.both, "20.00");
    let name = child_name(&mut r.hub, &r.families.both);
    let messages = about(&mut r.hub, &op);
    let channels: Vec<Channel> = messages.iter().map(|m| m.channel).collect();
    assert_eq!(channels, vec![Channel::Email, Channel::Sms], "{messages:#?}");
    let email = &messages[0];
    assert_eq!(
        (email.purpose, email.recipient.as_str(), email.language.as_str()),
        (Purpose::Receipt, "famiglia1@example.org", "it")
    );
    for needed in
        [name.as_str(), "20,00 €", "Saldo dopo: 20,00 €", "Comune di Prova", "https://saldo.prova.example.it/v/"]
    {
        assert!(email.body_text.contains(needed), "{needed:?} missing: {}", email.body_text);
    }
    assert!(email.body_html.as_deref().is_some_and(|h| h.contains("Ricarica")), "{email:?}");
    assert!(
        email.reference.starts_with('<') && email.reference.ends_with("@saldo.prova.example.it>"),
        "{}",
        email.reference
    );
    let sms = &messages[1];
    assert!(sms.body_text.contains("20,00 €") && sms.recipient == "+39 333 0000001", "{sms:?}");
    assert!(saldo_node::outbox::render::gsm_len(&sms.body_text) <= 160, "{}", sms.body_text);

    let second = top_up_at_hub(&mut r.hub, r.families.both, "7.50");
    let again = about(&mut r.hub, &second);
    assert!(
        again[0].body_text.contains("Saldo dopo: 27,50 €"),
        "the hub's confirmed balance after it: {}",
        again[0].body_text
    );

    let none = top_up_at_hub(&mut r.hub, r.families.none, "20.00");
    assert!(about(&mut r.hub, &none).is_empty(), "notify=none: nothing queued");

    let english = top_up_at_hub(&mut r.hub, r.families.sms_en, "15.00");
    let messages = about(&mut r.hub, &english);
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!((messages[0].channel, messages[0].language.as_str()), (Channel::Sms, "en"));
    assert!(
        messages[0].body_text.contains("Top-up") && messages[0].body_text.contains("balance 15,00 €"),
        "{}",
        messages[0].body_text
    );
}

#[test]
fn receipts_expanded_after_the_commit_show_the_balance_each_top_up_left() {
    let mut r = realm();
    // Both counted before either becomes a message (as in a catch-up).
    let first = top_up_at_hub(&mut r.hub, r.families.both, "20.00");
    let second = top_up_at_hub(&mut r.hub, r.families.both, "7.50");
    let texts = |hub: &mut Node, op: &OpId| about(hub, op).into_iter().map(|m| m.body_text).collect::<Vec<_>>();
    let first = texts(&mut r.hub, &first);
    assert!(first.len() == 2 && first[0].contains("Saldo dopo: 20,00 €"), "{first:#?}");
    let second = texts(&mut r.hub, &second);
    assert!(second[0].contains("Saldo dopo: 27,50 €"), "{second:#?}");
    // Expanded once: nothing is left due, and nothing is queued twice.
    assert_eq!(r.hub.expand_receipts_due(u32::MAX).unwrap(), 0);
    assert_eq!(outbox(&mut r.hub).len(), 4);
}

#[test]
fn a_catch_up_stored_in_one_call_gives_each_receipt_the_balance_its_own_top_up_left() {
    let mut r = realm();
    let realm_id = r.hub.realm();
    // A balance in the table before the catch-up, so that each receipt's is
    // that balance plus what the catch-up had added by then.
    top_up_at_hub(&mut r.hub, r.families.both, "5.00");
    // More operations than one part whose signatures are checked at once,
    // so the hub writes what it holds back before the last of them.
    let ops: Vec<SignedOp> = (0..600u64)
        .map(|i| {
            let consumer = if i % 3 == 2 { r.families.sms_en } else { r.families.both };
            r.cash_point.top_up(&realm_id, &wallet(consumer), amount("1.00"), 1_790_000_000_000 + i * 1_000)
        })
        .collect();
    let bytes: Vec<Vec<u8>> = ops.iter().map(SignedOp::to_bytes).collect();
    for result in r.hub.ingest(&bytes).unwrap() {
        result.unwrap();
    }
    let messages = outbox(&mut r.hub);
    let (mut both, mut sms) = (5, 0);
    for (i, op) in ops.iter().enumerate() {
        let mine: Vec<&OutboxRow> = messages.iter().filter(|m| m.about == op.id.0).collect();
        if i % 3 == 2 {
            sms += 1;
            assert_eq!(mine.len(), 1, "one SMS: {mine:#?}");
            assert!(mine[0].body_text.contains(&format!("balance {sms},00 €")), "top-up {i}: {}", mine[0].body_text);
        } else {
            both += 1;
            assert_eq!(mine.len(), 2, "an e-mail and an SMS: {mine:#?}");
            for m in mine {
                let after = match m.channel {
                    Channel::Email => format!("Saldo dopo: {both},00 €"),
                    Channel::Sms => format!("saldo {both},00 €"),
                };
                assert!(m.body_text.contains(&after), "top-up {i}, {after}: {}", m.body_text);
            }
        }
    }
}

#[test]
fn a_top_up_from_a_cash_point_is_queued_once_with_when_it_was_recorded() {
    let mut r = realm();
    let realm_id = r.hub.realm();
    let recorded_ms = 1_790_000_123_000;
    let op = r.cash_point.top_up(&realm_id, &wallet(r.families.both), amount("12.50"), recorded_ms);
    for _ in 0..2 {
        for result in r.hub.ingest(&[op.to_bytes()]).unwrap() {
            result.unwrap();
        }
    }
    let messages = about(&mut r.hub, &op.id);
    assert_eq!(messages.len(), 2, "one per channel, however often it arrives: {messages:#?}");
    assert!(messages.iter().all(|m| m.recorded_ms == recorded_ms), "{messages:#?}");
    let local = saldo_node::node::local_time(recorded_ms);
    assert!(
        messages[0].body_text.contains(&local) && messages[0].body_text.contains("Edicola Centrale"),
        "{}",
        messages[0].body_text
    );
    assert!(messages[0].body_text.contains("Ricevuta n.: 1"), "{}", messages[0].body_text);
}

#[test]
fn a_flagged_top_up_is_announced_only_once_accepted_in_review() {
    let mut r = realm();
    let realm_id = r.hub.realm();
    r.hub.revoke(r.cash_point.key.author(), &label("terminal stolen")).unwrap();
    let op = r.cash_point.top_up(&realm_id, &wallet(r.families.both), amount("30.00"), 1_790_000_500_000);
    for result in r.hub.ingest(&[op.to_bytes()]).unwrap() {
        result.unwrap();
    }
    assert_eq!(r.hub.flagged(10).unwrap().len(), 1);
    assert!(about(&mut r.hub, &op.id).is_empty(), "a flagged top-up is not announced");
    r.hub.review(&op.id, true, &label("Ufficio scuola"), &label("cash handed over")).unwrap();
    let messages = about(&mut r.hub, &op.id);
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(messages[0].body_text.contains("Saldo dopo: 30,00 €"), "{}", messages[0].body_text);
}

#[test]
fn a_cash_point_queues_nothing() {
    let mut r = realm();
    let op = top_up_at_hub(&mut r.hub, r.families.both, "5.00");
    assert_eq!(about(&mut r.hub, &op).len(), 2);
    let tmp = tempfile::tempdir().unwrap();
    let mut device = Node::join(&tmp.path().join("cp"), r.hub.realm(), key(2)).unwrap();
    let hub_log = r.hub.operations_of(&r.hub.realm().hub()).unwrap();
    for result in device.ingest(&hub_log).unwrap() {
        result.unwrap();
    }
    assert!(device.store_mut().read().unwrap().op_bytes(&op).unwrap().is_some(), "the device holds the top-up");
    assert!(outbox(&mut device).is_empty(), "a cash point has no contacts and queues nothing");
}

#[test]
fn the_import_takes_each_familys_channels_and_language_and_names_a_bad_row() {
    let mut generated = Vec::new();
    generate::write_csv(&mut generated, 3, 4).unwrap();
    let text = String::from_utf8(generated).unwrap();
    let mut lines = text.lines();
    let header = format!("{},notify,language", lines.next().unwrap());
    let rows: Vec<&str> = lines.collect();
    let choices = [("email+sms", "en"), ("pigeon", ""), ("", "de")];
    let mut csv = header;
    for (row, (notify, language)) in rows.iter().zip(choices) {
        csv.push_str(&format!("\n{row},{notify},{language}"));
    }
    let mut hub = Node::create_hub(
        Store::open_in_memory().unwrap(),
        key(0),
        key(1),
        &label("Comune di Prova"),
        Arc::new(StepClock::default()),
    )
    .unwrap();
    let report = import::import_csv(&mut hub, csv.as_bytes(), &|_, _| {}).unwrap();
    let refused: Vec<(u64, Option<&str>)> = report.rejected.iter().map(|r| (r.line, r.field)).collect();
    assert_eq!(refused, vec![(3, Some("notify")), (4, Some("language"))], "{:?}", report.rejected);
    assert!(report.rejected[0].reason.contains("email, sms, email+sms or none"), "{:?}", report.rejected);
    assert_eq!(report.accepted_rows, 1);
}

#[test]
fn reminders_go_out_once_per_downward_crossing() {
    let mut r = realm();
    let w = wallet(r.families.both);
    top_up_at_hub(&mut r.hub, r.families.both, "20.00");
    let reminders = |hub: &mut Node| outbox(hub).into_iter().filter(|m| m.purpose == Purpose::Reminder).count();
    let mut meal = 0;
    let mut charge = |hub: &mut Node| {
        meal += 1;
        hub.record_service_charge(w.clone(), amount("5.00"), &label(&format!("pasto {meal}"))).unwrap();
    };
    // 20 -> 15 (3 meals left) -> 10 -> 5 -> 0 (none left) -> -5.
    charge(&mut r.hub);
    assert_eq!(reminders(&mut r.hub), 2, "3 meals left, on e-mail and SMS");
    for _ in 0..4 {
        charge(&mut r.hub);
    }
    assert_eq!(reminders(&mut r.hub), 4, "then none left, once");
    let texts: Vec<String> =
        outbox(&mut r.hub).into_iter().filter(|m| m.purpose == Purpose::Reminder).map(|m| m.body_text).collect();
    assert!(texts[0].contains("3 addebiti") && texts[2].contains("credito esaurito"), "{texts:#?}");
    // Back above both, then down across "3 meals left" again.
    top_up_at_hub(&mut r.hub, r.families.both, "30.00");
    assert_eq!(reminders(&mut r.hub), 4);
    for _ in 0..2 {
        charge(&mut r.hub);
    }
    assert_eq!(reminders(&mut r.hub), 6, "a second crossing sends again");
}

#[test]
fn a_reversal_a_due_payment_and_a_refund_each_queue_their_receipt() {
    use saldo_api::payments::{DuePaymentRequest, PaymentMethodApi, RefundRequest, ReversalRequest, WalletRef};
    let mut r = realm();
    let child = r.families.both;
    let wallet = || WalletRef { consumer: child, service: mensa() };
    let top_up = top_up_at_hub(&mut r.hub, child, "20.00");
    let reversal = r
        .hub
        .record_reversal_request(
            &ReversalRequest { operation: top_up, reason: label("importo errato") },
            None,
            None,
            "",
        )
        .unwrap()
        .operation;
    let messages = about(&mut r.hub, &reversal);
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let text = &messages[0].body_text;
    assert!(text.starts_with("Storno") && text.contains("20,00 €") && text.contains("Saldo dopo: 0,00 €"), "{text}");
    assert!(text.contains("Ricevuta n.: 1"), "the number of the receipt it undoes: {text}");

    let due = DuePaymentRequest {
        due: label("Trasporto 1o trimestre"),
        wallet: wallet(),
        amount: amount("120.00"),
        method: PaymentMethodApi::DebitCard,
    };
    let payment = r.hub.record_due_payment_request(&due, None, None, "").unwrap().operation;
    let text = about(&mut r.hub, &payment)[0].body_text.clone();
    assert!(text.starts_with("Pagamento") && text.contains("120,00 €") && text.contains("bancomat"), "{text}");

    let refund = RefundRequest {
        wallet: wallet(),
        amount: amount("20.00"),
        method: PaymentMethodApi::Cash,
        reason: label("trasferimento ad altro comune"),
    };
    let refunded = r.hub.record_refund_request(&refund, None).unwrap().operation;
    let messages = about(&mut r.hub, &refunded);
    assert_eq!(messages.len(), 2);
    let text = &messages[0].body_text;
    assert!(text.starts_with("Rimborso") && text.contains("Saldo dopo: 100,00 €"), "{text}");
    assert!(!text.contains("/v/"), "a refund has no public verification: {text}");
}
