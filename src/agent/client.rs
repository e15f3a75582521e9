//! The console as a client of an agent (`authwatch --connect URL`): an [`EngineHandle`] fed by the agent's
//! event stream instead of a local engine. Actions (probe, ack) become API calls. A lost connection keeps the
//! last state on screen, marked stale with the time of the last update, and reconnects by itself.

use super::api::WhoAmI;
use super::stream::Delta;
use crate::config::Role;
use crate::engine::{Command, EngineHandle, Snapshot};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use url::Url;

/// No bytes (not even a keep-alive) for this long: the connection is considered lost.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(45);
/// The largest single event the console accepts from an agent (a snapshot of thousands of integrations is a few
/// MiB). A longer one ends the connection, which is then made again: memory stays bounded whatever the other end
/// sends.
pub const MAX_EVENT: usize = 8 * 1024 * 1024;
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(10);

pub struct Connection {
    pub handle: EngineHandle,
    /// Who the agent says we are.
    pub name: String,
    pub role: Role,
    pub task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot reach the agent at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the agent at {url} refused the token (401): pass --token-file with a valid token")]
    Unauthorized { url: String },
    #[error("the agent at {url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("{0}")]
    Other(String),
}

/// Read a token file: the first line, trimmed. Errors name the file, never its content.
pub fn read_token_file(path: &std::path::Path) -> Result<SecretString, String> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?,
    );
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(format!("token file {} is empty", path.display()));
    }
    Ok(SecretString::from(token.to_string()))
}

#[derive(Clone)]
struct Api {
    base: Url,
    client: reqwest::Client,
    auth: Option<HeaderValue>,
}

impl Api {
    fn url(&self, path: &str) -> Url {
        let mut u = self.base.clone();
        let joined = format!("{}{}", self.base.path().trim_end_matches('/'), path);
        u.set_path(&joined);
        u
    }
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, path)
    }
    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, path)
    }
    fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::DELETE, path)
    }
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let rb = self.client.request(method, self.url(path));
        match &self.auth {
            Some(h) => rb.header(AUTHORIZATION, h.clone()),
            None => rb,
        }
    }
}

fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// An error and its causes on one line ("error sending request: ...: invalid peer certificate: UnknownIssuer"),
/// without the URL: the cause is what tells a wrong CA from a wrong port.
fn reason(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// Trust the agent's certificate from this PEM file (a private CA or a self-signed certificate).
async fn add_ca_file(
    mut builder: reqwest::ClientBuilder,
    path: &std::path::Path,
) -> Result<reqwest::ClientBuilder, ConnectError> {
    // tokio::fs: the read runs on the blocking pool, not on an async worker.
    let pem = tokio::fs::read(path).await.map_err(|e| {
        ConnectError::Other(format!("cannot read --ca-file {}: {e}", path.display()))
    })?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .ok()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            ConnectError::Other(format!(
                "--ca-file {} holds no PEM certificate",
                path.display()
            ))
        })?;
    for cert in certs {
        builder = builder.add_root_certificate(cert);
    }
    Ok(builder)
}

/// Connect: ask who we are (fails fast on a wrong URL or token), then follow the agent's events.
pub async fn connect(base: Url, token: Option<SecretString>) -> Result<Connection, ConnectError> {
    connect_with(base, token, None).await
}

