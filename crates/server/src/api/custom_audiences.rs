//! `POST /v1/jobs/{id}/audiences`: an audience written by hand on a finished job, in
//! `attribute = value` terms (`icp_analysis::trait_expression`), found and exported like the
//! job's own audiences and added to its result as `custom-<n>`.
//!
//! It runs within the request (bounded by the request timeout; a `limit` bounds the export).
//! Nothing is recorded until the audience is complete: its records are stored under a name of
//! their own, renamed and added to the result in one transaction, so a restart or a timeout
//! leaves no audience half made (what was stored is deleted, or goes with the job).

use std::collections::{BTreeSet, HashMap, HashSet};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use futures::TryStreamExt;
use icp_analysis::{Expr, Item, parse_trait_expression};
use icp_contract::{
    AudienceExport, Cluster, FindPersonsRequest, ListClustersRequest, Location,
    MAX_CLUSTERS_PER_PAGE, PersonId, ProviderError,
};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::jobs::succeeded_result;
use super::path_params::JobId;
use crate::auth::Caller;
use crate::decode::parse_json;
use crate::export_tally::ExportTally;
use crate::model::{AudienceExports, CUSTOMERS_EXPORT, CustomAudience, JobResult, Validation};
use crate::options::{
    JobOptions, MAX_AUDIENCE_LIMIT, parse_trait, validate_exclusions, validate_location,
};
use crate::problem::{ApiError, FieldError, Problem};
use crate::state::AppState;
use crate::validation::{Enricher, chosen_traits, draw_export};

/// The most pages of one attribute's clusters read to map a term.
const MAX_CLUSTER_PAGES: usize = 20;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(add_audience))
}

/// An audience to add to a finished job.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomAudienceRequest {
    /// `attribute = value` terms joined by `AND`, `OR` and `AND NOT`, with parentheses
    /// (`AND` binds tighter than `OR`); at most 4,000 characters and 64 terms.
    #[schema(
        example = "homeowner_status = Homeowner AND (age_range = 35-44 OR age_range = 45-54) AND NOT marital_status = Single",
        min_length = 1,
        max_length = 4000
    )]
    pub expression: String,
    /// Only people whose address lies in this circle (default: the job's location).
    #[serde(default, deserialize_with = "crate::decode::optional_object")]
    pub location: Option<Location>,
    /// The most people exported (default: the job's `audience_limit`).
    #[serde(default, deserialize_with = "crate::decode::optional_whole")]
    #[schema(example = 10000, minimum = 1, maximum = 10000000)]
    pub limit: Option<u64>,
    /// `attribute=value` traits to leave out (each an `AND NOT` term), at most 20.
    #[serde(default)]
    #[schema(example = json!(["vehicle_type=Pickup Truck"]))]
    pub exclude: Vec<String>,
    /// Whether to set a sample of the audience against the job's customers before answering,
    /// as the `validate` stage does for the job's own audiences (default: the job's
    /// `validate` option). `false` answers sooner, without the `get_person` calls.
    #[serde(default)]
    pub validate: Option<bool>,
}

