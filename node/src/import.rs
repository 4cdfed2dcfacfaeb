//! `saldo families import`: one CSV row per consumer, columns found by
//! header name, comma, semicolon or tab separated, UTF-8 (a leading BOM, as
//! Excel writes, is fine; a UTF-16 file is refused, saying so). Good rows go in; each rejected row is reported as
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
/// Most characters of a cell an error message quotes.
pub const EXCERPT_CHARS_MAX: usize = 40;
/// Most header columns an error message lists.
pub const COLUMNS_QUOTED_MAX: usize = 20;

const REQUIRED: [&str; 7] = [
    "payer_fiscal_code",
    "payer_surname",
    "payer_name",
    "consumer_fiscal_code",
    "consumer_surname",
    "consumer_name",
    "services",
];
const OPTIONAL: [&str; 7] = ["email", "phone", "pan", "school", "class", "notify", "language"];

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file is empty: it needs a header line with the column names")]
    Empty,
    #[error("the file is UTF-16 (as Excel's \"Unicode text\" writes it): save it as \"CSV UTF-8\" and import that")]
    Utf16,
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
    #[error(
        "the import stopped after writing {families} families ({rows} rows); they stay written, and importing the same file again writes the rest without changing them: {source}"
    )]
    Stopped { families: u64, rows: u64, source: Box<ImportError> },
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
    /// The column at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
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

/// At most [`EXCERPT_CHARS_MAX`] characters of `text`, trimmed, with "…"
/// when it was longer: what an error message quotes of a cell.
pub fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(EXCERPT_CHARS_MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// Is `bytes` UTF-16 text: a byte order mark of UTF-16, or NUL bytes in
/// its first line (text in UTF-8 has none)?
fn looks_like_utf16(bytes: &[u8]) -> bool {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return true;
    }
    let head = &bytes[..bytes.len().min(4096)];
    let first_line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    first_line.contains(&0)
}

/// The line number of each record, from the byte where the csv reader says
/// it starts: csv's own count is off by one after a CRLF line end (it counts
/// the LF when it reads the next record) and so after every line of a
/// file saved by Excel.
struct LineCounter<'a> {
    body: &'a [u8],
    byte: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(body: &'a [u8]) -> LineCounter<'a> {
        LineCounter { body, byte: 0, line: 1 }
    }

    /// The line on which the record starting at `byte` (or the line ends
    /// before it) has its first character. Records come in order.
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut start = usize::try_from(byte).unwrap_or(usize::MAX).min(self.body.len());
        while start < self.body.len() && matches!(self.body[start], b'\r' | b'\n') {
            start += 1;
        }
        if start > self.byte {
            self.line += self.body[self.byte..start].iter().filter(|b| **b == b'\n').count() as u64;
            self.byte = start;
        }
        self.line
    }
}

#[derive(Debug, Clone)]
struct Row {
    line: u64,
    payer: Person,
    email: Option<Label>,
    phone: Option<Label>,
    notify: Option<crate::directory::Notify>,
    language: Option<saldo_api::Lang>,
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
    let (local, domain) = text.split_once('@').ok_or_else(|| format!("email {:?} has no '@'", excerpt(text)))?;
    if local.is_empty()
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || text.contains(char::is_whitespace)
    {
        return Err(format!("email {:?} is not an address like name@example.com", excerpt(text)));
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
            "phone {:?} is not a number of 6 to 15 digits (spaces, dashes and a leading + are fine)",
            excerpt(text)
        ));
    }
    optional_label(text, "phone")
}

fn parse_notify(text: &str) -> Result<Option<crate::directory::Notify>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    crate::directory::Notify::parse(text).map(Some).ok_or_else(|| {
        format!(
            "notify {:?} is not a choice: write email, sms, email+sms or none (empty: every contact given)",
            excerpt(text)
        )
    })
}

