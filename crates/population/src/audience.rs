//! `find_persons`: evaluate an expression, narrow by place and limit, sample, export.

use std::borrow::Cow;
use std::collections::BTreeMap;

use icp_contract::{
    AudienceRecord, ExportFormat, FindPersonsRequest, FindPersonsResponse, IdType, MAX_SAMPLE,
    ProviderError, RecordBatch,
};
use roaring::RoaringBitmap;

use crate::columns::Population;
use crate::contacts::{ContactParts, MAX_EMAILS, MAX_MAIDS, MAX_PHONES, Wanted};
use crate::evaluate;
use crate::expression::{self, Expr};
use crate::geo;
use crate::rng::{Rng, stable_hash};

/// The persons an audience request selects, as row indexes.
#[derive(Debug, Clone)]
pub struct Audience {
    pub(crate) members: RoaringBitmap,
    pub(crate) id_type: IdType,
}

impl Audience {
    pub fn len(&self) -> u64 {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

impl Population {
    /// Parses an expression against this population's clusters.
    pub fn parse_expression(&self, text: &str) -> Result<Expr, ProviderError> {
        expression::parse(text, &|t| self.term_index(t))
            .map_err(|e| ProviderError::validation(format!("expression: {e}")))
    }

    /// Prints an expression with cluster hashes (what the upstream would be sent).
    pub fn expression_text(&self, e: &Expr) -> String {
        e.to_text(&|t| self.clusters[t as usize].hash.clone())
    }

    /// How many persons an expression selects (no location, no limit), counting rather than
    /// building the final bitmap where it can.
    pub fn count(&self, text: &str) -> Result<u64, ProviderError> {
        let e = self.parse_expression(text)?;
        Ok(evaluate::count(&e, &self.clusters))
    }

    /// Who an expression selects, one person at a time (slow; the reference for tests).
    pub fn matches_naive(&self, e: &Expr, person: usize) -> bool {
        evaluate::matches(e, &|t| {
            let c = &self.clusters[t as usize];
            self.code(person, c.attr as usize) == c.code
        })
    }

    /// Everyone a parsed expression selects, on bitmaps.
    pub fn evaluate(&self, e: &Expr) -> RoaringBitmap {
        evaluate::evaluate(e, &self.clusters)
    }

    /// The audience of a `find_persons` request: expression, then radius, then `audience_limit`
    /// (the first persons in id order).
    pub fn audience(&self, req: &FindPersonsRequest) -> Result<Audience, ProviderError> {
        let e = self.parse_expression(&req.expression)?;
        let mut members = match &req.location {
            Some(loc) => {
                geo::validate(loc)?;
                // Evaluate only among the people near the place, then measure exactly.
                let near = self.geo.candidates(loc);
                let selected = evaluate::evaluate_within(&e, &self.clusters, &near);
                geo::exact(&selected, loc, &self.lat, &self.lon)
            }
            None => evaluate::evaluate(&e, &self.clusters),
        };
        if let Some(limit) = req.audience_limit
            && limit < members.len()
            && let Some(cut) = members.select(limit as u32)
        {
            members.remove_range(cut..);
        }
        Ok(Audience {
            members,
            id_type: req.identifier_type.unwrap_or(IdType::Email),
        })
    }

    /// Audience size and a sample of at most [`MAX_SAMPLE`], the same for the same workflow id
    /// and request. `total` honours `location` and `audience_limit`. Exports are streamed by
    /// [`crate::EmbeddedProvider`] (`export_persons`), so `export` is never set here.
    pub fn find_persons(
        &self,
        req: &FindPersonsRequest,
    ) -> Result<FindPersonsResponse, ProviderError> {
        let audience = self.audience(req)?;
        Ok(self.answer(&audience, req))
    }

    /// The `find_persons` answer for an audience already selected by `req`.
    pub fn answer(&self, audience: &Audience, req: &FindPersonsRequest) -> FindPersonsResponse {
        let seed = stable_hash(req.workflow_id.as_deref().unwrap_or("").as_bytes())
            ^ stable_hash(req.expression.as_bytes()).rotate_left(17);
        FindPersonsResponse {
            total: audience.len(),
            sample: self.sample(audience, seed),
            export: None,
            tool_trace_id: None,
            workflow_id: req.workflow_id.clone(),
        }
    }

    fn sample(&self, audience: &Audience, seed: u64) -> Vec<AudienceRecord> {
        let total = audience.len();
        let mut ranks: Vec<u64> = if total <= MAX_SAMPLE as u64 {
            (0..total).collect()
        } else {
            let mut rng = Rng::from_state(seed);
            let mut picked = Vec::with_capacity(MAX_SAMPLE);
            while picked.len() < MAX_SAMPLE {
                let r = rng.below(total);
                if !picked.contains(&r) {
                    picked.push(r);
                }
            }
            picked
        };
        ranks.sort_unstable();
        ranks
            .into_iter()
            .filter_map(|r| audience.members.select(r as u32))
            .map(|p| self.audience_record(p as usize, audience.id_type))
            .collect()
    }

    /// One audience member with the contact data of `id_type`:
    /// `{"person_id": …, "identifiers": {"email": {"email1": …}}}`.
    pub fn audience_record(&self, person: usize, id_type: IdType) -> AudienceRecord {
        // The parts, so names are not copied and the wanted values are moved, not cloned.
        let c = self.contact_parts(person);
        AudienceRecord {
            person_id: self.person_id(person),
            identifiers: record_identifiers(c, id_type),
        }
    }

    /// Appends one audience member's record to `batch` as JSON, the bytes `serde_json` writes for
    /// [`Population::audience_record`], written straight from the contact parts (no maps, no
    /// key strings: an export writes hundreds of thousands of these).
    pub fn push_audience_line(&self, batch: &mut RecordBatch, person: usize, id_type: IdType) {
        let c = self.contact_parts_of(person, Wanted::only(id_type));
        let person_id = self.person_id(person);
        let address;
        let values: &[String] = match id_type {
            IdType::Email => &c.emails,
            IdType::Phone => &c.phones,
            IdType::Address => {
                address = c.address.map(Cow::into_owned);
                address.as_slice()
            }
            IdType::Maid => &c.maids,
        };
        batch.push_with(person_id, |json| {
            json.reserve(48 + values.iter().map(|v| v.len() + 16).sum::<usize>());
            json.extend_from_slice(b"{\"person_id\":");
            json.extend_from_slice(itoa::Buffer::new().format(person_id.0).as_bytes());
            json.extend_from_slice(b",\"identifiers\":{");
            if !values.is_empty() {
                let t = id_type.as_str();
                json.push(b'"');
                json.extend_from_slice(t.as_bytes());
                json.extend_from_slice(b"\":{");
                // The record's map orders its keys as strings: `email10` before `email2`.
                let mut order: Vec<usize> = (0..values.len()).collect();
                if values.len() >= 10 {
                    order.sort_by_key(|i| (i + 1).to_string());
                }
                for (n, i) in order.into_iter().enumerate() {
                    if n > 0 {
                        json.push(b',');
                    }
                    json.push(b'"');
                    json.extend_from_slice(t.as_bytes());
                    json.extend_from_slice(itoa::Buffer::new().format(i + 1).as_bytes());
                    json.extend_from_slice(b"\":");
                    // Writing a `str` to memory cannot fail; it escapes what JSON needs escaped.
                    let _ = serde_json::to_writer(&mut *json, values[i].as_str());
                }
                json.push(b'}');
            }
            json.extend_from_slice(b"}}");
        });
    }

    /// Chunks `lane`, `lane + lanes`, `lane + 2 × lanes`, … of the audience's records in person
    /// id order, `chunk` records each (for streaming exports): `lanes` threads, one a lane,
    /// build an export's records together and a reader taking a chunk from each in turn gets
    /// them in order. The records of other lanes' chunks are skipped, not built.
    pub fn audience_lane<'a>(
        &'a self,
        audience: &'a Audience,
        chunk: usize,
        lane: usize,
        lanes: usize,
    ) -> impl Iterator<Item = RecordBatch> + 'a {
        let mut members = audience.members.iter();
        let (chunk, lanes) = (chunk.max(1), lanes.max(1));
        let mut next = 0usize;
        std::iter::from_fn(move || {
            loop {
                let mine = next % lanes == lane;
                next += 1;
                if mine {
                    let mut batch = RecordBatch::with_capacity(chunk, chunk * 64);
                    for p in members.by_ref().take(chunk) {
                        self.push_audience_line(&mut batch, p as usize, audience.id_type);
                    }
                    return (!batch.is_empty()).then_some(batch);
                }
                if members.by_ref().take(chunk).count() == 0 {
                    return None;
                }
            }
        })
    }
}

