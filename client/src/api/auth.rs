//! The account routes: sign up, log in and out, and who the token is for.

use reqwest::Method;
use syncscript_protocol::{LoginRequest, LoginResponse, SignupRequest, User, UserResponse};

use super::ApiClient;
use crate::error::ClientError;

impl ApiClient {
    /// `POST /api/auth/signup`.
    pub async fn signup(
        &self,
        email: &str,
        name: &str,
        password: &str,
    ) -> Result<User, ClientError> {
        let body = SignupRequest {
            email: email.into(),
            name: name.into(),
            password: password.into(),
        };
        let answer: UserResponse = self
            .with_body(Method::POST, "/api/auth/signup", &body)
            .await?;
        Ok(answer.user)
    }

    /// `POST /api/auth/login`: the token is in the answer (and nowhere else).
    pub async fn login(&self, email: &str, password: &str) -> Result<LoginResponse, ClientError> {
        let body = LoginRequest {
            email: email.into(),
            password: password.into(),
        };
        self.with_body(Method::POST, "/api/auth/login", &body).await
    }

    /// `POST /api/auth/logout`: revokes this client's session.
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.no_content(Method::POST, "/api/auth/logout").await
    }

    /// `GET /api/me`.
    pub async fn me(&self) -> Result<User, ClientError> {
        let answer: UserResponse = self.get("/api/me").await?;
        Ok(answer.user)
    }
}
