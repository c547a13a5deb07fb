//! The configuration as an operator meets it: defaults, bad values named, files, secrets.

use super::*;
use std::collections::HashMap;
use std::time::Duration;

fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::load(|k| map.get(k).cloned())
}

#[test]
fn defaults_are_the_embedded_mode() {
    let config = load(&[]).expect("defaults are valid");
    assert_eq!(config.listen_addr.to_string(), "127.0.0.1:3000");
    assert_eq!(config.database_url.kind(), DatabaseKind::Sqlite);
    assert_eq!(
        config.database_url.sqlite_path(),
        Some(PathBuf::from("data/portcullis.db"))
    );
    assert_eq!(config.log_format, LogFormat::Text);
    assert!(!config.serves_https());
}

#[test]
fn every_bad_value_names_its_setting() {
    for (key, value) in [
        ("LISTEN_ADDR", "localhost"),
        ("LISTEN_ADDR", "127.0.0.1:99999"),
        ("LISTEN_ADDR", "example.com:80"),
        ("DATABASE_URL", "mysql://root@localhost/db"),
        ("DATABASE_URL", "postgres://"),
        ("DATABASE_URL", "sqlite://"),
        ("PUBLIC_URL", "ftp://example.com"),
        ("PUBLIC_URL", "not a url"),
        ("LOG_FORMAT", "xml"),
        ("LOG_LEVEL", "=== nope"),
        ("DATABASE_MAX_CONNECTIONS", "0"),
        ("DATABASE_MAX_CONNECTIONS", "ten"),
        ("SESSION_IDLE_MINUTES", "-5"),
        ("SALESFORCE_MODE", "production"),
        ("SANDBOX_ORG_LISTEN", "nowhere"),
        ("SMTP_URL", "mail.example.com:25"),
        ("MAIL_FROM", "not an address"),
        ("METRICS_TOKEN", "short"),
        ("METRICS_TOKEN", "has a space in the middle"),
        ("APPROVALS_REQUIRED", "3"),
        ("REVEAL_LINK_HOURS", "0"),
        ("REVEAL_LINK_HOURS", "three days"),
        ("REVEAL_REPORT_HOURS", "0"),
        ("REVEAL_REPORT_HOURS", "a week"),
        ("AUDIT_ANCHOR_EVERY", "0"),
        ("AUDIT_ANCHOR_EVERY", "often"),
        ("USAGE_COLLECT_SECONDS", "5"),
        ("USAGE_COLLECT_SECONDS", "hourly"),
        ("ALERT_WEBHOOK_URL", "hooks.example.com/x"),
        ("ALERT_WEBHOOK_SECRET", "0123456789abcdef"),
        ("INTEGRATION_LICENCES_INCLUDED", "five"),
        ("INTEGRATION_LICENCE_PRICE", "ten dollars"),
        ("INTEGRATION_LICENCE_PRICE", "10.005"),
        ("SALESFORCE_ORG_ID", "005000000000001"),
        ("SESSION_MAX_HOURS", "0"),
        ("SESSION_RECHECK_MINUTES", "61"),
        ("HTTP_HEADER_TIMEOUT_SECONDS", "0"),
        ("HTTP_REQUEST_TIMEOUT_SECONDS", "forever"),
        ("HTTP_MAX_CONCURRENT_REQUESTS", "0"),
        ("SALESFORCE_ORG_ID", "acme"),
        ("TRUSTED_PROXIES", "10.0.0.0/0"),
        ("AUTH_RATE_LIMIT_PER_MINUTE", "0"),
        ("AUDIT_SYSLOG_URL", "udp://siem.example:514"),
        ("AUDIT_SYSLOG_URL", "tcp://siem.example"),
        ("AUDIT_SYSLOG_URL", "siem.example:514"),
        ("AUDIT_HEC_URL", "splunk.example:8088"),
        ("AUDIT_HEC_URL", "ftp://splunk.example"),
        ("AUDIT_HEC_TOKEN", "0123456789abcdef"),
        ("AUDIT_WEBHOOK_URL", "hooks.example.com/audit"),
        ("AUDIT_WEBHOOK_SECRET", "0123456789abcdef"),
        ("AUDIT_STREAM_CA_FILE", "/nonexistent/ca.pem"),
        ("AUDIT_STREAM_BATCH", "0"),
        ("AUDIT_STREAM_INTERVAL_MS", "10"),
    ] {
        let err = load(&[(key, value)]).expect_err(&format!("{key}={value} must be refused"));
        assert_eq!(err.setting, key, "{key}={value}: {err}");
        let line = err.to_string();
        assert!(line.contains(key), "{line}");
        assert!(!line.contains('\n'), "one line: {line}");
    }
}

