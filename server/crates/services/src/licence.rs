//! How the Salesforce Integration user licence is found: the provisioning gives integration
//! users its API-only profile, and the usage collector counts its seats. Never by its label,
//! which comes back translated in the querying user's language.

use salesforce::Cond;

/// The user licence the integration users hold (reference §7.3).
pub const INTEGRATION_LICENCE: &str = "Salesforce Integration";
/// Its `LicenseDefinitionKey` (UNCONFIRMED: not in Salesforce's list of keys); the licence
/// is looked up by either, never by its translated label.
pub const INTEGRATION_LICENCE_KEY: &str = "SFDC_INTEGRATION";

/// How the Salesforce Integration user licence is found without its (translatable) label:
/// its `LicenseDefinitionKey`, whose value is not in Salesforce's list (UNCONFIRMED), or
/// else its `Name` (the licence's internal name).
pub fn integration_licence() -> Cond {
    Cond::or([
        Cond::eq("LicenseDefinitionKey", INTEGRATION_LICENCE_KEY),
        Cond::eq("Name", INTEGRATION_LICENCE),
    ])
}

/// The same licence seen from a profile (`Profile.UserLicense`).
pub fn profile_licence() -> Cond {
    Cond::or([
        Cond::eq("UserLicense.LicenseDefinitionKey", INTEGRATION_LICENCE_KEY),
        Cond::eq("UserLicense.Name", INTEGRATION_LICENCE),
    ])
}
