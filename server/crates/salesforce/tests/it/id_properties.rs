//! Property tests of the id parser: it never panics, round-trips 15 and 18 characters,
//! and refuses any change of case in an id's body.

use proptest::prelude::*;
use salesforce::SalesforceId;

fn id15() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[0-9A-Za-z]{15}").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = SalesforceId::parse(&text);
    }

    #[test]
    fn fifteen_and_eighteen_round_trip(base in id15()) {
        let id = SalesforceId::parse(&base).unwrap();
        prop_assert_eq!(id.as_15(), base.as_str());
        prop_assert_eq!(id.as_str().len(), 18);
        let again = SalesforceId::parse(id.as_str()).unwrap();
        prop_assert_eq!(&again, &id);
        prop_assert!(id.matches(&base));
        // The suffix is case-insensitive.
        let lowered = format!("{}{}", &id.as_str()[..15], id.as_str()[15..].to_ascii_lowercase());
        prop_assert_eq!(SalesforceId::parse(&lowered).unwrap(), id);
    }

    #[test]
    fn changing_the_case_of_a_letter_breaks_the_checksum(base in id15(), position in 0usize..15) {
        let id = SalesforceId::parse(&base).unwrap();
        let mut chars: Vec<char> = id.as_str().chars().collect();
        prop_assume!(chars[position].is_ascii_alphabetic());
        chars[position] = if chars[position].is_ascii_uppercase() {
            chars[position].to_ascii_lowercase()
        } else {
            chars[position].to_ascii_uppercase()
        };
        let changed: String = chars.into_iter().collect();
        prop_assert!(SalesforceId::parse(&changed).is_err());
    }

    #[test]
    fn wrong_lengths_and_characters_are_refused(text in "[0-9A-Za-z]{0,30}", bad in "[^0-9A-Za-z]") {
        if text.len() != 15 && text.len() != 18 {
            prop_assert!(SalesforceId::parse(&text).is_err());
        }
        let mut with_bad = text.clone();
        with_bad.push_str(&bad);
        if with_bad.chars().count() == 15 || with_bad.chars().count() == 18 {
            prop_assert!(SalesforceId::parse(&with_bad).is_err());
        }
    }

    #[test]
    fn generated_ids_always_parse(base in any::<String>()) {
        let id = SalesforceId::from_generated(&base);
        prop_assert!(SalesforceId::parse(id.as_str()).is_ok());
    }
}
