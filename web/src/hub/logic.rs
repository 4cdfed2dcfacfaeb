//! What the hub screens decide without a browser: reading what was typed
//! into their forms (the same checks the node makes, so a mistake is named
//! next to its field before anything is sent), the query strings of the
//! API's lists and reports, and how dates and times read.

use saldo_api::cash_points::{EnrolmentTokenRequest, EscrowRequest, Limits, LimitsUpdate, RevokeRequest};
use saldo_api::directory::{ContactsUpdate, FamilyListParams, NotifyApi, RefusedRow, ServiceUpdate, ServiceView};
use saldo_api::money::{AmountInputError, parse_amount_input};
use saldo_api::operators::{Login, OperatorCreate, OperatorUpdate, Password};
use saldo_api::payments::WalletRef;
use saldo_api::reports::ReportFormat;
use saldo_api::review::ReviewRequest;
use saldo_api::session::OperatorRole;
use saldo_api::{API_PREFIX, ApiError, Lang};
use saldo_sync::{Amount, AuthorId, Balance, ConsumerId, Label, PersonName, ServiceId};
use serde::Serialize;

/// A form's mistake: the field it belongs next to and what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> FieldError {
        FieldError { field: field.to_owned(), message: message.into() }
    }
}

impl From<ApiError> for FieldError {
    fn from(e: ApiError) -> Self {
        // The node names nested fields (`limits.offline_hours`); the form has one box each.
        let field = e.field.unwrap_or_default();
        let field = field.rsplit('.').next().unwrap_or_default().to_owned();
        FieldError { field, message: e.message }
    }
}

/// An amount typed in euro, `20`, `20,50`, `1.234,50` or `1234.50`, read
/// the way [`parse_amount_input`] reads it; zero allowed.
pub fn parse_amount_or_zero(lang: Lang, text: &str) -> Result<i64, String> {
    match parse_amount_input(text) {
        Ok(amount) => Ok(amount.minor()),
        Err(AmountInputError::Zero) => Ok(0),
        Err(AmountInputError::OverLimit(_)) => read_large(text).ok_or_else(|| not_an_amount(lang, text)),
        Err(e) => Err(e.message(lang)),
    }
}

/// A well-formed amount above the one-line limit (a device's unconfirmed
/// total): drops the thousands separators and reads it as a [`Balance`].
fn read_large(text: &str) -> Option<i64> {
    let core = text.trim().trim_start_matches('€').trim_end_matches('€').trim();
    let last = core.rfind(['.', ',']);
    let canonical: String = match last {
        Some(at) if core.len() - at <= 3 => {
            let (whole, decimals) = core.split_at(at);
            format!("{}.{}", whole.replace(['.', ','], ""), &decimals[1..])
        }
        _ => core.replace(['.', ','], ""),
    };
    Balance::parse(&canonical).ok().map(|b| b.minor())
}

fn not_an_amount(lang: Lang, text: &str) -> String {
    match lang {
        Lang::It => format!("\"{}\" non è un importo: scrivi per esempio 5000 o 5.000,00", text.trim()),
        Lang::En => format!("\"{}\" is not an amount: type for example 5000 or 5.000,00", text.trim()),
    }
}

/// A balance that may be negative (a floor): `-20`, `-20,00`, `0`.
pub fn parse_signed(lang: Lang, text: &str) -> Result<Balance, String> {
    let typed = text.trim();
    let (negative, rest) = match typed.strip_prefix(['-', '−']) {
        Some(rest) => (true, rest),
        None => (false, typed),
    };
    let minor = parse_amount_or_zero(lang, rest)?;
    Balance::from_minor(if negative { -minor } else { minor }).ok_or_else(|| not_an_amount(lang, text))
}

/// Reminder thresholds typed as `3, 0, -2` (empty: none).
pub fn parse_reminders(lang: Lang, text: &str) -> Result<Vec<i32>, String> {
    text.split([',', ';', ' '])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.replace('−', "-").parse::<i32>().map_err(|_| match lang {
                Lang::It => format!("\"{part}\" non è un numero intero di addebiti: scrivi per esempio 3, 0, -2"),
                Lang::En => format!("\"{part}\" is not a whole number of charges: type for example 3, 0, -2"),
            })
        })
        .collect()
}

