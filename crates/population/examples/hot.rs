//! Tools for working on the resolve / get_person hot paths.
//!
//! - `cargo run --release -p icp-population --example hot -- dump FILE` writes the JSON answers
//!   of a fixed suite of `resolve_identities` and `get_person` requests (every id type and hash
//!   type, unknown and malformed values, duplicates, several groups, domain filters, a generated
//!   and an imported population) to FILE, one per line: compare two builds with `cmp`.
//! - `... --example hot -- run OP PERSONS ITERS` repeats one bench workload (OP is
//!   `email_plaintext`, `email_sha256`, `phone_plaintext`, `get_person_all` or
//!   `get_person_traits`) for a profiler such as `valgrind --tool=callgrind` or `perf`, and
//!   prints wall and CPU time per call. With `HOT_AS_BENCH=1` the process first does what the
//!   criterion bench process does before it (builds three indexes, draws their identifiers).

use std::io::Write;

use icp_contract::{
    GetPersonRequest, HashType, IdType, IdentifierGroup, ResolveRequest, digest_hex, normalize,
    normalize_address,
};
use icp_population::{GeneratorConfig, Population};

/// The benchmark's identifiers: 3,000 of persons spread over the population, every 4th unknown.
fn identifiers(pop: &Population, id_type: IdType, hash: HashType, count: usize) -> Vec<String> {
    let key = match id_type {
        IdType::Email => "email1",
        IdType::Phone => "phone1",
        IdType::Address => "address1",
        IdType::Maid => "maid1",
    };
    let ids: Vec<_> = (0..count)
        .map(|i| pop.person_id(i * 331 % pop.len()))
        .collect();
    let mut out = Vec::new();
    for chunk in ids.chunks(1000) {
        let profiles = pop
            .get_person(&GetPersonRequest {
                person_ids: chunk.to_vec(),
                domains: Some(vec![id_type.as_str().to_owned()]),
                format: None,
                workflow_id: None,
            })
            .unwrap()
            .profiles;
        for (i, p) in profiles.into_iter().enumerate() {
            let v = if i % 4 == 3 {
                format!("nobody{i}@example.com")
            } else {
                match p.domains.get(key) {
                    Some(v) => v.clone(),
                    None => continue,
                }
            };
            let v = match id_type {
                IdType::Address => normalize_address(&v).unwrap(),
                _ => v,
            };
            out.push(digest_hex(hash, &v));
        }
    }
    out
}

fn resolve_req(groups: Vec<(IdType, HashType, Vec<String>)>) -> ResolveRequest {
    ResolveRequest {
        multi_identifiers: groups
            .into_iter()
            .map(|(id_type, hash_type, values)| IdentifierGroup {
                id_type,
                hash_type,
                values,
            })
            .collect(),
        format: None,
        workflow_id: Some("wf".to_owned()),
    }
}

fn person_req(pop: &Population, ids: &[usize], domains: Option<&[&str]>) -> GetPersonRequest {
    GetPersonRequest {
        person_ids: ids.iter().map(|i| pop.person_id(*i)).collect(),
        domains: domains.map(|d| d.iter().map(|s| (*s).to_owned()).collect()),
        format: None,
        workflow_id: None,
    }
}

/// Every identifier of some persons, written the way a customer file might (mixed case,
/// punctuation), plain and hashed.
fn suite(pop: &Population, out: &mut impl Write) {
    let persons: Vec<usize> = (0..400).map(|i| (i * 7919 + 3) % pop.len()).collect();
    let profiles = pop
        .get_person(&person_req(pop, &persons, None))
        .unwrap()
        .profiles;
    let mut groups = Vec::new();
    for id_type in IdType::ALL {
        for hash in HashType::ALL {
            let mut values = Vec::new();
            for (k, p) in profiles.iter().enumerate() {
                for (name, v) in &p.domains {
                    let base = name.trim_end_matches(|c: char| c.is_ascii_digit());
                    if base != id_type.as_str() {
                        continue;
                    }
                    let raw = match (id_type, k % 3) {
                        (IdType::Email, 1) => format!("  {}  ", v.to_uppercase()),
                        (IdType::Phone, 1) => format!("+1 ({}) {}-{}", &v[..3], &v[3..6], &v[6..]),
                        (IdType::Phone, 2) => format!("{}.{}.{}", &v[..3], &v[3..6], &v[6..]),
                        (IdType::Address, 1) => v.to_uppercase(),
                        (IdType::Maid, 1) => v.to_uppercase(),
                        _ => v.clone(),
                    };
                    let value = match hash {
                        HashType::Plaintext => raw,
                        _ => {
                            let n = normalize(id_type, &raw).unwrap();
                            let h = digest_hex(hash, &n);
                            if k % 5 == 4 { h.to_uppercase() } else { h }
                        }
                    };
                    values.push(value);
                }
            }
            values.push("nobody@example.com".to_owned());
            values.push("zz".to_owned());
            values.push(String::new());
            values.push("0123456789abcdef0123456789abcdef".to_owned());
            if let Some(first) = values.first().cloned() {
                values.push(first);
            }
            groups.push((id_type, hash, values));
        }
    }
    // One group at a time, then all of them in one call (shared persons across groups).
    for g in &groups {
        let resp = pop
            .resolve_identities(&resolve_req(vec![g.clone()]))
            .unwrap();
        writeln!(out, "{}", serde_json::to_string(&resp).unwrap()).unwrap();
    }
    let resp = pop
        .resolve_identities(&resolve_req(groups.clone()))
        .unwrap();
    writeln!(out, "{}", serde_json::to_string(&resp).unwrap()).unwrap();
    // Bench-shaped requests.
    for (t, h) in [
        (IdType::Email, HashType::Plaintext),
        (IdType::Email, HashType::Sha256),
        (IdType::Phone, HashType::Plaintext),
        (IdType::Address, HashType::Md5),
        (IdType::Maid, HashType::Sha1),
    ] {
        let values = identifiers(pop, t, h, 3000.min(pop.len()));
        let resp = pop
            .resolve_identities(&resolve_req(vec![(t, h, values)]))
            .unwrap();
        writeln!(out, "{}", serde_json::to_string(&resp).unwrap()).unwrap();
    }

    let many: Vec<usize> = (0..1000).map(|i| i * 997 % pop.len()).collect();
    let mut dup = many[..300].to_vec();
    dup.extend_from_slice(&many[..50]);
    for domains in [
        None,
        Some(&["demographic", "household", "financial", "interest"][..]),
        Some(&["email"][..]),
        Some(&["phone", "Name", " maid "][..]),
        Some(&["address", "id", "content", "political"][..]),
        Some(&["intent_topic", "intent_category", "employment"][..]),
    ] {
        for ids in [&many, &dup, &many[..3]] {
            let resp = pop.get_person(&person_req(pop, ids, domains)).unwrap();
            writeln!(out, "{}", serde_json::to_string(&resp).unwrap()).unwrap();
        }
    }
}

