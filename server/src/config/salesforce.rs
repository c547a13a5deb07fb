//! Settings of the org the portal works with: the built-in sandbox org (the default) or a
//! real org reached with the portal's own External Client App.

use std::net::SocketAddr;
use std::path::PathBuf;

use url::Url;

use super::ConfigError;
use super::server::parse_socket_addr;
use super::setting::{Source, flag, number, settings, text};

settings! {
    /// The org and how the portal connects to it.
    pub const SALESFORCE = [
        SALESFORCE_MODE: Mode {
            default: Value("sandbox"),
            parse: |raw| match raw.trim() {
                "sandbox" => Ok(Mode::Sandbox),
                "org" => Ok(Mode::Org),
                other => Err(format!("'{other}' is not a mode (expected sandbox or org)")),
            },
            help: "`sandbox` (the built-in sandbox org) or `org` (a real org)",
        },
        SANDBOX_ORG_LISTEN: SocketAddr {
            default: Value("127.0.0.1:3900"),
            parse: parse_socket_addr,
            help: "where the built-in sandbox org listens",
        },
        SANDBOX_PUBLIC: bool {
            default: Value("0"),
            parse: flag,
            help: "`1` lets sandbox mode listen beyond loopback (`LISTEN_ADDR` or `SANDBOX_ORG_LISTEN` not on 127.0.0.1/::1); without it such a start-up stops with an error naming both settings, since `/outbox` shows every mail (codes and links) and the sandbox org lists its people's passwords",
        },
        SANDBOX_CLOCK_CONTROL: bool {
            default: Value("0"),
            parse: flag,
            help: "`1` (tests only, sandbox mode only) opens `POST /__portal/clock` (`{\"advanceSeconds\": N}`), which moves the portal's clock (forward, or back) so browser tests reach due dates; ignored with a real org",
        },
        SANDBOX_ORG_DAILY_API_LIMIT: u64 {
            default: Value("15000"),
            parse: |raw| number(raw, 1..=100_000_000),
            help: "`DailyApiRequests` of a newly seeded sandbox org",
        },
        SALESFORCE_URL: Url {
            default: None,
            parse: |raw| {
                let url = Url::parse(raw.trim())
                    .map_err(|e| format!("'{raw}' is not a valid URL: {e}"))?;
                if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
                    return Err(format!("'{raw}' must be the org's https:// My Domain URL"));
                }
                Ok(url)
            },
            help: "org mode: the org's My Domain URL",
        },
        SALESFORCE_CLIENT_ID: String {
            default: None,
            parse: text,
            help: "org mode: the portal app's consumer key",
        },
        SALESFORCE_JWT_KEY_FILE: PathBuf {
            default: None,
            parse: readable_file,
            help: "org mode, JWT bearer: the app certificate's private key",
        },
        SALESFORCE_USERNAME: String {
            default: None,
            parse: text,
            help: "org mode, JWT bearer: the user to act as",
        },
        SALESFORCE_CLIENT_SECRET: String {
            default: None,
            parse: text,
            help: "org mode: the app's consumer secret; without the JWT key the portal authenticates with it (client credentials), with the key it serves staff sign-in only",
        },
        SALESFORCE_JWT_AUDIENCE: String {
            default: Derived("`SALESFORCE_URL`"),
            parse: |raw| {
                let raw = raw.trim().trim_end_matches('/').to_string();
                match Url::parse(&raw) {
                    Ok(aud) if aud.scheme() == "https" || aud.scheme() == "http" => Ok(raw),
                    _ => Err(format!(
                        "'{raw}' is not a URL (expected the org's My Domain URL, https://login.salesforce.com or https://test.salesforce.com)"
                    )),
                }
            },
            help: "org mode, JWT bearer: the assertion's audience (the My Domain URL works in production orgs and sandboxes; `https://login.salesforce.com` only in production)",
        },
        SALESFORCE_CA_FILE: PathBuf {
            default: None,
            parse: readable_file,
            help: "an extra trusted CA (PEM) for the org's HTTPS",
        },
        SALESFORCE_ORG_ID: String {
            default: Derived("the org the portal connects to"),
            parse: |raw| {
                let raw = raw.trim();
                salesforce::SalesforceId::parse(raw)
                    .ok()
                    .map(|id| id.as_15().to_string())
                    .filter(|id| id.starts_with("00D"))
                    .ok_or_else(|| {
                        format!("'{raw}' is not an org id (15 or 18 characters, starting 00D)")
                    })
            },
            help: "the org id (`00D…`, 15 or 18 characters) people must sign in from; a sign-in whose userinfo names another org is refused and audited",
        },
    ];
}

/// `SALESFORCE_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Sandbox,
    Org,
}

fn readable_file(raw: &str) -> Result<PathBuf, String> {
    let file = PathBuf::from(raw);
    if !file.is_file() {
        return Err(format!("{} is not a readable file", file.display()));
    }
    Ok(file)
}

/// Which Salesforce org the portal works with.
#[derive(Debug, Clone)]
pub enum SalesforceMode {
    /// The built-in sandbox org, started in-process and listening on `listen`.
    Sandbox {
        listen: SocketAddr,
        daily_api_limit: u64,
    },
    /// A real org (or a standalone sandbox org), reached with the portal's own app.
    Org(OrgConnection),
}

