//! The hub's office: families and services (with the CSV import), cash
//! points (enrolment tokens, limits, escrow, revocation), flagged
//! operations and their review, and bundles for sites without a network.
//! Bulk work (an import, a bundle) runs behind the front ends' jobs.

use saldo_api::bundles::BundleReport;
use saldo_api::cash_points::{
    CashPointList, EnrolmentTokenRequest, EnrolmentTokenResponse, EscrowGrant, EscrowRequest, Limits, LimitsUpdate,
    RevocationRecorded, RevokeRequest,
};
use saldo_api::directory::{
    Family, FamilyList, FamilyListParams, ImportReport, RefusedRow, ServiceList, ServiceUpdate, ServiceView,
};
use saldo_api::review::{FlaggedList, ReviewOutcome, ReviewRequest};
use saldo_sync::{AuthorId, Body, FamilyId, Label, OpId, ServiceId, WalletKey};

use super::{Operator, Result, Service, ServiceError};
use crate::import::{ImportError, import_csv};
use crate::node::NodeError;

fn hub_only(what: &str) -> ServiceError {
    ServiceError::forbidden(format!("only the hub can {what}: do it there"))
}

/// A file sent in the body that the node refuses (a bundle or frontier
/// file of another realm, damaged, unsigned): bad input, about the body.
fn bad_file(error: NodeError) -> ServiceError {
    match error {
        NodeError::Refused(message) => ServiceError::invalid("body", message),
        other => ServiceError::from(other),
    }
}

impl Service {
    fn require_hub(&self, what: &str) -> Result<()> {
        if self.about().is_hub { Ok(()) } else { Err(hub_only(what)) }
    }

    /// A page of families, or those a search finds.
    pub async fn families(&self, params: FamilyListParams) -> Result<FamilyList> {
        let query = params.validate().map_err(ServiceError::from)?;
        let (limit, offset) = (params.limit_or_default(), params.offset.unwrap_or(0));
        self.read(move |node| Ok(node.family_list(query.as_ref(), limit, offset)?)).await
    }

    /// One family, with its payer's contacts and its children.
    pub async fn family(&self, family: FamilyId) -> Result<Family> {
        self.require_hub("show a family's contacts")?;
        self.read(move |node| {
            node.family_detail(&family)?.ok_or_else(|| {
                ServiceError::not_found(format!("no family {} in the directory: search for it first", family.to_hex()))
            })
        })
        .await
    }

    /// Imports a CSV of families (hub only): each good row goes in whole,
    /// each bad one is reported with its line and column and changes
    /// nothing. A file refused whole (no header, a missing column) writes nothing.
    pub async fn import_families(&self, csv: Vec<u8>) -> Result<ImportReport> {
        self.import_families_telling(csv, |_, _| {}).await
    }

    /// [`Service::import_families`], telling `progress` (families done,
    /// families in all) as it goes: the command line shows a bar.
    pub async fn import_families_telling(
        &self,
        csv: Vec<u8>,
        progress: impl Fn(u64, u64) + Send + 'static,
    ) -> Result<ImportReport> {
        self.require_hub("import families")?;
        let report = self.node().call(move |node| import_csv(node, csv.as_slice(), &progress)).await;
        let report = report.map_err(|error| match error {
            ImportError::Node(e) => ServiceError::from(*e),
            // Whole families stay written; the message says that importing again completes it.
            ImportError::Stopped { .. } => ServiceError::new(saldo_api::ErrorKind::Unavailable, error.to_string()),
            ImportError::MissingColumn { missing, .. } => ServiceError::invalid(missing, error.to_string()),
            other => ServiceError::invalid("body", other.to_string()),
        })?;
        let consumers = report.accepted_rows;
        Ok(ImportReport {
            rows: report.rows,
            accepted_rows: report.accepted_rows,
            families: report.families,
            consumers,
            directory_operations: report.directory_operations,
            services_created: report.services_created,
            refused: report
                .rejected
                .into_iter()
                .map(|r| RefusedRow { line: r.line, field: r.field.map(str::to_string), message: r.reason })
                .collect(),
        })
    }

