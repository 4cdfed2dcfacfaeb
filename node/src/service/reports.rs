//! The municipality's accounts: daily closes, remittance statements, yearly
//! statements per payer and movements, as typed reports (the front ends
//! render them as JSON, CSV with [`crate::reports_csv`], or HTML). The hub's
//! staff read all of them; a cashier reads their own cash point's daily
//! close only.

use saldo_api::reports::{
    DailyCloseParams, DailyCloseReport, MovementsReport, PeriodParams, RemittanceReport, YearlyParams, YearlyReport,
};
use saldo_api::session::OperatorRole;
use saldo_sync::AuthorId;

use super::{Operator, Result, Service, ServiceError};

fn cash_point_of(text: &Option<String>) -> Result<Option<AuthorId>> {
    text.as_deref()
        .map(|hex| {
            AuthorId::from_hex(hex)
                .map_err(|_| ServiceError::invalid("cash_point", format!("'{hex}' is not a device id: 64 hex digits")))
        })
        .transpose()
}

impl Service {
    /// One day's close per cash point and operator. `operator` is who asks
    /// (none from the command line on the data directory): a cashier gets
    /// their own cash point's only.
    pub async fn report_daily_close(
        &self,
        operator: Option<&Operator>,
        params: DailyCloseParams,
    ) -> Result<DailyCloseReport> {
        params.validate()?;
        let mut cash_point = cash_point_of(&params.cash_point)?;
        if let Some(operator) = operator
            && operator.role == OperatorRole::Cashier
        {
            let me = self.about().me;
            if cash_point.is_some_and(|asked| asked != me) {
                return Err(ServiceError::forbidden(
                    "a cashier reads their own cash point's daily close only: leave out cash_point",
                ));
            }
            cash_point = Some(me);
        }
        self.read(move |node| Ok(node.report_daily_close(params.day, cash_point)?)).await
    }

    /// Each cash point's account for a period: collected, remitted, owed.
    pub async fn report_remittances(&self, params: PeriodParams) -> Result<RemittanceReport> {
        params.validate()?;
        let cash_point = cash_point_of(&params.cash_point)?;
        self.read(move |node| Ok(node.report_remittances(params.from, params.to, cash_point)?)).await
    }

    /// What each payer (or one) paid in a year per child and service.
    pub async fn report_yearly(&self, params: YearlyParams) -> Result<YearlyReport> {
        params.validate()?;
        self.read(move |node| Ok(node.report_yearly(params.year, params.payer.as_deref())?)).await
    }

    /// The money moved per day, service and device.
    pub async fn report_movements(&self, params: PeriodParams) -> Result<MovementsReport> {
        params.validate()?;
        let device = cash_point_of(&params.cash_point)?;
        self.read(move |node| Ok(node.report_movements(params.from, params.to, device)?)).await
    }
}
