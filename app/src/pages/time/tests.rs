use super::*;

/// The reader's clock at an RFC 3339 time, in ms.
fn now(at: &str) -> i64 {
    match parse(at) {
        Some(When::Instant(secs)) => secs * 1000,
        other => panic!("{at} is not an instant: {other:?}"),
    }
}

fn instant(at: &str) -> When {
    let when = parse(at).unwrap();
    assert!(matches!(when, When::Instant(_)), "{at}");
    when
}

/// What `<Time>` shows for `at` when the reader's clock says `reader`.
fn shown(at: &str, reader: &str) -> String {
    describe(parse(at).unwrap(), Some(now(reader)), false)
}

#[test]
fn parses_rfc3339_and_days() {
    assert_eq!(parse("1970-01-01T00:00:00Z"), Some(When::Instant(0)));
    assert_eq!(parse("1970-01-02"), Some(When::Day(1)));
    assert_eq!(parse("1969-12-31"), Some(When::Day(-1)));
    let base = instant("2026-12-08T04:59:49Z");
    // Fractions are dropped, offsets applied, a space or no zone read as UTC.
    assert_eq!(parse("2026-12-08T04:59:49.123456Z"), Some(base));
    assert_eq!(parse("2026-12-08T05:59:49+01:00"), Some(base));
    assert_eq!(parse("2026-12-07T23:59:49-0500"), Some(base));
    assert_eq!(parse("2026-12-08 04:59:49"), Some(base));
    assert_eq!(parse(" 2026-12-08t04:59:49z "), Some(base));
    assert_eq!(
        parse("2026-12-08T04:59Z"),
        Some(When::Instant(match base {
            When::Instant(s) => s - 49,
            When::Day(_) => unreachable!(),
        }))
    );
    // 2024 is a leap year, 2100 is not, 2000 is.
    assert!(parse("2024-02-29").is_some());
    assert!(parse("2000-02-29").is_some());
    for bad in [
        "",
        "yesterday",
        "2026-13-01",
        "2026-00-10",
        "2026-02-30",
        "2100-02-29",
        "2026-12-8",
        "2026-12-08T24:00:00Z",
        "2026-12-08T04:60:00Z",
        "2026-12-08T04:59:49+1",
        "2026-12-08X04:59:49Z",
        "2026-12-08T04:59:49:01Z",
        "+2026-12-08",
        "2026-12-08T",
        "2026-1é-08",
    ] {
        assert_eq!(parse(bad), None, "{bad:?}");
    }
}

#[test]
fn the_calendar_is_right_across_eras() {
    // Every day from 1900 to 2200 maps to its date and back.
    for days in days_from_civil(1900, 1, 1)..days_from_civil(2200, 1, 1) {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days);
    }
    assert_eq!(
        civil_from_days(days_from_civil(2026, 12, 31) + 1),
        (2027, 1, 1)
    );
    assert_eq!(
        exact(instant("2000-02-29T23:59:59Z")),
        "2000-02-29 23:59:59 UTC"
    );
    assert_eq!(
        exact(instant("1969-12-31T23:59:59Z")),
        "1969-12-31 23:59:59 UTC"
    );
}

#[test]
fn exact_and_absolute_parts() {
    let at = instant("2026-12-08T04:59:49Z");
    assert_eq!(exact(at), "2026-12-08 04:59:49 UTC");
    // Without the reader's time (the server, hydration) the year is always there.
    assert_eq!(absolute(at, None), "8 Dec 2026 04:59 UTC");
    assert_eq!(
        absolute(at, Some(now("2026-01-01T00:00:00Z"))),
        "8 Dec 04:59 UTC"
    );
    assert_eq!(
        absolute(at, Some(now("2025-12-31T23:59:59Z"))),
        "8 Dec 2026 04:59 UTC"
    );
    let day = parse("2026-12-31").unwrap();
    assert_eq!(exact(day), "2026-12-31");
    assert_eq!(absolute(day, None), "31 Dec 2026");
    assert_eq!(
        absolute(day, Some(now("2026-12-05T00:00:00Z"))),
        "31 Dec 2026"
    );
}

