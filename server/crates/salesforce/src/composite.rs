//! Several calls in one request: Composite (§2.5, up to 25 subrequests that can refer to
//! each other's results with `@{ref.field}`) and sObject Collections (§2.6, up to 200
//! records of create/update/delete with a SaveResult each).
//!
//! Subrequest URLs are built here from typed parts, never pasted: object and field names
//! are checked, ids are [`SalesforceId`]s or references, values are percent-encoded.

use std::collections::BTreeMap;
use std::fmt;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::client::{ApiRequest, Client};
use crate::error::{Error, Result, api_errors_from_value};
use crate::id::SalesforceId;
use crate::rest::SaveResult;
use crate::soql::{Soql, validate_identifier};
use crate::version::ApiVersion;

/// Salesforce's limit on subrequests per composite request.
pub const MAX_SUBREQUESTS: usize = 25;
/// Of those, at most this many may be queries or sObject Collections.
pub const MAX_QUERY_OR_COLLECTION_SUBREQUESTS: usize = 5;
/// Records per sObject Collections call.
pub const MAX_COLLECTION_RECORDS: usize = 200;

/// A subrequest's name: starts with a letter or digit; letters, digits and `_` only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReferenceId(String);

impl ReferenceId {
    pub fn new(raw: &str) -> Result<Self> {
        let mut chars = raw.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            Ok(Self(raw.to_string()))
        } else {
            Err(Error::InvalidRequest(format!(
                "{raw:?} is not a valid composite reference id"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `@{refId.path}`, e.g. `field("id")` for a created record's id, or
    /// `field("records[0].Id")` for a query's first record.
    pub fn field(&self, path: &str) -> Result<Reference> {
        Reference::new(self, path)
    }

    /// `@{refId.id}`: the id of the record a POST subrequest created.
    pub fn id(&self) -> Reference {
        Reference(format!("@{{{}.id}}", self.0))
    }
}

impl fmt::Display for ReferenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A reference to an earlier subrequest's result: `@{refId.path}`. Use it in a body
/// (it serialises as the string) or as the record of a later subrequest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference(String);

impl Reference {
    pub fn new(reference_id: &ReferenceId, path: &str) -> Result<Self> {
        // The path may only navigate (names, dots, array indexes): it can neither close
        // the `@{...}` nor carry anything else into the URL or body.
        let valid = !path.is_empty()
            && path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'))
            && !path.starts_with('.')
            && !path.ends_with('.')
            && !path.contains("..");
        if !valid {
            return Err(Error::InvalidRequest(format!(
                "{path:?} is not a valid reference path"
            )));
        }
        Ok(Self(format!("@{{{}.{path}}}", reference_id.0)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl From<Reference> for Value {
    fn from(reference: Reference) -> Self {
        Value::String(reference.0)
    }
}

/// The record a subrequest acts on: a known id, or one an earlier subrequest produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordRef {
    Id(SalesforceId),
    Ref(Reference),
}

impl RecordRef {
    fn as_segment(&self) -> &str {
        match self {
            RecordRef::Id(id) => id.as_str(),
            RecordRef::Ref(reference) => reference.as_str(),
        }
    }
}

impl From<SalesforceId> for RecordRef {
    fn from(id: SalesforceId) -> Self {
        RecordRef::Id(id)
    }
}
impl From<&SalesforceId> for RecordRef {
    fn from(id: &SalesforceId) -> Self {
        RecordRef::Id(id.clone())
    }
}
impl From<Reference> for RecordRef {
    fn from(reference: Reference) -> Self {
        RecordRef::Ref(reference)
    }
}

/// A subrequest method (case-sensitive on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SubMethod {
    Get,
    Post,
    Patch,
    Put,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Record,
    /// Counts against the 5 query/collection subrequests.
    QueryOrCollection,
}

/// One subrequest. The URL is kept relative to the REST root and gets the client's API
/// version when sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Subrequest {
    pub method: SubMethod,
    /// Below `/services/data/vXX.X/`, e.g. `sobjects/Account`.
    path: String,
    pub reference_id: ReferenceId,
    pub body: Option<Value>,
    kind: Kind,
}

fn encode_segment(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes())
        .collect::<String>()
        // form encoding writes spaces as `+`; in a path `+` is literal.
        .replace('+', "%20")
}

fn to_body<B: Serialize + ?Sized>(body: &B) -> Result<Value> {
    serde_json::to_value(body)
        .map_err(|e| Error::InvalidRequest(format!("cannot encode a subrequest body: {e}")))
}

impl Subrequest {
    fn new(
        method: SubMethod,
        path: String,
        reference_id: ReferenceId,
        body: Option<Value>,
    ) -> Self {
        Self {
            method,
            path,
            reference_id,
            body,
            kind: Kind::Record,
        }
    }

    /// `POST sobjects/{sobject}`; the new id is `reference_id.id()`.
    pub fn create<B: Serialize + ?Sized>(
        reference_id: ReferenceId,
        sobject: &str,
        body: &B,
    ) -> Result<Self> {
        validate_identifier(sobject)?;
        Ok(Self::new(
            SubMethod::Post,
            format!("sobjects/{sobject}"),
            reference_id,
            Some(to_body(body)?),
        ))
    }

    /// `PATCH sobjects/{sobject}/{record}`.
    pub fn update<B: Serialize + ?Sized>(
        reference_id: ReferenceId,
        sobject: &str,
        record: impl Into<RecordRef>,
        body: &B,
    ) -> Result<Self> {
        validate_identifier(sobject)?;
        Ok(Self::new(
            SubMethod::Patch,
            format!("sobjects/{sobject}/{}", record.into().as_segment()),
            reference_id,
            Some(to_body(body)?),
        ))
    }

    /// `PATCH sobjects/{sobject}/{ext_field}/{value}`.
    pub fn upsert<B: Serialize + ?Sized>(
        reference_id: ReferenceId,
        sobject: &str,
        ext_field: &str,
        value: &str,
        body: &B,
    ) -> Result<Self> {
        validate_identifier(sobject)?;
        validate_identifier(ext_field)?;
        Ok(Self::new(
            SubMethod::Patch,
            format!("sobjects/{sobject}/{ext_field}/{}", encode_segment(value)),
            reference_id,
            Some(to_body(body)?),
        ))
    }

    /// `DELETE sobjects/{sobject}/{record}`.
    pub fn delete(
        reference_id: ReferenceId,
        sobject: &str,
        record: impl Into<RecordRef>,
    ) -> Result<Self> {
        validate_identifier(sobject)?;
        Ok(Self::new(
            SubMethod::Delete,
            format!("sobjects/{sobject}/{}", record.into().as_segment()),
            reference_id,
            None,
        ))
    }

    /// `GET sobjects/{sobject}/{record}[?fields=...]`; its fields are `@{ref.Field}`.
    pub fn get(
        reference_id: ReferenceId,
        sobject: &str,
        record: impl Into<RecordRef>,
        fields: Option<&[&str]>,
    ) -> Result<Self> {
        validate_identifier(sobject)?;
        let mut path = format!("sobjects/{sobject}/{}", record.into().as_segment());
        if let Some(fields) = fields {
            for field in fields {
                validate_identifier(field)?;
            }
            path.push_str("?fields=");
            path.push_str(&fields.join(","));
        }
        Ok(Self::new(SubMethod::Get, path, reference_id, None))
    }

    /// `GET sobjects/{sobject}/describe`: the object as the caller sees it.
    pub fn describe(reference_id: ReferenceId, sobject: &str) -> Result<Self> {
        validate_identifier(sobject)?;
        Ok(Self::new(
            SubMethod::Get,
            format!("sobjects/{sobject}/describe"),
            reference_id,
            None,
        ))
    }

    /// Whether this subrequest counts against the query/collection limit of a composite.
    pub fn is_query_or_collection(&self) -> bool {
        self.kind == Kind::QueryOrCollection
    }

    /// `POST composite/sobjects`: creates up to 200 records of `sobject` (an sObject
    /// Collections subrequest); its results are `@{ref[0].id}`. Values may be references
    /// to earlier subrequests, e.g. a `ParentId` of `@{newSet.id}`.
    pub fn create_collection<T: Serialize>(
        reference_id: ReferenceId,
        sobject: &str,
        records: &[T],
        all_or_none: bool,
    ) -> Result<Self> {
        check_collection_size(records.len())?;
        let records = collection_records(sobject, records.iter().map(|r| (None, r)))?;
        Ok(Self {
            kind: Kind::QueryOrCollection,
            ..Self::new(
                SubMethod::Post,
                "composite/sobjects".into(),
                reference_id,
                Some(json!({ "allOrNone": all_or_none, "records": records })),
            )
        })
    }

    /// `GET query?q=...`; its records are `@{ref.records[0].Id}`.
    pub fn query(reference_id: ReferenceId, soql: &Soql) -> Self {
        let q: String = url::form_urlencoded::byte_serialize(soql.as_str().as_bytes()).collect();
        Self {
            kind: Kind::QueryOrCollection,
            ..Self::new(SubMethod::Get, format!("query?q={q}"), reference_id, None)
        }
    }

    /// The full subrequest URL for `version`.
    pub fn url(&self, version: ApiVersion) -> String {
        format!("{}/{}", version.rest_root(), self.path)
    }
}

/// A composite request (§2.5).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompositeRequest {
    /// Roll everything back if one subrequest fails.
    pub all_or_none: bool,
    /// Leave unset for Salesforce's default (true since v49).
    pub collate_subrequests: Option<bool>,
    subrequests: Vec<Subrequest>,
}

impl CompositeRequest {
    pub fn new(all_or_none: bool) -> Self {
        Self {
            all_or_none,
            ..Self::default()
        }
    }

    /// Adds a subrequest, refusing a 26th, a 6th query/collection, or a reused reference id.
    pub fn push(&mut self, subrequest: Subrequest) -> Result<&mut Self> {
        if self.subrequests.len() >= MAX_SUBREQUESTS {
            return Err(Error::InvalidRequest(format!(
                "a composite request holds at most {MAX_SUBREQUESTS} subrequests"
            )));
        }
        if subrequest.kind == Kind::QueryOrCollection
            && self
                .subrequests
                .iter()
                .filter(|s| s.kind == Kind::QueryOrCollection)
                .count()
                >= MAX_QUERY_OR_COLLECTION_SUBREQUESTS
        {
            return Err(Error::InvalidRequest(format!(
                "a composite request holds at most {MAX_QUERY_OR_COLLECTION_SUBREQUESTS} query or collection subrequests"
            )));
        }
        if self
            .subrequests
            .iter()
            .any(|s| s.reference_id == subrequest.reference_id)
        {
            return Err(Error::InvalidRequest(format!(
                "reference id {} is used twice",
                subrequest.reference_id
            )));
        }
        self.subrequests.push(subrequest);
        Ok(self)
    }

    /// Builder form of [`CompositeRequest::push`].
    pub fn with(mut self, subrequest: Subrequest) -> Result<Self> {
        self.push(subrequest)?;
        Ok(self)
    }

    pub fn subrequests(&self) -> &[Subrequest] {
        &self.subrequests
    }

    pub fn len(&self) -> usize {
        self.subrequests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subrequests.is_empty()
    }

    /// The request body for `version`.
    pub fn to_body(&self, version: ApiVersion) -> Value {
        let subrequests: Vec<Value> = self
            .subrequests
            .iter()
            .map(|s| {
                let mut entry = Map::new();
                entry.insert("method".into(), json!(s.method));
                entry.insert("url".into(), json!(s.url(version)));
                entry.insert("referenceId".into(), json!(s.reference_id.as_str()));
                if let Some(body) = &s.body {
                    entry.insert("body".into(), body.clone());
                }
                Value::Object(entry)
            })
            .collect();
        let mut body = Map::new();
        body.insert("allOrNone".into(), json!(self.all_or_none));
        if let Some(collate) = self.collate_subrequests {
            body.insert("collateSubrequests".into(), json!(collate));
        }
        body.insert("compositeRequest".into(), Value::Array(subrequests));
        Value::Object(body)
    }
}

/// One subrequest's result.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubrequestResult {
    #[serde(default)]
    pub body: Value,
    #[serde(default)]
    pub http_headers: BTreeMap<String, String>,
    pub http_status_code: u16,
    pub reference_id: String,
}

impl SubrequestResult {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.http_status_code)
    }

