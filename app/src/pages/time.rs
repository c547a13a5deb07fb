//! Times in the reader's terms: `<Time at=… />` renders a time the services give as RFC 3339
//! (`2026-12-08T04:59:49Z`) or a day (`2026-12-31`) as
//! `<time datetime="2026-12-08T04:59:49Z" title="2026-12-08 04:59:49 UTC">in 3 days, 8 Dec
//! 04:59 UTC</time>`: relative words and a short absolute time in UTC, the exact time on
//! hover and in `datetime`. Days read "31 Dec 2026 (in 26 days)".
//!
//! # Which "now" the relative words count from
//!
//! The relative part is computed **in the browser only, after hydration**, from the
//! browser's clock. The server renders the absolute part alone ("8 Dec 2026 04:59 UTC"), and
//! the browser's first render, the one hydration compares with the server's markup, does the
//! same, since [`ReaderNow`] is `None` on both; once hydrated, an effect sets it to the
//! browser's time and every `<Time>` adds its relative words (and drops the year when it is
//! the reader's). [`ReaderNow`] then moves on every 30 seconds, so "just now" does not stay on
//! a page left open.
//!
//! Why not a "now" the server sends with the page: the markup would then agree, but the
//! words would be counted from the moment the server rendered, and go stale in a tab left
//! open or moved through by client-side navigation (the page-level value would have to be
//! sent again with every server function's answer). The reader's own clock is the reader's
//! terms; without JavaScript the page still shows every time exactly, in UTC.

use leptos::prelude::*;

/// The reader's time, ms since the Unix epoch by the browser's clock: `None` on the server
/// and until the page has hydrated (see the module's documentation).
#[derive(Clone, Copy)]
pub struct ReaderNow(pub ReadSignal<Option<i64>>);

/// Provides [`ReaderNow`] to every page (called once, by `App`): set after hydration and
/// every 30 seconds after that, in the browser only (effects do not run on the server).
pub fn provide_reader_now() {
    let (now, set_now) = signal(None::<i64>);
    provide_context(ReaderNow(now));
    Effect::new(move |_| {
        set_now.set(browser_now());
        let handle = set_interval_with_handle(
            move || set_now.set(browser_now()),
            std::time::Duration::from_secs(30),
        );
        on_cleanup(move || {
            if let Ok(handle) = handle {
                handle.clear();
            }
        });
    });
}

#[cfg(feature = "hydrate")]
fn browser_now() -> Option<i64> {
    // Date.now() is a whole number of ms, well inside i64.
    #[allow(clippy::cast_possible_truncation)]
    Some(leptos::web_sys::js_sys::Date::now() as i64)
}

#[cfg(not(feature = "hydrate"))]
fn browser_now() -> Option<i64> {
    None
}

/// A time as the services give it. Anything that does not parse is shown as it came.
#[component]
pub fn Time(
    /// RFC 3339 (`2026-12-08T04:59:49Z`, fractions and offsets allowed) or a day (`2026-12-31`).
    #[prop(into)]
    at: String,
    /// "8 Dec 04:59 UTC (in 3 days)" instead of "in 3 days, 8 Dec 04:59 UTC", for a time
    /// after a preposition in a sentence ("works until …").
    #[prop(optional)]
    absolute_first: bool,
) -> impl IntoView {
    let now = use_context::<ReaderNow>().map(|n| n.0);
    match parse(&at) {
        Some(when) => {
            let text = move || describe(when, now.and_then(|n| n.get()), absolute_first);
            view! { <time datetime=at title=exact(when)>{text}</time> }.into_any()
        }
        None => view! { <time>{at}</time> }.into_any(),
    }
}

/// A sentence the services wrote with RFC 3339 times in it ("…the link works until
/// 2026-12-08T04:59:49Z)."), each time shown as a `<Time>` after its preposition.
#[component]
pub fn TextWithTimes(#[prop(into)] text: String) -> impl IntoView {
    split_times(&text)
        .into_iter()
        .map(|piece| match piece {
            Piece::Text(t) => t.into_any(),
            Piece::Time(at) => view! { <Time at absolute_first=true /> }.into_any(),
        })
        .collect_view()
}

/// A part of a sentence: words, or a time.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Time(String),
}

/// Cuts `text` around the RFC 3339 times in it as the services write them
/// (`2026-12-08T04:59:49Z`, whole seconds in UTC).
pub fn split_times(text: &str) -> Vec<Piece> {
    const SHAPE: &[u8; 20] = b"dddd-dd-ddTdd:dd:ddZ";
    let bytes = text.as_bytes();
    let at = |i: usize| {
        bytes.get(i..i + SHAPE.len()).is_some_and(|window| {
            window.iter().zip(SHAPE).all(|(b, s)| match s {
                b'd' => b.is_ascii_digit(),
                s => b == s,
            })
        }) && text.get(i..i + SHAPE.len()).and_then(parse).is_some()
    };
    let mut pieces = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        if at(i) {
            if let Some(words) = text.get(start..i).filter(|w| !w.is_empty()) {
                pieces.push(Piece::Text(words.to_string()));
            }
            pieces.push(Piece::Time(
                text.get(i..i + SHAPE.len()).unwrap_or_default().to_string(),
            ));
            i += SHAPE.len();
            start = i;
        } else {
            i += 1;
        }
    }
    if let Some(words) = text.get(start..).filter(|w| !w.is_empty()) {
        pieces.push(Piece::Text(words.to_string()));
    }
    pieces
}

/// The absolute part alone ("5 Dec 2026", "8 Dec 2026 04:59 UTC"), for where no `<time>`
/// element can go (an SVG label, an attribute); what does not parse comes back as it was.
pub fn plain(at: &str) -> String {
    parse(at).map_or_else(|| at.to_string(), |when| absolute(when, None))
}

