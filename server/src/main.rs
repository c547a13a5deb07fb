//! The `portcullis` command: runs the portal (the default), and later tools around it.

// The workspace denies unwrap, expect and panic; unit tests may use them.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portcullis::{Application, Config, config, telemetry};

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Least-privilege, monitored Salesforce API access for contractors",
    after_help = settings_help()
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the portal (the default when no command is given).
    Serve,
    /// Run a standalone sandbox org: a local stand-in for a Salesforce org's HTTP API.
    SandboxOrg(SandboxArgs),
    /// Check the configured org (same settings as the portal) before the first grant: one
    /// line per check, `ok`, `warn` or `FAIL` with what to change in Setup. Exits 1 when a
    /// check fails.
    Doctor,
    /// Send the audit log again from an entry to the configured sinks (AUDIT_SYSLOG_URL,
    /// AUDIT_HEC_URL, AUDIT_WEBHOOK_URL; same settings as the portal), then exit. The live
    /// stream's cursors are left as they are: it neither goes back nor skips ahead.
    AuditStream(AuditStreamArgs),
}

#[derive(clap::Args)]
struct AuditStreamArgs {
    /// The first entry (seq) to send again; every entry after it up to the log's current
    /// head follows, in order.
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    from: i64,
    /// Only this sink: syslog, hec or webhook (default: every configured sink).
    #[arg(long, value_parser = parse_sink)]
    sink: Option<services::audit_stream::SinkKind>,
}

fn parse_sink(raw: &str) -> Result<services::audit_stream::SinkKind, String> {
    services::audit_stream::SinkKind::parse(raw)
}

#[derive(clap::Args)]
struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3900")]
    listen: std::net::SocketAddr,
    /// Directory for the org's state (kept across restarts) and its TLS certificate.
    #[arg(long)]
    state: std::path::PathBuf,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    http: bool,
    /// DailyApiRequests limit of a newly seeded org.
    #[arg(long, default_value_t = 15_000)]
    daily_api_limit: u64,
    /// A sign-in callback URL of the portal app (repeatable).
    #[arg(long = "portal-callback")]
    portal_callbacks: Vec<String>,
    /// A JSON file with fault rules ({"rules": [...]}) in force from the start.
    #[arg(long)]
    faults: Option<std::path::PathBuf>,
    /// The kind of org to stand in for: production, sandbox or developer. It decides which
    /// JWT bearer audiences are accepted (the My Domain URL always; login.salesforce.com in
    /// production and developer orgs). Default: the stored org's kind; a new org is a sandbox.
    #[arg(long, value_parser = parse_kind)]
    kind: Option<sandbox_org::store::OrgKind>,
    /// Seconds before a newly deployed app's credentials work, as a real org takes a while
    /// (default: the stored setting; a new org waits 2 seconds).
    #[arg(long)]
    app_activation_seconds: Option<u64>,
}

fn parse_kind(raw: &str) -> Result<sandbox_org::store::OrgKind, String> {
    sandbox_org::store::OrgKind::parse(raw)
        .ok_or_else(|| format!("'{raw}' is not a kind of org (production, sandbox or developer)"))
}

fn settings_help() -> String {
    config::help_text()
}

/// Prints a line for the operator. A closed stdout (say, a pipe whose reader went away) is
/// not a reason to stop serving, so write errors are ignored rather than panicking.
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(),
        Command::SandboxOrg(args) => sandbox_org(args),
        Command::Doctor => doctor(),
        Command::AuditStream(args) => audit_stream(args),
    }
}

fn audit_stream(args: AuditStreamArgs) -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("portcullis audit-stream: {e}");
            return ExitCode::from(2);
        }
    };
    let _ = telemetry::init(config.log_format, &config.log_level, None);
    portcullis::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("portcullis audit-stream: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match portcullis::backfill::run(config, args.from, args.sink).await {
            Ok(sent) => {
                for (sink, entries) in sent {
                    say(&format!(
                        "{}: sent {entries} entries from entry {}",
                        sink.as_str(),
                        args.from
                    ));
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("portcullis audit-stream: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn doctor() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("portcullis doctor: {e}");
            return ExitCode::from(2);
        }
    };
    // The doctor's few calls are not traced.
    let _ = telemetry::init(config.log_format, "warn", None);
    portcullis::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("portcullis doctor: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let portal_url = match &config.public_url {
            Some(url) => url.as_str().trim_end_matches('/').to_string(),
            None => format!("http://{}", config.listen_addr),
        };
        // In the default mode there is no org to configure: the doctor checks a freshly
        // seeded built-in sandbox org (in memory), which is complete by construction.
        let mut sandbox = None;
        let org = match &config.salesforce {
            portcullis::config::SalesforceMode::Org(connection) => {
                portcullis::org::Org::real(connection, &portal_url)
            }
            portcullis::config::SalesforceMode::Sandbox { .. } => {
                say("SALESFORCE_MODE is sandbox: checking a freshly seeded built-in sandbox org (set SALESFORCE_MODE=org to check a real org)");
                let started = sandbox_org::SandboxOrg::start(sandbox_org::SandboxConfig {
                    portal_callbacks: vec![format!("{portal_url}/auth/callback")],
                    ..sandbox_org::SandboxConfig::default()
                })
                .await;
                match started {
                    Ok(org) => {
                        let built = portcullis::org::Org::sandbox(&org, &portal_url, None);
                        sandbox = Some(org);
                        built
                    }
                    Err(e) => {
                        eprintln!("portcullis doctor: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        };
        let org = match org {
            Ok(org) => org,
            Err(e) => {
                eprintln!("portcullis doctor: {e}");
                return ExitCode::from(2);
            }
        };
        say(&format!("Checking the org at {}", org.url));
        let checks = services::doctor::run(&org.client, &org.doctor).await;
        for check in &checks {
            say(&check.line());
        }
        let failed = checks
            .iter()
            .filter(|c| c.status == shared::doctor::CheckStatus::Fail)
            .count();
        if let Some(org) = sandbox {
            org.stop().await;
        }
        if failed == 0 {
            say("Nothing failed: the org is ready for the first grant.");
            ExitCode::SUCCESS
        } else {
            say(&format!(
                "{failed} check(s) failed: fix them in Setup (docs/real-org.md) and run portcullis doctor again."
            ));
            ExitCode::FAILURE
        }
    })
}

fn serve() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("portcullis: {e}");
            return ExitCode::from(2);
        }
    };
    portcullis::install_crypto_provider();
    // Before the runtime: the trace exporter's HTTP client is a blocking one.
    let telemetry = match telemetry::init(
        config.log_format,
        &config.log_level,
        config.otlp_endpoint.as_ref(),
    ) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("portcullis: {e}");
            return ExitCode::from(2);
        }
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("portcullis: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async move {
        let app = match Application::build(config).await {
            Ok(app) => app,
            Err(e) => {
                eprintln!("portcullis: {e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(url = %app.url(), "Portcullis is listening");
        say(&format!("Portcullis is running at {}", app.url()));
        if let Some(org) = app.sandbox_org() {
            say(&format!(
                "The built-in sandbox org (a local stand-in for Salesforce) is at {}",
                org.base_url()
            ));
            if let Some(cert) = app.sandbox_certificate_file() {
                say(&format!(
                    "  Its TLS certificate (trust it in clients): {}",
                    cert.display()
                ));
            }
        }
        match app.run_until_stopped().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("portcullis: server error: {e}");
                ExitCode::FAILURE
            }
        }
    });
    drop(runtime);
    // The spans of the last moments (shutdown, the final audit anchor) go out too.
    telemetry.shutdown();
    code
}