#[test]
fn usage_settings_are_read_and_the_webhook_secret_stays_hidden() {
    let config = load(&[]).unwrap();
    assert_eq!(config.usage_collect_every, Some(Duration::from_secs(600)));
    assert!(config.alert_webhook.is_none());
    assert_eq!(config.licences.included, 5);
    assert_eq!(config.licences.price_cents, 1000);
    let config = load(&[
        ("USAGE_COLLECT_SECONDS", "0"),
        ("ALERT_WEBHOOK_URL", "https://hooks.example.com/portcullis"),
        ("ALERT_WEBHOOK_SECRET", "a-long-signing-secret"),
        ("INTEGRATION_LICENCES_INCLUDED", "1"),
        ("INTEGRATION_LICENCE_PRICE", "12.5"),
    ])
    .unwrap();
    assert_eq!(config.usage_collect_every, None);
    assert_eq!(config.licences.included, 1);
    assert_eq!(config.licences.price_cents, 1250);
    assert_eq!(
        config.alert_webhook.as_ref().map(|w| w.url.as_str()),
        Some("https://hooks.example.com/portcullis")
    );
    assert!(!format!("{config:?}").contains("a-long-signing-secret"));
    let short = load(&[
        ("ALERT_WEBHOOK_URL", "https://hooks.example.com/x"),
        ("ALERT_WEBHOOK_SECRET", "short"),
    ])
    .unwrap_err();
    assert_eq!(short.setting, "ALERT_WEBHOOK_SECRET");
    assert_eq!(usage::parse_price("$7").unwrap(), 700);
    assert_eq!(usage::parse_price("0.05").unwrap(), 5);
}

#[test]
fn org_mode_names_each_missing_connection_setting() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, "not checked here").unwrap();
    let key = key.to_string_lossy().to_string();
    let org = ("SALESFORCE_MODE", "org");
    let url = ("SALESFORCE_URL", "https://acme.my.salesforce.com");
    let id = ("SALESFORCE_CLIENT_ID", "3MVG9example");
    for (pairs, missing) in [
        (vec![org], "SALESFORCE_URL"),
        (vec![org, ("SALESFORCE_URL", "acme")], "SALESFORCE_URL"),
        (vec![org, url], "SALESFORCE_CLIENT_ID"),
        (vec![org, url, id], "SALESFORCE_JWT_KEY_FILE"),
        (
            vec![
                org,
                url,
                id,
                ("SALESFORCE_JWT_KEY_FILE", "/nonexistent.pem"),
            ],
            "SALESFORCE_JWT_KEY_FILE",
        ),
        (
            vec![org, url, id, ("SALESFORCE_JWT_KEY_FILE", key.as_str())],
            "SALESFORCE_USERNAME",
        ),
    ] {
        assert_eq!(load(&pairs).unwrap_err().setting, missing, "{pairs:?}");
    }
    let config = load(&[org, url, id, ("SALESFORCE_CLIENT_SECRET", "s3cr3t-value")]).unwrap();
    assert!(
        matches!(&config.salesforce, SalesforceMode::Org(c) if matches!(c.auth, OrgAuth::ClientCredentials { .. }))
    );
    assert!(
        !format!("{config:?}").contains("s3cr3t-value"),
        "secrets stay out of Debug output"
    );
    assert!(matches!(
        load(&[]).unwrap().salesforce,
        SalesforceMode::Sandbox { .. }
    ));
}

