//! The vault routes: list, create, read, rename and delete.

use reqwest::Method;
use syncscript_protocol::{
    RenameVaultRequest, Vault, VaultDetail, VaultInput, VaultList, VaultResponse, VaultSummary,
};

use super::{ApiClient, Mutate, NO_BODY, segment};
use crate::error::ClientError;

impl ApiClient {
    /// `GET /api/vaults`: the caller's vaults.
    pub async fn list_vaults(&self) -> Result<Vec<VaultSummary>, ClientError> {
        let answer: VaultList = self.get("/api/vaults").await?;
        Ok(answer.vaults)
    }

    /// `POST /api/vaults`, sent as `how` says: the caller becomes its owner.
    pub async fn create_vault(&self, name: &str, how: Mutate) -> Result<Vault, ClientError> {
        let body = VaultInput { name: name.into() };
        let answer: VaultResponse = self
            .mutate_json(Method::POST, "/api/vaults", Some(&body), how)
            .await?;
        Ok(answer.vault)
    }

    /// `GET /api/vaults/{id}`.
    pub async fn get_vault(&self, vault_id: &str) -> Result<VaultDetail, ClientError> {
        self.get(&format!("/api/vaults/{}", segment(vault_id)))
            .await
    }

    /// `PATCH /api/vaults/{id}`, sent as `how` says.
    pub async fn rename_vault(
        &self,
        vault_id: &str,
        name: &str,
        how: Mutate,
    ) -> Result<Vault, ClientError> {
        let body = RenameVaultRequest {
            name: Some(name.into()),
        };
        let path = format!("/api/vaults/{}", segment(vault_id));
        let answer: VaultResponse = self
            .mutate_json(Method::PATCH, &path, Some(&body), how)
            .await?;
        Ok(answer.vault)
    }

    /// `DELETE /api/vaults/{id}`, sent as `how` says.
    pub async fn delete_vault(&self, vault_id: &str, how: Mutate) -> Result<(), ClientError> {
        let path = format!("/api/vaults/{}", segment(vault_id));
        self.mutate(Method::DELETE, &path, NO_BODY, how).await?;
        Ok(())
    }
}
