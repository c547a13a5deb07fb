//! The four anomaly rules, as pure functions of a grant and its windows (one user's hours,
//! read from the ApiTotalUsage files by [`crate::usage::windows`]). What they find is
//! raised by [`super::evaluate`]; the thresholds are the constants below (the README's
//! "Anomaly alerts" lists them).
//!
//! The hour the grant was set up in is not judged by the share of 4xx answers nor by
//! volume, and addresses and objects count only for calls after it: the least-privilege
//! proof runs as the contractor just before, and is meant to be refused.

use serde_json::{Value, json};
use shared::fields::Cidr;

use crate::usage::windows::ValueKind;

/// A window is judged on its 4xx answers from this many calls...
pub const CLIENT_ERROR_MIN_CALLS: u64 = 20;
/// ...when at least this share of them (percent) was answered 400 to 499.
pub const CLIENT_ERROR_PERCENT: u64 = 50;
/// The baseline: the grant's hours with calls in the 7 days before the window...
pub const BASELINE_HOURS: i64 = 7 * 24;
/// ...of which at least this many are needed to judge volume at all...
pub const BASELINE_MIN_HOURS: usize = 6;
/// ...and a window is far above it with more than this many times their median...
pub const BASELINE_FACTOR: u64 = 5;
/// ...and at least this many calls.
pub const BASELINE_MIN_CALLS: u64 = 100;
/// Values listed in an anomaly's figures at most (the count of all is kept).
const MAX_LISTED: usize = 10;

const HOUR_MS: i64 = 3_600_000;

/// What a rule found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A high share of calls answered 4xx.
    ClientErrors,
    /// Calls touching an object outside the grant's approved scope.
    OutsideScope,
    /// Calls from outside the approved IP ranges.
    OutsideIpRanges,
    /// An hour's calls far above the grant's own baseline.
    AboveBaseline,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::ClientErrors,
        Kind::OutsideScope,
        Kind::OutsideIpRanges,
        Kind::AboveBaseline,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ClientErrors => "client_errors",
            Kind::OutsideScope => "outside_scope",
            Kind::OutsideIpRanges => "outside_ip_ranges",
            Kind::AboveBaseline => "above_baseline",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// How the pages and the mail name it.
    pub fn label(self) -> &'static str {
        match self {
            Kind::ClientErrors => "Many calls refused (4xx)",
            Kind::OutsideScope => "Objects outside the grant",
            Kind::OutsideIpRanges => "Calls from outside the IP ranges",
            Kind::AboveBaseline => "Volume far above the usual",
        }
    }
}

/// One user's hour, as the rules read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    pub hour_start: i64,
    pub calls: u64,
    pub client_errors: u64,
    /// (kind, value, calls, latest call)
    pub values: Vec<(ValueKind, String, u64, i64)>,
}

/// What the rules know of a grant.
#[derive(Debug, Clone, Default)]
pub struct GrantFacts {
    /// The approved scope's objects.
    pub objects: Vec<String>,
    /// The approved IP ranges (none: any address).
    pub ranges: Vec<Cidr>,
    /// When its provisioning last finished a step (the proof, the IP ranges), Unix ms.
    pub setup_at: i64,
}

/// One anomaly found in one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub kind: Kind,
    pub window_start: i64,
    /// The observed figures (and the thresholds they crossed).
    pub figures: Value,
    /// One line for people.
    pub summary: String,
}

/// Every anomaly in `windows` (sorted by hour, one per hour), in hour order.
pub fn judge(grant: &GrantFacts, windows: &[Window]) -> Vec<Finding> {
    let mut found = Vec::new();
    for (i, window) in windows.iter().enumerate() {
        let whole_hour_after_setup = window.hour_start >= grant.setup_at;
        if whole_hour_after_setup {
            found.extend(client_errors(window));
            found.extend(above_baseline(grant, &windows[..i], window));
        }
        found.extend(outside_scope(grant, window));
        found.extend(outside_ip_ranges(grant, window));
    }
    found
}

fn client_errors(window: &Window) -> Option<Finding> {
    let (calls, errors) = (window.calls, window.client_errors);
    if calls < CLIENT_ERROR_MIN_CALLS || errors * 100 < CLIENT_ERROR_PERCENT * calls {
        return None;
    }
    let share = errors * 100 / calls;
    Some(Finding {
        kind: Kind::ClientErrors,
        window_start: window.hour_start,
        figures: json!({
            "calls": calls,
            "client_errors": errors,
            "share_percent": share,
            "threshold_percent": CLIENT_ERROR_PERCENT,
            "min_calls": CLIENT_ERROR_MIN_CALLS,
        }),
        summary: format!("{errors} of {calls} calls answered 4xx ({share}%)"),
    })
}

