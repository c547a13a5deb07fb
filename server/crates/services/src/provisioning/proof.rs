//! The least-privilege proof: with the contractor's own credential (the new app's consumer
//! key and secret, client credentials flow), check that it reaches exactly what was
//! approved, and keep the expected-versus-observed table as evidence.
//!
//! For each granted object: the fields the credential can see (describe) equal the granted
//! ones, and only the fields granted Edit are updateable; the records it sees equal the
//! records the rule grants (chosen records for the shared and owned rules, every record for
//! View All); a write to a field granted read-only is refused; a write to a record it was not
//! given is refused. And an object it was not granted cannot be queried at all.
//!
//! Anything wider than approved fails the proof (the grant needs attention and is not
//! released). So does a grant that does not work as approved (a granted field that is not
//! visible), since the contractor would be handed a credential that cannot do the work.
//! The secret is read from Salesforce for the token exchange and dropped: never stored,
//! logged or put in the evidence.

use std::collections::{BTreeMap, BTreeSet};

use salesforce::connect::CredentialPart;
use salesforce::{Client, Cond, PortalAuth, SalesforceId, Soql};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::scope::{Level, ObjectAccess, VisibilityRule};

use super::{Context, Step, StepFailure, chosen_by_object, soql};

/// Objects tried as "not granted", in this order; the first the scope does not include is
/// used.
const UNGRANTED_CANDIDATES: &[&str] = &["Account", "Contact", "Opportunity", "Lead", "Case"];

/// Records compared by id at most; beyond this the proof compares counts.
const MAX_IDS: u32 = 2000;

/// One line of the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub check: String,
    pub expected: String,
    pub observed: String,
    pub pass: bool,
    /// A failure that means more access than approved (as opposed to less).
    pub wider: bool,
}

fn list(items: &BTreeSet<String>) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn refused(result: &Result<(), salesforce::Error>) -> (bool, String) {
    match result {
        Ok(()) => (false, "accepted".into()),
        Err(e) => (
            true,
            format!("refused ({})", e.error_code().unwrap_or("error")),
        ),
    }
}

