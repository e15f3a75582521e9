//! Probing: request a token the way the credential's provider wants it, then make the representative call.

pub mod classify;

use crate::config::{ClientAuth, Credential, Integration, Provider, Settings};
use crate::model::{Outcome, Phase, ProbeResult};
use chrono::Utc;
use classify::{Failure, MAX_BODY};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum ProbeSetupError {
    #[error("cannot read ca_file {path}: {source}")]
    CaFile {
        path: String,
        source: std::io::Error,
    },
    #[error("ca_file {path} holds no usable PEM certificate: {reason}")]
    CaParse { path: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// The HTTP side of probing. One per engine; cheap to share.
pub struct Prober {
    http: reqwest::Client,
    token_refresh: Duration,
}

impl Prober {
    pub fn new(settings: &Settings) -> Result<Self, ProbeSetupError> {
        // reqwest reads HTTPS_PROXY/HTTP_PROXY/NO_PROXY from the environment by default.
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("authwatch/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(settings.max_concurrent_probes.max(1));
        if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path).map_err(|source| ProbeSetupError::CaFile {
                path: path.display().to_string(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ProbeSetupError::CaParse {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                }
            })?;
            if certs.is_empty() {
                return Err(ProbeSetupError::CaParse {
                    path: path.display().to_string(),
                    reason: "no certificates found".into(),
                });
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| ProbeSetupError::Client(e.to_string()))?;
        Ok(Self {
            http,
            token_refresh: settings.token_refresh,
        })
    }

    /// Request a token with the provider's wire format.
    pub async fn request_token(
        &self,
        cred: &Credential,
        secret: &SecretString,
        account_id: Option<&str>,
        scopes: &[String],
    ) -> Result<Token, Failure> {
        // A secret handed in directly (a rotation's pending or previous one) is known from now on too.
        crate::sanitize::Redactor::global().add(secret.expose_secret());
        self.request_token_raw(cred, secret, account_id, scopes)
            .await
            .map_err(Failure::cleaned)
    }

    async fn request_token_raw(
        &self,
        cred: &Credential,
        secret: &SecretString,
        account_id: Option<&str>,
        scopes: &[String],
    ) -> Result<Token, Failure> {
        let url = cred.token_endpoint();
        let scope = (!scopes.is_empty()).then(|| scopes.join(" "));
        let request = match cred.provider {
            Provider::Sfmc => {
                let mut body = serde_json::json!({
                    "grant_type": "client_credentials",
                    "client_id": cred.client_id,
                    "client_secret": secret.expose_secret(),
                });
                if let Some(scope) = &scope {
                    body["scope"] = scope.clone().into();
                }
                if let Some(mid) = account_id {
                    body["account_id"] = mid.into();
                }
                let bytes = zeroize::Zeroizing::new(serde_json::to_vec(&body).unwrap_or_default());
                zeroize_json(body);
                self.http
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(bytes.to_vec())
            }
            Provider::Oauth2 => {
                let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
                if let Some(scope) = &scope {
                    form.push(("scope", scope));
                }
                let req = self.http.post(url);
                match cred.client_auth {
                    ClientAuth::Basic => {
                        // RFC 6749 §2.3.1: id and secret are form-urlencoded before they go into the Basic header.
                        let id = form_urlencode(&cred.client_id);
                        let secret =
                            zeroize::Zeroizing::new(form_urlencode(secret.expose_secret()));
                        req.basic_auth(id, Some(secret.as_str())).form(&form)
                    }
                    ClientAuth::Body => {
                        form.push(("client_id", &cred.client_id));
                        form.push(("client_secret", secret.expose_secret()));
                        req.form(&form)
                    }
                }
            }
        };
        let started = Instant::now();
        let (status, headers, body) = self.send(request).await?;
        let elapsed = started.elapsed();
        if !(200..300).contains(&status) {
            let retry = classify::parse_retry_after(header(&headers, "retry-after"));
            return Err(classify::classify_error_status(status, &body, retry, true));
        }
        let fields = classify::parse_token_response(&body)?;
        // Refresh at 75% of the lifetime or after token_refresh, whichever comes first.
        let refresh_after = crate::rules::schedule::token_reuse(
            fields.expires_in.map(Duration::from_secs),
            self.token_refresh,
        );
        Ok(Token {
            access_token: SecretString::from(fields.access_token.as_str()),
            granted_scopes: fields.scope,
            rest_instance_url: fields.rest_instance_url,
            obtained_at: Instant::now(),
            refresh_after,
            elapsed,
        })
    }

    /// The representative read-only call with a bearer token.
    /// Answers the real status with the body (tokenContext is documented with 202, usually sends 200).
    pub async fn call(&self, url: Url, token: &SecretString) -> Result<(u16, Vec<u8>), Failure> {
        self.call_raw(url, token).await.map_err(Failure::cleaned)
    }

    async fn call_raw(&self, url: Url, token: &SecretString) -> Result<(u16, Vec<u8>), Failure> {
        let request = self.http.get(url).bearer_auth(token.expose_secret());
        let (status, headers, body) = self.send(request).await?;
        if (200..300).contains(&status) {
            return Ok((status, body));
        }
        let retry = classify::parse_retry_after(header(&headers, "retry-after"));
        Err(classify::classify_error_status(status, &body, retry, false))
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), Failure> {
        let mut response = request.send().await.map_err(transport_failure)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if (300..400).contains(&status) {
            // Not followed, and its body not read.
            return Err(classify::classify_redirect(
                status,
                header(&headers, "location"),
                response.url(),
            ));
        }
        if response
            .content_length()
            .is_some_and(|n| n as usize > MAX_BODY)
        {
            return Err(oversized(status));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport_failure)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(oversized(status));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, headers, body))
    }
}

fn form_urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn zeroize_json(mut v: serde_json::Value) {
    use zeroize::Zeroize;
    if let Some(serde_json::Value::String(s)) = v.get_mut("client_secret") {
        s.zeroize();
    }
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn oversized(status: u16) -> Failure {
    let mut f = Failure::new(Outcome::BadResponse).with_error("response body larger than 1 MiB");
    f.http_status = Some(status);
    f
}

/// Classify a transport error: timeouts, connect/DNS/TLS problems, broken bodies. The short error names the cause
/// and, where there is one, the fix; the detail keeps the whole chain.
fn transport_failure(e: reqwest::Error) -> Failure {
    let chain = error_chain(&e);
    if e.is_timeout() {
        return Failure::new(Outcome::Timeout)
            .with_error("timed out")
            .with_detail(chain);
    }
    if e.is_body() || e.is_decode() {
        return Failure::new(Outcome::BadResponse)
            .with_error("response body broken off")
            .with_detail(chain);
    }
    let host = e
        .url()
        .and_then(|u| u.host_str())
        .unwrap_or("the host")
        .to_string();
    Failure::new(Outcome::Network)
        .with_error(name_transport_error(&chain, &host))
        .with_detail(chain)
}

/// The words a user needs for a connect-level failure, from the error chain (rustls and hyper wording).
pub fn name_transport_error(chain: &str, host: &str) -> String {
    let lower = chain.to_ascii_lowercase();
    if lower.contains("dns error")
        || lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
        || lower.contains("no address associated")
        || lower.contains("name resolution")
    {
        return format!("no such host {host}: check the subdomain");
    }
    if let Some(rest) = chain.split("invalid peer certificate: ").nth(1) {
        let code: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        return match code.as_str() {
            "UnknownIssuer" => "certificate not trusted (UnknownIssuer): set ca_file".to_string(),
            "NotValidForName" => {
                format!("certificate not valid for {host} (NotValidForName): check the URL's host")
            }
            "Expired" => "certificate expired (Expired): the server must renew it".to_string(),
            "" => "certificate rejected".to_string(),
            other => format!("certificate rejected ({other})"),
        };
    }
    if lower.contains("invalidcontenttype") || lower.contains("corrupt message") {
        return "TLS to a plain http port: use http:// or the TLS port".to_string();
    }
    if ["certificate", "tls", "handshake", "alert"]
        .iter()
        .any(|needle| lower.contains(needle))
    {
        return "TLS handshake failed".to_string();
    }
    if lower.contains("refused") {
        return "connection refused".to_string();
    }
    if lower.contains("reset") {
        return "connection reset".to_string();
    }
    "connection failed".to_string()
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    classify::truncate(&parts.join(": "), 300)
}

/// A granted access token. Lives in memory only; its Debug output is redacted by `SecretString`.
#[derive(Debug)]
pub struct Token {
    pub access_token: SecretString,
    pub granted_scopes: Option<Vec<String>>,
    pub rest_instance_url: Option<Url>,
    pub obtained_at: Instant,
    pub refresh_after: Duration,
    /// How long the token request took.
    pub elapsed: Duration,
}

impl Token {
    fn usable(&self, now: Instant, fresh_since: Option<Instant>) -> bool {
        now < self.obtained_at + self.refresh_after
            && fresh_since.is_none_or(|t| self.obtained_at >= t)
    }

    /// On the wall clock: when this token stops being reused.
    fn reused_until(&self) -> chrono::DateTime<Utc> {
        let left =
            (self.obtained_at + self.refresh_after).saturating_duration_since(Instant::now());
        chrono::SubsecRound::trunc_subsecs(crate::rules::schedule::wall_after(Utc::now(), left), 3)
    }
}

/// Tokens are cached per (credential, account_id, scopes), so integrations that share a grant share a token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenKey {
    pub credential: String,
    pub account_id: Option<String>,
    pub scopes: Vec<String>,
}

impl TokenKey {
    pub fn for_integration(integration: &Integration) -> Self {
        let mut scopes = integration.scopes.clone();
        scopes.sort();
        scopes.dedup();
        Self {
            credential: integration.credential.clone(),
            account_id: integration.account_id.clone(),
            scopes,
        }
    }
}

/// What a token slot holds: the token, or the failure of the newest request (so that integrations sharing a
/// refused credential in one sweep do not each hammer the token endpoint).
enum Slot {
    Empty,
    Granted(Arc<Token>),
    Refused { failure: Failure, at: Instant },
}

#[derive(Default)]
pub struct TokenCache {
    slots: Mutex<HashMap<TokenKey, Arc<tokio::sync::Mutex<Slot>>>>,
}

impl TokenCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn slot(&self, key: &TokenKey) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().expect("token cache lock");
        slots
            .entry(key.clone())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(Slot::Empty)))
            .clone()
    }

    /// Drop every cached token (config reload).
    pub fn clear(&self) {
        self.slots.lock().expect("token cache lock").clear();
    }

    /// Number of keys holding a usable token (for tests and metrics).
    pub fn len(&self) -> usize {
        self.slots.lock().expect("token cache lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a probe gets its secret from; resolved only when a new token is needed.
pub type SecretSource<'s, 'a> =
    &'s (dyn Fn() -> futures::future::BoxFuture<'a, Result<SecretString, String>> + Sync + 'a);

/// The usual secret source: resolve the credential's reference each time a new token is needed, so a secret
/// changed on disk or in a vault is picked up without a restart.
pub fn secret_source<'a>(
    secret_ref: &'a crate::secrets::SecretRef,
    timeout: Duration,
) -> impl Fn() -> futures::future::BoxFuture<'a, Result<SecretString, String>> + Sync + 'a {
    move || Box::pin(async move { secret_ref.resolve(timeout).await.map_err(|e| e.to_string()) })
}

/// Everything a probe needs to know about one integration.
pub struct ProbeTarget<'a> {
    pub integration: &'a Integration,
    pub credential: &'a Credential,
}