/// The median of `values` (not empty), the lower of the middle two for an even count's
/// average rounded down.
fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2
    }
}

fn above_baseline(grant: &GrantFacts, before: &[Window], window: &Window) -> Option<Finding> {
    if window.calls < BASELINE_MIN_CALLS {
        return None;
    }
    let since = window.hour_start - BASELINE_HOURS * HOUR_MS;
    let mut baseline: Vec<u64> = before
        .iter()
        .filter(|w| {
            w.hour_start >= since
                && w.hour_start < window.hour_start
                && w.hour_start >= grant.setup_at
                && w.calls > 0
        })
        .map(|w| w.calls)
        .collect();
    if baseline.len() < BASELINE_MIN_HOURS {
        return None;
    }
    let hours = baseline.len();
    let median = median(&mut baseline);
    if window.calls <= BASELINE_FACTOR * median {
        return None;
    }
    Some(Finding {
        kind: Kind::AboveBaseline,
        window_start: window.hour_start,
        figures: json!({
            "calls": window.calls,
            "baseline_median": median,
            "baseline_hours": hours,
            "factor": BASELINE_FACTOR,
            "min_calls": BASELINE_MIN_CALLS,
        }),
        summary: format!(
            "{} calls in the hour, over {BASELINE_FACTOR} × the median of {median} of its previous {hours} hours with calls",
            window.calls
        ),
    })
}

/// Entity names that are not objects (UNCONFIRMED which ones Salesforce writes; a value
/// that is not an API name at all — empty, with spaces, slashes or dots — is skipped too).
const NOT_OBJECTS: &[&str] = &["null", "none", "unknown", "n/a"];

/// Whether an `ENTITY_NAME` value names an object.
pub fn is_object_name(entity: &str) -> bool {
    crate::names::is_api_name(entity) && !NOT_OBJECTS.iter().any(|n| n.eq_ignore_ascii_case(entity))
}

/// The window's values of `kind` from calls after the grant was set up.
fn after_setup<'a>(
    grant: &'a GrantFacts,
    window: &'a Window,
    kind: ValueKind,
) -> impl Iterator<Item = (&'a str, u64)> + 'a {
    window
        .values
        .iter()
        .filter(move |(k, _, _, last_at)| *k == kind && *last_at > grant.setup_at)
        .map(|(_, value, calls, _)| (value.as_str(), *calls))
}

fn listed(values: &[(&str, u64)], key: &str) -> Value {
    Value::Array(
        values
            .iter()
            .take(MAX_LISTED)
            .map(|(value, calls)| {
                let mut entry = serde_json::Map::new();
                entry.insert(key.to_string(), json!(value));
                entry.insert("calls".to_string(), json!(calls));
                Value::Object(entry)
            })
            .collect(),
    )
}

fn outside_scope(grant: &GrantFacts, window: &Window) -> Option<Finding> {
    let outside: Vec<(&str, u64)> = after_setup(grant, window, ValueKind::Entity)
        .filter(|(entity, _)| {
            is_object_name(entity) && !grant.objects.iter().any(|o| o.eq_ignore_ascii_case(entity))
        })
        .collect();
    if outside.is_empty() {
        return None;
    }
    let calls: u64 = outside.iter().map(|(_, c)| c).sum();
    let names: Vec<&str> = outside.iter().map(|(e, _)| *e).take(MAX_LISTED).collect();
    Some(Finding {
        kind: Kind::OutsideScope,
        window_start: window.hour_start,
        figures: json!({
            "objects": listed(&outside, "object"),
            "objects_count": outside.len(),
            "calls": calls,
            "approved": grant.objects,
        }),
        summary: format!(
            "{calls} call(s) touching {} (approved: {})",
            names.join(", "),
            grant.objects.join(", ")
        ),
    })
}

/// `ip` as a one-address range (an IPv4-mapped IPv6 address as IPv4); None when it is not
/// an address (`Salesforce.com IP` for internal calls).
fn single(ip: &str) -> Option<Cidr> {
    let address: std::net::IpAddr = ip.parse().ok()?;
    let single = match address {
        std::net::IpAddr::V4(v4) => format!("{v4}/32"),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("{v4}/32"),
            None => format!("{v6}/128"),
        },
    };
    Cidr::parse(&single).ok()
}

