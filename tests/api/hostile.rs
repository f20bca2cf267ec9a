//! Hostile input: a corpus of bad requests, each with the answer it must get — a 4xx
//! `application/problem+json` that says what is wrong and where — run on both backends, then
//! proof that the service is still well (health, readiness, a good job to the end). Requests
//! the client library will not send (oversized or too many headers, lying lengths, broken
//! chunking, a body trickled in slower than the request timeout) go over a raw TCP socket.
//! And hostile data going out: an audience whose addresses are formulas, exported as CSV.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// The largest body the corpus's service accepts: small, so that "too large" is cheap to send.
const MAX_BODY: usize = 64 * 1024;
/// The most identifiers a job of the corpus's service may carry.
const MAX_IDS: usize = 100;
/// A well-formed job id no job has.
const NO_JOB: &str = "5f0c6d2e-8a34-4c1b-9e7d-3b2a1f0e9d8c";
/// What the corpus's bodies carry, and what no problem may repeat back.
const SECRET_EMAIL: &str = "ann.secret@example.com";

fn hostile_config(config: &mut icp_server::ServiceConfig) {
    config.max_body_bytes = MAX_BODY;
    config.max_identifiers = MAX_IDS;
}

/// Where a problem must point: a field error's `location`, or words of its `detail`.
#[derive(Debug, Clone)]
enum At {
    Location(&'static str),
    Detail(&'static str),
}

/// One bad request and the answer it must get.
struct Case {
    name: String,
    method: Method,
    path: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Vec<u8>,
    status: u16,
    /// The problem type's slug: `https://icp-service.dev/problems/<slug>`.
    kind: &'static str,
    at: Vec<At>,
    /// Sent over a raw socket: for bodies the server refuses before reading them all, which
    /// an HTTP client library may report as a broken connection instead of the answer.
    raw: bool,
}

impl Case {
    fn new(name: impl Into<String>, method: Method, path: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            method,
            path: path.into(),
            headers: vec![],
            body: vec![],
            status: 0,
            kind: "",
            at: vec![],
            raw: false,
        }
    }

    fn raw(mut self) -> Self {
        self.raw = true;
        self
    }

    fn header(mut self, name: &'static str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name, value.as_ref().to_vec()));
        self
    }

    fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.body = body.as_ref().to_vec();
        self
    }

    fn expect(mut self, status: u16, kind: &'static str) -> Self {
        self.status = status;
        self.kind = kind;
        self
    }

    /// A field error must have this location.
    fn at(mut self, location: &'static str) -> Self {
        self.at.push(At::Location(location));
        self
    }

    /// The detail, or a field error's message, must say this.
    fn says(mut self, words: &'static str) -> Self {
        self.at.push(At::Detail(words));
        self
    }

    fn invalid(self, location: &'static str) -> Self {
        self.expect(422, "validation").at(location)
    }
}

/// `POST /v1/jobs` with a JSON body (as given, byte for byte).
fn json_job(name: &str, body: impl AsRef<[u8]>) -> Case {
    Case::new(name, Method::POST, "/v1/jobs")
        .header("content-type", "application/json")
        .body(body)
}

/// `POST /v1/jobs` with a CSV body and the query `query`.
fn csv_job(name: &str, query: &str, body: impl AsRef<[u8]>) -> Case {
    Case::new(name, Method::POST, format!("/v1/jobs{query}"))
        .header("content-type", "text/csv")
        .body(body)
}

fn get(name: &str, path: impl Into<String>) -> Case {
    Case::new(name, Method::GET, path)
}

fn feedback(name: &str, body: impl AsRef<[u8]>) -> Case {
    Case::new(name, Method::POST, format!("/v1/jobs/{NO_JOB}/feedback"))
        .header("content-type", "application/json")
        .body(body)
}

/// A good job body.
fn good() -> Value {
    json!({
        "multi_identifiers": [
            {"id_type": "email", "hash_type": "plaintext", "values": [SECRET_EMAIL, "bob@example.com"]}
        ],
        "options": {"min_support": 0.05}
    })
}

/// The good body with the value at JSON pointer `ptr` set to `value` (created if absent).
fn with(ptr: &str, value: Value) -> Vec<u8> {
    let mut body = good();
    let (parent, key) = ptr.rsplit_once('/').unwrap();
    let target = if parent.is_empty() {
        &mut body
    } else {
        body.pointer_mut(parent).expect("the parent exists")
    };
    match target {
        Value::Object(map) => {
            map.insert(key.to_owned(), value);
        }
        Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
        _ => panic!("{ptr}: no container"),
    }
    serde_json::to_vec(&body).unwrap()
}

/// Stands for a number in a body until `number_at` writes it as given.
const MARKER: &str = "@@NUMBER@@";

/// `body` with its `MARKER` string replaced by `literal` (JSON values cannot hold 1e400 or NaN).
fn number_at(body: Vec<u8>, literal: &str) -> Vec<u8> {
    let body = String::from_utf8(body).unwrap();
    body.replace(&format!("\"{MARKER}\""), literal).into_bytes()
}

/// The good body with a number written as given at `ptr`.
fn with_number(ptr: &str, literal: &str) -> Vec<u8> {
    number_at(with(ptr, json!(MARKER)), literal)
}

