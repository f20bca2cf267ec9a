//! A job's options: parsed once at the edge, with every default and bound in one place.

use icp_analysis::{AnalysisConfig, AudienceConfig, Expr, Item, Strategy};
use icp_contract::{CONTACT_DOMAINS, DOMAINS, IdType, Location};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::callback::parse_callback_url;
use crate::problem::FieldError;

/// The `get_person` domains that hold traits: every domain but contact and identity data.
pub fn trait_domains() -> Vec<String> {
    DOMAINS
        .iter()
        .filter(|d| !CONTACT_DOMAINS.contains(d))
        .map(|d| (*d).to_owned())
        .collect()
}

/// Whether the service hashes plaintext identifiers before the job is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierHashing {
    /// Identifiers are sent as submitted (normalised).
    #[default]
    None,
    /// Plaintext emails, phones and mobile ad ids are normalised, then sent as the SHA-256 of
    /// their normal form; addresses stay plaintext (providers match them in plaintext only).
    Sha256,
}

/// The most rows one audience export may hold.
pub const MAX_AUDIENCE_LIMIT: u64 = 10_000_000;
/// The largest radius of a location, in either unit: half the earth's circumference in km.
/// In miles it is more than the whole earth (half is 12,450 mi), which a larger radius only
/// covers again; one bound for both units lets the spec state it.
pub const MAX_RADIUS: f64 = 20_040.0;
/// The audiences may carry these contact data (not mobile ad ids).
pub const AUDIENCE_ID_TYPES: [IdType; 3] = [IdType::Email, IdType::Phone, IdType::Address];

/// Whether a job that does not say builds the ranked audiences where the provider ranks its
/// own population (the embedded one). Never by default over a provider that cannot: the
/// service would then fetch the profile of every person of the boolean audiences.
pub const RANKED_BY_DEFAULT: bool = true;

/// The most `attribute=value` exclusions one job (or one custom audience) may name.
pub const MAX_EXCLUSIONS: usize = 20;

/// An `attribute=value` trait: the name and value either side of the first `=`, trimmed; `None`
/// when either is empty or there is no `=`.
pub fn parse_trait(text: &str) -> Option<Item> {
    let (name, value) = text.split_once('=')?;
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() || value.is_empty() {
        return None;
    }
    Some(Item {
        name: name.to_owned(),
        value: value.to_owned(),
    })
}

/// Every reason a list of `attribute=value` exclusions cannot run, pointers under `at`.
pub fn validate_exclusions(exclude: &[String], at: &str, errors: &mut Vec<FieldError>) {
    if exclude.len() > MAX_EXCLUSIONS {
        errors.push(FieldError::new(
            at,
            format!("at most {MAX_EXCLUSIONS} exclusions"),
        ));
    }
    for (i, e) in exclude.iter().enumerate() {
        if parse_trait(e).is_none() {
            errors.push(FieldError::new(
                format!("{at}/{i}"),
                "must be attribute=value, both non-empty",
            ));
        }
    }
}

