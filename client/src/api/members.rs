//! The member routes of a vault: list, add, change a role, remove.

use reqwest::Method;
use syncscript_protocol::{
    AddMemberRequest, Member, MemberList, MemberResponse, Role, UpdateMemberRequest,
};

use super::{ApiClient, Mutate, NO_BODY, segment};
use crate::error::ClientError;

impl ApiClient {
    /// `GET /api/vaults/{id}/members`.
    pub async fn list_members(&self, vault_id: &str) -> Result<Vec<Member>, ClientError> {
        let path = format!("/api/vaults/{}/members", segment(vault_id));
        let answer: MemberList = self.get(&path).await?;
        Ok(answer.members)
    }

    /// `POST /api/vaults/{id}/members`, sent as `how` says.
    pub async fn add_member(
        &self,
        vault_id: &str,
        email: &str,
        role: Role,
        how: Mutate,
    ) -> Result<Member, ClientError> {
        let body = AddMemberRequest {
            email: email.into(),
            role: role.as_str().into(),
        };
        let path = format!("/api/vaults/{}/members", segment(vault_id));
        let answer: MemberResponse = self
            .mutate_json(Method::POST, &path, Some(&body), how)
            .await?;
        Ok(answer.member)
    }

    /// `PATCH /api/vaults/{id}/members/{userId}`, sent as `how` says.
    pub async fn update_member(
        &self,
        vault_id: &str,
        user_id: &str,
        role: Role,
        how: Mutate,
    ) -> Result<Member, ClientError> {
        let body = UpdateMemberRequest {
            role: Some(role.as_str().into()),
        };
        let answer: MemberResponse = self
            .mutate_json(
                Method::PATCH,
                &member_path(vault_id, user_id),
                Some(&body),
                how,
            )
            .await?;
        Ok(answer.member)
    }

    /// `DELETE /api/vaults/{id}/members/{userId}`, sent as `how` says.
    pub async fn remove_member(
        &self,
        vault_id: &str,
        user_id: &str,
        how: Mutate,
    ) -> Result<(), ClientError> {
        self.mutate(
            Method::DELETE,
            &member_path(vault_id, user_id),
            NO_BODY,
            how,
        )
        .await?;
        Ok(())
    }
}

/// The path of one member of a vault.
fn member_path(vault_id: &str, user_id: &str) -> String {
    format!(
        "/api/vaults/{}/members/{}",
        segment(vault_id),
        segment(user_id)
    )
}
