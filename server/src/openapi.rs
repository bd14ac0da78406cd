//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations and the protocol types: the routes are registered through
//! [`router`], so a route cannot exist without its documentation.

use std::sync::LazyLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::error::Json;
use crate::state::AppState;
use crate::{auth, health, members, sources, vaults};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "SyncScript",
        description = "Real-time collaboration server for research vaults. \
                       Authenticate with `Authorization: Bearer <token>` or the \
                       `syncscript_session` cookie set by login."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts and sessions"),
        (name = "vaults", description = "Vaults and their event log"),
        (name = "members", description = "Vault members and roles"),
        (name = "sources", description = "Sources (PDF metadata)"),
        (name = "health", description = "Probes"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every documented route, with its documentation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::router())
        .merge(vaults::router())
        .merge(members::router())
        .merge(sources::router())
        .merge(health::router())
}

static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> =
    LazyLock::new(|| router().split_for_parts().1);

/// `GET /api/openapi.json`.
pub async fn serve_document() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(&DOCUMENT)
}
