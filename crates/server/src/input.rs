//! The customer list a job starts from: a JSON body or a CSV upload, parsed and checked once.

use std::collections::BTreeMap;

use icp_contract::{HashType, IdType, IdentifierGroup};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::normalization::{Normalization, normalize_groups};
use crate::options::JobOptions;
use crate::problem::{ApiError, FieldError};

/// The most identifiers one job may carry.
pub const MAX_IDENTIFIERS: usize = 1_000_000;
/// Validation stops listing problems after this many; the count says how many there were.
const MAX_REPORTED_ERRORS: usize = 50;

/// `POST /v1/jobs` as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJobRequest {
    /// Customer identifiers, grouped by type and hashing, as `resolve_identities` takes them.
    pub multi_identifiers: Vec<IdentifierGroup>,
    #[serde(default)]
    pub options: JobOptions,
}

/// A checked request: what the job row stores. `groups` are normalised (and hashed when the
/// options ask), and `normalization` says what that did to the values submitted.
#[derive(Debug, Clone)]
pub struct JobInput {
    pub groups: Vec<IdentifierGroup>,
    pub options: JobOptions,
    pub normalization: Normalization,
}

impl JobInput {
    pub fn identifier_count(&self) -> usize {
        self.groups.iter().map(|g| g.values.len()).sum()
    }
}

/// Parses and checks a JSON body.
pub fn from_json(body: &[u8]) -> Result<JobInput, ApiError> {
    let req: CreateJobRequest = parse_json(body)?;
    check(req.multi_identifiers, req.options, |g, v| {
        format!("/multi_identifiers/{g}/values/{v}")
    })
}

/// Deserialises a JSON body; an error names its place as a JSON pointer (`/` for the whole body).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let location = if path == "." {
            "/".to_owned()
        } else {
            json_pointer(&path)
        };
        ApiError::validation(location, e.into_inner().to_string())
    })
}

/// Turns serde_path_to_error's `a.b[0].c` into the JSON pointer `/a/b/0/c`.
fn json_pointer(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.') {
        let mut rest = part;
        while let Some(open) = rest.find('[') {
            let (name, tail) = rest.split_at(open);
            if !name.is_empty() {
                out.push('/');
                out.push_str(name);
            }
            let close = tail.find(']').unwrap_or(tail.len());
            out.push('/');
            out.push_str(&tail[1..close]);
            rest = tail.get(close + 1..).unwrap_or("");
        }
        if !rest.is_empty() {
            out.push('/');
            out.push_str(rest);
        }
    }
    out
}

/// Parses a CSV upload: a header row naming identifier columns (`email`, `phone`, `address`,
/// `maid`, or hashed as `email_sha256`, `phone_md5` …, case-insensitive); other columns are ignored.
pub fn from_csv(body: &[u8], options: JobOptions) -> Result<JobInput, ApiError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| ApiError::validation("line 1", format!("unreadable CSV header: {e}")))?
        .clone();
    let mut columns: Vec<(usize, IdType, HashType)> = Vec::new();
    for (i, name) in headers.iter().enumerate() {
        if let Some((id_type, hash_type)) = column_kind(name) {
            columns.push((i, id_type, hash_type));
        }
    }
    if columns.is_empty() {
        return Err(ApiError::validation(
            "line 1",
            format!(
                "no identifier column in the header {:?}; name at least one of email, phone, \
                 address, maid (optionally suffixed _md5, _sha1 or _sha256)",
                headers.iter().collect::<Vec<_>>()
            ),
        ));
    }
    // Each value's place (line, column) for a problem naming the first rejected one.
    type Places = Vec<(u64, usize)>;
    let mut groups: BTreeMap<(IdType, HashType), (Vec<String>, Places)> = BTreeMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            ApiError::validation(format!("line {line}"), format!("malformed CSV row: {e}"))
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        for &(i, id_type, hash_type) in &columns {
            if let Some(value) = record.get(i).filter(|v| !v.is_empty()) {
                let (values, places) = groups.entry((id_type, hash_type)).or_default();
                values.push(value.to_owned());
                places.push((line, i));
            }
        }
    }
    if groups.is_empty() {
        return Err(ApiError::validation(
            "body",
            "the CSV has a header but no identifiers",
        ));
    }
    let (groups, places): (Vec<_>, Vec<_>) = groups
        .into_iter()
        .map(|((id_type, hash_type), (values, places))| {
            let group = IdentifierGroup {
                id_type,
                hash_type,
                values,
            };
            (group, places)
        })
        .unzip();
    check(groups, options, |g, v| {
        let (line, i) = places[g][v];
        format!("line {line}, column {}", &headers[i])
    })
}

