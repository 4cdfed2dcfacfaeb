//! The directory: consumers, families and their contacts, services, and the search index over consumers.

use super::{Hot, Result, Tx, consumer_id};
use rusqlite::{OptionalExtension, params};
use saldo_sync::{Balance, ConsumerId, FamilyId, Label, Pan, ServiceId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRow {
    pub consumer: ConsumerId,
    pub family: FamilyId,
    pub pan: String,
    pub fiscal_code: String,
    pub surname: String,
    pub name: String,
    pub school: Option<String>,
    pub class: Option<String>,
}

impl<'a> Tx<'a> {
    // ---- directory ----------------------------------------------------------

    pub fn add_dir_change(&self, doc: &str, op_row: i64) -> Result<()> {
        self.tx
            .prepare_cached("INSERT OR IGNORE INTO dir_changes (doc, op_row) VALUES (?1, ?2)")?
            .execute(params![doc, op_row])?;
        Ok(())
    }
    /// The stored operations carrying changes of `doc`.
    pub fn dir_change_ops(&self, doc: &str) -> Result<Vec<Vec<u8>>> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT o.bytes FROM dir_changes d JOIN ops o ON o.row = d.op_row WHERE d.doc = ?1")?;
        let rows = stmt.query_map([doc], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)
    }
    pub fn put_service(&self, service: &crate::directory::ServiceRecord) -> Result<()> {
        self.service_reminders.borrow_mut().clear();
        self.tx
            .prepare_cached(
                "INSERT INTO services (service, name, floor_minor, tariff_minor, reminders) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (service) DO UPDATE SET name = excluded.name, floor_minor = excluded.floor_minor,
                    tariff_minor = excluded.tariff_minor, reminders = excluded.reminders",
            )?
            .execute(params![
                service.id.as_str(),
                service.name.as_str(),
                service.floor.minor(),
                service.tariff.map(|t| t.minor()),
                crate::directory::reminders_text(&service.reminders),
            ])?;
        Ok(())
    }
    pub fn service(&self, service: &ServiceId) -> Result<Option<crate::directory::ServiceRecord>> {
        self.tx
            .prepare_cached(
                "SELECT service, name, floor_minor, tariff_minor, reminders FROM services WHERE service = ?1",
            )?
            .query_row([service.as_str()], service_row)
            .optional()
            .map_err(crate::store::StoreError::from)
    }
    pub fn services(&self) -> Result<Vec<crate::directory::ServiceRecord>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT service, name, floor_minor, tariff_minor, reminders FROM services ORDER BY service",
        )?;
        let rows = stmt.query_map([], service_row)?;
        rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)
    }
    /// Replaces the materialised rows of one family.
    pub fn put_family(&self, family: &crate::directory::FamilyRecord) -> Result<()> {
        self.directory_version.set(self.directory_version.get() + 1);
        let family_blob = &family.id.0[..];
        self.tx
            .prepare_cached(
                "INSERT INTO families (family, payer_fiscal_code, payer_surname, payer_name) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (family) DO UPDATE SET payer_fiscal_code = excluded.payer_fiscal_code,
                    payer_surname = excluded.payer_surname, payer_name = excluded.payer_name",
            )?
            .execute(params![
                family_blob,
                family.payer.fiscal_code.as_str(),
                family.payer.surname.as_str(),
                family.payer.name.as_str()
            ])?;
        let old: Vec<Vec<u8>> = self
            .tx
            .prepare_cached("SELECT consumer FROM consumers WHERE family = ?1")?
            .query_map([&family_blob], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for consumer in old {
            self.tx.prepare_cached("DELETE FROM search_keys WHERE consumer = ?1")?.execute([&consumer])?;
            self.tx.prepare_cached("DELETE FROM consumer_services WHERE consumer = ?1")?.execute([&consumer])?;
            self.tx.prepare_cached("DELETE FROM consumers WHERE consumer = ?1")?.execute([&consumer])?;
        }
        for consumer in family.consumers.values() {
            let id = &consumer.id.0[..];
            self.tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO consumers (consumer, family, pan, fiscal_code, surname, name, school, class)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    id,
                    family_blob,
                    consumer.pan.as_str(),
                    consumer.person.fiscal_code.as_str(),
                    consumer.person.surname.as_str(),
                    consumer.person.name.as_str(),
                    consumer.school.as_ref().map(|s| s.as_str()),
                    consumer.class.as_ref().map(|s| s.as_str()),
                ])?;
            for service in &consumer.services {
                self.tx
                    .prepare_cached("INSERT OR IGNORE INTO consumer_services (consumer, service) VALUES (?1, ?2)")?
                    .execute(params![id, service.as_str()])?;
            }
            for key in crate::search::keys_for(consumer.person.surname.as_str(), consumer.person.name.as_str()) {
                self.tx
                    .prepare_cached("INSERT OR IGNORE INTO search_keys (key, consumer) VALUES (?1, ?2)")?
                    .execute(params![key, id])?;
            }
        }
        Ok(())
    }
    pub fn put_contacts(&self, family: &FamilyId, contacts: &crate::directory::ContactRecord) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO contacts (family, email, phone, notify, language) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (family) DO UPDATE SET email = excluded.email, phone = excluded.phone,
                    notify = excluded.notify, language = excluded.language",
            )?
            .execute(params![
                &family.0[..],
                contacts.email.as_ref().map(|e| e.as_str()),
                contacts.phone.as_ref().map(|p| p.as_str()),
                contacts.notify.map(crate::directory::Notify::name),
                contacts.language.map(crate::directory::language_name),
            ])?;
        Ok(())
    }
    /// A family's whole contact record (channels and language included).
    pub fn contact_record(&self, family: &FamilyId) -> Result<Option<crate::directory::ContactRecord>> {
        self.tx
            .prepare_cached("SELECT email, phone, notify, language FROM contacts WHERE family = ?1")?
            .query_row([&family.0[..]], |r| {
                let label = |text: Option<String>| text.and_then(|t| Label::parse(&t).ok());
                Ok(crate::directory::ContactRecord {
                    email: label(r.get(0)?),
                    phone: label(r.get(1)?),
                    notify: r.get::<_, Option<String>>(2)?.and_then(|n| crate::directory::Notify::parse(&n)),
                    language: r.get::<_, Option<String>>(3)?.and_then(|l| crate::directory::parse_language(&l)),
                })
            })
            .optional()
            .map_err(crate::store::StoreError::from)
    }
    /// (email, phone) of a family.
    pub fn contacts(&self, family: &FamilyId) -> Result<Option<(Option<String>, Option<String>)>> {
        self.tx
            .prepare_cached("SELECT email, phone FROM contacts WHERE family = ?1")?
            .query_row([&family.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(crate::store::StoreError::from)
    }
    pub fn consumer(&self, consumer: &ConsumerId) -> Result<Option<ConsumerRow>> {
        self.tx
            .prepare_cached(&format!("{CONSUMER_SELECT} WHERE consumer = ?1"))?
            .query_row([&consumer.0[..]], consumer_row)
            .optional()
            .map_err(crate::store::StoreError::from)
    }
    pub fn consumer_by_pan(&self, pan: &Pan) -> Result<Option<ConsumerRow>> {
        self.tx
            .prepare_cached(&format!("{CONSUMER_SELECT} WHERE pan = ?1"))?
            .query_row([pan.as_str()], consumer_row)
            .optional()
            .map_err(crate::store::StoreError::from)
    }
    /// Consumers whose own codice fiscale, or whose payer's, is `fiscal_code`.
    pub fn consumers_by_fiscal_code(&self, fiscal_code: &str) -> Result<Vec<ConsumerRow>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "{CONSUMER_SELECT} WHERE fiscal_code = ?1
             UNION {CONSUMER_SELECT} WHERE family IN (SELECT family FROM families WHERE payer_fiscal_code = ?1)
             ORDER BY surname, name"
        ))?;
        let rows = stmt.query_map([fiscal_code], consumer_row)?;
        rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)
    }
    /// Consumers with a search key starting with `prefix`, in key order.
    pub fn consumers_by_key_prefix(&self, prefix: &str, limit: u32) -> Result<Vec<ConsumerRow>> {
        let upper = format!("{prefix}\u{10FFFF}");
        let ids: Vec<Vec<u8>> = self
            .tx
            .prepare_cached("SELECT consumer FROM search_keys WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3")?
            .query_map(params![prefix, upper, limit * 4], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut out: Vec<ConsumerRow> = Vec::new();
        for id in ids {
            if out.len() as u32 >= limit {
                break;
            }
            let id = consumer_id(id)?;
            if out.iter().any(|c| c.consumer == id) {
                continue;
            }
            if let Some(row) = self.consumer(&id)? {
                out.push(row);
            }
        }
        Ok(out)
    }
    pub fn consumer_services(&self, consumer: &ConsumerId) -> Result<Vec<ServiceId>> {
        let mut stmt =
            self.tx.prepare_cached("SELECT service FROM consumer_services WHERE consumer = ?1 ORDER BY service")?;
        let rows = stmt.query_map([&consumer.0[..]], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            if let Ok(id) = ServiceId::parse(&row?) {
                out.push(id);
            }
        }
        Ok(out)
    }
    pub fn is_enrolled(&self, consumer: &ConsumerId, service: &ServiceId) -> Result<bool> {
        let key = self.service_slot(service).map(|slot| (*consumer, slot));
        let version = self.directory_version.get();
        let known = key.and_then(|key| self.wallets.borrow().get(&key)?.enrolled);
        if let Some((enrolled, as_of)) = known
            && as_of == version
        {
            return Ok(enrolled);
        }
        let enrolled = self.hot(Hot::IsEnrolled)?.exists(params![&consumer.0[..], service.as_str()])?;
        if let Some(key) = key {
            self.wallets.borrow_mut().entry(key).or_default().enrolled = Some((enrolled, version));
        }
        Ok(enrolled)
    }
    pub fn consumer_count(&self) -> Result<u64> {
        self.tx
            .query_row("SELECT COUNT(*) FROM consumers", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(crate::store::StoreError::from)
    }
    pub fn family_count(&self) -> Result<u64> {
        self.tx
            .query_row("SELECT COUNT(*) FROM families", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(crate::store::StoreError::from)
    }
    /// A materialised view of the directory for comparisons: one line per consumer.
    pub fn directory_digest(&self) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare(
            "SELECT c.consumer, c.family, c.pan, c.fiscal_code, c.surname, c.name, COALESCE(c.school, ''), COALESCE(c.class, ''),
                    (SELECT group_concat(service, ';') FROM (SELECT service FROM consumer_services s WHERE s.consumer = c.consumer ORDER BY service))
             FROM consumers c ORDER BY c.consumer",
        )?;
        let rows = stmt.query_map([], |r| {
            let mut line = String::new();
            for i in 0..9 {
                let value: rusqlite::types::Value = r.get(i)?;
                line.push_str(&format!("{value:?}|"));
            }
            Ok(line)
        })?;
        rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)
    }
}

