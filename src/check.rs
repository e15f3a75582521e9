//! `authwatch check`: one sweep with fresh tokens, auth failures confirmed by immediate retries.

use crate::config::Config;
use crate::engine::{self, IntegrationView, Snapshot, Summary};
use crate::health::{self, Evidence, Thresholds};
use crate::model::Health;
use crate::model::ProbeResult;
use crate::probe::{self, NotProbed, ProbeSetupError, ProbeTarget, Prober, TokenCache};
use chrono::Utc;
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("unknown integration `{name}`{hint}")]
    UnknownIntegration { name: String, hint: String },
    #[error(transparent)]
    Setup(#[from] ProbeSetupError),
}

/// What one integration's attempts came to.
struct Attempts {
    results: Vec<ProbeResult>,
    secret_error: Option<String>,
}

/// Probe the selected integrations (all when `only` is empty) once, confirming auth failures with up to
/// `failure_threshold` attempts in total, and return the resulting state.
pub async fn sweep(config: &Config, only: &[String]) -> Result<Snapshot, CheckError> {
    for name in only {
        if config.integration(name).is_none() {
            let names = config.integrations.iter().map(|i| i.name.as_str());
            let nearest = crate::suggest::nearest(name, names)
                .map(|n| format!(": did you mean `{n}`?"))
                .unwrap_or_default();
            return Err(CheckError::UnknownIntegration {
                name: name.clone(),
                hint: nearest,
            });
        }
    }
    let selected: Vec<usize> = (0..config.integrations.len())
        .filter(|i| only.is_empty() || only.contains(&config.integrations[*i].name))
        .collect();
    let prober = Prober::new(&config.settings)?;
    let cache = TokenCache::new();
    let mut attempts: Vec<Attempts> = selected
        .iter()
        .map(|_| Attempts {
            results: Vec::new(),
            secret_error: None,
        })
        .collect();

    let mut pending: Vec<usize> = (0..selected.len()).collect();
    for _round in 0..config.settings.failure_threshold.max(1) {
        if pending.is_empty() {
            break;
        }
        // One horizon per round: integrations sharing a grant share one fresh token (or one refusal).
        let freshness = probe::Freshness::fresh_batch();
        let outcomes: Vec<(usize, Result<ProbeResult, NotProbed>)> =
            futures::stream::iter(pending.iter().copied())
                .map(|slot| {
                    let integration = &config.integrations[selected[slot]];
                    let prober = &prober;
                    let cache = &cache;
                    async move {
                        let credential = config
                            .credential(&integration.credential)
                            .expect("validated: integration names a credential");
                        let timeout = config.settings.secret_command_timeout;
                        let secret = probe::secret_source(&credential.client_secret, timeout);
                        let target = ProbeTarget {
                            integration,
                            credential,
                        };
                        (
                            slot,
                            probe::probe(prober, cache, target, &secret, freshness).await,
                        )
                    }
                })
                .buffer_unordered(config.settings.max_concurrent_probes.max(1))
                .collect()
                .await;
        pending.clear();
        for (slot, outcome) in outcomes {
            match outcome {
                Ok(r) => {
                    if r.outcome.is_auth_failure() {
                        pending.push(slot);
                    }
                    attempts[slot].results.push(r);
                }
                Err(NotProbed::Secret(msg)) => attempts[slot].secret_error = Some(msg),
            }
        }
        pending.sort_unstable();
    }

    let now = Utc::now();
    let thresholds = Thresholds::from(&config.settings);
    let mut summary = Summary::default();
    let integrations: Vec<Arc<IntegrationView>> = selected
        .iter()
        .zip(attempts)
        .map(|(&idx, a)| {
            let integration = &config.integrations[idx];
            let secret_expires = config
                .credential(&integration.credential)
                .and_then(|c| c.secret_expires);
            let trailing_auth = a
                .results
                .iter()
                .rev()
                .take_while(|r| r.outcome.is_auth_failure())
                .count();
            let failing_since =
                (trailing_auth > 0).then(|| a.results[a.results.len() - trailing_auth].at);
            let health: Health = health::evaluate(
                &Evidence {
                    history: &a.results,
                    consecutive_auth_failures: trailing_auth as u32,
                    failing_since,
                    paused: false,
                    secret_expires,
                    secret_error: a.secret_error.as_deref(),
                    log_events: &[],
                },
                now,
                &thresholds,
            );
            summary.add(health.status);
            Arc::new(IntegrationView {
                health,
                consecutive_auth_failures: trailing_auth as u32,
                failing_since,
                last_success: a
                    .results
                    .iter()
                    .rev()
                    .find(|r| r.outcome.is_ok())
                    .map(|r| r.at),
                secret_expires,
                history: a.results.into(),
                ..engine::placeholder_view(integration)
            })
        })
        .collect();
    let credentials = engine::credential_views(config, now, &HashSet::new());
    Ok(Snapshot {
        version: 1,
        generated_at: now,
        config_name: config.name.clone(),
        environments: engine::environments(config),
        newest_data_at: integrations
            .iter()
            .filter_map(|i| i.last_probe().map(|p| p.at))
            .max(),
        integrations,
        credentials,
        auth_log: Arc::new(Vec::new()),
        summary,
        history_error: None,
        log_sources: Vec::new(),
        connection: None,
    })
}
