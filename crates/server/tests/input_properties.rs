//! Property tests of what a job is made from: whatever bytes arrive as a CSV upload or a JSON
//! body, the reader never panics and answers either a checked job input or a 4xx problem that
//! points somewhere; a valid CSV, however it is quoted and cased, reads back as the identifiers
//! written into it.

use icp_contract::{IdType, normalize};
use icp_server::config::DEFAULT_MAX_IDENTIFIERS;
use icp_server::input::{JobInput, from_csv, from_json};
use icp_server::options::JobOptions;
use icp_server::problem::ApiError;
use proptest::prelude::*;
use serde_json::{Value, json};

/// `Ok`, or a client error (never a 5xx) whose problem says what and where.
fn assert_answer(result: Result<JobInput, ApiError>) -> Result<(), TestCaseError> {
    match result {
        Ok(input) => {
            prop_assert!(input.identifier_count() > 0);
            prop_assert!(input.identifier_count() <= DEFAULT_MAX_IDENTIFIERS);
            let mut errors = Vec::new();
            input.options.validate(&mut errors);
            prop_assert!(
                errors.is_empty(),
                "accepted options with errors: {errors:?}"
            );
        }
        Err(e) => {
            let p = e.to_problem();
            prop_assert!((400..500).contains(&p.status), "{p:?}");
            prop_assert!(p.detail.as_deref().is_some_and(|d| !d.is_empty()), "{p:?}");
            if p.status == 422 {
                prop_assert!(!p.errors.is_empty(), "{p:?}");
                for e in &p.errors {
                    prop_assert!(!e.location.is_empty() && !e.message.is_empty(), "{p:?}");
                }
            }
        }
    }
    Ok(())
}

/// Bytes that look like CSV often enough to get past the header: separators, quotes, line
/// ends, identifier column names, values, bytes that are not UTF-8.
fn csv_ish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b",".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"email".to_vec()),
        Just(b"Phone_SHA256".to_vec()),
        Just(b"address".to_vec()),
        Just(b"maid".to_vec()),
        Just(b"a@b.co".to_vec()),
        Just(b"5125550134".to_vec()),
        Just(b"=1+1".to_vec()),
        Just("é".as_bytes().to_vec()),
        Just(vec![0xff]),
        Just(vec![0]),
        "[ -~]{0,6}".prop_map(String::into_bytes),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

/// A value for a JSON body: any JSON, with the body's own field names and values mixed in.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just("email"),
            Just("phone"),
            Just("plaintext"),
            Just("sha256"),
            Just("precision"),
            Just("miles"),
            Just("a@b.co"),
            Just("5125550134"),
        ]
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            Just("multi_identifiers".to_owned()),
            Just("options".to_owned()),
            Just("id_type".to_owned()),
            Just("hash_type".to_owned()),
            Just("values".to_owned()),
            Just("min_support".to_owned()),
            Just("location".to_owned()),
            Just("latitude".to_owned()),
            Just("strategies".to_owned()),
            Just("audience_limit".to_owned()),
            "[a-z_]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map(key, inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn valid_body() -> Value {
    json!({
        "multi_identifiers": [
            {"id_type": "email", "hash_type": "plaintext", "values": ["ann@example.com", "bob@example.com"]},
            {"id_type": "phone", "hash_type": "plaintext", "values": ["(512) 555-0134"]}
        ],
        "options": {
            "min_support": 0.05,
            "strategies": ["precision", "reach"],
            "location": {"latitude": 40.7, "longitude": -74.0, "radius": 25, "unit": "km"},
            "audience_limit": 1000
        }
    })
}

/// Every place in `v`, as JSON pointers (the root is "").
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                pointers(child, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// One change to a valid body: a place replaced by another value, or removed.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, Value),
    Remove(usize),
}

fn mutate(body: &mut Value, mutation: &Mutation) {
    let mut places = Vec::new();
    pointers(body, String::new(), &mut places);
    let (index, replacement) = match mutation {
        Mutation::Replace(i, v) => (*i, Some(v.clone())),
        Mutation::Remove(i) => (*i, None),
    };
    let ptr = &places[index % places.len()];
    match replacement {
        Some(v) => *body.pointer_mut(ptr).unwrap() = v,
        None => {
            let Some((parent, key)) = ptr.rsplit_once('/') else {
                *body = Value::Null;
                return;
            };
            match body.pointer_mut(parent).unwrap() {
                Value::Object(m) => {
                    m.remove(key);
                }
                Value::Array(items) => {
                    items.remove(key.parse::<usize>().unwrap());
                }
                _ => {}
            }
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), json_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        any::<usize>().prop_map(Mutation::Remove),
    ]
}

/// A customer row of a valid CSV: an email, a phone, a free-text name (commas, quotes, line
/// ends and all), each perhaps absent.
#[derive(Debug, Clone)]
struct Row {
    email: Option<String>,
    phone: Option<String>,
    name: String,
}