    /// The failure as [`Error::Api`] (or [`Error::RequestLimitExceeded`]), `None` on success.
    pub fn error(&self) -> Option<Error> {
        if self.is_success() {
            return None;
        }
        let errors = api_errors_from_value(self.body.clone());
        if let Some(limit) = errors
            .iter()
            .find(|e| e.error_code == "REQUEST_LIMIT_EXCEEDED")
        {
            return Some(Error::RequestLimitExceeded {
                message: limit.message.clone(),
            });
        }
        Some(Error::Api {
            status: self.http_status_code,
            errors,
        })
    }

    /// The body on success, else the error.
    pub fn into_result(self) -> Result<Value> {
        match self.error() {
            Some(error) => Err(error),
            None => Ok(self.body),
        }
    }

    /// The `id` a successful create subrequest returned.
    pub fn created_id(&self) -> Option<SalesforceId> {
        if !self.is_success() {
            return None;
        }
        self.body
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| SalesforceId::parse(id).ok())
    }

    /// Whether this subrequest failed only because another one did (allOrNone).
    fn is_collateral(&self) -> bool {
        self.error()
            .and_then(|e| e.error_code().map(|c| c == "PROCESSING_HALTED"))
            .unwrap_or(false)
    }
}

/// A composite response: always HTTP 200, with a result per subrequest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CompositeResponse {
    #[serde(rename = "compositeResponse", default)]
    pub results: Vec<SubrequestResult>,
}