/// Why a probe could not even start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotProbed {
    /// The secret reference failed to resolve (message without the value).
    Secret(String),
}

/// Which cached answers a probe may use.
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    /// A token obtained before this instant may not be used (forced probes and confirm retries); None: any
    /// token still inside its refresh window.
    pub token_since: Option<Instant>,
    /// Probes started together: a token request refused after this instant answers for the others sharing the
    /// grant, so a refused credential is asked once per batch, not once per integration.
    pub batch: Instant,
}

impl Freshness {
    /// A batch of probes that must use fresh tokens (shared within the batch).
    pub fn fresh_batch() -> Self {
        let now = Instant::now();
        Self {
            token_since: Some(now),
            batch: now,
        }
    }
}

/// Run one probe. Every string of the result that came from outside (error texts, detail, MID, scopes) is
/// clean: known secrets redacted, control and bidi characters escaped.
pub async fn probe(
    prober: &Prober,
    cache: &TokenCache,
    target: ProbeTarget<'_>,
    secret: SecretSource<'_, '_>,
    freshness: Freshness,
) -> Result<ProbeResult, NotProbed> {
    use crate::sanitize::{clean, clean_opt};
    match probe_raw(prober, cache, target, secret, freshness).await {
        Ok(mut r) => {
            r.error = clean_opt(r.error);
            r.detail = clean_opt(r.detail);
            r.mid = clean_opt(r.mid);
            r.granted_scopes = r
                .granted_scopes
                .map(|s| s.iter().map(|s| clean(s)).collect());
            r.missing_scopes = r.missing_scopes.iter().map(|s| clean(s)).collect();
            Ok(r)
        }
        Err(NotProbed::Secret(why)) => Err(NotProbed::Secret(clean(&why))),
    }
}

