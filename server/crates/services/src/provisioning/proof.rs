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

use std::collections::HashMap;

use salesforce::composite::{
    CompositeRequest, MAX_QUERY_OR_COLLECTION_SUBREQUESTS, MAX_SUBREQUESTS, Subrequest,
    SubrequestResult,
};
use salesforce::rest::Describe;
use salesforce::{Client, Cond, PortalAuth, SalesforceId, Soql};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::scope::{Level, ObjectAccess, VisibilityRule};

use super::StepFailure;
use super::context::Context;
use super::outputs::ProofMade;
use super::records::{reference, soql};
use super::sharing::chosen_by_object;
use crate::eca;

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

/// How long after its deploy a refused credential is taken for an app Salesforce is still
/// activating (issue 14, item 4).
pub const ACTIVATION_WAIT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// What the request page says while the app is being activated.
pub const WAITING_FOR_ACTIVATION: &str = "Waiting for Salesforce to activate the app";

/// A refused first token: transient while the app may still be being activated (the
/// refusals a new app gets: `invalid_client`, `invalid_client_id`, `invalid_grant`,
/// `app_not_found`), permanent after [`ACTIVATION_WAIT`] or for any other answer.
fn activation_failure(cx: &Context, error: salesforce::Error) -> StepFailure {
    let salesforce::Error::OAuth { error: code, .. } = &error else {
        return StepFailure::from(error);
    };
    if !matches!(
        code.as_str(),
        "invalid_client" | "invalid_client_id" | "invalid_grant" | "app_not_found"
    ) {
        return StepFailure::from(error);
    }
    let deployed_at = cx.outputs.app_deployed().and_then(|o| o.deployed_at);
    let waited_ms = deployed_at.map(|at| cx.clock.now_ms() - at);
    let within = waited_ms.is_none_or(|ms| ms < ACTIVATION_WAIT.as_millis() as i64);
    if within {
        StepFailure {
            message: format!(
                "{WAITING_FOR_ACTIVATION} (a new app can take several minutes; trying again). Salesforce said: {error}"
            ),
            transient: true,
        }
    } else {
        StepFailure {
            message: format!(
                "Salesforce still refuses the app's credential {} minutes after the app was deployed: {error}. Check the app in Setup (External Client App Manager), then retry.",
                ACTIVATION_WAIT.as_secs() / 60
            ),
            transient: false,
        }
    }
}

pub(super) async fn run(client: &Client, cx: &Context) -> Result<ProofMade, StepFailure> {
    let consumer = cx.outputs.consumer().ok_or_else(|| StepFailure {
        message: "the consumer step recorded nothing".into(),
        transient: false,
    })?;
    let field = |key: &str, value: &str| {
        Some(value.to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| StepFailure {
                message: format!("the consumer step recorded no {key}"),
                transient: false,
            })
    };
    let (app_id, consumer_id, key) = (
        field("app_id", &consumer.app_id)?,
        field("consumer_id", &consumer.consumer_id)?,
        field("consumer_key", &consumer.consumer_key)?,
    );
    let secret = eca::contractor_secret(
        client,
        &cx.saver.db,
        cx.vault.as_ref(),
        &cx.app(),
        &cx.deploy_poll,
        (&app_id, &consumer_id),
        cx.clock.as_ref(),
    )
    .await?;
    // The credential's first token. A new app is not usable at once (a real org can take
    // minutes): right after the deploy, a refusal is Salesforce still activating the app,
    // and the step is tried again with backoff, for up to ACTIVATION_WAIT.
    let token = salesforce::oauth_web::OAuthEndpoints::new(client.http().clone())
        .client_credentials_token(client.instance_url(), &key, &secret)
        .await
        .map_err(|e| activation_failure(cx, e))?;
    let contractor = client
        .acting_as(&PortalAuth::AccessToken(token.access_token))
        .map_err(StepFailure::from)?;
    verdict(checks_as(client, cx, &contractor).await?)
}

