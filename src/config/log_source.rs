//! `[[log_source]]`: where an integration's own logs are and how to read them.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Line format of a log source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    #[default]
    Jsonl,
    /// nginx/Apache "combined" (or "common") access log.
    Combined,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Jsonl => "jsonl",
            LogFormat::Combined => "combined",
        }
    }
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "jsonl" | "json" | "ndjson" => Ok(LogFormat::Jsonl),
            "combined" | "common" | "nginx" | "apache" => Ok(LogFormat::Combined),
            other => Err(format!(
                "unknown log format {other:?}: expected \"jsonl\" or \"combined\""
            )),
        }
    }
}

fn d_status() -> String {
    "status".into()
}
fn d_time() -> String {
    "time".into()
}
fn d_integration() -> String {
    "integration".into()
}
fn d_client_id() -> String {
    "client_id".into()
}
fn d_account_id() -> String {
    "account_id".into()
}
fn d_url() -> String {
    "url".into()
}
fn d_error() -> String {
    "error".into()
}

/// One `[[log_source]]` table.
///
/// ```toml
/// [[log_source]]
/// name = "crm-middleware"
/// path = "/var/log/middleware/sfmc-*.jsonl"   # a glob
/// format = "jsonl"                            # or "combined"; default "jsonl"
/// status_field = "status"                     # jsonl only, dotted paths allowed ("response.status")
/// time_field = "time"
/// integration_field = "integration"
/// client_id_field = "client_id"
/// account_id_field = "account_id"
/// url_field = "url"
/// error_field = "error"
/// ```
/// The `*_field` keys only apply to `jsonl`; key names match exactly first, else ASCII case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSourceConfig {
    pub name: String,
    /// A file path or a glob (`*`, `?`, `[...]`, `**`).
    pub path: String,
    #[serde(default)]
    pub format: LogFormat,
    #[serde(default = "d_status")]
    pub status_field: String,
    #[serde(default = "d_time")]
    pub time_field: String,
    #[serde(default = "d_integration")]
    pub integration_field: String,
    #[serde(default = "d_client_id")]
    pub client_id_field: String,
    #[serde(default = "d_account_id")]
    pub account_id_field: String,
    #[serde(default = "d_url")]
    pub url_field: String,
    #[serde(default = "d_error")]
    pub error_field: String,
}

impl LogSourceConfig {
    /// A source with every field name at its default.
    pub fn new(name: impl Into<String>, path: impl Into<String>, format: LogFormat) -> Self {
        Self {
            name: name.into(),
            path: path.into(),
            format,
            status_field: d_status(),
            time_field: d_time(),
            integration_field: d_integration(),
            client_id_field: d_client_id(),
            account_id_field: d_account_id(),
            url_field: d_url(),
            error_field: d_error(),
        }
    }

    /// Semantic checks the TOML schema cannot express. The message names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("log_source.name must not be empty".into());
        }
        if self.path.trim().is_empty() {
            return Err(format!(
                "log_source {:?}: path must not be empty",
                self.name
            ));
        }
        if let Err(e) = glob::Pattern::new(&self.path) {
            return Err(format!(
                "log_source {:?}: path {:?} is not a valid glob: {} (at character {})",
                self.name, self.path, e.msg, e.pos
            ));
        }
        for (key, value) in self.field_keys() {
            if value.is_empty() {
                return Err(format!(
                    "log_source {:?}: {key} must not be empty",
                    self.name
                ));
            }
            if value.split('.').any(str::is_empty) {
                return Err(format!(
                    "log_source {:?}: {key} = {value:?} has an empty path segment (write \"a.b\", not \"a..b\" or \".a\")",
                    self.name
                ));
            }
        }
        Ok(())
    }

    /// `(key, value)` of every `*_field` setting.
    pub fn field_keys(&self) -> [(&'static str, &str); 7] {
        [
            ("status_field", &self.status_field),
            ("time_field", &self.time_field),
            ("integration_field", &self.integration_field),
            ("client_id_field", &self.client_id_field),
            ("account_id_field", &self.account_id_field),
            ("url_field", &self.url_field),
            ("error_field", &self.error_field),
        ]
    }

    /// Whether `file` is one of the files this source's glob names.
    pub fn matches(&self, file: &Path) -> bool {
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        match glob::Pattern::new(&self.path) {
            Ok(p) => {
                p.matches_path_with(file, opts)
                    || std::path::absolute(file)
                        .map(|abs| p.matches_path_with(&abs, opts))
                        .unwrap_or(false)
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in() {
        let s: LogSourceConfig = toml::from_str("name = \"a\"\npath = \"/x/*.jsonl\"\n").unwrap();
        assert_eq!(s, LogSourceConfig::new("a", "/x/*.jsonl", LogFormat::Jsonl));
        assert!(s.validate().is_ok());
    }

    #[test]
    fn unknown_keys_and_formats_are_rejected() {
        assert!(
            toml::from_str::<LogSourceConfig>("name=\"a\"\npath=\"x\"\nstatus=\"s\"\n").is_err()
        );
        assert!(
            toml::from_str::<LogSourceConfig>("name=\"a\"\npath=\"x\"\nformat=\"xml\"\n").is_err()
        );
        let c: LogSourceConfig =
            toml::from_str("name=\"a\"\npath=\"x\"\nformat=\"combined\"\n").unwrap();
        assert_eq!(c.format, LogFormat::Combined);
    }

    #[test]
    fn validate_catches_semantic_errors() {
        let mut s = LogSourceConfig::new(" ", "/x", LogFormat::Jsonl);
        assert!(s.validate().unwrap_err().contains("name"));
        s.name = "a".into();
        s.path = "/x/[a".into();
        assert!(s.validate().unwrap_err().contains("glob"));
        s.path = "/x/*.log".into();
        s.status_field = "response..status".into();
        assert!(s.validate().unwrap_err().contains("status_field"));
        s.status_field = "response.status".into();
        assert!(s.validate().is_ok());
    }

    #[test]
    fn glob_matching() {
        let s = LogSourceConfig::new("a", "/var/log/mw/sfmc-*.jsonl", LogFormat::Jsonl);
        assert!(s.matches(Path::new("/var/log/mw/sfmc-1.jsonl")));
        assert!(!s.matches(Path::new("/var/log/mw/sub/sfmc-1.jsonl")));
        assert!(!s.matches(Path::new("/var/log/mw/sfmc-1.jsonl.1")));
    }
}