/// The services form as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceForm {
    pub tariff: String,
    pub floor: String,
    pub reminders: String,
}

impl ServiceForm {
    pub fn of(service: &ServiceView) -> ServiceForm {
        ServiceForm {
            tariff: service.tariff.map(|t| plain(t.minor())).unwrap_or_default(),
            floor: plain(service.floor.minor()),
            reminders: service.reminders.iter().map(i32::to_string).collect::<Vec<_>>().join(", "),
        }
    }

    /// The update to send, or every field's mistake.
    pub fn update(&self, lang: Lang, name: &Label) -> Result<ServiceUpdate, Vec<FieldError>> {
        let mut errors = Vec::new();
        let tariff = match self.tariff.trim() {
            "" => None,
            text => match parse_amount_input(text) {
                Ok(amount) => Some(amount),
                Err(e) => {
                    errors.push(FieldError::new("tariff", e.message(lang)));
                    None
                }
            },
        };
        let floor = parse_signed(lang, &self.floor).map_err(|e| errors.push(FieldError::new("floor", e))).ok();
        let reminders =
            parse_reminders(lang, &self.reminders).map_err(|e| errors.push(FieldError::new("reminders", e))).ok();
        if !errors.is_empty() {
            return Err(errors);
        }
        let update = ServiceUpdate { name: name.clone(), floor, remove_tariff: tariff.is_none(), tariff, reminders };
        update.validate().map(|_| update).map_err(|e| vec![e.into()])
    }
}

/// Cents as typed back into a box: `-20,00`, `1234,50`.
pub fn plain(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{},{:02}", minor.unsigned_abs() / 100, minor.unsigned_abs() % 100)
}

/// A cash point's limits as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitsForm {
    pub per_operation: String,
    pub unconfirmed_total: String,
    pub offline_hours: String,
}

impl LimitsForm {
    pub fn of(limits: &Limits) -> LimitsForm {
        LimitsForm {
            per_operation: plain(limits.per_operation.minor()),
            unconfirmed_total: plain(limits.unconfirmed_total.minor()),
            offline_hours: limits.offline_hours.to_string(),
        }
    }

    /// Whole limits (a new device), or every field's mistake.
    pub fn limits(&self, lang: Lang) -> Result<Limits, Vec<FieldError>> {
        let mut errors = Vec::new();
        let per_operation = parse_amount_input(&self.per_operation)
            .map_err(|e| errors.push(FieldError::new("per_operation", e.message(lang))))
            .ok();
        let unconfirmed_total = parse_amount_or_zero(lang, &self.unconfirmed_total)
            .ok()
            .and_then(Balance::from_minor)
            .ok_or_else(|| {
                errors.push(FieldError::new("unconfirmed_total", not_an_amount(lang, &self.unconfirmed_total)))
            })
            .ok();
        let offline_hours = self
            .offline_hours
            .trim()
            .parse::<u32>()
            .map_err(|_| {
                errors.push(FieldError::new(
                    "offline_hours",
                    match lang {
                        Lang::It => "scrivi un numero di ore, per esempio 72",
                        Lang::En => "type a number of hours, like 72",
                    },
                ))
            })
            .ok();
        match (per_operation, unconfirmed_total, offline_hours) {
            (Some(per_operation), Some(unconfirmed_total), Some(offline_hours)) if errors.is_empty() => {
                let limits = Limits { per_operation, unconfirmed_total, offline_hours };
                limits.validate().map(|()| limits).map_err(|e| vec![e.into()])
            }
            _ => Err(errors),
        }
    }

    /// The change to send for a device's limits.
    pub fn update(&self, lang: Lang) -> Result<LimitsUpdate, Vec<FieldError>> {
        let limits = self.limits(lang)?;
        let update = LimitsUpdate {
            per_operation: Some(limits.per_operation),
            unconfirmed_total: Some(limits.unconfirmed_total),
            offline_hours: Some(limits.offline_hours),
        };
        update.validate().map(|()| update).map_err(|e| vec![e.into()])
    }

