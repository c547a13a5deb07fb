//! Every supported construct, parsed and printed back.

use chrono::{NaiveDate, TimeZone};
use soql::{
    CompareOp, Condition, DateLiteral, FieldPath, ForClause, OrderItem, SelectItem, Span, Value,
    WithClause, parse,
};

fn q(text: &str) -> soql::Query {
    match parse(text) {
        Ok(query) => query,
        Err(e) => panic!("{text:?} failed: {}{}", e.error_code(), e.message(text)),
    }
}

fn path(parts: &[&str]) -> FieldPath {
    FieldPath {
        parts: parts.iter().map(|p| p.to_string()).collect(),
        span: Span::default(),
    }
}

fn where_of(text: &str) -> Condition {
    q(text)
        .without_spans()
        .where_clause
        .expect("a WHERE clause")
}

fn value_of(literal: &str) -> Value {
    match where_of(&format!("SELECT Id FROM Account WHERE X = {literal}")) {
        Condition::Compare { value, .. } => value,
        other => panic!("{other:?}"),
    }
}

fn cmp(field: &str, op: CompareOp, value: Value) -> Condition {
    Condition::Compare {
        field: path(&[field]),
        op,
        value,
    }
}

fn num(n: &str) -> Value {
    Value::Number(n.into())
}

fn string(s: &str) -> Value {
    Value::String(s.into())
}

#[test]
fn minimal_query_and_spans() {
    let text = "SELECT Id FROM Account";
    let query = q(text);
    assert_eq!(
        query.select,
        vec![SelectItem::Field(FieldPath {
            parts: vec!["Id".into()],
            span: Span::new(7, 9)
        })]
    );
    assert_eq!(query.from.name, "Account");
    assert_eq!(query.from.span, Span::new(15, 22));
    assert_eq!(query.where_clause, None);
    assert!(query.order_by.is_empty());
    assert_eq!(
        (query.limit, query.offset, query.with, query.for_clause),
        (None, None, None, None)
    );
}

#[test]
fn keywords_are_case_insensitive_and_names_kept_as_written() {
    let query = q(
        "select id, NAME from account where name = 'x' and NOT Industry = null oRdEr By name Desc nulls LAST limit 5 offset 2",
    );
    assert_eq!(query.from.name, "account");
    let SelectItem::Field(f) = &query.select[1] else {
        panic!()
    };
    assert_eq!(f.parts, vec!["NAME"]);
    assert_eq!(query.limit, Some(5));
    assert_eq!(query.offset, Some(2));
    assert_eq!(query.order_by[0].field.parts, vec!["name"]);
    assert!(query.order_by[0].descending && query.order_by[0].nulls_last);
}

#[test]
fn whitespace_includes_newlines_tabs_and_trailing_space() {
    let query = q("\n\tSELECT\r\n  Id ,\n Name\nFROM\n\tContact\n  WHERE Name='a'\n\n ");
    assert_eq!(query.select.len(), 2);
    assert_eq!(query.from.name, "Contact");
    assert!(query.where_clause.is_some());
}

