//! Who is asking: sessions (an HttpOnly, SameSite=Strict cookie naming a
//! random token; Secure when served over TLS), the CSRF token every request
//! that changes something must carry (`X-CSRF-Token`, handed out at log-in),
//! and the login rate limits per client address and per account.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use saldo_api::ErrorKind;
use saldo_api::session::OperatorRole;

use super::{AppState, HttpError};
use crate::service::Operator;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "saldo_session";
/// The header that carries the CSRF token on every request that changes something.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session unused this long ends.
const IDLE_MAX: Duration = Duration::from_secs(4 * 3600);
/// A session ends this long after log-in, used or not (a shift).
const LIFETIME_MAX: Duration = Duration::from_secs(12 * 3600);
/// Most sessions open at once on one node; the oldest go first.
const SESSIONS_MAX: usize = 10_000;

/// A logged-in operator's session.
#[derive(Debug, Clone)]
pub struct Session {
    pub operator: Operator,
    pub csrf: String,
    created: Instant,
    seen: Instant,
}

/// The open sessions of this node, by the BLAKE3 hash of their token. Kept
/// in memory: a restarted node asks its operators to log in again.
#[derive(Debug, Default)]
pub struct Sessions {
    open: Mutex<HashMap<[u8; 32], Session>>,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system gives random bytes");
    hex::encode(bytes)
}