pub(super) async fn run(client: &Client, cx: &Context) -> Result<Value, StepFailure> {
    let consumer = cx.outputs.get(&Step::Consumer).ok_or_else(|| StepFailure {
        message: "the consumer step recorded nothing".into(),
        transient: false,
    })?;
    let field = |key: &str| {
        consumer[key]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| StepFailure {
                message: format!("the consumer step recorded no {key}"),
                transient: false,
            })
    };
    let (app_id, consumer_id, key) = (
        field("app_id")?,
        field("consumer_id")?,
        field("consumer_key")?,
    );
    let secret = client
        .consumer_credential(&app_id, &consumer_id, CredentialPart::Secret)
        .await?
        .secret
        .ok_or_else(|| StepFailure {
            message: "Salesforce did not return the app's secret for the proof".into(),
            transient: true,
        })?;
    let contractor = client
        .acting_as(&PortalAuth::ClientCredentials {
            client_id: key,
            client_secret: secret,
        })
        .map_err(StepFailure::from)?;

    // The visibility step recorded which chosen records belong to which object; ask the
    // org again only if it did not (e.g. a run from before it recorded them).
    let chosen = match recorded_records(cx) {
        Some(chosen) => chosen,
        None => chosen_by_object(client, cx).await?,
    };
    let mut checks = Vec::new();
    for access in &cx.scope.objects {
        let ids: Vec<SalesforceId> = chosen
            .iter()
            .find(|(object, _)| object.eq_ignore_ascii_case(&access.object))
            .map(|(_, ids)| ids.clone())
            .unwrap_or_default();
        check_object(client, &contractor, cx, access, &ids, &mut checks).await?;
    }
    if let Some(object) = UNGRANTED_CANDIDATES
        .iter()
        .find(|o| cx.scope.object(o).is_none())
    {
        let query = soql(Soql::select(&["Id"]).from(object).limit(1).build())?;
        let result = contractor.query::<Value>(&query).await.map(|_| ());
        let (pass, observed) = refused(&result);
        checks.push(Check {
            check: format!("{object} (not granted): query"),
            expected: "refused".into(),
            observed,
            pass,
            wider: !pass,
        });
    }

    let failed: Vec<&Check> = checks.iter().filter(|c| !c.pass).collect();
    if failed.is_empty() {
        return Ok(json!({ "passed": true, "checks": checks }));
    }
    let wider = failed.iter().any(|c| c.wider);
    let summary = failed
        .iter()
        .map(|c| {
            format!(
                "{}: expected {}, observed {}",
                c.check, c.expected, c.observed
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Err(StepFailure {
        message: format!(
            "The proof found {} than approved, so the credential is not released. {summary}",
            if wider { "MORE access" } else { "less access" }
        ),
        transient: false,
    })
}

/// The chosen records by object, as the visibility step recorded them.
fn recorded_records(cx: &Context) -> Option<BTreeMap<String, Vec<SalesforceId>>> {
    let records = cx.outputs.get(&Step::Visibility)?["records"].as_object()?;
    records
        .iter()
        .map(|(object, ids)| {
            let ids = ids
                .as_array()?
                .iter()
                .map(|id| id.as_str().and_then(|i| SalesforceId::parse(i).ok()))
                .collect::<Option<Vec<_>>>()?;
            Some((object.clone(), ids))
        })
        .collect()
}

async fn check_object(
    admin: &Client,
    contractor: &Client,
    cx: &Context,
    access: &ObjectAccess,
    chosen: &[SalesforceId],
    checks: &mut Vec<Check>,
) -> Result<(), StepFailure> {
    let object = &access.object;
    let describe = match contractor.describe(object).await {
        Ok(d) => d,
        Err(e) if !e.is_transient() => {
            checks.push(Check {
                check: format!("{object}: describe"),
                expected: "allowed".into(),
                observed: format!("refused ({})", e.error_code().unwrap_or("error")),
                pass: false,
                wider: false,
            });
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    // Fields: what the credential sees among the fields access is granted to.
    let granted: BTreeSet<String> = access
        .fields
        .keys()
        .map(|f| f.to_ascii_lowercase())
        .collect();
    let visible: BTreeSet<String> = describe
        .fields
        .iter()
        .filter(|f| f.permissionable)
        .map(|f| f.name.to_ascii_lowercase())
        .collect();
    let extra: BTreeSet<String> = visible.difference(&granted).cloned().collect();
    let missing: BTreeSet<String> = granted.difference(&visible).cloned().collect();
    checks.push(Check {
        check: format!("{object}: visible fields"),
        expected: list(&granted),
        observed: list(&visible),
        pass: extra.is_empty() && missing.is_empty(),
        wider: !extra.is_empty(),
    });
    let editable: BTreeSet<String> = access
        .fields
        .iter()
        .filter(|(_, l)| **l == Level::Edit)
        .map(|(f, _)| f.to_ascii_lowercase())
        .collect();
    let updateable: BTreeSet<String> = describe
        .fields
        .iter()
        .filter(|f| f.permissionable && f.updateable)
        .map(|f| f.name.to_ascii_lowercase())
        .collect();
    checks.push(Check {
        check: format!("{object}: updateable fields"),
        expected: list(&editable),
        observed: list(&updateable),
        pass: editable == updateable,
        wider: !updateable.is_subset(&editable),
    });

    // Records: what the credential sees, against what the rule grants.
    let seen: Vec<SalesforceId> = contractor
        .query_all::<super::IdRow>(&soql(
            Soql::select(&["Id"]).from(object).limit(MAX_IDS).build(),
        )?)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    let seen_set: BTreeSet<String> = seen.iter().map(|i| i.as_str().to_string()).collect();
    let everything = access.view_all || access.modify_all;
    if everything {
        let total = admin
            .count(&soql(Soql::count().from(object).build())?)
            .await?;
        let observed = contractor
            .count(&soql(Soql::count().from(object).build())?)
            .await?;
        checks.push(Check {
            check: format!("{object}: records (View All)"),
            expected: format!("all {total}"),
            observed: observed.to_string(),
            pass: observed == total,
            wider: observed > total,
        });
    } else if cx.scope.visibility.rule == VisibilityRule::Group {
        checks.push(Check {
            check: format!("{object}: records (public group)"),
            expected: "what the group sees".into(),
            observed: format!("{} records", seen.len()),
            pass: true,
            wider: false,
        });
    } else {
        let expected: BTreeSet<String> = chosen.iter().map(|i| i.as_str().to_string()).collect();
        let extra: BTreeSet<String> = seen_set.difference(&expected).cloned().collect();
        checks.push(Check {
            check: format!("{object}: records"),
            expected: format!("{} chosen: {}", expected.len(), list(&expected)),
            observed: format!("{} visible: {}", seen_set.len(), list(&seen_set)),
            pass: expected == seen_set,
            wider: !extra.is_empty(),
        });
    }

    // A write to a field granted read-only, on a record it can see. The value written is
    // the one the record holds, so even a write that is wrongly accepted changes nothing.
    let read_only = access
        .fields
        .iter()
        .find(|(f, l)| {
            **l == Level::Read
                && describe.fields.iter().any(|d| {
                    d.name.eq_ignore_ascii_case(f) && d.type_ != "id" && d.type_ != "reference"
                })
        })
        .map(|(f, _)| f.clone());
    if let (Some(field), Some(record)) = (read_only, seen.first()) {
        let current = contractor
            .query::<Value>(&soql(
                Soql::select(&["Id", field.as_str()])
                    .from(object)
                    .filter(Cond::eq("Id", record))
                    .build(),
            )?)
            .await?
            .records
            .into_iter()
            .next()
            .map(|r| r[field.as_str()].clone())
            .unwrap_or(Value::Null);
        let result = contractor
            .update(object, record, &json!({ field.as_str(): current }))
            .await
            .map(|_| ());
        let (pass, observed) = refused(&result);
        checks.push(Check {
            check: format!("{object}.{field} (read-only): write"),
            expected: "refused".into(),
            observed,
            pass,
            wider: !pass,
        });
    }

    // A write to a record it was not given (again with the value the record holds).
    let field = access
        .fields
        .iter()
        .find(|(_, l)| **l == Level::Edit)
        .or_else(|| access.fields.iter().next())
        .map(|(f, _)| f.clone());
    if let (false, Some(field)) = (everything, field) {
        let mut query = Soql::select(&["Id", field.as_str()]).from(object).limit(1);
        if !seen.is_empty() {
            query = query.filter(Cond::not_in_list("Id", seen.iter().take(200).cloned()));
        }
        let other = admin
            .query::<Value>(&soql(query.build())?)
            .await?
            .records
            .into_iter()
            .next();
        if let Some(other) = other
            && let Some(id) = other["Id"]
                .as_str()
                .and_then(|i| SalesforceId::parse(i).ok())
        {
            let result = contractor
                .update(
                    object,
                    &id,
                    &json!({ field.as_str(): other[field.as_str()] }),
                )
                .await
                .map(|_| ());
            let (pass, observed) = refused(&result);
            checks.push(Check {
                check: format!("{object} {} (not given): write", id.as_str()),
                expected: "refused".into(),
                observed,
                pass,
                wider: !pass,
            });
        }
    }
    Ok(())
}
