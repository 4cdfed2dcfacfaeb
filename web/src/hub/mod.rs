//! The hub's screens (families, services, cash points, operators, review,
//! outbox, reports). Only hub roles see them in the navigation, and the API
//! refuses a cashier anyway. This list is the one place that names them;
//! each screen's module lives beside it.

use saldo_api::Lang;
use saldo_api::session::{NodeKind, OperatorRole};

pub mod charts;
pub mod i18n;
pub mod logic;

#[cfg(target_arch = "wasm32")]
mod cash_points;
#[cfg(target_arch = "wasm32")]
mod families;
#[cfg(target_arch = "wasm32")]
mod flagged;
#[cfg(target_arch = "wasm32")]
mod net;
#[cfg(target_arch = "wasm32")]
mod operators;
#[cfg(target_arch = "wasm32")]
mod outbox;
#[cfg(target_arch = "wasm32")]
mod reports;
#[cfg(target_arch = "wasm32")]
mod services;
#[cfg(target_arch = "wasm32")]
pub mod ui;

/// Which screen an entry of [`SCREENS`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Families,
    Services,
    CashPoints,
    Operators,
    Flagged,
    Outbox,
    Reports,
}

/// One entry of the hub's navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubScreen {
    pub id: Screen,
    /// The route, after `#/`.
    pub route: &'static str,
    pub it: &'static str,
    pub en: &'static str,
}

impl HubScreen {
    pub fn title(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::It => self.it,
            Lang::En => self.en,
        }
    }
}

/// The hub's screens, in navigation order.
pub const SCREENS: &[HubScreen] = &[
    HubScreen { id: Screen::Families, route: "hub/families", it: "Famiglie e utenti", en: "Families and consumers" },
    HubScreen { id: Screen::Services, route: "hub/services", it: "Servizi", en: "Services" },
    HubScreen { id: Screen::CashPoints, route: "hub/cash-points", it: "Punti di ricarica", en: "Cash points" },
    HubScreen { id: Screen::Operators, route: "hub/operators", it: "Operatori", en: "Operators" },
    HubScreen { id: Screen::Flagged, route: "hub/flagged", it: "Operazioni segnalate", en: "Flagged operations" },
    HubScreen { id: Screen::Outbox, route: "hub/outbox", it: "Invii ai genitori", en: "Outbox" },
    HubScreen { id: Screen::Reports, route: "hub/reports", it: "Rapporti", en: "Reports" },
];

/// Whether this operator, on this node, sees the hub's screens: administrators
/// and clerks, at the hub. A cashier never does.
pub fn visible_to(role: OperatorRole, node: NodeKind) -> bool {
    node == NodeKind::Hub && matches!(role, OperatorRole::Administrator | OperatorRole::Clerk)
}

/// The screen a route names, if it is a hub screen.
pub fn screen(route: &str) -> Option<&'static HubScreen> {
    SCREENS.iter().find(|s| s.route == route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hub_roles_at_the_hub_see_the_hub_screens() {
        assert!(visible_to(OperatorRole::Administrator, NodeKind::Hub));
        assert!(visible_to(OperatorRole::Clerk, NodeKind::Hub));
        assert!(!visible_to(OperatorRole::Cashier, NodeKind::Hub));
        assert!(!visible_to(OperatorRole::Cashier, NodeKind::CashPoint));
        assert!(!visible_to(OperatorRole::Administrator, NodeKind::CashPoint));
        assert_eq!(screen("hub/outbox").unwrap().title(Lang::En), "Outbox");
        assert!(screen("counter").is_none());
    }
}