fn record_identifiers(
    c: ContactParts<'_>,
    id_type: IdType,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let values: Vec<String> = match id_type {
        IdType::Email => c.emails.into_owned(),
        IdType::Phone => c.phones.into_owned(),
        IdType::Address => c.address.map(Cow::into_owned).into_iter().collect(),
        IdType::Maid => c.maids.into_owned(),
    };
    let mut out = BTreeMap::new();
    if !values.is_empty() {
        let t = id_type.as_str();
        let inner = values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("{t}{}", i + 1), v))
            .collect();
        out.insert(t.to_owned(), inner);
    }
    out
}

/// How many contact columns an audience CSV has for an identifier type.
pub fn csv_columns(id_type: IdType) -> usize {
    match id_type {
        IdType::Email => MAX_EMAILS,
        IdType::Phone => MAX_PHONES,
        IdType::Address => 1,
        IdType::Maid => MAX_MAIDS,
    }
}

/// Turns audience records into export bytes, piece by piece, for streaming:
/// `header()`, then `record()` for each, then `footer()`.
///
/// - csv: `person_id,<type>1,…,<type>N` with a fixed N per identifier type (email 3, phone 2,
///   address 1, maid 2); missing values are empty cells. A cell a spreadsheet would take for a
///   formula (it starts with `=`, `+`, `-`, `@`, a tab or a carriage return, and is not a plain
///   number like `-5`) starts with `'` instead.
/// - json: one JSON array of records.
/// - jsonl (and `none`): one record object a line.
#[derive(Debug, Clone)]
pub struct AudienceEncoder {
    format: ExportFormat,
    id_type: IdType,
    written: u64,
}