#[test]
fn times_in_a_sentence() {
    let t = |s: &str| Piece::Time(s.to_string());
    let w = |s: &str| Piece::Text(s.to_string());
    assert_eq!(
        split_times("Link sent; waiting (the link works until 2026-12-08T04:59:49Z)."),
        vec![
            w("Link sent; waiting (the link works until "),
            t("2026-12-08T04:59:49Z"),
            w(").")
        ]
    );
    assert_eq!(
        split_times("2026-12-08T04:59:49Z then 2026-12-09T00:00:00Z"),
        vec![
            t("2026-12-08T04:59:49Z"),
            w(" then "),
            t("2026-12-09T00:00:00Z")
        ]
    );
    // Not a time: a day alone, a month 13, cut short, words with accents around it.
    assert_eq!(split_times("until 2026-12-08"), vec![w("until 2026-12-08")]);
    assert_eq!(
        split_times("on 2026-13-08T04:59:49Z"),
        vec![w("on 2026-13-08T04:59:49Z")]
    );
    assert_eq!(
        split_times("on 2026-12-08T04:59:4"),
        vec![w("on 2026-12-08T04:59:4")]
    );
    assert_eq!(
        split_times("créé le 2026-12-08T04:59:49Z à"),
        vec![w("créé le "), t("2026-12-08T04:59:49Z"), w(" à")]
    );
    assert_eq!(split_times(""), vec![]);
}

#[test]
fn plain_text_for_labels() {
    assert_eq!(plain("2026-12-05"), "5 Dec 2026");
    assert_eq!(plain("2026-12-08T04:59:49Z"), "8 Dec 2026 04:59 UTC");
    assert_eq!(plain("soon"), "soon");
}

#[test]
fn seconds_and_minutes() {
    let reader = "2026-12-05T20:00:00Z";
    assert_eq!(
        shown("2026-12-05T20:00:00Z", reader),
        "just now, 5 Dec 20:00 UTC"
    );
    assert_eq!(
        shown("2026-12-05T19:59:16Z", reader),
        "just now, 5 Dec 19:59 UTC"
    );
    assert_eq!(
        shown("2026-12-05T20:00:44Z", reader),
        "just now, 5 Dec 20:00 UTC"
    );
    assert_eq!(
        shown("2026-12-05T19:59:15Z", reader),
        "1 minute ago, 5 Dec 19:59 UTC"
    );
    assert_eq!(
        shown("2026-12-05T20:00:45Z", reader),
        "in 1 minute, 5 Dec 20:00 UTC"
    );
    assert_eq!(
        shown("2026-12-05T19:58:00Z", reader),
        "2 minutes ago, 5 Dec 19:58 UTC"
    );
    assert_eq!(
        shown("2026-12-05T19:55:00Z", reader),
        "5 minutes ago, 5 Dec 19:55 UTC"
    );
    assert_eq!(
        shown("2026-12-05T19:00:01Z", reader),
        "59 minutes ago, 5 Dec 19:00 UTC"
    );
    assert_eq!(
        shown("2026-12-05T20:59:59Z", reader),
        "in 59 minutes, 5 Dec 20:59 UTC"
    );
}

#[test]
fn hours() {
    let reader = "2026-12-05T20:00:00Z";
    assert_eq!(
        shown("2026-12-05T19:00:00Z", reader),
        "1 hour ago, 5 Dec 19:00 UTC"
    );
    assert_eq!(
        shown("2026-12-05T21:00:00Z", reader),
        "in 1 hour, 5 Dec 21:00 UTC"
    );
    assert_eq!(
        shown("2026-12-05T17:30:00Z", reader),
        "2 hours ago, 5 Dec 17:30 UTC"
    );
    // Under 24 hours counts hours, even across midnight.
    assert_eq!(
        shown("2026-12-04T20:00:01Z", reader),
        "23 hours ago, 4 Dec 20:00 UTC"
    );
    assert_eq!(
        shown("2026-12-06T19:59:59Z", reader),
        "in 23 hours, 6 Dec 19:59 UTC"
    );
}

