//! The directory as Automerge documents: one per family (payer and children),
//! one per family's contact data (which stays at the hub), one per service.
//! Small and many documents, never one big one (CRATES.md: a 100k-record
//! document takes ~400 MiB to load).
//!
//! A document is rebuilt from all the changes the node holds for it, in any
//! order (Automerge queues a change until its dependencies arrive), so the
//! materialised view depends only on the set of changes held. Concurrent
//! edits merge field by field. This module knows Automerge; it does no SQL.

use std::collections::{BTreeMap, BTreeSet};

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, Change, ObjType, ROOT, ReadDoc};
use saldo_sync::{Amount, AuthorId, Balance, CodiceFiscale, ConsumerId, FamilyId, Label, Pan, PersonName, ServiceId};

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory change is not a valid Automerge change: {0}")]
    BadChange(String),
    #[error("directory document error: {0}")]
    Automerge(#[from] automerge::AutomergeError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub fiscal_code: CodiceFiscale,
    pub surname: PersonName,
    pub name: PersonName,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub id: ConsumerId,
    pub person: Person,
    pub pan: Pan,
    pub school: Option<Label>,
    pub class: Option<Label>,
    pub services: BTreeSet<ServiceId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyRecord {
    pub id: FamilyId,
    pub payer: Person,
    pub consumers: BTreeMap<ConsumerId, ConsumerRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactRecord {
    pub email: Option<Label>,
    pub phone: Option<Label>,
    /// Which channels receive receipts and reminders; `None`: every
    /// channel with a contact given.
    pub notify: Option<Notify>,
    /// The language of the messages; `None`: Italian.
    pub language: Option<saldo_api::Lang>,
}

impl ContactRecord {
    /// The channels a family's messages go to, with the address of each.
    pub fn channels(&self) -> Vec<(crate::store::outbox::Channel, &str)> {
        let notify = self.notify.unwrap_or(Notify::EmailAndSms);
        let mut channels = Vec::new();
        if let (true, Some(email)) = (notify.email(), &self.email) {
            channels.push((crate::store::outbox::Channel::Email, email.as_str()));
        }
        if let (true, Some(phone)) = (notify.sms(), &self.phone) {
            channels.push((crate::store::outbox::Channel::Sms, phone.as_str()));
        }
        channels
    }

    pub fn language(&self) -> saldo_api::Lang {
        self.language.unwrap_or_default()
    }
}

/// Which channels a family chose for receipts and reminders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Notify {
    Email,
    Sms,
    EmailAndSms,
    Nothing,
}

impl Notify {
    /// As imported and stored: `email`, `sms`, `email+sms`, `none`.
    pub fn name(self) -> &'static str {
        match self {
            Notify::Email => "email",
            Notify::Sms => "sms",
            Notify::EmailAndSms => "email+sms",
            Notify::Nothing => "none",
        }
    }
    pub fn parse(text: &str) -> Option<Notify> {
        match text.trim().to_ascii_lowercase().replace(' ', "").as_str() {
            "email" | "e-mail" => Some(Notify::Email),
            "sms" => Some(Notify::Sms),
            "email+sms" | "sms+email" | "both" => Some(Notify::EmailAndSms),
            "none" | "nessuno" => Some(Notify::Nothing),
            _ => None,
        }
    }
    pub fn email(self) -> bool {
        matches!(self, Notify::Email | Notify::EmailAndSms)
    }
    pub fn sms(self) -> bool {
        matches!(self, Notify::Sms | Notify::EmailAndSms)
    }
}

/// Parses a language as imported and stored: `it` or `en`.
pub fn parse_language(text: &str) -> Option<saldo_api::Lang> {
    match text.trim().to_ascii_lowercase().as_str() {
        "it" => Some(saldo_api::Lang::It),
        "en" => Some(saldo_api::Lang::En),
        _ => None,
    }
}

pub fn language_name(lang: saldo_api::Lang) -> &'static str {
    lang.pick("it", "en")
}

/// Most reminder thresholds a service has.
pub const REMINDERS_PER_SERVICE_MAX: usize = 5;
/// The deepest threshold, in charges (meals) either side of zero.
pub const REMINDER_CHARGES_MAX: i32 = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRecord {
    pub id: ServiceId,
    pub name: Label,
    /// How far below zero a service charge may take a wallet.
    pub floor: Balance,
    /// The price of one charge (a meal, a ride), when the service has one.
    pub tariff: Option<Amount>,
    /// Reminder thresholds in charges left (3: three meals left, 0: none
    /// left, -3: a debt of three meals), highest first; they need a tariff.
    pub reminders: Vec<i32>,
}

