//! `GET /v1/jobs/{id}/audiences/{strategy}/export`: the whole audience, streamed from the chunks
//! the find stage stored, re-encoded on the fly (never held in memory whole).

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use icp_contract::{AudienceRecord, ExportFormat, IdType};
use icp_population::AudienceEncoder;
use icp_store::Store;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::jobs::succeeded_result;
use super::path_params::{AudienceName, JobId};
use crate::auth::Caller;
use crate::decode::parse_query;
use crate::model::JobResult;
use crate::options::JobOptions;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export_audience))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ExportQuery {
    /// `csv` (default), `json` or `jsonl`.
    format: Option<ExportFormat>,
}

/// Download one audience in full.
///
/// CSV is safe to open in a spreadsheet: a cell that starts with `=`, `+`, `-`, `@`, a tab or a
/// carriage return, and is not a plain number (`-5`, `+15125550134`), is written with a leading
/// `'` so that no spreadsheet runs it as a formula. JSON and JSON lines carry every value as it is.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/audiences/{strategy}/export",
    tag = "audiences",
    params(
        ("id" = String, Path, description = "The job's id"),
        ("strategy" = String, Path, description = "The audience: a strategy (precision, standard, hybrid, reach), a ranked tier (ranked_1, ranked_2, ranked_5, ranked_10), a segment's audience (segment.<name>.<strategy>), the segments' combined one (combined) or a custom audience (custom-1, custom-2 …)"),
        ExportQuery,
    ),
    responses(
        (status = 200, description = "The audience: CSV (`person_id,email1,…`), a JSON array, or JSON lines",
            content((String = "text/csv"), (Vec<AudienceRecord> = "application/json"), (String = "application/x-ndjson"))),
        (status = 404, description = "No such job or no such audience", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has not succeeded (yet)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown format", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn export_audience(
    State(state): State<AppState>,
    caller: Caller,
    JobId(id): JobId,
    audience: AudienceName,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let q: ExportQuery = parse_query(query.as_deref())?;
    let format = match q.format.unwrap_or(ExportFormat::Csv) {
        ExportFormat::None => {
            return Err(ApiError::validation(
                "query.format",
                "use csv, json or jsonl",
            ));
        }
        f => f,
    };
    let (record, result) = succeeded_result(&state, &caller, id).await?;
    let options: JobOptions = serde_json::from_value(record.options).map_err(ApiError::internal)?;
    let result: JobResult = serde_json::from_value(result).map_err(ApiError::internal)?;
    let built = match &audience {
        AudienceName::Strategy(strategy) => {
            result.audiences.iter().any(|a| a.strategy == *strategy)
        }
        AudienceName::Ranked(name) => result
            .ranked
            .as_ref()
            .is_some_and(|r| r.tiers.iter().any(|t| t.name == *name)),
        AudienceName::Segments(name) => result
            .segments
            .iter()
            .flat_map(|s| &s.audiences)
            .chain(&result.combined_audience)
            .any(|a| a.name.as_deref() == Some(name)),
        AudienceName::Custom(name) => result.custom_audiences.iter().any(|a| a.id == *name),
    };
    if !built {
        return Err(ApiError::NotFound(format!(
            "the job built no {} audience",
            audience.as_str()
        )));
    }

    let (content_type, ext) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ExportFormat::Json => ("application/json", "json"),
        _ => ("application/x-ndjson", "jsonl"),
    };
    let body = Body::from_stream(export_stream(
        state.store.clone(),
        id,
        audience.as_str().to_owned(),
        format,
        options.identifier_type,
    ));
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let disposition = format!(
        "attachment; filename=\"audience-{}-{id}.{ext}\"",
        audience.as_str()
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(ApiError::internal)?,
    );
    Ok(response)
}

enum Phase {
    Header,
    Chunk(i64),
    Done,
}

/// Header, then one stored chunk at a time, then the footer.
fn export_stream(
    store: Store,
    id: Uuid,
    name: String,
    format: ExportFormat,
    id_type: IdType,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    let encoder = AudienceEncoder::new(format, Some(id_type));
    futures::stream::unfold(
        (store, encoder, Phase::Header),
        move |(store, mut encoder, phase)| {
            let name = name.clone();
            async move {
                match phase {
                    Phase::Header => {
                        let bytes = Bytes::from(encoder.header());
                        Some((Ok(bytes), (store, encoder, Phase::Chunk(0))))
                    }
                    Phase::Chunk(n) => match store.export_chunk(id, &name, n).await {
                        Ok(Some(body)) => {
                            let out = if format == ExportFormat::Jsonl {
                                Bytes::from(body)
                            } else {
                                let mut out = Vec::with_capacity(body.len() * 2);
                                for line in body.lines().filter(|l| !l.is_empty()) {
                                    match serde_json::from_str::<AudienceRecord>(line) {
                                        Ok(record) => out.extend(encoder.record(&record)),
                                        Err(e) => {
                                            tracing::error!(job = %id, error = %e, "stored export chunk unreadable");
                                            return Some((
                                                Err(std::io::Error::other(
                                                    "stored export unreadable",
                                                )),
                                                (store, encoder, Phase::Done),
                                            ));
                                        }
                                    }
                                }
                                Bytes::from(out)
                            };
                            Some((Ok(out), (store, encoder, Phase::Chunk(n + 1))))
                        }
                        Ok(None) => {
                            let bytes = Bytes::from(encoder.footer());
                            Some((Ok(bytes), (store, encoder, Phase::Done)))
                        }
                        Err(e) => {
                            tracing::error!(job = %id, error = %e, "reading an export chunk failed");
                            Some((
                                Err(std::io::Error::other("export read failed")),
                                (store, encoder, Phase::Done),
                            ))
                        }
                    },
                    Phase::Done => None,
                }
            }
        },
    )
}
