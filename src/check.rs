//! `authwatch check`: one sweep with fresh tokens, auth failures confirmed by immediate retries: the engine's
//! one-shot mode (`engine::run_once`), so the counting is the live engine's.

use crate::config::Config;
use crate::engine::{self, Snapshot};
use crate::probe::ProbeSetupError;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("unknown integration `{name}`{hint}")]
    UnknownIntegration { name: String, hint: String },
    #[error(transparent)]
    Setup(#[from] ProbeSetupError),
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
    Ok(engine::run_once(config.clone(), &selected).await?)
}
