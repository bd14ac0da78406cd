//! The event-log route: a page of a vault's sequenced events.

use reqwest::Method;
use syncscript_protocol::EventList;

use super::{ApiClient, segment};
use crate::error::ClientError;

impl ApiClient {
    /// `GET /api/vaults/{id}/events?since=N&limit=M`: a page of the log.
    pub async fn list_events(
        &self,
        vault_id: &str,
        since: Option<i64>,
        limit: Option<i64>,
    ) -> Result<EventList, ClientError> {
        let path = format!("/api/vaults/{}/events", segment(vault_id));
        let mut query = Vec::new();
        if let Some(since) = since {
            query.push(("since", since));
        }
        if let Some(limit) = limit {
            query.push(("limit", limit));
        }
        self.json(&path, self.request(Method::GET, &path).query(&query))
            .await
    }
}
