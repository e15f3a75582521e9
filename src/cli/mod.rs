//! Command-line interface: clap definitions, dispatch, exit codes and output formats. Every subcommand returns
//! its exit code; the configuration and database paths are resolved here, once, and handed down.

/// Standard output that a closed pipe (`check | true`, `report | head -c 800`) ends quietly: a failed write is
/// dropped instead of panicking (`println!` exits 101 on EPIPE), so the command keeps its own exit code (Nagios).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// [`out!`] with a newline.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod console;
mod rotate;

use crate::config::{self, Config};
use crate::demo::Demo;
use crate::duration::HumanDuration;
use crate::report::StateReport;
use crate::{check, sim, store};
use clap::{Args, Parser, Subcommand, ValueEnum};
use color_eyre::eyre::Result;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Exit code for usage and configuration errors (Nagios "unknown").
pub const EXIT_USAGE: i32 = 3;
/// Exit code of a refused rotation step or a failed check.
pub const EXIT_FAILED: i32 = 1;

#[derive(Debug, Parser)]
#[command(
    name = "authwatch",
    version,
    about = "Watches the authentication health of Salesforce Marketing Cloud API integrations",
    long_about = "Watches the authentication health of Salesforce Marketing Cloud API integrations.\n\n\
        Without a subcommand it opens the console on the configuration found via --config, $AUTHWATCH_CONFIG, \
        ./authwatch.toml or $XDG_CONFIG_HOME/authwatch/config.toml. Try `authwatch demo` first."
)]
pub struct Cli {
    /// Configuration file (default: $AUTHWATCH_CONFIG, ./authwatch.toml, $XDG_CONFIG_HOME/authwatch/config.toml)
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// History database (default: [settings] db, else $XDG_STATE_HOME/authwatch/authwatch.db)
    #[arg(long, global = true, value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// Open the console on a running agent (`authwatch agent`) instead of probing, e.g. http://agent:9477;
    /// repeat it for several agents (one console over their merged state)
    #[arg(long, value_name = "URL")]
    pub connect: Vec<url::Url>,

    /// Bearer token for --connect, read from this file (first line); a viewer token makes the console read-only
    #[arg(long, value_name = "PATH", requires = "connect")]
    pub token_file: Option<PathBuf>,

    /// PEM certificate(s) to trust for an https --connect URL (an agent with a private or self-signed certificate)
    #[arg(long, value_name = "PATH", requires = "connect")]
    pub ca_file: Option<PathBuf>,

    /// No colour at all, in the console and in error reports (NO_COLOR is honoured too); status stays readable
    /// as words and symbols
    #[arg(long, global = true)]
    pub no_color: bool,

    #[command(flatten)]
    pub console: ConsoleArgs,

    #[command(subcommand)]
    pub command: Option<Cmd>,
}

/// The console's own flags: on `authwatch` (and `--connect`) and `authwatch demo` only, not on the one-shot
/// subcommands, whose help they would only clutter.
#[derive(Debug, Clone, Default, Args)]
pub struct ConsoleArgs {
    /// Read-only: probe/rotate/ack actions disappear from keys, help and header (--wall implies it)
    #[arg(long)]
    pub read_only: bool,
    /// Wall screen for a room: big counts, what is not OK with team, owner and since, the next 30 days of
    /// secret expiries, each failing integration's detail in turn; read-only, q quits
    #[arg(long)]
    pub wall: bool,
    /// ASCII borders and symbols for terminals without Unicode
    #[arg(long)]
    pub ascii: bool,
    /// Clock tick of the console [default: 1s]
    #[arg(long, value_name = "DURATION")]
    pub tick: Option<HumanDuration>,
    /// Set from the global --no-color.
    #[arg(skip)]
    pub no_color: bool,
}

impl ConsoleArgs {
    /// Flags given before the subcommand (`authwatch --read-only demo`) and after it (`authwatch demo --ascii`).
    fn or(self, other: ConsoleArgs) -> ConsoleArgs {
        ConsoleArgs {
            read_only: self.read_only || other.read_only,
            wall: self.wall || other.wall,
            ascii: self.ascii || other.ascii,
            tick: other.tick.or(self.tick),
            no_color: self.no_color || other.no_color,
        }
    }

