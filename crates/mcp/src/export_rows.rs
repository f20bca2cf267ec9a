//! The row shapes of export files, shared by the server that writes them and the client that
//! reads them. JSON and JSON Lines carry the contract's shapes as they are; CSV flattens them:
//! - identities: `person_id,overall_quality_score,matches,identifiers`, the last two JSON cells;
//! - audience records: `person_id` then one column per numbered identifier (`email1`, `phone2`,
//!   …), whose type is the column name without its trailing digits.

use std::collections::{BTreeMap, BTreeSet};

use icp_contract::{AudienceRecord, ExportFormat, Identity, PersonId, ProviderError};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A row type that can travel in every export format.
pub trait ExportRow: Serialize + DeserializeOwned + Send + 'static {
    fn to_csv(rows: &[Self]) -> Result<Vec<u8>, ProviderError>;
    fn from_csv(body: &[u8]) -> Result<Vec<Self>, ProviderError>;
}

fn csv_err(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::protocol(format!("export CSV: {e}"))
}

impl ExportRow for Identity {
    fn to_csv(rows: &[Self]) -> Result<Vec<u8>, ProviderError> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record([
            "person_id",
            "overall_quality_score",
            "matches",
            "identifiers",
        ])
        .map_err(csv_err)?;
        for r in rows {
            let matches = serde_json::to_string(&r.matches).map_err(csv_err)?;
            let identifiers = serde_json::to_string(&r.identifiers).map_err(csv_err)?;
            w.write_record([
                r.person_id.to_string(),
                r.overall_quality_score.to_string(),
                matches,
                identifiers,
            ])
            .map_err(csv_err)?;
        }
        w.into_inner().map_err(csv_err)
    }

    fn from_csv(body: &[u8]) -> Result<Vec<Self>, ProviderError> {
        let mut r = csv::Reader::from_reader(body);
        let headers = r.headers().map_err(csv_err)?.clone();
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| csv_err(format!("no {name} column")))
        };
        let (pid, score, matches, identifiers) = (
            col("person_id")?,
            col("overall_quality_score")?,
            col("matches")?,
            col("identifiers").ok(),
        );
        let mut out = Vec::new();
        for rec in r.records() {
            let rec = rec.map_err(csv_err)?;
            let field = |i: usize| rec.get(i).unwrap_or("");
            out.push(Identity {
                person_id: PersonId(field(pid).trim().parse().map_err(csv_err)?),
                overall_quality_score: field(score).trim().parse().map_err(csv_err)?,
                matches: serde_json::from_str(field(matches)).map_err(csv_err)?,
                identifiers: match identifiers.map(field) {
                    Some(cell) if !cell.is_empty() => {
                        serde_json::from_str(cell).map_err(csv_err)?
                    }
                    _ => BTreeMap::new(),
                },
            });
        }
        Ok(out)
    }
}

impl ExportRow for AudienceRecord {
    fn to_csv(rows: &[Self]) -> Result<Vec<u8>, ProviderError> {
        let mut columns = BTreeSet::new();
        add_audience_columns(&mut columns, rows);
        let mut out = Vec::new();
        write_audience_csv_header(&mut out, &columns)?;
        write_audience_csv_rows(&mut out, &columns, rows)?;
        Ok(out)
    }

    fn from_csv(body: &[u8]) -> Result<Vec<Self>, ProviderError> {
        let mut r = csv::Reader::from_reader(body);
        let headers = r.headers().map_err(csv_err)?.clone();
        let pid = headers
            .iter()
            .position(|h| h == "person_id")
            .ok_or_else(|| csv_err("no person_id column"))?;
        let mut out = Vec::new();
        for rec in r.records() {
            let rec = rec.map_err(csv_err)?;
            let mut identifiers: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
            for (i, h) in headers.iter().enumerate() {
                let v = rec.get(i).unwrap_or("");
                if i == pid || v.is_empty() {
                    continue;
                }
                let kind = h.trim_end_matches(|c: char| c.is_ascii_digit());
                identifiers
                    .entry(kind.to_owned())
                    .or_default()
                    .insert(h.to_owned(), v.to_owned());
            }
            out.push(AudienceRecord {
                person_id: PersonId(rec.get(pid).unwrap_or("").trim().parse().map_err(csv_err)?),
                identifiers,
            });
        }
        Ok(out)
    }
}

/// Every numbered identifier (`email1`, `phone2`, …) the records have into `columns`: the CSV
/// columns of an audience past `person_id` are those of all its rows.
pub(crate) fn add_audience_columns(columns: &mut BTreeSet<String>, rows: &[AudienceRecord]) {
    for r in rows {
        for m in r.identifiers.values() {
            for key in m.keys() {
                if !columns.contains(key) {
                    columns.insert(key.clone());
                }
            }
        }
    }
}