/// How the portal authenticates its own connection to an org.
#[derive(Clone)]
pub enum OrgAuth {
    /// JWT bearer: the app's consumer key, the user to act as, and the private key file.
    /// `sign_in_secret` (`SALESFORCE_CLIENT_SECRET` beside the key) serves staff sign-in
    /// only: the web-server flow's code exchange needs the consumer secret unless the app's
    /// "Require secret for web server flow" is off (`isConsumerSecretOptional`).
    JwtBearer {
        username: String,
        key_file: PathBuf,
        sign_in_secret: Option<String>,
    },
    /// Client credentials: the app's consumer secret (the app runs as its run-as user).
    ClientCredentials { secret: String },
}

impl std::fmt::Debug for OrgAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OrgAuth::JwtBearer {
                username,
                key_file,
                sign_in_secret,
            } => f
                .debug_struct("JwtBearer")
                .field("username", username)
                .field("key_file", key_file)
                .field("sign_in_secret", &sign_in_secret.as_ref().map(|_| "***"))
                .finish(),
            OrgAuth::ClientCredentials { .. } => f.write_str("ClientCredentials { secret: *** }"),
        }
    }
}

/// The settings of a connection to an org.
#[derive(Debug, Clone)]
pub struct OrgConnection {
    /// The org's My Domain URL (`SALESFORCE_URL`).
    pub url: Url,
    /// The portal app's consumer key (`SALESFORCE_CLIENT_ID`).
    pub client_id: String,
    pub auth: OrgAuth,
    /// The JWT bearer assertion's `aud` (`SALESFORCE_JWT_AUDIENCE`); default the My Domain
    /// URL, which production orgs and sandboxes both accept (login.salesforce.com is refused
    /// by every sandbox).
    pub jwt_audience: Option<String>,
    /// An extra trusted CA certificate, PEM (`SALESFORCE_CA_FILE`).
    pub ca_file: Option<PathBuf>,
}

/// The org settings; in org mode every connection setting it needs, each named when missing.
pub(super) fn salesforce(source: &Source) -> Result<SalesforceMode, ConfigError> {
    if SALESFORCE_MODE.read(source)? == Mode::Sandbox {
        return Ok(SalesforceMode::Sandbox {
            listen: SANDBOX_ORG_LISTEN.read(source)?,
            daily_api_limit: SANDBOX_ORG_DAILY_API_LIMIT.read(source)?,
        });
    }
    let required =
        |name: &'static str| move || ConfigError::new(name, "is required when SALESFORCE_MODE=org");
    let url = SALESFORCE_URL
        .get(source)?
        .ok_or_else(required(SALESFORCE_URL.name))?;
    let client_id = SALESFORCE_CLIENT_ID
        .get(source)?
        .ok_or_else(required(SALESFORCE_CLIENT_ID.name))?;
    let auth = match (
        SALESFORCE_JWT_KEY_FILE.get(source)?,
        SALESFORCE_CLIENT_SECRET.get(source)?,
    ) {
        (Some(key_file), secret) => {
            let username = SALESFORCE_USERNAME.get(source)?.ok_or_else(|| {
                ConfigError::new(
                    SALESFORCE_USERNAME.name,
                    "is required with SALESFORCE_JWT_KEY_FILE (the user the portal acts as)",
                )
            })?;
            OrgAuth::JwtBearer {
                username,
                key_file,
                sign_in_secret: secret.filter(|s| !s.trim().is_empty()),
            }
        }
        (None, Some(secret)) => OrgAuth::ClientCredentials { secret },
        (None, None) => {
            return Err(ConfigError::new(
                SALESFORCE_JWT_KEY_FILE.name,
                "org mode needs SALESFORCE_JWT_KEY_FILE (JWT bearer, preferred) or SALESFORCE_CLIENT_SECRET (client credentials)",
            ));
        }
    };
    Ok(SalesforceMode::Org(OrgConnection {
        url,
        client_id,
        auth,
        jwt_audience: SALESFORCE_JWT_AUDIENCE.get(source)?,
        ca_file: SALESFORCE_CA_FILE.get(source)?,
    }))
}

/// The sandbox mode is for trying the portal on one machine: its outbox page shows every
/// mail (codes and links included) to anyone, and the sandbox org's home page lists its
/// people's passwords. Serving either beyond this machine must be asked for.
pub(super) fn check_sandbox_stays_local(
    listen_addr: SocketAddr,
    salesforce: &SalesforceMode,
) -> Result<(), ConfigError> {
    let SalesforceMode::Sandbox { listen, .. } = salesforce else {
        return Ok(());
    };
    let remedy = "listen on 127.0.0.1, point the portal at a real org (SALESFORCE_MODE=org), \
                  or set SANDBOX_PUBLIC=1 to do this on purpose";
    if !listen_addr.ip().to_canonical().is_loopback() {
        return Err(ConfigError::new(
            "LISTEN_ADDR",
            format!(
                "{listen_addr} can be reached from other machines, and with SALESFORCE_MODE=sandbox \
                 the portal shows its outbox (/outbox: every mail, codes and links included) to \
                 anyone who reaches it: {remedy}"
            ),
        ));
    }
    if !listen.ip().to_canonical().is_loopback() {
        return Err(ConfigError::new(
            SANDBOX_ORG_LISTEN.name,
            format!(
                "{listen} can be reached from other machines, and with SALESFORCE_MODE=sandbox \
                 that serves the sandbox org (its people's passwords, its control API) to anyone \
                 who reaches it: {remedy}"
            ),
        ));
    }
    Ok(())
}
