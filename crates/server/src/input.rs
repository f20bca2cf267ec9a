//! The customer list a job starts from: a JSON body or a CSV upload, parsed and checked once.

use std::collections::BTreeMap;

use icp_contract::{HashType, IdType, IdentifierGroup};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::decode::{looks_like_utf16, parse_json, parse_query, shorten};
use crate::diagnostics::intake_warnings;
use crate::normalization::{Normalization, normalize_groups};
use crate::options::JobOptions;
use crate::problem::{ApiError, FieldError};
use crate::warning::{Warning, WarningCode};

/// Validation stops listing problems after this many; the count says how many there were.
const MAX_REPORTED_ERRORS: usize = 50;

/// The most segments a job may carry.
pub const MAX_SEGMENTS: usize = 20;
/// The longest segment name, in characters.
pub const MAX_SEGMENT_NAME_LEN: usize = 64;
/// What a segment name may hold: it appears in export paths (`segment.<name>.precision`).
pub const SEGMENT_NAME_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";

/// `POST /v1/jobs` as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJobRequest {
    /// Customer identifiers, grouped by type and hashing, as `resolve_identities` takes them.
    /// With `segments`, the customers in no segment (may then be left out).
    #[serde(
        default,
        deserialize_with = "crate::decode::some_objects",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub multi_identifiers: Option<Vec<IdentifierGroup>>,
    /// Named segments of the customer list (at most 20; names of 1 to 64 letters, digits, `_`
    /// or `-`), each analysed on its own and given its own audiences, the whole list (every
    /// segment and `multi_identifiers`) too. An identifier in two segments makes its person a
    /// member of both.
    #[serde(
        default,
        deserialize_with = "crate::decode::some_object",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub segments: Option<BTreeMap<String, SegmentRequest>>,
    #[serde(default, deserialize_with = "crate::decode::object")]
    pub options: JobOptions,
}

/// One segment of a JSON request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentRequest {
    /// The segment's customers, as in `multi_identifiers`.
    #[serde(deserialize_with = "crate::decode::objects")]
    pub multi_identifiers: Vec<IdentifierGroup>,
}

/// One named segment as stored: its identifiers normalised like the job's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentInput {
    pub name: String,
    pub groups: Vec<IdentifierGroup>,
}

/// The identifiers as the job row stores them: a bare list of groups (every job without
/// segments, and every job written before segments existed), or the customers in no segment
/// and the segments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StoredInput {
    Groups(Vec<IdentifierGroup>),
    Segmented {
        groups: Vec<IdentifierGroup>,
        segments: Vec<SegmentInput>,
    },
}

impl StoredInput {
    /// The identifier groups resolved together, in resolve order: part 0 the customers in no
    /// segment, then each segment's. A job without segments has one part.
    pub fn parts(self) -> (Vec<Vec<IdentifierGroup>>, Vec<String>) {
        match self {
            Self::Groups(groups) => (vec![groups], Vec::new()),
            Self::Segmented { groups, segments } => {
                let mut parts = vec![groups];
                let mut names = Vec::new();
                for s in segments {
                    parts.push(s.groups);
                    names.push(s.name);
                }
                (parts, names)
            }
        }
    }
}

/// A checked request: what the job row stores. `groups` are normalised (and hashed when the
/// options ask), and `normalization` says what that did to the values submitted (over the whole
/// list). With segments, `groups` are the customers in no segment.
#[derive(Debug, Clone)]
pub struct JobInput {
    pub groups: Vec<IdentifierGroup>,
    pub options: JobOptions,
    pub normalization: Normalization,
    /// The named segments, in name order (empty: a job without segments).
    pub segments: Vec<SegmentInput>,
    /// What the identifiers as submitted hold that may keep them from matching.
    pub warnings: Vec<Warning>,
}

impl JobInput {
    pub fn identifier_count(&self) -> usize {
        self.groups
            .iter()
            .chain(self.segments.iter().flat_map(|s| &s.groups))
            .map(|g| g.values.len())
            .sum()
    }

    /// What the job row stores (see [`StoredInput`]).
    pub fn stored(&self) -> StoredInput {
        if self.segments.is_empty() {
            StoredInput::Groups(self.groups.clone())
        } else {
            StoredInput::Segmented {
                groups: self.groups.clone(),
                segments: self.segments.clone(),
            }
        }
    }
}

