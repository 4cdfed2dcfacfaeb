//! Families, consumers and services, and the CSV import (hub).

use saldo_sync::{Amount, Balance, CodiceFiscale, FamilyId, Label, PersonName, ServiceId};
use serde::{Deserialize, Serialize};

use crate::ApiError;
use crate::consumers::ConsumerSummary;

/// The person who pays for a family's children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Payer {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub surname: PersonName,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: PersonName,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub fiscal_code: CodiceFiscale,
    /// Contact data, at the hub only (cash points never hold it).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub email: Option<Label>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub phone: Option<Label>,
}

/// `GET /families/{family}`: a family account with its children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Family {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: FamilyId,
    pub payer: Payer,
    pub consumers: Vec<ConsumerSummary>,
}

/// A family in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FamilySummary {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: FamilyId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub payer_surname: PersonName,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub payer_name: PersonName,
    pub consumers: u32,
}

/// `GET /families`: one page of families, in payer surname order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FamilyList {
    pub families: Vec<FamilySummary>,
    /// How many families the realm has.
    pub total: u64,
}

/// A service (wallet category) with its tariff and floor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceView {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: ServiceId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: Label,
    /// The price of one charge (a meal, a ride), when the service has one.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub tariff: Option<Amount>,
    /// How far below zero a service charge may take a wallet (zero or negative).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub floor: Balance,
    /// Reminder thresholds in charges left, highest first (3: three meals
    /// left, 0: none left, -3: a debt of three): the family hears once when
    /// the confirmed balance falls to tariff x charges.
    #[serde(default)]
    pub reminders: Vec<i32>,
}

/// Most reminder thresholds per service.
pub const REMINDERS_PER_SERVICE_MAX: usize = 5;
/// The deepest reminder threshold, in charges either side of zero.
pub const REMINDER_CHARGES_MAX: i32 = 100;

/// `GET /services`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceList {
    pub services: Vec<ServiceView>,
}

/// `PUT /services`: creates the service named, or changes its floor or tariff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceUpdate {
    /// The display name; the id is derived from it ("Pre-scuola" → `pre-scuola`).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: Label,
    /// Unchanged when absent.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<Balance>,
    /// A new tariff; unchanged when absent.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tariff: Option<Amount>,
    /// Removes the tariff (the service charges no fixed price).
    #[serde(default)]
    pub remove_tariff: bool,
    /// New reminder thresholds in charges left (`[3, 0, -3]`; `[]` removes
    /// them); unchanged when absent. They need a tariff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminders: Option<Vec<i32>>,
}

impl ServiceUpdate {
    pub fn validate(&self) -> Result<ServiceId, ApiError> {
        let id = ServiceId::from_name(self.name.as_str()).map_err(|e| ApiError::invalid("name", e.to_string()))?;
        if let Some(floor) = self.floor
            && floor.minor() > 0
        {
            return Err(ApiError::invalid(
                "floor",
                "the floor is how far below zero a wallet may go: zero or negative, like -20.00",
            ));
        }
        if self.remove_tariff && self.tariff.is_some() {
            return Err(ApiError::invalid("tariff", "either set a tariff or remove it, not both"));
        }
        if let Some(reminders) = &self.reminders {
            if reminders.len() > REMINDERS_PER_SERVICE_MAX {
                return Err(ApiError::invalid(
                    "reminders",
                    format!("{} thresholds given: at most {REMINDERS_PER_SERVICE_MAX}", reminders.len()),
                ));
            }
            if let Some(n) = reminders.iter().find(|n| n.abs() > REMINDER_CHARGES_MAX) {
                return Err(ApiError::invalid(
                    "reminders",
                    format!(
                        "{n} charges is too far: thresholds go from -{REMINDER_CHARGES_MAX} to {REMINDER_CHARGES_MAX}"
                    ),
                ));
            }
            if !reminders.is_empty() && self.remove_tariff {
                return Err(ApiError::invalid("reminders", "reminders count charges at the tariff: keep a tariff"));
            }
        }
        Ok(id)
    }
}

/// A CSV row the import refused; nothing of it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefusedRow {
    /// The line of the file, counting the header as 1.
    pub line: u64,
    /// The column at fault, when one is.
    pub field: Option<String>,
    pub message: String,
}

/// `POST /families/import` (a CSV body): what the import did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportReport {
    pub rows: u64,
    pub accepted_rows: u64,
    pub families: u64,
    pub consumers: u64,
    pub directory_operations: u64,
    pub services_created: Vec<String>,
    pub refused: Vec<RefusedRow>,
}

/// Families one page lists when the request does not say.
pub const FAMILIES_PAGE_DEFAULT: u32 = 50;
/// Most families one page lists.
pub const FAMILIES_PAGE_MAX: u32 = 500;

/// `GET /families?q=&limit=&offset=`: a page of the realm's families, or
/// those of the children a search finds (by a child's name, PAN or codice
/// fiscale, or the payer's codice fiscale).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct FamilyListParams {
    /// What the search box holds; every family, page by page, when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// At most this many families (1 to 500, 50 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Families skipped, in payer surname order (not with `q`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl FamilyListParams {
    /// The search understood, if any, or why not (field `q`, `limit` or `offset`).
    pub fn validate(&self) -> Result<Option<crate::search::Query>, ApiError> {
        if let Some(limit) = self.limit
            && !(1..=FAMILIES_PAGE_MAX).contains(&limit)
        {
            return Err(ApiError::invalid(
                "limit",
                format!("limit is {limit}: ask for 1 to {FAMILIES_PAGE_MAX} families"),
            ));
        }
        match &self.q {
            None => Ok(None),
            Some(_) if self.offset.is_some() => Err(ApiError::invalid(
                "offset",
                "a search returns the families it finds at once: leave offset out, or leave q out to page",
            )),
            Some(q) => crate::search::parse_query(q).map(Some).map_err(|e| ApiError::invalid("q", e.to_string())),
        }
    }

    pub fn limit_or_default(&self) -> u32 {
        self.limit.unwrap_or(FAMILIES_PAGE_DEFAULT).clamp(1, FAMILIES_PAGE_MAX)
    }
}