    /// The realm's services, tariffs and floors.
    pub async fn services(&self) -> Result<ServiceList> {
        self.read(|node| Ok(node.service_list()?)).await
    }

    /// Creates `service` or changes its name, floor or tariff (hub only).
    pub async fn set_service(&self, service: ServiceId, update: ServiceUpdate) -> Result<ServiceView> {
        self.require_hub("change services")?;
        let id = update.validate().map_err(ServiceError::from)?;
        if id != service {
            return Err(ServiceError::invalid(
                "name",
                format!(
                    "the name {:?} makes the service id {id}, not {service}: keep the name of {service} (its case may change)",
                    update.name.as_str()
                ),
            ));
        }
        let tariff = if update.remove_tariff { Some(None) } else { update.tariff.map(Some) };
        let reminders = update.reminders.clone();
        let record = self
            .write(move |node| Ok(node.set_service_reminding(&update.name, update.floor, tariff, reminders)?))
            .await?;
        Ok(ServiceView {
            id: record.id,
            name: record.name,
            tariff: record.tariff,
            floor: record.floor,
            reminders: record.reminders,
        })
    }

    /// The enrolled cash points and school devices.
    pub async fn cash_points(&self) -> Result<CashPointList> {
        self.read(|node| Ok(node.cash_point_list()?)).await
    }

    /// A one-time enrolment token for a new cash point (or one replacing
    /// `replaces`): what `saldo cashpoint --join` takes. It carries the
    /// hub's addresses, so the hub must have run on the network once.
    pub async fn enrolment_token(&self, request: EnrolmentTokenRequest) -> Result<EnrolmentTokenResponse> {
        self.require_hub("enrol cash points")?;
        request.validate().map_err(ServiceError::from)?;
        let limits = request.limits.to_offline_limits();
        self.write(move |node| {
            let hub: Vec<crate::net::PeerAddr> =
                node.addresses(crate::node::META_LISTEN)?.iter().filter_map(|a| a.parse().ok()).collect();
            if hub.is_empty() {
                return Err(ServiceError::conflict(
                    "the hub has never run on the network, so a token could not say where to find it: start `saldo hub` first",
                ));
            }
            let secret = match request.replaces {
                Some(old) => node.create_replacement_token(&request.name, limits, old)?,
                None => node.create_enrolment_token(&request.name, limits)?,
            };
            let token = crate::net::EnrolmentToken { realm: node.realm(), hub, secret }.encode();
            Ok(EnrolmentTokenResponse { name: request.name.to_string(), token })
        })
        .await
    }

    /// Changes some of a device's offline limits; answers those in force.
    pub async fn change_limits(&self, device: AuthorId, update: LimitsUpdate) -> Result<Limits> {
        self.require_hub("change a device's limits")?;
        update.validate().map_err(ServiceError::from)?;
        let offline_secs = update.offline_hours.map(|h| h * 3_600);
        let limits = self
            .write(move |node| {
                Ok(node.change_limits(device, update.per_operation, update.unconfirmed_total, offline_secs)?)
            })
            .await?;
        Ok(Limits::from(limits))
    }

    /// Lets a device charge a wallet this much more, offline included.
    pub async fn grant_escrow(&self, device: AuthorId, request: EscrowRequest) -> Result<EscrowGrant> {
        self.require_hub("grant allowances")?;
        let wallet = WalletKey::from(request.wallet.clone());
        let amount = request.amount;
        let op = self
            .write(move |node| {
                if !node.has_wallet(&wallet)? {
                    return Err(ServiceError::invalid(
                        "wallet",
                        format!(
                            "consumer {} has no {} wallet: see the consumer's wallets",
                            wallet.consumer.to_hex(),
                            wallet.service
                        ),
                    ));
                }
                Ok(node.grant_escrow(device, wallet, amount)?)
            })
            .await?;
        Ok(EscrowGrant { operation: op.id, device, wallet: request.wallet, amount })
    }

