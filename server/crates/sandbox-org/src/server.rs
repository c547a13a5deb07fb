//! Serving the org: plain HTTP (in-process default mode, tests) or HTTPS with a self-signed
//! certificate (standalone), fault injection in front of the Salesforce routes, and the
//! sandbox control API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::control::{self, ControlState};
use crate::error::SfError;
use crate::faults::{FaultRule, Verdict};
use crate::oauth::{self, ClientAddr};
use crate::seed::{SeedOptions, seed};
use crate::state::{Org, Tokens};
use crate::usage::Usage;
use crate::{persist, rest, soap};

/// How to run a sandbox org.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Where the org keeps its state across restarts (none: in memory only).
    pub state_dir: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate kept in the state directory.
    pub https: bool,
    /// `DailyApiRequests` for a newly seeded org.
    pub daily_api_limit: u64,
    /// Callback URLs of the portal's app (its sign-in callback), for a newly seeded org; on
    /// an existing org they are added if missing.
    pub portal_callbacks: Vec<String>,
    /// Fault rules in force from the start.
    pub faults: Vec<FaultRule>,
    /// The kind of org to stand in for (none: keep the stored one; a new org is a sandbox).
    pub kind: Option<crate::store::OrgKind>,
    /// Seconds before a newly deployed app's credentials work (none: keep the stored
    /// setting; a new org waits a few seconds).
    pub app_activation_seconds: Option<u64>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            state_dir: None,
            https: false,
            daily_api_limit: 15_000,
            portal_callbacks: Vec::new(),
            faults: Vec::new(),
            kind: None,
            // In-process orgs (tests, benchmarks) activate apps at once unless told not to.
            app_activation_seconds: Some(0),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandbox org: cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("sandbox org: state directory {path}: {message}")]
    State { path: String, message: String },
    #[error("sandbox org: {0}")]
    Setup(String),
}

