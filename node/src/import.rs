//! `saldo families import`: one CSV row per consumer, columns found by
//! header name, comma or semicolon separated, UTF-8 (a leading BOM, as Excel
//! writes, is fine). Good rows go in; each rejected row is reported as
//! `line N: reason` and changes nothing. Importing the same file again
//! changes nothing: ids derive from codici fiscali and unchanged fields make
//! no directory change.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::time::{Duration, Instant};

use saldo_sync::{Balance, CodiceFiscale, ConsumerId, DocId, FamilyId, Label, Pan, PersonName, ServiceId};

use crate::directory::{self, ConsumerRecord, ContactRecord, FamilyRecord, Person, ServiceRecord};
use crate::node::{BULK_TRANSACTION_WORK_MS_MAX, Node, NodeError};
use crate::state;

/// Largest import file.
pub const IMPORT_BYTES_MAX: usize = 1 << 30;
/// Most families written per transaction (each transaction also works at
/// most [`BULK_TRANSACTION_WORK_MS_MAX`]).
pub const FAMILIES_PER_TRANSACTION: usize = 1_000;
/// Most services one consumer can be enrolled in.
pub const SERVICES_PER_CONSUMER_MAX: usize = 16;

const REQUIRED: [&str; 7] = [
    "payer_fiscal_code",
    "payer_surname",
    "payer_name",
    "consumer_fiscal_code",
    "consumer_surname",
    "consumer_name",
    "services",
];
const OPTIONAL: [&str; 5] = ["email", "phone", "pan", "school", "class"];

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file is empty: it needs a header line with the column names")]
    Empty,
    #[error("the file is over {IMPORT_BYTES_MAX} bytes: split it")]
    TooLarge,
    #[error("the header has no column {missing:?} (found: {found}): name the columns as in the documentation")]
    MissingColumn { missing: &'static str, found: String },
    #[error("the header line is not valid CSV: {0}")]
    Header(String),
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Node(Box<NodeError>),
}

impl From<NodeError> for ImportError {
    fn from(error: NodeError) -> Self {
        ImportError::Node(Box::new(error))
    }
}

/// One rejected row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    pub line: u64,
    pub reason: String,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportReport {
    pub rows: u64,
    pub accepted_rows: u64,
    pub families: u64,
    pub directory_operations: u64,
    pub services_created: Vec<String>,
    pub rejected: Vec<Rejected>,
}

#[derive(Debug, Clone)]
struct Row {
    line: u64,
    payer: Person,
    email: Option<Label>,
    phone: Option<Label>,
    consumer: Person,
    pan: Option<Pan>,
    school: Option<Label>,
    class: Option<Label>,
    services: Vec<(ServiceId, Label)>,
}

fn optional_label(text: &str, what: &'static str) -> Result<Option<Label>, String> {
    if text.trim().is_empty() { Ok(None) } else { Label::parse_as(text, what).map(Some).map_err(|e| e.to_string()) }
}

fn parse_email(text: &str) -> Result<Option<Label>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let (local, domain) = text.split_once('@').ok_or_else(|| format!("email {text:?} has no '@'"))?;
    if local.is_empty()
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || text.contains(char::is_whitespace)
    {
        return Err(format!("email {text:?} is not an address like name@example.com"));
    }
    optional_label(text, "email")
}

fn parse_phone(text: &str) -> Result<Option<Label>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let digits = text.chars().filter(char::is_ascii_digit).count();
    let allowed =
        text.chars().enumerate().all(|(i, c)| c.is_ascii_digit() || c == ' ' || c == '-' || (c == '+' && i == 0));
    if !allowed || !(6..=15).contains(&digits) {
        return Err(format!(
            "phone {text:?} is not a number of 6 to 15 digits (spaces, dashes and a leading + are fine)"
        ));
    }
    optional_label(text, "phone")
}

fn parse_row(line: u64, get: &dyn Fn(&str) -> String) -> Result<Row, String> {
    let code = |column: &str| {
        CodiceFiscale::parse(&get(column)).map_err(|e| format!("{column} {:?}: {e}", get(column).trim()))
    };
    let name = |column: &'static str| PersonName::parse_as(&get(column), column).map_err(|e| e.to_string());
    let payer =
        Person { fiscal_code: code("payer_fiscal_code")?, surname: name("payer_surname")?, name: name("payer_name")? };
    let consumer = Person {
        fiscal_code: code("consumer_fiscal_code")?,
        surname: name("consumer_surname")?,
        name: name("consumer_name")?,
    };
    let pan_text = get("pan");
    let pan = if pan_text.trim().is_empty() {
        None
    } else {
        Some(Pan::parse(&pan_text).map_err(|e| format!("pan {:?}: {e}", pan_text.trim()))?)
    };
    let mut services = Vec::new();
    for part in get("services").split(';') {
        if part.trim().is_empty() {
            continue;
        }
        let id = ServiceId::from_name(part).map_err(|e| format!("service {:?}: {e}", part.trim()))?;
        let label = Label::parse_as(part, "service name").map_err(|e| e.to_string())?;
        if !services.iter().any(|(s, _)| *s == id) {
            services.push((id, label));
        }
    }
    if services.is_empty() {
        return Err(
            "services is empty: list the consumer's services separated by ';' (for example Mensa;Trasporto)".into()
        );
    }
    if services.len() > SERVICES_PER_CONSUMER_MAX {
        return Err(format!("{} services: at most {SERVICES_PER_CONSUMER_MAX}", services.len()));
    }
    Ok(Row {
        line,
        payer,
        email: parse_email(&get("email"))?,
        phone: parse_phone(&get("phone"))?,
        consumer,
        pan,
        school: optional_label(&get("school"), "school")?,
        class: optional_label(&get("class"), "class")?,
        services,
    })
}

