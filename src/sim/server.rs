//! The axum server: SFMC token, REST and admin (Setup) endpoints over a shared [`State`].

use super::bodies;
use super::state::{Injected, RecordedRequest, State};
use super::{Scenario, SimError};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub(super) struct Shared {
    pub state: Mutex<State>,
    /// Where the simulator listens (`http(s)://127.0.0.1:PORT/`).
    pub base_url: String,
    /// What clients are told: per-kind URLs (the listening address unless `base_url` / `--public-url` say otherwise).
    pub urls: PublicUrls,
    shutdown: watch::Receiver<bool>,
    /// Requests being answered now, and the most there ever were at once (to test clients' concurrency caps).
    in_flight: std::sync::atomic::AtomicUsize,
    max_in_flight: std::sync::atomic::AtomicUsize,
}

impl Shared {
    /// Lock the state and apply due timeline events.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        g.tick();
        g
    }

    /// Sleep, but wake at once when the server shuts down.
    async fn sleep(&self, d: Duration) {
        if d.is_zero() {
            return;
        }
        let mut rx = self.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = rx.wait_for(|stop| *stop) => {}
        }
    }
}

/// The URLs the simulator hands out, one per kind of SFMC host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrls {
    pub auth: String,
    pub rest: String,
    pub soap: String,
}

impl PublicUrls {
    /// Fill `{kind}` and `{port}` of a template; no template = the listening address for every kind.
    pub fn new(template: Option<&str>, listening: &str, port: u16) -> Self {
        let fill = |kind: &str| match template {
            Some(t) => t
                .replace("{kind}", kind)
                .replace("{port}", &port.to_string()),
            None => listening.to_string(),
        };
        Self {
            auth: fill("auth"),
            rest: fill("rest"),
            soap: fill("soap"),
        }
    }

    /// Host names (and IPs) a server certificate must cover.
    pub fn hosts(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for u in [&self.auth, &self.rest, &self.soap] {
            if let Some(h) = url::Url::parse(u)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
            {
                let h = h.trim_start_matches('[').trim_end_matches(']').to_string();
                if !out.contains(&h) {
                    out.push(h);
                }
            }
        }
        out
    }
}

/// How `authwatch simulate` serves: plain http or TLS with a throwaway CA, and what URLs it advertises.
#[derive(Clone, Debug, Default)]
pub struct SimOptions {
    pub tls: bool,
    /// Overrides the scenario's `base_url` template.
    pub public_url: Option<String>,
}

/// Setup "generate" and "activate" on a running simulator: in `authwatch demo` they stand in for the trip to
/// Setup > Installed Packages.
#[derive(Clone)]
pub struct SimAdmin {
    shared: Arc<Shared>,
}

impl SimAdmin {
    /// A new STAGED secret for the client (accepted after the scenario's staging delay).
    pub fn generate_secret(&self, client_key: &str) -> Result<String, SimError> {
        self.shared.lock().generate(client_key).map(|(s, _)| s)
    }

    /// The staged secret becomes the only valid one at once.
    pub fn activate_secret(&self, client_key: &str) -> Result<(), SimError> {
        self.shared.lock().activate(client_key)
    }
}