    /// A request for an enrolment token.
    pub fn token(&self, lang: Lang, name: &str) -> Result<EnrolmentTokenRequest, Vec<FieldError>> {
        let name = Label::parse(name.trim()).map_err(|e| FieldError::new("name", e.to_string()));
        let limits = self.limits(lang);
        match (name, limits) {
            (Ok(name), Ok(limits)) => {
                let request = EnrolmentTokenRequest { name, limits, replaces: None };
                request.validate().map(|()| request).map_err(|e| vec![e.into()])
            }
            (name, limits) => Err(name.err().into_iter().chain(limits.err().unwrap_or_default()).collect()),
        }
    }
}

/// An escrow for one wallet: the child's id, the service, the amount.
pub fn escrow(lang: Lang, consumer: &str, service: &str, amount: &str) -> Result<EscrowRequest, Vec<FieldError>> {
    let mut errors = Vec::new();
    let consumer = ConsumerId::from_hex(consumer.trim())
        .map_err(|_| {
            errors.push(FieldError::new(
                "consumer",
                match lang {
                    Lang::It => "il codice del bambino ha 32 cifre esadecimali, come lo mostra la sua scheda",
                    Lang::En => "the child's id is 32 hexadecimal digits, as their page shows it",
                },
            ))
        })
        .ok();
    let service =
        ServiceId::from_name(service.trim()).map_err(|e| errors.push(FieldError::new("service", e.to_string()))).ok();
    let amount = parse_amount_input(amount).map_err(|e| errors.push(FieldError::new("amount", e.message(lang)))).ok();
    match (consumer, service, amount) {
        (Some(consumer), Some(service), Some(amount)) => {
            Ok(EscrowRequest { wallet: WalletRef { consumer, service }, amount })
        }
        _ => Err(errors),
    }
}

/// Why a device is revoked.
pub fn revoke(reason: &str) -> Result<RevokeRequest, FieldError> {
    Label::parse(reason.trim())
        .map(|reason| RevokeRequest { reason })
        .map_err(|e| FieldError::new("reason", e.to_string()))
}

/// The new-operator form as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorForm {
    pub login: String,
    pub name: String,
    pub role: OperatorRole,
    /// The cash point's device id (hex), for a cashier.
    pub cash_point: String,
    pub password: String,
}

impl OperatorForm {
    pub fn request(&self) -> Result<OperatorCreate, Vec<FieldError>> {
        let mut errors = Vec::new();
        let login = Login::parse(&self.login).map_err(|e| errors.push(FieldError::new("login", e.to_string()))).ok();
        let name =
            PersonName::parse(self.name.trim()).map_err(|e| errors.push(FieldError::new("name", e.to_string()))).ok();
        let cash_point = match self.cash_point.trim() {
            "" => None,
            hex => AuthorId::from_hex(hex)
                .map_err(|_| errors.push(FieldError::new("cash_point", "choose the cash point from the list")))
                .ok(),
        };
        let (Some(login), Some(name)) = (login, name) else { return Err(errors) };
        if !errors.is_empty() {
            return Err(errors);
        }
        // Left empty, the node generates a one-time password (shown once).
        let password = Some(self.password.clone()).filter(|p| !p.is_empty()).map(Password::new);
        let request = OperatorCreate { login, name, role: self.role, cash_point, password };
        request.validate().map(|()| request).map_err(|e| vec![e.into()])
    }
}

/// A new password for an operator; left empty, a one-time password the
/// node generates.
pub fn new_password(password: &str) -> Result<OperatorUpdate, FieldError> {
    let update = match password {
        "" => OperatorUpdate { one_time_password: true, ..OperatorUpdate::default() },
        typed => OperatorUpdate { password: Some(Password::new(typed)), ..OperatorUpdate::default() },
    };
    update.validate().map(|()| update).map_err(FieldError::from)
}

/// A family's contacts as typed: empty boxes are contacts removed.
pub fn contacts(email: &str, phone: &str, notify: Option<NotifyApi>, language: Lang) -> ContactsUpdate {
    let given = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
    ContactsUpdate { email: given(email), phone: given(phone), notify, language: Some(language) }
}

