//! The API-key scheme in the OpenAPI document: every `/v1` operation requires it and may answer
//! 401; creating a job may also answer 429 (the per-key limit on jobs in flight). Applied to the
//! assembled document rather than written on each route, so a new route cannot forget it.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{Ref, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, ContentBuilder, ObjectBuilder, OpenApi, RefOr};

const SCHEME: &str = "api_key";
const UNAUTHORIZED: &str = "Unauthorized";
const TOO_MANY_REQUESTS: &str = "TooManyRequests";

pub fn document(openapi: &mut OpenApi) {
    let components = openapi
        .components
        .get_or_insert_with(|| ComponentsBuilder::new().build());
    components.add_security_scheme(
        SCHEME,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("icp_<id>_<secret>")
                .description(Some(
                    "An API key made with `icp keys create`, sent as `Authorization: Bearer \
                     <key>`. A job belongs to the key that created it. A service with no key in \
                     its database runs without authentication, on loopback only.",
                ))
                .build(),
        ),
    );
    components.responses.insert(
        UNAUTHORIZED.to_owned(),
        RefOr::T(
            problem("No API key, or not a valid one")
                .header(
                    "WWW-Authenticate",
                    HeaderBuilder::new()
                        .schema(Some(
                            ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)),
                        ))
                        .description(Some("`Bearer realm=\"icp\"`"))
                        .build(),
                )
                .build(),
        ),
    );
    components.responses.insert(
        TOO_MANY_REQUESTS.to_owned(),
        RefOr::T(
            problem("The key already has the most jobs queued or running that it may")
                .header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(Some(
                            ObjectBuilder::new().schema_type(SchemaType::Type(Type::Integer)),
                        ))
                        .description(Some("Seconds to wait before trying again"))
                        .build(),
                )
                .build(),
        ),
    );

    for (path, item) in openapi.paths.paths.iter_mut() {
        if !path.starts_with("/v1/") {
            continue;
        }
        let creates_jobs = path == "/v1/jobs";
        for (operation, is_post) in [
            (&mut item.get, false),
            (&mut item.post, true),
            (&mut item.put, false),
            (&mut item.patch, false),
            (&mut item.delete, false),
        ] {
            if let Some(operation) = operation {
                require_key(operation, creates_jobs && is_post);
            }
        }
    }
}

fn require_key(operation: &mut Operation, limited: bool) {
    operation.security = Some(vec![SecurityRequirement::new(SCHEME, Vec::<String>::new())]);
    let responses = &mut operation.responses.responses;
    responses.insert(
        "401".to_owned(),
        RefOr::Ref(Ref::from_response_name(UNAUTHORIZED)),
    );
    if limited {
        responses.insert(
            "429".to_owned(),
            RefOr::Ref(Ref::from_response_name(TOO_MANY_REQUESTS)),
        );
    }
}

fn problem(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/problem+json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    )
}
