//! Importing a population from a CSV a team brings (format in the crate's README).
//!
//! The whole file is checked before anything is built: a malformed file is refused with the line
//! and the reason, and nothing is half-loaded.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use icp_contract::{normalize_email, normalize_maid, normalize_phone};

use crate::attributes;
use crate::columns::{Attribute, Codes, ContactSource, Population};
use crate::contacts::Contact;
use crate::id_index::{MAX_IDENTIFIERS_PER_KIND, MAX_PERSONS};

/// Most distinct values one trait column may hold.
pub const MAX_VALUES_PER_ATTRIBUTE: usize = u16::MAX as usize;
const MAX_VALUE_LEN: usize = 256;

/// Why an import was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read the population file: {0}")]
    Io(#[from] std::io::Error),
    /// `line` is 1-based and counts the header.
    #[error("line {line}{}: {reason}", column.as_ref().map(|c| format!(", column {c:?}")).unwrap_or_default())]
    Invalid {
        line: u64,
        column: Option<String>,
        reason: String,
    },
}

fn invalid(line: u64, column: Option<&str>, reason: impl Into<String>) -> ImportError {
    ImportError::Invalid {
        line,
        column: column.map(str::to_owned),
        reason: reason.into(),
    }
}

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    FirstName,
    LastName,
    Email,
    Phone,
    Address,
    Maid,
    Latitude,
    Longitude,
    /// Index into the trait attributes.
    Trait(usize),
}

/// Contact columns: `email`, `email2`, `phone1`, … (any case); numbered columns keep file order.
fn identifier_column(name: &str) -> Option<Column> {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "first_name" => return Some(Column::FirstName),
        "last_name" => return Some(Column::LastName),
        "latitude" | "lat" => return Some(Column::Latitude),
        "longitude" | "lon" | "lng" => return Some(Column::Longitude),
        _ => {}
    }
    let stem = lower.trim_end_matches(|c: char| c.is_ascii_digit());
    let kind = match stem {
        "email" => Column::Email,
        "phone" => Column::Phone,
        "address" => Column::Address,
        "maid" => Column::Maid,
        _ => return None,
    };
    Some(kind)
}

/// The domain of a trait column: `domain:name` says it outright; otherwise the generator's
/// attribute of that name, the upstream's naming prefixes, and `lifestyle` last.
fn trait_domain(name: &str) -> &'static str {
    if let Some(spec) = attributes::trait_specs().iter().find(|s| s.name == name) {
        return spec.domain;
    }
    const PREFIXES: &[(&str, &str)] = &[
        ("interested_", "interest"),
        ("purchase_", "purchase"),
        ("intent_topic_", "intent_topic"),
        ("intent_category_", "intent_category"),
        ("content_", "content"),
    ];
    for (p, d) in PREFIXES {
        if name.starts_with(p) {
            return d;
        }
    }
    if name.ends_with("_affinity") {
        return "affinity";
    }
    "lifestyle"
}

const TRAIT_DOMAINS: [&str; 12] = [
    "affinity",
    "content",
    "demographic",
    "employment",
    "financial",
    "household",
    "intent_category",
    "intent_topic",
    "interest",
    "lifestyle",
    "political",
    "purchase",
];

impl Population {
    /// Imports a population from a CSV file.
    pub fn from_csv_path(path: &Path) -> Result<Population, ImportError> {
        let file = std::fs::File::open(path)?;
        Population::from_csv_reader(std::io::BufReader::new(file))
    }