fn column_kind(name: &str) -> Option<(IdType, HashType)> {
    let lower = name.trim().to_ascii_lowercase();
    let (base, hash) = match lower.rsplit_once('_') {
        Some((base, suffix)) => match HashType::ALL.iter().find(|h| h.as_str() == suffix) {
            Some(h) => (base.to_owned(), *h),
            None => (lower.clone(), HashType::Plaintext),
        },
        None => (lower.clone(), HashType::Plaintext),
    };
    IdType::ALL
        .iter()
        .find(|t| t.as_str() == base)
        .map(|t| (*t, hash))
}

/// Checks everything the pipeline relies on, collecting every problem rather than the first.
/// Every value is normalised; values with no normal form are left out, and only a request
/// with nothing left is refused, naming each group's reasons.
fn check(
    groups: Vec<IdentifierGroup>,
    options: JobOptions,
    locate: impl Fn(usize, usize) -> String,
) -> Result<JobInput, ApiError> {
    let mut errors = Vec::new();
    let mut problems = 0usize;
    let mut push = |errors: &mut Vec<FieldError>, e: FieldError| {
        problems += 1;
        if errors.len() < MAX_REPORTED_ERRORS {
            errors.push(e);
        }
    };
    if groups.is_empty() {
        push(
            &mut errors,
            FieldError::new(
                "/multi_identifiers",
                "give at least one group of identifiers",
            ),
        );
    }
    for (g, group) in groups.iter().enumerate() {
        if group.values.is_empty() {
            push(
                &mut errors,
                FieldError::new(format!("/multi_identifiers/{g}/values"), "is empty"),
            );
        }
        if group.id_type == IdType::Address && group.hash_type != HashType::Plaintext {
            // Hashing an address only works if both sides normalise it identically; the
            // upstream takes addresses in plain text only.
            push(
                &mut errors,
                FieldError::new(
                    format!("/multi_identifiers/{g}/hash_type"),
                    "addresses are matched in plaintext only",
                ),
            );
        }
    }
    let total: usize = groups.iter().map(|g| g.values.len()).sum();
    if total > MAX_IDENTIFIERS {
        push(
            &mut errors,
            FieldError::new(
                "/multi_identifiers",
                format!("{total} identifiers; a job takes at most {MAX_IDENTIFIERS}"),
            ),
        );
    }
    options.validate(&mut errors);
    if errors.is_empty() {
        let normalized = normalize_groups(&groups, options.hash_identifiers, locate);
        if normalized.report.kept() > 0 {
            return Ok(JobInput {
                groups: normalized.groups,
                options,
                normalization: normalized.report,
            });
        }
        for e in normalized.rejections {
            push(&mut errors, e);
        }
    }
    if problems > errors.len() {
        errors.push(FieldError::new(
            "/",
            format!("… and {} more problems", problems - errors.len()),
        ));
    }
    Err(ApiError::Validation(errors))
}

/// Options for a CSV upload, from the query string (`?min_support=0.05&strategies=precision,reach`).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CsvOptionsQuery {
    pub min_quality_score: Option<f64>,
    /// Comma-separated domains.
    pub domains: Option<String>,
    pub min_support: Option<f64>,
    pub max_cluster_size: Option<usize>,
    /// Comma-separated: precision, reach, hybrid.
    pub strategies: Option<String>,
    pub identifier_type: Option<IdType>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub radius: Option<f64>,
    pub unit: Option<icp_contract::DistanceUnit>,
    pub exclude_customers: Option<bool>,
    pub audience_limit: Option<u64>,
    /// `sha256` to hash plaintext emails, phones and mobile ad ids before the job is stored.
    pub hash_identifiers: Option<crate::options::IdentifierHashing>,
}