/// The notify choice as a `<select>` value and back.
pub fn notify_code(notify: Option<NotifyApi>) -> &'static str {
    match notify {
        None => "",
        Some(NotifyApi::Email) => "email",
        Some(NotifyApi::Sms) => "sms",
        Some(NotifyApi::EmailAndSms) => "email_and_sms",
        Some(NotifyApi::None) => "none",
    }
}

pub fn notify_of(code: &str) -> Option<NotifyApi> {
    match code {
        "email" => Some(NotifyApi::Email),
        "sms" => Some(NotifyApi::Sms),
        "email_and_sms" => Some(NotifyApi::EmailAndSms),
        "none" => Some(NotifyApi::None),
        _ => None,
    }
}

/// A review: accepting, or rejecting with a note the cash point will see.
pub fn review(accept: bool, note: &str, confirm_below_floor: bool) -> Result<ReviewRequest, FieldError> {
    let note = match note.trim() {
        "" => None,
        text => Some(Label::parse(text).map_err(|e| FieldError::new("note", e.to_string()))?),
    };
    let request = ReviewRequest { accept, note, confirm_below_floor: accept && confirm_below_floor };
    request.validate().map(|()| request).map_err(FieldError::from)
}

/// A refused import row as the table shows it: line, column, what to fix.
pub fn refused_row(row: &RefusedRow) -> (String, String, String) {
    (row.line.to_string(), row.field.clone().unwrap_or_else(|| "—".into()), row.message.clone())
}

/// `path?query` under the API, from the API's own parameter type (the
/// same encoding the node reads).
pub fn api_url<P: Serialize>(path: &str, params: &P) -> String {
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    if query.is_empty() { format!("{API_PREFIX}{path}") } else { format!("{API_PREFIX}{path}?{query}") }
}

/// The families list: a search, or the first page of every family.
pub fn families_url(q: &str) -> String {
    let q = q.trim();
    let params = FamilyListParams { q: (!q.is_empty()).then(|| q.to_owned()), limit: Some(100), offset: None };
    api_url("/families", &params)
}

/// The CSV twin of a report's URL.
pub fn csv_of<P: Serialize + Clone>(path: &str, params: &P, set: impl FnOnce(&mut P, ReportFormat)) -> String {
    let mut params = params.clone();
    set(&mut params, ReportFormat::Csv);
    api_url(path, &params)
}

/// A day from a date box (`2026-11-29`) or typed (`29/11/2026`) as the API's
/// `20261129`; empty: none.
pub fn parse_day(lang: Lang, text: &str) -> Result<Option<u32>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let parts: Vec<&str> = text.split(['-', '/', '.']).collect();
    let numbers: Option<Vec<u32>> = parts.iter().map(|p| p.parse::<u32>().ok()).collect();
    let (y, m, d) = match (parts.as_slice(), numbers.as_deref()) {
        ([y, _, _], Some([yn, mn, dn])) if y.len() == 4 => (*yn, *mn, *dn),
        ([_, _, y], Some([dn, mn, yn])) if y.len() == 4 => (*yn, *mn, *dn),
        _ => (0, 0, 0),
    };
    if (2000..=9999).contains(&y) && (1..=12).contains(&m) && (1..=days_in_month(y, m)).contains(&d) {
        return Ok(Some(y * 10_000 + m * 100 + d));
    }
    Err(match lang {
        Lang::It => format!("\"{text}\" non è una data: scrivila come 29/11/2026"),
        Lang::En => format!("\"{text}\" is not a date: write it like 29/11/2026"),
    })
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `20261129` as `29/11/2026`.
pub fn day_text(day: u32) -> String {
    format!("{:02}/{:02}/{}", day % 100, day / 100 % 100, day / 10_000)
}

/// A moment (ms since 1970, UTC) as `29/11/2026 14:03 UTC`.
pub fn time_text(ms: u64) -> String {
    let seconds = ms / 1000;
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    // Days to a civil date (H. Hinnant's algorithm), proleptic Gregorian.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{d:02}/{m:02}/{y} {:02}:{:02} UTC", of_day / 3600, of_day / 60 % 60)
}

