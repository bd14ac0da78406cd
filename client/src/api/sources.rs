//! The source routes: a vault's snapshot, and create, read, update and
//! delete one source.

use reqwest::Method;
use syncscript_protocol::{
    CreateSourceRequest, Source, SourceList, SourceResponse, UpdateSourceRequest,
};

use super::{ApiClient, Mutate, NO_BODY, segment};
use crate::error::ClientError;

impl ApiClient {
    /// `GET /api/vaults/{id}/sources`: the snapshot and its seq.
    pub async fn list_sources(&self, vault_id: &str) -> Result<SourceList, ClientError> {
        self.get(&format!("/api/vaults/{}/sources", segment(vault_id)))
            .await
    }

    /// `POST /api/vaults/{id}/sources`, sent as `how` says.
    pub async fn create_source(
        &self,
        vault_id: &str,
        title: &str,
        file_url: &str,
        how: Mutate,
    ) -> Result<Source, ClientError> {
        let body = CreateSourceRequest {
            title: title.into(),
            file_url: file_url.into(),
        };
        let path = format!("/api/vaults/{}/sources", segment(vault_id));
        let answer: SourceResponse = self
            .mutate_json(Method::POST, &path, Some(&body), how)
            .await?;
        Ok(answer.source)
    }

    /// `GET /api/sources/{id}`.
    pub async fn get_source(&self, source_id: &str) -> Result<Source, ClientError> {
        let answer: SourceResponse = self.get(&source_path(source_id)).await?;
        Ok(answer.source)
    }

    /// `PATCH /api/sources/{id}`, sent as `how` says.
    pub async fn update_source(
        &self,
        source_id: &str,
        changes: &UpdateSourceRequest,
        how: Mutate,
    ) -> Result<Source, ClientError> {
        let answer: SourceResponse = self
            .mutate_json(Method::PATCH, &source_path(source_id), Some(changes), how)
            .await?;
        Ok(answer.source)
    }

    /// `DELETE /api/sources/{id}`, sent as `how` says.
    pub async fn delete_source(&self, source_id: &str, how: Mutate) -> Result<(), ClientError> {
        self.mutate(Method::DELETE, &source_path(source_id), NO_BODY, how)
            .await?;
        Ok(())
    }
}

/// The path of one source.
fn source_path(source_id: &str) -> String {
    format!("/api/sources/{}", segment(source_id))
}