/// An audience CSV's header: `person_id`, then `columns`.
pub(crate) fn write_audience_csv_header(
    out: &mut Vec<u8>,
    columns: &BTreeSet<String>,
) -> Result<(), ProviderError> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(std::iter::once("person_id").chain(columns.iter().map(String::as_str)))
        .map_err(csv_err)?;
    w.flush().map_err(csv_err)
}

/// Audience records as CSV rows under `columns` (a cell left empty where a record has no such
/// identifier).
pub(crate) fn write_audience_csv_rows(
    out: &mut Vec<u8>,
    columns: &BTreeSet<String>,
    rows: &[AudienceRecord],
) -> Result<(), ProviderError> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    let mut line: Vec<String> = Vec::with_capacity(columns.len() + 1);
    for r in rows {
        line.clear();
        line.push(r.person_id.to_string());
        for c in columns {
            let v = r.identifiers.values().find_map(|m| m.get(c));
            line.push(v.cloned().unwrap_or_default());
        }
        w.write_record(&line).map_err(csv_err)?;
    }
    w.flush().map_err(csv_err)
}

/// Writes rows in an export format, with the content type to serve them under.
pub fn encode<T: ExportRow>(
    rows: &[T],
    format: ExportFormat,
) -> Result<(Vec<u8>, &'static str), ProviderError> {
    let body = match format {
        ExportFormat::Json | ExportFormat::None => serde_json::to_vec(rows).map_err(json_err)?,
        ExportFormat::Jsonl => {
            let mut out = Vec::new();
            for r in rows {
                serde_json::to_writer(&mut out, r).map_err(json_err)?;
                out.push(b'\n');
            }
            out
        }
        ExportFormat::Csv => T::to_csv(rows)?,
    };
    Ok((body, content_type(format)))
}

/// The content type an export file in `format` is served under.
pub fn content_type(format: ExportFormat) -> &'static str {
    match format {
        ExportFormat::Json | ExportFormat::None => "application/json",
        ExportFormat::Jsonl => "application/x-ndjson",
        ExportFormat::Csv => "text/csv",
    }
}

fn json_err(e: serde_json::Error) -> ProviderError {
    ProviderError::protocol(format!("export JSON: {e}"))
}

/// Reads a whole export body.
pub fn decode<T: ExportRow>(body: &[u8], format: ExportFormat) -> Result<Vec<T>, ProviderError> {
    match format {
        ExportFormat::Json | ExportFormat::None => serde_json::from_slice(body).map_err(json_err),
        ExportFormat::Jsonl => body
            .split(|b| *b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .map(|l| serde_json::from_slice(l).map_err(json_err))
            .collect(),
        ExportFormat::Csv => T::from_csv(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use icp_contract::IdentityMatch;

    fn identities() -> Vec<Identity> {
        vec![Identity {
            person_id: PersonId(7),
            overall_quality_score: 0.9,
            matches: vec![IdentityMatch {
                criterion_type: "email_plaintext".into(),
                criterion_value: "a,\"b\"@x.io".into(),
                quality_score: 0.9,
            }],
            identifiers: BTreeMap::from([("email".into(), vec!["a@x.io".into()])]),
        }]
    }

    fn records() -> Vec<AudienceRecord> {
        vec![
            AudienceRecord {
                person_id: PersonId(1),
                identifiers: BTreeMap::from([(
                    "email".into(),
                    BTreeMap::from([
                        ("email1".into(), "a@x.io".into()),
                        ("email2".into(), "b@x.io".into()),
                    ]),
                )]),
            },
            AudienceRecord {
                person_id: PersonId(2),
                identifiers: BTreeMap::from([(
                    "email".into(),
                    BTreeMap::from([("email1".into(), "c@x.io".into())]),
                )]),
            },
        ]
    }

    #[test]
    fn every_format_round_trips() {
        for f in [ExportFormat::Json, ExportFormat::Jsonl, ExportFormat::Csv] {
            let (body, _) = encode(&identities(), f).unwrap();
            assert_eq!(decode::<Identity>(&body, f).unwrap(), identities(), "{f:?}");
            let (body, _) = encode(&records(), f).unwrap();
            assert_eq!(
                decode::<AudienceRecord>(&body, f).unwrap(),
                records(),
                "{f:?}"
            );
        }
    }

    #[test]
    fn a_garbled_export_is_a_protocol_error() {
        let err = decode::<AudienceRecord>(b"{\"person_id\": ", ExportFormat::Jsonl).unwrap_err();
        assert!(matches!(err, ProviderError::Protocol { .. }));
    }
}