impl CompositeResponse {
    pub fn get(&self, reference_id: &ReferenceId) -> Option<&SubrequestResult> {
        self.results
            .iter()
            .find(|r| r.reference_id == reference_id.as_str())
    }

    /// The failure that explains the outcome: the first that is not merely "rolled back
    /// because another failed" (`PROCESSING_HALTED`), else the first failure.
    pub fn first_failure(&self) -> Option<&SubrequestResult> {
        self.results
            .iter()
            .find(|r| !r.is_success() && !r.is_collateral())
            .or_else(|| self.results.iter().find(|r| !r.is_success()))
    }

    /// `Ok(self)` if every subrequest succeeded, else the [`Self::first_failure`] error.
    pub fn ensure_success(self) -> Result<Self> {
        match self.first_failure().and_then(SubrequestResult::error) {
            Some(error) => Err(error),
            None => Ok(self),
        }
    }
}

/// Builds sObject Collections records: each gets `attributes.type`, and `id` for updates.
fn collection_records<T: Serialize>(
    sobject: &str,
    records: impl Iterator<Item = (Option<SalesforceId>, T)>,
) -> Result<Vec<Value>> {
    validate_identifier(sobject)?;
    records
        .map(|(id, record)| {
            let Value::Object(mut map) = to_body(&record)? else {
                return Err(Error::InvalidRequest(
                    "a collection record must serialise to a JSON object".into(),
                ));
            };
            map.insert("attributes".into(), json!({ "type": sobject }));
            match id {
                Some(id) => {
                    map.insert("id".into(), json!(id.as_str()));
                }
                None if map.keys().any(|k| k.eq_ignore_ascii_case("id")) => {
                    return Err(Error::InvalidRequest(
                        "records to create must not carry an id".into(),
                    ));
                }
                None => {}
            }
            Ok(Value::Object(map))
        })
        .collect()
}