    /// The first console flag given, for refusing it where there is no console.
    fn any_given(&self) -> Option<&'static str> {
        [
            (self.read_only, "--read-only"),
            (self.wall, "--wall"),
            (self.ascii, "--ascii"),
            (self.tick.is_some(), "--tick"),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// `check` also speaks the Nagios/Icinga plugin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
    Nagios,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Open the console on the built-in simulator with the demo scenario (works from any directory)
    Demo {
        #[command(flatten)]
        console: ConsoleArgs,
    },
    /// Run headless for a team: probes, history, notifications, and an HTTP API for consoles and Prometheus
    Agent {
        /// Address to listen on (default: [agent] listen, else 127.0.0.1:9477); beyond loopback needs tokens
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Probe every integration once with fresh tokens; exit 0 ok, 1 warn, 2 fail, 3 unknown or error
    Check {
        /// Check the built-in demo scenario instead of a configuration
        #[arg(long)]
        demo: bool,
        /// Output: a table, JSON (the agent's /api/v1/state shape) or a Nagios/Icinga plugin line
        #[arg(long, value_enum, default_value = "text")]
        format: CheckFormat,
        /// Only these integrations (repeatable)
        #[arg(long = "integration", value_name = "NAME")]
        integrations: Vec<String>,
    },
    /// Configuration commands
    Config {
        #[command(subcommand)]
        command: ConfigCmd,
    },
    /// Count 401/403 lines per integration in log files (jsonl or combined access logs)
    Scan {
        /// Log files to read; the format comes from the matching [[log_source]], else from the first line
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Output: a table for people or JSON for scripts
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Uptime, incidents, MTTR and 401/403 counts per integration from the history database
    Report {
        /// How far back to look: any duration, e.g. 90m, 12h, 7d
        #[arg(long, value_name = "DURATION", default_value = "24h")]
        since: HumanDuration,
        /// Output: a table for people or JSON for scripts
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Run the SFMC simulator (a real HTTP server) until interrupted
    Simulate {
        /// Scenario file (default: the embedded demo scenario)
        #[arg(long, value_name = "PATH")]
        scenario: Option<PathBuf>,
        /// Address to listen on; port 0 picks a free port (the bound address is printed)
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Write a matching authwatch config (and 0600 secret files) into DIR
        #[arg(long, value_name = "DIR")]
        print_config: Option<PathBuf>,
        /// Serve https with a throwaway CA made at start (written as DIR/ca.pem with --print-config)
        #[arg(long)]
        tls: bool,
        /// URLs to hand out, e.g. 'https://mcXXXX.{kind}.marketingcloudapis.com:{port}/' ({kind} = auth|rest|soap)
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
    },
    /// Guided client-secret rotation: stage, verify, promote, activate (or abort); exit 1 when refused or failed
    Rotate {
        /// The [[credential]] id
        credential: String,
        /// The step to take
        #[arg(value_enum)]
        action: rotate::RotateAction,
        /// Output: a table for people or JSON for scripts
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// activate: the credential id, confirming the new secret was activated in Setup (point of no return)
        #[arg(long, value_name = "CREDENTIAL")]
        confirm: Option<String>,
        /// promote: env (or command without client_secret_update) references were updated by hand
        #[arg(long)]
        confirm_manual: bool,
        /// promote: go ahead although the previous secret cannot be kept (command/env sink without AUTHWATCH_MASTER_KEY)
        #[arg(long)]
        no_rollback: bool,
        /// stage: when Setup generated the new secret (UTC; default now): SFMC's 180 days count from then
        #[arg(long, value_name = "TIME", value_parser = rotate::parse_generated_at)]
        generated_at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// authwatch's encrypted secret store (client_secret = { store = "NAME" }, key in AUTHWATCH_MASTER_KEY)
    Secret {
        #[command(subcommand)]
        command: SecretCmd,
    },
    /// The rotation audit trail: who did which step when, and every check's result
    Audit {
        /// Only this credential
        #[arg(long, value_name = "ID")]
        credential: Option<String>,
        /// How far back to look: any duration, e.g. 12h, 30d
        #[arg(long, value_name = "DURATION", default_value = "30d")]
        since: HumanDuration,
        /// Output: a table for people or JSON for scripts
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

impl Cmd {
    /// The subcommand as typed.
    fn name(&self) -> &'static str {
        match self {
            Cmd::Demo { .. } => "demo",
            Cmd::Agent { .. } => "agent",
            Cmd::Check { .. } => "check",
            Cmd::Config { .. } => "config",
            Cmd::Scan { .. } => "scan",
            Cmd::Report { .. } => "report",
            Cmd::Simulate { .. } => "simulate",
            Cmd::Rotate { .. } => "rotate",
            Cmd::Secret { .. } => "secret",
            Cmd::Audit { .. } => "audit",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum SecretCmd {
    /// Store a secret read from stdin (a no-echo prompt on a terminal); nothing ever prints one
    Set {
        /// The name a configuration refers to with client_secret = { store = "NAME" }
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Validate the configuration and resolve every secret reference (reports only ok/failed)
    Check,
}

pub async fn run(cli: Cli, log_path: Option<PathBuf>) -> Result<i32> {
    let Cli {
        config: config_flag,
        db: db_flag,
        connect,
        token_file,
        ca_file,
        no_color,
        console: mut console_args,
        command,
    } = cli;
    console_args.no_color = no_color;
    // `authwatch --read-only check`: the flag would do nothing; say so instead of ignoring it.
    if let Some(cmd) = command.as_ref().filter(|c| !matches!(c, Cmd::Demo { .. }))
        && let Some(flag) = console_args.any_given()
    {
        eprintln!(
            "error: {flag} is a console option: it goes with `authwatch` or `authwatch demo`, not `authwatch {}`",
            cmd.name()
        );
        return Ok(EXIT_USAGE);
    }
    let config_flag = config_flag.as_deref();
    let db_flag = db_flag.as_deref();
    // Every subcommand below that reads the configuration does it through this one call.
    let load = || load_config(config_flag);
    match command {
        None if !connect.is_empty() => {
            console::remote(
                connect,
                token_file.as_deref(),
                ca_file.as_deref(),
                &console_args,
                log_path,
            )
            .await
        }
        Some(Cmd::Agent { listen }) => {
            let mut config = match load() {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let db = db_path(db_flag, &config);
            rotate::apply_stored_expiries(&mut config, db.as_deref());
            let path = config.path.clone();
            match crate::agent::run(
                path,
                config,
                crate::agent::AgentOptions {
                    listen,
                    db,
                    ..Default::default()
                },
            )
            .await
            {
                Ok(code) => Ok(code),
                Err(crate::agent::AgentError::Start(e)) => {
                    eprintln!("error: {e}");
                    Ok(EXIT_USAGE)
                }
                Err(e) => Err(e.into()),
            }
        }
        None => {
            let config = match load() {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let Some(db) = db_path(db_flag, &config) else {
                eprintln!(
                    "error: no place for the history database: set XDG_STATE_HOME or HOME, or pass --db PATH"
                );
                return Ok(EXIT_USAGE);
            };
            console::local(config, &console_args, Some(&db), log_path, None).await
        }
        Some(Cmd::Demo { console }) => {
            let console_args = console_args.or(console);
            let demo = Demo::start(true).await?;
            let logging = crate::logging::init_in(demo.dir.path());
            let log_path = logging.as_ref().map(|(_, p)| p.clone()).or(log_path);
            let db = db_flag
                .map(Path::to_path_buf)
                .unwrap_or_else(|| demo.dir.path().join("authwatch.db"));
            let code = console::local(
                demo.config.clone(),
                &console_args,
                Some(&db),
                log_path,
                Some(demo.server.admin()),
            )
            .await;
            drop(logging);
            demo.stop().await;
            code
        }
        Some(Cmd::Check {
            demo,
            format,
            integrations,
        }) => {
            if demo {
                let demo = Demo::start(false).await?;
                let code = check(&demo.config, format, &integrations).await;
                demo.stop().await;
                code
            } else {
                match load() {
                    Ok(mut config) => {
                        let db = db_path(db_flag, &config);
                        rotate::apply_stored_expiries(&mut config, db.as_deref());
                        check(&config, format, &integrations).await
                    }
                    Err(code) => {
                        if format == CheckFormat::Nagios {
                            outln!("AUTHWATCH UNKNOWN - configuration error (see stderr)");
                        }
                        Ok(code)
                    }
                }
            }
        }
        Some(Cmd::Config {
            command: ConfigCmd::Check,
        }) => {
            let config = match load() {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let (text, ok) = config::check_report(&config).await;
            out!("{text}");
            outln!("{}", detection_note(&config));
            Ok(if ok { 0 } else { EXIT_USAGE })
        }
        Some(Cmd::Scan { files, format }) => {
            let config_flag = config_flag.map(Path::to_path_buf);
            blocking(move || scan(config_flag.as_deref(), &files, format)).await
        }
        Some(Cmd::Report { since, format }) => {
            let config = match load() {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let store = match open_existing_db(
                db_path(db_flag, &config),
                "history",
                "run the console or agent first, or ",
            ) {
                Ok(s) => s,
                Err(code) => return Ok(code),
            };
            let now = chrono::Utc::now();
            let names: Vec<String> = config.integrations.iter().map(|i| i.name.clone()).collect();
            let report =
                crate::history_report::build(&store, &names, now - since.as_chrono(), now)?;
            match format {
                Format::Text => out!("{}", report.to_text()),
                Format::Json => outln!("{}", serde_json::to_string_pretty(&report)?),
            }
            Ok(0)
        }
        Some(Cmd::Simulate {
            scenario,
            listen,
            print_config,
            tls,
            public_url,
        }) => {
            let scenario = match scenario {
                Some(path) => sim::Scenario::load(&path)?,
                None => sim::Scenario::demo(),
            };
            let options = sim::SimOptions { tls, public_url };
            sim::serve_forever(scenario, listen, print_config, options).await?;
            Ok(0)
        }
        Some(Cmd::Rotate {
            credential,
            action,
            format,
            confirm,
            confirm_manual,
            no_rollback,
            generated_at,
        }) => match load() {
            Ok(config) => {
                let db = db_path(db_flag, &config);
                let options = rotate::RotateOptions {
                    confirm,
                    confirm_manual,
                    no_rollback,
                    generated_at,
                };
                rotate::rotate(&config, db, &credential, action, format, options).await
            }
            Err(code) => Ok(code),
        },
        Some(Cmd::Secret {
            command: SecretCmd::Set { name },
        }) => blocking(move || rotate::secret_set(&name)).await,
        Some(Cmd::Audit {
            credential,
            since,
            format,
        }) => match load() {
            Ok(config) => match credential
                .as_deref()
                .map(|id| unknown_credential(&config, id))
            {
                Some(Err(code)) => Ok(code),
                _ => match open_existing_db(db_path(db_flag, &config), "database", "") {
                    Ok(store) => {
                        rotate::audit(&store, credential.as_deref(), since.as_chrono(), format)
                    }
                    Err(code) => Ok(code),
                },
            },
            Err(code) => Ok(code),
        },
    }
}

/// How long a revoked secret can show OK with these settings (the README's table, for this configuration): SFMC
/// tokens live 1079 s; a generic OAuth 2.0 server's lifetime is not known ahead, so `token_refresh` bounds it.
fn detection_note(config: &Config) -> String {
    let lifetime = config
        .credentials
        .iter()
        .all(|c| c.provider == config::Provider::Sfmc)
        .then_some(std::time::Duration::from_secs(1079));
    let bound = crate::rules::schedule::revocation_detection_bound(&config.settings, lifetime);
    let secs = bound.as_secs();
    format!(
        "detection: a revoked secret turns FAIL within {}m {:02}s at most (plus the probes' own HTTP time); \
         lower token_refresh to shorten it (README: How long a revoked secret can show OK)",
        secs / 60,
        secs % 60
    )
}

/// Refuse a credential id the configuration does not know (a typo would otherwise read as "no entries").
fn unknown_credential(config: &Config, id: &str) -> std::result::Result<(), i32> {
    let ids = config.credentials.iter().map(|c| c.id.as_str());
    if ids.clone().any(|c| c == id) {
        return Ok(());
    }
    match crate::suggest::nearest(id, ids) {
        Some(near) => eprintln!("error: unknown credential {id:?}: did you mean {near:?}?"),
        None => eprintln!(
            "error: unknown credential {id:?}: not a [[credential]] id in the configuration"
        ),
    }
    Err(EXIT_USAGE)
}

/// Run a subcommand that only does blocking work (SQLite, files, stdin) off the async workers.
async fn blocking(f: impl FnOnce() -> Result<i32> + Send + 'static) -> Result<i32> {
    tokio::task::spawn_blocking(f).await?
}

/// The database: `--db`, else `[settings] db`, else `$XDG_STATE_HOME/authwatch/authwatch.db` (None: no place
/// for it). The one place this is decided.
fn db_path(flag: Option<&Path>, config: &Config) -> Option<PathBuf> {
    flag.map(Path::to_path_buf)
        .or_else(|| config.settings.db.clone())
        .or_else(store::default_path)
}

/// Open a database that must already exist (`report`, `audit` only read it); on failure print why.
/// `what` names it in messages ("history", "database"); `hint` says how one comes to exist.
fn open_existing_db(
    path: Option<PathBuf>,
    what: &str,
    hint: &str,
) -> std::result::Result<store::Store, i32> {
    let Some(db) = path else {
        eprintln!("error: no {what}: pass --db PATH");
        return Err(EXIT_USAGE);
    };
    if !db.exists() {
        eprintln!("error: no {what} at {}: {hint}pass --db PATH", db.display());
        return Err(EXIT_USAGE);
    }
    store::Store::open(&db).map_err(|e| {
        eprintln!("error: {e}");
        EXIT_USAGE
    })
}

/// Find and load the configuration; on failure print why (with file:line:col) and return the exit code.
fn load_config(explicit: Option<&std::path::Path>) -> std::result::Result<Config, i32> {
    let path = config::discover(explicit).map_err(|e| {
        eprintln!("{e}");
        EXIT_USAGE
    })?;
    let config = config::load(&path).map_err(|e| {
        eprintln!("{e}");
        EXIT_USAGE
    })?;
    for warning in &config.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(config)
}

/// `authwatch scan`: one pass over the files, grouped by the log source (format and field names) each belongs to.
fn scan(explicit: Option<&std::path::Path>, files: &[PathBuf], format: Format) -> Result<i32> {
    use crate::ingest::{self, Matcher, ScanReport};
    // Without a config every event is "unmatched": still a useful count.
    let config = match config::discover(explicit) {
        Ok(path) => match config::load(&path) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("{e}");
                return Ok(EXIT_USAGE);
            }
        },
        Err(_) if explicit.is_none() => {
            eprintln!(
                "note: no configuration found: every event counts as unmatched (pass --config PATH)"
            );
            None
        }
        Err(e) => {
            eprintln!("{e}");
            return Ok(EXIT_USAGE);
        }
    };
    let matcher = config
        .as_ref()
        .map(Matcher::from_config)
        .unwrap_or_else(Matcher::empty);
    let sources = config
        .as_ref()
        .map(|c| c.log_sources.as_slice())
        .unwrap_or(&[]);
    let mut groups: Vec<(config::LogSourceConfig, Vec<PathBuf>)> = Vec::new();
    for file in files {
        let source = match ingest::source_for_file(file, sources) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", file.display());
                return Ok(EXIT_USAGE);
            }
        };
        match groups.iter_mut().find(|(s, _)| *s == source) {
            Some((_, paths)) => paths.push(file.clone()),
            None => groups.push((source, vec![file.clone()])),
        }
    }
    let mut total = ScanReport::new(&matcher);
    for (source, paths) in &groups {
        match ingest::scan_files(paths, source, &matcher) {
            Ok(report) => total.merge(&report),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(EXIT_USAGE);
            }
        }
    }
    match format {
        Format::Text => out!("{}", total.to_text()),
        Format::Json => outln!("{}", total.to_json()),
    }
    Ok(0)
}

async fn check(config: &Config, format: CheckFormat, only: &[String]) -> Result<i32> {
    let mut snapshot = match check::sweep(config, only).await {
        Ok(s) => s,
        Err(e) => {
            if format == CheckFormat::Nagios {
                outln!("AUTHWATCH UNKNOWN - {e}");
            }
            eprintln!("error: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    if !only.is_empty() {
        // Only the selected integrations' credentials, so the expiry table matches the summary.
        let used: Vec<&str> = snapshot
            .integrations
            .iter()
            .map(|i| i.credential.as_str())
            .collect();
        let keep: Vec<_> = snapshot
            .credentials
            .iter()
            .filter(|c| used.contains(&c.id.as_str()))
            .cloned()
            .collect();
        snapshot.credentials = keep;
    }
    let report = StateReport::from_snapshot(&snapshot);
    match format {
        CheckFormat::Text => out!("{}", report.to_text()),
        CheckFormat::Json => outln!("{}", serde_json::to_string_pretty(&report)?),
        CheckFormat::Nagios => out!(
            "{}",
            crate::nagios::plugin_output(
                &snapshot,
                &crate::rules::health::Thresholds::from(&config.settings)
            )
        ),
    }
    Ok(snapshot.summary.worst().exit_code())
}