/// A long hex id shortened for a table, the whole one kept for a title.
pub fn short_id(hex: &str) -> String {
    if hex.len() <= 12 { hex.to_owned() } else { format!("{}…", &hex[..12]) }
}

/// An amount for a box of the escrow form.
pub fn amount_text(amount: Amount) -> String {
    plain(amount.minor())
}

#[cfg(test)]
mod tests {
    use super::*;
    use saldo_api::directory::ImportReport;

    #[test]
    fn amounts_read_the_italian_way_even_above_the_line_limit() {
        assert_eq!(parse_amount_or_zero(Lang::It, "1.234,50"), Ok(123_450));
        assert_eq!(parse_amount_or_zero(Lang::It, "10.000,00"), Ok(1_000_000));
        assert_eq!(parse_amount_or_zero(Lang::En, "12000"), Ok(1_200_000));
        assert_eq!(parse_amount_or_zero(Lang::En, "0"), Ok(0));
        assert!(parse_amount_or_zero(Lang::En, "12,345").unwrap_err().contains("ambiguous"));
        assert_eq!(parse_signed(Lang::It, "-20,5").unwrap().minor(), -2050);
        assert!(parse_signed(Lang::It, "-abc").is_err());
        assert_eq!(plain(-2000), "-20,00");
    }

    fn mensa() -> ServiceView {
        ServiceView {
            id: ServiceId::from_name("mensa").unwrap(),
            name: Label::parse("mensa").unwrap(),
            tariff: Some(Amount::parse("4.50").unwrap()),
            floor: Balance::from_minor(-2000).unwrap(),
            reminders: vec![3, 0],
        }
    }

