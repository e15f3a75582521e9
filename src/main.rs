use authwatch::cli::{self, Cli, EXIT_USAGE};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors; usage errors exit 3 like every config error.
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE as u8 } else { 0 });
        }
    };
    // --no-color / NO_COLOR: a blank theme, so even error reports carry no escape sequences.
    let no_color = cli.no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let mut hook = color_eyre::config::HookBuilder::new();
    if no_color {
        hook = hook.theme(color_eyre::config::Theme::new());
    }
    let _ = hook.install();
    // The demo logs into its own temporary directory (see `cli::run`).
    let logging = match cli.command {
        Some(cli::Cmd::Demo { .. }) => None,
        _ => authwatch::logging::init(),
    };
    let log_path = logging.as_ref().map(|(_, p)| p.clone());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_USAGE as u8);
        }
    };
    let code = runtime.block_on(cli::run(cli, log_path));
    // Don't wait for abandoned probes (e.g. a hanging secret command) on the way out.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    drop(logging);
    match code {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) if e.downcast_ref::<authwatch::tui::NeedsTerminal>().is_some() => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{e}");
            ExitCode::from(EXIT_USAGE as u8)
        }
        Err(e) => {
            // Not eprintln!: it panics when stderr is gone (a dropped SSH session), and nothing may panic here.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "error: {e:?}");
            ExitCode::from(EXIT_USAGE as u8)
        }
    }
}