fn token_key(token: &str) -> [u8; 32] {
    *blake3::hash(token.as_bytes()).as_bytes()
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens a session for `operator`: its token (for the cookie) and session.
    pub fn open(&self, operator: Operator) -> (String, Session) {
        let token = random_token();
        let now = Instant::now();
        let session = Session { operator, csrf: random_token(), created: now, seen: now };
        let mut open = self.lock();
        open.retain(|_, s| alive(s, now));
        if open.len() >= SESSIONS_MAX
            && let Some(oldest) = open.iter().min_by_key(|(_, s)| s.created).map(|(k, _)| *k)
        {
            open.remove(&oldest);
        }
        open.insert(token_key(&token), session.clone());
        (token, session)
    }

    /// The session of `token`, if open, marked as used now.
    pub fn get(&self, token: &str) -> Option<Session> {
        let now = Instant::now();
        let mut open = self.lock();
        let key = token_key(token);
        match open.get_mut(&key) {
            Some(session) if alive(session, now) => {
                session.seen = now;
                Some(session.clone())
            }
            Some(_) => {
                open.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn close(&self, token: &str) {
        self.lock().remove(&token_key(token));
    }

    /// The operator of `token` chose their own password: their session
    /// goes on, no longer held to replacing it; their other sessions end.
    pub fn password_changed(&self, token: &str) -> Option<Session> {
        let mut open = self.lock();
        let key = token_key(token);
        let session = open.get_mut(&key)?;
        session.operator.must_change_password = false;
        let (kept, login) = (session.clone(), session.operator.login.clone());
        open.retain(|k, s| *k == key || !s.operator.login.eq_ignore_ascii_case(&login));
        Some(kept)
    }

    /// Ends every session of the operator `login` (an account disabled, or
    /// its password changed, here); answers how many ended.
    pub fn close_operator(&self, login: &str) -> usize {
        let mut open = self.lock();
        let before = open.len();
        open.retain(|_, s| !s.operator.login.eq_ignore_ascii_case(login));
        before - open.len()
    }
}

fn alive(session: &Session, now: Instant) -> bool {
    now.duration_since(session.seen) < IDLE_MAX && now.duration_since(session.created) < LIFETIME_MAX
}

/// The session cookie's token in `headers`, if any.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| cookie::Cookie::parse(pair.trim().to_string()).ok())
        .find(|c| c.name() == SESSION_COOKIE)
        .map(|c| c.value().to_string())
}

/// The `Set-Cookie` value that opens (or, with `None`, ends) a session.
pub fn session_cookie(token: Option<&str>, secure: bool) -> String {
    let mut cookie = cookie::Cookie::build((SESSION_COOKIE, token.unwrap_or("").to_string()))
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .path("/")
        .secure(secure);
    if token.is_none() {
        cookie = cookie.max_age(cookie::time::Duration::ZERO);
    }
    cookie.build().to_string()
}

/// Login attempts allowed per client address and per account.
#[derive(Debug)]
pub struct LoginLimits {
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    by_account: DefaultKeyedRateLimiter<String>,
}

impl Default for LoginLimits {
    fn default() -> LoginLimits {
        let nz = |n| NonZeroU32::new(n).expect("a positive number");
        LoginLimits {
            // 20 attempts at once from one address, then one every 3 s.
            by_address: RateLimiter::keyed(
                Quota::with_period(Duration::from_secs(3)).expect("a period").allow_burst(nz(20)),
            ),
            // 5 attempts at once on one account, then one every 12 s.
            by_account: RateLimiter::keyed(
                Quota::with_period(Duration::from_secs(12)).expect("a period").allow_burst(nz(5)),
            ),
        }
    }
}

impl LoginLimits {
    /// Counts an attempt; refuses it when either limit is reached.
    pub fn attempt(&self, address: Option<IpAddr>, login: &str) -> Result<(), HttpError> {
        let too_many = |wait: Duration| {
            HttpError::new(
                ErrorKind::TooManyRequests,
                format!("too many login attempts: try again in {} s", wait.as_secs().max(1)),
            )
        };
        let clock = governor::clock::DefaultClock::default();
        if let Some(address) = address
            && let Err(not_until) = self.by_address.check_key(&address)
        {
            return Err(too_many(not_until.wait_time_from(governor::clock::Clock::now(&clock))));
        }
        if let Err(not_until) = self.by_account.check_key(&login.to_lowercase()) {
            return Err(too_many(not_until.wait_time_from(governor::clock::Clock::now(&clock))));
        }
        Ok(())
    }
}

/// The client's address, when the server knows it.
pub fn client_address(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())
}

/// A request by a logged-in operator; for a method that changes something,
/// with the session's CSRF token.
#[derive(Debug, Clone)]
pub struct Authed {
    pub session: Session,
    pub token: String,
}

impl Authed {
    /// Refuses unless the operator has one of `roles`.
    pub fn require(&self, roles: &[OperatorRole]) -> Result<&Operator, HttpError> {
        let operator = &self.session.operator;
        if roles.contains(&operator.role) {
            return Ok(operator);
        }
        let names: Vec<&str> = roles.iter().map(|r| role_name(*r)).collect();
        Err(HttpError::new(
            ErrorKind::Forbidden,
            format!("{} may not do this here; it takes: {}", role_name(operator.role), names.join(" or ")),
        ))
    }
}

pub fn role_name(role: OperatorRole) -> &'static str {
    match role {
        OperatorRole::Administrator => "an administrator",
        OperatorRole::Clerk => "an office clerk",
        OperatorRole::Cashier => "a cashier",
    }
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let unauthenticated = || {
            HttpError::new(
                ErrorKind::Unauthenticated,
                "log in first (POST /api/v1/session); your session may have ended",
            )
        };
        let token = session_token(&parts.headers).ok_or_else(unauthenticated)?;
        let session = state.sessions.get(&token).ok_or_else(unauthenticated)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            // Compared as hashes: how long a comparison takes says nothing of the token.
            if blake3::hash(sent.as_bytes()) != blake3::hash(session.csrf.as_bytes()) {
                return Err(HttpError::new(
                    ErrorKind::Forbidden,
                    format!("missing or wrong {CSRF_HEADER} header: send the csrf_token given at log-in"),
                ));
            }
        }
        if session.operator.must_change_password && !replacing_a_one_time_password(&parts.method, parts.uri.path()) {
            return Err(HttpError::new(
                ErrorKind::Forbidden,
                "you logged in with a one-time password: choose your own first (POST /api/v1/session/password)",
            ));
        }
        // An account disabled (here, or at the hub and synced) ends its sessions.
        if let Err(reason) = state.service.operator_still_allowed(&session.operator).await {
            state.sessions.close(&token);
            return Err(HttpError::new(ErrorKind::Unauthenticated, reason));
        }
        Ok(Authed { session, token })
    }
}