/// What the caller may tune for one job. Every field is optional in the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct JobOptions {
    /// Resolved identities below this `overall_quality_score` are left out (0–1).
    #[schema(example = 0.5, minimum = 0.0, maximum = 1.0)]
    pub min_quality_score: f64,
    /// The `get_person` domains to enrich with; all trait domains when absent (contact domains
    /// only when named: their fields are never traits, so by default they are not fetched).
    pub domains: Option<Vec<String>>,
    /// The least share of customers a pair or cluster must cover (0–1, exclusive of 0).
    #[schema(example = 0.02, minimum = 0.0, maximum = 1.0)]
    pub min_support: f64,
    /// The largest multi-attribute cluster to look for (3–8).
    #[schema(example = 5, minimum = 3, maximum = 8)]
    #[serde(deserialize_with = "crate::decode::whole")]
    pub max_cluster_size: usize,
    /// The audiences to build.
    pub strategies: Vec<Strategy>,
    /// The contact data the audience carries: `email`, `phone` or `address`.
    pub identifier_type: IdType,
    /// Only people whose address lies in this circle.
    #[serde(deserialize_with = "crate::decode::optional_object")]
    pub location: Option<Location>,
    /// Leave the customers themselves out of the audiences.
    pub exclude_customers: bool,
    /// The most people an audience export holds (after excluding customers).
    #[schema(example = 100000)]
    #[serde(deserialize_with = "crate::decode::optional_whole")]
    pub audience_limit: Option<u64>,
    /// `sha256`: plaintext emails, phones and mobile ad ids are hashed by the service before the
    /// job is stored, so they never leave it, nor sit in its database, in the clear.
    pub hash_identifiers: IdentifierHashing,
    /// Also build the ranked audiences: every person scored against the customers (logistic
    /// regression of the customers against a seeded population sample where the provider can
    /// draw one, else naive Bayes, over the analysed traits; `ranked.model` says which) and the
    /// top 1 %, 2 %, 5 % and 10 % exported.
    /// Absent: built when the provider ranks its own population (the embedded one). `true`:
    /// built over any provider; one that cannot rank its population has the persons of the
    /// boolean audiences scored by the service instead (their profiles fetched). `false`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranked: Option<bool>,
    /// Validate each audience once it is found: a seeded sample of it (1,000 persons) enriched
    /// through the same provider and its top traits set against the customers' and the
    /// population's, with a similarity score (the `validate` stage; the audience's
    /// `validation`). `false` skips the stage and its `get_person` calls.
    pub validate: bool,
    /// Where to POST a signed message (Standard Webhooks) when the job ends: an absolute
    /// `http://` or `https://` URL of a receiver the service may call (not a private address
    /// unless the operator allows it, never the service itself). Each attempt is shown on the
    /// job (`deliveries`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "https://hooks.example.com/icp")]
    pub callback_url: Option<String>,
    /// People to leave out of every audience, each an `attribute=value` trait: every audience
    /// expression sent upstream gains `AND NOT <its cluster>` (at most `MAX_EXCLUSIONS`). A
    /// trait the provider has no cluster for is left out and named in `audience_notes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(example = json!(["homeowner_status=Renter"]), max_items = 20)]
    pub exclude: Vec<String>,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            min_quality_score: 0.5,
            domains: None,
            min_support: 0.02,
            max_cluster_size: 5,
            strategies: Strategy::ALL.to_vec(),
            identifier_type: IdType::Email,
            location: None,
            exclude_customers: true,
            audience_limit: None,
            hash_identifiers: IdentifierHashing::None,
            ranked: None,
            validate: true,
            callback_url: None,
            exclude: Vec::new(),
        }
    }
}

impl JobOptions {
    /// The analysis these options ask for.
    pub fn analysis_config(&self) -> AnalysisConfig {
        AnalysisConfig {
            min_support: self.min_support,
            max_cluster_size: self.max_cluster_size,
            ..AnalysisConfig::default()
        }
    }

    /// Whether the analysis fits the lookalike weights: unless the job said no.
    pub fn may_rank(&self) -> bool {
        self.ranked.unwrap_or(RANKED_BY_DEFAULT)
    }

    /// The audiences these options ask for.
    pub fn audience_config(&self) -> AudienceConfig {
        AudienceConfig {
            strategies: self.strategies.clone(),
            ..AudienceConfig::default()
        }
    }