#[test]
fn relationship_paths_and_custom_names() {
    let query = q(
        "SELECT Owner.Profile.Name, PermissionSet.Name, Custom_Field__c, ns__Rel__r.X__c FROM Obj__c",
    );
    let parts: Vec<Vec<String>> = query
        .select
        .iter()
        .map(|i| match i {
            SelectItem::Field(f) => f.parts.clone(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        parts,
        vec![
            vec!["Owner", "Profile", "Name"],
            vec!["PermissionSet", "Name"],
            vec!["Custom_Field__c"],
            vec!["ns__Rel__r", "X__c"],
        ]
    );
    let SelectItem::Field(f) = &query.select[0] else {
        panic!()
    };
    assert_eq!(f.span, Span::new(7, 25));
    assert_eq!(f.dotted(), "Owner.Profile.Name");
}

#[test]
fn objects_named_like_clause_words() {
    // `Order` and `Group` are standard objects; ORDER BY / GROUP BY are only keywords together.
    assert_eq!(
        q("SELECT Id FROM Order ORDER BY OrderNumber").from.name,
        "Order"
    );
    assert_eq!(q("SELECT Id FROM Group").from.name, "Group");
    let query = q("SELECT Group.Name, Order.Id FROM GroupMember");
    assert_eq!(query.select.len(), 2);
}

#[test]
fn count_forms() {
    let query = q("SELECT COUNT() FROM Account");
    assert_eq!(
        query.select,
        vec![SelectItem::Count {
            field: None,
            span: Span::new(7, 14)
        }]
    );
    let query = q("SELECT count(Id), COUNT(Owner.Name) FROM Account").without_spans();
    assert_eq!(
        query.select,
        vec![
            SelectItem::Count {
                field: Some(path(&["Id"])),
                span: Span::default()
            },
            SelectItem::Count {
                field: Some(path(&["Owner", "Name"])),
                span: Span::default()
            },
        ]
    );
    // A field merely named Count is a field.
    assert!(matches!(
        q("SELECT Count FROM X").select[0],
        SelectItem::Field(_)
    ));
}

#[test]
fn comparison_operators() {
    for (text, op) in [
        ("=", CompareOp::Eq),
        ("!=", CompareOp::Ne),
        ("<>", CompareOp::Ne),
        ("<", CompareOp::Lt),
        (">", CompareOp::Gt),
        ("<=", CompareOp::Le),
        (">=", CompareOp::Ge),
    ] {
        assert_eq!(
            where_of(&format!("SELECT Id FROM A WHERE Amount {text} 5")),
            cmp("Amount", op, num("5")),
            "{text}"
        );
        // No spaces needed.
        assert_eq!(
            where_of(&format!("SELECT Id FROM A WHERE Amount{text}5")),
            cmp("Amount", op, num("5")),
            "{text}"
        );
    }
}

#[test]
fn like_in_and_not_in() {
    assert_eq!(
        where_of(r"SELECT Id FROM A WHERE Name LIKE 'Ter\%%'"),
        Condition::Like {
            field: path(&["Name"]),
            pattern: r"Ter\%%".into()
        }
    );
    assert_eq!(
        where_of("SELECT Id FROM A WHERE Name like 'a_c'"),
        Condition::Like {
            field: path(&["Name"]),
            pattern: "a_c".into()
        }
    );
    assert_eq!(
        where_of("SELECT Id FROM A WHERE Status IN ('New', 'Open')"),
        Condition::In {
            field: path(&["Status"]),
            negated: false,
            values: vec![string("New"), string("Open")]
        }
    );
    assert_eq!(
        where_of("SELECT Id FROM A WHERE Amount not in (1, 2.5, -3)"),
        Condition::In {
            field: path(&["Amount"]),
            negated: true,
            values: vec![num("1"), num("2.5"), num("-3")]
        }
    );
    assert_eq!(
        where_of("SELECT Id FROM A WHERE D IN (2026-01-01, TODAY, true, null)"),
        Condition::In {
            field: path(&["D"]),
            negated: false,
            values: vec![
                Value::Date(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()),
                Value::DateLiteral(DateLiteral::Today),
                Value::Bool(true),
                Value::Null,
            ]
        }
    );
}

#[test]
fn boolean_precedence_and_parentheses() {
    let a = || cmp("A", CompareOp::Eq, num("1"));
    let b = || cmp("B", CompareOp::Eq, num("2"));
    let c = || cmp("C", CompareOp::Eq, num("3"));
    let and = |x, y| Condition::And(Box::new(x), Box::new(y));
    let or = |x, y| Condition::Or(Box::new(x), Box::new(y));
    let not = |x| Condition::Not(Box::new(x));
    let base = "SELECT Id FROM T WHERE ";
    assert_eq!(
        where_of(&format!("{base}A = 1 AND B = 2 AND C = 3")),
        and(and(a(), b()), c())
    );
    assert_eq!(
        where_of(&format!("{base}A = 1 OR B = 2 OR C = 3")),
        or(or(a(), b()), c())
    );
    assert_eq!(
        where_of(&format!("{base}A = 1 AND (B = 2 OR C = 3)")),
        and(a(), or(b(), c()))
    );
    assert_eq!(
        where_of(&format!("{base}(A = 1 AND B = 2) OR C = 3")),
        or(and(a(), b()), c())
    );
    // NOT binds tighter than AND/OR.
    assert_eq!(
        where_of(&format!("{base}NOT A = 1 AND B = 2")),
        and(not(a()), b())
    );
    assert_eq!(
        where_of(&format!("{base}B = 2 OR NOT A = 1")),
        or(b(), not(a()))
    );
    assert_eq!(
        where_of(&format!("{base}NOT (A = 1 OR B = 2)")),
        not(or(a(), b()))
    );
    assert_eq!(where_of(&format!("{base}not not A = 1")), not(not(a())));
    assert_eq!(where_of(&format!("{base}((A = 1))")), a());
}

#[test]
fn string_escapes() {
    assert_eq!(value_of(r"'Bob\'s BBQ'"), string("Bob's BBQ"));
    assert_eq!(
        value_of(r"'a\nb\Nc\rd\Re\tf\Tg\bh\Bi\fj\Fk'"),
        string("a\nb\nc\rd\re\tf\tg\u{8}h\u{8}i\u{c}j\u{c}k")
    );
    assert_eq!(value_of(r#"'q\"q'"#), string("q\"q"));
    assert_eq!(value_of(r"'back\\slash'"), string(r"back\slash"));
    // Kept with their backslash so LIKE can tell them from wildcards.
    assert_eq!(value_of(r"'50\% \_x'"), string(r"50\% \_x"));
    assert_eq!(value_of(r"'caf\u00e9 \u00C9'"), string("café É"));
    assert_eq!(value_of("'日本語 \"ok\" 🎉'"), string("日本語 \"ok\" 🎉"));
    assert_eq!(value_of("''"), string(""));
    // A raw newline inside a literal is content.
    assert_eq!(value_of("'two\nlines'"), string("two\nlines"));
}

#[test]
fn numbers_booleans_null() {
    assert_eq!(value_of("42"), num("42"));
    assert_eq!(value_of("-12.50"), num("-12.50"));
    assert_eq!(value_of("+7"), num("+7"));
    assert_eq!(value_of("-12.50").as_f64(), Some(-12.5));
    assert_eq!(value_of("0.000001").as_f64(), Some(0.000001));
    assert_eq!(string("1").as_f64(), None);
    assert_eq!(value_of("TRUE"), Value::Bool(true));
    assert_eq!(value_of("false"), Value::Bool(false));
    assert_eq!(value_of("Null"), Value::Null);
}

#[test]
fn dates_and_datetimes() {
    assert_eq!(
        value_of("2026-11-22"),
        Value::Date(NaiveDate::from_ymd_opt(2026, 11, 22).unwrap())
    );
    let Value::DateTime(dt) = value_of("2026-11-22T10:00:00Z") else {
        panic!()
    };
    assert_eq!(
        dt,
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
            .unwrap()
    );
    assert_eq!(dt.offset().local_minus_utc(), 0);
    let Value::DateTime(dt) = value_of("2026-11-22T10:00:00+01:00") else {
        panic!()
    };
    assert_eq!(
        dt,
        chrono::Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()
    );
    assert_eq!(dt.offset().local_minus_utc(), 3600);
    let Value::DateTime(dt) = value_of("2026-11-22T10:00:00.250-08:00") else {
        panic!()
    };
    assert_eq!(dt.to_rfc3339(), "2026-11-22T10:00:00.250-08:00");
    assert_eq!(dt.timestamp_subsec_millis(), 250);
    // Leap day.
    assert!(matches!(value_of("2024-02-29"), Value::Date(_)));
}

#[test]
fn date_literals() {
    use DateLiteral::*;
    for (text, literal) in [
        ("YESTERDAY", Yesterday),
        ("today", Today),
        ("Tomorrow", Tomorrow),
        ("LAST_WEEK", LastWeek),
        ("THIS_WEEK", ThisWeek),
        ("NEXT_WEEK", NextWeek),
        ("LAST_MONTH", LastMonth),
        ("THIS_MONTH", ThisMonth),
        ("NEXT_MONTH", NextMonth),
        ("LAST_90_DAYS", Last90Days),
        ("NEXT_90_DAYS", Next90Days),
        ("THIS_QUARTER", ThisQuarter),
        ("LAST_QUARTER", LastQuarter),
        ("NEXT_QUARTER", NextQuarter),
        ("THIS_YEAR", ThisYear),
        ("LAST_YEAR", LastYear),
        ("NEXT_YEAR", NextYear),
        ("LAST_N_DAYS:7", LastNDays(7)),
        ("last_n_days:0", LastNDays(0)),
        ("NEXT_N_DAYS:30", NextNDays(30)),
        ("N_DAYS_AGO:3", NDaysAgo(3)),
        ("LAST_N_WEEKS:2", LastNWeeks(2)),
        ("NEXT_N_WEEKS:4", NextNWeeks(4)),
        ("LAST_N_MONTHS:6", LastNMonths(6)),
        ("NEXT_N_MONTHS:12", NextNMonths(12)),
        ("N_WEEKS_AGO:1", NWeeksAgo(1)),
        ("N_MONTHS_AGO:2", NMonthsAgo(2)),
        ("LAST_N_QUARTERS:2", LastNQuarters(2)),
        ("NEXT_N_QUARTERS:3", NextNQuarters(3)),
        ("N_QUARTERS_AGO:1", NQuartersAgo(1)),
        ("LAST_N_YEARS:5", LastNYears(5)),
        ("NEXT_N_YEARS:1", NextNYears(1)),
        ("N_YEARS_AGO:10", NYearsAgo(10)),
        ("LAST_N_DAYS:4294967295", LastNDays(u32::MAX)),
    ] {
        assert_eq!(value_of(text), Value::DateLiteral(literal), "{text}");
        // The printer writes the canonical name back.
        assert_eq!(value_of(text).to_string(), text.to_uppercase());
    }
}

#[test]
fn with_and_for_clauses_in_documented_order() {
    let query = q(
        "SELECT Id FROM Account WHERE Name != null WITH SECURITY_ENFORCED ORDER BY Name LIMIT 1 OFFSET 0 FOR VIEW",
    );
    assert_eq!(query.with, Some(WithClause::SecurityEnforced));
    assert_eq!(query.for_clause, Some(ForClause::View));
    assert_eq!(
        q("SELECT Id FROM A WITH user_mode").with,
        Some(WithClause::UserMode)
    );
    assert_eq!(
        q("SELECT Id FROM A WITH SYSTEM_MODE").with,
        Some(WithClause::SystemMode)
    );
    assert_eq!(
        q("SELECT Id FROM A FOR REFERENCE").for_clause,
        Some(ForClause::Reference)
    );
    assert_eq!(
        q("SELECT Id FROM A LIMIT 1 FOR UPDATE").for_clause,
        Some(ForClause::Update)
    );
}

#[test]
fn order_by_variants() {
    let query = q("SELECT Id FROM A ORDER BY Name, CreatedDate DESC, Owner.Name ASC NULLS LAST, X NULLS FIRST").without_spans();
    assert_eq!(
        query.order_by,
        vec![
            OrderItem {
                field: path(&["Name"]),
                descending: false,
                nulls_last: false
            },
            OrderItem {
                field: path(&["CreatedDate"]),
                descending: true,
                nulls_last: false
            },
            OrderItem {
                field: path(&["Owner", "Name"]),
                descending: false,
                nulls_last: true
            },
            OrderItem {
                field: path(&["X"]),
                descending: false,
                nulls_last: false
            },
        ]
    );
}

#[test]
fn limit_and_offset() {
    assert_eq!(q("SELECT Id FROM A LIMIT 0").limit, Some(0));
    assert_eq!(q("SELECT Id FROM A LIMIT 50000").limit, Some(50000));
    assert_eq!(q("SELECT Id FROM A OFFSET 2000").offset, Some(2000));
    assert_eq!(
        q("SELECT Id FROM A LIMIT 18446744073709551615").limit,
        Some(u64::MAX)
    );
}

#[test]
fn printer_canonical_form() {
    for (input, canonical) in [
        ("select id from account", "SELECT id FROM account"),
        (
            "SELECT Name FROM A WHERE Name <> 'O\\'Brien\\n' AND (X = 1 OR Y = TODAY)",
            "SELECT Name FROM A WHERE Name != 'O\\'Brien\\n' AND (X = 1 OR Y = TODAY)",
        ),
        (
            "SELECT Id FROM A WHERE NOT (a = 1 AND b = 2) OR c IN (1, 'x') ORDER BY Name ASC NULLS FIRST, Id DESC NULLS LAST LIMIT 3 OFFSET 4",
            "SELECT Id FROM A WHERE NOT (a = 1 AND b = 2) OR c IN (1, 'x') ORDER BY Name, Id DESC NULLS LAST LIMIT 3 OFFSET 4",
        ),
        (
            "SELECT COUNT() FROM A WHERE D > 2026-01-01T00:00:00+00:00 AND E < 2026-01-01T10:00:00.500-03:30 AND F != 2026-01-02",
            "SELECT COUNT() FROM A WHERE D > 2026-01-01T00:00:00Z AND E < 2026-01-01T10:00:00.500-03:30 AND F != 2026-01-02",
        ),
        (
            r"SELECT Id FROM A WHERE Name LIKE '50\%_\\' AND x not in (null) WITH SECURITY_ENFORCED FOR UPDATE",
            r"SELECT Id FROM A WHERE Name LIKE '50\%_\\' AND x NOT IN (null) WITH SECURITY_ENFORCED FOR UPDATE",
        ),
    ] {
        let printed = q(input).to_string();
        assert_eq!(printed, canonical);
        assert_eq!(q(&printed).without_spans(), q(input).without_spans());
    }
}

#[test]
fn deep_but_allowed_nesting() {
    let mut where_clause = "A = 1".to_string();
    for _ in 0..(soql::MAX_NESTING - 2) {
        where_clause = format!("({where_clause})");
    }
    q(&format!("SELECT Id FROM A WHERE {where_clause}"));
    let chain = vec!["A = 1"; soql::MAX_CONDITION_DEPTH].join(" OR ");
    let query = q(&format!("SELECT Id FROM A WHERE {chain}"));
    assert_eq!(q(&query.to_string()).without_spans(), query.without_spans());
}

#[test]
fn typical_query_parses_ten_thousand_times_quickly() {
    // Not a timing assertion: this just has to finish promptly (a linear design does it in well
    // under a second even in a debug build).
    let text = "SELECT Id, Name, Owner.Name, CreatedDate FROM Account \
                WHERE (Industry IN ('Tech', 'Retail') OR AnnualRevenue >= 1000000.50) \
                AND Name LIKE 'Acme%' AND CreatedDate = LAST_N_DAYS:30 \
                ORDER BY Name DESC NULLS LAST LIMIT 200 OFFSET 20";
    let started = std::time::Instant::now();
    let mut selected = 0;
    for _ in 0..10_000 {
        selected += q(text).select.len();
    }
    assert_eq!(selected, 40_000);
    eprintln!("10,000 parses took {:?}", started.elapsed());
}

#[test]
fn large_inputs_stay_linear() {
    // 100,000 IN values (about 1 MB of text), a 1 MB string literal and 1 MB of garbage.
    let values = vec!["'001000000000001AAA'"; 100_000].join(",");
    let text = format!("SELECT Id FROM Account WHERE Id IN ({values})");
    let Some(Condition::In { values, .. }) = q(&text).where_clause else {
        panic!()
    };
    assert_eq!(values.len(), 100_000);
    let long = "x".repeat(1_000_000);
    assert_eq!(value_of(&format!("'{long}'")), Value::String(long.clone()));
    assert!(parse(&format!("SELECT {long}")).is_err());
    assert!(parse(&"(".repeat(1_000_000)).is_err());
    let e = parse(&format!("SELECT Id FROM A WHERE X = '{long}\\q'")).unwrap_err();
    assert!(e.detail.contains("Illegal escape sequence"));
}