/// A running simulator.
pub struct SimServer {
    addr: SocketAddr,
    /// PEM of the throwaway CA when serving TLS.
    ca_pem: Option<String>,
    pub(super) shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Drop for SimServer {
    /// A server dropped without [`SimServer::shutdown`] still stops (without waiting).
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Start serving `scenario` on `listen` (port 0 picks a free port), plain http.
pub async fn start(scenario: Scenario, listen: SocketAddr) -> Result<SimServer, SimError> {
    start_with(scenario, listen, SimOptions::default()).await
}

/// Start serving with TLS and/or public URLs.
pub async fn start_with(
    scenario: Scenario,
    listen: SocketAddr,
    options: SimOptions,
) -> Result<SimServer, SimError> {
    let template = match &options.public_url {
        Some(t) => Some(super::scenario::check_base_url(t).map_err(SimError::Conflict)?),
        None => scenario.base_url.clone(),
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| SimError::Bind {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the SFMC simulator listens on a non-loopback address");
    }
    let (stop, shutdown) = watch::channel(false);
    let mut base_url = base_url_for(addr);
    if options.tls {
        base_url = base_url.replacen("http://", "https://", 1);
    }
    let urls = PublicUrls::new(template.as_deref(), &base_url, addr.port());
    let shared = Arc::new(Shared {
        state: Mutex::new(State::new(scenario)),
        base_url,
        urls: urls.clone(),
        shutdown: shutdown.clone(),
        in_flight: Default::default(),
        max_in_flight: Default::default(),
    });
    let app = router(shared.clone());
    let mut rx = shutdown;
    let signal = async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let (ca_pem, task) = if options.tls {
        let mut hosts = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        for h in urls.hosts() {
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        }
        let tls = super::tls::generate(&hosts).map_err(SimError::Conflict)?;
        let listener = crate::tls::TlsListener::new(listener, tls.config)?;
        (Some(tls.ca_pem), spawn_serve(listener, app, signal))
    } else {
        (None, spawn_serve(listener, app, signal))
    };
    tracing::info!(%addr, "SFMC simulator listening");
    Ok(SimServer {
        addr,
        ca_pem,
        shared,
        stop,
        task: Some(task),
    })
}

fn spawn_serve<L>(
    listener: L,
    app: Router,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
) -> JoinHandle<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .await
        {
            tracing::error!(error = %e, "simulator server stopped");
        }
    })
}

fn base_url_for(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(ip, addr.port()))
}