    /// Imports a population from CSV bytes: a header, then one row a person.
    pub fn from_csv_reader(reader: impl Read) -> Result<Population, ImportError> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .trim(csv::Trim::All)
            .from_reader(reader);
        let headers = rdr.headers().map_err(|e| csv_error(e, 1))?.clone();
        if headers.is_empty() || headers.iter().all(str::is_empty) {
            return Err(invalid(1, None, "the header row is empty"));
        }
        let mut columns = Vec::with_capacity(headers.len());
        let mut attrs: Vec<Attribute> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for h in headers.iter() {
            if h.is_empty() {
                return Err(invalid(1, None, "a column has no name"));
            }
            if !seen.insert(h.to_ascii_lowercase()) {
                return Err(invalid(1, Some(h), "column named twice"));
            }
            if ["person_id", "id"].contains(&h.to_ascii_lowercase().as_str()) {
                return Err(invalid(
                    1,
                    Some(h),
                    "person ids are assigned by the engine; remove this column",
                ));
            }
            if let Some(c) = identifier_column(h) {
                let of_kind = columns.iter().filter(|k| **k == c).count();
                if matches!(c, Column::Email | Column::Phone | Column::Maid)
                    && of_kind >= MAX_IDENTIFIERS_PER_KIND
                {
                    return Err(invalid(
                        1,
                        Some(h),
                        format!(
                            "at most {} columns of each of email, phone and maid: a person is \
                             found by at most that many of each",
                            MAX_IDENTIFIERS_PER_KIND
                        ),
                    ));
                }
                columns.push(c);
                continue;
            }
            let (domain, name) = match h.split_once(':') {
                Some((d, n)) => {
                    let d = d.trim().to_ascii_lowercase();
                    let Some(d) = TRAIT_DOMAINS.iter().find(|x| **x == d) else {
                        return Err(invalid(
                            1,
                            Some(h),
                            format!("unknown domain {d:?}; known: {}", TRAIT_DOMAINS.join(", ")),
                        ));
                    };
                    (*d, n.trim())
                }
                None => (trait_domain(h), h),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return Err(invalid(
                    1,
                    Some(h),
                    "a trait name is letters, digits and underscores",
                ));
            }
            if attrs.iter().any(|a| a.name == name) {
                return Err(invalid(1, Some(h), "trait named twice"));
            }
            columns.push(Column::Trait(attrs.len()));
            attrs.push(Attribute {
                name: name.to_owned(),
                domain: domain.to_owned(),
                values: Vec::new(),
            });
        }

        let width = attrs.len();
        let mut lookup: Vec<HashMap<String, u16>> = vec![HashMap::new(); width];
        let mut codes: Vec<u16> = Vec::new();
        let mut contacts = Vec::new();
        let mut lat = Vec::new();
        let mut lon = Vec::new();
        let mut record = csv::StringRecord::new();
        let mut line = 1u64;
        loop {
            match rdr.read_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(csv_error(e, line + 1)),
            }
            line = record.position().map_or(line + 1, |p| p.line());
            if contacts.len() >= MAX_PERSONS {
                return Err(invalid(line, None, format!("more than {MAX_PERSONS} rows")));
            }
            let mut contact = Contact::default();
            let mut row = vec![0u16; width];
            let (mut la, mut lo) = (None, None);
            for ((value, col), header) in record.iter().zip(&columns).zip(headers.iter()) {
                if value.is_empty() {
                    continue;
                }
                if value.len() > MAX_VALUE_LEN {
                    return Err(invalid(
                        line,
                        Some(header),
                        format!("value longer than {MAX_VALUE_LEN} bytes"),
                    ));
                }
                let bad = |reason: &str| invalid(line, Some(header), reason);
                match col {
                    Column::FirstName => contact.first_name = Some(value.to_owned()),
                    Column::LastName => contact.last_name = Some(value.to_owned()),
                    Column::Email => contact
                        .emails
                        .push(normalize_email(value).ok_or_else(|| bad("not an email address"))?),
                    Column::Phone => contact.phones.push(
                        normalize_phone(value)
                            .ok_or_else(|| bad("a phone is 10 digits (an optional leading +1)"))?,
                    ),
                    Column::Address => {
                        if contact.address.is_some() {
                            return Err(bad("a person has one address"));
                        }
                        contact.address = Some(value.to_owned());
                    }
                    Column::Maid => contact
                        .maids
                        .push(normalize_maid(value).ok_or_else(|| bad("empty mobile ad id"))?),
                    Column::Latitude => {
                        la = Some(
                            value
                                .parse::<f64>()
                                .ok()
                                .filter(|v| (-90.0..=90.0).contains(v))
                                .ok_or_else(|| bad("latitude must be a number within -90..90"))?,
                        );
                    }
                    Column::Longitude => {
                        lo = Some(
                            value
                                .parse::<f64>()
                                .ok()
                                .filter(|v| (-180.0..=180.0).contains(v))
                                .ok_or_else(|| {
                                    bad("longitude must be a number within -180..180")
                                })?,
                        );
                    }
                    Column::Trait(a) => {
                        let map = &mut lookup[*a];
                        let code = match map.get(value) {
                            Some(c) => *c,
                            None => {
                                if map.len() >= MAX_VALUES_PER_ATTRIBUTE {
                                    return Err(bad(
                                        "more than 65535 distinct values in this column",
                                    ));
                                }
                                attrs[*a].values.push(value.to_owned());
                                let c = attrs[*a].values.len() as u16;
                                map.insert(value.to_owned(), c);
                                c
                            }
                        };
                        row[*a] = code;
                    }
                }
            }
            match (la, lo) {
                (Some(a), Some(o)) => {
                    lat.push(a);
                    lon.push(o);
                }
                (None, None) => {
                    lat.push(f64::NAN);
                    lon.push(f64::NAN);
                }
                _ => {
                    return Err(invalid(
                        line,
                        None,
                        "latitude and longitude come together or not at all",
                    ));
                }
            }
            codes.extend_from_slice(&row);
            contacts.push(contact);
        }
        if contacts.is_empty() {
            return Err(invalid(line, None, "the file has a header but no persons"));
        }
        let narrow = attrs.iter().all(|a| a.values.len() <= usize::from(u8::MAX));
        let codes = if narrow {
            Codes::Narrow(codes.into_iter().map(|c| c as u8).collect())
        } else {
            Codes::Wide(codes)
        };
        Ok(Population::assemble(
            attrs,
            codes,
            ContactSource::Stored(contacts),
            lat,
            lon,
            Vec::new(),
            Vec::new(),
            0,
        ))
    }
}

