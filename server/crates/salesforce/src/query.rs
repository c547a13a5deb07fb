//! SOQL queries over REST (§2.4): one page, the next page, all pages, or a stream of records.
//!
//! Records carry an `attributes` object (`{"type", "url"}`), nested relationship records
//! too. Typed records simply ignore it (serde skips unknown keys); [`Record`] keeps it, and
//! [`strip_attributes`] removes it from untyped JSON.

use futures::{Stream, TryStreamExt, stream};

use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{ApiRequest, Client};
use crate::error::{Error, Result};
use crate::soql::Soql;
use crate::wire;

/// Salesforce's allowed `batchSize` range for `Sforce-Query-Options` (§2.4).
pub const BATCH_SIZE_RANGE: std::ops::RangeInclusive<u32> = 200..=2000;

/// How to run a query.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryOptions {
    /// Use `queryAll`, which also returns deleted and archived records.
    pub include_deleted: bool,
    /// Records per page (`Sforce-Query-Options: batchSize=N`, 200–2000); a hint Salesforce
    /// may undercut.
    pub batch_size: Option<u32>,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryPage<T> {
    #[serde(deserialize_with = "wire::lenient_u64")]
    pub total_size: u64,
    #[serde(deserialize_with = "wire::lenient_bool")]
    pub done: bool,
    #[serde(default = "Vec::new")]
    pub records: Vec<T>,
    /// The relative URL of the next page, until `done`.
    #[serde(default)]
    pub next_records_url: Option<String>,
}

/// A record's `attributes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub url: Option<String>,
}

/// A record that keeps its `attributes` next to the typed fields.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Record<T> {
    #[serde(default)]
    pub attributes: Option<Attributes>,
    #[serde(flatten)]
    pub fields: T,
}

/// Removes `attributes` from a record and every nested record (relationship objects and
/// subquery results), leaving only the fields.
pub fn strip_attributes(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("attributes");
            for nested in map.values_mut() {
                strip_attributes(nested);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_attributes),
        _ => {}
    }
}

impl QueryOptions {
    fn header(&self) -> Result<Option<(HeaderName, HeaderValue)>> {
        let Some(size) = self.batch_size else {
            return Ok(None);
        };
        if !BATCH_SIZE_RANGE.contains(&size) {
            return Err(Error::InvalidRequest(format!(
                "batch size {size} is outside Salesforce's 200–2000"
            )));
        }
        let value = HeaderValue::from_str(&format!("batchSize={size}"))
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        Ok(Some((
            HeaderName::from_static("sforce-query-options"),
            value,
        )))
    }
}

impl Client {
    /// The first page of `soql`.
    pub async fn query<T: DeserializeOwned>(&self, soql: &Soql) -> Result<QueryPage<T>> {
        self.query_with(soql, QueryOptions::default()).await
    }

    /// The first page of `soql`, with options.
    pub async fn query_with<T: DeserializeOwned>(
        &self,
        soql: &Soql,
        options: QueryOptions,
    ) -> Result<QueryPage<T>> {
        let resource = if options.include_deleted {
            "queryAll"
        } else {
            "query"
        };
        let mut url = self.rest_url(&[resource])?;
        url.query_pairs_mut().append_pair("q", soql.as_str());
        self.query_page(url, options).await
    }

    /// The page at `next_records_url` (from the previous page).
    pub async fn query_more<T: DeserializeOwned>(
        &self,
        next_records_url: &str,
    ) -> Result<QueryPage<T>> {
        self.query_more_with(next_records_url, QueryOptions::default())
            .await
    }

    pub async fn query_more_with<T: DeserializeOwned>(
        &self,
        next_records_url: &str,
        options: QueryOptions,
    ) -> Result<QueryPage<T>> {
        let url = self.resolve_relative(next_records_url)?;
        self.query_page(url, options).await
    }

    async fn query_page<T: DeserializeOwned>(
        &self,
        url: url::Url,
        options: QueryOptions,
    ) -> Result<QueryPage<T>> {
        let mut request = ApiRequest::new(Method::GET, url);
        if let Some((name, value)) = options.header()? {
            request = request.header(name, value);
        }
        self.send_json(&request).await
    }

    /// Every record of `soql`, following `nextRecordsUrl` until done.
    pub async fn query_all<T: DeserializeOwned>(&self, soql: &Soql) -> Result<Vec<T>> {
        self.query_all_with(soql, QueryOptions::default()).await
    }

    pub async fn query_all_with<T: DeserializeOwned>(
        &self,
        soql: &Soql,
        options: QueryOptions,
    ) -> Result<Vec<T>> {
        let mut page: QueryPage<T> = self.query_with(soql, options).await?;
        let mut records = std::mem::take(&mut page.records);
        while let (false, Some(next)) = (page.done, page.next_records_url.take()) {
            page = self.query_more_with(&next, options).await?;
            records.append(&mut page.records);
        }
        Ok(records)
    }

