//! A Saldo cash-point node inside an Android or iOS app: UniFFI bindings
//! (Kotlin, Swift, Python) over the node's service layer.
//!
//! The shim adds no logic of its own: every call is one call of
//! [`saldo_node::service::Service`] (or of `saldo_node::net` to join and to
//! run the sync transport), with the types converted field by field
//! ([`records`]); a logged-in [`Counter`] first asks the service whether
//! the operator's account still allows it, as the HTTP API does for every
//! request of a session. Every call is `async`: it runs on the node's own tokio
//! runtime, never on the caller's thread (the app's UI thread), and the
//! app awaits it (a Kotlin `suspend fun`, a Swift `async` function, a
//! Python coroutine).

uniffi::setup_scaffolding!();

mod error;
mod records;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use saldo_api::operators::{Login, Password};
use saldo_api::payments::ReversalRequest;
use saldo_api::status::Event;
use saldo_node::net::{NetConfig, SyncTask};
use saldo_node::service::{Operator, Service, ServiceError};
use saldo_sync::{Label, Pan};
use tokio_stream::StreamExt as _;

pub use error::SaldoError;
pub use records::*;

/// Where the sync endpoint binds when the app does not say: every
/// interface, a port the system picks.
const P2P_DEFAULT: &str = "0.0.0.0:0";

/// What the node tells the app as it happens. Called on a thread of the
/// node's (never the UI thread): hand the values to the UI's own.
#[uniffi::export(with_foreign)]
pub trait NodeListener: Send + Sync {
    /// The node's status, first when the listener is set, then whenever it changes.
    fn on_status(&self, status: NodeStatus);
    /// A wallet's balances moved (a top-up here, the hub confirming one).
    fn on_balance(&self, change: BalanceChange);
    /// The listener fell behind: reload what the screen shows.
    fn on_lagged(&self);
}

/// Opens the cash point whose data is in `data_dir` and starts syncing with
/// its hub. `p2p` is where its sync endpoint binds (`"0.0.0.0:0"` when none).
#[uniffi::export]
pub async fn open_cash_point(data_dir: String, p2p: Option<String>) -> Result<Arc<CashPoint>, SaldoError> {
    let (dir, config) = (PathBuf::from(data_dir), net_config(p2p)?);
    let runtime = runtime()?;
    let started = runtime.spawn({
        let dir = dir.clone();
        async move {
            let service = {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || Service::open(&dir)).await.map_err(stopped)??
            };
            let sync = SyncTask::start(service.clone(), dir, config).await?;
            Ok::<_, ServiceError>((service, sync))
        }
    });
    let (service, sync) = started.await.map_err(stopped)??;
    Ok(CashPoint::new(runtime, service, sync))
}

/// Creates a cash point in `data_dir` from an enrolment token (`saldo enroll`
/// at the hub), then runs it as [`open_cash_point`] does. If the hub refuses
/// or cannot be reached, nothing is created.
#[uniffi::export]
pub async fn join_realm(data_dir: String, token: String, p2p: Option<String>) -> Result<Arc<CashPoint>, SaldoError> {
    let (dir, config) = (PathBuf::from(data_dir), net_config(p2p)?);
    let runtime = runtime()?;
    let started = runtime.spawn(async move {
        let new = saldo_node::net::join_realm(&dir, &token, config.bind).await?;
        let service = Service::start(new.node, Some(dir.clone()))?;
        let sync = SyncTask::start(service.clone(), dir, config).await?;
        Ok::<_, ServiceError>((service, sync))
    });
    let (service, sync) = started.await.map_err(stopped)??;
    Ok(CashPoint::new(runtime, service, sync))
}

fn net_config(p2p: Option<String>) -> Result<NetConfig, SaldoError> {
    let text = p2p.as_deref().unwrap_or(P2P_DEFAULT);
    let bind: SocketAddr = text.parse().map_err(|_| {
        error::invalid("p2p", format!("{text:?} is not an address to listen on: write IP:PORT, such as 0.0.0.0:0"))
    })?;
    Ok(NetConfig { bind, peers: Vec::new(), lan: true })
}

fn runtime() -> Result<tokio::runtime::Runtime, SaldoError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("saldo-node-async")
        .enable_all()
        .build()
        .map_err(|e| SaldoError::Internal { message: format!("cannot start the node's threads: {e}") })
}