/// [`connect`], also trusting the certificates in `ca_file` (an agent with a private certificate).
pub async fn connect_with(
    base: Url,
    token: Option<SecretString>,
    ca_file: Option<&std::path::Path>,
) -> Result<Connection, ConnectError> {
    let auth = match &token {
        Some(t) => {
            let mut h =
                HeaderValue::from_str(&format!("Bearer {}", t.expose_secret())).map_err(|_| {
                    ConnectError::Other(
                        "the token contains characters not allowed in an HTTP header".into(),
                    )
                })?;
            h.set_sensitive(true);
            Some(h)
        }
        None => None,
    };
    let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(5));
    if let Some(path) = ca_file {
        builder = add_ca_file(builder, path).await?;
    }
    let client = builder
        .build()
        .map_err(|e| ConnectError::Other(e.to_string()))?;
    let api = Api { base, client, auth };
    let shown = api.base.as_str().trim_end_matches('/').to_string();
    let resp = api
        .get("/api/v1/whoami")
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| ConnectError::Unreachable {
            url: shown.clone(),
            reason: reason(e),
        })?;
    match resp.status().as_u16() {
        200 => {}
        401 => return Err(ConnectError::Unauthorized { url: shown }),
        s => {
            return Err(ConnectError::Status {
                url: shown,
                status: s,
            });
        }
    }
    let me: WhoAmI = resp
        .json()
        .await
        .map_err(|e| ConnectError::Other(format!("unexpected answer from the agent: {e}")))?;

    let (snap_tx, snap_rx) = watch::channel(Arc::new(Snapshot::empty("connecting...")));
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let handle = EngineHandle::from_channels(snap_rx, cmd_tx);
    let follower = tokio::spawn(follow(api.clone(), snap_tx));
    let forwarder = tokio::spawn(forward(api, cmd_rx));
    let task = tokio::spawn(async move {
        // The console sends Shutdown (or drops its handle) when it quits.
        let _ = forwarder.await;
        follower.abort();
    });
    Ok(Connection {
        handle,
        name: me.name,
        role: me.role,
        task,
    })
}

/// Actions from the console become API calls; failures are logged (the console shows the next state).
async fn forward(api: Api, mut rx: mpsc::Receiver<Command>) {
    while let Some(cmd) = rx.recv().await {
        let mut delete = false;
        let path = match &cmd {
            Command::ProbeNow { integration } => format!("/api/v1/probe/{}", seg(integration)),
            Command::Unack { integration, .. } => {
                delete = true;
                format!("/api/v1/ack/{}", seg(integration))
            }
            Command::ProbeAll => "/api/v1/probe".to_string(),
            Command::Ack { integration, .. } => format!("/api/v1/ack/{}", seg(integration)),
            Command::Rotate(_) => {
                let Command::Rotate(r) = cmd else {
                    unreachable!()
                };
                tokio::spawn(rotate(api.clone(), *r));
                continue;
            }
            Command::Shutdown => break,
            _ => continue,
        };
        let api = api.clone();
        tokio::spawn(async move {
            let request = if delete {
                api.delete(&path)
            } else {
                api.post(&path)
            };
            match request.timeout(Duration::from_secs(10)).send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::warn!("agent refused {path}: {}", r.status()),
                Err(e) => tracing::warn!("cannot send {path} to the agent: {}", e.without_url()),
            }
        });
    }
}

/// How long a rotation step may take on the agent (it checks every consumer) before the console gives up
/// waiting; the step itself finishes on the agent all the same.
const ROTATION_STEP_TIMEOUT: Duration = Duration::from_secs(90);

/// A wizard's step on a `--connect` console: `POST /api/v1/rotations/{credential}`; the answer is the agent's
/// (or why there is none).
async fn rotate(api: Api, r: crate::engine::RotateCommand) {
    use crate::rotation::session::{Update, WizardCmd};
    let cred = r.credential.clone();
    let mut body = serde_json::json!({
        "step": r.cmd.name(),
        "session": r.session,
        "origin": r.actor.origin,
    });
    match &r.cmd {
        WizardCmd::Stage(secret) => {
            body["secret"] = serde_json::Value::String(secret.expose_secret().to_string());
        }
        WizardCmd::Promote { manual_confirmed } => {
            body["confirm_manual"] = (*manual_confirmed).into()
        }
        WizardCmd::Activate => body["confirm"] = cred.clone().into(),
        WizardCmd::SimGenerate | WizardCmd::SimActivate => {
            if let Some(to) = r.reply {
                let _ = to.send(Update::failed(
                    &cred,
                    "no simulator behind this agent: generate and activate the secret in Setup"
                        .into(),
                ));
            }
            return;
        }
        _ => {}
    }
    let path = format!("/api/v1/rotations/{}", seg(&cred));
    let answer = api
        .post(&path)
        .json(&body)
        .timeout(ROTATION_STEP_TIMEOUT)
        .send()
        .await;
    drop(body);
    let update = match answer {
        Err(e) => Update::failed(
            &cred,
            format!("cannot reach the agent: {}", e.without_url()),
        ),
        Ok(resp) => {
            let status = resp.status();
            match resp.json::<serde_json::Value>().await {
                Ok(mut v) => match serde_json::from_value::<Update>(v["update"].take()) {
                    Ok(u) => u,
                    Err(_) => Update::failed(
                        &cred,
                        format!(
                            "the agent refused ({status}): {}",
                            crate::sanitize::text(v["error"].as_str().unwrap_or("no reason given"))
                        ),
                    ),
                },
                Err(_) => Update::failed(&cred, format!("the agent answered {status}")),
            }
        }
    };
    if let Some(to) = r.reply {
        let _ = to.send(update);
    }
}