/// Process CPU seconds (user + system), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// One call, answer dropped as in the bench; a named frame for `--toggle-collect`.
#[inline(never)]
fn measured_resolve(pop: &Population, req: &ResolveRequest) {
    std::hint::black_box(pop.resolve_identities(req).unwrap());
}

#[inline(never)]
fn measured_get_person(pop: &Population, req: &GetPersonRequest) {
    std::hint::black_box(pop.get_person(req).unwrap());
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("dump") => {
            let path = args.get(1).expect("dump FILE");
            let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
            let generated = Population::generate(&GeneratorConfig {
                persons: 50_000,
                seed: 3,
            });
            suite(&generated, &mut out);
            let mut csv = Vec::new();
            generated.write_csv(&mut csv).unwrap();
            let imported = Population::from_csv_reader(&csv[..]).unwrap();
            suite(&imported, &mut out);
        }
        Some("run") => {
            let op = args.get(1).expect("run OP PERSONS ITERS").as_str();
            let persons: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
            let iters: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(20);
            let pop = &Population::generate(&GeneratorConfig {
                persons,
                ..GeneratorConfig::default()
            });
            let resolve = |t, h| {
                pop.warm_identifier_index(t, h);
                resolve_req(vec![(t, h, identifiers(pop, t, h, 3000))])
            };
            let ids: Vec<usize> = (0..1000).map(|i| i * 997 % pop.len()).collect();
            let traits = [
                "demographic",
                "household",
                "financial",
                "interest",
                "affinity",
                "lifestyle",
                "purchase",
            ];
            // As in the criterion bench process: the three benchmarked indexes built and their
            // identifiers drawn first (it changes what the allocator has to work with).
            if std::env::var_os("HOT_AS_BENCH").is_some() {
                for (t, h) in [
                    (IdType::Email, HashType::Plaintext),
                    (IdType::Email, HashType::Sha256),
                    (IdType::Phone, HashType::Plaintext),
                ] {
                    pop.warm_identifier_index(t, h);
                    std::hint::black_box(identifiers(pop, t, h, 3000));
                }
            }
            let mut work: Box<dyn FnMut()> = match op {
                "email_plaintext" | "email_sha256" | "phone_plaintext" => {
                    let (t, h) = match op {
                        "email_plaintext" => (IdType::Email, HashType::Plaintext),
                        "email_sha256" => (IdType::Email, HashType::Sha256),
                        _ => (IdType::Phone, HashType::Plaintext),
                    };
                    let req = resolve(t, h);
                    Box::new(move || measured_resolve(pop, &req))
                }
                "get_person_all" | "get_person_traits" => {
                    let req = person_req(
                        pop,
                        &ids,
                        (op == "get_person_traits").then_some(&traits[..]),
                    );
                    Box::new(move || measured_get_person(pop, &req))
                }
                other => panic!("unknown op {other}"),
            };
            work();
            let (t, c) = (std::time::Instant::now(), cpu_seconds());
            let mut each: Vec<f64> = Vec::with_capacity(iters);
            for _ in 0..iters {
                let t = std::time::Instant::now();
                work();
                each.push(t.elapsed().as_secs_f64() * 1e3);
            }
            each.sort_by(f64::total_cmp);
            // On a shared machine the fast calls are the ones that had both cores: the low
            // percentiles estimate what a quiet machine gives.
            let pct = |p: usize| each[(each.len() - 1) * p / 100];
            println!(
                "{op}: {iters} calls, mean {:.3} ms wall, {:.3} ms CPU; p10 {:.3} ms, p50 {:.3} ms",
                t.elapsed().as_secs_f64() * 1e3 / iters as f64,
                (cpu_seconds() - c) * 1e3 / iters as f64,
                pct(10),
                pct(50),
            );
        }
        _ => eprintln!("usage: hot dump FILE | hot run OP PERSONS ITERS"),
    }
}
