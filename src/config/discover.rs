//! Where the configuration file is found.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// The environment [`discover_with`] looks at (so tests need not mutate the process environment).
#[derive(Debug, Clone, Default)]
pub struct DiscoverEnv {
    /// `$AUTHWATCH_CONFIG`
    pub authwatch_config: Option<OsString>,
    /// `$XDG_CONFIG_HOME`
    pub xdg_config_home: Option<OsString>,
    /// `$HOME`
    pub home: Option<OsString>,
    /// Directory `./authwatch.toml` is looked up in; empty = the process's current directory (the path found
    /// is then returned relative, as `authwatch.toml`).
    pub cwd: PathBuf,
}

impl DiscoverEnv {
    pub fn from_process() -> Self {
        Self {
            authwatch_config: std::env::var_os("AUTHWATCH_CONFIG"),
            xdg_config_home: std::env::var_os("XDG_CONFIG_HOME"),
            home: std::env::var_os("HOME"),
            cwd: PathBuf::new(),
        }
    }
}

/// One place that was searched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Searched {
    pub path: PathBuf,
    /// `--config`, `$AUTHWATCH_CONFIG`, `current directory`, `$XDG_CONFIG_HOME`, `~/.config`.
    pub via: &'static str,
}

/// No configuration file was found; lists every place searched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigNotFound {
    pub searched: Vec<Searched>,
}

impl fmt::Display for ConfigNotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.searched.as_slice() {
            [one] if one.via == "--config" || one.via == "$AUTHWATCH_CONFIG" => {
                writeln!(
                    f,
                    "configuration file {} (from {}) does not exist",
                    one.path.display(),
                    one.via
                )?;
            }
            all => {
                writeln!(f, "no configuration file found; looked in:")?;
                for s in all {
                    writeln!(f, "  - {} ({})", s.path.display(), s.via)?;
                }
            }
        }
        write!(
            f,
            "  help: run `authwatch demo` to try authwatch against its built-in simulator, or copy config.example.toml \
             to ./authwatch.toml (or ~/.config/authwatch/config.toml), edit it, and run `authwatch config check`"
        )
    }
}

impl std::error::Error for ConfigNotFound {}

/// Find the configuration: `--config PATH` (must exist), then `$AUTHWATCH_CONFIG` (when set, must exist), then
/// `./authwatch.toml`, then `$XDG_CONFIG_HOME/authwatch/config.toml` (or `~/.config/authwatch/config.toml`).
pub fn discover(explicit: Option<&Path>) -> Result<PathBuf, ConfigNotFound> {
    discover_with(explicit, &DiscoverEnv::from_process())
}

/// [`discover`] with the environment passed in.
pub fn discover_with(
    explicit: Option<&Path>,
    env: &DiscoverEnv,
) -> Result<PathBuf, ConfigNotFound> {
    let nonempty = |v: &Option<OsString>| v.as_ref().filter(|s| !s.is_empty()).map(PathBuf::from);

    // Asked for by name: no fallback, a typo should not silently load another file.
    for (path, via) in [
        (explicit.map(Path::to_path_buf), "--config"),
        (nonempty(&env.authwatch_config), "$AUTHWATCH_CONFIG"),
    ] {
        if let Some(path) = path {
            return if path.is_file() {
                Ok(path)
            } else {
                Err(ConfigNotFound {
                    searched: vec![Searched { path, via }],
                })
            };
        }
    }

    let mut candidates = vec![Searched {
        path: env.cwd.join("authwatch.toml"),
        via: "current directory",
    }];
    // XDG base directory spec: a relative $XDG_CONFIG_HOME is ignored.
    match nonempty(&env.xdg_config_home).filter(|p| p.is_absolute()) {
        Some(xdg) => candidates.push(Searched {
            path: xdg.join("authwatch").join("config.toml"),
            via: "$XDG_CONFIG_HOME",
        }),
        None => {
            if let Some(home) = nonempty(&env.home) {
                candidates.push(Searched {
                    path: home.join(".config").join("authwatch").join("config.toml"),
                    via: "~/.config",
                });
            }
        }
    }
    match candidates.iter().find(|c| c.path.is_file()) {
        Some(found) => Ok(found.path.clone()),
        None => Err(ConfigNotFound {
            searched: candidates,
        }),
    }
}