fn check_collection_size(len: usize) -> Result<()> {
    if len > MAX_COLLECTION_RECORDS {
        return Err(Error::InvalidRequest(format!(
            "sObject Collections take at most {MAX_COLLECTION_RECORDS} records, not {len}"
        )));
    }
    Ok(())
}

impl Client {
    /// `POST /composite`. The answer is HTTP 200 even when subrequests failed; see
    /// [`CompositeResponse::ensure_success`]. Not retried after it may have been sent.
    pub async fn composite(&self, request: &CompositeRequest) -> Result<CompositeResponse> {
        if request.is_empty() {
            return Ok(CompositeResponse {
                results: Vec::new(),
            });
        }
        let api_request = ApiRequest::new(Method::POST, self.rest_url(&["composite"])?)
            .json(&request.to_body(self.api_version()))?;
        self.send_json(&api_request).await
    }

    /// `POST /composite/sobjects`: creates up to 200 records of `sobject`, one SaveResult
    /// each, in order.
    pub async fn create_collection<T: Serialize>(
        &self,
        sobject: &str,
        records: &[T],
        all_or_none: bool,
    ) -> Result<Vec<SaveResult>> {
        check_collection_size(records.len())?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let records = collection_records(sobject, records.iter().map(|r| (None, r)))?;
        let request = ApiRequest::new(Method::POST, self.rest_url(&["composite", "sobjects"])?)
            .json(&json!({ "allOrNone": all_or_none, "records": records }))?;
        self.send_json(&request).await
    }