fn csv_error(e: csv::Error, fallback_line: u64) -> ImportError {
    let line = e.position().map_or(fallback_line, |p| p.line());
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => invalid(
            line,
            None,
            format!("{len} fields where the header has {expected_len}"),
        ),
        csv::ErrorKind::Utf8 { .. } => invalid(line, None, "not valid UTF-8"),
        csv::ErrorKind::Io(_) => invalid(line, None, format!("read error: {e}")),
        _ => invalid(line, None, e.to_string()),
    }
}

impl Population {
    /// Writes the population in the import format (one row a person; contact columns, then one
    /// `domain:name` column a trait), so it can be imported again or loaded elsewhere.
    pub fn write_csv(&self, out: impl std::io::Write) -> std::io::Result<()> {
        use crate::contacts::{MAX_EMAILS, MAX_MAIDS, MAX_PHONES};
        let mut w = csv::Writer::from_writer(out);
        let err = |e: csv::Error| std::io::Error::other(e.to_string());
        // Imported populations may carry more contacts than the generator's maxima.
        let (mut emails, mut phones, mut maids) = (MAX_EMAILS, MAX_PHONES, MAX_MAIDS);
        if let ContactSource::Stored(all) = &self.contacts {
            for c in all {
                emails = emails.max(c.emails.len());
                phones = phones.max(c.phones.len());
                maids = maids.max(c.maids.len());
            }
        }
        let mut header = vec!["first_name".to_owned(), "last_name".to_owned()];
        header.extend((1..=emails).map(|i| format!("email{i}")));
        header.extend((1..=phones).map(|i| format!("phone{i}")));
        header.push("address".to_owned());
        header.extend((1..=maids).map(|i| format!("maid{i}")));
        header.extend(["latitude".to_owned(), "longitude".to_owned()]);
        header.extend(
            self.attrs
                .iter()
                .map(|a| format!("{}:{}", a.domain, a.name)),
        );
        w.write_record(&header).map_err(err)?;
        let mut row: Vec<String> = Vec::with_capacity(header.len());
        for p in 0..self.len() {
            row.clear();
            let c = self.contact(p);
            row.push(c.first_name.unwrap_or_default());
            row.push(c.last_name.unwrap_or_default());
            let pad = |row: &mut Vec<String>, v: Vec<String>, n: usize| {
                let k = v.len();
                row.extend(v);
                row.extend(std::iter::repeat_n(String::new(), n - k));
            };
            pad(&mut row, c.emails, emails);
            pad(&mut row, c.phones, phones);
            row.push(c.address.unwrap_or_default());
            pad(&mut row, c.maids, maids);
            match self.coordinates(p) {
                Some((la, lo)) => {
                    row.push(la.to_string());
                    row.push(lo.to_string());
                }
                None => row.extend([String::new(), String::new()]),
            }
            for (a, attr) in self.attrs.iter().enumerate() {
                let code = self.code(p, a);
                row.push(if code == 0 {
                    String::new()
                } else {
                    attr.values[usize::from(code) - 1].clone()
                });
            }
            w.write_record(&row).map_err(err)?;
        }
        w.flush()
    }
}