/// What a session opened with a one-time password may do: see who is
/// logged in, log out, and choose a password.
fn replacing_a_one_time_password(method: &Method, path: &str) -> bool {
    let path = path.strip_prefix(saldo_api::API_PREFIX).unwrap_or(path);
    match path {
        "/session" => matches!(*method, Method::GET | Method::HEAD | Method::DELETE),
        "/session/password" => *method == Method::POST,
        _ => false,
    }
}

/// Public verifications allowed per client address: enough for a parent
/// scanning receipts, too few to walk the code space.
#[derive(Debug)]
pub struct VerifyLimits {
    by_address: DefaultKeyedRateLimiter<IpAddr>,
}

impl Default for VerifyLimits {
    fn default() -> VerifyLimits {
        let burst = NonZeroU32::new(30).expect("a positive number");
        VerifyLimits {
            // 30 at once, then one every 2 s.
            by_address: RateLimiter::keyed(
                Quota::with_period(Duration::from_secs(2)).expect("a period").allow_burst(burst),
            ),
        }
    }
}

impl VerifyLimits {
    pub fn attempt(&self, address: Option<IpAddr>) -> Result<(), HttpError> {
        let Some(address) = address else { return Ok(()) };
        self.by_address.check_key(&address).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
            HttpError::new(
                ErrorKind::TooManyRequests,
                format!("too many verifications: try again in {} s", wait.as_secs().max(1)),
            )
        })
    }
}

/// The client's address, when the server knows it (not in tests that call
/// the router directly).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_address(parts)))
    }
}

/// Which roles may call a route: a type, so that the check runs as the
/// request is taken apart, before its body is read (a caller without the
/// role hears 403 whatever it sent).
pub trait Roles: Send + Sync + 'static {
    const ALLOWED: &'static [OperatorRole];
}

/// Every operator: administrators, clerks and cashiers.
#[derive(Debug)]
pub struct Everyone;
impl Roles for Everyone {
    const ALLOWED: &'static [OperatorRole] = &[OperatorRole::Administrator, OperatorRole::Clerk, OperatorRole::Cashier];
}

/// The hub's staff: administrators and office clerks.
#[derive(Debug)]
pub struct HubStaff;
impl Roles for HubStaff {
    const ALLOWED: &'static [OperatorRole] = &[OperatorRole::Administrator, OperatorRole::Clerk];
}

/// Administrators only.
#[derive(Debug)]
pub struct Administrators;
impl Roles for Administrators {
    const ALLOWED: &'static [OperatorRole] = &[OperatorRole::Administrator];
}

/// Cashiers only: what a cash point does with its own till (the daily
/// close, remittances). Nobody else logs in at a cash point, and cashiers
/// log in nowhere else.
#[derive(Debug)]
pub struct Cashiers;
impl Roles for Cashiers {
    const ALLOWED: &'static [OperatorRole] = &[OperatorRole::Cashier];
}

/// A logged-in operator whose role is one of `R::ALLOWED` (with the CSRF
/// token on a change).
#[derive(Debug, Clone)]
pub struct Caller<R: Roles> {
    pub authed: Authed,
    _roles: std::marker::PhantomData<R>,
}

impl<R: Roles> Caller<R> {
    pub fn operator(&self) -> &Operator {
        &self.authed.session.operator
    }
}

impl<R: Roles> FromRequestParts<AppState> for Caller<R> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let authed = Authed::from_request_parts(parts, state).await?;
        authed.require(R::ALLOWED)?;
        Ok(Caller { authed, _roles: std::marker::PhantomData })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator(login: &str) -> Operator {
        Operator {
            login: login.to_string(),
            name: "Anna Bianchi".to_string(),
            role: OperatorRole::Clerk,
            cash_point: None,
            cash_point_name: None,
            must_change_password: false,
        }
    }

    #[test]
    fn closing_an_operators_sessions_ends_all_of_theirs_and_nobody_elses() {
        let sessions = Sessions::default();
        let (first, _) = sessions.open(operator("anna"));
        let (second, _) = sessions.open(operator("anna"));
        let (other, _) = sessions.open(operator("luca"));
        assert_eq!(sessions.close_operator("Anna"), 2);
        assert!(sessions.get(&first).is_none() && sessions.get(&second).is_none());
        assert!(sessions.get(&other).is_some());
        assert_eq!(sessions.close_operator("anna"), 0);
    }
}