fn email() -> impl Strategy<Value = String> {
    (
        "[a-zA-Z0-9._]{1,10}",
        "[a-zA-Z]{1,8}",
        "(com|org|io)",
        " {0,2}",
    )
        .prop_map(|(local, domain, tld, pad)| format!("{pad}{local}@{domain}.{tld}{pad}"))
}

fn phone() -> impl Strategy<Value = String> {
    ("[2-9][0-9]{2}", "[0-9]{3}", "[0-9]{4}", 0..4usize).prop_map(|(a, b, c, style)| match style {
        0 => format!("{a}{b}{c}"),
        1 => format!("({a}) {b}-{c}"),
        2 => format!("+1 {a} {b} {c}"),
        _ => format!("{a}.{b}.{c}"),
    })
}

fn row() -> impl Strategy<Value = Row> {
    (
        prop::option::weighted(0.8, email()),
        prop::option::weighted(0.5, phone()),
        "[a-zA-Z ,\"\n\r'=+-]{0,12}",
    )
        .prop_map(|(email, phone, name)| Row { email, phone, name })
}

/// The values of `id_type` the rows hold, normalised, first occurrences only, in row order.
fn expected(rows: &[Row], id_type: IdType, pick: fn(&Row) -> Option<&String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows {
        if let Some(v) = pick(r).and_then(|v| normalize(id_type, v.trim()))
            && !out.contains(&v)
        {
            out.push(v);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_as_csv_get_an_answer(body in prop::collection::vec(any::<u8>(), 0..600)) {
        assert_answer(from_csv(&body, JobOptions::default(), DEFAULT_MAX_IDENTIFIERS))?;
    }

    #[test]
    fn csv_like_bytes_get_an_answer(body in csv_ish()) {
        assert_answer(from_csv(&body, JobOptions::default(), DEFAULT_MAX_IDENTIFIERS))?;
    }

    #[test]
    fn any_bytes_as_json_get_an_answer(body in prop::collection::vec(any::<u8>(), 0..400)) {
        assert_answer(from_json(&body, DEFAULT_MAX_IDENTIFIERS))?;
    }

    #[test]
    fn any_json_value_gets_an_answer(value in json_value()) {
        let body = serde_json::to_vec(&value).unwrap();
        assert_answer(from_json(&body, DEFAULT_MAX_IDENTIFIERS))?;
    }

    /// A valid body with up to three places replaced or removed.
    #[test]
    fn a_mutated_valid_body_gets_an_answer(mutations in prop::collection::vec(mutation(), 1..4)) {
        let mut body = valid_body();
        for m in &mutations {
            mutate(&mut body, m);
        }
        let bytes = serde_json::to_vec(&body).unwrap();
        assert_answer(from_json(&bytes, DEFAULT_MAX_IDENTIFIERS))?;
    }

    /// A valid body cut short, or with bytes flipped, inserted or removed.
    #[test]
    fn a_damaged_valid_body_gets_an_answer(
        cut in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 0..6),
    ) {
        let mut bytes = serde_json::to_vec(&valid_body()).unwrap();
        for (at, byte, kind) in edits {
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => {
                    bytes.remove(i);
                }
            }
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep.max(bytes.len() / 2));
        assert_answer(from_json(&bytes, DEFAULT_MAX_IDENTIFIERS))?;
    }

    /// A CSV written by a CSV writer (quoting names with commas, quotes and line ends), with
    /// its columns in any order and any case, reads back as the emails and phones written,
    /// normalised, first occurrences only.
    #[test]
    fn a_valid_csv_round_trips(
        rows in prop::collection::vec(row(), 1..40),
        order in Just(vec!["email", "phone", "name"]).prop_shuffle(),
        upper in any::<bool>(),
    ) {
        prop_assume!(rows.iter().any(|r| r.email.is_some() || r.phone.is_some()));
        let mut writer = csv::Writer::from_writer(Vec::new());
        let header: Vec<String> = order
            .iter()
            .map(|c| if upper { c.to_uppercase() } else { (*c).to_owned() })
            .collect();
        writer.write_record(&header).unwrap();
        for r in &rows {
            let cells: Vec<&str> = order
                .iter()
                .map(|c| match *c {
                    "email" => r.email.as_deref().unwrap_or(""),
                    "phone" => r.phone.as_deref().unwrap_or(""),
                    _ => r.name.as_str(),
                })
                .collect();
            writer.write_record(&cells).unwrap();
        }
        let body = writer.into_inner().unwrap();
        let input = from_csv(&body, JobOptions::default(), DEFAULT_MAX_IDENTIFIERS)
            .map_err(|e| TestCaseError::fail(format!("{:?}", e.to_problem())))?;
        let read = |t: IdType| {
            input
                .groups
                .iter()
                .find(|g| g.id_type == t)
                .map(|g| g.values.clone())
                .unwrap_or_default()
        };
        prop_assert_eq!(read(IdType::Email), expected(&rows, IdType::Email, |r| r.email.as_ref()));
        prop_assert_eq!(read(IdType::Phone), expected(&rows, IdType::Phone, |r| r.phone.as_ref()));
    }
}
