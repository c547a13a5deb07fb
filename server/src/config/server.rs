//! Settings of the HTTP server: where it listens, who reaches it, logging, timeouts and
//! shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::setting::{number, path, settings};
use super::{LogFormat, Network};

settings! {
    /// The HTTP server's settings.
    pub const SERVER = [
        LISTEN_ADDR: SocketAddr {
            default: Value("127.0.0.1:3000"),
            parse: parse_socket_addr,
            help: "address to listen on (port `0` picks a free port)",
        },
        TRUSTED_PROXIES: Vec<Network> {
            default: None,
            parse: parse_trusted_proxies,
            help: "comma-separated addresses or CIDRs of your reverse proxies (e.g. `10.0.0.0/8, 192.0.2.7`); from them, and only from them, `X-Forwarded-For` names the client (the right-most address that is not a trusted proxy). Unset, the TCP peer is the client: behind a proxy, set it, or every contractor shares the proxy's rate limits",
        },
        PUBLIC_URL: Url {
            default: Derived("`http://LISTEN_ADDR`"),
            parse: parse_public_url,
            help: "the URL users reach the portal at; `https://` also makes cookies `Secure` and `__Host-` and turns on HSTS",
        },
        SITE_ROOT: std::path::PathBuf {
            default: Value("target/site"),
            parse: path,
            help: "the built front end (wasm, JS, CSS)",
        },
        LOG_FORMAT: LogFormat {
            default: Value("text"),
            parse: |raw| match raw.trim() {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                other => Err(format!("'{other}' is not a log format (expected text or json)")),
            },
            help: "`text` or `json` (one JSON object per line, on stderr)",
        },
        LOG_LEVEL: String {
            default: Value("info"),
            parse: |raw| match tracing_subscriber::EnvFilter::try_new(raw) {
                Ok(_) => Ok(raw.to_string()),
                Err(e) => Err(format!("'{raw}' is not a log filter: {e}")),
            },
            help: "a tracing filter, e.g. `portcullis=debug,info`",
        },
        SHUTDOWN_GRACE_SECONDS: Duration {
            default: Value("10"),
            parse: |raw| number(raw, 0..=600).map(Duration::from_secs),
            help: "time in-flight requests get after SIGTERM/SIGINT",
        },
        HTTP_HEADER_TIMEOUT_SECONDS: Duration {
            default: Value("10"),
            parse: |raw| number(raw, 1..=300).map(Duration::from_secs),
            help: "a client must send a request's headers within this, or its connection is closed",
        },
        HTTP_REQUEST_TIMEOUT_SECONDS: Duration {
            default: Value("60"),
            parse: |raw| number(raw, 1..=3600).map(Duration::from_secs),
            help: "an answer that has not begun after this becomes a 503 page (a streamed answer that has begun, such as an export, is not cut off)",
        },
        HTTP_MAX_CONCURRENT_REQUESTS: usize {
            default: Value("512"),
            parse: |raw| number(raw, 1..=100_000).map(|n| n as usize),
            help: "requests in flight at once (a streamed answer counts until its last byte); more get 503 with `Retry-After` at once; `/healthz` and `/readyz` are exempt",
        },
        METRICS_TOKEN: SecretString {
            default: None,
            parse: parse_metrics_token,
            help: "a bearer token `/metrics` requires (`Authorization: Bearer <token>`; 16 to 512 characters, no spaces); without it a scrape gets 401. Unset, `/metrics` is open: keep it off the public network then",
        },
        OTEL_EXPORTER_OTLP_ENDPOINT: Url {
            default: None,
            parse: parse_otlp_endpoint,
            help: "an OpenTelemetry collector's OTLP/HTTP base URL (e.g. `http://127.0.0.1:4318`); when set, the portal's trace spans (provisioning steps with grant, step and attempt; usage collection runs and files; outbox deliveries; HTTP requests; jobs) are sent to `<url>/v1/traces` as OTLP JSON. Unset, spans only shape the log lines",
        },
    ];
}

/// A bearer token: long enough not to be guessed, and sendable in a header as it is.
fn parse_metrics_token(raw: &str) -> Result<SecretString, String> {
    let token = raw.trim();
    let length = token.chars().count();
    if !(16..=512).contains(&length) {
        return Err(format!(
            "the token must be 16 to 512 characters long (it has {length})"
        ));
    }
    if !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(
            "the token may hold only printable ASCII characters, without spaces".to_string(),
        );
    }
    Ok(SecretString::from(token))
}

/// The OTLP/HTTP base URL; `/v1/traces` is added as OpenTelemetry's exporter specification
/// says for `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn parse_otlp_endpoint(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("'{raw}' is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "'{raw}' must start with http:// or https:// (the portal sends OTLP over HTTP, not gRPC)"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("'{raw}' must not carry a query or a fragment"));
    }
    Ok(url)
}

fn parse_public_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("'{raw}' is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("'{raw}' must start with http:// or https://"));
    }
    Ok(url)
}

/// A comma-separated list of proxy addresses and networks.
fn parse_trusted_proxies(raw: &str) -> Result<Vec<Network>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let network = Network::parse(item)?;
            if network.to_string().ends_with("/0") {
                return Err(format!(
                    "'{item}' trusts every address, so any client could name its own address"
                ));
            }
            Ok(network)
        })
        .collect()
}

/// `host:port` with an IP address (the message is the same for every setting that takes an
/// address).
pub(super) fn parse_socket_addr(raw: &str) -> Result<SocketAddr, String> {
    let raw = raw.trim();
    raw.parse::<SocketAddr>().map_err(|_| {
        let hint = match raw.rsplit_once(':') {
            Some((_, port)) if port.parse::<u16>().is_err() => {
                format!("'{port}' is not a port number (0-65535)")
            }
            Some(_) => "the host must be an IP address such as 127.0.0.1 or 0.0.0.0".to_string(),
            None => "expected host:port, e.g. 127.0.0.1:3000".to_string(),
        };
        format!("'{raw}' is not a listen address: {hint}")
    })
}