impl CsvOptionsQuery {
    pub fn parse(query: Option<&str>) -> Result<JobOptions, ApiError> {
        let q: CsvOptionsQuery = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|e| ApiError::validation("query", e.to_string()))?;
        let mut o = JobOptions::default();
        if let Some(v) = q.min_quality_score {
            o.min_quality_score = v;
        }
        if let Some(v) = q.domains {
            o.domains = Some(split_list(&v));
        }
        if let Some(v) = q.min_support {
            o.min_support = v;
        }
        if let Some(v) = q.max_cluster_size {
            o.max_cluster_size = v;
        }
        if let Some(v) = q.strategies {
            let mut strategies = Vec::new();
            for name in split_list(&v) {
                let parsed = serde_json::from_value(serde_json::Value::String(name.clone()))
                    .map_err(|_| {
                        ApiError::validation(
                            "query.strategies",
                            format!("unknown strategy {name:?}; use precision, reach or hybrid"),
                        )
                    })?;
                strategies.push(parsed);
            }
            o.strategies = strategies;
        }
        if let Some(v) = q.identifier_type {
            o.identifier_type = v;
        }
        match (q.latitude, q.longitude, q.radius) {
            (Some(latitude), Some(longitude), Some(radius)) => {
                o.location = Some(icp_contract::Location {
                    latitude,
                    longitude,
                    radius,
                    unit: q.unit.unwrap_or(icp_contract::DistanceUnit::Miles),
                })
            }
            (None, None, None) => {}
            _ => {
                return Err(ApiError::validation(
                    "query",
                    "a location needs latitude, longitude and radius together",
                ));
            }
        }
        if let Some(v) = q.exclude_customers {
            o.exclude_customers = v;
        }
        if q.audience_limit.is_some() {
            o.audience_limit = q.audience_limit;
        }
        if let Some(v) = q.hash_identifiers {
            o.hash_identifiers = v;
        }
        Ok(o)
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_from_serde_path() {
        assert_eq!(
            json_pointer("multi_identifiers[0].values[3]"),
            "/multi_identifiers/0/values/3"
        );
        assert_eq!(json_pointer("options.min_support"), "/options/min_support");
    }

    #[test]
    fn csv_columns_case_insensitive_with_hash_suffix() {
        assert_eq!(
            column_kind("Email"),
            Some((IdType::Email, HashType::Plaintext))
        );
        assert_eq!(
            column_kind("EMAIL_SHA256"),
            Some((IdType::Email, HashType::Sha256))
        );
        assert_eq!(
            column_kind("phone"),
            Some((IdType::Phone, HashType::Plaintext))
        );
        assert_eq!(column_kind("first_name"), None);
    }

    #[test]
    fn csv_rows_become_groups() {
        let input = from_csv(
            b"Email,Phone,name\na@x.com,5551234567,Ann\nb@x.com,,Bob\n",
            JobOptions::default(),
        )
        .unwrap();
        assert_eq!(input.identifier_count(), 3);
        assert_eq!(input.groups.len(), 2);
    }

    #[test]
    fn bad_json_names_the_place() {
        let err = from_json(
            br#"{"multi_identifiers":[{"id_type":"fax","hash_type":"plaintext","values":["1"]}]}"#,
        )
        .unwrap_err();
        let p = err.to_problem();
        assert_eq!(p.status, 422);
        assert_eq!(p.errors[0].location, "/multi_identifiers/0/id_type");
    }

    #[test]
    fn a_request_with_no_usable_value_is_refused() {
        let body =
            br#"{"multi_identifiers":[{"id_type":"email","hash_type":"sha256","values":["abc"]}]}"#;
        let p = from_json(body).unwrap_err().to_problem();
        assert_eq!(p.errors[0].location, "/multi_identifiers/0/values/0");
        assert!(p.errors[0].message.contains("wrong_digest_length"), "{p:?}");
    }

    #[test]
    fn csv_values_are_normalised_and_bad_ones_left_out() {
        let input = from_csv(
            b"email,phone\n A@X.com ,+1 512 555 0134\nnobody,\n",
            JobOptions::default(),
        )
        .unwrap();
        assert_eq!(input.groups[0].values, ["a@x.com"]);
        assert_eq!(input.groups[1].values, ["5125550134"]);
        assert_eq!(input.normalization.groups[0].rejected, 1);
        let p = from_csv(b"email\nnobody\n", JobOptions::default())
            .unwrap_err()
            .to_problem();
        assert_eq!(p.errors[0].location, "line 2, column email");
    }
}