/// Whether a spreadsheet opening the CSV would take `v` for a formula (CSV injection): it
/// starts with `=`, `+`, `-`, `@`, a tab or a carriage return (OWASP's list) and is not a plain
/// number. A plain number (`-5`, `+15125550134`, `-0.5`: a sign, digits, at most one point) is
/// read as that number, cannot hold a formula, and is left as it is rather than altered.
fn is_formula_like(v: &str) -> bool {
    let Some(first) = v.chars().next() else {
        return false;
    };
    if !matches!(first, '=' | '+' | '-' | '@' | '\t' | '\r') {
        return false;
    }
    let unsigned = v.strip_prefix(['+', '-']).unwrap_or(v);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    !(digits(whole) && digits(fraction))
}

/// One CSV cell: a formula-like value gets a leading `'`, which spreadsheets read as "text
/// follows", so that opening an export never runs what a record holds; then RFC 4180 quoting.
fn csv_cell(out: &mut Vec<u8>, v: &str) {
    let neutralised;
    let v = if is_formula_like(v) {
        neutralised = format!("'{v}");
        neutralised.as_str()
    } else {
        v
    };
    if v.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(v.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(v.as_bytes());
    }
}

impl AudienceEncoder {
    /// `id_type` defaults to email, as in `find_persons`.
    pub fn new(format: ExportFormat, id_type: Option<IdType>) -> Self {
        Self {
            format,
            id_type: id_type.unwrap_or(IdType::Email),
            written: 0,
        }
    }

