//! Log ingestion: what an integration's own logs say about 401/403s.
//!
//! - [`source`]: which `[[log_source]]` a file belongs to, format guessing.
//! - [`parse`]: line parsers for JSON lines and combined access logs ([`LineParser`], [`Line`], [`RawEvent`]).
//! - [`matcher`]: mapping a parsed event to an integration of the config ([`Matcher`]).
//! - [`scan`]: the one-shot `authwatch scan` ([`scan_files`], [`ScanReport`]).
//! - [`follow`]: tailing files across rotation with resumable offsets ([`Follower`]).

pub mod follow;
pub mod matcher;
pub mod parse;
pub mod scan;
pub mod source;

pub use follow::{
    Batch, FileIdentity, FollowOptions, FollowUpdate, Follower, FollowerHandle, Offsets,
    SourceStatus, StartAt,
};
pub use matcher::Matcher;
pub use parse::{Line, LineParser, MatchKeys, RawEvent};
pub use scan::{IntegrationCounts, ScanReport, StatusCounts, scan_bytes, scan_files, scan_reader};
pub use source::{guess_format, source_for_file};

use crate::model::AuthEvent;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
}

impl IngestError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        IngestError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Longest error text kept in an [`AuthEvent`] (characters).
pub const MAX_ERROR_CHARS: usize = 200;

/// The [`AuthEvent`] for a parsed line: the line's time (else `now`), the matched integration (None: unmatched),
/// the error text cut to [`MAX_ERROR_CHARS`] characters.
pub fn auth_event(
    ev: &RawEvent<'_>,
    matcher: &Matcher,
    source: &str,
    now: DateTime<Utc>,
) -> AuthEvent {
    let error = ev
        .error
        .as_deref()
        .map(|e| e.chars().take(MAX_ERROR_CHARS).collect())
        .unwrap_or_default();
    AuthEvent {
        at: ev.at.unwrap_or(now),
        integration: matcher.match_name(&ev.keys).map(str::to_owned),
        http_status: ev.status,
        error,
        source: source.to_owned(),
        origin: crate::model::EventOrigin {
            location: None,
            client_id: ev.keys.client_id.as_deref().map(crate::sanitize::clean),
            mid: ev.keys.account_id.as_deref().map(crate::sanitize::clean),
            url_host: ev.keys.host.as_deref().map(crate::sanitize::clean),
        },
    }
}
