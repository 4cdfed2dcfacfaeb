//! Running a node: `hub` and `cashpoint`, its configuration file, joining a realm.

use super::OutputError;
use super::args::{CashpointArgs, RunArgs};
use super::open;
use crate::node::Node;
use anyhow::{Context as _, Result, bail};
use std::io::Write;
use std::path::Path;

/// `saldo.toml` in a node's data directory; command-line flags override it.
///
/// ```toml
/// p2p = "0.0.0.0:7400"                     # where the sync endpoint listens
/// peers = ["ID@192.168.1.20:7400"]         # other nodes to sync with directly
/// lan = false                              # no mDNS discovery of the realm's devices nearby
/// http = "127.0.0.1:8400"                  # the operators' HTTP API and web page
/// tls_cert = "/etc/saldo/cert.pem"         # serve HTTPS (with tls_key)
/// tls_key = "/etc/saldo/key.pem"
/// plain_http = false                       # plain HTTP beyond loopback, behind a proxy
/// public_url = "https://saldo.comune.example"  # the hub as parents reach it (receipts' links)
///
/// [email]                                  # the hub's outbox: see `crate::delivery::config`
/// [sms]
/// [outbox]
/// ```
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NodeConfig {
    pub(super) p2p: Option<std::net::SocketAddr>,
    #[serde(default)]
    pub(super) peers: Vec<crate::net::PeerAddr>,
    pub(super) lan: Option<bool>,
    pub(super) http: Option<std::net::SocketAddr>,
    pub(super) tls_cert: Option<std::path::PathBuf>,
    pub(super) tls_key: Option<std::path::PathBuf>,
    pub(super) plain_http: Option<bool>,
    pub(super) public_url: Option<String>,
    pub(super) email: Option<crate::delivery::config::EmailSettings>,
    pub(super) sms: Option<crate::delivery::config::SmsSettings>,
    pub(super) outbox: Option<crate::delivery::config::OutboxSettings>,
}

pub(crate) const CONFIG_FILE: &str = "saldo.toml";

impl NodeConfig {
    pub(super) fn load(dir: &Path) -> Result<NodeConfig> {
        let path = dir.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(NodeConfig::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not a valid configuration: {e}", path.display()))
    }

    /// The hub's outbox as configured, checked: a wrong setting stops the
    /// hub at start, naming the key and what to write.
    pub(super) fn delivery(dir: &Path) -> Result<crate::delivery::Delivery> {
        let config = NodeConfig::load(dir)?;
        let settings =
            crate::delivery::DeliverySettings { email: config.email, sms: config.sms, outbox: config.outbox };
        crate::delivery::Delivery::from_settings(&settings, &crate::delivery::config::process_env)
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join(CONFIG_FILE).display()))
    }
}

