//! One console over several agents (`--connect A --connect B`): their snapshots merged into one, with each
//! integration and credential named `agent/name` (the agent shown where agents differ), the header naming the
//! agents that cannot be reached (each agent's own staleness), and actions routed to the agent that owns the
//! integration.

use super::client::Connection;
use crate::config::Role;
use crate::engine::{Command, EngineHandle, Snapshot};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// Short, distinct labels for the agents: the host, or host:port where hosts repeat.
pub fn labels(urls: &[url::Url]) -> Vec<String> {
    let host = |u: &url::Url| u.host_str().unwrap_or("agent").to_string();
    urls.iter()
        .map(|u| {
            let h = host(u);
            if urls.iter().filter(|o| host(o) == h).count() > 1 {
                format!("{h}:{}", u.port_or_known_default().unwrap_or(0))
            } else {
                h
            }
        })
        .collect()
}

/// Merge the agents' snapshots (pure). `version` grows whenever any part's does.
pub fn merge(parts: &[(String, Arc<Snapshot>)]) -> Snapshot {
    let mut out = Snapshot::empty(
        parts
            .iter()
            .map(|(l, _)| l.as_str())
            .collect::<Vec<_>>()
            .join(" + "),
    );
    let mut unreachable = Vec::new();
    let mut auth_log = Vec::new();
    for (label, s) in parts {
        out.version = out.version.saturating_add(s.version);
        out.generated_at = out.generated_at.max(s.generated_at);
        out.newest_data_at = out.newest_data_at.max(s.newest_data_at);
        for e in &s.environments {
            if !out.environments.contains(e) {
                out.environments.push(e.clone());
            }
        }
        for i in &s.integrations {
            let mut v = (**i).clone();
            v.name = format!("{label}/{}", v.name);
            v.credential = format!("{label}/{}", v.credential);
            out.integrations.push(Arc::new(v));
        }
        for c in &s.credentials {
            let mut c = (**c).clone();
            c.id = format!("{label}/{}", c.id);
            c.integrations = c
                .integrations
                .iter()
                .map(|n| format!("{label}/{n}"))
                .collect();
            out.credentials.push(Arc::new(c));
        }
        for e in s.auth_log.iter() {
            let mut e = e.clone();
            e.integration = e.integration.map(|n| format!("{label}/{n}"));
            auth_log.push(e);
        }
        for l in &s.log_sources {
            let mut l = l.clone();
            l.name = format!("{label}/{}", l.name);
            out.log_sources.push(l);
        }
        let m = &s.summary;
        out.summary.ok += m.ok;
        out.summary.warn += m.warn;
        out.summary.fail += m.fail;
        out.summary.unknown += m.unknown;
        if out.history_error.is_none() {
            out.history_error = s.history_error.as_ref().map(|e| format!("{label}: {e}"));
        }
        if let Some(c) = &s.connection {
            unreachable.push(format!("{label}: {c}"));
        }
    }
    auth_log.sort_by_key(|e| std::cmp::Reverse(e.at));
    out.auth_log = Arc::new(auth_log);
    out.connection = (!unreachable.is_empty()).then(|| unreachable.join("; "));
    out
}

/// The owning agent and the agent's own name for `agent/name`.
fn route<'a>(labels: &[String], name: &'a str) -> Option<(usize, &'a str)> {
    let (label, rest) = name.split_once('/')?;
    labels.iter().position(|l| l == label).map(|i| (i, rest))
}

/// Follow every connection and publish the merged state; forward actions to their agents. The returned
/// connection's role is the weakest of the agents' (a viewer anywhere makes the console read-only).
pub fn combine(labels: Vec<String>, conns: Vec<Connection>) -> Connection {
    let handles: Vec<EngineHandle> = conns.iter().map(|c| c.handle.clone()).collect();
    let role = conns.iter().map(|c| c.role).min().unwrap_or(Role::Viewer);
    let name = conns
        .iter()
        .map(|c| c.name.clone())
        .collect::<Vec<_>>()
        .join(", ");
    fn parts(labels: &[String], handles: &[EngineHandle]) -> Vec<(String, Arc<Snapshot>)> {
        labels
            .iter()
            .cloned()
            .zip(handles.iter().map(EngineHandle::snapshot))
            .collect()
    }
    let (snap_tx, snap_rx) = watch::channel(Arc::new(merge(&parts(&labels, &handles))));
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(64);
    let follow_handles = handles.clone();
    let follow_labels = labels.clone();
    let follower = tokio::spawn(async move {
        let mut watches: Vec<_> = follow_handles.iter().map(EngineHandle::watch).collect();
        loop {
            let changed =
                futures::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())))
                    .await;
            if changed.0.is_err() {
                break;
            }
            let _ = snap_tx.send(Arc::new(merge(&parts(&follow_labels, &follow_handles))));
        }
    });
    let route_labels = labels.clone();
    let tasks: Vec<_> = conns.into_iter().map(|c| c.task).collect();
    let task = tokio::spawn(async move {
        while let Some(cmd) = cmd_rx.recv().await {
            let forward = |i: usize, cmd: Command| {
                let h = handles[i].clone();
                async move {
                    let _ = h.send(cmd).await;
                }
            };
            match cmd {
                Command::ProbeNow { integration } => {
                    if let Some((i, own)) = route(&route_labels, &integration) {
                        forward(
                            i,
                            Command::ProbeNow {
                                integration: own.into(),
                            },
                        )
                        .await;
                    }
                }
                Command::Ack { integration, actor } => {
                    if let Some((i, own)) = route(&route_labels, &integration) {
                        forward(
                            i,
                            Command::Ack {
                                integration: own.into(),
                                actor,
                            },
                        )
                        .await;
                    }
                }
                Command::Unack { integration, actor } => {
                    if let Some((i, own)) = route(&route_labels, &integration) {
                        forward(
                            i,
                            Command::Unack {
                                integration: own.into(),
                                actor,
                            },
                        )
                        .await;
                    }
                }
                Command::ProbeAll => {
                    for i in 0..handles.len() {
                        forward(i, Command::ProbeAll).await;
                    }
                }
                Command::Shutdown => {
                    for i in 0..handles.len() {
                        forward(i, Command::Shutdown).await;
                    }
                    break;
                }
                _ => {}
            }
        }
        follower.abort();
        for t in tasks {
            t.abort();
        }
    });
    Connection {
        handle: EngineHandle::from_channels(snap_rx, cmd_tx),
        name,
        role,
        task,
    }
}