#[test]
fn mail_to_a_remote_server_must_be_encrypted() {
    // Plain smtp:// (and opportunistic STARTTLS, which a network attacker can strip)
    // would send codes and links in clear text.
    for plaintext in [
        "smtp://user:hunter2@mail.example.com:587",
        "smtp://mail.example.com",
        "smtp://mail.example.com:25?tls=opportunistic",
        "smtp://10.0.0.5:587",
    ] {
        let err =
            load(&[("SMTP_URL", plaintext)]).expect_err(&format!("{plaintext} must be refused"));
        assert_eq!(err.setting, "SMTP_URL");
        let line = err.to_string();
        assert!(line.contains("tls=required"), "{line}");
        assert!(line.contains("smtps://"), "{line}");
        assert!(!line.contains("hunter2"), "{line}");
    }
    for encrypted in [
        "smtp://user:pass@mail.example.com:587?tls=required",
        "smtps://user:pass@mail.example.com:465",
        "smtps://mail.example.com",
    ] {
        assert!(load(&[("SMTP_URL", encrypted)]).is_ok(), "{encrypted}");
    }
    // A relay on this machine may be plain: nothing crosses a network.
    for loopback in [
        "smtp://127.0.0.1:2525",
        "smtp://localhost:25",
        "smtp://[::1]:25",
        "smtp://127.0.0.2:25?tls=opportunistic",
    ] {
        let loaded = load(&[("SMTP_URL", loopback)]);
        assert!(loaded.is_ok(), "{loopback}: {:?}", loaded.err());
    }
}

#[test]
fn the_sandbox_org_is_not_served_to_the_network_by_accident() {
    for (key, value) in [
        ("LISTEN_ADDR", "0.0.0.0:3000"),
        ("LISTEN_ADDR", "192.0.2.10:3000"),
        ("LISTEN_ADDR", "[::]:3000"),
        ("SANDBOX_ORG_LISTEN", "0.0.0.0:3900"),
    ] {
        let err = load(&[(key, value)]).expect_err(&format!("{key}={value}"));
        let line = err.to_string();
        assert!(
            line.contains("SALESFORCE_MODE") && line.contains("SANDBOX_PUBLIC"),
            "{key}={value}: {line}"
        );
        assert!(!line.contains('\n'), "{line}");
        // On purpose, it is allowed.
        assert!(
            load(&[(key, value), ("SANDBOX_PUBLIC", "1")]).is_ok(),
            "{key}={value} with SANDBOX_PUBLIC=1"
        );
    }
    for loopback in ["127.0.0.1:3000", "[::1]:3000", "127.0.0.5:3000"] {
        assert!(load(&[("LISTEN_ADDR", loopback)]).is_ok(), "{loopback}");
    }
    let err = load(&[("SANDBOX_PUBLIC", "yes please")]).unwrap_err();
    assert_eq!(err.setting, "SANDBOX_PUBLIC");
    // A real org has no outbox page and no sandbox: any address will do.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, "not checked here").unwrap();
    let key = key.to_string_lossy().to_string();
    assert!(
        load(&[
            ("LISTEN_ADDR", "0.0.0.0:3000"),
            ("SALESFORCE_MODE", "org"),
            ("SALESFORCE_URL", "https://acme.my.salesforce.com"),
            ("SALESFORCE_CLIENT_ID", "3MVG9example"),
            ("SALESFORCE_JWT_KEY_FILE", key.as_str()),
            ("SALESFORCE_USERNAME", "portal@acme.example"),
        ])
        .is_ok()
    );
}

#[test]
fn database_passwords_never_appear_in_messages() {
    let url = DatabaseUrl::parse("postgres://app:hunter2@db.internal/portcullis").unwrap();
    assert_eq!(url.kind(), DatabaseKind::Postgres);
    assert!(!url.to_string().contains("hunter2"));
    assert!(!format!("{url:?}").contains("hunter2"));
    let err = load(&[("DATABASE_URL", "mysql://app:hunter2@db/x")]).unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn file_settings_apply_and_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.toml");
    std::fs::write(
        &path,
        "listen_addr = \"127.0.0.1:4000\"\nlog_format = \"json\"\nsession_idle_minutes = 30\n",
    )
    .unwrap();
    let path = path.to_string_lossy().to_string();
    let config = load(&[("PORTCULLIS_CONFIG", &path), ("LOG_FORMAT", "text")]).unwrap();
    assert_eq!(config.listen_addr.port(), 4000);
    assert_eq!(config.log_format, LogFormat::Text);
    assert_eq!(config.session_idle, Duration::from_secs(30 * 60));
}