    /// `PATCH /composite/sobjects`: updates up to 200 records of `sobject` by id.
    pub async fn update_collection<T: Serialize>(
        &self,
        sobject: &str,
        records: &[(SalesforceId, T)],
        all_or_none: bool,
    ) -> Result<Vec<SaveResult>> {
        check_collection_size(records.len())?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let records =
            collection_records(sobject, records.iter().map(|(id, r)| (Some(id.clone()), r)))?;
        let request = ApiRequest::new(Method::PATCH, self.rest_url(&["composite", "sobjects"])?)
            .json(&json!({ "allOrNone": all_or_none, "records": records }))?;
        self.send_json(&request).await
    }

    /// `DELETE /composite/sobjects?ids=...`: deletes up to 200 records.
    pub async fn delete_collection(
        &self,
        ids: &[SalesforceId],
        all_or_none: bool,
    ) -> Result<Vec<SaveResult>> {
        check_collection_size(ids.len())?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut url = self.rest_url(&["composite", "sobjects"])?;
        let joined = ids
            .iter()
            .map(SalesforceId::as_str)
            .collect::<Vec<_>>()
            .join(",");
        url.query_pairs_mut()
            .append_pair("ids", &joined)
            .append_pair("allOrNone", if all_or_none { "true" } else { "false" });
        self.send_json(&ApiRequest::new(Method::DELETE, url)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rid(s: &str) -> ReferenceId {
        ReferenceId::new(s).unwrap()
    }

    #[test]
    fn reference_ids_are_validated() {
        for good in ["refAccount", "1st", "a_b_1"] {
            assert!(ReferenceId::new(good).is_ok(), "{good}");
        }
        for bad in ["", "_x", "a-b", "a.b", "a}", "a b", "日本"] {
            assert!(ReferenceId::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn references_render_and_refuse_escapes() {
        let account = rid("refAccount");
        assert_eq!(account.id().as_str(), "@{refAccount.id}");
        assert_eq!(
            account.field("records[0].Id").unwrap().to_string(),
            "@{refAccount.records[0].Id}"
        );
        for bad in [
            "", "id}", "id}@{x.y", ".id", "id.", "a..b", "id name", "id/x",
        ] {
            assert!(account.field(bad).is_err(), "{bad}");
        }
        // In a body a reference is just its string.
        assert_eq!(
            serde_json::to_value(json!({"AccountId": account.id()})).unwrap(),
            json!({"AccountId": "@{refAccount.id}"})
        );
    }

    #[test]
    fn builds_the_reference_example() {
        let account = rid("refAccount");
        let request = CompositeRequest::new(true)
            .with(
                Subrequest::create(
                    account.clone(),
                    "Account",
                    &json!({"Name": "Sample Account"}),
                )
                .unwrap(),
            )
            .unwrap()
            .with(
                Subrequest::create(
                    rid("refContact"),
                    "Contact",
                    &json!({"LastName": "Sample Contact", "AccountId": account.id()}),
                )
                .unwrap(),
            )
            .unwrap();
        assert_eq!(
            request.to_body(ApiVersion::DEFAULT),
            json!({ "allOrNone": true, "compositeRequest": [
              { "method": "POST", "url": "/services/data/v66.0/sobjects/Account", "referenceId": "refAccount", "body": { "Name": "Sample Account" } },
              { "method": "POST", "url": "/services/data/v66.0/sobjects/Contact", "referenceId": "refContact",
                "body": { "LastName": "Sample Contact", "AccountId": "@{refAccount.id}" } } ] })
        );
    }

    #[test]
    fn subrequest_urls() {
        let v = ApiVersion::parse("62.0").unwrap();
        let user = rid("user");
        let id = SalesforceId::parse("00558000001N0Ke").unwrap();
        assert_eq!(
            Subrequest::update(
                rid("freeze"),
                "UserLogin",
                user.field("records[0].Id").unwrap(),
                &json!({"IsFrozen": true})
            )
            .unwrap()
            .url(v),
            "/services/data/v62.0/sobjects/UserLogin/@{user.records[0].Id}"
        );
        assert_eq!(
            Subrequest::get(rid("g"), "User", &id, Some(&["Id", "Username"]))
                .unwrap()
                .url(v),
            "/services/data/v62.0/sobjects/User/00558000001N0KeAAK?fields=Id,Username"
        );
        assert_eq!(
            Subrequest::delete(rid("d"), "CaseShare", id.clone())
                .unwrap()
                .method,
            SubMethod::Delete
        );
        assert_eq!(
            Subrequest::upsert(rid("u"), "Contact", "Ext__c", "a/b c+d", &json!({}))
                .unwrap()
                .url(v),
            "/services/data/v62.0/sobjects/Contact/Ext__c/a%2Fb%20c%2Bd"
        );
        let q = Soql::select(&["Id"])
            .from("User")
            .filter(crate::soql::Cond::eq("Username", "a+b@x.com"))
            .build()
            .unwrap();
        assert_eq!(
            Subrequest::query(rid("q"), &q).url(v),
            "/services/data/v62.0/query?q=SELECT+Id+FROM+User+WHERE+Username+%3D+%27a%2Bb%40x.com%27"
        );
        assert!(Subrequest::create(rid("x"), "Account/../User", &json!({})).is_err());
        assert!(Subrequest::get(rid("x"), "User", &id, Some(&["Id&x=1"])).is_err());
    }

    #[test]
    fn limits_are_checked_client_side() {
        let mut request = CompositeRequest::new(false);
        for i in 0..MAX_SUBREQUESTS {
            request
                .push(Subrequest::create(rid(&format!("r{i}")), "Account", &json!({})).unwrap())
                .unwrap();
        }
        assert!(
            request
                .push(Subrequest::create(rid("r25"), "Account", &json!({})).unwrap())
                .is_err()
        );
        assert_eq!(request.len(), 25);

        let q = Soql::select(&["Id"]).from("User").build().unwrap();
        let mut request = CompositeRequest::new(false);
        for i in 0..5 {
            request
                .push(Subrequest::query(rid(&format!("q{i}")), &q))
                .unwrap();
        }
        assert!(request.push(Subrequest::query(rid("q5"), &q)).is_err());

        let mut request = CompositeRequest::new(false);
        request.push(Subrequest::query(rid("same"), &q)).unwrap();
        assert!(request.push(Subrequest::query(rid("same"), &q)).is_err());
    }

    #[test]
    fn responses_decode_and_failures_become_api_errors() {
        let body = json!({"compositeResponse": [
            { "body": { "id": "001R00000064wdtIAA", "success": true, "errors": [] },
              "httpHeaders": { "Location": "/services/data/v66.0/sobjects/Account/001R00000064wdtIAA" },
              "httpStatusCode": 201, "referenceId": "refAccount" },
            { "body": [ { "errorCode": "PROCESSING_HALTED", "message": "The transaction was rolled back since another operation in the same transaction failed." } ],
              "httpHeaders": { }, "httpStatusCode": 400, "referenceId": "other" },
            { "body": [ { "message": "Email: invalid email address: Not a real email address", "errorCode": "INVALID_EMAIL_ADDRESS", "fields": [ "Email" ] } ],
              "httpHeaders": { }, "httpStatusCode": 400, "referenceId": "badContact" }
        ]});
        let response: CompositeResponse = serde_json::from_value(body).unwrap();
        let account = response.get(&rid("refAccount")).unwrap();
        assert!(account.is_success());
        assert_eq!(account.created_id().unwrap().as_str(), "001R00000064wdtIAA");
        assert_eq!(
            account.http_headers.get("Location").map(String::as_str),
            Some("/services/data/v66.0/sobjects/Account/001R00000064wdtIAA")
        );
        // The root cause, not the collateral PROCESSING_HALTED, explains the failure.
        assert_eq!(response.first_failure().unwrap().reference_id, "badContact");
        let err = response.clone().ensure_success().unwrap_err();
        match &err {
            Error::Api { status, errors } => {
                assert_eq!(*status, 400);
                assert_eq!(errors[0].error_code, "INVALID_EMAIL_ADDRESS");
                assert_eq!(errors[0].fields, vec!["Email"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            response
                .get(&rid("badContact"))
                .unwrap()
                .clone()
                .into_result()
                .is_err()
        );
        assert!(
            response
                .get(&rid("refAccount"))
                .unwrap()
                .clone()
                .into_result()
                .is_ok()
        );

        let ok: CompositeResponse = serde_json::from_value(json!({"compositeResponse": [
            {"body": null, "httpHeaders": {}, "httpStatusCode": 204, "referenceId": "d"}]}))
        .unwrap();
        assert!(ok.ensure_success().is_ok());
    }

    #[test]
    fn collection_records_get_type_and_id() {
        let id = SalesforceId::parse("001D000000IqhSL").unwrap();
        let created =
            collection_records("Account", [(None, json!({"Name": "A"}))].into_iter()).unwrap();
        assert_eq!(
            created,
            vec![json!({"attributes": {"type": "Account"}, "Name": "A"})]
        );
        let updated =
            collection_records("Account", [(Some(id), json!({"Name": "B"}))].into_iter()).unwrap();
        assert_eq!(
            updated,
            vec![
                json!({"attributes": {"type": "Account"}, "id": "001D000000IqhSLIAZ", "Name": "B"})
            ]
        );
        assert!(collection_records("Account", [(None, json!({"Id": "x"}))].into_iter()).is_err());
        assert!(collection_records("Account", [(None, json!([1]))].into_iter()).is_err());
        assert!(collection_records("Account Name", [(None, json!({}))].into_iter()).is_err());
        assert!(check_collection_size(200).is_ok());
        assert!(check_collection_size(201).is_err());
    }

    #[test]
    fn collection_save_results_decode() {
        let results: Vec<SaveResult> = serde_json::from_str(
            r#"[{"id":"001D000000IqhSLIAZ","success":true,"errors":[]},
                {"success":false,"errors":[{"statusCode":"DUPLICATES_DETECTED","message":"Use one of these records?","fields":[]}]},
                {"id":null,"success":false,"errors":[{"statusCode":"ALL_OR_NONE_OPERATION_ROLLED_BACK","message":"Record rolled back because not all records were valid and the request was using AllOrNone header","fields":[]}]}]"#,
        )
        .unwrap();
        assert!(results[0].success);
        assert_eq!(results[1].errors[0].error_code, "DUPLICATES_DETECTED");
        assert_eq!(
            results[2]
                .clone()
                .into_result(400)
                .unwrap_err()
                .error_code(),
            Some("ALL_OR_NONE_OPERATION_ROLLED_BACK")
        );
    }
}