/// Follow `/api/v1/events` forever, reconnecting with backoff; publish every state into `tx`.
async fn follow(api: Api, tx: watch::Sender<Arc<Snapshot>>) {
    let mut delay = Duration::from_millis(500);
    let mut last_update: Option<DateTime<Utc>> = None;
    loop {
        let result = stream_once(&api, &tx, &mut last_update).await;
        let reason = match result {
            Ok(()) => "the agent closed the stream".to_string(),
            Err(e) => e,
        };
        tracing::warn!("lost the agent's event stream: {reason}");
        let since = last_update.unwrap_or_else(Utc::now);
        tx.send_modify(|s| {
            let mut stale = (**s).clone();
            stale.connection = Some(format!("NO AGENT since {}Z", since.format("%H:%M:%S")));
            *s = Arc::new(stale);
        });
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RECONNECT_DELAY);
        if tx.is_closed() {
            break;
        }
    }
}

/// One connection: returns when it ends. Resets nothing on failure: the caller marks the data stale.
async fn stream_once(
    api: &Api,
    tx: &watch::Sender<Arc<Snapshot>>,
    last_update: &mut Option<DateTime<Utc>>,
) -> Result<(), String> {
    let resp = api
        .get("/api/v1/events")
        .header("accept", "text/event-stream")
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if !resp.status().is_success() {
        return Err(format!("the agent answered {}", resp.status()));
    }
    let mut body = resp.bytes_stream();
    let mut parser = SseParser::default();
    let mut events = Vec::new();
    let mut current: Option<Arc<Snapshot>> = None;
    loop {
        let chunk = match tokio::time::timeout(IDLE_TIMEOUT, body.next()).await {
            Err(_) => return Err("no data from the agent for 45s".into()),
            Ok(None) => return Ok(()),
            Ok(Some(Err(e))) => return Err(e.without_url().to_string()),
            Ok(Some(Ok(chunk))) => chunk,
        };
        parser.feed(&chunk, &mut events)?;
        for event in events.drain(..) {
            apply_event(event, tx, &mut current, last_update)?;
        }
    }
}

/// One parsed event into the console's state.
fn apply_event(
    event: SseEvent,
    tx: &watch::Sender<Arc<Snapshot>>,
    current: &mut Option<Arc<Snapshot>>,
    last_update: &mut Option<DateTime<Utc>>,
) -> Result<(), String> {
    match event.event.as_str() {
        "snapshot" => {
            let snap: Snapshot =
                serde_json::from_str(&event.data).map_err(|e| format!("bad snapshot: {e}"))?;
            let snap = Arc::new(snap);
            *current = Some(snap.clone());
            *last_update = Some(Utc::now());
            tx.send_replace(snap);
        }
        "delta" => {
            let delta: Delta =
                serde_json::from_str(&event.data).map_err(|e| format!("bad delta: {e}"))?;
            let Some(base) = current.as_ref().filter(|c| c.version == delta.base) else {
                return Err("out of step with the agent; resynchronising".into());
            };
            let next = Arc::new(delta.apply(base));
            *current = Some(next.clone());
            *last_update = Some(Utc::now());
            tx.send_replace(next);
        }
        _ => {}
    }
    Ok(())
}

