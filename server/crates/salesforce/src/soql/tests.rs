use super::*;
use chrono::TimeZone;

fn id() -> SalesforceId {
    SalesforceId::parse("00558000001N0Ke").unwrap()
}

#[test]
fn builds_a_simple_query() {
    let q = Soql::select(&["Id", "Name"])
        .from("Case")
        .filter(Cond::eq("OwnerId", id()))
        .order_by("CreatedDate", Order::Desc)
        .limit(5)
        .build()
        .unwrap();
    assert_eq!(
        q.as_str(),
        "SELECT Id, Name FROM Case WHERE OwnerId = '00558000001N0KeAAK' ORDER BY CreatedDate DESC LIMIT 5"
    );
}

#[test]
fn strings_are_escaped() {
    assert_eq!(escape_string(r"a\b"), r"a\\b");
    assert_eq!(escape_string("it's"), r"it\'s");
    assert_eq!(escape_string("say \"hi\""), r#"say \"hi\""#);
    assert_eq!(
        escape_string("l1\nl2\rl3\tx\u{8}y\u{c}z"),
        r"l1\nl2\rl3\tx\by\fz"
    );
    assert_eq!(escape_string("100% a_b"), "100% a_b");
    assert_eq!(quote("O'Brien"), r"'O\'Brien'");
    assert_eq!(escape_string("日本語"), "日本語");
}

#[test]
fn injection_attempts_stay_inside_the_literal() {
    for hostile in [
        "' OR Name != '",
        "x' OR Id != null OR Name = 'y",
        r"\' OR Name != \'",
        "'; DELETE FROM Case; --",
        "\\",
        "'",
        "x\\' OR 1=1 --",
    ] {
        let q = Soql::select(&["Id"])
            .from("Case")
            .filter(Cond::eq("Subject", hostile))
            .build()
            .unwrap();
        let text = q.as_str();
        let literal = text
            .strip_prefix("SELECT Id FROM Case WHERE Subject = '")
            .and_then(|rest| rest.strip_suffix('\''))
            .unwrap_or_else(|| panic!("unexpected shape: {text}"));
        // Inside the literal every quote and backslash is escaped: scanning it never
        // meets an unescaped quote, so the literal cannot end early.
        let mut chars = literal.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let escaped = chars.next().expect("dangling backslash");
                    assert!(
                        "\\'\"nrtbf".contains(escaped),
                        "bad escape \\{escaped} in {text}"
                    );
                }
                '\'' => panic!("unescaped quote in {text}"),
                _ => {}
            }
        }
    }
    assert_eq!(
        Soql::select(&["Id"])
            .from("Case")
            .filter(Cond::eq("Subject", "' OR Name != '"))
            .build()
            .unwrap()
            .as_str(),
        r"SELECT Id FROM Case WHERE Subject = '\' OR Name != \''"
    );
}