    /// The records of `soql` as a stream, fetching each page when the previous one is used
    /// up, so large results are never held in memory at once.
    pub fn query_stream<T: DeserializeOwned + Send + 'static>(
        &self,
        soql: &Soql,
        options: QueryOptions,
    ) -> impl Stream<Item = Result<T>> + Send + 'static {
        enum Next {
            First(Soql),
            More(String),
            Done,
        }
        let client = self.clone();
        stream::try_unfold(
            (client, Next::First(soql.clone()), options),
            |(client, next, options)| async move {
                let page: QueryPage<T> = match next {
                    Next::First(soql) => client.query_with(&soql, options).await?,
                    Next::More(url) => client.query_more_with(&url, options).await?,
                    Next::Done => return Ok::<_, Error>(None),
                };
                let next = match (page.done, page.next_records_url) {
                    (false, Some(url)) => Next::More(url),
                    _ => Next::Done,
                };
                Ok(Some((
                    stream::iter(page.records.into_iter().map(Ok)),
                    (client, next, options),
                )))
            },
        )
        .try_flatten()
    }

    /// `SELECT COUNT() FROM ...`: the number of matching records.
    pub async fn count(&self, soql: &Soql) -> Result<u64> {
        let page: QueryPage<Value> = self.query(soql).await?;
        Ok(page.total_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"{
      "totalSize": 3222,
      "done": false,
      "nextRecordsUrl": "/services/data/v66.0/query/01gRO0000016PIAYA2-500",
      "records": [
        { "attributes": { "type": "Contact", "url": "/services/data/v66.0/sobjects/Contact/003RO0000035WQgYAM" },
          "Id": "003RO0000035WQgYAM", "Name": "John Smith" }
      ]
    }"#;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct Contact {
        id: String,
        name: String,
    }

    #[test]
    fn pages_decode_into_typed_records() {
        let page: QueryPage<Contact> = serde_json::from_str(PAGE).unwrap();
        assert_eq!(page.total_size, 3222);
        assert!(!page.done);
        assert_eq!(
            page.next_records_url.as_deref(),
            Some("/services/data/v66.0/query/01gRO0000016PIAYA2-500")
        );
        assert_eq!(
            page.records,
            vec![Contact {
                id: "003RO0000035WQgYAM".into(),
                name: "John Smith".into()
            }]
        );
    }

    #[test]
    fn records_can_keep_their_attributes() {
        let page: QueryPage<Record<Contact>> = serde_json::from_str(PAGE).unwrap();
        let record = &page.records[0];
        assert_eq!(record.attributes.as_ref().unwrap().type_, "Contact");
        assert_eq!(record.fields.name, "John Smith");
    }

    #[test]
    fn last_page_and_count_pages_decode() {
        let page: QueryPage<Value> =
            serde_json::from_str(r#"{"totalSize":7,"done":true,"records":[]}"#).unwrap();
        assert!(page.done);
        assert!(page.next_records_url.is_none());
        assert_eq!(page.total_size, 7);
    }

    #[test]
    fn attributes_are_stripped_recursively() {
        let mut record = serde_json::json!({
            "attributes": {"type": "PermissionSetAssignment", "url": "/x"},
            "Id": "0Pa2s000000PC8fCAG",
            "PermissionSet": {"attributes": {"type": "PermissionSet", "url": "/y"}, "Name": "Acme"},
            "Shares": {"totalSize": 1, "done": true, "records": [{"attributes": {"type": "CaseShare"}, "Id": "1"}]}
        });
        strip_attributes(&mut record);
        assert_eq!(
            record,
            serde_json::json!({
                "Id": "0Pa2s000000PC8fCAG",
                "PermissionSet": {"Name": "Acme"},
                "Shares": {"totalSize": 1, "done": true, "records": [{"Id": "1"}]}
            })
        );
    }

    #[test]
    fn batch_size_header() {
        let options = QueryOptions {
            batch_size: Some(500),
            ..QueryOptions::default()
        };
        let (name, value) = options.header().unwrap().unwrap();
        assert_eq!(name.as_str(), "sforce-query-options");
        assert_eq!(value.to_str().unwrap(), "batchSize=500");
        assert!(QueryOptions::default().header().unwrap().is_none());
        for bad in [0, 199, 2001] {
            let options = QueryOptions {
                batch_size: Some(bad),
                ..QueryOptions::default()
            };
            assert!(options.header().is_err());
        }
    }

    #[tokio::test]
    async fn next_records_urls_must_stay_on_the_org() {
        let client = crate::client::tests::test_client();
        let err = client
            .query_more::<Value>("https://evil.example/services/data/v66.0/query/x")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidRequest(_)));
    }
}