/// A running sandbox org.
pub struct SandboxOrg {
    pub org: Arc<Org>,
    base_url: String,
    local_addr: SocketAddr,
    certificate_pem: Option<String>,
    credentials: Value,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SandboxOrg {
    /// Loads or seeds the org, binds, and starts serving.
    pub async fn start(config: SandboxConfig) -> Result<Self, SandboxError> {
        let state_error = |message: String| SandboxError::State {
            path: config
                .state_dir
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            message,
        };
        if let Some(dir) = &config.state_dir {
            std::fs::create_dir_all(dir).map_err(|e| state_error(e.to_string()))?;
        }
        let loaded = match &config.state_dir {
            Some(dir) => persist::load(dir).map_err(state_error)?,
            None => None,
        };
        let credentials_path = config
            .state_dir
            .as_ref()
            .map(|d| d.join("credentials.json"));
        let (org, credentials) = match loaded {
            Some((mut data, tokens, usage, key)) => {
                if let Some(app) = data
                    .apps
                    .values_mut()
                    .find(|a| a.developer_name == "Portcullis_Portal")
                {
                    for callback in &config.portal_callbacks {
                        if !app.callback_urls.contains(callback) {
                            app.callback_urls.push(callback.clone());
                        }
                    }
                }
                let credentials = credentials_path
                    .as_ref()
                    .and_then(|p| std::fs::read_to_string(p).ok())
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or(Value::Null);
                let org = Org::new(data, tokens, usage, config.state_dir.clone());
                org.set_portal_key(key);
                (org, credentials)
            }
            None => {
                let seeded = seed(&SeedOptions {
                    daily_api_limit: config.daily_api_limit,
                    portal_callbacks: config.portal_callbacks.clone(),
                })
                .map_err(SandboxError::Setup)?;
                let credentials = json!(seeded.credentials);
                let org = Org::new(
                    seeded.data,
                    Tokens::default(),
                    Usage::default(),
                    config.state_dir.clone(),
                );
                org.set_portal_key(Some(seeded.portal_private_key_pem));
                if let Some(path) = &credentials_path {
                    crate::tls::write_private(path, &credentials.to_string())
                        .map_err(state_error)?;
                }
                (org, credentials)
            }
        };
        if let Some(kind) = config.kind {
            org.write().settings.kind = kind;
        }
        if let Some(seconds) = config.app_activation_seconds {
            org.write().settings.app_activation_seconds = seconds;
        }
        let org = Arc::new(org);
        org.set_faults(config.faults.clone());

        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| SandboxError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| SandboxError::Listen {
                addr: config.listen,
                source,
            })?;
        let host = if local_addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else if local_addr.is_ipv6() {
            format!("[{}]", local_addr.ip())
        } else {
            local_addr.ip().to_string()
        };
        let (tls, certificate_pem) = if config.https {
            let (tls, pem) =
                crate::tls::server_tls(config.state_dir.as_deref(), &[local_addr.ip().to_string()])
                    .map_err(SandboxError::Setup)?;
            (Some(tokio_rustls::TlsAcceptor::from(tls)), Some(pem))
        } else {
            (None, None)
        };
        let scheme = if config.https { "https" } else { "http" };
        let base_url = format!("{scheme}://{host}:{}", local_addr.port());
        org.set_base_url(base_url.clone());

        let control_state = ControlState {
            org: org.clone(),
            credentials: Arc::new(std::sync::RwLock::new(credentials.clone())),
        };
        let app = router(org.clone(), control_state);
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(accept_loop(
            listener,
            app,
            tls,
            shutdown.clone(),
        )));
        if let Some(dir) = &config.state_dir {
            // Save once right away, so a new org exists on disk before anyone uses it.
            let mut persisted = 0usize;
            let usage_events = org.usage().events.len();
            if !dir.join("state.json").exists() {
                persist::save(&org, dir, &mut persisted).map_err(state_error)?;
            } else {
                persisted = usage_events;
            }
            tasks.push(tokio::spawn(persist::flusher(
                org.clone(),
                dir.clone(),
                persisted,
                shutdown.clone(),
            )));
        }
        Ok(Self {
            org,
            base_url,
            local_addr,
            certificate_pem,
            credentials,
            shutdown,
            tasks,
        })
    }

    /// The org's base URL (its "My Domain"), e.g. `https://127.0.0.1:3900`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The self-signed certificate, when serving HTTPS (clients trust this PEM).
    pub fn certificate_pem(&self) -> Option<&str> {
        self.certificate_pem.as_deref()
    }

    /// The seeded people and the portal app's client id/secret (as JSON).
    pub fn credentials(&self) -> &Value {
        &self.credentials
    }

    /// The portal app's JWT private key (PEM).
    pub fn portal_private_key_pem(&self) -> Option<String> {
        self.org.portal_key()
    }

    /// A token that stops the org when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops serving and saves the state.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for SandboxOrg {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Kills the connection a request arrived on (fault injection: dropped connections).
#[derive(Clone)]
struct ConnectionKill(CancellationToken);

async fn accept_loop(
    listener: TcpListener,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "sandbox org: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => return,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let kill = CancellationToken::new();
            let service = {
                let kill = kill.clone();
                hyper::service::service_fn(
                    move |mut request: hyper::Request<hyper::body::Incoming>| {
                        request.extensions_mut().insert(ClientAddr(peer));
                        request
                            .extensions_mut()
                            .insert(ConnectionKill(kill.clone()));
                        let app = app.clone();
                        async move { app.oneshot(request.map(axum::body::Body::new)).await }
                    },
                )
            };
            let builder = auto::Builder::new(TokioExecutor::new());
            match tls {
                Some(acceptor) => {
                    let Ok(Ok(stream)) = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        acceptor.accept(stream),
                    )
                    .await
                    else {
                        return;
                    };
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = connection => {}
                        () = kill.cancelled() => {}
                        () = shutdown.cancelled() => {}
                    }
                }
                None => {
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = connection => {}
                        () = kill.cancelled() => {}
                        () = shutdown.cancelled() => {}
                    }
                }
            }
        });
    }
}