    /// Every reason these options cannot run, each with its JSON pointer.
    pub fn validate(&self, errors: &mut Vec<FieldError>) {
        let at = |field: &str| format!("/options/{field}");
        if !(0.0..=1.0).contains(&self.min_quality_score) {
            errors.push(FieldError::new(
                at("min_quality_score"),
                "must be between 0 and 1",
            ));
        }
        if !(self.min_support > 0.0 && self.min_support <= 1.0) {
            errors.push(FieldError::new(
                at("min_support"),
                "must be greater than 0 and at most 1",
            ));
        }
        if !(3..=8).contains(&self.max_cluster_size) {
            errors.push(FieldError::new(
                at("max_cluster_size"),
                "must be between 3 and 8",
            ));
        }
        if self.strategies.is_empty() {
            errors.push(FieldError::new(
                at("strategies"),
                "name at least one strategy",
            ));
        }
        let mut seen = Vec::new();
        for (i, s) in self.strategies.iter().enumerate() {
            if seen.contains(s) {
                errors.push(FieldError::new(
                    format!("/options/strategies/{i}"),
                    "listed twice",
                ));
            }
            seen.push(*s);
        }
        if !AUDIENCE_ID_TYPES.contains(&self.identifier_type) {
            errors.push(FieldError::new(
                at("identifier_type"),
                "audiences carry email, phone or address",
            ));
        }
        if let Some(domains) = &self.domains {
            if domains.is_empty() {
                errors.push(FieldError::new(
                    at("domains"),
                    "name at least one domain, or leave it out",
                ));
            }
            for (i, d) in domains.iter().enumerate() {
                if !DOMAINS.contains(&d.as_str()) {
                    errors.push(FieldError::new(
                        format!("/options/domains/{i}"),
                        format!("unknown domain {d:?}; known: {}", DOMAINS.join(", ")),
                    ));
                }
            }
        }
        if let Some(loc) = &self.location {
            validate_location(loc, "/options/location", errors);
        }
        if let Some(limit) = self.audience_limit
            && !(1..=MAX_AUDIENCE_LIMIT).contains(&limit)
        {
            errors.push(FieldError::new(
                at("audience_limit"),
                format!("must be between 1 and {MAX_AUDIENCE_LIMIT}"),
            ));
        }
        if let Some(url) = &self.callback_url
            && let Err(reason) = parse_callback_url(url)
        {
            errors.push(FieldError::new(at("callback_url"), reason));
        }
        validate_exclusions(&self.exclude, "/options/exclude", errors);
    }

    /// The exclusions whose trait `known` has a cluster for, as one expression (an `Or`, which
    /// `Expr::and_not` turns into one `AND NOT` term each); `None` when there is none.
    pub fn exclusion(&self, known: impl Fn(&Item) -> bool) -> Option<Expr> {
        let items: Vec<Item> = self
            .exclusion_items()
            .into_iter()
            .filter(|i| known(i))
            .collect();
        Expr::any_of(&items)
    }

    /// The traits `exclude` names, in order, without repeats (each was validated at POST).
    pub fn exclusion_items(&self) -> Vec<Item> {
        let mut items: Vec<Item> = Vec::new();
        for item in self.exclude.iter().filter_map(|e| parse_trait(e)) {
            if !items.contains(&item) {
                items.push(item);
            }
        }
        items
    }
}

/// Every reason a location cannot run, pointers under `at` (`/options/location`, `/location`).
pub fn validate_location(loc: &Location, at: &str, errors: &mut Vec<FieldError>) {
    if !(loc.latitude.is_finite() && (-90.0..=90.0).contains(&loc.latitude)) {
        errors.push(FieldError::new(
            format!("{at}/latitude"),
            "must be between -90 and 90",
        ));
    }
    if !(loc.longitude.is_finite() && (-180.0..=180.0).contains(&loc.longitude)) {
        errors.push(FieldError::new(
            format!("{at}/longitude"),
            "must be between -180 and 180",
        ));
    }
    if !(loc.radius.is_finite() && loc.radius > 0.0 && loc.radius <= MAX_RADIUS) {
        errors.push(FieldError::new(
            format!("{at}/radius"),
            format!("must be greater than 0 and at most {MAX_RADIUS}"),
        ));
    }
}