async fn probe_raw(
    prober: &Prober,
    cache: &TokenCache,
    target: ProbeTarget<'_>,
    secret: SecretSource<'_, '_>,
    freshness: Freshness,
) -> Result<ProbeResult, NotProbed> {
    // Millisecond precision: what is stored is exactly what was shown.
    let at = chrono::SubsecRound::trunc_subsecs(Utc::now(), 3);
    let key = TokenKey::for_integration(target.integration);
    let slot = cache.slot(&key);

    let (token, fresh) = match obtain_token(prober, &slot, &target, secret, freshness).await? {
        Ok(t) => t,
        Err((failure, fresh, elapsed)) => {
            let mut r = result_from_failure(at, Phase::Token, failure);
            r.fresh_token = fresh;
            r.token_ms = Some(elapsed.as_millis() as u64);
            return Ok(r);
        }
    };

    let mut result = ProbeResult::new(at, Outcome::Ok, Phase::Call);
    result.fresh_token = fresh;
    result.token_reused_until = Some(token.reused_until());
    result.token_ms = Some(if fresh {
        token.elapsed.as_millis() as u64
    } else {
        0
    });
    if let Some(why) = lacks_what_checks_need(&target, &token) {
        result.outcome = Outcome::BadResponse;
        result.phase = Phase::Token;
        result.http_status = Some(200);
        result.error = Some(why.to_string());
        return Ok(result);
    }
    let required = &target.integration.scopes;
    if let Some(granted) = &token.granted_scopes {
        result.granted_scopes = Some(granted.clone());
        result.missing_scopes = classify::missing_scopes(required, granted);
    }

    let Some(url) = check_url(&target, &token) else {
        // No representative call for this provider: the token request is the probe.
        return Ok(with_scope_verdict(result));
    };

    let started = Instant::now();
    let mut answer = prober.call(url.clone(), &token.access_token).await;
    // A cached token may have been revoked or expired early: retry once with a fresh one before it counts.
    if !fresh && matches!(&answer, Err(f) if f.http_status == Some(401)) {
        *slot.lock().await = Slot::Empty;
        match obtain_token(prober, &slot, &target, secret, Freshness::fresh_batch()).await? {
            Ok((new_token, _)) => {
                result.fresh_token = true;
                result.token_reused_until = Some(new_token.reused_until());
                result.token_ms = Some(new_token.elapsed.as_millis() as u64);
                if let Some(granted) = &new_token.granted_scopes {
                    result.granted_scopes = Some(granted.clone());
                    result.missing_scopes = classify::missing_scopes(required, granted);
                }
                let url = check_url(&target, &new_token).unwrap_or(url);
                answer = prober.call(url, &new_token.access_token).await;
            }
            Err((failure, _, elapsed)) => {
                let mut r = result_from_failure(at, Phase::Token, failure);
                r.fresh_token = true;
                r.token_ms = Some(elapsed.as_millis() as u64);
                return Ok(r);
            }
        }
    }
    result.call_ms = Some(started.elapsed().as_millis() as u64);

    match answer {
        Ok((status, body)) => {
            result.http_status = Some(status);
            if target.credential.provider == Provider::Sfmc
                && target.integration.check_path == crate::config::DEFAULT_CHECK_PATH
            {
                result.mid = classify::token_context_mid(&body);
                if result.mid.is_none() {
                    result.outcome = Outcome::BadResponse;
                    result.error = Some("tokenContext answer lacks organization.id".into());
                    return Ok(result);
                }
            }
            let mut r = with_scope_verdict(result);
            if r.outcome == Outcome::Ok
                && let (Some(want), Some(got)) = (&target.integration.account_id, &r.mid)
                && want != got
            {
                r.outcome = Outcome::WrongAccount;
                r.error = Some(format!("MID {got}, expected {want}"));
            }
            Ok(r)
        }
        Err(failure) => {
            let missing = std::mem::take(&mut result.missing_scopes);
            let mut r = result_from_failure(at, Phase::Call, failure);
            r.fresh_token = result.fresh_token;
            r.token_reused_until = result.token_reused_until;
            r.token_ms = result.token_ms;
            r.call_ms = result.call_ms;
            r.granted_scopes = result.granted_scopes;
            // A 403 with a scope we know is missing is best explained by the scope.
            if !missing.is_empty() && r.outcome == Outcome::Forbidden {
                r.outcome = Outcome::ScopeMissing;
            }
            r.missing_scopes = missing;
            Ok(r)
        }
    }
}

