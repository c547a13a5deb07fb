//! The grant's External Client App's admin policies as the org has them (Metadata API
//! `readMetadata` of its `ExtlClntAppOauthConfigurablePolicies`, ten apps a call) against the
//! approved app: who may use it (admin-approved, pre-authorised through the grant's app
//! permission set only), whose tokens it issues (the integration user), refresh tokens
//! (none) and the IP policy (enforced). The OAuth scopes are read from the credential's own
//! token (`mod.rs`), at no extra call.

use salesforce::Client;
use salesforce::metadata::ExternalClientAppSpec;
use salesforce::metadata::ReadComponent;

use crate::org_failure::OrgFailure;
use crate::provisioning::proof::Check;
use crate::provisioning::reproof::Approved;

fn line(check: &str, expected: String, observed: String, wider: bool) -> Check {
    let pass = expected.eq_ignore_ascii_case(&observed);
    Check {
        check: format!("App: {check}"),
        expected,
        observed,
        pass,
        wider: wider && !pass,
    }
}

/// The app policies' lines of one grant.
pub(super) async fn read(
    client: &Client,
    approved: &Approved,
    contact_email: &str,
) -> Result<Vec<Check>, OrgFailure> {
    read_wave(client, &[approved], contact_email)
        .await?
        .pop()
        .unwrap_or_else(|| Err(OrgFailure::permanent("the app was not read")))
}

/// The app policies' lines of a wave of grants: `readMetadata` reads up to ten components
/// a call, so a wave of twenty costs two calls. In the order of `grants`; an org failure
/// fails the whole wave.
pub(super) async fn read_wave(
    client: &Client,
    grants: &[&Approved],
    contact_email: &str,
) -> Result<Vec<Result<Vec<Check>, OrgFailure>>, OrgFailure> {
    let specs: Vec<Result<ExternalClientAppSpec, OrgFailure>> = grants
        .iter()
        .map(|a| a.app(contact_email).spec(false))
        .collect();
    let members: Vec<String> = specs
        .iter()
        .flatten()
        .map(|spec| {
            ExternalClientAppSpec::member(
                spec.name.as_str(),
                ExternalClientAppSpec::OAUTH_POLICIES_TYPE,
            )
        })
        .collect();
    let mut read: Vec<ReadComponent> = Vec::new();
    for chunk in members.chunks(READ_METADATA_MAX) {
        let names: Vec<&str> = chunk.iter().map(String::as_str).collect();
        read.extend(
            client
                .read_metadata(ExternalClientAppSpec::OAUTH_POLICIES_TYPE, &names)
                .await?,
        );
    }
    Ok(specs
        .into_iter()
        .map(|spec| {
            let spec = spec?;
            let member = ExternalClientAppSpec::member(
                spec.name.as_str(),
                ExternalClientAppSpec::OAUTH_POLICIES_TYPE,
            );
            let policies = read.iter().find(|c| {
                c.get("fullName")
                    .is_some_and(|n| n.eq_ignore_ascii_case(&member))
            });
            Ok(lines(&spec, &member, policies))
        })
        .collect())
}

/// `readMetadata`'s limit of components a call.
const READ_METADATA_MAX: usize = 10;

/// One app's lines from its policies as read (`None`: not found).
fn lines(
    spec: &ExternalClientAppSpec,
    member: &str,
    policies: Option<&ReadComponent>,
) -> Vec<Check> {
    let Some(policies) = policies else {
        return vec![line(
            "admin policies",
            "deployed".into(),
            format!("missing ({member} not found)"),
            false,
        )];
    };
    let get = |field: &str| {
        policies
            .get(field)
            .cloned()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "unset".into())
    };
    let expected_sets: Vec<&str> = spec
        .permission_set_names
        .iter()
        .map(|n| n.as_str())
        .collect();
    let observed_permitted = get("permittedUsersPolicyType");
    vec![
        line(
            "permitted users",
            "AdminApprovedPreAuthorized".into(),
            observed_permitted.clone(),
            true,
        ),
        line(
            "pre-authorised permission sets",
            expected_sets.join(","),
            get("commaSeparatedPermissionSet"),
            true,
        ),
        line(
            "pre-authorised profiles",
            "unset".into(),
            get("commaSeparatedProfile"),
            true,
        ),
        line(
            "client credentials run-as user",
            spec.client_credentials_run_as.clone(),
            get("clientCredentialsFlowUser"),
            true,
        ),
        line(
            "refresh token policy",
            "Zero".into(),
            get("refreshTokenPolicyType"),
            true,
        ),
        line(
            "IP relaxation",
            "Enforce".into(),
            get("ipRelaxationPolicyType"),
            true,
        ),
    ]
}