fn outside_ip_ranges(grant: &GrantFacts, window: &Window) -> Option<Finding> {
    if grant.ranges.is_empty() {
        return None;
    }
    let outside: Vec<(&str, u64)> = after_setup(grant, window, ValueKind::Ip)
        .filter(|(ip, _)| single(ip).is_some_and(|c| !c.covered_by(&grant.ranges)))
        .collect();
    if outside.is_empty() {
        return None;
    }
    let calls: u64 = outside.iter().map(|(_, c)| c).sum();
    let addresses: Vec<&str> = outside.iter().map(|(ip, _)| *ip).take(MAX_LISTED).collect();
    let ranges: Vec<String> = grant.ranges.iter().map(ToString::to_string).collect();
    Some(Finding {
        kind: Kind::OutsideIpRanges,
        window_start: window.hour_start,
        figures: json!({
            "addresses": listed(&outside, "address"),
            "addresses_count": outside.len(),
            "calls": calls,
            "approved": ranges,
        }),
        summary: format!(
            "{calls} call(s) from {} (approved: {})",
            addresses.join(", "),
            ranges.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = HOUR_MS;

    fn grant() -> GrantFacts {
        GrantFacts {
            objects: vec!["Case".into()],
            ranges: vec![Cidr::parse("203.0.113.0/24").unwrap()],
            setup_at: 10 * H + 60_000,
        }
    }

    fn window(hour: i64, calls: u64, errors: u64) -> Window {
        Window {
            hour_start: hour * H,
            calls,
            client_errors: errors,
            values: vec![],
        }
    }

    fn kinds(found: &[Finding]) -> Vec<(Kind, i64)> {
        found.iter().map(|f| (f.kind, f.window_start / H)).collect()
    }

    #[test]
    fn client_errors_need_the_share_and_the_calls() {
        let g = grant();
        let found = judge(
            &g,
            &[
                window(11, 20, 10),
                window(12, 19, 19),
                window(13, 40, 19),
                window(10, 40, 40),
            ],
        );
        assert_eq!(
            kinds(&found),
            [(Kind::ClientErrors, 11)],
            "50% of 20 is enough; 19 calls are too few; 19 of 40 too little; the set-up hour is not judged"
        );
        assert_eq!(found[0].figures["share_percent"], 50);
    }

    #[test]
    fn volume_is_judged_against_the_grants_own_median() {
        let g = grant();
        let mut windows: Vec<Window> = (11..17).map(|h| window(h, 20, 0)).collect();
        windows.push(window(17, 101, 0));
        assert_eq!(kinds(&judge(&g, &windows)), [(Kind::AboveBaseline, 17)]);
        // Exactly 5 × the median is not above it; fewer than 6 hours of baseline judge nothing.
        windows[6].calls = 100;
        assert!(judge(&g, &windows).is_empty());
        windows[6].calls = 1000;
        assert!(judge(&g, &windows[1..]).is_empty());
        // Below the minimum calls nothing is judged, whatever the median.
        let mut quiet: Vec<Window> = (11..17).map(|h| window(h, 1, 0)).collect();
        quiet.push(window(17, 99, 0));
        assert!(judge(&g, &quiet).is_empty());
        assert_eq!(median(&mut [3, 1, 2]), 2);
        assert_eq!(median(&mut [4, 1, 2, 3]), 2);
    }

    #[test]
    fn objects_outside_the_scope_count_after_setup_only() {
        let g = grant();
        let mut w = window(10, 5, 0);
        w.values = vec![
            (ValueKind::Entity, "case".into(), 3, 10 * H + 120_000),
            (ValueKind::Entity, "Account".into(), 1, 10 * H + 30_000),
            (ValueKind::Entity, "Null".into(), 1, 10 * H + 120_000),
            (ValueKind::Entity, "Apex Class".into(), 1, 10 * H + 120_000),
        ];
        assert!(
            judge(&g, &[w.clone()]).is_empty(),
            "in scope, before setup, or not objects"
        );
        w.values
            .push((ValueKind::Entity, "Contact".into(), 2, 10 * H + 120_000));
        let found = judge(&g, &[w]);
        assert_eq!(kinds(&found), [(Kind::OutsideScope, 10)]);
        assert_eq!(found[0].figures["calls"], 2);
        assert!(found[0].summary.contains("Contact"), "{}", found[0].summary);
    }

    #[test]
    fn addresses_outside_the_ranges() {
        let mut g = grant();
        let mut w = window(11, 3, 0);
        w.values = vec![
            (ValueKind::Ip, "203.0.113.9".into(), 1, 11 * H),
            (ValueKind::Ip, "::ffff:203.0.113.10".into(), 1, 11 * H),
            (ValueKind::Ip, "Salesforce.com IP".into(), 1, 11 * H),
        ];
        assert!(judge(&g, &[w.clone()]).is_empty());
        w.values
            .push((ValueKind::Ip, "198.51.100.4".into(), 4, 11 * H));
        let found = judge(&g, &[w.clone()]);
        assert_eq!(kinds(&found), [(Kind::OutsideIpRanges, 11)]);
        assert_eq!(found[0].figures["addresses"][0]["address"], "198.51.100.4");
        g.ranges.clear();
        assert!(judge(&g, &[w]).is_empty(), "no ranges: any address");
    }
}
