//! The HTTP API: one router per resource, assembled with utoipa-axum so that the routes and the
//! OpenAPI document come from the same code and cannot drift.

mod body_rules;
mod caller;
mod clusters;
mod console;
mod custom_audiences;
mod doc_json;
mod events;
mod exports;
mod fallbacks;
mod guards;
mod guards_doc;
mod health;
mod identifier_schema;
mod jobs;
mod links_doc;
mod metrics;
mod path_params;
mod query_options;
mod report;
mod responses;
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
        (name = "audiences", description = "Full audience exports, custom audiences and the traits to write them with"),
        (name = "health", description = "Liveness and readiness"),
    ),
    components(schemas(crate::problem::Problem, crate::problem::FieldError, events::JobEventData))
)]
struct ApiDoc;

/// The application's routes with their OpenAPI description.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(jobs::router())
        .merge(events::router())
        .merge(exports::router())
        .merge(clusters::router())
        .merge(custom_audiences::router())
        .merge(report::router())
        .merge(health::router())
        .merge(metrics::router())
}

/// The OpenAPI document, as served at `/openapi.json` and committed in `openapi/openapi.json`.
pub fn openapi() -> serde_json::Value {
    finish(routes().into_openapi())
}

/// The derived document with what the derives cannot state: the key scheme, every rule the
/// handlers check, every status a route answers, and the links from a new job.
fn finish(mut spec: utoipa::openapi::OpenApi) -> serde_json::Value {
    security_doc::document(&mut spec);
    let mut doc = serde_json::to_value(&spec).expect("the OpenAPI document serialises");
    query_options::document(&mut doc);
    body_rules::document(&mut doc);
    responses::document(&mut doc);
    guards_doc::document(&mut doc);
    links_doc::document(&mut doc);
    events::document(&mut doc);
    doc
}

/// The complete router: API, docs UI, problem+json for every error.
pub fn router(state: AppState) -> Router {
    let (api, spec) = routes().split_for_parts();
    let timeout = state.config.request_timeout;
    let metrics = state.metrics.clone();
    api.merge(SwaggerUi::new("/docs").external_url_unchecked("/openapi.json", finish(spec)))
        .merge(console::router())
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
        // Outermost, so each answer is counted as the client gets it (guards' answers included).
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::record,
        ))
}