fn parse_language(text: &str) -> Result<Option<saldo_api::Lang>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    crate::directory::parse_language(text)
        .map(Some)
        .ok_or_else(|| format!("language {:?} is not offered: write it (Italian) or en (English)", excerpt(text)))
}

/// A row's refusal: the column at fault (when one is) and why.
type RowError = (Option<&'static str>, String);

fn parse_row(line: u64, get: &dyn Fn(&str) -> String) -> Result<Row, RowError> {
    let code = |column: &'static str| {
        CodiceFiscale::parse(&get(column))
            .map_err(|e| (Some(column), format!("{column} {:?}: {e}", excerpt(&get(column)))))
    };
    let name =
        |column: &'static str| PersonName::parse_as(&get(column), column).map_err(|e| (Some(column), e.to_string()));
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
        Some(Pan::parse(&pan_text).map_err(|e| (Some("pan"), format!("pan {:?}: {e}", excerpt(&pan_text))))?)
    };
    let mut services = Vec::new();
    for part in get("services").split(';') {
        if part.trim().is_empty() {
            continue;
        }
        let id =
            ServiceId::from_name(part).map_err(|e| (Some("services"), format!("service {:?}: {e}", excerpt(part))))?;
        let label = Label::parse_as(part, "service name").map_err(|e| (Some("services"), e.to_string()))?;
        if !services.iter().any(|(s, _)| *s == id) {
            services.push((id, label));
        }
    }
    if services.is_empty() {
        return Err((
            Some("services"),
            "services is empty: list the consumer's services separated by ';' (for example Mensa;Trasporto)".into(),
        ));
    }
    if services.len() > SERVICES_PER_CONSUMER_MAX {
        return Err((Some("services"), format!("{} services: at most {SERVICES_PER_CONSUMER_MAX}", services.len())));
    }
    Ok(Row {
        line,
        payer,
        email: parse_email(&get("email")).map_err(|e| (Some("email"), e))?,
        phone: parse_phone(&get("phone")).map_err(|e| (Some("phone"), e))?,
        notify: parse_notify(&get("notify")).map_err(|e| (Some("notify"), e))?,
        language: parse_language(&get("language")).map_err(|e| (Some("language"), e))?,
        consumer,
        pan,
        school: optional_label(&get("school"), "school").map_err(|e| (Some("school"), e))?,
        class: optional_label(&get("class"), "class").map_err(|e| (Some("class"), e))?,
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
    if looks_like_utf16(&bytes) {
        return Err(ImportError::Utf16);
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(&bytes);
    let first_line = body.split(|b| *b == b'\n').next().unwrap_or_default();
    if first_line.iter().all(u8::is_ascii_whitespace) {
        return Err(ImportError::Empty);
    }
    // The separator is whichever of ; , and tab the header uses most
    // (Excel writes ; where the decimal separator is a comma, and tabs for
    // "Text (tab delimited)").
    let count = |separator: u8| first_line.iter().filter(|b| **b == separator).count();
    let delimiter = [b',', b';', b'\t'].into_iter().max_by_key(|s| count(*s)).unwrap_or(b',');
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
            // A file read with the wrong separator has one long column: quoted in short.
            let mut found: Vec<String> = headers.iter().take(COLUMNS_QUOTED_MAX).map(|h| excerpt(h)).collect();
            if headers.len() > COLUMNS_QUOTED_MAX {
                found.push("…".into());
            }
            return Err(ImportError::MissingColumn { missing: name, found: found.join(", ") });
        }
    }

    let mut report = ImportReport::default();
    let mut rows: Vec<Row> = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut lines = LineCounter::new(body);
    loop {
        let start = reader.position().byte();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                report.rows += 1;
                report.rejected.push(Rejected {
                    line: lines.line_at(start),
                    field: None,
                    reason: format!("not valid CSV: {e}"),
                });
                continue;
            }
        }
        let line = lines.line_at(record.position().map_or(start, csv::Position::byte));
        report.rows += 1;
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            report.rows -= 1;
            continue;
        }
        if let Some(column) = record.iter().position(|f| f.contains(&b'\n')) {
            // Quotes come in pairs in a record whose quotes are closed.
            let raw = record.position().map_or(start, csv::Position::byte) as usize..reader.position().byte() as usize;
            let quotes = body.get(raw).unwrap_or_default().iter().filter(|b| **b == b'"').count();
            let reason = if quotes % 2 == 1 {
                "a quote opened on this line is never closed: fix the quotes (the rest of the file was read as part of this row)".to_string()
            } else {
                let name = headers.get(column).map_or(String::from("a cell"), |h| format!("column {h}"));
                format!("{name} spans several lines: keep each cell on one line")
            };
            report.rejected.push(Rejected { line, field: None, reason });
            continue;
        }
        let fields: Result<Vec<&str>, _> = record.iter().map(std::str::from_utf8).collect();
        let Ok(fields) = fields else {
            report.rejected.push(Rejected {
                line,
                field: None,
                reason: "not valid UTF-8: save the file as UTF-8".into(),
            });
            continue;
        };
        let get =
            |column: &str| columns.get(column).and_then(|i| fields.get(*i)).map_or(String::new(), |s| (*s).to_owned());
        match parse_row(line, &get) {
            Ok(row) => rows.push(row),
            Err((field, reason)) => report.rejected.push(Rejected { line, field, reason }),
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
            report.rejected.push(Rejected {
                line: row.line,
                field: Some("consumer_fiscal_code"),
                reason: "the consumer's codice fiscale is the payer's".into(),
            });
            continue;
        }
        if let Some(first) = consumer_lines.get(&consumer) {
            report.rejected.push(Rejected {
                line: row.line,
                field: Some("consumer_fiscal_code"),
                reason: format!("consumer {} already appears on line {first}", row.consumer.fiscal_code),
            });
            continue;
        }
        if let Some(&index) = family_index.get(&family) {
            let first = &families[index].1[0];
            if first.payer != row.payer {
                report.rejected.push(Rejected {
                    line: row.line,
                    field: Some("payer_surname"),
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
                    field: Some("pan"),
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

    let mut written = (0, 0);
    if let Err(error) = write_families(node, families, pan_owner, &mut report, progress, &mut written) {
        return Err(match written {
            (0, _) => error,
            (families, rows) => ImportError::Stopped { families, rows, source: Box::new(error) },
        });
    }
    report.rejected.sort_by_key(|r| r.line);
    Ok(report)
}

/// Writes the families of an import, [`FAMILIES_PER_TRANSACTION`] per
/// transaction; `written` says what the transactions committed so far
/// wrote (families, rows), for an error in a later one to say.
fn write_families(
    node: &mut Node,
    families: Vec<(FamilyId, Vec<Row>)>,
    mut pan_owner: HashMap<Pan, ConsumerId>,
    report: &mut ImportReport,
    progress: &dyn Fn(u64, u64),
    written: &mut (u64, u64),
) -> Result<(), ImportError> {
    // Services first, so wallets have their floors.
    let mut all_services: BTreeSet<(ServiceId, Label)> = BTreeSet::new();
    for (_, rows) in &families {
        for row in rows {
            all_services.extend(row.services.iter().cloned());
        }
    }
    let mut services = Some(all_services);
    let total = families.len() as u64;
    let mut done = 0u64;
    let mut rest = families.as_slice();
    while !rest.is_empty() {
        // Short transactions: a top-up at the counter waits behind one at most.
        let (mut tx, me) = node.write()?;
        // The services go in with the first families: an import that fails
        // in its first transaction leaves nothing.
        for (id, name) in services.take().unwrap_or_default() {
            if tx.service(&id).map_err(NodeError::from)?.is_none() {
                me.put_service_in(
                    &mut tx,
                    &ServiceRecord { id: id.clone(), name, floor: Balance::ZERO, tariff: None, reminders: Vec::new() },
                )?;
                report.services_created.push(id.to_string());
            }
        }
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
                        field: Some("payer_fiscal_code"),
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
                                field: Some("pan"),
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
                notify: rows.iter().find_map(|r| r.notify),
                language: rows.iter().find_map(|r| r.language),
            };
            let written = me.put_family_in(&mut tx, &record, &contacts)?;
            report.directory_operations += written as u64;
        }
        me.commit(tx)?;
        *written = (report.families, report.accepted_rows);
        rest = &rest[taken..];
        progress(done, total);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines of each record of `body` (with a header), as the import reports them.
    fn record_lines(body: &[u8]) -> (Vec<u64>, Vec<u64>) {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(body);
        let mut lines = LineCounter::new(body);
        let (mut ours, mut csvs) = (Vec::new(), Vec::new());
        let mut record = csv::ByteRecord::new();
        while reader.read_byte_record(&mut record).unwrap() {
            let position = record.position().unwrap();
            ours.push(lines.line_at(position.byte()));
            csvs.push(position.line());
        }
        (ours, csvs)
    }

    /// An operator finds a rejected row on the line the report names, in a
    /// file saved by Excel (CRLF) and with a cell over two lines.
    #[test]
    fn line_numbers_follow_crlf_line_ends_and_cells_over_several_lines() {
        let unix = b"h1,h2\na,b\nc,\"d\ne\"\n\nf,g\n";
        let excel = b"h1,h2\r\na,b\r\nc,\"d\r\ne\"\r\n\r\nf,g\r\n";
        assert_eq!(record_lines(unix).0, vec![2, 3, 6]);
        let (ours, csvs) = record_lines(excel);
        assert_eq!(ours, vec![2, 3, 6]);
        // What the csv crate says, off by one from the first CRLF on.
        assert_ne!(csvs, ours);
    }

    #[test]
    fn a_long_cell_is_quoted_in_short() {
        assert_eq!(excerpt("  RSSMRA85T10A562S "), "RSSMRA85T10A562S");
        assert_eq!(excerpt(&"è".repeat(41)), format!("{}…", "è".repeat(40)));
        assert_eq!(excerpt(&"x".repeat(40)), "x".repeat(40));
    }

    /// A header that is one long line (a file with another separator, or
    /// none) is quoted in short when its columns are missing.
    #[test]
    fn a_header_without_the_columns_is_quoted_in_short() {
        let mut hub = Node::create_hub(
            crate::store::Store::open_in_memory().unwrap(),
            saldo_sync::DeviceKey::generate(),
            saldo_sync::DeviceKey::generate(),
            &Label::parse("Comune").unwrap(),
            std::sync::Arc::new(crate::node::SystemClock),
        )
        .unwrap();
        let header = format!("{}\n", "payer fiscal code|".repeat(500));
        let error = import_csv(&mut hub, header.as_bytes(), &|_, _| {}).unwrap_err().to_string();
        assert!(error.starts_with("the header has no column \"payer_fiscal_code\""), "{error}");
        assert!(error.len() < 300, "{} characters: {error}", error.len());
        let many: Vec<String> = (0..50).map(|i| format!("c{i}")).collect();
        let error = import_csv(&mut hub, format!("{}\n", many.join(",")).as_bytes(), &|_, _| {}).unwrap_err();
        assert!(error.to_string().contains("c19, …"), "{error}");
    }

    #[test]
    fn utf16_is_told_from_utf8() {
        assert!(looks_like_utf16(b"\xFF\xFEp\0a\0"));
        assert!(looks_like_utf16(b"\xFE\xFF\0p\0a"));
        assert!(looks_like_utf16(b"p\0a\0y\0e\0r\0\n\0"));
        assert!(!looks_like_utf16(b"\xEF\xBB\xBFpayer;name\n"));
        assert!(!looks_like_utf16("pagatore;città\n".as_bytes()));
    }
}