/// Parses reminder thresholds as typed or stored: `3,0,-3` (charges left;
/// empty: none). Sorted highest first, without repeats.
pub fn parse_reminders(text: &str) -> Result<Vec<i32>, String> {
    let mut reminders = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let n: i32 = part.parse().map_err(|_| {
            format!("{part:?} is not a whole number of charges: write thresholds like 3,0,-3 (3 left, none left, a debt of 3)")
        })?;
        if n.abs() > REMINDER_CHARGES_MAX {
            return Err(format!(
                "{n} charges is too far: thresholds go from -{REMINDER_CHARGES_MAX} to {REMINDER_CHARGES_MAX}"
            ));
        }
        reminders.push(n);
    }
    reminders.sort_unstable_by(|a, b| b.cmp(a));
    reminders.dedup();
    if reminders.len() > REMINDERS_PER_SERVICE_MAX {
        return Err(format!("{} thresholds given: at most {REMINDERS_PER_SERVICE_MAX}", reminders.len()));
    }
    Ok(reminders)
}

pub fn reminders_text(reminders: &[i32]) -> String {
    reminders.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// Rebuilds a document from its changes, in any order.
pub fn load(changes: Vec<Vec<u8>>) -> Result<AutoCommit, DirectoryError> {
    let mut doc = AutoCommit::new();
    let mut parsed = Vec::with_capacity(changes.len());
    for bytes in changes {
        parsed.push(Change::from_bytes(bytes).map_err(|e| DirectoryError::BadChange(e.to_string()))?);
    }
    doc.apply_changes(parsed)?;
    Ok(doc)
}

fn actor_for(author: &AuthorId) -> ActorId {
    ActorId::from(&author.0)
}

fn get_str(doc: &AutoCommit, obj: &automerge::ObjId, key: &str) -> Option<String> {
    match doc.get(obj, key) {
        Ok(Some((value, _))) => value.as_str().map(str::to_owned),
        _ => None,
    }
}

fn get_map(doc: &AutoCommit, obj: &automerge::ObjId, key: &str) -> Option<automerge::ObjId> {
    match doc.get(obj, key) {
        Ok(Some((automerge::Value::Object(ObjType::Map), id))) => Some(id),
        _ => None,
    }
}

fn ensure_map(doc: &mut AutoCommit, obj: &automerge::ObjId, key: &str) -> Result<automerge::ObjId, DirectoryError> {
    match get_map(doc, obj, key) {
        Some(id) => Ok(id),
        None => Ok(doc.put_object(obj, key, ObjType::Map)?),
    }
}

/// Writes `value` under `key` only if it differs, so an unchanged re-import
/// makes no change at all.
fn put_if_changed(
    doc: &mut AutoCommit,
    obj: &automerge::ObjId,
    key: &str,
    value: Option<&str>,
) -> Result<(), DirectoryError> {
    let current = get_str(doc, obj, key);
    match value {
        Some(v) if current.as_deref() != Some(v) => doc.put(obj, key, v)?,
        None if current.is_some() => doc.delete(obj, key)?,
        _ => {}
    }
    Ok(())
}

/// Edits `doc` (rebuilt from its changes) towards `record` as `author`, and
/// returns the change bytes, or `None` when nothing differs.
pub fn change_family(
    doc: AutoCommit,
    author: &AuthorId,
    record: &FamilyRecord,
) -> Result<Option<Edited>, DirectoryError> {
    let mut doc = doc.with_actor(actor_for(author));
    put_if_changed(&mut doc, &ROOT, "payer_fiscal_code", Some(record.payer.fiscal_code.as_str()))?;
    put_if_changed(&mut doc, &ROOT, "payer_surname", Some(record.payer.surname.as_str()))?;
    put_if_changed(&mut doc, &ROOT, "payer_name", Some(record.payer.name.as_str()))?;
    let consumers = ensure_map(&mut doc, &ROOT, "consumers")?;
    for consumer in record.consumers.values() {
        let key = consumer.id.to_hex();
        let entry = ensure_map(&mut doc, &consumers, &key)?;
        put_if_changed(&mut doc, &entry, "fiscal_code", Some(consumer.person.fiscal_code.as_str()))?;
        put_if_changed(&mut doc, &entry, "surname", Some(consumer.person.surname.as_str()))?;
        put_if_changed(&mut doc, &entry, "name", Some(consumer.person.name.as_str()))?;
        put_if_changed(&mut doc, &entry, "pan", Some(consumer.pan.as_str()))?;
        put_if_changed(&mut doc, &entry, "school", consumer.school.as_ref().map(Label::as_str))?;
        put_if_changed(&mut doc, &entry, "class", consumer.class.as_ref().map(Label::as_str))?;
        // Services are a map used as a set, so concurrent enrolments merge.
        let services = ensure_map(&mut doc, &entry, "services")?;
        let held: Vec<String> = doc.keys(&services).collect();
        for service in &consumer.services {
            if !held.iter().any(|h| h == service.as_str()) {
                doc.put(&services, service.as_str(), true)?;
            }
        }
        for stale in held.iter().filter(|h| !consumer.services.iter().any(|s| s.as_str() == h.as_str())) {
            doc.delete(&services, stale.as_str())?;
        }
    }
    Ok(finish(doc))
}

/// An edit of a document: the change to record and the document with it.
#[derive(Debug)]
pub struct Edited {
    pub change: Vec<u8>,
    pub doc: AutoCommit,
}

fn finish(mut doc: AutoCommit) -> Option<Edited> {
    doc.commit()?;
    let change = doc.get_last_local_change().map(|change| change.raw_bytes().to_vec())?;
    Some(Edited { change, doc })
}

pub fn change_contacts(
    doc: AutoCommit,
    author: &AuthorId,
    record: &ContactRecord,
) -> Result<Option<Edited>, DirectoryError> {
    let mut doc = doc.with_actor(actor_for(author));
    put_if_changed(&mut doc, &ROOT, "email", record.email.as_ref().map(Label::as_str))?;
    put_if_changed(&mut doc, &ROOT, "phone", record.phone.as_ref().map(Label::as_str))?;
    put_if_changed(&mut doc, &ROOT, "notify", record.notify.map(Notify::name))?;
    put_if_changed(&mut doc, &ROOT, "language", record.language.map(language_name))?;
    Ok(finish(doc))
}

pub fn change_service(
    doc: AutoCommit,
    author: &AuthorId,
    record: &ServiceRecord,
) -> Result<Option<Edited>, DirectoryError> {
    let mut doc = doc.with_actor(actor_for(author));
    put_if_changed(&mut doc, &ROOT, "id", Some(record.id.as_str()))?;
    put_if_changed(&mut doc, &ROOT, "name", Some(record.name.as_str()))?;
    put_if_changed(&mut doc, &ROOT, "floor", Some(&record.floor.to_string()))?;
    put_if_changed(&mut doc, &ROOT, "tariff", record.tariff.map(|t| t.to_string()).as_deref())?;
    let reminders = (!record.reminders.is_empty()).then(|| reminders_text(&record.reminders));
    put_if_changed(&mut doc, &ROOT, "reminders", reminders.as_deref())?;
    Ok(finish(doc))
}

/// Reads a family document. Entries that do not parse (which a hub never
/// writes) are left out rather than trusted.
pub fn read_family(doc: &AutoCommit, id: FamilyId) -> Option<FamilyRecord> {
    let person = |obj: &automerge::ObjId, cf: &str, surname: &str, name: &str| -> Option<Person> {
        Some(Person {
            fiscal_code: CodiceFiscale::parse(&get_str(doc, obj, cf)?).ok()?,
            surname: PersonName::parse(&get_str(doc, obj, surname)?).ok()?,
            name: PersonName::parse(&get_str(doc, obj, name)?).ok()?,
        })
    };
    let payer = person(&ROOT, "payer_fiscal_code", "payer_surname", "payer_name")?;
    let mut consumers = BTreeMap::new();
    if let Some(map) = get_map(doc, &ROOT, "consumers") {
        for key in doc.keys(&map).collect::<Vec<_>>() {
            let Some(entry) = get_map(doc, &map, &key) else {
                continue;
            };
            let Ok(consumer_id) = ConsumerId::from_hex(&key) else {
                continue;
            };
            let Some(person) = person(&entry, "fiscal_code", "surname", "name") else {
                continue;
            };
            let Some(pan) = get_str(doc, &entry, "pan").and_then(|p| Pan::parse(&p).ok()) else {
                continue;
            };
            let services = get_map(doc, &entry, "services")
                .map(|s| doc.keys(&s).filter_map(|k| ServiceId::parse(&k).ok()).collect())
                .unwrap_or_default();
            consumers.insert(
                consumer_id,
                ConsumerRecord {
                    id: consumer_id,
                    person,
                    pan,
                    school: get_str(doc, &entry, "school").and_then(|s| Label::parse(&s).ok()),
                    class: get_str(doc, &entry, "class").and_then(|s| Label::parse(&s).ok()),
                    services,
                },
            );
        }
    }
    Some(FamilyRecord { id, payer, consumers })
}

pub fn read_contacts(doc: &AutoCommit) -> ContactRecord {
    ContactRecord {
        email: get_str(doc, &ROOT, "email").and_then(|s| Label::parse(&s).ok()),
        phone: get_str(doc, &ROOT, "phone").and_then(|s| Label::parse(&s).ok()),
        notify: get_str(doc, &ROOT, "notify").and_then(|s| Notify::parse(&s)),
        language: get_str(doc, &ROOT, "language").and_then(|s| parse_language(&s)),
    }
}

pub fn read_service(doc: &AutoCommit) -> Option<ServiceRecord> {
    Some(ServiceRecord {
        id: ServiceId::parse(&get_str(doc, &ROOT, "id")?).ok()?,
        name: Label::parse(&get_str(doc, &ROOT, "name")?).ok()?,
        floor: Balance::parse(&get_str(doc, &ROOT, "floor")?).ok()?,
        tariff: get_str(doc, &ROOT, "tariff").and_then(|t| Amount::parse(&t).ok()),
        reminders: get_str(doc, &ROOT, "reminders").and_then(|r| parse_reminders(&r).ok()).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(cf: &str, surname: &str, name: &str) -> Person {
        Person {
            fiscal_code: CodiceFiscale::parse(cf).unwrap(),
            surname: PersonName::parse(surname).unwrap(),
            name: PersonName::parse(name).unwrap(),
        }
    }

    fn family() -> FamilyRecord {
        let child = person("MRTMTT25D09F205Z", "Moretti", "Matteo");
        let id = ConsumerId::derive(&child.fiscal_code);
        let consumer = ConsumerRecord {
            id,
            person: child,
            pan: Pan::with_check_digit("800000000000001").unwrap(),
            school: Some(Label::parse("Primaria Rodari").unwrap()),
            class: Some(Label::parse("3B").unwrap()),
            services: [ServiceId::parse("mensa").unwrap()].into_iter().collect(),
        };
        let payer = person("RSSMRA85T10A562S", "Rossi", "Mario");
        FamilyRecord {
            id: FamilyId::derive(&payer.fiscal_code),
            payer,
            consumers: [(id, consumer)].into_iter().collect(),
        }
    }

    #[test]
    fn a_family_round_trips_and_an_unchanged_edit_makes_no_change() {
        let hub = AuthorId([1; 32]);
        let record = family();
        let change = change_family(AutoCommit::new(), &hub, &record).unwrap().unwrap().change;
        let doc = load(vec![change.clone()]).unwrap();
        assert_eq!(read_family(&doc, record.id).unwrap(), record);
        assert!(change_family(doc, &hub, &record).unwrap().is_none());
    }

    #[test]
    fn concurrent_edits_merge_field_by_field_in_any_order() {
        let (office, clerk) = (AuthorId([1; 32]), AuthorId([2; 32]));
        let record = family();
        let base = change_family(AutoCommit::new(), &office, &record).unwrap().unwrap().change;
        let mut moved = record.clone();
        moved.consumers.values_mut().for_each(|c| c.class = Some(Label::parse("4B").unwrap()));
        let class_change = change_family(load(vec![base.clone()]).unwrap(), &clerk, &moved).unwrap().unwrap().change;
        let mut enrolled = record.clone();
        enrolled.consumers.values_mut().for_each(|c| {
            c.services.insert(ServiceId::parse("trasporto").unwrap());
        });
        let service_change =
            change_family(load(vec![base.clone()]).unwrap(), &office, &enrolled).unwrap().unwrap().change;
        let one = load(vec![base.clone(), class_change.clone(), service_change.clone()]).unwrap();
        let other = load(vec![service_change, class_change, base]).unwrap();
        let (a, b) = (read_family(&one, record.id).unwrap(), read_family(&other, record.id).unwrap());
        assert_eq!(a, b);
        let merged = a.consumers.values().next().unwrap();
        assert_eq!(merged.class.as_ref().unwrap().as_str(), "4B");
        assert_eq!(merged.services.len(), 2);
    }
}
