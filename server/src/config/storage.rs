//! Settings of what the portal keeps: its data directory, the database and the keys.

use std::path::PathBuf;

use url::Url;

use super::ConfigError;
use super::setting::{number, path, settings};

pub use services::db::DatabaseKind;

settings! {
    /// Where the portal keeps its data and keys.
    pub const STORAGE = [
        DATA_DIR: PathBuf {
            default: Value("data"),
            parse: path,
            help: "the SQLite database and generated keys; created 0700, the database file 0600 (an existing directory others can read gets a warning)",
        },
        DATABASE_URL: DatabaseUrl {
            default: Derived("`sqlite://DATA_DIR/portcullis.db`"),
            parse: |raw| DatabaseUrl::parse(raw).map_err(|e| e.message),
            help: "`sqlite://…` or `postgres://…` (several instances share one PostgreSQL)",
        },
        DATABASE_MAX_CONNECTIONS: u32 {
            default: Value("10"),
            parse: |raw| number(raw, 1..=1000).map(|n| n as u32),
            help: "database pool size",
        },
        CREDENTIAL_KEY_FILE: PathBuf {
            default: Derived("`<DATA_DIR>/credential.key`"),
            parse: path,
            help: "AES-256-GCM key (base64 of 32 bytes) for orgs whose credentials API returns no secrets; generated (mode 0600) when absent",
        },
        CODE_KEY_FILE: PathBuf {
            default: Derived("`<DATA_DIR>/code.key`"),
            parse: path,
            help: "HMAC-SHA256 key (base64 of 32 bytes) the six-digit codes (email confirmation, reveal, report) are stored under, so a copy of the database does not give them away; generated (mode 0600) when absent; instances sharing a PostgreSQL database need the same key",
        },
        AUDIT_ANCHOR_KEY_FILE: PathBuf {
            default: Derived("`<DATA_DIR>/audit-anchor.key`"),
            parse: path,
            help: "HMAC-SHA256 key (base64 of 32 bytes) the audit chain is anchored with (see the audit log); generated (mode 0600) when absent; keep it where a database administrator cannot write",
        },
        AUDIT_ANCHOR_EVERY: i64 {
            default: Value("1000"),
            parse: |raw| number(raw, 1..=1_000_000).map(|n| n as i64),
            help: "the audit chain is anchored every this many entries, and at shutdown (1 to 1,000,000)",
        },
    ];
}

/// A validated database URL. Its `Display` hides any password, so it is safe to log.
#[derive(Clone)]
pub struct DatabaseUrl {
    url: String,
    kind: DatabaseKind,
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        const SETTING: &str = "DATABASE_URL";
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(ConfigError::new(SETTING, "is empty"));
        }
        let scheme = raw.split(':').next().unwrap_or_default();
        let kind = match scheme {
            "sqlite" => DatabaseKind::Sqlite,
            "postgres" | "postgresql" => DatabaseKind::Postgres,
            _ => {
                return Err(ConfigError::new(
                    SETTING,
                    format!(
                        "unsupported database '{}' (expected a sqlite:// or postgres:// URL)",
                        redact_url(raw)
                    ),
                ));
            }
        };
        if kind == DatabaseKind::Postgres {
            let parsed = Url::parse(raw).map_err(|e| {
                ConfigError::new(
                    SETTING,
                    format!("'{}' is not a valid URL: {e}", redact_url(raw)),
                )
            })?;
            if parsed.host_str().unwrap_or_default().is_empty() {
                return Err(ConfigError::new(SETTING, "a postgres:// URL needs a host"));
            }
        } else if raw
            .trim_start_matches("sqlite:")
            .trim_start_matches("//")
            .is_empty()
        {
            return Err(ConfigError::new(SETTING, "a sqlite: URL needs a file path"));
        }
        Ok(Self {
            url: raw.to_string(),
            kind,
        })
    }

    /// The default: a SQLite file in the data directory.
    pub(super) fn in_data_dir(data_dir: &std::path::Path) -> Result<Self, ConfigError> {
        let file = data_dir.join("portcullis.db");
        Self::parse(&format!("sqlite://{}?mode=rwc", file.display()))
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// The full URL, password included: for connecting only, never for display.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// For SQLite, the database file the URL names (`None` for in-memory databases).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        if self.kind != DatabaseKind::Sqlite {
            return None;
        }
        let rest = self
            .url
            .trim_start_matches("sqlite:")
            .trim_start_matches("//");
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            None
        } else {
            Some(PathBuf::from(path))
        }
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.url))
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// Replaces the password of a URL with `***` so it can appear in messages and logs.
pub fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            // set_password only fails for URLs that cannot have one, which this one has.
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(_) => raw.to_string(),
        // Not a URL at all: it may still contain a secret, so show only the scheme.
        Err(_) => match raw.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://…"),
            None => "…".to_string(),
        },
    }
}