    /// The media type of the bytes.
    pub fn content_type(&self) -> &'static str {
        match self.format {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Json => "application/json",
            ExportFormat::Jsonl | ExportFormat::None => "application/x-ndjson",
        }
    }

    pub fn header(&self) -> Vec<u8> {
        match self.format {
            ExportFormat::Csv => {
                let t = self.id_type.as_str();
                let mut h = String::from("person_id");
                for i in 1..=csv_columns(self.id_type) {
                    h.push_str(&format!(",{t}{i}"));
                }
                h.push('\n');
                h.into_bytes()
            }
            ExportFormat::Json => b"[".to_vec(),
            ExportFormat::Jsonl | ExportFormat::None => Vec::new(),
        }
    }

    pub fn record(&mut self, r: &AudienceRecord) -> Vec<u8> {
        let first = self.written == 0;
        self.written += 1;
        match self.format {
            ExportFormat::Csv => {
                let t = self.id_type.as_str();
                let mut out = r.person_id.to_string().into_bytes();
                let values = r.identifiers.get(t);
                for i in 1..=csv_columns(self.id_type) {
                    out.push(b',');
                    if let Some(v) = values.and_then(|m| m.get(&format!("{t}{i}"))) {
                        csv_cell(&mut out, v);
                    }
                }
                out.push(b'\n');
                out
            }
            ExportFormat::Json => {
                let mut out = if first {
                    b"\n".to_vec()
                } else {
                    b",\n".to_vec()
                };
                // Serialising these plain maps cannot fail.
                out.extend(serde_json::to_vec(r).unwrap_or_default());
                out
            }
            ExportFormat::Jsonl | ExportFormat::None => {
                let mut out = serde_json::to_vec(r).unwrap_or_default();
                out.push(b'\n');
                out
            }
        }
    }

    pub fn footer(&self) -> Vec<u8> {
        match self.format {
            ExportFormat::Json => b"\n]\n".to_vec(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use icp_contract::PersonId;

    use super::*;
    use crate::generate::GeneratorConfig;

    /// The line written straight from the contact parts is the record's serde JSON, byte for
    /// byte, for every identifier type: generated persons (with and without each type) and an
    /// imported one with sixteen emails (keys ordered as strings) and characters to escape.
    #[test]
    fn an_audience_line_is_the_records_json() {
        let generated = Population::generate(&GeneratorConfig {
            persons: 2_000,
            ..GeneratorConfig::default()
        });
        let emails: Vec<String> = (1..=16).map(|i| format!("e{i}@x.io")).collect();
        // The address holds a quote and a backslash, which JSON escapes.
        let csv = format!(
            r#"{},address,phone
{},"1 ""Main"" St\2, Austin",5125550101
"#,
            (1..=16)
                .map(|i| format!("email{i}"))
                .collect::<Vec<_>>()
                .join(","),
            emails.join(",")
        );
        let imported = Population::from_csv_reader(csv.as_bytes()).unwrap();
        for (population, persons) in [(&generated, 2_000), (&imported, 1)] {
            for person in 0..persons {
                for id_type in IdType::ALL {
                    let mut line = RecordBatch::default();
                    population.push_audience_line(&mut line, person, id_type);
                    let mut encoded = RecordBatch::default();
                    encoded.push_record(&population.audience_record(person, id_type));
                    assert_eq!(line, encoded, "{person} {id_type:?}");
                }
            }
        }
        let sixteen = imported.audience_record(0, IdType::Email);
        assert_eq!(sixteen.identifiers["email"].len(), 16);
        let mut line = RecordBatch::default();
        imported.push_audience_line(&mut line, 0, IdType::Address);
        let address = String::from_utf8(line.iter().next().unwrap().1.to_vec()).unwrap();
        assert!(address.contains(r#"1 \"Main\" St\\2"#), "{address}");
    }

    /// Lanes read in turn, a chunk from each, give the audience's records in order, once each,
    /// for chunk sizes that do and do not divide the audience and for more lanes than chunks.
    #[test]
    fn lanes_taken_in_turn_are_the_audience_in_order() {
        let population = Population::generate(&GeneratorConfig {
            persons: 1_000,
            ..GeneratorConfig::default()
        });
        let audience = Audience {
            members: (0..1_000u32).filter(|p| p % 3 != 0).collect(),
            id_type: IdType::Email,
        };
        let all: Vec<(PersonId, Vec<u8>)> = {
            let mut batch = RecordBatch::default();
            for p in audience.members.iter() {
                population.push_audience_line(&mut batch, p as usize, IdType::Email);
            }
            batch.iter().map(|(id, json)| (id, json.to_vec())).collect()
        };
        for (chunk, lanes) in [(1, 1), (100, 2), (64, 3), (1_000, 4), (7, 4)] {
            let mut lanes: Vec<_> = (0..lanes)
                .map(|lane| population.audience_lane(&audience, chunk, lane, lanes))
                .collect();
            let mut read = Vec::new();
            'turns: loop {
                for lane in &mut lanes {
                    match lane.next() {
                        Some(batch) => {
                            assert!(batch.len() <= chunk);
                            read.extend(batch.iter().map(|(id, json)| (id, json.to_vec())));
                        }
                        None => break 'turns,
                    }
                }
            }
            assert_eq!(read, all, "chunk {chunk}, {} lanes", lanes.len());
        }
    }

    fn rec(id: u64, emails: &[&str]) -> AudienceRecord {
        let mut identifiers = BTreeMap::new();
        if !emails.is_empty() {
            identifiers.insert(
                "email".to_owned(),
                emails
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (format!("email{}", i + 1), (*e).to_owned()))
                    .collect(),
            );
        }
        AudienceRecord {
            person_id: PersonId(id),
            identifiers,
        }
    }

    fn encode(format: ExportFormat, records: &[AudienceRecord]) -> String {
        let mut enc = AudienceEncoder::new(format, None);
        let mut out = enc.header();
        for r in records {
            out.extend(enc.record(r));
        }
        out.extend(enc.footer());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_has_fixed_columns_and_quotes() {
        let s = encode(
            ExportFormat::Csv,
            &[rec(1, &["a@x.com", "b,\"c\"@x.com"]), rec(2, &[])],
        );
        assert_eq!(
            s,
            "person_id,email1,email2,email3\n1,a@x.com,\"b,\"\"c\"\"@x.com\",\n2,,,\n"
        );
    }

    /// Formula-like cells start with `'` in CSV; plain numbers, other text and the JSON and
    /// JSON lines of the same records are as they were.
    #[test]
    fn csv_cells_are_safe_to_open_in_a_spreadsheet() {
        let cases = [
            ("=1+1@x.com", "'=1+1@x.com"),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
            ("\t=1+1", "'\t=1+1"),
            ("\r=1+1", "\"'\r=1+1\""),
            (
                "=HYPERLINK(\"http://e.x\",\"y\")",
                "\"'=HYPERLINK(\"\"http://e.x\"\",\"\"y\"\")\"",
            ),
            ("-", "'-"),
            ("+", "'+"),
            ("-1e5", "'-1e5"),
            ("--5", "'--5"),
            ("-5.", "'-5."),
            // Plain numbers are read as numbers, not formulas: unchanged.
            ("-5", "-5"),
            ("+15125550134", "+15125550134"),
            ("-0.25", "-0.25"),
            // Only the first character counts.
            ("a=b@x.com", "a=b@x.com"),
            (" =1+1", " =1+1"),
            ("5125550134", "5125550134"),
        ];
        for (value, cell) in cases {
            let records = [rec(7, &[value])];
            let csv = encode(ExportFormat::Csv, &records);
            assert_eq!(
                csv,
                format!("person_id,email1,email2,email3\n7,{cell},,\n"),
                "{value:?}"
            );
            let back: Vec<AudienceRecord> =
                serde_json::from_str(&encode(ExportFormat::Json, &records)).unwrap();
            assert_eq!(back[0].identifiers["email"]["email1"], value);
            let line = encode(ExportFormat::Jsonl, &records);
            let back: AudienceRecord = serde_json::from_str(line.trim_end()).unwrap();
            assert_eq!(back.identifiers["email"]["email1"], value);
        }
    }

    #[test]
    fn json_and_jsonl_parse_back() {
        let records = vec![rec(1, &["a@x.com"]), rec(2, &["b@x.com", "c@x.com"])];
        let json = encode(ExportFormat::Json, &records);
        let back: Vec<AudienceRecord> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, records);
        assert_eq!(
            serde_json::from_str::<Vec<AudienceRecord>>(&encode(ExportFormat::Json, &[])).unwrap(),
            vec![]
        );
        let jsonl = encode(ExportFormat::Jsonl, &records);
        let back: Vec<AudienceRecord> = jsonl
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, records);
    }
}
