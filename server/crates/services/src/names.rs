//! The deterministic Salesforce names of a grant's configuration (integration user,
//! permission sets, External Client App): the same grant always gets the same names, which
//! is what lets every step, its undo and the app's redeploy find what an earlier run made.

use sha2::{Digest, Sha256};

/// The deterministic Salesforce names of a grant's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub username: String,
    pub alias: String,
    pub last_name: String,
    pub permission_set: String,
    pub permission_set_label: String,
    /// A second permission set, tied to no licence and holding nothing but the app's
    /// pre-authorisation: a permission set tied to the Salesforce API Integration licence
    /// reportedly cannot be assigned apps (issue 14, item 3).
    pub app_permission_set: String,
    /// The External Client App's API name.
    pub app: String,
}

impl Names {
    /// Derived from the grant id (unique) and the company (readable in Setup). The same
    /// grant always gets the same names, which is what makes look-up-before-create work.
    pub fn for_grant(grant_id: &str, company: &str) -> Self {
        let digest = hex::encode(Sha256::digest(grant_id.as_bytes()));
        let tag = &digest[..10];
        let words: Vec<String> = company
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut chars = w.chars();
                let first = chars.next().map(|c| c.to_ascii_uppercase());
                first.into_iter().chain(chars).collect()
            })
            .collect();
        let mut slug: String = words.concat();
        slug.truncate(30);
        if slug.is_empty() || !slug.starts_with(|c: char| c.is_ascii_alphabetic()) {
            slug = format!("C{slug}");
        }
        let lower = slug.to_ascii_lowercase();
        Self {
            username: format!("{lower}.{tag}@integrations.portcullis.invalid"),
            alias: format!("pc{}", &tag[..6]),
            last_name: format!(
                "{} Integration",
                company.trim().chars().take(60).collect::<String>()
            ),
            permission_set: format!("Portcullis_{slug}_{tag}"),
            app_permission_set: format!("Portcullis_{slug}_{tag}_App"),
            app: format!("Portcullis_App_{slug}_{tag}"),
            permission_set_label: format!(
                "Portcullis {} {}",
                company.trim().chars().take(40).collect::<String>(),
                &tag[..6]
            ),
        }
    }
}

/// `Case`, `Subject`, `Custom_Field__c`: a letter, then letters, digits and underscores.
pub fn is_api_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_deterministic_and_valid() {
        let a = Names::for_grant("0193-grant-a", "Kinetic Ltd.");
        assert_eq!(a, Names::for_grant("0193-grant-a", "Kinetic Ltd."));
        let b = Names::for_grant("0193-grant-b", "Kinetic Ltd.");
        assert_ne!(a.username, b.username);
        assert_ne!(a.permission_set, b.permission_set);
        assert!(a.permission_set.starts_with("Portcullis_KineticLtd_"));
        assert!(a.username.starts_with("kineticltd."));
        assert_eq!(a.alias.len(), 8);
        for company in ["  ", "42 Widgets", "Ünïcode GmbH", "a__b", &"x".repeat(200)] {
            let n = Names::for_grant("g", company);
            assert!(is_api_name(&n.permission_set), "{}", n.permission_set);
            assert!(n.permission_set.len() <= 80);
            assert!(n.username.len() <= 80);
        }
    }
}