    /// Revokes a device: what it recorded until now counts, anything later is flagged.
    pub async fn revoke(&self, device: AuthorId, request: RevokeRequest) -> Result<RevocationRecorded> {
        self.require_hub("revoke devices")?;
        self.write(move |node| {
            let op = node.revoke(device, &request.reason)?;
            let last_seq_seen = match &op.op.body {
                Body::Revoke { last_seq_seen, .. } => last_seq_seen.0,
                _ => 0,
            };
            Ok(RevocationRecorded { operation: op.id, device, last_seq_seen })
        })
        .await
    }

    /// The operations awaiting review, oldest first.
    pub async fn flagged(&self) -> Result<FlaggedList> {
        self.require_hub("review flagged operations")?;
        self.read(|node| Ok(node.flagged_list()?)).await
    }

    /// Accepts or rejects a flagged operation, in `operator`'s name.
    /// Accepting one that takes wallets below their floors needs
    /// `confirm_below_floor`; otherwise nothing is recorded.
    pub async fn review(&self, operator: &Operator, target: OpId, request: ReviewRequest) -> Result<ReviewOutcome> {
        self.require_hub("review flagged operations")?;
        request.validate().map_err(ServiceError::from)?;
        let name = Label::parse_as(&operator.name, "operator")
            .map_err(|e| ServiceError::invalid("operator", e.to_string()))?;
        let note = match request.note {
            Some(note) => note,
            None => Label::parse("accepted in review").expect("a fixed note is a label"),
        };
        let accept = request.accept;
        let (decision, below) = self
            .write(move |node| {
                node.review_checked(&target, accept, &name, &note, request.confirm_below_floor).map_err(|e| match e {
                    NodeError::BelowFloorInReview { .. } => ServiceError::from(e).at("confirm_below_floor"),
                    other => ServiceError::from(other),
                })
            })
            .await?;
        let below_floor = below
            .into_iter()
            .map(|w| saldo_api::review::WalletBelowFloor {
                consumer: w.consumer_id,
                consumer_name: w.consumer,
                service: w.service,
                after: w.after,
                reserved: w.reserved,
                floor: w.floor,
                short: w.short,
            })
            .collect();
        Ok(ReviewOutcome { operation: target, accepted: accept, decision: decision.id, below_floor })
    }

    /// A bundle of what a sync session would send `device` (hub only).
    pub async fn bundle_for_device(&self, device: AuthorId) -> Result<Vec<u8>> {
        self.require_hub("export bundles for devices")?;
        self.node().call(move |node| Ok(node.export_bundle_for_device(device)?.0)).await
    }

    /// A bundle of what the holder of a frontier file lacks.
    pub async fn bundle_for_frontier(&self, frontier: Vec<u8>) -> Result<Vec<u8>> {
        if frontier.len() > saldo_sync::bundle::FRONTIER_FILE_BYTES_MAX {
            return Err(ServiceError::invalid(
                "body",
                format!("a frontier file is at most {} bytes", saldo_sync::bundle::FRONTIER_FILE_BYTES_MAX),
            ));
        }
        self.node()
            .call(move |node| {
                node.open_frontier_file(&frontier).map_err(bad_file)?;
                Ok(node.export_bundle(Some(&frontier))?.0)
            })
            .await
    }

    /// Imports a bundle: each operation verified and stored as if received
    /// from a peer; a bundle whose signature fails is refused whole.
    pub async fn import_bundle(&self, bytes: Vec<u8>) -> Result<BundleReport> {
        let report = self.node().call(move |node| node.import_bundle(&bytes).map_err(bad_file)).await?;
        Ok(BundleReport {
            exporter: report.exporter,
            operations: report.operations as u64,
            new: report.new as u64,
            duplicates: report.duplicates as u64,
            equivocations: report.equivocations as u64,
            refused: report.refused,
        })
    }
}
