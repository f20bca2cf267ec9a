//! Personal data never reaches the log: the real binary runs whole jobs with every `icp` crate
//! logging at `trace` and everything else (HTTP, SQL, the MCP client's transport) at `debug` — a success with plaintext identifiers, one
//! with identifiers hashed by the service, a job that resolves nobody, one the upstream refuses
//! with a message quoting an identifier, and a job killed mid-enrichment and resumed by the next
//! process — and the captured output holds none of the identifiers posted (as posted,
//! normalised, hashed), none of the customers' person ids, and none of the audiences' records.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use icp_contract::{HashType, IdType, digest_hex, normalize};
use icp_population::CustomerContact;
use icp_store::test_support::TestDatabase;
use serde_json::{Value, json};

use crate::call_log::start_upstream;
use crate::child::{ChildConfig, ChildService};
use crate::common::population;

/// The identifiers a job is posted with, in the untidy forms customers' files have.
fn posted(customers: &[CustomerContact]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut emails = Vec::new();
    let mut phones = Vec::new();
    let mut addresses = Vec::new();
    for (i, c) in customers.iter().enumerate() {
        if let Some(e) = &c.email {
            // Some upper-cased with spaces around, so the normal form differs from the posted.
            emails.push(if i % 2 == 0 {
                format!(" {} ", e.to_uppercase())
            } else {
                e.clone()
            });
        }
        if let Some(p) = &c.phone {
            phones.push(format!("+1 ({}) {}-{}", &p[..3], &p[3..6], &p[6..]));
        }
        if let Some(a) = &c.address {
            addresses.push(a.clone());
        }
    }
    (emails, phones, addresses)
}

fn body(customers: &[CustomerContact], options: Value) -> Value {
    let (emails, phones, addresses) = posted(customers);
    json!({
        "multi_identifiers": [
            {"id_type": "email", "hash_type": "plaintext", "values": emails},
            {"id_type": "phone", "hash_type": "plaintext", "values": phones},
            {"id_type": "address", "hash_type": "plaintext", "values": addresses},
        ],
        "options": options,
    })
}

/// What must not be in the log: each identifier as posted, in its normal form and that form's
/// SHA-256, and each customer's person id. One-word needles are looked up among the log's
/// words; the others (addresses, formatted phones) as text.
#[derive(Default)]
struct Needles {
    words: HashSet<String>,
    phrases: HashSet<String>,
}

impl Needles {
    fn add(&mut self, text: &str) {
        let text = text.trim().to_lowercase();
        if text.len() < 6 {
            return;
        }
        if text.chars().all(is_word_char) {
            self.words.insert(text);
        } else {
            self.phrases.insert(text);
        }
    }

    fn add_identifier(&mut self, id_type: IdType, posted: &str) {
        self.add(posted);
        if let Some(normal) = normalize(id_type, posted) {
            self.add(&digest_hex(HashType::Sha256, &normal));
            self.add(&normal);
        }
    }

    fn add_customers(&mut self, customers: &[CustomerContact]) {
        let (emails, phones, addresses) = posted(customers);
        for e in &emails {
            self.add_identifier(IdType::Email, e);
        }
        for p in &phones {
            self.add_identifier(IdType::Phone, p);
        }
        for a in &addresses {
            self.add_identifier(IdType::Address, a);
        }
        for c in customers {
            self.add(&c.person_id.0.to_string());
        }
    }

    /// Every string in an export's records: their person ids and contact data.
    fn add_records(&mut self, jsonl: &str) {
        fn strings(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::String(s) => out.push(s.clone()),
                Value::Number(n) => out.push(n.to_string()),
                Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
                Value::Object(o) => o.values().for_each(|v| strings(v, out)),
                _ => {}
            }
        }
        for line in jsonl.lines() {
            let mut found = Vec::new();
            strings(&serde_json::from_str(line).unwrap(), &mut found);
            for s in found {
                self.add(&s);
            }
        }
    }

    /// The needles found in `log`.
    fn found_in(&self, log: &str) -> Vec<String> {
        let log = log.to_lowercase();
        let words: HashSet<&str> = log.split(|c| !is_word_char(c)).collect();
        let mut found: Vec<String> = self
            .words
            .iter()
            .filter(|w| words.contains(w.as_str()))
            .chain(self.phrases.iter().filter(|p| log.contains(p.as_str())))
            .cloned()
            .collect();
        found.sort();
        found
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "@._+-".contains(c)
}