/// Why a segment name is refused, if it is.
pub fn segment_name_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_SEGMENT_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    (!ok).then(|| {
        format!(
            "a segment name is 1 to {MAX_SEGMENT_NAME_LEN} letters, digits, `_` or `-` \
             (got {:?})",
            shorten(name, 40)
        )
    })
}

/// Where the flat list of groups `check` sees splits into the parts of a segmented request:
/// `(segment name, first group, past the last group)`; the customers in no segment come first,
/// as `None`.
type PartBounds = Vec<(Option<String>, usize, usize)>;

/// A place in the request a problem points at; JSON and CSV name it differently.
#[derive(Debug, Clone, Copy)]
enum Place {
    /// The identifiers as a whole.
    Identifiers,
    /// Group `g`'s values as a whole.
    Values(usize),
    /// Group `g`'s hashing.
    HashType(usize),
    /// Value `v` of group `g`.
    Value(usize, usize),
    /// Segment `k` (in name order) as a whole.
    Segment(usize),
}

/// Parses and checks a JSON body carrying at most `max_identifiers` identifiers.
pub fn from_json(body: &[u8], max_identifiers: usize) -> Result<JobInput, ApiError> {
    let req: CreateJobRequest = parse_json(body)?;
    let Some(segments) = req.segments else {
        return check(
            req.multi_identifiers.unwrap_or_default(),
            req.options,
            max_identifiers,
            &Vec::new(),
            &|place| match place {
                Place::Identifiers | Place::Segment(_) => "/multi_identifiers".to_owned(),
                Place::Values(g) => format!("/multi_identifiers/{g}/values"),
                Place::HashType(g) => format!("/multi_identifiers/{g}/hash_type"),
                Place::Value(g, v) => format!("/multi_identifiers/{g}/values/{v}"),
            },
        );
    };
    let mut errors = Vec::new();
    if segments.is_empty() {
        errors.push(FieldError::new(
            "/segments",
            "give at least one segment, or leave `segments` out",
        ));
    }
    if segments.len() > MAX_SEGMENTS {
        errors.push(FieldError::new(
            "/segments",
            format!(
                "{} segments; a job takes at most {MAX_SEGMENTS}",
                segments.len()
            ),
        ));
    }
    for name in segments.keys().take(MAX_REPORTED_ERRORS) {
        if let Some(problem) = segment_name_problem(name) {
            errors.push(FieldError::new("/segments", problem));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    // One flat list of groups, the customers in no segment first, then each segment's.
    let mut groups = req.multi_identifiers.unwrap_or_default();
    let mut bounds: PartBounds = vec![(None, 0, groups.len())];
    for (name, segment) in segments {
        let start = groups.len();
        groups.extend(segment.multi_identifiers);
        bounds.push((Some(name), start, groups.len()));
    }
    // A group's JSON pointer: its place within its part.
    let pointer = |g: usize| -> String {
        let (name, start, _) = bounds
            .iter()
            .rev()
            .find(|(_, start, _)| *start <= g)
            .unwrap_or(&bounds[0]);
        match name {
            None => format!("/multi_identifiers/{g}"),
            Some(name) => format!("/segments/{name}/multi_identifiers/{}", g - start),
        }
    };
    let names: Vec<String> = bounds.iter().filter_map(|b| b.0.clone()).collect();
    check(
        groups,
        req.options,
        max_identifiers,
        &bounds,
        &|place| match place {
            Place::Identifiers => "/multi_identifiers".to_owned(),
            Place::Segment(k) => format!("/segments/{}/multi_identifiers", names[k]),
            Place::Values(g) => format!("{}/values", pointer(g)),
            Place::HashType(g) => format!("{}/hash_type", pointer(g)),
            Place::Value(g, v) => format!("{}/values/{v}", pointer(g)),
        },
    )
}

/// What to send instead of a CSV that is not one.
const CSV_SHAPE: &str = "a CSV upload starts with a header line naming its columns (email, \
     phone, address, maid, optionally suffixed _md5, _sha1 or _sha256), then one customer a line";

/// Parses a CSV upload: a header row naming identifier columns (`email`, `phone`, `address`,
/// `maid`, or hashed as `email_sha256`, `phone_md5` …, case-insensitive); other columns are ignored,
/// but for `segment`: the name of the segment the line's customer belongs to (empty: none).
/// Problems name a line and column (`line 7, column email`); the options' problems name their
/// query parameter (`query.min_support`).
pub fn from_csv(
    body: &[u8],
    options: JobOptions,
    max_identifiers: usize,
) -> Result<JobInput, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::validation(
            "line 1",
            format!("the CSV is empty; {CSV_SHAPE}"),
        ));
    }
    if looks_like_utf16(body) {
        return Err(ApiError::validation(
            "line 1",
            "the CSV is not UTF-8 (it looks like UTF-16); save it as UTF-8",
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(body);
    let headers = reader.headers().map_err(|e| csv_error(&e, None))?.clone();
    let mut columns: Vec<(usize, IdType, HashType)> = Vec::new();
    let mut segment_column = None;
    for (i, name) in headers.iter().enumerate() {
        if let Some((id_type, hash_type)) = column_kind(name) {
            columns.push((i, id_type, hash_type));
        } else if name.trim().eq_ignore_ascii_case("segment") && segment_column.is_none() {
            segment_column = Some(i);
        }
    }
    if columns.is_empty() {
        return Err(ApiError::validation(
            "line 1",
            no_identifier_column(&headers),
        ));
    }
    // Each value's place (line, column) for a problem naming the first rejected one, and the
    // first column of each group for a problem with the group.
    type Places = Vec<(u64, usize)>;
    type GroupKey = (Option<String>, IdType, HashType);
    let mut groups: BTreeMap<GroupKey, (Vec<String>, Places, usize)> = BTreeMap::new();
    let mut segment_lines: BTreeMap<String, u64> = BTreeMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(&e, Some(&headers)))?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let segment = match segment_column.and_then(|i| record.get(i)) {
            Some(name) if !name.is_empty() => {
                if let Some(problem) = segment_name_problem(name) {
                    return Err(ApiError::validation(
                        format!("line {line}, column segment"),
                        problem,
                    ));
                }
                if !segment_lines.contains_key(name) && segment_lines.len() == MAX_SEGMENTS {
                    return Err(ApiError::validation(
                        format!("line {line}, column segment"),
                        format!(
                            "more than {MAX_SEGMENTS} segments; a job takes at most {MAX_SEGMENTS}"
                        ),
                    ));
                }
                segment_lines.entry(name.to_owned()).or_insert(line);
                Some(name.to_owned())
            }
            _ => None,
        };
        for &(i, id_type, hash_type) in &columns {
            if let Some(value) = record.get(i).filter(|v| !v.is_empty()) {
                let (values, places, _) = groups
                    .entry((segment.clone(), id_type, hash_type))
                    .or_insert_with(|| (Vec::new(), Vec::new(), i));
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
    let mut places = Vec::new();
    let mut first_columns = Vec::new();
    // The customers in no segment first (`None` sorts first), then each segment in name order.
    let mut bounds: PartBounds = Vec::new();
    if !segment_lines.is_empty() && groups.keys().next().is_some_and(|k| k.0.is_some()) {
        bounds.push((None, 0, 0));
    }
    let groups: Vec<IdentifierGroup> = groups
        .into_iter()
        .enumerate()
        .map(
            |(g, ((segment, id_type, hash_type), (values, value_places, column)))| {
                places.push(value_places);
                first_columns.push(column);
                if !segment_lines.is_empty() {
                    match bounds.last_mut() {
                        Some(last) if last.0 == segment => last.2 = g + 1,
                        _ => bounds.push((segment, g, g + 1)),
                    }
                }
                IdentifierGroup {
                    id_type,
                    hash_type,
                    values,
                }
            },
        )
        .collect();
    let column = |i: usize| shorten(&headers[i], 40);
    let names: Vec<String> = bounds.iter().filter_map(|b| b.0.clone()).collect();
    check(
        groups,
        options,
        max_identifiers,
        &bounds,
        &|place| match place {
            Place::Identifiers => "body".to_owned(),
            Place::Segment(k) => format!(
                "line {}, column segment",
                segment_lines.get(&names[k]).copied().unwrap_or(1)
            ),
            Place::Values(g) | Place::HashType(g) => {
                format!("line 1, column {}", column(first_columns[g]))
            }
            Place::Value(g, v) => {
                let (line, i) = places[g][v];
                format!("line {line}, column {}", column(i))
            }
        },
    )
    .map_err(options_from_query)
}

/// Why a header names no identifier column, without repeating a customer's data when the
/// file has no header at all and its first customer was read as one.
fn no_identifier_column(headers: &csv::StringRecord) -> String {
    let looks_like_data = headers
        .iter()
        .any(|h| h.contains('@') || h.bytes().filter(u8::is_ascii_digit).count() >= 5);
    if looks_like_data {
        format!("the first line looks like a customer, not a header; {CSV_SHAPE}")
    } else {
        let names: Vec<String> = headers.iter().take(20).map(|h| shorten(h, 40)).collect();
        format!(
            "no identifier column in the header {names:?}; name at least one of email, phone, \
             address, maid (optionally suffixed _md5, _sha1 or _sha256)"
        )
    }
}

/// A CSV reading error as a problem at its line (and column, when the field is known).
fn csv_error(e: &csv::Error, headers: Option<&csv::StringRecord>) -> ApiError {
    let line = e.position().map_or(1, |p| p.line());
    match e.kind() {
        csv::ErrorKind::Utf8 { err, .. } => {
            let column = headers
                .and_then(|h| h.get(err.field()))
                .map(|c| format!(", column {}", shorten(c, 40)))
                .unwrap_or_default();
            ApiError::validation(
                format!("line {line}{column}"),
                "not UTF-8; save the file as UTF-8",
            )
        }
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => ApiError::validation(
            format!("line {line}"),
            format!(
                "{len} {} where the header has {expected_len}; every line needs as many \
                 fields as the header (quote a cell that holds a comma)",
                if *len == 1 { "field" } else { "fields" }
            ),
        ),
        _ => ApiError::validation(format!("line {line}"), format!("malformed CSV: {e}")),
    }
}

/// A CSV's options come from the query string: their problems name the parameter
/// (`/options/location/latitude` is `query.latitude`).
fn options_from_query(err: ApiError) -> ApiError {
    match err {
        ApiError::Validation(errors) => ApiError::Validation(
            errors
                .into_iter()
                .map(|mut e| {
                    if let Some(rest) = e.location.strip_prefix("/options/") {
                        let mut parts = rest.split('/');
                        let name = match parts.next() {
                            Some("location") => parts.next(),
                            other => other,
                        };
                        e.location = name.map_or("query".to_owned(), |n| format!("query.{n}"));
                    }
                    e
                })
                .collect(),
        ),
        other => other,
    }
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
/// With `bounds` (a segmented request), each part is normalised on its own too: a value in two
/// parts stays in both, so its person belongs to each.
fn check(
    groups: Vec<IdentifierGroup>,
    options: JobOptions,
    max_identifiers: usize,
    bounds: &PartBounds,
    locate: &dyn Fn(Place) -> String,
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
                locate(Place::Identifiers),
                "give at least one group of identifiers",
            ),
        );
    }
    for (g, group) in groups.iter().enumerate() {
        if group.values.is_empty() {
            push(
                &mut errors,
                FieldError::new(locate(Place::Values(g)), "is empty"),
            );
        }
        if group.id_type == IdType::Address && group.hash_type != HashType::Plaintext {
            // Hashing an address only works if both sides normalise it identically; the
            // upstream takes addresses in plain text only.
            push(
                &mut errors,
                FieldError::new(
                    locate(Place::HashType(g)),
                    "addresses are matched in plaintext only",
                ),
            );
        }
    }
    let total: usize = groups.iter().map(|g| g.values.len()).sum();
    if total > max_identifiers {
        push(
            &mut errors,
            FieldError::new(
                locate(Place::Identifiers),
                format!("{total} identifiers; a job takes at most {max_identifiers}"),
            ),
        );
    }
    options.validate(&mut errors);
    if errors.is_empty() {
        let normalized = normalize_groups(&groups, options.hash_identifiers, |g, v| {
            locate(Place::Value(g, v))
        });
        let warnings = intake_warnings(&groups, &normalized.report);
        if normalized.report.kept() > 0 && bounds.is_empty() {
            return Ok(JobInput {
                groups: normalized.groups,
                options,
                normalization: normalized.report,
                segments: Vec::new(),
                warnings,
            });
        }
        if normalized.report.kept() > 0 {
            let mut unsegmented = Vec::new();
            let mut segments = Vec::new();
            let mut k = 0;
            for (name, start, end) in bounds {
                let part =
                    normalize_groups(&groups[*start..*end], options.hash_identifiers, |g, v| {
                        locate(Place::Value(start + g, v))
                    });
                match name {
                    None if part.report.kept() == 0 && end > start => {
                        push(
                            &mut errors,
                            FieldError::new(
                                locate(Place::Identifiers),
                                "no usable identifier among the customers in no segment",
                            ),
                        );
                        for e in part.rejections {
                            push(&mut errors, e);
                        }
                    }
                    None => unsegmented = part.groups,
                    Some(name) if part.report.kept() == 0 => {
                        push(
                            &mut errors,
                            FieldError::new(
                                locate(Place::Segment(k)),
                                format!("segment {name:?} has no usable identifier"),
                            ),
                        );
                        for e in part.rejections {
                            push(&mut errors, e);
                        }
                    }
                    Some(name) => segments.push(SegmentInput {
                        name: name.clone(),
                        groups: part.groups,
                    }),
                }
                k += usize::from(name.is_some());
            }
            if errors.is_empty() {
                return Ok(JobInput {
                    groups: unsegmented,
                    options,
                    normalization: normalized.report,
                    segments,
                    warnings,
                });
            }
        } else {
            for e in normalized.rejections {
                push(&mut errors, e);
            }
        }
        // Nothing left to send: where the values' hash type looks wrong, say so at the group.
        for w in warnings.iter().filter(|w| {
            // A wrong length is already a rejection reason; it is worth a word only when the
            // length fits another hash type.
            match w.code {
                WarningCode::HashedSentAsPlaintext | WarningCode::PlaintextSentAsHashed => true,
                WarningCode::WrongDigestLength => w.looks_like.is_some(),
                _ => false,
            }
        }) {
            if let Some(g) = groups
                .iter()
                .position(|g| Some(g.id_type) == w.id_type && Some(g.hash_type) == w.hash_type)
            {
                push(
                    &mut errors,
                    FieldError::new(
                        locate(Place::HashType(g)),
                        format!("{}: {}", w.code.as_str(), w.message),
                    ),
                );
            }
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
    #[serde(default, deserialize_with = "crate::decode::optional_query_whole")]
    pub max_cluster_size: Option<usize>,
    /// Comma-separated: precision, standard, hybrid, reach.
    pub strategies: Option<String>,
    pub identifier_type: Option<IdType>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub radius: Option<f64>,
    pub unit: Option<icp_contract::DistanceUnit>,
    pub exclude_customers: Option<bool>,
    #[serde(default, deserialize_with = "crate::decode::optional_query_whole")]
    pub audience_limit: Option<u64>,
    /// `sha256` to hash plaintext emails, phones and mobile ad ids before the job is stored.
    pub hash_identifiers: Option<crate::options::IdentifierHashing>,
    /// `true` to build the ranked audiences too.
    pub ranked: Option<bool>,
    /// `false` to skip the validation of the audiences.
    pub validate: Option<bool>,
    /// Where to POST a signed message when the job ends.
    pub callback_url: Option<String>,
}

impl CsvOptionsQuery {
    pub fn parse(query: Option<&str>) -> Result<JobOptions, ApiError> {
        let q: CsvOptionsQuery = parse_query(query)?;
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
                            format!(
                                "unknown strategy {name:?}; use precision, standard, hybrid or reach"
                            ),
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
        if q.ranked.is_some() {
            o.ranked = q.ranked;
        }
        if let Some(v) = q.validate {
            o.validate = v;
        }
        if q.callback_url.is_some() {
            o.callback_url = q.callback_url;
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

    const MAX: usize = crate::config::DEFAULT_MAX_IDENTIFIERS;

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
            MAX,
        )
        .unwrap();
        assert_eq!(input.identifier_count(), 3);
        assert_eq!(input.groups.len(), 2);
    }

    #[test]
    fn bad_json_names_the_place() {
        let err = from_json(
            br#"{"multi_identifiers":[{"id_type":"fax","hash_type":"plaintext","values":["1"]}]}"#,
            MAX,
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
        let p = from_json(body, MAX).unwrap_err().to_problem();
        assert_eq!(p.errors[0].location, "/multi_identifiers/0/values/0");
        assert!(p.errors[0].message.contains("wrong_digest_length"), "{p:?}");
    }

    #[test]
    fn csv_values_are_normalised_and_bad_ones_left_out() {
        let input = from_csv(
            b"email,phone\n A@X.com ,+1 512 555 0134\nnobody,\n",
            JobOptions::default(),
            MAX,
        )
        .unwrap();
        assert_eq!(input.groups[0].values, ["a@x.com"]);
        assert_eq!(input.groups[1].values, ["5125550134"]);
        assert_eq!(input.normalization.groups[0].rejected, 1);
        let p = from_csv(b"email\nnobody\n", JobOptions::default(), MAX)
            .unwrap_err()
            .to_problem();
        assert_eq!(p.errors[0].location, "line 2, column email");
    }

    #[test]
    fn json_segments_are_normalised_each_on_its_own_and_stored_apart() {
        let body = br#"{"segments": {
            "b": {"multi_identifiers": [{"id_type": "email", "hash_type": "plaintext", "values": ["X@y.com", "z@y.com"]}]},
            "a": {"multi_identifiers": [{"id_type": "email", "hash_type": "plaintext", "values": ["x@y.com"]}]}
        }}"#;
        let input = from_json(body, MAX).unwrap();
        assert!(input.groups.is_empty());
        let names: Vec<&str> = input.segments.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        // The same customer in both segments stays in both.
        assert_eq!(input.segments[1].groups[0].values, ["x@y.com", "z@y.com"]);
        assert_eq!(input.identifier_count(), 3);
        let stored = serde_json::to_value(input.stored()).unwrap();
        let back: StoredInput = serde_json::from_value(stored).unwrap();
        let (parts, names) = back.parts();
        assert_eq!(
            (parts.len(), names),
            (3, vec!["a".to_owned(), "b".to_owned()])
        );
        // A job stored before segments: the bare groups, one part.
        let old: StoredInput = serde_json::from_str(
            r#"[{"id_type":"email","hash_type":"plaintext","values":["a@x.com"]}]"#,
        )
        .unwrap();
        assert_eq!(old.parts().0.len(), 1);
    }

    #[test]
    fn bad_segments_name_their_place() {
        let p = from_json(br#"{"segments": {"a b": {"multi_identifiers": []}}}"#, MAX)
            .unwrap_err()
            .to_problem();
        assert_eq!(p.errors[0].location, "/segments");
        let p = from_json(
            br#"{"segments": {"ok": {"multi_identifiers": [{"id_type": "email", "hash_type": "plaintext", "values": ["a@x.com", "nobody"]}]},
                              "bad": {"multi_identifiers": [{"id_type": "email", "hash_type": "plaintext", "values": ["nobody"]}]}}}"#,
            MAX,
        )
        .unwrap_err()
        .to_problem();
        let locations: Vec<&str> = p.errors.iter().map(|e| e.location.as_str()).collect();
        assert!(
            locations.contains(&"/segments/bad/multi_identifiers/0/values/0"),
            "{locations:?}"
        );
        assert!(from_json(br#"{"options": {}}"#, MAX).is_err());
        assert!(from_json(br#"{"multi_identifiers": null, "segments": {}}"#, MAX).is_err());
        let p = from_json(
            br#"{"segments": null, "multi_identifiers": [{"id_type": "email", "hash_type": "plaintext", "values": ["a@x.com"]}]}"#,
            MAX,
        )
        .unwrap_err()
        .to_problem();
        assert_eq!(p.errors[0].location, "/segments");
        assert!(segment_name_problem(&"x".repeat(65)).is_some());
        assert!(segment_name_problem("Golf_fans-2").is_none());
    }

    #[test]
    fn a_csv_segment_column_splits_the_customers() {
        let input = from_csv(
            b"email,Segment\na@x.com,two\nb@x.com,one\nc@x.com,\n",
            JobOptions::default(),
            MAX,
        )
        .unwrap();
        assert_eq!(input.groups[0].values, ["c@x.com"]);
        let names: Vec<&str> = input.segments.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["one", "two"]);
        assert_eq!(input.segments[0].groups[0].values, ["b@x.com"]);
        let p = from_csv(b"email,segment\na@x.com,a/b\n", JobOptions::default(), MAX)
            .unwrap_err()
            .to_problem();
        assert_eq!(p.errors[0].location, "line 2, column segment");
        let p = from_csv(
            b"email,segment\na@x.com,ok\nnobody,bad\n",
            JobOptions::default(),
            MAX,
        )
        .unwrap_err()
        .to_problem();
        assert_eq!(p.errors[0].location, "line 3, column segment", "{p:?}");
        // Without a segment column, or with it empty throughout, a job has no segments.
        let input = from_csv(b"email,segment\na@x.com,\n", JobOptions::default(), MAX).unwrap();
        assert!(input.segments.is_empty());
    }
}