#[test]
fn bad_files_are_reported_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "listen_adr = \"127.0.0.1:1\"\n").unwrap();
    let path = path.to_string_lossy().to_string();
    let err = load(&[("PORTCULLIS_CONFIG", &path)]).unwrap_err();
    assert_eq!(err.setting, "PORTCULLIS_CONFIG");
    assert!(err.to_string().contains("listen_adr"), "{err}");
    assert!(!err.to_string().contains('\n'), "{err}");

    let err = load(&[("PORTCULLIS_CONFIG", "/nonexistent/portcullis.toml")]).unwrap_err();
    assert_eq!(err.setting, "PORTCULLIS_CONFIG");
}

#[test]
fn every_documented_setting_can_come_from_the_file_and_no_other() {
    let documented: Vec<&str> = all_settings()
        .into_iter()
        .filter(|s| s.in_file())
        .map(|s| s.name())
        .collect();
    assert!(!documented.contains(&"PORTCULLIS_CONFIG"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("every.toml");
    let text: String = documented
        .iter()
        .map(|name| format!("{} = \"x\"\n", name.to_ascii_lowercase()))
        .collect();
    std::fs::write(&path, text).unwrap();
    let file = read_file(&path).expect("every documented key is accepted");
    let no_env = |_: &str| -> Option<String> { None };
    let source = Source::new(&no_env, file);
    for name in &documented {
        assert_eq!(
            source.get(name).as_deref(),
            Some("x"),
            "{name} is read from the file"
        );
    }
    // The file takes no key the documentation does not list.
    std::fs::write(&path, "portcullis_config = \"x\"\n").unwrap();
    let err = read_file(&path).unwrap_err();
    assert!(err.to_string().contains("portcullis_config"), "{err}");
}

/// The settings table between `| variable | default | meaning |` and the next blank line.
fn readme_settings_table() -> String {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("| variable | default | meaning |")
        .expect("the README has a settings table");
    readme[start..]
        .lines()
        .take_while(|line| line.starts_with('|'))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[test]
fn the_readme_lists_exactly_the_declared_settings() {
    let readme = readme_settings_table();
    let names = |table: &str| -> Vec<String> {
        table
            .lines()
            .skip(2)
            .filter_map(|line| line.split('`').nth(1).map(str::to_string))
            .collect()
    };
    let (documented, declared) = (names(&readme), names(&readme_table()));
    for name in &documented {
        assert!(
            declared.contains(name),
            "the README lists {name}, which the code does not have"
        );
    }
    for name in &declared {
        assert!(
            documented.contains(name),
            "the code has {name}, which the README does not list"
        );
    }
    assert!(
        readme == readme_table(),
        "the README's settings table differs from the declarations; it should read:\n{}",
        readme_table()
    );
}

#[test]
fn help_lists_every_setting_with_its_default() {
    let help = help_text();
    for setting in all_settings() {
        let line = help
            .lines()
            .find(|line| {
                line.trim_start()
                    .starts_with(&format!("{} ", setting.name()))
            })
            .unwrap_or_else(|| panic!("--help lists {}", setting.name()));
        if let Some(default) = setting.default_markdown() {
            assert!(line.contains(&default.replace('`', "")), "{line}");
        }
    }
    assert!(help.contains("LISTEN_ADDR") && help.contains("default 127.0.0.1:3000"));
}

#[test]
fn every_default_value_is_valid_for_its_setting() {
    // A default is parsed as if it had been configured: a bad one would stop every start-up.
    let config = load(&[]).expect("defaults are valid");
    assert_eq!(config.shutdown_grace, Duration::from_secs(10));
    assert_eq!(config.provisioning_workers, 2);
    assert_eq!(config.mail_from, "Portcullis <portcullis@localhost>");
    assert_eq!(
        config.roles.owner_permission_set.as_deref(),
        Some("Portcullis_Owner")
    );
    assert!(config.trusted_proxies.is_empty());
    assert!(config.smtp_url.is_none());
}

#[test]
fn the_metrics_token_is_read_and_never_printed() {
    let config = load(&[("METRICS_TOKEN", "  scrape-me-with-this-token-42  ")]).unwrap();
    let token = config.metrics_token.as_ref().expect("the token is set");
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(token),
        "scrape-me-with-this-token-42"
    );
    let printed = format!("{config:?}");
    assert!(!printed.contains("scrape-me-with-this-token"), "{printed}");
    assert!(load(&[]).unwrap().metrics_token.is_none());
    let err = load(&[("METRICS_TOKEN", "tiny")]).unwrap_err().to_string();
    assert!(
        err.contains("METRICS_TOKEN") && !err.contains("tiny"),
        "{err}"
    );
}

#[test]
fn debug_output_hides_the_smtp_password() {
    let config = load(&[(
        "SMTP_URL",
        "smtps://mailer:correct-horse-battery@mail.example.com:465",
    )])
    .unwrap();
    let printed = format!("{config:?}");
    assert!(!printed.contains("correct-horse-battery"), "{printed}");
    assert!(printed.contains("smtp_url"), "{printed}");
}

#[test]
fn audit_stream_sinks_are_read_and_a_missing_partner_is_named() {
    use services::audit_stream::SinkConfig;
    let config = load(&[
        ("AUDIT_SYSLOG_URL", "tls://siem.example:6514"),
        ("AUDIT_HEC_URL", "https://splunk.example:8088"),
        ("AUDIT_HEC_TOKEN", "hec-token-0123456789abcdef"),
        ("AUDIT_WEBHOOK_URL", "https://hooks.example/audit"),
        ("AUDIT_WEBHOOK_SECRET", "webhook-key-0123456789"),
        ("PUBLIC_URL", "https://portal.example"),
    ])
    .unwrap();
    let stream = &config.audit_stream;
    assert_eq!(stream.sinks.len(), 3);
    assert_eq!(stream.hostname, "portal.example");
    assert_eq!(stream.batch, 500);
    match &stream.sinks[1] {
        SinkConfig::Hec(hec) => assert_eq!(
            hec.url.as_str(),
            "https://splunk.example:8088/services/collector/event"
        ),
        other => panic!("{other:?}"),
    }
    let debug = format!("{config:?}");
    assert!(!debug.contains("hec-token-0123456789abcdef"), "{debug}");
    assert!(!debug.contains("webhook-key-0123456789"), "{debug}");
    assert!(load(&[]).unwrap().audit_stream.sinks.is_empty());

    // A URL without its secret (or the other way round) names the setting to add.
    let err = load(&[("AUDIT_HEC_URL", "https://splunk.example:8088")]).unwrap_err();
    assert_eq!(err.setting, "AUDIT_HEC_TOKEN", "{err}");
    assert!(
        err.to_string().contains("is required with AUDIT_HEC_URL"),
        "{err}"
    );
    let err = load(&[("AUDIT_WEBHOOK_URL", "https://hooks.example/audit")]).unwrap_err();
    assert_eq!(err.setting, "AUDIT_WEBHOOK_SECRET", "{err}");
    // A bad scheme says what to use; a short token is not echoed.
    let err = load(&[("AUDIT_SYSLOG_URL", "udp://siem.example:514")]).unwrap_err();
    assert!(
        err.to_string()
            .contains("tcp://host:port or tls://host:port"),
        "{err}"
    );
    let err = load(&[
        ("AUDIT_HEC_URL", "https://splunk.example"),
        ("AUDIT_HEC_TOKEN", "tiny-secret"),
    ])
    .unwrap_err();
    assert_eq!(err.setting, "AUDIT_HEC_TOKEN");
    assert!(!err.to_string().contains("tiny-secret"), "{err}");
    // Credentials in the collector's URL are refused without being repeated.
    let err = load(&[
        ("AUDIT_HEC_URL", "https://admin:hunter2@splunk.example"),
        ("AUDIT_HEC_TOKEN", "hec-token-0123456789abcdef"),
    ])
    .unwrap_err();
    assert_eq!(err.setting, "AUDIT_HEC_URL");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}
