//! authwatch: watches the authentication health of Salesforce Marketing Cloud API integrations.

pub mod agent;
pub mod check;
pub mod cli;
pub mod config;
pub mod demo;
pub mod duration;
pub mod engine;
pub mod health;
pub mod history_report;
pub mod ingest;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod nagios;
pub mod notify;
pub mod probe;
pub mod report;
pub mod rotation;
pub mod secrets;
pub mod sim;
pub mod store;
pub mod tui;
pub mod uptime;
pub mod vault;