const CONSUMER_SELECT: &str = "SELECT consumer, family, pan, fiscal_code, surname, name, school, class FROM consumers";

fn consumer_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConsumerRow> {
    Ok(ConsumerRow {
        consumer: consumer_id(r.get(0)?)?,
        family: FamilyId::from_slice(&r.get::<_, Vec<u8>>(1)?)
            .ok_or_else(|| rusqlite::Error::InvalidColumnType(1, "family".into(), rusqlite::types::Type::Blob))?,
        pan: r.get(2)?,
        fiscal_code: r.get(3)?,
        surname: r.get(4)?,
        name: r.get(5)?,
        school: r.get(6)?,
        class: r.get(7)?,
    })
}

fn service_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<crate::directory::ServiceRecord> {
    let bad = |what: &str| rusqlite::Error::InvalidColumnType(1, what.into(), rusqlite::types::Type::Text);
    Ok(crate::directory::ServiceRecord {
        id: service_id(&r.get::<_, String>(0)?)?,
        name: Label::parse(&r.get::<_, String>(1)?).map_err(|_| bad("service name"))?,
        floor: Balance::from_minor(r.get(2)?).ok_or_else(|| bad("floor"))?,
        tariff: r.get::<_, Option<i64>>(3)?.and_then(|m| saldo_sync::Amount::from_minor(m).ok()),
        reminders: crate::directory::parse_reminders(&r.get::<_, Option<String>>(4)?.unwrap_or_default())
            .map_err(|_| bad("reminders"))?,
    })
}

pub(super) fn service_id(text: &str) -> rusqlite::Result<ServiceId> {
    ServiceId::parse(text)
        .map_err(|_| rusqlite::Error::InvalidColumnType(1, "service".into(), rusqlite::types::Type::Text))
}
