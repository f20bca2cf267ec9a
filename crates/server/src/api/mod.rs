//! The HTTP API: one router per resource, assembled with utoipa-axum so that the routes and the
//! OpenAPI document come from the same code and cannot drift.

mod caller;
mod exports;
mod fallbacks;
mod guards;
mod health;
mod jobs;
mod path_params;
mod security_doc;

use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "icp-service",
        description = "Turns a customer list into an Ideal Customer Profile and lookalike audiences.\n\n\
            Post customer identifiers as a job, poll it, read the ICP and download the audiences. \
            Errors are RFC 9457 `application/problem+json`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "jobs", description = "ICP jobs: create, poll, list, cancel, delete, read results"),
        (name = "audiences", description = "Full audience exports"),
        (name = "health", description = "Liveness and readiness"),
    ),
    components(schemas(crate::problem::Problem, crate::problem::FieldError))
)]
struct ApiDoc;

/// The application's routes with their OpenAPI description.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(jobs::router())
        .merge(exports::router())
        .merge(health::router())
}

/// The OpenAPI document, as served at `/openapi.json` and committed in `openapi/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut spec = routes().into_openapi();
    security_doc::document(&mut spec);
    spec
}

/// The complete router: API, docs UI, problem+json for every error.
pub fn router(state: AppState) -> Router {
    let (api, mut spec) = routes().split_for_parts();
    security_doc::document(&mut spec);
    let timeout = state.config.request_timeout;
    api.merge(SwaggerUi::new("/docs").url("/openapi.json", spec))
        .fallback(fallbacks::not_found)
        .method_not_allowed_fallback(fallbacks::method_not_allowed)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            timeout,
            guards::time_limit,
        ))
        .layer(axum::middleware::from_fn(guards::headers_and_coding))
        .layer(axum::middleware::map_response(
            fallbacks::ensure_problem_json,
        ))
}