    #[test]
    fn the_services_form_names_the_field_of_each_mistake() {
        let service = mensa();
        let form = ServiceForm::of(&service);
        assert_eq!(form, ServiceForm { tariff: "4,50".into(), floor: "-20,00".into(), reminders: "3, 0".into() });
        let update = form.update(Lang::It, &service.name).unwrap();
        assert_eq!(update.tariff.unwrap().minor(), 450);
        assert_eq!(update.reminders, Some(vec![3, 0]));
        let bad = ServiceForm { tariff: "4,505".into(), floor: "20".into(), reminders: "3, x".into() };
        let errors = bad.update(Lang::En, &service.name).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["tariff", "reminders"]);
        // A positive floor is the node's own check, named by its field.
        let positive = ServiceForm { floor: "20".into(), ..ServiceForm::of(&service) };
        assert_eq!(positive.update(Lang::En, &service.name).unwrap_err()[0].field, "floor");
        let six = ServiceForm { reminders: "1,2,3,4,5,6".into(), ..ServiceForm::of(&service) };
        assert_eq!(six.update(Lang::En, &service.name).unwrap_err()[0].field, "reminders");
        // No tariff: the tariff goes, and the reminders with it.
        let none = ServiceForm { tariff: String::new(), reminders: String::new(), ..ServiceForm::of(&service) };
        let update = none.update(Lang::En, &service.name).unwrap();
        assert!(update.remove_tariff && update.tariff.is_none());
    }

    #[test]
    fn limits_and_tokens_are_checked_as_the_node_checks_them() {
        let form = LimitsForm {
            per_operation: "500".into(),
            unconfirmed_total: "5.000,00".into(),
            offline_hours: "72".into(),
        };
        let limits = form.limits(Lang::It).unwrap();
        assert_eq!((limits.per_operation.minor(), limits.unconfirmed_total.minor()), (50_000, 500_000));
        assert_eq!(LimitsForm::of(&limits).limits(Lang::It).unwrap(), limits);
        let zero = LimitsForm { unconfirmed_total: "0".into(), ..form.clone() };
        assert_eq!(zero.limits(Lang::En).unwrap_err()[0].field, "unconfirmed_total");
        let hours = LimitsForm { offline_hours: "0".into(), ..form.clone() };
        assert_eq!(hours.update(Lang::En).unwrap_err()[0].field, "offline_hours");
        let words = LimitsForm { offline_hours: "many".into(), per_operation: "x".into(), ..form.clone() };
        let fields: Vec<String> = words.limits(Lang::En).unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["per_operation", "offline_hours"]);
        let token = form.token(Lang::It, " Scuola Verdi ").unwrap();
        assert_eq!(token.name.as_str(), "Scuola Verdi");
        assert_eq!(form.token(Lang::It, "").unwrap_err()[0].field, "name");
        assert_eq!(revoke("  ").unwrap_err().field, "reason");
        assert!(revoke("tablet stolen").is_ok());
        let errors = escrow(Lang::En, "abc", "mensa", "12,345").unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["consumer", "amount"]);
        let ok = escrow(Lang::En, &ConsumerId([7; 16]).to_hex(), "mensa", "30").unwrap();
        assert_eq!(ok.amount.minor(), 3000);
    }

    #[test]
    fn operators_and_reviews_are_refused_with_the_field_to_fix() {
        let mut form = OperatorForm {
            login: "Anna.B".into(),
            name: "Anna Bianchi".into(),
            role: OperatorRole::Cashier,
            cash_point: String::new(),
            password: "correct horse battery".into(),
        };
        assert_eq!(form.request().unwrap_err()[0].field, "cash_point");
        form.cash_point = AuthorId([3; 32]).to_hex();
        assert_eq!(form.request().unwrap().login.as_str(), "anna.b");
        form.login = "1x".into();
        form.password = "short".into();
        assert_eq!(form.request().unwrap_err()[0].field, "login");
        assert_eq!(new_password("short").unwrap_err().field, "password");
        assert!(new_password("a long enough one").is_ok());
        assert!(new_password("").unwrap().one_time_password, "empty: the node generates a one-time password");
        form.login = "anna.b".into();
        form.password = String::new();
        assert_eq!(form.request().unwrap().password, None, "empty: a one-time password");
        assert_eq!(review(false, "", false).unwrap_err().field, "note");
        let rejected = review(false, "duplicate", true).unwrap();
        assert!(!rejected.confirm_below_floor);
        assert!(review(true, "", true).unwrap().confirm_below_floor);
    }

    #[test]
    fn contacts_and_import_rows_read_as_typed() {
        let update = contacts(" anna@example.org ", "  ", notify_of("email"), Lang::En);
        assert_eq!(update.email.as_deref(), Some("anna@example.org"));
        assert_eq!(update.phone, None);
        assert_eq!(notify_code(update.notify), "email");
        assert_eq!(notify_of(""), None);
        let report: ImportReport = serde_json::from_str(
            r#"{"rows":2,"accepted_rows":1,"families":1,"consumers":1,"directory_operations":2,
                "services_created":[],"refused":[{"line":3,"field":"fiscal_code","message":"bad check letter"}]}"#,
        )
        .unwrap();
        assert_eq!(refused_row(&report.refused[0]), ("3".into(), "fiscal_code".into(), "bad check letter".into()));
    }

    #[test]
    fn urls_days_and_times() {
        assert_eq!(families_url(" rossi maria "), "/api/v1/families?q=rossi+maria&limit=100");
        assert_eq!(families_url(""), "/api/v1/families?limit=100");
        let params =
            saldo_api::reports::PeriodParams { from: Some(20261101), to: Some(20261130), ..Default::default() };
        assert_eq!(
            csv_of("/reports/movements", &params, |p, f| p.format = f),
            "/api/v1/reports/movements?from=20261101&to=20261130&format=csv"
        );
        assert_eq!(parse_day(Lang::It, "2026-11-29"), Ok(Some(20261129)));
        assert_eq!(parse_day(Lang::It, "29/11/2026"), Ok(Some(20261129)));
        assert_eq!(parse_day(Lang::It, ""), Ok(None));
        assert!(parse_day(Lang::En, "31/02/2026").unwrap_err().contains("29/11/2026"));
        assert_eq!(day_text(20261129), "29/11/2026");
        assert_eq!(time_text(0), "01/01/1970 00:00 UTC");
        assert_eq!(time_text(1_796_000_000_000), "30/11/2026 00:53 UTC");
        assert_eq!(short_id("0123456789abcdef"), "0123456789ab…");
    }
}