#[test]
fn identifiers_are_validated() {
    for good in [
        "Id",
        "Custom__c",
        "PermissionSet.Name",
        "ns__Obj__c",
        "a1.b2.c3",
    ] {
        assert!(validate_identifier(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "1Id",
        "_Id",
        "Id,Name",
        "Id FROM User --",
        "Name'",
        "Owner..Name",
        "Owner.",
        ".Name",
        "Na me",
        "Name\n",
        "Näme",
        "COUNT()",
        "Id)",
    ] {
        assert!(
            matches!(
                validate_identifier(bad),
                Err(SoqlError::InvalidIdentifier(_))
            ),
            "{bad:?}"
        );
    }
    // Hostile names are refused wherever they appear.
    let hostile = "Name != '' OR Id";
    assert!(Soql::select(&[hostile]).from("Case").build().is_err());
    assert!(Soql::select(&["Id"]).from("Case WHERE").build().is_err());
    assert!(
        Soql::select(&["Id"])
            .from("Case")
            .filter(Cond::eq(hostile, "x"))
            .build()
            .is_err()
    );
    assert!(
        Soql::select(&["Id"])
            .from("Case")
            .order_by("Id; DROP", Order::Asc)
            .build()
            .is_err()
    );
    assert!(
        Soql::select(&["Id"])
            .from("Case")
            .filter(Cond::like_contains("Subject)", "x"))
            .build()
            .is_err()
    );
    assert!(
        Soql::select(&["Id"])
            .from("Case")
            .filter(Cond::in_list("Id IN ('x') OR Id", ["a"]))
            .build()
            .is_err()
    );
}

#[test]
fn like_escapes_wildcards_in_user_text() {
    assert_eq!(escape_like("50%_off"), r"50\%\_off");
    assert_eq!(escape_like(r"a\%"), r"a\\\%");
    let q = Soql::select(&["Id"])
        .from("Account")
        .filter(Cond::like_contains("Name", "O'Neil_%"))
        .build()
        .unwrap();
    assert_eq!(
        q.as_str(),
        r"SELECT Id FROM Account WHERE Name LIKE '%O\'Neil\_\%%'"
    );
    let pattern = LikePattern::new().text("ab").one().text("c").any();
    assert_eq!(pattern.as_escaped(), "ab_c%");
    assert_eq!(LikePattern::ends_with("x_").as_escaped(), r"%x\_");
}

#[test]
fn typed_values_render() {
    let date = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    let at =
        Utc.with_ymd_and_hms(2026, 3, 1, 10, 15, 0).unwrap() + chrono::Duration::milliseconds(123);
    let q = Soql::select(&["Id"])
        .from("EventLogFile")
        .filter(Cond::eq("EventType", "ApiTotalUsage"))
        .filter(Cond::eq("IsDeleted", false))
        .filter(Cond::ge("Sequence", 0))
        .filter(Cond::gt("LogDate", at))
        .filter(Cond::le("ActivityDate", date))
        .filter(Cond::gt("CreatedDate", DateLiteral::LastNDays(7)))
        .filter(Cond::lt("Amount", 1000.5))
        .filter(Cond::is_not_null("LogFile"))
        .build()
        .unwrap();
    assert_eq!(
        q.as_str(),
        "SELECT Id FROM EventLogFile WHERE EventType = 'ApiTotalUsage' AND IsDeleted = false \
         AND Sequence >= 0 AND LogDate > 2026-03-01T10:15:00Z AND ActivityDate <= 2026-03-01 \
         AND CreatedDate > LAST_N_DAYS:7 AND Amount < 1000.5 AND LogFile != null"
    );
    assert!(matches!(
        Soql::select(&["Id"])
            .from("X")
            .filter(Cond::eq("A", f64::NAN))
            .build(),
        Err(SoqlError::InvalidValue(_))
    ));
}

#[test]
fn in_lists_and_groups() {
    let q = Soql::select(&["Id"])
        .from("PermissionSetAssignment")
        .filter(Cond::in_list("PermissionSet.Name", ["A_B", "it's"]))
        .filter(Cond::or([
            Cond::eq("AssigneeId", id()),
            Cond::and([Cond::eq("IsActive", true), Cond::not_in_list("Id", [1, 2])]),
        ]))
        .filter(Cond::not(Cond::eq("Name", "x")))
        .build()
        .unwrap();
    assert_eq!(
        q.as_str(),
        r"SELECT Id FROM PermissionSetAssignment WHERE PermissionSet.Name IN ('A_B', 'it\'s') AND (AssigneeId = '00558000001N0KeAAK' OR (IsActive = true AND Id NOT IN (1, 2))) AND (NOT Name = 'x')"
    );
    let empty: [&str; 0] = [];
    assert_eq!(
        Soql::select(&["Id"])
            .from("Case")
            .filter(Cond::in_list("Id", empty))
            .build(),
        Err(SoqlError::EmptyList("Id".into()))
    );
    assert_eq!(
        Soql::select(&["Id"])
            .from("Case")
            .filter(Cond::eq("Id", vec!["a", "b"]))
            .build(),
        Err(SoqlError::ListNotAllowed("Id".into()))
    );
    assert_eq!(
        Soql::select(&["Id"])
            .from("Case")
            .filter(Cond::or([]))
            .build(),
        Err(SoqlError::EmptyGroup)
    );
    // A list given as one value flattens.
    let q = Soql::select(&["Id"])
        .from("Case")
        .filter(Cond::in_list(
            "Status",
            [SoqlValue::from(vec!["New", "Closed"])],
        ))
        .build()
        .unwrap();
    assert!(q.as_str().ends_with("Status IN ('New', 'Closed')"));
}

#[test]
fn count_queries() {
    let q = Soql::count()
        .from("Case")
        .filter(Cond::eq("OwnerId", id()))
        .build()
        .unwrap();
    assert_eq!(
        q.as_str(),
        "SELECT COUNT() FROM Case WHERE OwnerId = '00558000001N0KeAAK'"
    );
    assert_eq!(
        Soql::count()
            .from("Case")
            .order_by("Id", Order::Asc)
            .build(),
        Err(SoqlError::CountWithOrder)
    );
}

#[test]
fn structural_errors() {
    assert_eq!(
        Soql::select(&[]).from("Case").build(),
        Err(SoqlError::NoFields)
    );
    assert_eq!(Soql::select(&["Id"]).build(), Err(SoqlError::MissingFrom));
    assert_eq!(
        Soql::select(&["Id", "id"]).from("Case").build(),
        Err(SoqlError::DuplicateField("id".into()))
    );
    assert_eq!(
        Soql::select(&["Id"]).from("Case").offset(2001).build(),
        Err(SoqlError::OffsetTooLarge(2001))
    );
    let q = Soql::select(&["Id"])
        .from("Case")
        .order_by_nulls("ClosedDate", Order::Asc, Nulls::Last)
        .order_by("Id", Order::Asc)
        .limit(200)
        .offset(2000)
        .build()
        .unwrap();
    assert_eq!(
        q.to_string(),
        "SELECT Id FROM Case ORDER BY ClosedDate ASC NULLS LAST, Id ASC LIMIT 200 OFFSET 2000"
    );
}

#[test]
fn trusted_queries_are_static() {
    let q = Soql::trusted(
        "SELECT Id FROM Profile WHERE Name = 'Minimum Access - API Only Integrations'",
    );
    assert!(q.as_str().starts_with("SELECT Id FROM Profile"));
}