fn b64(bytes: &[u8]) -> String {
    use std::fmt::Write;
    // URL-safe base64 without padding, as the service writes its cursors.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            let _ = out.write_char(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Every bad request of the corpus with its expected answer.
fn corpus() -> Vec<Case> {
    let mut cases = Vec::new();
    let good_bytes = serde_json::to_vec(&good()).unwrap();

    // Malformed and truncated JSON.
    cases.extend([
        json_job("not JSON", "{not json")
            .invalid("/")
            .says("line 1"),
        json_job("empty JSON body", "").invalid("/").says("EOF"),
        json_job("truncated JSON", &good_bytes[..good_bytes.len() / 2])
            .expect(422, "validation")
            .says("EOF while parsing"),
        json_job("truncated inside a string", &good_bytes[..70])
            .expect(422, "validation")
            .says("EOF while parsing"),
        json_job("trailing garbage", [good_bytes.as_slice(), b" {}"].concat())
            .invalid("/")
            .says("trailing characters"),
        json_job("an array for a body", "[]")
            .invalid("/")
            .says("invalid type"),
        json_job("null for a body", "null")
            .invalid("/")
            .says("invalid type"),
        json_job("a string for a body", format!("\"{SECRET_EMAIL}\""))
            .invalid("/")
            .says("invalid type"),
        json_job("single quotes", "{'multi_identifiers': []}").invalid("/"),
        json_job(
            "a comment",
            [b"// customers\n".as_slice(), good_bytes.as_slice()].concat(),
        )
        .invalid("/"),
        json_job(
            "groups nested 60,000 deep",
            format!("{{\"multi_identifiers\": {}", "[".repeat(60_000)),
        )
        .invalid("/multi_identifiers/0")
        .says("expected a JSON object"),
        json_job(
            "an array of the fields",
            r#"[[{"id_type": "email", "hash_type": "plaintext", "values": ["a@b.co"]}], {}]"#,
        )
        .invalid("/")
        .says("expected a JSON object"),
        json_job(
            "a group as an array of its fields",
            r#"{"multi_identifiers": [["email", "plaintext", ["a@b.co"]]]}"#,
        )
        .invalid("/multi_identifiers/0")
        .says("expected a JSON object"),
        json_job(
            "a duplicate key",
            r#"{"multi_identifiers": [], "multi_identifiers": []}"#,
        )
        .invalid("/")
        .says("duplicate field `multi_identifiers`"),
        json_job("a JSON number for a body", "12345").invalid("/"),
    ]);

    // Wrong types, each named by its JSON pointer.
    cases.extend([
        json_job(
            "a string of identifiers",
            with("/multi_identifiers", json!(SECRET_EMAIL)),
        )
        .invalid("/multi_identifiers"),
        json_job(
            "an object of identifiers",
            with("/multi_identifiers", json!({})),
        )
        .invalid("/multi_identifiers"),
        json_job(
            "a group as an array",
            with("/multi_identifiers/0", json!(["email"])),
        )
        .invalid("/multi_identifiers/0"),
        json_job(
            "values as a string",
            with("/multi_identifiers/0/values", json!(SECRET_EMAIL)),
        )
        .invalid("/multi_identifiers/0/values"),
        json_job(
            "a value as a number",
            with("/multi_identifiers/0/values", json!([5125550134u64])),
        )
        .invalid("/multi_identifiers/0/values/0"),
        json_job(
            "a value as null",
            with("/multi_identifiers/0/values", json!([null])),
        )
        .invalid("/multi_identifiers/0/values/0"),
        json_job(
            "an id_type number",
            with("/multi_identifiers/0/id_type", json!(5)),
        )
        .invalid("/multi_identifiers/0/id_type"),
        json_job(
            "an unknown id_type",
            with("/multi_identifiers/0/id_type", json!("fax")),
        )
        .invalid("/multi_identifiers/0/id_type")
        .says("unknown variant `fax`"),
        json_job(
            "an upper-case id_type",
            with("/multi_identifiers/0/id_type", json!("EMAIL")),
        )
        .invalid("/multi_identifiers/0/id_type"),
        json_job(
            "an unknown hash_type",
            with("/multi_identifiers/0/hash_type", json!("rot13")),
        )
        .invalid("/multi_identifiers/0/hash_type"),
        json_job(
            "a group without hash_type",
            json!({"multi_identifiers": [{"id_type": "email", "values": [SECRET_EMAIL]}]})
                .to_string(),
        )
        .invalid("/multi_identifiers/0")
        .says("missing field `hash_type`"),
        // Neither `multi_identifiers` nor `segments`: no customers at all.
        json_job("no multi_identifiers", r#"{"options": {}}"#)
            .invalid("/multi_identifiers")
            .says("give at least one group of identifiers"),
        json_job("no groups", with("/multi_identifiers", json!([]))).invalid("/multi_identifiers"),
        json_job(
            "an empty group",
            with("/multi_identifiers/0/values", json!([])),
        )
        .invalid("/multi_identifiers/0/values"),
        json_job("hashed addresses", {
            let group =
                json!({"id_type": "address", "hash_type": "sha256", "values": ["0".repeat(64)]});
            with("/multi_identifiers/0", group)
        })
        .invalid("/multi_identifiers/0/hash_type"),
        json_job("options as an array", with("/options", json!([]))).invalid("/options"),
        json_job(
            "a location as an array",
            with("/options/location", json!([40.7, -74.0, 5])),
        )
        .invalid("/options/location"),
        json_job("options as a string", with("/options", json!("fast"))).invalid("/options"),
        json_job(
            "min_support as a string",
            with("/options/min_support", json!("0.05")),
        )
        .invalid("/options/min_support"),
        json_job(
            "min_support as a boolean",
            with("/options/min_support", json!(true)),
        )
        .invalid("/options/min_support"),
        json_job(
            "min_support null",
            with("/options/min_support", json!(null)),
        )
        .invalid("/options/min_support"),
        json_job(
            "exclude_customers as a string",
            with("/options/exclude_customers", json!("yes")),
        )
        .invalid("/options/exclude_customers"),
        json_job(
            "strategies as a string",
            with("/options/strategies", json!("precision")),
        )
        .invalid("/options/strategies"),
        json_job(
            "an unknown strategy",
            with("/options/strategies", json!(["best"])),
        )
        .invalid("/options/strategies/0"),
        json_job("no strategies", with("/options/strategies", json!([])))
            .invalid("/options/strategies"),
        json_job(
            "a strategy twice",
            with("/options/strategies", json!(["reach", "reach"])),
        )
        .invalid("/options/strategies/1"),
        json_job(
            "an unknown domain",
            with("/options/domains", json!(["interest", "astrology"])),
        )
        .invalid("/options/domains/1"),
        json_job(
            "domains as a string",
            with("/options/domains", json!("interest")),
        )
        .invalid("/options/domains"),
        json_job(
            "audiences of mobile ad ids",
            with("/options/identifier_type", json!("maid")),
        )
        .invalid("/options/identifier_type"),
        json_job(
            "a location as a string",
            with("/options/location", json!("NYC")),
        )
        .invalid("/options/location"),
        json_job(
            "a location without radius",
            with(
                "/options/location",
                json!({"latitude": 40.7, "longitude": -74.0}),
            ),
        )
        .invalid("/options/location")
        .says("missing field `radius`"),
        json_job(
            "a latitude as a word",
            with(
                "/options/location",
                json!({"latitude": "north", "longitude": -74.0, "radius": 5}),
            ),
        )
        .invalid("/options/location/latitude"),
        json_job(
            "an unknown unit",
            with(
                "/options/location",
                json!({"latitude": 40.7, "longitude": -74.0, "radius": 5, "unit": "furlongs"}),
            ),
        )
        .invalid("/options/location/unit"),
        json_job(
            "an unknown hashing",
            with("/options/hash_identifiers", json!("md5")),
        )
        .invalid("/options/hash_identifiers"),
    ]);

    // Unknown fields: a typo must not silently change what a job does.
    cases.extend([
        json_job("an unknown top-level field", with("/priority", json!(1)))
            .expect(422, "validation")
            .says("unknown field `priority`"),
        json_job("a misspelt option", with("/options/minSupport", json!(0.1)))
            .expect(422, "validation")
            .says("unknown field `minSupport`"),
        json_job(
            "an unknown group field",
            with("/multi_identifiers/0/value", json!("x")),
        )
        .expect(422, "validation")
        .says("unknown field `value`"),
        json_job(
            "a misspelt location unit",
            with(
                "/options/location",
                json!({"latitude": 40.7, "longitude": -74.0, "radius": 5, "units": "km"}),
            ),
        )
        .expect(422, "validation")
        .says("unknown field `units`"),
    ]);

    // Absurd numbers.
    cases.extend([
        json_job(
            "a negative min_support",
            with_number("/options/min_support", "-1"),
        )
        .invalid("/options/min_support"),
        json_job(
            "a zero min_support",
            with_number("/options/min_support", "0"),
        )
        .invalid("/options/min_support"),
        json_job(
            "min_support 1e400",
            with_number("/options/min_support", "1e400"),
        )
        .invalid("/options/min_support")
        .says("out of range"),
        json_job(
            "min_support 1e-400",
            with_number("/options/min_support", "1e-400"),
        )
        .invalid("/options/min_support"),
        json_job(
            "min_support \"NaN\"",
            with("/options/min_support", json!("NaN")),
        )
        .invalid("/options/min_support"),
        json_job("a bare NaN", with_number("/options/min_support", "NaN"))
            .invalid("/options/min_support"),
        json_job(
            "a bare Infinity",
            with_number("/options/min_quality_score", "Infinity"),
        )
        .invalid("/options/min_quality_score"),
        json_job(
            "a quality score above 1",
            with_number("/options/min_quality_score", "1.5"),
        )
        .invalid("/options/min_quality_score"),
        json_job(
            "a negative cluster size",
            with_number("/options/max_cluster_size", "-3"),
        )
        .invalid("/options/max_cluster_size"),
        json_job(
            "a fractional cluster size",
            with_number("/options/max_cluster_size", "4.5"),
        )
        .invalid("/options/max_cluster_size"),
        json_job(
            "a 23-digit cluster size",
            with_number("/options/max_cluster_size", "99999999999999999999999"),
        )
        .invalid("/options/max_cluster_size"),
        json_job(
            "a cluster size of 100",
            with_number("/options/max_cluster_size", "100"),
        )
        .invalid("/options/max_cluster_size"),
        json_job(
            "an audience limit of 0",
            with_number("/options/audience_limit", "0"),
        )
        .invalid("/options/audience_limit"),
        json_job(
            "an audience limit of -1",
            with_number("/options/audience_limit", "-1"),
        )
        .invalid("/options/audience_limit"),
        json_job(
            "an audience limit past u64",
            with_number("/options/audience_limit", "18446744073709551616"),
        )
        .invalid("/options/audience_limit"),
        json_job(
            "an audience limit of 1e12",
            with_number("/options/audience_limit", "1e12"),
        )
        .invalid("/options/audience_limit"),
        json_job(
            "an audience limit past the most",
            with_number("/options/audience_limit", "10000001"),
        )
        .invalid("/options/audience_limit"),
        json_job(
            "latitude 91",
            with(
                "/options/location",
                json!({"latitude": 91, "longitude": 0, "radius": 5}),
            ),
        )
        .invalid("/options/location/latitude"),
        json_job(
            "longitude -1e400",
            number_at(
                with(
                    "/options/location",
                    json!({"latitude": 0, "longitude": MARKER, "radius": 5}),
                ),
                "-1e400",
            ),
        )
        .invalid("/options/location/longitude"),
        json_job(
            "a radius of 0",
            with(
                "/options/location",
                json!({"latitude": 0, "longitude": 0, "radius": 0}),
            ),
        )
        .invalid("/options/location/radius"),
        json_job(
            "a radius of 1e308 km",
            with(
                "/options/location",
                json!({"latitude": 0, "longitude": 0, "radius": 1e308, "unit": "km"}),
            ),
        )
        .invalid("/options/location/radius"),
    ]);

    // Bodies larger than the service takes, and more identifiers than it allows.
    let many = |n: usize| -> Vec<String> { (0..n).map(|i| format!("c{i}@example.com")).collect() };
    let mut huge = good();
    huge["multi_identifiers"][0]["values"] = json!(many(4_000));
    cases.extend([
        json_job("a JSON body over the limit", serde_json::to_vec(&huge).unwrap())
            .raw()
            .expect(413, "payload-too-large")
            .says("65536 bytes"),
        json_job("a chunked JSON body over the limit", chunked(&serde_json::to_vec(&huge).unwrap()))
            .header("transfer-encoding", "chunked")
            .raw()
            .expect(413, "payload-too-large")
            .says("65536 bytes"),
        csv_job(
            "a CSV body over the limit",
            "",
            format!("email\n{}\n", many(4_000).join("\n")),
        )
        .raw()
        .expect(413, "payload-too-large")
        .says("65536 bytes"),
        feedback(
            "feedback of 3 MB",
            json!({"message": "x".repeat(3 << 20)}).to_string(),
        )
        .raw()
        .expect(413, "payload-too-large"),
        json_job(
            "one identifier too many",
            with("/multi_identifiers/0/values", json!(many(MAX_IDS + 1))),
        )
        .invalid("/multi_identifiers")
        .says("a job takes at most 100"),
        json_job(
            "too many identifiers over two groups",
            with(
                "/multi_identifiers",
                json!([
                    {"id_type": "email", "hash_type": "plaintext", "values": many(60)},
                    {"id_type": "phone", "hash_type": "plaintext", "values": (0..60).map(|i| format!("51255501{i:02}")).collect::<Vec<_>>()}
                ]),
            ),
        )
        .invalid("/multi_identifiers")
        .says("120 identifiers"),
        csv_job(
            "a CSV with one row too many",
            "",
            format!("email\n{}\n", many(MAX_IDS + 1).join("\n")),
        )
        .invalid("body")
        .says("a job takes at most 100"),
    ]);

    // Bad UTF-8 and other encodings.
    cases.extend([
        json_job(
            "JSON with a byte that is not UTF-8",
            b"{\"multi_identifiers\":[{\"id_type\":\"email\",\"hash_type\":\"plaintext\",\"values\":[\"ann@ex\xffample.com\"]}]}",
        )
        .invalid("/multi_identifiers/0/values/0")
        .says("UTF-8"),
        json_job(
            "JSON with a lone surrogate",
            r#"{"multi_identifiers":[{"id_type":"email","hash_type":"plaintext","values":["\ud800@example.com"]}]}"#,
        )
        .invalid("/multi_identifiers/0/values/0")
        .says("surrogate"),
        json_job(
            "JSON in UTF-16",
            [&[0xFF, 0xFE][..], &utf16le(&String::from_utf8(good_bytes.clone()).unwrap())].concat(),
        )
        .invalid("/")
        .says("UTF-8"),
        csv_job("a Latin-1 CSV", "", b"email,name\nann@example.com,Jos\xe9\n")
            .invalid("line 2, column name")
            .says("UTF-8"),
        csv_job("a CSV header not in UTF-8", "", b"em\xffail\nann@example.com\n")
            .invalid("line 1")
            .says("UTF-8"),
        csv_job(
            "a CSV in UTF-16",
            "",
            [&[0xFF, 0xFE][..], &utf16le("email\nann@example.com\n")].concat(),
        )
        .invalid("line 1")
        .says("UTF-8"),
    ]);

    // CSV: missing header, ragged rows, formula-injection cells, bad options.
    cases.extend([
        csv_job("an empty CSV", "", "").invalid("line 1").says("empty"),
        csv_job("a CSV of blank lines", "", "\n\n  \n").invalid("line 1").says("empty"),
        csv_job("a CSV with a header only", "", "email,phone\n")
            .invalid("body")
            .says("no identifiers"),
        csv_job(
            "a CSV without a header",
            "",
            format!("{SECRET_EMAIL},5125550134\nbob@example.com,5125550135\n"),
        )
        .invalid("line 1")
        .says("header"),
        csv_job("a CSV with no identifier column", "", "name,city\nAnn,Paris\n")
            .invalid("line 1")
            .says("\"name\""),
        csv_job("a short row", "", "email,phone\nann@example.com,5125550134\nbob@example.com\n")
            .invalid("line 3")
            .says("1 field"),
        csv_job("a long row", "", "email\nann@example.com,5125550134\n")
            .invalid("line 2")
            .says("2 fields"),
        csv_job(
            "formula-injection cells",
            "",
            "email\n\"=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\"\n+cmd|' /C calc'!A0\n-2+3\n\"\t=1+1\"\n",
        )
        .invalid("line 2, column email")
        .says("not_an_email"),
        csv_job("formula cells as phones", "", "phone\n=1+2\n=cmd|' /C calc'!A0\n@SUM(A1:A9)\n")
            .invalid("line 2, column phone")
            .says("not_a_phone"),
        csv_job("NUL bytes as emails", "", b"email\n\0\0\0\n")
            .invalid("line 2, column email"),
        csv_job("hashed addresses in a CSV", "", format!("address_sha256\n{}\n", "0".repeat(64)))
            .invalid("line 1, column address_sha256"),
        csv_job("a CSV option that is not a number", "?min_support=abc", "email\nann@example.com\n")
            .invalid("query.min_support"),
        csv_job("a CSV option of 1e400", "?min_support=1e400", "email\nann@example.com\n")
            .invalid("query.min_support"),
        csv_job("a CSV option of NaN", "?min_support=NaN", "email\nann@example.com\n")
            .invalid("query.min_support"),
        csv_job("a negative CSV audience limit", "?audience_limit=-1", "email\nann@example.com\n")
            .invalid("query.audience_limit"),
        csv_job("an unknown CSV strategy", "?strategies=precision,best", "email\nann@example.com\n")
            .invalid("query.strategies"),
        csv_job("half a CSV location", "?latitude=40.7", "email\nann@example.com\n")
            .invalid("query")
            .says("latitude, longitude and radius"),
        csv_job(
            "a CSV latitude of 91",
            "?latitude=91&longitude=0&radius=5",
            "email\nann@example.com\n",
        )
        .invalid("query.latitude"),
        csv_job("an unknown CSV option", "?minsupport=0.1", "email\nann@example.com\n")
            .invalid("query.minsupport")
            .says("unknown field `minsupport`"),
        csv_job("an unknown CSV hashing", "?hash_identifiers=md5", "email\nann@example.com\n")
            .invalid("query.hash_identifiers"),
        json_job("a JSON body with query options", good_bytes.clone())
            .pipe(|mut c| {
                c.path = "/v1/jobs?min_support=0.1".to_owned();
                c
            })
            .invalid("query"),
    ]);

    // Forged and malformed pagination.
    let id = uuid::Uuid::new_v4();
    cases.extend([
        get(
            "a cursor that is not base64",
            "/v1/jobs?page_token=garbage!!",
        )
        .invalid("query.page_token"),
        get("an empty cursor", "/v1/jobs?page_token=").invalid("query.page_token"),
        get(
            "a cursor of words",
            format!("/v1/jobs?page_token={}", b64(b"hello")),
        )
        .invalid("query.page_token"),
        get(
            "a cursor 10^35 ms from now",
            format!(
                "/v1/jobs?page_token={}",
                b64(format!("{}:{id}", "9".repeat(35)).as_bytes())
            ),
        )
        .invalid("query.page_token"),
        get(
            "a cursor 10^35 ms before the epoch",
            format!(
                "/v1/jobs?page_token={}",
                b64(format!("-{}:{id}", "9".repeat(35)).as_bytes())
            ),
        )
        .invalid("query.page_token"),
        get(
            "a cursor past i128",
            format!(
                "/v1/jobs?page_token={}",
                b64(format!("{}:{id}", "9".repeat(60)).as_bytes())
            ),
        )
        .invalid("query.page_token"),
        get(
            "a cursor with a bad id",
            format!("/v1/jobs?page_token={}", b64(b"1700000000000:not-a-uuid")),
        )
        .invalid("query.page_token"),
        get(
            "a cursor of bytes",
            format!("/v1/jobs?page_token={}", b64(&[0xff, 0xfe, 0x3a, 0x00])),
        )
        .invalid("query.page_token"),
        get(
            "a cursor of 8 KB",
            format!("/v1/jobs?page_token={}", "A".repeat(8192)),
        )
        .invalid("query.page_token"),
        get("a page size of 0", "/v1/jobs?page_size=0").invalid("query.page_size"),
        get("a page size of 101", "/v1/jobs?page_size=101").invalid("query.page_size"),
        get("a negative page size", "/v1/jobs?page_size=-1").invalid("query.page_size"),
        get("a page size of 1e400", "/v1/jobs?page_size=1e400").invalid("query.page_size"),
        get("a page size in words", "/v1/jobs?page_size=ten").invalid("query.page_size"),
        get("two page sizes", "/v1/jobs?page_size=1&page_size=2")
            .invalid("query")
            .says("duplicate field `page_size`"),
        get("an unknown status", "/v1/jobs?status=sleeping").invalid("query.status"),
        get("an unknown list parameter", "/v1/jobs?sort=asc")
            .invalid("query.sort")
            .says("unknown field `sort`"),
    ]);

    // Ids that are not ids, on every route; unknown audiences and formats.
    let long_id = "x".repeat(10_000);
    for (method, suffix) in [
        (Method::GET, ""),
        (Method::DELETE, ""),
        (Method::POST, "/cancel"),
        (Method::GET, "/result"),
        (Method::POST, "/feedback"),
        (Method::GET, "/audiences/precision/export"),
    ] {
        for bad in [
            "not-a-uuid",
            "123",
            "00000000-0000-0000-0000-00000000000g",
            "%27%3B%20DROP%20TABLE%20jobs%3B--",
        ] {
            let case = Case::new(
                format!("{method} job id {bad:?}{suffix}"),
                method.clone(),
                format!("/v1/jobs/{bad}{suffix}"),
            )
            .header("content-type", "application/json")
            .body(if suffix == "/feedback" {
                r#"{"message": "ok"}"#
            } else {
                ""
            })
            .expect(404, "not-found")
            .says("job ids are UUIDs");
            cases.push(case);
        }
    }
    cases.extend([
        get(
            "a job id of 10,000 characters",
            format!("/v1/jobs/{long_id}"),
        )
        .expect(404, "not-found")
        .says("job ids are UUIDs"),
        get("a job id of bytes that are not UTF-8", "/v1/jobs/%FF%FE")
            .expect(400, "bad-request")
            .says("UTF-8"),
        get("a job that does not exist", format!("/v1/jobs/{NO_JOB}"))
            .expect(404, "not-found")
            .says(NO_JOB),
        get(
            "an unknown audience",
            format!("/v1/jobs/{NO_JOB}/audiences/lookalike/export"),
        )
        .expect(404, "not-found")
        .says("precision, standard, hybrid, reach, ranked_1"),
        get(
            "an unknown export format",
            format!("/v1/jobs/{NO_JOB}/audiences/reach/export?format=xml"),
        )
        .invalid("query.format"),
        get(
            "the export format none",
            format!("/v1/jobs/{NO_JOB}/audiences/reach/export?format=none"),
        )
        .invalid("query.format"),
        get(
            "an upper-case export format",
            format!("/v1/jobs/{NO_JOB}/audiences/reach/export?format=CSV"),
        )
        .invalid("query.format"),
        get(
            "two export formats",
            format!("/v1/jobs/{NO_JOB}/audiences/reach/export?format=csv&format=json"),
        )
        .invalid("query")
        .says("duplicate field `format`"),
        get(
            "an unknown export parameter",
            format!("/v1/jobs/{NO_JOB}/audiences/reach/export?limit=10"),
        )
        .invalid("query.limit")
        .says("unknown field `limit`"),
    ]);

    // Feedback bodies.
    cases.extend([
        feedback("feedback that is not JSON", "rating=5").invalid("/"),
        feedback("a rating of 6", r#"{"rating": 6, "message": "x"}"#).invalid("/rating"),
        feedback("a rating of 0", r#"{"rating": 0, "message": "x"}"#).invalid("/rating"),
        feedback("a negative rating", r#"{"rating": -1, "message": "x"}"#).invalid("/rating"),
        feedback("a rating of 300", r#"{"rating": 300, "message": "x"}"#).invalid("/rating"),
        feedback("a rating as a string", r#"{"rating": "5", "message": "x"}"#).invalid("/rating"),
        feedback("an empty message", r#"{"message": ""}"#).invalid("/message"),
        // Found by the spec fuzzing: the spec states these bounds now, and `1.0` is a rating.
        feedback("a rating of 2.5", r#"{"rating": 2.5, "message": "x"}"#).invalid("/rating"),
        feedback("a blank message", r#"{"message": " \n\u3000 "}"#).invalid("/message"),
        get("a page size of 1.5", "/v1/jobs?page_size=1.5").invalid("query.page_size"),
        feedback("no message", r#"{"rating": 5}"#)
            .invalid("/")
            .says("missing field `message`"),
        feedback(
            "a message of 10,001 characters",
            json!({"message": "é".repeat(10_001)}).to_string(),
        )
        .invalid("/message"),
        feedback(
            "an unknown feedback field",
            r#"{"message": "x", "stars": 5}"#,
        )
        .expect(422, "validation")
        .says("unknown field `stars`"),
    ]);

    // Headers and content types.
    cases.extend([
        Case::new("XML", Method::POST, "/v1/jobs")
            .header("content-type", "application/xml")
            .body("<customers/>")
            .expect(415, "unsupported-media-type")
            .says("application/xml"),
        Case::new("plain text", Method::POST, "/v1/jobs")
            .header("content-type", "text/plain")
            .body(SECRET_EMAIL)
            .expect(415, "unsupported-media-type")
            .says("text/plain"),
        Case::new("a form upload", Method::POST, "/v1/jobs")
            .header("content-type", "multipart/form-data; boundary=x")
            .body("--x\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nemail\r\n--x--\r\n")
            .expect(415, "unsupported-media-type")
            .says("multipart/form-data"),
        Case::new("a urlencoded form", Method::POST, "/v1/jobs")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=ann%40example.com")
            .expect(415, "unsupported-media-type"),
        json_job("a CSV sent as JSON", "email\nann@example.com\n").invalid("/"),
        csv_job("JSON sent as CSV", "", good_bytes.clone()).invalid("line 1"),
        json_job(
            "a gzip body",
            [0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00],
        )
        .header("content-encoding", "gzip")
        .expect(415, "unsupported-media-type")
        .says("Content-Encoding"),
        json_job("an idempotency key of 300 characters", good_bytes.clone())
            .header("idempotency-key", "k".repeat(300))
            .invalid("header.Idempotency-Key"),
        json_job("an empty idempotency key", good_bytes.clone())
            .header("idempotency-key", "")
            .invalid("header.Idempotency-Key"),
        json_job("an idempotency key that is not ASCII", good_bytes.clone())
            .header("idempotency-key", b"k\xff\xfe")
            .invalid("header.Idempotency-Key"),
        get("a header of 64 KiB", "/healthz")
            .header("x-padding", "p".repeat(64 * 1024))
            .expect(431, "request-header-fields-too-large")
            .says("x-padding"),
        get("headers of 40 KiB in all", "/v1/jobs")
            .pipe(|mut c| {
                for name in ["x-a", "x-b", "x-c", "x-d", "x-e"] {
                    c.headers.push((name, vec![b'v'; 8 * 1024]));
                }
                c
            })
            .expect(431, "request-header-fields-too-large")
            .says("bytes"),
    ]);

    // Methods and routes that do not exist.
    cases.extend([
        Case::new("PUT on the jobs", Method::PUT, "/v1/jobs").expect(405, "method-not-allowed"),
        Case::new(
            "PATCH on a job",
            Method::PATCH,
            format!("/v1/jobs/{NO_JOB}"),
        )
        .expect(405, "method-not-allowed"),
        get("GET on cancel", format!("/v1/jobs/{NO_JOB}/cancel")).expect(405, "method-not-allowed"),
        Case::new("POST on health", Method::POST, "/healthz").expect(405, "method-not-allowed"),
        get("an unknown version", "/v2/jobs")
            .expect(404, "not-found")
            .says("no route"),
    ]);
    cases
}

/// `body` in HTTP/1.1 chunked coding, 4 KiB a chunk.
fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in body.chunks(4096) {
        out.extend(format!("{:x}\r\n", chunk.len()).into_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// `x.pipe(f)` is `f(x)`: lets a case be adjusted inside a builder chain.
trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

/// Sends `case` and says what is wrong with its answer, if anything.
async fn check(app: &TestApp, case: &Case) -> Result<(), String> {
    let (status, content_type, text) = if case.raw {
        send_raw(app, case).await?
    } else {
        send(app, case).await?
    };
    let answer = format!("{status} {content_type} {}", shorten(&text));
    if status != case.status {
        return Err(format!("expected {}, got {answer}", case.status));
    }
    if content_type != "application/problem+json" {
        return Err(format!("not problem+json: {answer}"));
    }
    let problem: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {answer}"))?;
    let kind = format!("https://icp-service.dev/problems/{}", case.kind);
    if problem["type"] != kind.as_str() || problem["status"] != status {
        return Err(format!("expected type {kind}: {answer}"));
    }
    let detail = problem["detail"].as_str().unwrap_or("");
    if detail.is_empty() || problem["title"].as_str().is_none_or(str::is_empty) {
        return Err(format!("no title or detail: {answer}"));
    }
    let errors = problem["errors"].as_array().cloned().unwrap_or_default();
    for at in &case.at {
        let found = match at {
            At::Location(l) => errors.iter().any(|e| e["location"] == *l),
            At::Detail(words) => {
                detail.contains(words)
                    || errors
                        .iter()
                        .any(|e| e["message"].as_str().is_some_and(|m| m.contains(words)))
            }
        };
        if !found {
            return Err(format!("does not point at {at:?}: {answer}"));
        }
    }
    // A problem never repeats the identifiers it was sent, and stays readable.
    if text.contains(SECRET_EMAIL) {
        return Err(format!("repeats an identifier: {answer}"));
    }
    if detail.chars().count() > 600 {
        return Err(format!("a detail of {} characters", detail.chars().count()));
    }
    Ok(())
}

async fn send(app: &TestApp, case: &Case) -> Result<(u16, String, String), String> {
    let mut request = app
        .client
        .request(case.method.clone(), app.url(&case.path))
        .body(case.body.clone());
    for (name, value) in &case.headers {
        let value = reqwest::header::HeaderValue::from_bytes(value)
            .map_err(|e| format!("the test's header {name}: {e}"))?;
        request = request.header(*name, value);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.map_err(|e| format!("body: {e}"))?;
    Ok((status, content_type, text))
}

async fn send_raw(app: &TestApp, case: &Case) -> Result<(u16, String, String), String> {
    let mut request = format!(
        "{} {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n",
        case.method, case.path
    )
    .into_bytes();
    for (name, value) in &case.headers {
        request.extend(format!("{name}: ").into_bytes());
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
    }
    if !case.headers.iter().any(|(n, _)| *n == "transfer-encoding") {
        request.extend(format!("Content-Length: {}\r\n", case.body.len()).into_bytes());
    }
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(&case.body);
    let addr = app.base.trim_start_matches("http://");
    let answer = raw_exchange(addr, &request).await?;
    let content_type = answer.header("content-type").unwrap_or("").to_owned();
    Ok((
        answer.status,
        content_type,
        String::from_utf8_lossy(&answer.body).into_owned(),
    ))
}

fn shorten(text: &str) -> String {
    let mut s: String = text.chars().take(400).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

/// What a raw exchange got back.
#[derive(Debug)]
struct RawAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawAnswer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Writes `request` on a new connection and reads the answer until the server closes it. A
/// server that stops reading and answers early may make the rest of the write fail: that is
/// fine, the answer is what counts.
async fn raw_exchange(addr: &str, request: &[u8]) -> Result<RawAnswer, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (mut read, mut write) = stream.split();
    let writing = async {
        let _ = write.write_all(request).await;
        let _ = write.flush().await;
    };
    let mut got = Vec::new();
    let reading = async {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(writing, reading)
    })
    .await
    .map_err(|_| "no answer within 10 s".to_owned())?;
    parse_answer(&got)
}

fn parse_answer(got: &[u8]) -> Result<RawAnswer, String> {
    let end = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no complete answer: {:?}", String::from_utf8_lossy(got)))?;
    let head = String::from_utf8_lossy(&got[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line: {head}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(RawAnswer {
        status,
        headers,
        body: got[end + 4..].to_vec(),
    })
}

/// The problem a raw answer carries, checked to be one with this status and type.
fn raw_problem(answer: &RawAnswer, status: u16, kind: &str) -> Result<Value, String> {
    let body = String::from_utf8_lossy(&answer.body);
    if answer.status != status || answer.header("content-type") != Some("application/problem+json")
    {
        return Err(format!(
            "expected a {status} problem, got {answer:?} {body}"
        ));
    }
    let problem: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    if problem["type"] != format!("https://icp-service.dev/problems/{kind}").as_str() {
        return Err(format!("expected type {kind}: {problem}"));
    }
    Ok(problem)
}

/// Requests the client library will not send, over a raw socket: the answers hyper gives
/// itself (before the application sees a request: no `x-request-id`, which the application
/// sets on every answer) and the ones the application gives.
async fn raw_cases(app: &TestApp) -> Vec<String> {
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut failures = Vec::new();
    let mut fail = |name: &str, e: String| failures.push(format!("{name}: {e}"));

    // More headers than hyper parses (100): hyper answers 431 with no body, for the connection.
    let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for i in 0..150 {
        many.push_str(&format!("x-h{i}: v\r\n"));
    }
    many.push_str("\r\n");
    match raw_exchange(&addr, many.as_bytes()).await {
        Ok(a) if a.status == 431 && a.header("x-request-id").is_none() && a.body.is_empty() => {}
        other => fail(
            "150 headers",
            format!("expected hyper's bare 431, got {other:?}"),
        ),
    }

    // A header larger than hyper's read buffer (~400 KiB): hyper's own 431 again.
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nx-big: {}\r\n\r\n",
        "b".repeat(300 * 1024)
    );
    let mut big = big.into_bytes();
    // Two headers of 300 KiB: past the buffer whatever the read sizes.
    big.splice(
        big.len() - 2..big.len() - 2,
        format!("x-big2: {}\r\n", "b".repeat(300 * 1024)).into_bytes(),
    );
    match raw_exchange(&addr, &big).await {
        Ok(a) if a.status == 431 && a.header("x-request-id").is_none() => {}
        other => fail(
            "600 KiB of headers",
            format!("expected hyper's bare 431, got {other:?}"),
        ),
    }

    // A request target longer than hyper takes: hyper's own 414.
    let uri = format!(
        "GET /v1/jobs?page_token={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "A".repeat(70_000)
    );
    match raw_exchange(&addr, uri.as_bytes()).await {
        Ok(a) if a.status == 414 && a.header("x-request-id").is_none() => {}
        other => fail(
            "a 70,000-byte URI",
            format!("expected hyper's bare 414, got {other:?}"),
        ),
    }

    // A body declared as a terabyte: refused from its length, before any of it is read.
    let liar = "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                Content-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n{}";
    match raw_exchange(&addr, liar.as_bytes()).await {
        Ok(a) => {
            if let Err(e) = raw_problem(&a, 413, "payload-too-large") {
                fail("a declared terabyte", e);
            }
        }
        Err(e) => fail("a declared terabyte", e),
    }

    // A chunked body whose chunk size is not hex: the body cannot be read.
    let chunked = "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                   Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
                   zz\r\n{}\r\n0\r\n\r\n";
    match raw_exchange(&addr, chunked.as_bytes()).await {
        Ok(a) => match raw_problem(&a, 400, "bad-request") {
            Ok(p) if p["detail"].as_str().is_some_and(|d| d.contains("body")) => {}
            Ok(p) => fail("a broken chunk", format!("unhelpful: {p}")),
            Err(e) => fail("a broken chunk", e),
        },
        Err(e) => fail("a broken chunk", e),
    }

    // Both a length and chunking (a smuggling attempt): chunking wins (RFC 9112 §6.3), the
    // body is the empty chunked one, and the connection is not reused.
    let both = "POST /v1/jobs HTTP/1.1\r\nHost: x\r\n\
                Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    match raw_exchange(&addr, both.as_bytes()).await {
        Ok(a) => match raw_problem(&a, 422, "validation") {
            Ok(_) if a.header("connection") == Some("close") => {}
            Ok(_) => fail(
                "length and chunking",
                format!("the connection stays open: {a:?}"),
            ),
            Err(e) => fail("length and chunking", e),
        },
        Err(e) => fail("length and chunking", e),
    }
    failures
}

/// After the corpus: alive, ready, and a good job runs to success.
async fn assert_still_well(app: &TestApp) {
    let health = app.get("/healthz").await;
    assert_eq!(health.status().as_u16(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status().as_u16(), 200);
    let (_, emails) = segment_emails(3, MAX_IDS);
    let body = job_body(&emails, json!({"min_support": 0.1, "audience_limit": 500}));
    let (result, _) = run_job_body(app, &body).await;
    assert!(
        !result["audiences"].as_array().unwrap().is_empty(),
        "{result}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_gets_a_problem_that_says_what_and_where() {
    let cases = corpus();
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    for db in databases().await {
        let opts = AppOptions {
            service: Some(hostile_config),
            ..AppOptions::default()
        };
        let app = spawn_app_with(db, opts).await;
        let mut failures = Vec::new();
        for case in &cases {
            if let Err(e) = check(&app, case).await {
                failures.push(format!("{}: {e}", case.name));
            }
        }
        failures.extend(raw_cases(&app).await);
        assert!(
            failures.is_empty(),
            "{} of {} bad requests ({}) were answered wrongly:\n{}",
            failures.len(),
            cases.len(),
            app.db_url.split(':').next().unwrap_or(""),
            failures.join("\n")
        );
        // No job came out of any of them.
        let jobs: Value = app.get_json("/v1/jobs").await;
        assert_eq!(jobs["jobs"].as_array().unwrap().len(), 0, "{jobs}");
        assert_still_well(&app).await;
        app.shutdown().await;
    }
}

/// A body sent a byte every 200 ms would take minutes; with a request timeout of 1 s the
/// service answers 408 problem+json within seconds, serves others meanwhile, and carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_loris_body_gets_408_and_the_service_carries_on() {
    fn one_second(config: &mut icp_server::ServiceConfig) {
        config.request_timeout = Duration::from_secs(1);
    }
    for db in databases().await {
        let opts = AppOptions {
            workers: 0,
            service: Some(one_second),
            ..AppOptions::default()
        };
        let app = spawn_app_with(db, opts).await;
        let addr = app.base.trim_start_matches("http://").to_owned();
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        let started = Instant::now();
        stream
            .write_all(
                b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n\
                  Content-Length: 1000\r\n\r\nemail\n",
            )
            .await
            .unwrap();
        let (mut read, mut write) = stream.into_split();
        let trickle = tokio::spawn(async move {
            for _ in 0..1000 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if write.write_all(b"a").await.is_err() {
                    break;
                }
            }
        });
        // Meanwhile the service answers others.
        assert_eq!(app.get("/healthz").await.status().as_u16(), 200);
        let mut got = Vec::new();
        let read_all = async {
            let mut buf = [0u8; 4096];
            loop {
                match read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        got.extend_from_slice(&buf[..n]);
                        if parse_answer(&got).is_ok_and(|a| {
                            a.header("content-length")
                                .and_then(|l| l.parse::<usize>().ok())
                                .is_some_and(|l| a.body.len() >= l)
                        }) {
                            break;
                        }
                    }
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), read_all)
            .await
            .expect("a slow body is answered within 5 s, not when it ends");
        let waited = started.elapsed();
        trickle.abort();
        let answer = parse_answer(&got).unwrap();
        let problem = raw_problem(&answer, 408, "request-timeout").unwrap();
        assert!(
            waited >= Duration::from_millis(900),
            "answered before the timeout: {waited:?}"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains("1 s"),
            "{problem}"
        );
        assert_eq!(app.get("/healthz").await.status().as_u16(), 200);
        assert_eq!(app.get("/readyz").await.status().as_u16(), 200);
        let jobs: Value = app.get_json("/v1/jobs").await;
        assert_eq!(jobs["jobs"].as_array().unwrap().len(), 0, "{jobs}");
        app.shutdown().await;
    }
}

/// Addresses a spreadsheet would run as formulas, and some it would not, for the imported
/// population of the export test.
const ADDRESSES: [&str; 8] = [
    "=HYPERLINK(\"http://evil.example\",\"click\")",
    "+cmd|' /C calc'!A0",
    "-2+3 Oak Ave",
    "@SUM(A1:A9) Elm St",
    "-5",
    "+15125550134",
    "12 Main St, Austin",
    "a=b Pine Rd",
];

/// The cell the CSV export must hold for `value`: `'` before a formula-like value, a plain
/// number left as it is (written here independently of the service's rule).
fn spreadsheet_cell(value: &str) -> String {
    let plain_number = {
        let unsigned = value.trim_start_matches(['+', '-']);
        unsigned.len() + 1 >= value.len()
            && !unsigned.is_empty()
            && unsigned.bytes().filter(|b| *b == b'.').count() <= 1
            && unsigned.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && !unsigned.starts_with('.')
            && !unsigned.ends_with('.')
    };
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) && !plain_number {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

/// An audience whose addresses hold formulas, exported as CSV: every formula-like cell starts
/// with `'`, plain numbers and other text are as they were, and the JSON export of the same
/// audience holds every value unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_exports_are_safe_to_open_in_a_spreadsheet() {
    use std::fmt::Write as _;
    // Persons 0..400 share four traits; the first 200 are the customers, so the precision
    // audience is mostly persons 200..400 (and a few others who happen to share the traits).
    let mut csv = String::from(
        "email,address,demographic:gender,demographic:age_range,interest:interested_fitness,lifestyle:pet_owner\n",
    );
    for i in 0..1_500usize {
        let (gender, age, fitness, pet) = if i < 400 {
            ("Female", "25-34", "Yes", "Yes")
        } else {
            (
                ["Female", "Male"][i % 2],
                ["18-24", "25-34", "35-44", "45-54"][i / 2 % 4],
                ["Yes", "No", "No"][i % 3],
                ["Yes", "No"][i / 3 % 2],
            )
        };
        let address = ADDRESSES[i % ADDRESSES.len()].replace('"', "\"\"");
        writeln!(
            csv,
            "p{i}@example.com,\"{address}\",{gender},{age},{fitness},{pet}"
        )
        .unwrap();
    }
    let provider = imported_provider(&csv);
    let customers: Vec<String> = (0..200).map(|i| format!("p{i}@example.com")).collect();
    for db in databases().await {
        let opts = AppOptions {
            provider: Some(provider.clone()),
            ..AppOptions::default()
        };
        let app = spawn_app_with(db, opts).await;
        let body = job_body(
            &customers,
            json!({"strategies": ["precision"], "identifier_type": "address", "min_support": 0.2}),
        );
        let job: Value = app.post_json("/v1/jobs", &body).await.json().await.unwrap();
        let id = job["id"].as_str().unwrap().to_owned();
        let job = app.wait_for(&id, Duration::from_secs(120)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let export = format!("/v1/jobs/{id}/audiences/precision/export");

        let records: Vec<Value> = app.get_json(&format!("{export}?format=json")).await;
        let csv_text = app
            .get(&format!("{export}?format=csv"))
            .await
            .text()
            .await
            .unwrap();
        let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
        assert_eq!(
            reader.headers().unwrap().iter().collect::<Vec<_>>(),
            ["person_id", "address1"]
        );
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), records.len());
        assert!(rows.len() >= 150, "an audience of {}", rows.len());
        let (mut neutralised, mut numbers) = (0, 0);
        for (row, record) in rows.iter().zip(&records) {
            assert_eq!(row[0], record["person_id"].to_string());
            let address = record["identifiers"]["address"]["address1"]
                .as_str()
                .unwrap();
            assert!(ADDRESSES.contains(&address), "{address:?}");
            assert_eq!(row[1], spreadsheet_cell(address), "{address:?}");
            neutralised += usize::from(row[1].starts_with('\''));
            numbers += usize::from(address == "-5" || address == "+15125550134");
        }
        // Both kinds were there: the check above was not vacuous.
        assert!(
            neutralised >= 50 && numbers >= 25,
            "{neutralised} {numbers}"
        );
        let jsonl = app
            .get(&format!("{export}?format=jsonl"))
            .await
            .text()
            .await
            .unwrap();
        let lines: Vec<Value> = jsonl
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines, records, "JSON lines and JSON hold the same values");
        app.shutdown().await;
    }
}