impl SimServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/` (with the trailing slash); also the rest/soap/auth instance URL.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The URLs handed to clients (token body, /platform/v1/endpoints, written config).
    pub fn public_urls(&self) -> PublicUrls {
        self.shared.urls.clone()
    }

    /// The throwaway CA (PEM) when serving TLS: what clients must trust.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// What the server answered, oldest first (the last 100 000).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.iter().cloned().collect()
    }

    /// How many token requests (`/v2/token` and `/oauth2/token`) named this client_id.
    pub fn token_requests(&self, client_id: &str) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| {
                (r.path == "/v2/token" || r.path == "/oauth2/token")
                    && r.client_id.as_deref() == Some(client_id)
            })
            .count()
    }

    /// The most requests that were being answered at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.shared
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Setup "generate" for the scenario client `client_key`: returns the new STAGED secret.
    pub fn generate_secret(&self, client_key: &str) -> Result<String, SimError> {
        self.admin().generate_secret(client_key)
    }

    /// Setup's actions on this server, for a holder that outlives no borrow of it (the demo's wizard).
    pub fn admin(&self) -> SimAdmin {
        SimAdmin {
            shared: self.shared.clone(),
        }
    }

    /// Invalidate every token issued so far for `client_key` before its expiry, as when a cached token is shared
    /// across cluster nodes or a package is reinstalled: REST calls with them get 401 "Not Authorized".
    pub fn invalidate_tokens(&self, client_key: &str) -> Result<usize, SimError> {
        let mut st = self.shared.lock();
        let idx = st.client_by_key(client_key)?;
        let before = st.tokens.len();
        st.tokens.retain(|_, t| t.client != idx);
        Ok(before - st.tokens.len())
    }

    /// Setup "activate": the staged secret becomes the only valid one at once.
    pub fn activate_secret(&self, client_key: &str) -> Result<(), SimError> {
        self.admin().activate_secret(client_key)
    }

    /// Write `dir/authwatch.toml` and `dir/secrets/<id>` (mode 0600) for this server; returns the config path.
    pub fn write_config(&self, dir: &Path, now: DateTime<Utc>) -> Result<PathBuf, SimError> {
        let (scenario, secrets) = {
            let st = self.shared.lock();
            let secrets: Vec<(String, String)> = st
                .clients
                .iter()
                .map(|c| (c.spec.id.clone(), c.spec.secret.clone()))
                .collect();
            (st.scenario.clone(), secrets)
        };
        super::config_out::write(
            &scenario,
            &secrets,
            &self.shared.urls.auth,
            self.ca_pem.as_deref(),
            dir,
            now,
        )
    }

    /// Stop accepting, wake held responses, and wait (at most 5s) for the server task.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

/// `authwatch simulate`: start, print the address, optionally write the config, serve until Ctrl-C / SIGTERM.
pub async fn serve_forever(
    scenario: Scenario,
    listen: SocketAddr,
    print_config: Option<PathBuf>,
    options: SimOptions,
) -> Result<(), SimError> {
    let server = start_with(scenario, listen, options).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", server.base_url())?;
        let urls = server.public_urls();
        if urls.auth != server.base_url() || urls.rest != urls.auth || urls.soap != urls.auth {
            writeln!(
                out,
                "advertising auth {} rest {} soap {}",
                urls.auth, urls.rest, urls.soap
            )?;
        }
        if let Some(dir) = print_config {
            let path = server.write_config(&dir, Utc::now())?;
            writeln!(out, "config written to {}", path.display())?;
        }
        out.flush()?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    server.shutdown().await;
    Ok(())
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v2/token", post(sfmc_token))
        .route("/oauth2/token", post(oauth2_token))
        .route("/platform/v1/tokenContext", get(token_context))
        .route("/platform/v1/endpoints", get(endpoints))
        .route(
            "/data/v1/customobjectdata/key/{key}/rowset",
            get(de_rowset_read),
        )
        .route("/hub/v1/dataevents/{keyspec}/rowset", post(de_rowset_write))
        .route("/asset/v1/content/assets", get(assets))
        .route("/Service.asmx", post(soap_service))
        .route("/admin/clients/{id}/secrets/generate", post(admin_generate))
        .route("/admin/clients/{id}/secrets/activate", post(admin_activate))
        .route("/admin/requests", get(admin_requests))
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            count_in_flight,
        ))
        .with_state(shared)
}

async fn count_in_flight(
    AxState(shared): Sh,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use std::sync::atomic::Ordering::SeqCst;
    let now = shared.in_flight.fetch_add(1, SeqCst) + 1;
    shared.max_in_flight.fetch_max(now, SeqCst);
    let response = next.run(request).await;
    shared.in_flight.fetch_sub(1, SeqCst);
    response
}

type Sh = AxState<Arc<Shared>>;

/// What to send and how long to hold it.
struct Reply {
    response: Response,
    client_id: Option<String>,
    delay: Duration,
}

impl Reply {
    fn now(response: Response, client_id: Option<String>) -> Reply {
        Reply {
            response,
            client_id,
            delay: Duration::ZERO,
        }
    }
}

/// Record, wait out latency / hang, send.
async fn deliver(sh: &Shared, method: &Method, uri: &Uri, reply: Reply) -> Response {
    let status = reply.response.status().as_u16();
    tracing::debug!(%method, path = uri.path(), status, "sim request");
    sh.lock().record(RecordedRequest {
        at: Utc::now(),
        method: method.to_string(),
        path: uri.path().to_string(),
        client_id: reply.client_id,
        status,
    });
    sh.sleep(reply.delay).await;
    reply.response
}

fn json_str(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

// ---------------------------------------------------------------------------------------------------------------
// Token endpoints.

/// Credentials and parameters of one client_credentials request, whichever endpoint it came to.
struct TokenAsk {
    client_id: String,
    client_secret: String,
    scope: Option<String>,
    account_id: Option<u64>,
}

enum Flavor {
    Sfmc,
    OAuth2 { basic: bool },
}

/// The shared part of both token endpoints, once the request is parsed.
fn grant(sh: &Shared, ask: TokenAsk, flavor: Flavor) -> Reply {
    let mut st = sh.lock();
    let cid = Some(ask.client_id.clone());
    let refuse = |basic: bool| {
        let mut r = bodies::invalid_client();
        if basic {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="authwatch-sim""#),
            );
        }
        r
    };
    let basic = matches!(flavor, Flavor::OAuth2 { basic: true });
    let Some(idx) = st.client_by_client_id(&ask.client_id) else {
        return Reply::now(refuse(basic), cid);
    };
    let latency = st.clients[idx].spec.latency;
    let hang = st.scenario.hang;
    let reply = |response: Response, delay: Duration| Reply {
        response,
        client_id: cid.clone(),
        delay,
    };
    let mut bare = false;
    match st.injected(idx) {
        Injected::None => {}
        Injected::RateLimited(s) => return reply(bodies::rate_limited(s), latency),
        Injected::Unavailable(s) => return reply(bodies::unavailable(s), latency),
        Injected::MalformedJson => return reply(bodies::malformed_json(), latency),
        Injected::HugeBody => return reply(bodies::huge_body(), latency),
        Injected::Hang => return reply(bodies::gateway_timeout(), latency + hang),
        Injected::Flaky401 => return reply(bodies::not_authorized(false), latency),
        Injected::Blocked(s) => return reply(bodies::blocked(s), latency),
        Injected::InvalidClientId => return reply(bodies::invalid_client_id(), latency),
        Injected::BareToken => bare = true,
    }
    if !st.secret_ok(idx, &ask.client_secret) {
        return reply(refuse(basic), latency);
    }
    if let Some(mid) = ask.account_id
        && !st.clients[idx].spec.mids.contains(&mid)
        && st.scenario.unknown_mid == super::scenario::UnknownMid::Reject
    {
        return reply(bodies::unknown_account_id(), latency);
    }
    let (token, scopes) = st.issue(idx, ask.scope.as_deref(), ask.account_id);
    let expires_in = st.scenario.expires_in;
    let scope = json_str(&scopes.join(" "));
    let body = match flavor {
        _ if bare => format!(
            r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{expires_in}}}"#
        ),
        Flavor::Sfmc => {
            let rest = json_str(&sh.urls.rest);
            let soap = json_str(&sh.urls.soap);
            format!(
                r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{expires_in},"scope":{scope},"soap_instance_url":{soap},"rest_instance_url":{rest}}}"#
            )
        }
        Flavor::OAuth2 { .. } => format!(
            r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{expires_in},"scope":{scope}}}"#
        ),
    };
    let mut response = bodies::json(StatusCode::OK, body);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    reply(response, latency)
}

/// `None` = carry on with client_credentials; `Some(response)` = refuse this grant_type.
fn check_grant_type(grant_type: Option<&str>) -> Option<Response> {
    match grant_type {
        None | Some("") => Some(bodies::invalid_request("grant_type is required.")),
        Some("client_credentials") => None,
        Some(
            "authorization_code" | "refresh_token" | "urn:ietf:params:oauth:grant-type:jwt-bearer",
        ) => Some(bodies::invalid_grant()),
        Some(_) => Some(bodies::unsupported_grant_type()),
    }
}

/// MID from a JSON string or number; anything else that is not a MID of the client simply picks the default.
/// `Err(())`: not a string or a number.
fn parse_account_id(v: Option<&Value>) -> Result<Option<u64>, ()> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().parse().unwrap_or(0))),
        Some(Value::Number(n)) => Ok(Some(n.as_u64().unwrap_or(0))),
        Some(_) => Err(()),
    }
}

async fn sfmc_token(AxState(sh): Sh, method: Method, uri: Uri, body: Bytes) -> Response {
    let reply = sfmc_token_reply(&sh, &body);
    deliver(&sh, &method, &uri, reply).await
}

fn sfmc_token_reply(sh: &Shared, body: &[u8]) -> Reply {
    let obj = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return Reply::now(
                bodies::invalid_request("The request body must be a JSON object."),
                None,
            );
        }
        Err(_) => {
            return Reply::now(
                bodies::invalid_request("The request body is not valid JSON."),
                None,
            );
        }
    };
    let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    let client_id = text("client_id").filter(|s| !s.is_empty());
    if let Some(r) = check_grant_type(obj.get("grant_type").and_then(Value::as_str)) {
        return Reply::now(r, client_id);
    }
    let (Some(client_id), Some(client_secret)) = (
        client_id.clone(),
        text("client_secret").filter(|s| !s.is_empty()),
    ) else {
        return Reply::now(
            bodies::invalid_request("client_id and client_secret are required."),
            client_id,
        );
    };
    let scope = match obj.get("scope") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Reply::now(
                bodies::invalid_request("scope must be a space-separated string."),
                Some(client_id),
            );
        }
    };
    let account_id = match parse_account_id(obj.get("account_id")) {
        Ok(a) => a,
        Err(()) => {
            return Reply::now(
                bodies::invalid_request(
                    "account_id must be the MID of a business unit (a string or a number).",
                ),
                Some(client_id),
            );
        }
    };
    grant(
        sh,
        TokenAsk {
            client_id,
            client_secret,
            scope,
            account_id,
        },
        Flavor::Sfmc,
    )
}

async fn oauth2_token(
    AxState(sh): Sh,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = oauth2_token_reply(&sh, &headers, &body);
    deliver(&sh, &method, &uri, reply).await
}

fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(rest.trim())?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

fn oauth2_token_reply(sh: &Shared, headers: &HeaderMap, body: &[u8]) -> Reply {
    let mut grant_type = None;
    let mut scope = None;
    let mut account_id = None;
    let mut body_id = None;
    let mut body_secret = None;
    for (k, v) in url::form_urlencoded::parse(body) {
        let v = v.into_owned();
        match &*k {
            "grant_type" => grant_type = Some(v),
            "scope" => scope = Some(v),
            "account_id" => account_id = Some(Value::String(v)),
            "client_id" => body_id = Some(v),
            "client_secret" => body_secret = Some(v),
            _ => {}
        }
    }
    let basic = basic_credentials(headers);
    let is_basic = basic.is_some();
    let (client_id, client_secret) = match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (body_id, body_secret),
    };
    let client_id = client_id.filter(|s| !s.is_empty());
    if let Some(r) = check_grant_type(grant_type.as_deref()) {
        return Reply::now(r, client_id);
    }
    let (Some(client_id), Some(client_secret)) =
        (client_id.clone(), client_secret.filter(|s| !s.is_empty()))
    else {
        return Reply::now(bodies::invalid_client(), client_id);
    };
    let account_id = parse_account_id(account_id.as_ref()).unwrap_or(None);
    grant(
        sh,
        TokenAsk {
            client_id,
            client_secret,
            scope,
            account_id,
        },
        Flavor::OAuth2 { basic: is_basic },
    )
}

/// Standard base64 (RFC 7617 Basic credentials), padding optional: some clients drop it.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const BASIC: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    BASIC.decode(s).ok()
}

// ---------------------------------------------------------------------------------------------------------------
// REST endpoints.

struct Caller {
    client_id: String,
    rest_fault: super::scenario::RestFault,
    retry_after: u32,
    enterprise_id: u64,
    user_id: u64,
    mid: u64,
    scopes: Vec<String>,
    latency: Duration,
}

enum AuthFailure {
    TokenInUrl,
    NotAuthorized,
}

/// Bearer-token check shared by every REST route.
fn authenticate(sh: &Shared, uri: &Uri, headers: &HeaderMap) -> Result<Caller, AuthFailure> {
    let in_query = uri.query().is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .any(|(k, _)| k.eq_ignore_ascii_case("access_token"))
    });
    if in_query {
        return Err(AuthFailure::TokenInUrl);
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string());
    let st = sh.lock();
    let Some(info) = token.as_deref().and_then(|t| st.token(t)) else {
        return Err(AuthFailure::NotAuthorized);
    };
    let c = &st.clients[info.client];
    Ok(Caller {
        client_id: c.spec.client_id.clone(),
        rest_fault: c.spec.rest_fault,
        retry_after: c.spec.retry_after,
        enterprise_id: c.spec.enterprise_id,
        user_id: 700_000_000 + info.client as u64,
        mid: info.mid,
        scopes: info.scopes.clone(),
        latency: c.spec.latency,
    })
}

/// Authenticate, check `scope`, then build the body.
fn rest(
    sh: &Shared,
    uri: &Uri,
    headers: &HeaderMap,
    scope: Option<&str>,
    ok: impl FnOnce(&Caller) -> Response,
) -> Reply {
    let caller = match authenticate(sh, uri, headers) {
        Ok(c) => c,
        Err(AuthFailure::TokenInUrl) => return Reply::now(bodies::token_in_url(), None),
        Err(AuthFailure::NotAuthorized) => return Reply::now(bodies::not_authorized(true), None),
    };
    use super::scenario::RestFault;
    let response = match (caller.rest_fault, scope) {
        (RestFault::RateLimited, _) => bodies::rate_limited(caller.retry_after),
        (RestFault::Blocked, _) => bodies::blocked(caller.retry_after),
        (RestFault::Unavailable, _) => bodies::unavailable(caller.retry_after),
        (RestFault::OtherStack, _) => bodies::invalid_on_this_endpoint(),
        (RestFault::None, Some(s)) if !caller.scopes.iter().any(|x| x == s) => {
            bodies::insufficient_privileges()
        }
        (RestFault::None, _) => ok(&caller),
    };
    Reply {
        response,
        client_id: Some(caller.client_id),
        delay: caller.latency,
    }
}

async fn token_context(AxState(sh): Sh, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let status =
        StatusCode::from_u16(sh.lock().scenario.token_context_status).unwrap_or(StatusCode::OK);
    let reply = rest(&sh, &uri, &headers, None, |c| {
        bodies::json(
            status,
            format!(
                r#"{{"enterprise":{{"id":{}}},"organization":{{"id":{}}},"user":{{"id":{}}}}}"#,
                c.enterprise_id, c.mid, c.user_id
            ),
        )
    });
    deliver(&sh, &method, &uri, reply).await
}

async fn endpoints(AxState(sh): Sh, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let (rest_url, soap, auth) = (
        json_str(&sh.urls.rest),
        json_str(&sh.urls.soap),
        json_str(&sh.urls.auth),
    );
    let reply = rest(&sh, &uri, &headers, None, |_| {
        bodies::json(
            StatusCode::OK,
            format!(
                r#"{{"page":1,"pageSize":3,"count":3,"items":[{{"type":"rest","url":{rest_url}}},{{"type":"soap","url":{soap}}},{{"type":"auth","url":{auth}}}]}}"#
            ),
        )
    });
    deliver(&sh, &method, &uri, reply).await
}

async fn de_rowset_read(
    AxState(sh): Sh,
    UrlPath(key): UrlPath<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let reply = rest(&sh, &uri, &headers, Some("data_extensions_read"), |_| {
        bodies::json(
            StatusCode::OK,
            format!(
                r#"{{"links":{{}},"customObjectKey":{},"pageSize":50,"page":1,"count":0,"items":[]}}"#,
                json_str(&key)
            ),
        )
    });
    deliver(&sh, &method, &uri, reply).await
}

async fn de_rowset_write(
    AxState(sh): Sh,
    UrlPath(keyspec): UrlPath<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = if !keyspec.starts_with("key:") {
        Reply::now(bodies::not_found(), None)
    } else if !headers.contains_key(header::AUTHORIZATION)
        && serde_json::from_slice::<Value>(&body)
            .ok()
            .is_some_and(|v| v.get("access_token").is_some())
    {
        Reply::now(bodies::token_in_body(), None)
    } else {
        rest(&sh, &uri, &headers, Some("data_extensions_write"), |_| {
            // SFMC echoes the upserted rows.
            let rows = serde_json::from_slice::<Value>(&body)
                .ok()
                .filter(Value::is_array)
                .unwrap_or(Value::Array(vec![]));
            bodies::json(StatusCode::OK, rows.to_string())
        })
    };
    deliver(&sh, &method, &uri, reply).await
}

async fn assets(AxState(sh): Sh, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let reply = rest(
        &sh,
        &uri,
        &headers,
        Some("documents_and_images_read"),
        |_| {
            bodies::json(
                StatusCode::OK,
                r#"{"count":0,"page":1,"pageSize":50,"links":{},"items":[]}"#.to_string(),
            )
        },
    );
    deliver(&sh, &method, &uri, reply).await
}

async fn soap_service(AxState(sh): Sh, method: Method, uri: Uri, body: Bytes) -> Response {
    let answer = super::soap::answer(&sh.lock(), &body);
    let reply = Reply {
        response: answer.response,
        client_id: answer.client_id,
        delay: answer.delay,
    };
    deliver(&sh, &method, &uri, reply).await
}

async fn fallback(AxState(sh): Sh, method: Method, uri: Uri) -> Response {
    deliver(&sh, &method, &uri, Reply::now(bodies::not_found(), None)).await
}

// ---------------------------------------------------------------------------------------------------------------
// Admin (Setup > Installed Packages). Not recorded, so they do not disturb request counts.

fn admin_failure(e: SimError) -> Response {
    match e {
        SimError::UnknownClient(_) => {
            bodies::admin_error(StatusCode::NOT_FOUND, "not_found", &e.to_string())
        }
        SimError::Conflict(_) => {
            bodies::admin_error(StatusCode::CONFLICT, "conflict", &e.to_string())
        }
        _ => bodies::admin_error(StatusCode::INTERNAL_SERVER_ERROR, "error", &e.to_string()),
    }
}

async fn admin_generate(AxState(sh): Sh, UrlPath(id): UrlPath<String>) -> Response {
    let result = sh.lock().generate(&id);
    match result {
        Ok((secret, accepted_after)) => bodies::json(
            StatusCode::OK,
            format!(
                r#"{{"staged_secret":{},"accepted_after":{}}}"#,
                json_str(&secret),
                json_str(&accepted_after.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            ),
        ),
        Err(e) => admin_failure(e),
    }
}

async fn admin_activate(AxState(sh): Sh, UrlPath(id): UrlPath<String>) -> Response {
    let result = sh.lock().activate(&id);
    match result {
        Ok(()) => bodies::json(
            StatusCode::OK,
            format!(r#"{{"activated":true,"client":{}}}"#, json_str(&id)),
        ),
        Err(e) => admin_failure(e),
    }
}

async fn admin_requests(AxState(sh): Sh) -> Response {
    let list: Vec<RecordedRequest> = sh.lock().requests.iter().cloned().collect();
    bodies::json(
        StatusCode::OK,
        serde_json::to_string(&list).unwrap_or_else(|_| "[]".to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        assert_eq!(base64_decode("YWJjOmRlZg==").unwrap(), b"abc:def");
        assert_eq!(base64_decode("YQ").unwrap(), b"a");
        assert!(base64_decode("a b").is_none());
    }

    #[test]
    fn base_url_uses_loopback_for_unspecified() {
        assert_eq!(
            base_url_for("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(base_url_for("[::1]:9".parse().unwrap()), "http://[::1]:9/");
    }
}