/// A PAN derived from the consumer's codice fiscale (so a re-import of a row
/// without a PAN finds the same one), moved on past any already taken.
fn derived_pan(code: &CodiceFiscale, attempt: u64) -> Pan {
    let hash = blake3::derive_key("saldo generated pan v1", format!("{}:{attempt}", code.as_str()).as_bytes());
    let number = u64::from_le_bytes(hash[..8].try_into().expect("8 bytes")) % 10_000_000_000;
    Pan::with_check_digit(&format!("80390{number:010}")).expect("15 digits and a check digit make a PAN")
}

/// Imports a CSV file into the hub's directory.
pub fn import_csv(
    node: &mut Node,
    mut input: impl Read,
    progress: &dyn Fn(u64, u64),
) -> Result<ImportReport, ImportError> {
    let mut bytes = Vec::new();
    input.by_ref().take(IMPORT_BYTES_MAX as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > IMPORT_BYTES_MAX {
        return Err(ImportError::TooLarge);
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(&bytes);
    let first_line = body.split(|b| *b == b'\n').next().unwrap_or_default();
    if first_line.iter().all(u8::is_ascii_whitespace) {
        return Err(ImportError::Empty);
    }
    let semicolons = first_line.iter().filter(|b| **b == b';').count();
    let commas = first_line.iter().filter(|b| **b == b',').count();
    let delimiter = if semicolons > commas { b';' } else { b',' };
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).has_headers(true).from_reader(body);
    let headers: Vec<String> = reader
        .byte_headers()
        .map_err(|e| ImportError::Header(e.to_string()))?
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_lowercase())
        .collect();
    let mut columns: HashMap<&'static str, usize> = HashMap::new();
    for name in REQUIRED.iter().chain(OPTIONAL.iter()) {
        if let Some(index) = headers.iter().position(|h| h == name) {
            columns.insert(name, index);
        }
    }
    for name in REQUIRED {
        if !columns.contains_key(name) {
            return Err(ImportError::MissingColumn { missing: name, found: headers.join(", ") });
        }
    }

    let mut report = ImportReport::default();
    let mut rows: Vec<Row> = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        let line = reader.position().line() + 1;
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                report.rows += 1;
                report.rejected.push(Rejected { line, reason: format!("not valid CSV: {e}") });
                continue;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        report.rows += 1;
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            report.rows -= 1;
            continue;
        }
        if record.iter().any(|f| f.contains(&b'\n')) {
            report.rejected.push(Rejected {
                line,
                reason: "a quote opened on this line is never closed: fix the quotes (the rest of the file was read as part of this row)"
                    .into(),
            });
            continue;
        }
        let fields: Result<Vec<&str>, _> = record.iter().map(std::str::from_utf8).collect();
        let Ok(fields) = fields else {
            report.rejected.push(Rejected { line, reason: "not valid UTF-8: save the file as UTF-8".into() });
            continue;
        };
        let get =
            |column: &str| columns.get(column).and_then(|i| fields.get(*i)).map_or(String::new(), |s| (*s).to_owned());
        match parse_row(line, &get) {
            Ok(row) => rows.push(row),
            Err(reason) => report.rejected.push(Rejected { line, reason }),
        }
    }

    // Group by payer, checking rows against each other.
    let mut families: Vec<(FamilyId, Vec<Row>)> = Vec::new();
    let mut family_index: HashMap<FamilyId, usize> = HashMap::new();
    let mut consumer_lines: HashMap<ConsumerId, u64> = HashMap::new();
    let mut pan_owner: HashMap<Pan, ConsumerId> = HashMap::new();
    for row in rows {
        let family = FamilyId::derive(&row.payer.fiscal_code);
        let consumer = ConsumerId::derive(&row.consumer.fiscal_code);
        if row.consumer.fiscal_code == row.payer.fiscal_code {
            report
                .rejected
                .push(Rejected { line: row.line, reason: "the consumer's codice fiscale is the payer's".into() });
            continue;
        }
        if let Some(first) = consumer_lines.get(&consumer) {
            report.rejected.push(Rejected {
                line: row.line,
                reason: format!("consumer {} already appears on line {first}", row.consumer.fiscal_code),
            });
            continue;
        }
        if let Some(&index) = family_index.get(&family) {
            let first = &families[index].1[0];
            if first.payer != row.payer {
                report.rejected.push(Rejected {
                    line: row.line,
                    reason: format!(
                        "payer {} is {} {} on line {}: use the same payer name on every row",
                        row.payer.fiscal_code, first.payer.name, first.payer.surname, first.line
                    ),
                });
                continue;
            }
        }
        if let Some(pan) = &row.pan {
            if let Some(owner) = pan_owner.get(pan)
                && *owner != consumer
            {
                report.rejected.push(Rejected {
                    line: row.line,
                    reason: format!("pan {pan} is already given to another consumer in this file"),
                });
                continue;
            }
            pan_owner.insert(pan.clone(), consumer);
        }
        consumer_lines.insert(consumer, row.line);
        let index = *family_index.entry(family).or_insert_with(|| {
            families.push((family, Vec::new()));
            families.len() - 1
        });
        families[index].1.push(row);
    }

    // Services first, so wallets have their floors.
    let mut all_services: BTreeSet<(ServiceId, Label)> = BTreeSet::new();
    for (_, rows) in &families {
        for row in rows {
            all_services.extend(row.services.iter().cloned());
        }
    }
    {
        let (mut tx, me) = node.write()?;
        for (id, name) in all_services {
            if tx.service(&id).map_err(NodeError::from)?.is_none() {
                me.put_service_in(
                    &mut tx,
                    &ServiceRecord { id: id.clone(), name, floor: Balance::ZERO, tariff: None },
                )?;
                report.services_created.push(id.to_string());
            }
        }
        tx.commit().map_err(NodeError::from)?;
    }

    let total = families.len() as u64;
    let mut done = 0u64;
    let mut rest = families.as_slice();
    while !rest.is_empty() {
        // Short transactions: a top-up at the counter waits behind one at most.
        let (mut tx, me) = node.write()?;
        let deadline = Instant::now() + Duration::from_millis(BULK_TRANSACTION_WORK_MS_MAX);
        let mut taken = 0;
        for (family_id, rows) in rest.iter().take(FAMILIES_PER_TRANSACTION) {
            if taken > 0 && (Instant::now() >= deadline || tx.writers_waiting()) {
                break;
            }
            taken += 1;
            let doc = state::load_doc(&tx, &DocId::Family(*family_id)).map_err(NodeError::from)?;
            let mut record = match directory::read_family(&doc, *family_id) {
                Some(existing) => existing,
                None => FamilyRecord { id: *family_id, payer: rows[0].payer.clone(), consumers: Default::default() },
            };
            record.payer = rows[0].payer.clone();
            let mut accepted = 0;
            for row in rows {
                let consumer_id = ConsumerId::derive(&row.consumer.fiscal_code);
                let existing = tx.consumer(&consumer_id).map_err(NodeError::from)?;
                if let Some(existing) = &existing
                    && existing.family != *family_id
                {
                    report.rejected.push(Rejected {
                        line: row.line,
                        reason: format!(
                            "consumer {} belongs to another family in the directory: move them there first",
                            row.consumer.fiscal_code
                        ),
                    });
                    continue;
                }
                let pan = match (&row.pan, &existing) {
                    (Some(pan), _) => {
                        if let Some(owner) = tx.consumer_by_pan(pan).map_err(NodeError::from)?
                            && owner.consumer != consumer_id
                        {
                            report.rejected.push(Rejected {
                                line: row.line,
                                reason: format!("pan {pan} already belongs to {} {}", owner.name, owner.surname),
                            });
                            continue;
                        }
                        pan.clone()
                    }
                    (None, Some(existing)) => {
                        Pan::parse(&existing.pan).unwrap_or_else(|_| derived_pan(&row.consumer.fiscal_code, 0))
                    }
                    (None, None) => {
                        let mut attempt = 0;
                        loop {
                            let candidate = derived_pan(&row.consumer.fiscal_code, attempt);
                            let taken_here = pan_owner.get(&candidate).is_some_and(|owner| *owner != consumer_id);
                            let taken =
                                taken_here || tx.consumer_by_pan(&candidate).map_err(NodeError::from)?.is_some();
                            if !taken {
                                pan_owner.insert(candidate.clone(), consumer_id);
                                break candidate;
                            }
                            attempt += 1;
                        }
                    }
                };
                let services = row.services.iter().map(|(id, _)| id.clone()).collect();
                record.consumers.insert(
                    consumer_id,
                    ConsumerRecord {
                        id: consumer_id,
                        person: row.consumer.clone(),
                        pan,
                        school: row.school.clone(),
                        class: row.class.clone(),
                        services,
                    },
                );
                accepted += 1;
            }
            done += 1;
            if accepted == 0 {
                continue;
            }
            report.accepted_rows += accepted;
            report.families += 1;
            let contacts = ContactRecord {
                email: rows.iter().find_map(|r| r.email.clone()),
                phone: rows.iter().find_map(|r| r.phone.clone()),
            };
            let written = me.put_family_in(&mut tx, &record, &contacts)?;
            report.directory_operations += written as u64;
        }
        tx.commit().map_err(NodeError::from)?;
        rest = &rest[taken..];
        progress(done, total);
    }
    report.rejected.sort_by_key(|r| r.line);
    Ok(report)
}
