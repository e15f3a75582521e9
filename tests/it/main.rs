//! The one integration-test binary: one module per area (see README, Development).

mod agent;
mod agent_process;
mod agent_tls;
mod cli_check;
mod common;
mod config;
mod console_bare_pty;
mod engine;
mod engine_logs;
mod ingest;
mod notify;
mod probe;
mod real_tools;
mod report;
mod rotation;
mod rotation_console;
mod rotation_fsm;
mod rotation_safety;
mod rotation_wizard;
mod scan;
mod sim;
mod store;
mod third_party;
mod tui_e2e;
mod tui_render;
mod vault;
