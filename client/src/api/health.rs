//! The probes: whether the server is up, and whether it is ready to serve.

use syncscript_protocol::Health;

use super::ApiClient;
use crate::error::ClientError;

impl ApiClient {
    /// `GET /healthz`.
    pub async fn healthz(&self) -> Result<Health, ClientError> {
        self.get("/healthz").await
    }

    /// `GET /readyz`.
    pub async fn readyz(&self) -> Result<Health, ClientError> {
        self.get("/readyz").await
    }
}