/// A probe whose call (if any) succeeded still fails when the grant lacks a required scope.
fn with_scope_verdict(mut r: ProbeResult) -> ProbeResult {
    if !r.missing_scopes.is_empty() {
        r.outcome = Outcome::ScopeMissing;
        r.phase = Phase::Token;
        r.error = Some(format!("missing {}", r.missing_scopes.join(" ")));
    }
    r
}

/// A 200 token response that lacks a field the configured checks need cannot count as healthy: SFMC names the
/// REST host in `rest_instance_url` (no call, so no MID, without it) and always states the granted `scope`.
/// Generic OAuth 2.0 servers may omit `scope` when they granted what was asked (RFC 6749 §5.1).
fn lacks_what_checks_need(target: &ProbeTarget<'_>, token: &Token) -> Option<&'static str> {
    if target.credential.provider != Provider::Sfmc {
        return None;
    }
    if token.rest_instance_url.is_none() {
        return Some("token response lacks rest_instance_url (needed for the check call)");
    }
    if !target.integration.scopes.is_empty() && token.granted_scopes.is_none() {
        return Some("token response lacks scope (needed to verify the configured scopes)");
    }
    None
}

fn check_url(target: &ProbeTarget<'_>, token: &Token) -> Option<Url> {
    match target.credential.provider {
        Provider::Sfmc => {
            let base = token.rest_instance_url.as_ref()?;
            base.join(&target.integration.check_path).ok()
        }
        Provider::Oauth2 => target.integration.check_url.clone(),
    }
}

fn result_from_failure(at: chrono::DateTime<Utc>, phase: Phase, f: Failure) -> ProbeResult {
    let mut r = ProbeResult::new(at, f.outcome, phase);
    r.http_status = f.http_status;
    r.error = f.error;
    r.detail = f.detail;
    r.retry_after_secs = f.retry_after.map(|d| d.as_secs());
    r
}

type Obtained = Result<(Arc<Token>, bool), (Failure, bool, Duration)>;

/// Single-flight per key: concurrent probes sharing a grant wait for one token request.
async fn obtain_token(
    prober: &Prober,
    slot: &tokio::sync::Mutex<Slot>,
    target: &ProbeTarget<'_>,
    secret: SecretSource<'_, '_>,
    freshness: Freshness,
) -> Result<Obtained, NotProbed> {
    let mut guard = slot.lock().await;
    let now = Instant::now();
    match &*guard {
        Slot::Granted(t) if t.usable(now, freshness.token_since) => {
            return Ok(Ok((t.clone(), false)));
        }
        Slot::Refused { failure, at } if *at >= freshness.batch => {
            return Ok(Err((failure.clone(), false, Duration::ZERO)));
        }
        _ => {}
    }
    let secret = secret().await.map_err(NotProbed::Secret)?;
    let started = Instant::now();
    let answer = prober
        .request_token(
            target.credential,
            &secret,
            target.integration.account_id.as_deref(),
            &target.integration.scopes,
        )
        .await;
    drop(secret);
    match answer {
        Ok(token) => {
            let token = Arc::new(token);
            *guard = Slot::Granted(token.clone());
            Ok(Ok((token, true)))
        }
        Err(failure) => {
            *guard = Slot::Refused {
                failure: failure.clone(),
                at: Instant::now(),
            };
            Ok(Err((failure, true, started.elapsed())))
        }
    }
}