/// Add an audience written in `attribute = value` terms to a finished job.
///
/// The terms are mapped to the population's clusters (the job's, else `list_clusters`), the
/// audience is found and exported with `find_persons`, the job's customers left out (when the
/// job left them out of its own), validated against the job's customers (a seeded sample
/// enriched with `get_person`, unless `validate` is false) and added to the job's result as
/// `custom-<n>`, downloadable at `/v1/jobs/{id}/audiences/custom-<n>/export`. It runs within
/// the request: answered `201` with the audience once it is stored.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/audiences",
    tag = "audiences",
    params(("id" = String, Path, description = "The job's id")),
    request_body = CustomAudienceRequest,
    responses(
        (status = 201, description = "The audience, added to the job's result", body = CustomAudience),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has not succeeded (yet)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The expression (`errors[].message` names the character), a trait no cluster has, or another field is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn add_audience(
    State(state): State<AppState>,
    caller: Caller,
    JobId(id): JobId,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<CustomAudience>), ApiError> {
    let request: CustomAudienceRequest = parse_json(&body)?;
    // The job first: no such job is a 404, an unfinished one a 409, whatever the body says.
    let (record, result) = succeeded_result(&state, &caller, id).await?;
    let parsed = parse_trait_expression(&request.expression).map_err(|e| {
        ApiError::validation(
            "/expression",
            format!("{} (at character {})", e.message, e.position),
        )
    })?;
    let mut errors = Vec::new();
    validate_exclusions(&request.exclude, "/exclude", &mut errors);
    if let Some(loc) = &request.location {
        validate_location(loc, "/location", &mut errors);
    }
    if let Some(limit) = request.limit
        && !(1..=MAX_AUDIENCE_LIMIT).contains(&limit)
    {
        errors.push(FieldError::new(
            "/limit",
            format!("must be between 1 and {MAX_AUDIENCE_LIMIT}"),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let options: JobOptions = serde_json::from_value(record.options).map_err(ApiError::internal)?;
    let result: JobResult = serde_json::from_value(result).map_err(ApiError::internal)?;
    let exclusions: Vec<(usize, Item)> = request
        .exclude
        .iter()
        .enumerate()
        .filter_map(|(i, e)| parse_trait(e).map(|item| (i, item)))
        .collect();

    // Every trait → its cluster: the job's, else the provider's.
    let mut known: HashMap<(String, String), Cluster> = result
        .clusters
        .iter()
        .map(|c| ((c.name.clone(), c.value.clone()), c.clone()))
        .collect();
    let wanted: Vec<&Item> = parsed
        .terms
        .iter()
        .map(|(item, _)| item)
        .chain(exclusions.iter().map(|(_, item)| item))
        .collect();
    let missing: BTreeSet<String> = wanted
        .iter()
        .filter(|i| !known.contains_key(&(i.name.clone(), i.value.clone())))
        .map(|i| i.name.clone())
        .collect();
    if !missing.is_empty() {
        for c in list_clusters(&state, missing.into_iter().collect()).await? {
            known.entry((c.name.clone(), c.value.clone())).or_insert(c);
        }
    }
    let has = |i: &Item| known.contains_key(&(i.name.clone(), i.value.clone()));
    let mut errors = Vec::new();
    for (item, position) in &parsed.terms {
        if !has(item) {
            errors.push(FieldError::new(
                "/expression",
                format!("no cluster has this trait (the term at character {position})"),
            ));
        }
    }
    for (i, item) in &exclusions {
        if !has(item) {
            errors.push(FieldError::new(
                format!("/exclude/{i}"),
                "no cluster has this trait",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let items: Vec<Item> = exclusions.into_iter().map(|(_, item)| item).collect();
    let expr = match Expr::any_of(&items) {
        Some(exclude) => parsed.expr.and_not(&exclude),
        None => parsed.expr,
    };
    let hash = |i: &Item| {
        known
            .get(&(i.name.clone(), i.value.clone()))
            .map(|c| c.cluster_hash.clone())
    };
    let expression = expr
        .render(&hash)
        .ok_or_else(|| ApiError::internal("a mapped term lost its cluster"))?;
    let description = expr
        .render(&|i| Some(format!("{}={}", i.name, i.value)))
        .unwrap_or_default();

    let customers = if options.exclude_customers {
        kept_customers(&state, id).await?
    } else {
        None
    };
    let limit = request.limit.or(options.audience_limit);
    let location = request.location.or(options.location);
    let find = FindPersonsRequest {
        expression: expression.clone(),
        identifier_type: Some(options.identifier_type),
        location,
        audience_limit: None,
        format: None,
        workflow_id: record.workflow_id.clone(),
    };
    // The records under a name of their own until the audience is added.
    let pending = format!("pending-{}", Uuid::new_v4().simple());
    let found = export(&state, id, &pending, find, limit, customers.as_ref()).await;
    let found = match found {
        Ok(found) if request.validate.unwrap_or(options.validate) => {
            let enricher = Enricher {
                provider: state.provider.clone(),
                domains: options
                    .domains
                    .clone()
                    .unwrap_or_else(crate::options::trait_domains),
                workflow_id: record.workflow_id.clone(),
                concurrency: state.config.worker.enrich_concurrency,
            };
            validate(&state, id, &pending, &enricher, &result)
                .await
                .map(|validation| Found {
                    validation,
                    ..found
                })
        }
        found => found,
    };
    let found = match found {
        Ok(found) => found,
        Err(e) => {
            if let Err(cleanup) = state.store.delete_export(id, &pending).await {
                tracing::warn!(job = %id, error = %cleanup, "a pending custom audience's records stay until the job goes");
            }
            return Err(e);
        }
    };
    let audience = |name: &str| CustomAudience {
        id: name.to_owned(),
        expression_text: request.expression.clone(),
        expression: expression.clone(),
        description: description.clone(),
        location,
        limit,
        exclude: request.exclude.clone(),
        total: found.total_with_customers.saturating_sub(found.excluded),
        total_with_customers: found.total_with_customers,
        total_exact: found.total_exact,
        customers_left_out: customers.is_some(),
        excluded_customers: found.excluded,
        exported: found.exported,
        truncated: found.truncated,
        sample: found.sample.clone(),
        exports: AudienceExports::named(id, name),
        validation: found.validation.clone(),
    };
    let added = state
        .store
        .add_custom_audience(id, &pending, |name| {
            serde_json::to_value(audience(name)).unwrap_or_default()
        })
        .await?;
    match added {
        Some(value) => {
            let added: CustomAudience =
                serde_json::from_value(value).map_err(ApiError::internal)?;
            Ok((StatusCode::CREATED, Json(added)))
        }
        None => {
            let _ = state.store.delete_export(id, &pending).await;
            Err(ApiError::NotFound(format!("no job {id}")))
        }
    }
}

/// What one export found.
struct Found {
    total_with_customers: u64,
    total_exact: bool,
    excluded: u64,
    exported: u64,
    truncated: bool,
    sample: Vec<icp_contract::AudienceRecord>,
    validation: Option<Validation>,
}

/// The audience stored under `pending` set against the job's customers (its whole list's top
/// traits).
async fn validate(
    state: &AppState,
    id: Uuid,
    pending: &str,
    enricher: &Enricher,
    result: &JobResult,
) -> Result<Option<Validation>, ApiError> {
    let sample = draw_export(&state.store, id, pending).await?;
    let (validation, _) = enricher
        .validate(&sample, &chosen_traits(&result.analysis))
        .await
        .map_err(upstream("get_person"))?;
    Ok(Some(validation))
}

fn upstream(tool: &'static str) -> impl Fn(ProviderError) -> ApiError {
    move |e| ApiError::Upstream(format!("{tool}: {}", e.kind()))
}

/// Every cluster of the attributes `names`, all pages (bounded).
async fn list_clusters(state: &AppState, names: Vec<String>) -> Result<Vec<Cluster>, ApiError> {
    let mut found = Vec::new();
    let mut offset = 0;
    for _ in 0..MAX_CLUSTER_PAGES {
        let page = state
            .provider
            .list_clusters(ListClustersRequest {
                cluster_names: Some(names.clone()),
                limit: Some(MAX_CLUSTERS_PER_PAGE),
                offset: Some(offset),
                ..ListClustersRequest::default()
            })
            .await
            .map_err(upstream("list_clusters"))?;
        let end = offset + page.clusters.len() as u64;
        found.extend(page.clusters);
        match page.next_offset.or(Some(end)) {
            Some(next) if page.has_more && next > offset => offset = next,
            _ => break,
        }
    }
    Ok(found)
}

/// The customers the job kept (`CUSTOMERS_EXPORT`); `None` for a job that kept none (it ended
/// before they were kept, or matched nobody).
async fn kept_customers(state: &AppState, id: Uuid) -> Result<Option<HashSet<PersonId>>, ApiError> {
    let mut ids = HashSet::new();
    let mut no = 0;
    while let Some(body) = state.store.export_chunk(id, CUSTOMERS_EXPORT, no).await? {
        for line in body.lines().filter(|l| !l.is_empty()) {
            let n: u64 = line
                .parse()
                .map_err(|_| ApiError::internal("a kept customer id is unreadable"))?;
            ids.insert(PersonId(n));
        }
        no += 1;
    }
    Ok((no > 0).then_some(ids))
}

/// The audience's records stored under `name` (customers dropped, at most `limit`), and its
/// counts: the whole export read (at most the customers' count past the limit), so every
/// customer it holds is counted out.
async fn export(
    state: &AppState,
    id: Uuid,
    name: &str,
    find: FindPersonsRequest,
    limit: Option<u64>,
    customers: Option<&HashSet<PersonId>>,
) -> Result<Found, ApiError> {
    let none = HashSet::new();
    let mut tally = ExportTally::new(
        customers.unwrap_or(&none),
        limit,
        state.config.worker.export_chunk_rows,
    );
    let AudienceExport {
        answer,
        records: mut stream,
    } = state
        .provider
        .export_persons(FindPersonsRequest {
            audience_limit: tally.asked(),
            ..find.clone()
        })
        .await
        .map_err(upstream("find_persons"))?;
    let store = |chunk: (i64, Vec<u8>)| async move {
        let stored = state
            .store
            .put_finished_export_chunks(id, name, &[(chunk.0, chunk.1.as_slice())])
            .await?;
        if stored {
            Ok(())
        } else {
            Err(ApiError::Conflict(
                "the job changed while the audience was found".to_owned(),
            ))
        }
    };
    while let Some(batch) = stream.try_next().await.map_err(upstream("find_persons"))? {
        for (person_id, json) in batch.iter() {
            if let Some(chunk) = tally.take(person_id, json) {
                store(chunk).await?;
            }
        }
    }
    if let Some(chunk) = tally.finish() {
        store(chunk).await?;
    }
    let counted = match limit {
        None => answer,
        Some(_) => state
            .provider
            .find_persons(find)
            .await
            .map_err(upstream("find_persons"))?,
    };
    Ok(Found {
        total_with_customers: counted.total,
        total_exact: tally.exact(counted.total),
        excluded: tally.excluded,
        exported: tally.exported,
        truncated: tally.truncated,
        sample: counted
            .sample
            .into_iter()
            .filter(|r| !customers.is_some_and(|c| c.contains(&r.person_id)))
            .collect(),
        validation: None,
    })
}
