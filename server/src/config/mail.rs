//! Settings of outgoing mail.

use secrecy::SecretString;
use url::Url;

use super::setting::settings;
use super::storage::redact_url;

settings! {
    /// Where mail goes and who sends it.
    pub const MAIL = [
        SMTP_URL: SecretString {
            default: None,
            parse: |raw| {
                let raw = raw.trim();
                check_smtp_url(raw)?;
                Ok(SecretString::from(raw))
            },
            help: "`smtps://user:pass@host:465` (TLS) or `smtp://user:pass@host:587?tls=required` (STARTTLS, refused if the server does not offer it); plain `smtp://` (or `tls=opportunistic`) only to a relay on this machine (`localhost`, `127.0.0.1`, `::1`), anything else stops start-up; unset, mail stays in the sandbox outbox at `/outbox`",
        },
        MAIL_FROM: String {
            default: Value("Portcullis <portcullis@localhost>"),
            parse: |raw| match raw.parse::<lettre::message::Mailbox>() {
                Ok(_) => Ok(raw.to_string()),
                Err(_) => Err(format!(
                    "'{raw}' is not a sender address such as Portcullis <portcullis@example.com>"
                )),
            },
            help: "the sender of the portal's mail",
        },
    ];
}

/// Mail carries verification codes and capability links, so it leaves this machine only
/// encrypted: `smtps://` (TLS from the start) or `smtp://…?tls=required` (STARTTLS, refused
/// if the server does not offer it). lettre sends a plain `smtp://` URL, and one with
/// `tls=opportunistic` to a server that does not offer STARTTLS, in clear text, which is
/// fine only for a relay on this machine.
fn check_smtp_url(raw: &str) -> Result<(), String> {
    let shown = redact_url(raw);
    let url = Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "smtp" | "smtps"))
        .ok_or_else(|| format!("'{shown}' is not an smtp:// or smtps:// URL"))?;
    let Some(host) = url.host() else {
        return Err(format!("'{shown}' names no host"));
    };
    if url.scheme() == "smtps" {
        return Ok(());
    }
    let tls = url
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    // smtp: is not a "special" scheme, so the url crate leaves an IPv4 host as a name.
    let loopback = match host {
        url::Host::Domain(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    match tls.as_deref() {
        Some("required") => Ok(()),
        None | Some("opportunistic") if loopback => Ok(()),
        None | Some("opportunistic") => Err(format!(
            "'{shown}' would send mail, with its codes and links, unencrypted: add ?tls=required \
             (STARTTLS, usually port 587) or use smtps:// (TLS, usually port 465); plain smtp:// \
             is only for a relay on this machine (localhost, 127.0.0.1, ::1)"
        )),
        Some(other) => Err(format!(
            "'{shown}': tls={other} is not understood (use tls=required, or smtps://)"
        )),
    }
}