/// Fault injection, and the passage of time for deploys, before any Salesforce route.
async fn faults_and_clock(State(org): State<Arc<Org>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let mut hold = std::time::Duration::ZERO;
    let mut truncate = false;
    if !path.starts_with("/__sandbox") {
        let verdict = org.fault_verdict(request.method().as_str(), &path);
        match verdict {
            Verdict::Proceed {
                delay,
                hold: held,
                truncate: cut,
            } => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                (hold, truncate) = (held, cut);
            }
            Verdict::Fail {
                delay,
                status,
                code,
                message,
            } => {
                tokio::time::sleep(delay).await;
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                rest::log_call(
                    &org,
                    request.method(),
                    &path,
                    status.as_u16(),
                    None,
                    vec!["injected fault".into()],
                    false,
                );
                return SfError::new(status, &code, message).into_response();
            }
            Verdict::Drop { delay } => {
                tokio::time::sleep(delay).await;
                rest::log_call(
                    &org,
                    request.method(),
                    &path,
                    0,
                    None,
                    vec!["injected drop".into()],
                    false,
                );
                if let Some(kill) = request.extensions().get::<ConnectionKill>() {
                    kill.0.cancel();
                }
                // The connection is gone; this response is never sent.
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        }
        let has_pending_deploys = org.read().deploys.values().any(|d| !d.done);
        if has_pending_deploys {
            let now = org.now();
            crate::metadata::advance(&mut org.write(), now);
        }
        // Assignments past their ExpirationDate are removed, as Salesforce removes them.
        let now = org.now();
        if crate::access::has_expired_assignments(&org.read(), now) {
            crate::access::remove_expired_assignments(&mut org.write(), now);
        }
    }
    let response = next.run(request).await;
    if !hold.is_zero() {
        tokio::time::sleep(hold).await;
    }
    if truncate {
        return truncated(response).await;
    }
    response
}

/// The response with only the first half of its body, then a broken stream: the server
/// closes the connection mid-body, as a download cut off by the network looks to a client.
async fn truncated(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "truncated by a sandbox fault rule",
        )),
    ];
    Response::from_parts(
        parts,
        axum::body::Body::from_stream(futures::stream::iter(chunks)),
    )
}

async fn not_found() -> Response {
    SfError::not_found().into_response()
}

fn router(org: Arc<Org>, control_state: ControlState) -> Router {
    let salesforce = Router::new()
        .route(
            "/services/oauth2/authorize",
            get(oauth::authorize_page).post(oauth::authorize_submit),
        )
        .route("/services/oauth2/token", post(oauth::token))
        .route(
            "/services/oauth2/revoke",
            post(oauth::revoke).get(oauth::revoke),
        )
        .route(
            "/services/oauth2/userinfo",
            get(oauth::userinfo).post(oauth::userinfo),
        )
        .route("/id/{org}/{user}", get(oauth::identity))
        .route("/services/data", get(rest::versions))
        .route("/services/data/", get(rest::versions))
        .route("/services/data/{version}", any(rest::entry))
        .route("/services/data/{version}/", any(rest::entry))
        .route("/services/data/{version}/{*rest}", any(rest::entry))
        .route("/services/Soap/m/{version}", post(soap::metadata))
        .route("/services/Soap/m/{version}/{org}", post(soap::metadata))
        .fallback(not_found)
        .with_state(org.clone());
    let home = Router::new()
        .route("/", get(control::home))
        .with_state(control_state.clone());
    Router::new()
        .merge(control::router(control_state))
        .merge(home)
        .merge(salesforce)
        .layer(axum::middleware::from_fn_with_state(org, faults_and_clock))
}
