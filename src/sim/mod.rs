//! The SFMC simulator: a real HTTP server on loopback that behaves like SFMC per shared/sfmc-auth.md.
//!
//! A [`Scenario`] (TOML, see `assets/scenarios/demo.toml` and [`scenario`] for the format) describes installed
//! packages (`[[client]]`), the consumers authwatch should watch (`[[integration]]`, only used by
//! [`SimServer::write_config`]) and a `[[timeline]]` of changes relative to server start (applied lazily: each
//! request first applies every event whose time has come, so tests are deterministic).
//!
//! Endpoints (all bodies are the exact SFMC ones where the docs give them):
//! - `POST /v2/token` (JSON, SFMC) and `POST /oauth2/token` (RFC 6749 form, Basic or body client auth)
//! - `GET /platform/v1/tokenContext`, `GET /platform/v1/endpoints` (any valid token)
//! - `GET /data/v1/customobjectdata/key/{key}/rowset` (scope `data_extensions_read`)
//! - `POST /hub/v1/dataevents/key:{key}/rowset` (scope `data_extensions_write`)
//! - `GET /asset/v1/content/assets` (scope `documents_and_images_read`)
//! - admin, mirroring Setup > Installed Packages: `POST /admin/clients/{id}/secrets/generate`,
//!   `POST /admin/clients/{id}/secrets/activate`, `GET /admin/requests` (admin calls are not recorded).
//!
//! Secrets in the simulator are test fixtures, but they are still never logged nor shown by `Debug`.

mod bodies;
mod config_out;
pub mod scenario;
mod server;
mod soap;
mod state;
mod tls;

pub use scenario::{
    Action, AuthwatchSettings, ClientSpec, Fault, IntegrationSpec, RestFault, Scenario,
    TimelineEvent, UnknownMid,
};
pub use server::{PublicUrls, SimAdmin, SimOptions, SimServer, serve_forever, start, start_with};
pub use state::RecordedRequest;

use std::path::PathBuf;

/// Everything that can go wrong in the simulator. Scenario errors read `file:line:col: message`.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{origin}:{line}:{col}: {message}")]
    Scenario {
        origin: String,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no client {0:?} in the scenario")]
    UnknownClient(String),
    /// A Setup rule refused the action (e.g. a second generation within the staging window).
    #[error("{0}")]
    Conflict(String),
    #[error("simulator I/O error: {0}")]
    Io(#[from] std::io::Error),
}
