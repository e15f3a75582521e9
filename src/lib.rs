//! authwatch: watches the authentication health of Salesforce Marketing Cloud API integrations.
//!
//! The map, top to bottom: a module imports only modules listed below it. `.ci/import_cycles.py` checks that
//! order and that no two modules import each other, directly or around a circle. (One module per paragraph:
//! rustfmt would sort consecutive `mod` lines alphabetically.)

// ── Entry point ──

// clap definitions, dispatch, exit codes, output formats, config/database path resolution
pub mod cli;

// ── Front ends over the engine: they read its snapshots and send it commands ──

// headless mode: HTTP API, SSE, auth, TLS, readiness, the --connect client
pub mod agent;

// the console: app state, keymap, views (incl. the rotation wizard), terminal guard
pub mod tui;

// `authwatch check`: one sweep, exit code by the worst status
pub mod check;

// the demo: simulator + generated config in a temporary directory
pub mod demo;

// the JSON/text report of one snapshot (check, agent API)
pub mod report;

// `check --format nagios`: plugin output and perfdata
pub mod nagios;

// notifications: what to send when (plan) and sending it
pub mod notify;

// Prometheus exposition of the engine's snapshot
pub mod metrics;

// ── The engine: the one owner of state and I/O ──

// run loop, state, restore, publish snapshots, log evidence, history writer
pub mod engine;

// ── What the engine is made of ──

// guided secret rotation: pure FSM, the Rotator, the one driver the engine runs it on, sinks
pub mod rotation;

// the SFMC probe client: token, REST/SOAP checks, outcome classification
pub mod probe;

// uptime, incidents, 401/403 counts from the database (`authwatch report`, the engine's summaries)
pub mod history_report;

// pure rules, `now` passed in: health, failure tracking (pauses, holds, confirmations), schedule, uptime
pub mod rules;

// SQLite: history, acks, log offsets, rotation journal and audit, notifications
pub mod store;

// log ingestion: parsers, matcher, scan, follower
pub mod ingest;

// ── Foundations ──

// the TOML configuration: discovery, loading with positions, diagnostics, log sources
pub mod config;

// secret references, the encrypted vault, the atomic 0600 file writer
pub mod secrets;

// vocabulary: Status, Outcome, Health, Ack, Incident, ProbeResult, AuthEvent
pub mod model;

// ── Beside the stack: the SFMC simulator the demo and the tests talk to ──

// a real HTTP server: token, REST, SOAP, admin endpoints
pub mod sim;

// ── Leaves ──

// TLS serving (rustls): the agent's https and the simulator's --tls
pub mod tls;

// human durations ("30s", "7d") and their formatting
pub mod duration;

// the log file
pub mod logging;

// start-up work over thousands of items split across two threads
pub mod halves;

// "did you mean": the one nearest-name rule
pub mod suggest;

// the machine we run on: the OS user, whether a URL is loopback
pub mod host;

// outside text made safe where it enters the model: control/bidi escapes, secret redaction, Slack escaping
pub mod sanitize;