#[test]
fn days_by_the_calendar() {
    let reader = "2026-12-05T20:00:00Z";
    assert_eq!(
        shown("2026-12-04T20:00:00Z", reader),
        "yesterday, 4 Dec 20:00 UTC"
    );
    assert_eq!(
        shown("2026-12-04T00:00:00Z", reader),
        "yesterday, 4 Dec 00:00 UTC"
    );
    assert_eq!(
        shown("2026-12-03T23:59:59Z", reader),
        "2 days ago, 3 Dec 23:59 UTC"
    );
    assert_eq!(
        shown("2026-12-06T20:00:00Z", reader),
        "tomorrow, 6 Dec 20:00 UTC"
    );
    // From 24 hours on, calendar days count: 25 hours ahead can be two days on.
    assert_eq!(
        shown("2026-12-07T23:00:00Z", "2026-12-06T23:00:00Z"),
        "tomorrow, 7 Dec 23:00 UTC"
    );
    assert_eq!(
        shown("2026-12-08T00:30:00Z", "2026-12-06T23:00:00Z"),
        "in 2 days, 8 Dec 00:30 UTC"
    );
    // The issue's example.
    assert_eq!(
        shown("2026-12-08T04:59:49Z", "2026-12-05T03:00:00Z"),
        "in 3 days, 8 Dec 04:59 UTC"
    );
    assert_eq!(
        shown("2026-10-07T12:00:00Z", reader),
        "59 days ago, 7 Oct 12:00 UTC"
    );
    assert_eq!(
        shown("2026-10-06T12:00:00Z", reader),
        "2 months ago, 6 Oct 12:00 UTC"
    );
}

#[test]
fn months_years_and_the_year_change() {
    let reader = "2026-12-31T23:00:00Z";
    // Two hours ahead is next year: the year shows.
    assert_eq!(
        shown("2027-01-01T01:00:00Z", reader),
        "in 2 hours, 1 Jan 2027 01:00 UTC"
    );
    assert_eq!(
        shown("2027-01-02T01:00:00Z", reader),
        "in 2 days, 2 Jan 2027 01:00 UTC"
    );
    assert_eq!(
        shown("2026-01-01T00:00:00Z", reader),
        "11 months ago, 1 Jan 00:00 UTC"
    );
    assert_eq!(
        shown("2025-12-31T00:00:00Z", reader),
        "1 year ago, 31 Dec 2025 00:00 UTC"
    );
    assert_eq!(
        shown("2029-06-01T00:00:00Z", reader),
        "in 2 years, 1 Jun 2029 00:00 UTC"
    );
    // The first minutes of a year, read late on 31 December.
    assert_eq!(
        shown("2026-12-31T23:59:00Z", "2027-01-01T00:01:00Z"),
        "2 minutes ago, 31 Dec 2026 23:59 UTC"
    );
}

#[test]
fn days_without_a_time() {
    let reader = "2026-12-05T23:59:59Z";
    let day = |d: &str| shown(d, reader);
    assert_eq!(day("2026-12-05"), "5 Dec 2026 (today)");
    assert_eq!(day("2026-12-06"), "6 Dec 2026 (tomorrow)");
    assert_eq!(day("2026-12-04"), "4 Dec 2026 (yesterday)");
    assert_eq!(day("2026-12-31"), "31 Dec 2026 (in 26 days)");
    assert_eq!(day("2027-02-03"), "3 Feb 2027 (in 2 months)");
    assert_eq!(day("2026-11-01"), "1 Nov 2026 (34 days ago)");
    assert_eq!(day("2027-12-05"), "5 Dec 2027 (in 1 year)");
    // Just after midnight UTC the same day is today.
    assert_eq!(
        shown("2026-12-06", "2026-12-06T00:00:00Z"),
        "6 Dec 2026 (today)"
    );
}

#[test]
fn the_order_for_a_sentence_and_without_a_reader() {
    let at = parse("2026-12-08T04:59:49Z").unwrap();
    let reader = Some(now("2026-12-05T03:00:00Z"));
    assert_eq!(describe(at, reader, true), "8 Dec 04:59 UTC (in 3 days)");
    assert_eq!(describe(at, None, false), "8 Dec 2026 04:59 UTC");
    assert_eq!(describe(at, None, true), "8 Dec 2026 04:59 UTC");
    assert_eq!(
        describe(parse("2026-12-31").unwrap(), None, false),
        "31 Dec 2026"
    );
}

// Rendering to HTML needs the server side of the views (`ssr`); without it (`cargo test -p
// app` alone) there is nothing to render.
#[cfg(feature = "ssr")]
#[test]
fn the_component_renders_the_same_markup_without_a_reader() {
    // On the server (no ReaderNow yet): the absolute part, the exact time on hover.
    let html = view! { <Time at="2026-12-08T04:59:49Z" /> }.to_html();
    assert!(
        html.contains(r#"datetime="2026-12-08T04:59:49Z""#)
            && html.contains(r#"title="2026-12-08 04:59:49 UTC""#)
            && html.contains(">8 Dec 2026 04:59 UTC<"),
        "{html}"
    );
    let html = view! { <Time at="not a time" /> }.to_html();
    assert!(
        html.contains(">not a time<") && !html.contains("datetime"),
        "{html}"
    );
}
