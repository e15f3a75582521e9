//! `authwatch config check`: the configuration summary plus one resolution attempt per secret reference.

use super::{Config, Provider};
use std::fmt::Write as _;

/// The text `authwatch config check` prints, and whether every check passed. Secret values are never shown:
/// each reference is resolved (with `settings.secret_command_timeout`) and reported `ok` or `FAILED: reason`.
pub async fn check_report(config: &Config) -> (String, bool) {
    let mut out = String::new();
    let file = config
        .path
        .as_ref()
        .map_or_else(|| "(built in)".to_string(), |p| p.display().to_string());
    let _ = writeln!(out, "config: {file} ({})", config.name);
    let _ = writeln!(
        out,
        "{} credential{}, {} integration{}",
        config.credentials.len(),
        if config.credentials.len() == 1 {
            ""
        } else {
            "s"
        },
        config.integrations.len(),
        if config.integrations.len() == 1 {
            ""
        } else {
            "s"
        },
    );
    if !config.warnings.is_empty() {
        let _ = writeln!(out, "warnings:");
        for w in &config.warnings {
            let _ = writeln!(out, "  - {w}");
        }
    }

    let mut all_ok = true;
    if let Some(ca) = &config.settings.ca_file {
        match std::fs::metadata(ca) {
            Ok(m) if m.is_file() => {
                let _ = writeln!(out, "ca_file {}: ok", ca.display());
            }
            Ok(_) => {
                all_ok = false;
                let _ = writeln!(out, "ca_file {}: FAILED: not a file", ca.display());
            }
            Err(e) => {
                all_ok = false;
                let _ = writeln!(
                    out,
                    "ca_file {}: FAILED: {}",
                    ca.display(),
                    super::diag::io_kind_text(e.kind())
                );
            }
        }
    }

    let timeout = config.settings.secret_command_timeout;
    let results = futures::future::join_all(
        config
            .credentials
            .iter()
            .map(|c| async move { (c, c.client_secret.resolve(timeout).await) }),
    )
    .await;
    if !results.is_empty() {
        let _ = writeln!(out, "credentials:");
    }
    let id_width =
        crate::sanitize::column_width(config.credentials.iter().map(|c| c.id.as_str()), 0, 40);
    let mut failed = 0;
    for (c, result) in &results {
        let provider = match c.provider {
            Provider::Sfmc => "sfmc",
            Provider::Oauth2 => "oauth2",
        };
        let status = match result {
            Ok(_) => "ok".to_string(),
            Err(e) => {
                failed += 1;
                format!("FAILED: {e}")
            }
        };
        let _ = writeln!(
            out,
            "  {}  {provider:<6}  client_secret {}: {status}",
            crate::sanitize::fit(&c.id, id_width),
            c.client_secret
        );
    }
    all_ok &= failed == 0;
    if failed == 0 {
        let _ = writeln!(out, "all {} secret references resolved", results.len());
    } else {
        let _ = writeln!(
            out,
            "{failed} of {} secret references FAILED",
            results.len()
        );
    }
    (out, all_ok)
}