/// Runs `node` on the network and serves its HTTP API until Ctrl-C or
/// SIGTERM (then finishes the requests in flight).
fn serve(
    node: Node,
    dir: &Path,
    mut config: crate::net::NetConfig,
    http: crate::http::HttpConfig,
    public_url: Option<String>,
    delivery: Option<crate::delivery::Delivery>,
) -> Result<()> {
    let mut node = node;
    for hub in node.addresses(crate::node::META_HUB_ADDRESSES)? {
        config.peers.push(hub.parse()?);
    }
    config.peers.sort();
    config.peers.dedup();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SALDO_LOG").unwrap_or_else(|_| "saldo_node=info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let listener = http.bind()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut done = None;
    let ran = runtime.block_on(async {
        let service = crate::service::Service::start(node, Some(dir.to_path_buf()))?;
        done = Some(service.writer_done());
        // Receipts' verification links point where parents reach the hub:
        // as configured, else (at the hub) the address the API listens on.
        if let Some(url) = &public_url {
            service.set_public_url(url.clone()).await?;
        }
        let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
        let stopper = stop.clone();
        tokio::spawn(async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            let _ = stopper.send(());
        });
        let mut http_stop = stop.subscribe();
        let api = tokio::spawn(crate::http::serve(service.clone(), http, listener, public_url.is_none(), async move {
            let _ = http_stop.recv().await;
        }));
        // The hub's sender runs beside the API; it ends with them.
        let sender = delivery.map(|delivery| {
            let mut sender_stop = stop.subscribe();
            tokio::spawn(crate::delivery::run(service.clone(), delivery, async move {
                let _ = sender_stop.recv().await;
            }))
        });
        let mut net_stop = stop.subscribe();
        let net = crate::net::run_service(service, dir, config, async move {
            let _ = net_stop.recv().await;
        });
        let (net, api) = tokio::join!(net, api);
        let api = api.map_err(|e| anyhow::anyhow!("the HTTP API stopped: {e}"))?;
        if let Err(e) = api {
            // The sync endpoint stops with it: a node without its API is no use to its operators.
            let _ = stop.send(());
            return Err(e);
        }
        let _ = stop.send(());
        if let Some(sender) = sender {
            let _ = sender.await;
        }
        net
    });
    // The node's thread finishes what it was doing and closes the
    // database before the process exits.
    drop(runtime);
    if let Some(done) = done {
        done.wait();
    }
    ran
}

/// Creates a cash point in `dir` from an enrolment token: a new key, the hub
/// enrols it, then the node is created. If the hub refuses, nothing is left.
pub(super) fn join(dir: &Path, token: &str, p2p: std::net::SocketAddr) -> Result<Node> {
    if dir.join(crate::node::DATABASE_FILE).exists() {
        bail!("{} holds a node already: run `saldo cashpoint --data {}` without --join", dir.display(), dir.display());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let new = runtime.block_on(crate::net::join_realm(dir, token, p2p)).map_err(|e| anyhow::anyhow!(e.message))?;
    outln!("joined the realm {} as {:?}; this node's id is {}", new.realm.to_hex(), new.joined.name, new.me.to_hex());
    if let Some(after) = new.joined.receipts_after {
        outln!("it replaces a device whose highest receipt was no. {after}: its receipts start at no. {}", after + 1);
    }
    Ok(new.node)
}

pub(super) fn hub(args: RunArgs) -> Result<()> {
    let node = open(&args.data.data)?;
    if !node.is_hub() {
        bail!(
            "{} holds a cash point, not the hub: run `saldo cashpoint --data {}`",
            args.data.data.display(),
            args.data.data.display()
        );
    }
    // A running node goes on when no one reads its output any more.
    let _ = writeln!(
        std::io::stdout(),
        "hub of {:?} ({}), data in {}",
        node.realm_name(),
        node.realm().to_hex(),
        args.data.data.display()
    );
    let config = args.network(7400)?;
    let (http, public_url) = args.http(8400)?;
    let delivery = NodeConfig::delivery(&args.data.data)?;
    serve(node, &args.data.data, config, http, public_url, Some(delivery))?;
    Ok(())
}

pub(super) fn cashpoint(args: CashpointArgs) -> Result<()> {
    let dir = &args.run.data.data;
    let config = args.run.network(0)?;
    let (http, public_url) = args.run.http(8480)?;
    let node = match &args.join {
        Some(token) => join(dir, token, config.bind)?,
        None => open(dir)?,
    };
    if node.is_hub() {
        bail!("{} holds the hub: run `saldo hub --data {}`", dir.display(), dir.display());
    }
    let mut node = node;
    if !args.hub.is_empty() {
        if let Some(wrong) = args.hub.iter().find(|h| h.id != node.realm().hub()) {
            bail!("--hub {wrong}: that is not this realm's hub (its id is {})", node.realm().hub().to_hex());
        }
        let hub: Vec<String> = args.hub.iter().map(ToString::to_string).collect();
        node.set_addresses(crate::node::META_HUB_ADDRESSES, &hub)?;
    }
    serve(node, dir, config, http, public_url, None)?;
    Ok(())
}