fn sandbox_org(args: SandboxArgs) -> ExitCode {
    let _ = telemetry::init(config::LogFormat::Text, "info", None);
    portcullis::install_crypto_provider();
    let faults = match &args.faults {
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| {
                #[derive(serde::Deserialize)]
                struct Rules {
                    rules: Vec<sandbox_org::FaultRule>,
                }
                serde_json::from_str::<Rules>(&t).map_err(|e| e.to_string())
            }) {
            Ok(rules) => rules.rules,
            Err(e) => {
                eprintln!("portcullis sandbox-org: --faults {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        None => Vec::new(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("portcullis sandbox-org: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let config = sandbox_org::SandboxConfig {
            listen: args.listen,
            state_dir: Some(args.state.clone()),
            https: !args.http,
            daily_api_limit: args.daily_api_limit,
            portal_callbacks: args.portal_callbacks,
            faults,
            kind: args.kind,
            app_activation_seconds: args.app_activation_seconds,
        };
        let org = match sandbox_org::SandboxOrg::start(config).await {
            Ok(org) => org,
            Err(e) => {
                eprintln!("portcullis {e}");
                return ExitCode::FAILURE;
            }
        };
        let key_path = args.state.join("portal-app-key.pem");
        if let Some(key) = org.portal_private_key_pem()
            && let Err(e) = sandbox_org::tls::write_private(&key_path, &key)
        {
            eprintln!("portcullis sandbox-org: {e}");
            return ExitCode::FAILURE;
        }
        print_sandbox_banner(&org, &args.state, &key_path);
        let stop = org.shutdown_token();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminate() => {}
            () = stop.cancelled() => {}
        }
        org.stop().await;
        ExitCode::SUCCESS
    })
}

async fn terminate() {
    #[cfg(unix)]
    {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await
}

fn print_sandbox_banner(
    org: &sandbox_org::SandboxOrg,
    state: &std::path::Path,
    key_path: &std::path::Path,
) {
    let credentials = org.credentials();
    say(&format!("Sandbox org running at {}", org.base_url()));
    if org.certificate_pem().is_some() {
        say(&format!(
            "  TLS certificate (trust it in clients): {}",
            state.join("cert.pem").display()
        ));
    }
    say(&format!(
        "  Org id: {}",
        credentials["orgId"].as_str().unwrap_or("")
    ));
    say(&format!(
        "  Org kind: {} (JWT audience: {})",
        match org.org.read().settings.kind {
            sandbox_org::store::OrgKind::Production => "production",
            sandbox_org::store::OrgKind::Sandbox => "sandbox",
            sandbox_org::store::OrgKind::Developer => "developer",
        },
        org.base_url()
    ));
    say(&format!(
        "  Portal app client id: {}",
        credentials["portalClientId"].as_str().unwrap_or("")
    ));
    say(&format!(
        "  Portal app client secret: {}",
        credentials["portalClientSecret"].as_str().unwrap_or("")
    ));
    say(&format!("  Portal app JWT key: {}", key_path.display()));
    say(&format!(
        "  Provisioning user: {}",
        credentials["provisionerUsername"].as_str().unwrap_or("")
    ));
    say("  People who can sign in:");
    for person in credentials["people"].as_array().into_iter().flatten() {
        say(&format!(
            "    {:<12} {:<34} password {:<20} {}",
            person["name"].as_str().unwrap_or(""),
            person["username"].as_str().unwrap_or(""),
            person["password"].as_str().unwrap_or(""),
            person["role"].as_str().unwrap_or("")
        ));
    }
    say(&format!("  Control API: {}/__sandbox", org.base_url()));
}