/// The proof's checks, with `contractor` acting as the contractor (a client holding a token
/// of its credential) and `client` as the portal: the table, passed or not. Used by the
/// provisioning step and by a later re-proof (the assurance room's drift detection).
pub(super) async fn checks_as(
    client: &Client,
    cx: &Context,
    contractor: &Client,
) -> Result<Vec<Check>, StepFailure> {
    // The visibility step recorded which chosen records belong to which object; ask the
    // org again only if it did not (e.g. a run from before it recorded them).
    let chosen = match recorded_records(cx) {
        Some(chosen) => chosen,
        None => chosen_by_object(client, cx).await?,
    };
    let chosen_of = |object: &str| -> Vec<SalesforceId> {
        chosen
            .iter()
            .find(|(o, _)| o.eq_ignore_ascii_case(object))
            .map(|(_, ids)| ids.clone())
            .unwrap_or_default()
    };
    let ungranted = UNGRANTED_CANDIDATES
        .iter()
        .find(|o| cx.scope.object(o).is_none())
        .copied();

    // Few API calls: what the contractor can see is asked in composite requests (one call
    // for up to 25 subrequests), and so is what the admin looks up.
    // As the contractor: each granted object's describe and visible records (with the
    // granted fields' values), and a query of an object not granted.
    let mut reads = Vec::new();
    // As the admin: for each object, a record the contractor was not given, and for View
    // All, how many records there are.
    let mut lookups = Vec::new();
    for (i, access) in cx.scope.objects.iter().enumerate() {
        let object = access.object.as_str();
        reads.push(Subrequest::describe(
            reference(&format!("describe{i}"))?,
            object,
        )?);
        let mut fields = vec!["Id".to_string()];
        fields.extend(
            access
                .fields
                .keys()
                .filter(|f| !f.eq_ignore_ascii_case("Id"))
                .cloned(),
        );
        let names: Vec<&str> = fields.iter().map(String::as_str).collect();
        reads.push(Subrequest::query(
            reference(&format!("records{i}"))?,
            &soql(Soql::select(&names).from(object).limit(MAX_IDS).build())?,
        ));
        if everything(access) {
            reads.push(Subrequest::query(
                reference(&format!("count{i}"))?,
                &soql(Soql::count().from(object).build())?,
            ));
            lookups.push(Subrequest::query(
                reference(&format!("total{i}"))?,
                &soql(Soql::count().from(object).build())?,
            ));
        } else if let Some(field) = write_field(access) {
            let given = chosen_of(object);
            let mut query = Soql::select(&["Id", field.as_str()]).from(object).limit(1);
            if !given.is_empty() {
                query = query.filter(Cond::not_in_list("Id", given.iter().take(200).cloned()));
            }
            lookups.push(Subrequest::query(
                reference(&format!("other{i}"))?,
                &soql(query.build())?,
            ));
        }
    }
    if let Some(object) = ungranted {
        reads.push(Subrequest::query(
            reference("ungranted")?,
            &soql(Soql::select(&["Id"]).from(object).limit(1).build())?,
        ));
    }
    let (seen_by_contractor, looked_up) =
        tokio::join!(batched(contractor, reads), batched(client, lookups));
    let (answers, admin) = (seen_by_contractor?, looked_up?);

    // The writes that must be refused, as the contractor, again in one composite: a field
    // granted read-only on a record it can see, and a record it was not given. Each writes
    // the value the record holds, so even a write wrongly accepted changes nothing.
    let mut checks = Vec::new();
    let mut writes = Vec::new();
    let mut write_checks = Vec::new();
    for (i, access) in cx.scope.objects.iter().enumerate() {
        let object = access.object.as_str();
        let describe = match answer(&answers, &format!("describe{i}"))? {
            Ok(value) => serde_json::from_value::<Describe>(value).map_err(|e| StepFailure {
                message: format!("{object}'s describe could not be read: {e}"),
                transient: true,
            })?,
            Err(e) => {
                checks.push(Check {
                    check: format!("{object}: describe"),
                    expected: "allowed".into(),
                    observed: format!("refused ({})", e.error_code().unwrap_or("error")),
                    pass: false,
                    wider: false,
                });
                continue;
            }
        };
        let rows: Vec<Value> = match answer(&answers, &format!("records{i}"))? {
            Ok(value) => value["records"].as_array().cloned().unwrap_or_default(),
            Err(e) => {
                checks.push(Check {
                    check: format!("{object}: records"),
                    expected: "readable".into(),
                    observed: format!("refused ({})", e.error_code().unwrap_or("error")),
                    pass: false,
                    wider: false,
                });
                Vec::new()
            }
        };
        field_checks(object, access, &describe, &mut checks);
        let seen: Vec<SalesforceId> = rows
            .iter()
            .filter_map(|r| r["Id"].as_str().and_then(|id| SalesforceId::parse(id).ok()))
            .collect();
        let seen_set: BTreeSet<String> = seen.iter().map(|i| i.as_str().to_string()).collect();
        if everything(access) {
            let total =
                answer(&admin, &format!("total{i}"))?.map_err(StepFailure::from)?["totalSize"]
                    .as_u64()
                    .unwrap_or(0);
            let observed = answer(&answers, &format!("count{i}"))?
                .map(|v| v["totalSize"].as_u64().unwrap_or(0))
                .unwrap_or(0);
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
            let expected: BTreeSet<String> = chosen_of(object)
                .iter()
                .map(|i| i.as_str().to_string())
                .collect();
            let extra: BTreeSet<String> = seen_set.difference(&expected).cloned().collect();
            checks.push(Check {
                check: format!("{object}: records"),
                expected: format!("{} chosen: {}", expected.len(), list(&expected)),
                observed: format!("{} visible: {}", seen_set.len(), list(&seen_set)),
                pass: expected == seen_set,
                wider: !extra.is_empty(),
            });
        }

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
        if let (Some(field), Some(row), Some(record)) = (read_only, rows.first(), seen.first()) {
            let current = row
                .as_object()
                .and_then(|r| r.iter().find(|(k, _)| k.eq_ignore_ascii_case(&field)))
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null);
            let r = reference(&format!("readonly{i}"))?;
            writes.push(Subrequest::update(
                r.clone(),
                object,
                record.clone(),
                &json!({ field.as_str(): current }),
            )?);
            write_checks.push((r, format!("{object}.{field} (read-only): write")));
        }
        if !everything(access)
            && let Some(field) = write_field(access)
            && let Ok(found) = answer(&admin, &format!("other{i}"))?
            && let Some(other) = found["records"].as_array().and_then(|r| r.first())
            && let Some(id) = other["Id"]
                .as_str()
                .and_then(|i| SalesforceId::parse(i).ok())
        {
            let value = other
                .as_object()
                .and_then(|r| r.iter().find(|(k, _)| k.eq_ignore_ascii_case(&field)))
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null);
            let r = reference(&format!("notgiven{i}"))?;
            writes.push(Subrequest::update(
                r.clone(),
                object,
                id.clone(),
                &json!({ field.as_str(): value }),
            )?);
            write_checks.push((r, format!("{object} {} (not given): write", id.as_str())));
        }
    }
    let written = batched(contractor, writes).await?;
    for (r, check) in write_checks {
        let result = answer(&written, r.as_str())?.map(|_| ());
        let (pass, observed) = refused(&result);
        checks.push(Check {
            check,
            expected: "refused".into(),
            observed,
            pass,
            wider: !pass,
        });
    }
    if let Some(object) = ungranted {
        let result = answer(&answers, "ungranted")?.map(|_| ());
        let (pass, observed) = refused(&result);
        checks.push(Check {
            check: format!("{object} (not granted): query"),
            expected: "refused".into(),
            observed,
            pass,
            wider: !pass,
        });
    }
    Ok(checks)
}

