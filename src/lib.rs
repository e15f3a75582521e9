//! authwatch: watches the authentication health of Salesforce Marketing Cloud API integrations.
//!
//! The map, top to bottom: a module imports only modules listed below it. `.ci/import_cycles.py` checks that
//! order and that no two modules import each other, directly or around a circle.

// Entry point: parsing and dispatch.
pub mod cli; // clap definitions, dispatch, exit codes, output formats, config/database path resolution
// Front ends over the engine: they read its snapshots and send it commands.
pub mod agent; // headless mode: HTTP API, SSE, auth, TLS, the --connect client
pub mod check; // `authwatch check`: one sweep, exit code by the worst status
pub mod demo; // the demo: simulator + generated config in a temporary directory
pub mod metrics; // Prometheus exposition of the engine's snapshot
pub mod notify; // notifications: what to send when (plan) and sending it
pub mod report; // the JSON/text report of one snapshot (check, agent API)
pub mod rotation;
pub mod tui; // the console: app state, keymap, views (incl. the rotation wizard), terminal guard // guided secret rotation: pure FSM, its driver and session, sinks
// The engine: the one owner of state and I/O.
pub mod engine; // run loop, state, restore, publish snapshots, log evidence, history writer
// What the engine is made of.
pub mod health; // pure health rules: evidence + now -> status and reasons
pub mod history_report; // uptime, incidents, 401/403 counts from the database (`report`, engine summaries)
pub mod ingest;
pub mod probe; // the SFMC probe client: token, REST/SOAP checks, outcome classification
pub mod store; // SQLite: history, acks, log offsets, rotation journal and audit, notifications
pub mod uptime; // pure availability figures: uptime %, incidents, MTTR // log ingestion: parsers, matcher, scan, follower
// Foundations.
pub mod config; // the TOML configuration: discovery, loading with positions, diagnostics
pub mod model;
pub mod secrets; // secret references, the encrypted vault, the atomic 0600 file writer // vocabulary: Status, Outcome, Health, Ack, Incident, ProbeResult, AuthEvent
// Beside the stack: the SFMC simulator the demo and the tests talk to.
pub mod sim; // a real HTTP server: token, REST, SOAP, admin endpoints
// Leaves.
pub mod duration; // human durations ("30s", "7d") and their formatting
pub mod logging; // the log file