async fn exports_of(child: &ChildService, id: &str, needles: &mut Needles) {
    let result = child.get_json(&format!("/v1/jobs/{id}/result")).await;
    for audience in result["audiences"].as_array().unwrap() {
        let strategy = audience["strategy"].as_str().unwrap();
        let path = format!("/v1/jobs/{id}/audiences/{strategy}/export?format=jsonl");
        needles.add_records(&child.get_text(&path).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_identifier_or_profile_reaches_the_log_of_whole_jobs() {
    let db = TestDatabase::sqlite().await;
    let started = Instant::now();
    let (upstream, upstream_url, _handle) = start_upstream(Duration::from_millis(100)).await;
    let config = ChildConfig {
        lease_secs: 1,
        log_filter: "debug,icp=trace,icp_server=trace,icp_store=trace,icp_mcp=trace,\
                     icp_contract=trace,icp_population=trace,icp_analysis=trace"
            .to_owned(),
        ..ChildConfig::new(db.url(), &upstream_url)
    };
    let output = Arc::new(Mutex::new(String::new()));
    let pop = population();
    let segment = |i: usize| pop.segments()[i].name.clone();
    let draw = |n, seg: usize, seed| pop.sample_customers(n, Some(&segment(seg)), seed).unwrap();
    let options = json!({"min_support": 0.05, "audience_limit": 500});
    let mut needles = Needles::default();
    let wait = Duration::from_secs(60);

    let mut child = ChildService::start(&config, output.clone()).await;

    // Succeeds, identifiers plaintext; then the same kinds hashed by the service.
    let plain = draw(400, 2, 101);
    needles.add_customers(&plain);
    let ok = child.post_job(&body(&plain, options.clone())).await;
    let hashed = draw(300, 4, 102);
    needles.add_customers(&hashed);
    let mut hashed_options = options.clone();
    hashed_options["hash_identifiers"] = json!("sha256");
    let ok_hashed = child.post_job(&body(&hashed, hashed_options)).await;
    for id in [&ok, &ok_hashed] {
        let job = child.wait_for(id, wait).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        exports_of(&child, id, &mut needles).await;
    }

    // Fails: nobody resolves.
    let strangers: Vec<String> = (0..50)
        .map(|i| format!("stranger.{i}.x7q@nowhere.example"))
        .collect();
    for s in &strangers {
        needles.add_identifier(IdType::Email, s);
    }
    let nobody = child
        .post_job(&json!({
            "multi_identifiers": [{"id_type": "email", "hash_type": "plaintext", "values": strangers}],
        }))
        .await;
    let job = child.wait_for(&nobody, wait).await;
    assert_eq!(job["status"], "failed", "{job}");

    // Fails: the upstream refuses the call, quoting an identifier back.
    let refused = draw(50, 1, 103);
    needles.add_customers(&refused);
    let quoted = normalize(IdType::Email, refused[0].email.as_deref().unwrap()).unwrap();
    *upstream.fail_resolve_with.lock().unwrap() =
        Some(format!("no person matches the email {quoted}"));
    let rejected = child.post_job(&body(&refused, options.clone())).await;
    let job = child.wait_for(&rejected, wait).await;
    *upstream.fail_resolve_with.lock().unwrap() = None;
    assert_eq!(job["status"], "failed", "{job}");

    // Killed while enriching, resumed and finished by the next process.
    let resumed = draw(2500, 3, 104);
    needles.add_customers(&resumed);
    let run = upstream.next_run();
    let crashed = child.post_job(&body(&resumed, options.clone())).await;
    while upstream.count(run, "get_person") < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no enrichment call"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill();
    upstream.next_run();
    let child = ChildService::start(&config, output.clone()).await;
    let job = child.wait_for(&crashed, wait).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(job["attempt"].as_i64().unwrap() >= 2, "{job}");
    exports_of(&child, &crashed, &mut needles).await;
    drop(child);

    let log = output.lock().unwrap().clone();
    if let Ok(path) = std::env::var("ICP_LOG_PRIVACY_DUMP") {
        std::fs::write(path, &log).unwrap();
    }
    // The log is the whole story, at the levels asked for: not a check of an empty file.
    for expected in [&ok, &nobody, &rejected, &crashed] {
        assert!(
            log.contains(expected.as_str()),
            "job {expected} is not in the log"
        );
    }
    assert!(
        log.contains("DEBUG icp_server"),
        "no debug lines of the service"
    );
    let found = needles.found_in(&log);
    eprintln!(
        "log privacy: {} lines ({} KiB) of 5 jobs checked for {} words and {} phrases in {:.1} s",
        log.lines().count(),
        log.len() / 1024,
        needles.words.len(),
        needles.phrases.len(),
        started.elapsed().as_secs_f64()
    );
    let context: Vec<&str> = log
        .lines()
        .filter(|l| found.iter().any(|f| l.to_lowercase().contains(f.as_str())))
        .take(5)
        .collect();
    assert!(
        found.is_empty(),
        "{} personal values in the log, e.g. {:?}; lines:\n{}",
        found.len(),
        &found[..found.len().min(5)],
        context.join("\n")
    );
    db.cleanup().await;
}