/// The step's outcome from its checks: the evidence, or the failure naming what differs.
fn verdict(checks: Vec<Check>) -> Result<ProofMade, StepFailure> {
    let failed: Vec<&Check> = checks.iter().filter(|c| !c.pass).collect();
    if failed.is_empty() {
        return Ok(ProofMade {
            passed: true,
            checks,
        });
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
    let records = cx.outputs.visibility()?.records.as_ref()?;
    records
        .iter()
        .map(|(object, ids)| {
            let ids = ids
                .iter()
                .map(|i| SalesforceId::parse(i).ok())
                .collect::<Option<Vec<_>>>()?;
            Some((object.clone(), ids))
        })
        .collect()
}

/// Every record of the object is granted (View All or Modify All).
fn everything(access: &ObjectAccess) -> bool {
    access.view_all || access.modify_all
}

/// The field a write to a record not given uses: an editable one if any.
fn write_field(access: &ObjectAccess) -> Option<String> {
    access
        .fields
        .iter()
        .find(|(_, l)| **l == Level::Edit)
        .or_else(|| access.fields.iter().next())
        .map(|(f, _)| f.clone())
}

/// The fields the credential sees and may update, against the granted ones.
fn field_checks(object: &str, access: &ObjectAccess, describe: &Describe, checks: &mut Vec<Check>) {
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
}

/// Sends `subrequests` in as few composite requests as their limits allow (not all or
/// none: each is answered on its own); the answers by reference id.
pub(crate) async fn batched(
    client: &Client,
    subrequests: Vec<Subrequest>,
) -> Result<HashMap<String, SubrequestResult>, StepFailure> {
    let mut answers = HashMap::new();
    let mut pending = subrequests.into_iter().peekable();
    while pending.peek().is_some() {
        let mut request = CompositeRequest::new(false);
        let mut queries = 0;
        while let Some(next) = pending.next_if(|next| {
            request.len() < MAX_SUBREQUESTS
                && (!next.is_query_or_collection() || queries < MAX_QUERY_OR_COLLECTION_SUBREQUESTS)
        }) {
            queries += usize::from(next.is_query_or_collection());
            request.push(next).map_err(StepFailure::from)?;
        }
        let response = client.composite(&request).await?;
        for result in response.results {
            answers.insert(result.reference_id.clone(), result);
        }
    }
    Ok(answers)
}

/// One subrequest's answer: its body, or the refusal. A transient failure (or no answer at
/// all) fails the step, to be retried.
pub(crate) fn answer(
    answers: &HashMap<String, SubrequestResult>,
    reference: &str,
) -> Result<Result<Value, salesforce::Error>, StepFailure> {
    let result = answers.get(reference).ok_or_else(|| StepFailure {
        message: format!("Salesforce did not answer the subrequest {reference}"),
        transient: true,
    })?;
    match result.clone().into_result() {
        Err(e) if e.is_transient() => Err(e.into()),
        other => Ok(other),
    }
}