fn stopped(e: tokio::task::JoinError) -> ServiceError {
    ServiceError::internal(format!("the node's task stopped: {e}"))
}

/// A cash-point node running in this app: its database, its writer, its
/// sync with the hub, on threads of its own.
#[derive(uniffi::Object)]
pub struct CashPoint {
    runtime: tokio::runtime::Handle,
    /// Owned here: shut down when the object goes.
    owned: Mutex<Option<tokio::runtime::Runtime>>,
    /// `None` once closed.
    service: Mutex<Option<Service>>,
    sync: tokio::sync::Mutex<Option<SyncTask>>,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for CashPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CashPoint")
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl CashPoint {
    fn new(runtime: tokio::runtime::Runtime, service: Service, sync: SyncTask) -> Arc<CashPoint> {
        Arc::new(CashPoint {
            runtime: runtime.handle().clone(),
            owned: Mutex::new(Some(runtime)),
            service: Mutex::new(Some(service)),
            sync: tokio::sync::Mutex::new(Some(sync)),
            listener: Mutex::new(None),
        })
    }

    fn service(&self) -> Result<Service, SaldoError> {
        lock(&self.service)
            .clone()
            .ok_or_else(|| SaldoError::Unavailable { message: "this cash point is closed: open it again".into() })
    }

    /// Runs one call of the service on the node's runtime, off the caller's thread.
    async fn call<T, F>(&self, call: impl FnOnce(Service) -> F) -> Result<T, SaldoError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, ServiceError>> + Send + 'static,
    {
        let future = call(self.service()?);
        self.runtime.spawn(future).await.map_err(stopped)?.map_err(SaldoError::from)
    }
}

impl Drop for CashPoint {
    fn drop(&mut self) {
        if let Some(runtime) = lock(&self.owned).take() {
            runtime.shutdown_background();
        }
    }
}

#[uniffi::export]
impl CashPoint {
    /// Online or not, operations the hub has not confirmed, last contact with the hub.
    pub async fn status(&self) -> Result<NodeStatus, SaldoError> {
        self.call(|s| async move { s.status().await }).await.map(NodeStatus::from)
    }

    /// Dials the hub again at once (the network is back) and sends what was recorded meanwhile.
    pub async fn sync_now(&self) -> Result<(), SaldoError> {
        self.call(|s| async move { s.sync_now().await }).await
    }

    /// Logs an operator in: a cashier of this cash point.
    pub async fn log_in(
        self: Arc<Self>,
        login: String,
        password: String,
        language: Language,
    ) -> Result<Arc<Counter>, SaldoError> {
        let login = Login::parse(&login).map_err(|e| error::invalid("login", e))?;
        let password = Password::new(password);
        let operator = self.call(|s| async move { s.authenticate(&login, &password).await }).await?;
        Ok(Arc::new(Counter { node: self, operator, language }))
    }

    /// Tells `listener` the status (now and whenever it changes) and every
    /// balance change, until another listener is set or the node closes.
    pub async fn set_listener(&self, listener: Arc<dyn NodeListener>) -> Result<(), SaldoError> {
        let mut events = self.call(|s| async move { s.events().await }).await?;
        let task = self.runtime.spawn(async move {
            while let Some(event) = events.next().await {
                let listener = listener.clone();
                let told = tokio::task::spawn_blocking(move || match event {
                    Some(Event::Status(status)) => listener.on_status((*status).into()),
                    Some(Event::Balance(change)) => listener.on_balance(change.into()),
                    None => listener.on_lagged(),
                });
                if told.await.is_err() {
                    return;
                }
            }
        });
        if let Some(previous) = lock(&self.listener).replace(task) {
            previous.abort();
        }
        Ok(())
    }

