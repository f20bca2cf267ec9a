//! The customer list a job starts from: a JSON body or a CSV upload, parsed and checked once.

use std::collections::BTreeMap;

use icp_contract::{HashType, IdType, IdentifierGroup};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::options::JobOptions;
use crate::problem::{ApiError, FieldError};

/// The most identifiers one job may carry.
pub const MAX_IDENTIFIERS: usize = 1_000_000;
/// The longest identifier accepted (a postal address is the longest kind).
const MAX_VALUE_LEN: usize = 512;
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

/// A checked request: what the job row stores.
#[derive(Debug, Clone)]
pub struct JobInput {
    pub groups: Vec<IdentifierGroup>,
    pub options: JobOptions,
}

impl JobInput {
    pub fn identifier_count(&self) -> usize {
        self.groups.iter().map(|g| g.values.len()).sum()
    }
}

/// Parses and checks a JSON body.
pub fn from_json(body: &[u8]) -> Result<JobInput, ApiError> {
    let req: CreateJobRequest = parse_json(body)?;
    check(JobInput {
        groups: req.multi_identifiers,
        options: req.options,
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
    let mut groups: BTreeMap<(IdType, HashType), Vec<String>> = BTreeMap::new();
    let mut errors = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            ApiError::validation(format!("line {line}"), format!("malformed CSV row: {e}"))
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        for &(i, id_type, hash_type) in &columns {
            if let Some(value) = record.get(i).filter(|v| !v.is_empty()) {
                if let Some(message) = value_problem(id_type, hash_type, value) {
                    if errors.len() < MAX_REPORTED_ERRORS {
                        errors.push(FieldError::new(
                            format!("line {line}, column {}", &headers[i]),
                            message,
                        ));
                    }
                    continue;
                }
                groups
                    .entry((id_type, hash_type))
                    .or_default()
                    .push(value.to_owned());
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let groups = groups
        .into_iter()
        .map(|((id_type, hash_type), values)| IdentifierGroup {
            id_type,
            hash_type,
            values,
        })
        .collect::<Vec<_>>();
    if groups.is_empty() {
        return Err(ApiError::validation(
            "body",
            "the CSV has a header but no identifiers",
        ));
    }
    check(JobInput { groups, options })
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

fn hex_len(hash: HashType) -> Option<usize> {
    match hash {
        HashType::Plaintext => None,
        HashType::Md5 => Some(32),
        HashType::Sha1 => Some(40),
        HashType::Sha256 => Some(64),
    }
}

/// What is wrong with one identifier, if anything.
fn value_problem(id_type: IdType, hash_type: HashType, value: &str) -> Option<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        Some("is empty".to_owned())
    } else if trimmed.len() > MAX_VALUE_LEN {
        Some(format!("is longer than {MAX_VALUE_LEN} bytes"))
    } else if let Some(len) = hex_len(hash_type)
        && (trimmed.len() != len || !trimmed.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        Some(format!(
            "is not a {} digest ({len} hex digits)",
            hash_type.as_str()
        ))
    } else if hash_type == HashType::Plaintext && id_type == IdType::Email && !trimmed.contains('@')
    {
        Some("is not an email address (no @)".to_owned())
    } else {
        None
    }
}

/// Checks everything the pipeline relies on, collecting every problem rather than the first.
fn check(input: JobInput) -> Result<JobInput, ApiError> {
    let mut errors = Vec::new();
    let mut problems = 0usize;
    let mut push = |errors: &mut Vec<FieldError>, e: FieldError| {
        problems += 1;
        if errors.len() < MAX_REPORTED_ERRORS {
            errors.push(e);
        }
    };
    if input.groups.is_empty() {
        push(
            &mut errors,
            FieldError::new(
                "/multi_identifiers",
                "give at least one group of identifiers",
            ),
        );
    }
    for (g, group) in input.groups.iter().enumerate() {
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
        for (v, value) in group.values.iter().enumerate() {
            if let Some(message) = value_problem(group.id_type, group.hash_type, value) {
                push(
                    &mut errors,
                    FieldError::new(format!("/multi_identifiers/{g}/values/{v}"), message),
                );
            }
        }
    }
    let total = input.identifier_count();
    if total > MAX_IDENTIFIERS {
        push(
            &mut errors,
            FieldError::new(
                "/multi_identifiers",
                format!("{total} identifiers; a job takes at most {MAX_IDENTIFIERS}"),
            ),
        );
    }
    input.options.validate(&mut errors);
    if errors.is_empty() {
        return Ok(input);
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
    fn hashed_values_must_be_digests() {
        let body =
            br#"{"multi_identifiers":[{"id_type":"email","hash_type":"sha256","values":["abc"]}]}"#;
        let p = from_json(body).unwrap_err().to_problem();
        assert_eq!(p.errors[0].location, "/multi_identifiers/0/values/0");
    }
}