/// One server-sent event: its type (`message` when none was named) and its data lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// A `text/event-stream` parser that works in one pass over the bytes (no rescanning of a growing line) and
/// refuses an event longer than [`MAX_EVENT`] bytes, counted as they arrive, before it is complete.
#[derive(Debug, Default)]
pub struct SseParser {
    /// The line being read (bytes since the last line end).
    line: Vec<u8>,
    event: String,
    data: String,
    /// Bytes of the event being read, line ends included.
    size: usize,
    /// The previous chunk ended in `\r`: a `\n` first in this one belongs to that line end.
    skip_lf: bool,
}

impl SseParser {
    /// Feed the next bytes; complete events are pushed to `out`. An error ends the stream (reconnect).
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), String> {
        if self.skip_lf && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
            self.size = self.size.saturating_add(1);
        }
        self.skip_lf = false;
        while !bytes.is_empty() {
            let (part, end) = match memchr::memchr2(b'\n', b'\r', bytes) {
                Some(i) => (&bytes[..i], Some(i)),
                None => (bytes, None),
            };
            self.size = self.size.saturating_add(part.len());
            if self.size > MAX_EVENT {
                return Err(format!(
                    "an event from the agent is larger than {} MiB; reconnecting",
                    MAX_EVENT / (1024 * 1024)
                ));
            }
            self.line.extend_from_slice(part);
            let Some(i) = end else { break };
            let mut next = i + 1;
            self.size = self.size.saturating_add(1);
            if bytes[i] == b'\r' {
                match bytes.get(next) {
                    Some(b'\n') => {
                        next += 1;
                        self.size = self.size.saturating_add(1);
                    }
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            self.end_line(out);
            bytes = &bytes[next..];
        }
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            // A blank line dispatches the event (none when it carried no data).
            let event = std::mem::take(&mut self.event);
            let data = std::mem::take(&mut self.data);
            self.size = 0;
            if !data.is_empty() {
                let data = data.strip_suffix('\n').unwrap_or(&data).to_string();
                let event = if event.is_empty() {
                    "message".to_string()
                } else {
                    event
                };
                out.push(SseEvent { event, data });
            }
            return;
        }
        if line[0] == b':' {
            return; // a comment (keep-alive)
        }
        let text = String::from_utf8_lossy(&line);
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (text.as_ref(), ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&[u8]]) -> Result<Vec<SseEvent>, String> {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out)?;
        }
        Ok(out)
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_across_chunks_and_line_ends() {
        let want = vec![ev("snapshot", "{\"a\":1}"), ev("delta", "x\ny")];
        let text =
            b"event: snapshot\ndata: {\"a\":1}\n\n: keep-alive\n\nevent:delta\ndata: x\ndata:y\n\n";
        assert_eq!(parse(&[text]).unwrap(), want);
        // Byte by byte, and with CRLF / CR line ends split between chunks.
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(parse(&bytes).unwrap(), want);
        let crlf = String::from_utf8_lossy(text).replace('\n', "\r\n");
        let bytes: Vec<&[u8]> = crlf.as_bytes().chunks(1).collect();
        assert_eq!(parse(&bytes).unwrap(), want);
        let cr = String::from_utf8_lossy(text).replace('\n', "\r");
        assert_eq!(parse(&[cr.as_bytes()]).unwrap(), want);
        assert_eq!(parse(&[b"data: m\n\n"]).unwrap(), vec![ev("message", "m")]);
    }

    #[test]
    fn an_endless_event_is_refused_at_the_limit() {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        p.feed(b"event: snapshot\ndata: ", &mut out).unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        let mut fed = 0usize;
        let err = loop {
            match p.feed(&chunk, &mut out) {
                Ok(()) => fed += chunk.len(),
                Err(e) => break e,
            }
            assert!(fed <= MAX_EVENT, "accepted {fed} bytes of one event");
        };
        assert!(err.contains("larger than 8 MiB"), "{err}");
        assert!(out.is_empty());
        // Many events of which none is too long are fine.
        let mut p = SseParser::default();
        let event = format!("data: {}\n\n", "y".repeat(1024 * 1024));
        for _ in 0..20 {
            p.feed(event.as_bytes(), &mut out).unwrap();
        }
        assert_eq!(out.len(), 20);
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(seg("crm sync/x"), "crm%20sync%2Fx");
    }
}