    /// Stops the node: the listener, the sync sessions and endpoint, then the
    /// writer after the writes queued. The database is left consistent (as it
    /// is when the app is killed); calls after this one say the node is closed.
    pub async fn close(&self) -> Result<(), SaldoError> {
        if let Some(listener) = lock(&self.listener).take() {
            listener.abort();
        }
        let sync = self.sync.lock().await.take();
        let service = lock(&self.service).take();
        let closed = self.runtime.spawn(async move {
            let stopped_sync = match sync {
                Some(sync) => sync.stop().await,
                None => Ok(()),
            };
            // The last handle: the writer finishes its queue and its thread ends.
            tokio::task::spawn_blocking(move || drop(service)).await.map_err(stopped)?;
            stopped_sync
        });
        closed.await.map_err(stopped)?.map_err(SaldoError::from)
    }
}

/// An operator logged in at the cash point: what a counter does.
#[derive(Debug, uniffi::Object)]
pub struct Counter {
    node: Arc<CashPoint>,
    operator: Operator,
    /// The language of the receipts' text.
    language: Language,
}

impl Counter {
    /// Runs one call of the service for the operator logged in, once the
    /// service says their account still lets them act here (as the HTTP API
    /// asks for every request of a session): an account disabled at the hub
    /// stops working here as soon as that is synced.
    async fn call<T, F>(&self, call: impl FnOnce(Service, Operator) -> F + Send + 'static) -> Result<T, SaldoError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, ServiceError>> + Send + 'static,
    {
        let (service, operator) = (self.node.service()?, self.operator.clone());
        let future = async move {
            if let Err(reason) = service.operator_still_allowed(&operator).await {
                return Err(ServiceError::new(saldo_api::ErrorKind::Unauthenticated, reason));
            }
            call(service, operator).await
        };
        self.node.runtime.spawn(future).await.map_err(stopped)?.map_err(SaldoError::from)
    }
}

#[uniffi::export]
impl Counter {
    /// Who is logged in.
    pub fn operator(&self) -> OperatorInfo {
        self.operator.clone().into()
    }

    /// Children by PAN, codice fiscale or the start of a name.
    pub async fn search(&self, query: String, limit: Option<u32>) -> Result<SearchResult, SaldoError> {
        let params = saldo_api::consumers::SearchParams { q: query, limit };
        self.call(|s, _| async move { s.search(params).await }).await.map(SearchResult::from)
    }

    /// The child whose card has this PAN.
    pub async fn find_by_pan(&self, pan: String) -> Result<Consumer, SaldoError> {
        let pan = Pan::parse(&pan).map_err(|e| error::invalid("pan", e))?;
        self.call(|s, _| async move { s.consumer_by_pan(&pan).await }).await.map(Consumer::from)
    }

    /// A child's wallets (confirmed and provisional), last movements and siblings.
    pub async fn balances(&self, consumer: String) -> Result<Balances, SaldoError> {
        let consumer = records::consumer_id(&consumer, "consumer")?;
        self.call(move |s, _| async move { s.consumer(consumer).await }).await.map(Balances::from)
    }

    /// Records a top-up of one or more wallets of one family on one receipt.
    /// Send a new `idempotency_key` (a UUID) per payment, the same one when
    /// retrying it: a retry answers the first receipt and records nothing new.
    pub async fn top_up(
        &self,
        lines: Vec<TopUpLine>,
        method: PaymentMethod,
        idempotency_key: Option<String>,
    ) -> Result<Receipt, SaldoError> {
        let request = records::top_up_request(lines, method)?;
        request.validate()?;
        if let Some(key) = &idempotency_key {
            saldo_api::check_idempotency_key(key)?;
        }
        let receipt =
            self.call(|s, operator| async move { s.top_up(&operator, request, idempotency_key).await }).await?;
        Ok(records::receipt(receipt, self.language))
    }

    /// Reverses (*storno*) a top-up recorded here today; answers the reversal's receipt.
    pub async fn reverse(
        &self,
        operation: String,
        reason: String,
        idempotency_key: Option<String>,
    ) -> Result<Receipt, SaldoError> {
        let request = ReversalRequest {
            operation: records::operation_id(&operation, "operation")?,
            reason: Label::parse_as(&reason, "reason").map_err(|e| error::invalid("reason", e))?,
        };
        if let Some(key) = &idempotency_key {
            saldo_api::check_idempotency_key(key)?;
        }
        let receipt =
            self.call(|s, operator| async move { s.reversal(&operator, request, idempotency_key).await }).await?;
        Ok(records::receipt(receipt, self.language))
    }

    /// A receipt recorded or held here, by its operation id: to print it again.
    pub async fn receipt(&self, operation: String) -> Result<Receipt, SaldoError> {
        let op = records::operation_id(&operation, "operation")?;
        let receipt = self.call(move |s, _| async move { s.receipt(op).await }).await?;
        Ok(records::receipt(receipt, self.language))
    }
}