/// A point in time (seconds since the Unix epoch) or a whole day (days since 1970-01-01).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Instant(i64),
    Day(i64),
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month 1–12, day 1–31) of a day since 1970-01-01 (`civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn month_name(month: i64) -> &'static str {
    usize::try_from(month - 1)
        .ok()
        .and_then(|i| MONTHS.get(i))
        .copied()
        .unwrap_or("?")
}

fn number(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Reads `YYYY-MM-DD`, or `YYYY-MM-DD` then `T` or a space and `HH:MM[:SS[.frac]]` with
/// `Z`, `±HH:MM` or `±HHMM` (no zone: UTC).
pub fn parse(s: &str) -> Option<When> {
    let s = s.trim();
    let (date, rest) = if s.len() > 10 {
        (s.get(..10)?, Some(s.get(10..)?))
    } else {
        (s, None)
    };
    let mut parts = date.split('-');
    let (year, month, day) = (
        number(parts.next()?)?,
        number(parts.next()?)?,
        number(parts.next()?)?,
    );
    if parts.next().is_some() || date.len() != 10 || !(1..=12).contains(&month) || day < 1 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    // 31 Feb and the like roll into the next month: refuse them.
    if civil_from_days(days) != (year, month, day) {
        return None;
    }
    let Some(rest) = rest else {
        return Some(When::Day(days));
    };
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let clock = clock.split('.').next()?;
    let mut fields = clock.split(':');
    let hour = number(fields.next()?)?;
    let minute = number(fields.next()?)?;
    let second = fields.next().map_or(Some(0), number)?;
    if fields.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let offset = match zone {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let digits: String = zone.get(1..)?.chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 {
                return None;
            }
            let (h, m) = (number(digits.get(..2)?)?, number(digits.get(2..)?)?);
            sign * (h * 3600 + m * 60)
        }
    };
    Some(When::Instant(
        days * 86_400 + hour * 3600 + minute * 60 + second - offset,
    ))
}

/// The exact time, for the hover title: "2026-12-08 04:59:49 UTC"; a day as "2026-12-31".
pub fn exact(when: When) -> String {
    match when {
        When::Instant(secs) => {
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let t = secs.rem_euclid(86_400);
            format!(
                "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
                t / 3600,
                t % 3600 / 60,
                t % 60
            )
        }
        When::Day(days) => {
            let (y, m, d) = civil_from_days(days);
            format!("{y:04}-{m:02}-{d:02}")
        }
    }
}

/// The short absolute part, in UTC: "8 Dec 2026 04:59 UTC", without the year when the
/// reader's `now` is in the same year ("8 Dec 04:59 UTC"); a day always with its year.
pub fn absolute(when: When, now_ms: Option<i64>) -> String {
    match when {
        When::Instant(secs) => {
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let t = secs.rem_euclid(86_400);
            let this_year =
                now_ms.is_some_and(|now| civil_from_days(now.div_euclid(86_400_000)).0 == y);
            let year = if this_year {
                String::new()
            } else {
                format!(" {y}")
            };
            format!(
                "{d} {}{year} {:02}:{:02} UTC",
                month_name(m),
                t / 3600,
                t % 3600 / 60
            )
        }
        When::Day(days) => {
            let (y, m, d) = civil_from_days(days);
            format!("{d} {} {y}", month_name(m))
        }
    }
}

fn plural(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// A span of whole days, in days, months or years.
fn days_span(days: i64) -> String {
    match days {
        d if d < 60 => plural(d, "day"),
        d if d < 365 => plural((d / 30).min(11), "month"),
        d => plural(d / 365, "year"),
    }
}

fn towards(span: String, future: bool) -> String {
    if future {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// The relative words from the reader's `now` (ms since the epoch): under 45 seconds "just
/// now"; under an hour minutes; under 24 hours hours; then by calendar days in UTC
/// ("yesterday", "tomorrow", "3 days ago"), months from 60 days, years from 365. A day
/// (no time) counts calendar days only: "today", "tomorrow", "in 26 days".
pub fn relative(when: When, now_ms: i64) -> String {
    let today = now_ms.div_euclid(86_400_000);
    match when {
        When::Instant(secs) => {
            let diff = secs - now_ms.div_euclid(1000);
            let future = diff > 0;
            let abs = diff.abs();
            match abs {
                a if a < 45 => "just now".into(),
                a if a < 3600 => towards(plural((a / 60).max(1), "minute"), future),
                a if a < 86_400 => towards(plural(a / 3600, "hour"), future),
                _ => day_words(secs.div_euclid(86_400) - today),
            }
        }
        When::Day(days) => match days - today {
            0 => "today".into(),
            n => day_words(n),
        },
    }
}

fn day_words(days: i64) -> String {
    match days {
        1 => "tomorrow".into(),
        -1 => "yesterday".into(),
        n => towards(days_span(n.abs()), n > 0),
    }
}

/// What `<Time>` shows: the absolute part alone without a `now` (on the server and while
/// hydrating); with one, "in 3 days, 8 Dec 04:59 UTC" ("8 Dec 04:59 UTC (in 3 days)" when
/// `absolute_first`); a day always as "31 Dec 2026 (in 26 days)".
pub fn describe(when: When, now_ms: Option<i64>, absolute_first: bool) -> String {
    let abs = absolute(when, now_ms);
    match now_ms {
        None => abs,
        Some(now) => {
            let rel = relative(when, now);
            if absolute_first || matches!(when, When::Day(_)) {
                format!("{abs} ({rel})")
            } else {
                format!("{rel}, {abs}")
            }
        }
    }
}

#[cfg(test)]
mod tests;
