//! The five operations and the provider, end to end on a generated population.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use futures::StreamExt;
use icp_contract::{
    DistanceUnit, FeedbackRequest, FindPersonsRequest, GetClusterRequest, GetPersonRequest,
    HashType, IdType, IdentifierGroup, ListClustersRequest, Location, PersonId, PopulationProvider,
    ProviderError, digest_hex,
};
use icp_population::{EmbeddedProvider, PERSON_ID_BASE, Population, great_circle_distance};

const N: usize = 60_000;

fn pop() -> &'static Arc<Population> {
    static POP: OnceLock<Arc<Population>> = OnceLock::new();
    POP.get_or_init(|| Arc::new(common::generated(N, 11)))
}

fn profile(id: PersonId) -> std::collections::BTreeMap<String, String> {
    common::profile(pop(), id)
}

fn find(expression: &str) -> FindPersonsRequest {
    FindPersonsRequest {
        expression: expression.to_owned(),
        identifier_type: None,
        location: None,
        audience_limit: None,
        format: None,
        workflow_id: Some("wf-1".to_owned()),
    }
}

fn hash(name: &str, value: &str) -> String {
    pop().cluster_for(name, value).unwrap().cluster_hash
}

#[test]
fn resolve_normalises_hashes_and_groups_by_person() {
    let a = profile(PersonId(PERSON_ID_BASE + 17));
    let b = profile(PersonId(PERSON_ID_BASE + 4242));
    let email_a = a["email1"].clone();
    let messy = format!("  {}  ", email_a.to_uppercase());
    let mut groups = vec![
        IdentifierGroup {
            id_type: IdType::Email,
            hash_type: HashType::Plaintext,
            values: vec![
                messy.clone(),
                "nobody@nowhere.example".to_owned(),
                "junk".to_owned(),
            ],
        },
        IdentifierGroup {
            id_type: IdType::Email,
            hash_type: HashType::Sha256,
            values: vec![digest_hex(HashType::Sha256, &b["email1"]), "zz".to_owned()],
        },
        IdentifierGroup {
            id_type: IdType::Email,
            hash_type: HashType::Md5,
            values: vec![digest_hex(HashType::Md5, &b["email1"]).to_uppercase()],
        },
        IdentifierGroup {
            id_type: IdType::Address,
            hash_type: HashType::Plaintext,
            values: vec![a["address1"].to_uppercase().replace(',', " ;")],
        },
    ];
    if let Some(phone) = a.get("phone1") {
        groups.push(IdentifierGroup {
            id_type: IdType::Phone,
            hash_type: HashType::Sha1,
            values: vec![digest_hex(HashType::Sha1, phone)],
        });
        groups.push(IdentifierGroup {
            id_type: IdType::Phone,
            hash_type: HashType::Plaintext,
            values: vec![format!(
                "+1 ({}) {}-{}",
                &phone[..3],
                &phone[3..6],
                &phone[6..]
            )],
        });
    }
    let with_phone = a.contains_key("phone1");
    let out = common::resolve(pop(), groups).unwrap();
    let requested = 7 + if with_phone { 2 } else { 0 };
    assert_eq!(out.stats.requested, requested);
    assert_eq!(out.stats.resolved, requested - 3);
    let ida = out
        .identities
        .iter()
        .find(|i| i.person_id == PersonId(PERSON_ID_BASE + 17))
        .expect("person a resolved");
    // Email, address and (when present) both phone forms all land on one identity.
    assert_eq!(ida.matches.len(), 2 + if with_phone { 2 } else { 0 });
    assert!(
        ida.matches
            .iter()
            .any(|m| m.criterion_type == "email_plaintext"
                && m.criterion_value == messy
                && m.quality_score > 0.5)
    );
    assert!(ida.identifiers["email"].contains(&email_a));
    let best = ida
        .matches
        .iter()
        .map(|m| m.quality_score)
        .fold(0.0, f64::max);
    assert!(ida.overall_quality_score >= best && ida.overall_quality_score <= 1.0);
    let idb = out
        .identities
        .iter()
        .find(|i| i.person_id == PersonId(PERSON_ID_BASE + 4242))
        .expect("person b resolved");
    let kinds: HashSet<_> = idb
        .matches
        .iter()
        .map(|m| m.criterion_type.as_str())
        .collect();
    assert_eq!(kinds, HashSet::from(["email_sha256", "email_md5"]));
    // The shared address may resolve housemates too, but never a person twice.
    let ids: HashSet<_> = out.identities.iter().map(|i| i.person_id).collect();
    assert_eq!(ids.len(), out.identities.len());
}

#[test]
fn resolve_refuses_more_than_the_upstream_limits() {
    let err = common::resolve(
        pop(),
        vec![IdentifierGroup {
            id_type: IdType::Email,
            hash_type: HashType::Plaintext,
            values: vec!["a@b.c".to_owned(); 3_001],
        }],
    )
    .unwrap_err();
    assert!(
        matches!(err, ProviderError::Validation { ref message } if message.contains("multi_identifiers[0]"))
    );
}

#[test]
fn get_person_limits_filters_and_numbers_contacts() {
    let too_many = GetPersonRequest {
        person_ids: (0..1001).map(|i| PersonId(PERSON_ID_BASE + i)).collect(),
        domains: None,
        format: None,
        workflow_id: None,
    };
    assert!(matches!(
        pop().get_person(&too_many),
        Err(ProviderError::Validation { .. })
    ));
    let ids: Vec<PersonId> = (0..998).map(|i| PersonId(PERSON_ID_BASE + i * 7)).collect();
    let out = pop()
        .get_person(&GetPersonRequest {
            person_ids: ids.iter().copied().chain([PersonId(1), ids[0]]).collect(),
            domains: Some(vec!["demographic".to_owned(), "email".to_owned()]),
            format: None,
            workflow_id: Some("w".to_owned()),
        })
        .unwrap();
    assert_eq!(out.workflow_id.as_deref(), Some("w"));
    assert_eq!(
        out.profiles.len(),
        998,
        "unknown id dropped, duplicate once"
    );
    for p in &out.profiles {
        assert!(p.domains.contains_key("email1"));
        assert!(!p.domains.contains_key("phone1") && !p.domains.contains_key("first_name"));
        assert!(!p.domains.keys().any(|k| k.starts_with("interested_")));
        let q = p.metadata.quality_score.unwrap();
        assert!((0.0..=1.0).contains(&q));
    }
    assert!(
        out.profiles
            .iter()
            .any(|p| p.domains.contains_key("email2"))
    );
    assert!(
        out.profiles
            .iter()
            .any(|p| p.domains.get("gender").is_some_and(|g| g == "Female"))
    );
    let bad = pop().get_person(&GetPersonRequest {
        person_ids: ids,
        domains: Some(vec!["demographic".to_owned(), "shoes".to_owned()]),
        format: None,
        workflow_id: None,
    });
    assert!(
        matches!(bad, Err(ProviderError::Validation { ref message }) if message.contains("domains[1]"))
    );
    let full = profile(PersonId(PERSON_ID_BASE + 3));
    for key in ["first_name", "last_name", "email1", "address1"] {
        assert!(full.contains_key(key), "{key}");
    }
    assert!(
        full.len() >= 25,
        "a generated profile is rich: {}",
        full.len()
    );
}

#[test]
fn list_and_get_clusters() {
    let all = pop()
        .list_clusters(&ListClustersRequest {
            limit: Some(10_000),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.population_size, Some(N as u64));
    assert_eq!(all.total, all.returned);
    assert!(!all.has_more && all.next_offset.is_none());
    let hashes: HashSet<_> = all
        .clusters
        .iter()
        .map(|c| c.cluster_hash.clone())
        .collect();
    assert_eq!(hashes.len(), all.clusters.len());
    // Clusters of one attribute partition the people who have it.
    let gender: u64 = all
        .clusters
        .iter()
        .filter(|c| c.name == "gender")
        .map(|c| c.size)
        .sum();
    assert!(gender > N as u64 * 9 / 10 && gender <= N as u64);
    for c in &all.clusters {
        assert_eq!(c.cluster_hash.len(), 32);
        assert_eq!(c.prevalence, Some(c.size as f64 / N as f64));
    }

    let mut page = ListClustersRequest {
        domains: Some(vec!["interest".to_owned(), "Affinity".to_owned()]),
        limit: Some(5),
        ..Default::default()
    };
    let mut seen = Vec::new();
    loop {
        let out = pop().list_clusters(&page).unwrap();
        assert!(out.returned <= 5);
        seen.extend(out.clusters.iter().map(|c| c.domain.clone()));
        match out.next_offset {
            Some(n) => page.offset = Some(n),
            None => {
                assert_eq!(seen.len() as u64, out.total);
                break;
            }
        }
    }
    assert!(seen.iter().all(|d| d == "interest" || d == "affinity"));
    assert!(seen.len() > 20);

    let by_name = pop()
        .list_clusters(&ListClustersRequest {
            cluster_names: Some(vec!["gender".to_owned(), "fitness_affinity".to_owned()]),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_name.total, 5);
    let female = pop().cluster_for("gender", "Female").unwrap();
    let got = pop()
        .get_cluster(&GetClusterRequest {
            cluster_hash: Some(female.cluster_hash.to_uppercase()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(got.cluster, female);
    let got = pop()
        .get_cluster(&GetClusterRequest {
            cluster_id: Some(female.cluster_id.clone()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(got.cluster, female);
    assert!(matches!(
        pop().get_cluster(&GetClusterRequest {
            cluster_id: Some("42".to_owned()),
            ..Default::default()
        }),
        Err(ProviderError::NotFound { .. })
    ));
    assert!(matches!(
        pop().get_cluster(&GetClusterRequest::default()),
        Err(ProviderError::Validation { .. })
    ));
    assert!(
        pop()
            .list_clusters(&ListClustersRequest {
                limit: Some(10_001),
                ..Default::default()
            })
            .is_err()
    );
}

#[test]
fn cluster_hashes_do_not_depend_on_seed_or_size() {
    let other = common::generated(500, 99);
    for (name, value) in [("gender", "Female"), ("interested_fitness", "Yes")] {
        assert_eq!(
            other.cluster_for(name, value).unwrap().cluster_hash,
            pop().cluster_for(name, value).unwrap().cluster_hash
        );
    }
}

#[test]
fn find_persons_counts_match_a_person_by_person_scan() {
    let f = hash("interested_fitness", "Yes");
    let h = hash("interested_healthy_living", "Yes");
    let fa = hash("fitness_affinity", "High");
    let male = pop().cluster_for("gender", "Male").unwrap().cluster_id;
    for expr in [
        format!("{f} AND {h} AND {fa}"),
        format!("{f} OR {h} OR {fa}"),
        format!("({f} AND {h}) OR ({f} AND {fa})"),
        format!("({f} AND {h}) AND NOT {male}"),
        format!("{f} AND NOT ({h} OR {male}) AND NOT {fa}"),
    ] {
        let parsed = pop().parse_expression(&expr).unwrap();
        let naive = (0..N).filter(|&p| pop().matches_naive(&parsed, p)).count() as u64;
        let out = pop().find_persons(&find(&expr)).unwrap();
        assert_eq!(out.total, naive, "{expr}");
        assert_eq!(pop().count(&expr).unwrap(), naive, "{expr}");
        assert!(naive > 0, "{expr}");
        assert_eq!(out.sample.len(), 10);
        assert_eq!(out.workflow_id.as_deref(), Some("wf-1"));
        for r in &out.sample {
            let row = pop().index_of(r.person_id).unwrap();
            assert!(pop().matches_naive(&parsed, row));
            assert!(r.identifiers["email"].contains_key("email1"));
        }
        // The same workflow id gives the same sample, another usually not.
        assert_eq!(pop().find_persons(&find(&expr)).unwrap().sample, out.sample);
        let mut other = find(&expr);
        other.workflow_id = Some("wf-2".to_owned());
        assert_ne!(pop().find_persons(&other).unwrap().sample, out.sample);
    }
}

#[test]
fn find_persons_by_radius_limit_and_identifier_type() {
    let f = hash("interested_fitness", "Yes");
    // Chicago, 50 miles.
    let loc = Location {
        latitude: 41.8781,
        longitude: -87.6298,
        radius: 50.0,
        unit: DistanceUnit::Miles,
    };
    let mut req = find(&f);
    req.location = Some(loc);
    req.identifier_type = Some(IdType::Phone);
    let out = pop().find_persons(&req).unwrap();
    let parsed = pop().parse_expression(&f).unwrap();
    let audience = pop().audience(&req).unwrap();
    // Compare against the exact distance of every member.
    let mut naive = 0;
    let all = pop().evaluate(&parsed);
    for p in all.iter() {
        let (lat, lon) = pop().coordinates(p as usize).unwrap();
        let d = great_circle_distance(loc.latitude, loc.longitude, lat, lon, 3_958.761_3);
        if d <= 50.0 {
            naive += 1;
        }
    }
    assert_eq!(out.total, naive);
    assert_eq!(audience.len(), naive);
    assert!(naive > 100 && naive < all.len() / 5, "{naive}");
    for r in &out.sample {
        if let Some(ph) = r.identifiers.get("phone") {
            assert!(ph.keys().all(|k| k.starts_with("phone")));
        }
    }
    let mut km = req.clone();
    km.location = Some(Location {
        radius: 50.0 * 1.609_344,
        unit: DistanceUnit::Km,
        ..loc
    });
    let km_total = pop().find_persons(&km).unwrap().total;
    assert!(km_total.abs_diff(naive) <= 1, "{km_total} vs {naive}");

    let mut limited = find(&f);
    limited.audience_limit = Some(123);
    assert_eq!(pop().find_persons(&limited).unwrap().total, 123);
    let mut bad = find(&f);
    bad.location = Some(Location {
        latitude: 123.0,
        ..loc
    });
    assert!(pop().find_persons(&bad).is_err());
}

#[test]
fn find_persons_refuses_bad_expressions_with_position() {
    let f = hash("interested_fitness", "Yes");
    for (expr, pos) in [
        (format!("{f} and {f}"), 33),
        (format!("{f} AND"), 36),
        (format!("({f}"), 33),
        ("ffffffffffffffffffffffffffffffff".to_owned(), 0),
        ("12".to_owned(), 0),
        (String::new(), 0),
    ] {
        match pop().find_persons(&find(&expr)) {
            Err(ProviderError::Validation { message }) => {
                assert!(
                    message.contains(&format!("position {pos}")),
                    "{expr}: {message}"
                )
            }
            other => panic!("{expr}: {other:?}"),
        }
    }
}

#[test]
fn segments_are_strong_and_their_and_selects_members() {
    let p = pop();
    assert!(p.segments().len() >= 6);
    for (s, seg) in p.segments().iter().enumerate() {
        if seg.defining_traits.is_empty() {
            continue;
        }
        let members: Vec<usize> = (0..N)
            .filter(|&i| p.segment_of(p.person_id(i)) == Some(s))
            .collect();
        for (name, value) in &seg.defining_traits {
            let c = p.cluster_for(name, value).unwrap();
            let bitmap = p.evaluate(&p.parse_expression(&c.cluster_hash).unwrap());
            let inside = members
                .iter()
                .filter(|&&i| bitmap.contains(i as u32))
                .count();
            let share = inside as f64 / members.len() as f64;
            let others = (c.size as usize - inside) as f64 / (N - members.len()) as f64;
            assert!(share >= 0.8, "{}: {name}={value} only {share:.2}", seg.name);
            assert!(
                others < share / 2.0,
                "{}: {name}={value} {others:.2} outside",
                seg.name
            );
        }
        let expr = seg
            .defining_traits
            .iter()
            .map(|(n, v)| hash(n, v))
            .collect::<Vec<_>>()
            .join(" AND ");
        let picked = p.evaluate(&p.parse_expression(&expr).unwrap());
        assert!(!picked.is_empty(), "{}", seg.name);
        let own = picked
            .iter()
            .filter(|&i| p.segment_of(p.person_id(i as usize)) == Some(s))
            .count();
        assert!(
            own as f64 / picked.len() as f64 > 0.7,
            "{}: {own} of {}",
            seg.name,
            picked.len()
        );
    }
}

#[test]
fn sample_customers_draws_from_a_segment_and_resolves_back() {
    let p = pop();
    let customers = p
        .sample_customers(600, Some("active_millennials"), 5)
        .unwrap();
    assert_eq!(
        customers,
        p.sample_customers(600, Some("active_millennials"), 5)
            .unwrap()
    );
    let distinct: HashSet<_> = customers.iter().map(|c| c.person_id).collect();
    assert_eq!(distinct.len(), 600);
    let seg = p
        .segments()
        .iter()
        .position(|s| s.name == "active_millennials");
    assert!(customers.iter().all(|c| p.segment_of(c.person_id) == seg));
    let mut csv = Vec::new();
    icp_population::write_customer_csv(&customers, &mut csv).unwrap();
    let text = String::from_utf8(csv).unwrap();
    assert!(text.starts_with("email,phone,address\n"));
    assert_eq!(text.lines().count(), 601);
    let out = common::resolve(
        p,
        vec![IdentifierGroup {
            id_type: IdType::Email,
            hash_type: HashType::Plaintext,
            values: customers.iter().filter_map(|c| c.email.clone()).collect(),
        }],
    )
    .unwrap();
    assert_eq!(out.stats.resolved, 600);
    let back: HashSet<_> = out.identities.iter().map(|i| i.person_id).collect();
    assert_eq!(back, distinct);
    assert!(p.sample_customers(10, Some("nope"), 1).is_err());
    assert!(p.sample_customers(N + 1, None, 1).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trait_sample_is_seeded_distinct_and_says_what_the_profiles_say() {
    let p = pop();
    let rows = p.sample_rows(2_000, 7, &[]);
    assert_eq!(rows.len(), 2_000);
    assert!(rows.windows(2).all(|w| w[0] < w[1]), "distinct, ascending");
    assert_eq!(rows, p.sample_rows(2_000, 7, &[]));
    assert_ne!(rows, p.sample_rows(2_000, 8, &[]));
    // Everyone, less the excluded, when the sample is as large as the population.
    let first = p.person_id(0);
    let all = p.sample_rows(N + 5, 1, &[first]);
    assert_eq!(all.len(), N - 1);
    assert_eq!(all[0], 1);
    let left_out = p.sample_rows(2_000, 7, &[p.person_id(rows[5] as usize)]);
    assert_eq!(left_out.len(), 1_999);
    assert!(!left_out.contains(&rows[5]));

    // The traits asked for: every `name = value` of some profiles (contact fields included,
    // which are no trait of the population: held by no one), one named twice.
    let mut traits: Vec<(String, String)> = Vec::new();
    for &r in &rows[..50] {
        for (k, v) in profile(p.person_id(r as usize)) {
            if !traits.contains(&(k.clone(), v.clone())) {
                traits.push((k, v));
            }
        }
    }
    traits.reverse();
    traits.push(traits[3].clone());
    let sampled = p.sample_traits(2_000, 7, &[], &traits);
    assert_eq!(sampled.len(), rows.len());
    for (held, &r) in sampled.iter().zip(&rows) {
        let profile = profile(p.person_id(r as usize));
        let mut expected: Vec<u32> = traits
            .iter()
            .enumerate()
            .filter(|(k, (name, value))| {
                let contact = [
                    "first_name",
                    "last_name",
                    "email",
                    "phone",
                    "maid",
                    "address",
                ]
                .iter()
                .any(|c| name.starts_with(c));
                *k < traits.len() - 1 && profile.get(name) == Some(value) && !contact
            })
            .map(|(k, _)| k as u32)
            .collect();
        expected.sort_unstable();
        assert_eq!(held, &expected, "row {r}");
    }
    assert!(sampled[..50].iter().all(|h| !h.is_empty()));

    // Through the provider, traced.
    let provider = EmbeddedProvider::new(Arc::clone(p));
    let answer = provider
        .sample_traits(icp_contract::SampleTraitsRequest {
            size: 2_000,
            seed: 7,
            traits: traits.clone(),
            exclude: Vec::new(),
            workflow_id: None,
        })
        .await
        .expect("the embedded provider samples")
        .unwrap();
    assert_eq!(answer.rows, sampled);
    assert_eq!(answer.population, N as u64);
    assert!(answer.tool_trace_id.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_traces_and_streams_the_whole_audience() {
    let provider = EmbeddedProvider::new(Arc::clone(pop()));
    assert_eq!(provider.name(), "embedded");
    let f = hash("interested_fitness", "Yes");
    let mut req = find(&f);
    req.workflow_id = None;
    let a = provider.find_persons(req.clone()).await.unwrap();
    let b = provider.find_persons(req.clone()).await.unwrap();
    assert!(a.workflow_id.is_some() && a.workflow_id != b.workflow_id);
    assert!(a.tool_trace_id.is_some() && a.tool_trace_id != b.tool_trace_id);
    req.workflow_id = Some("mine".to_owned());
    let c = provider.find_persons(req.clone()).await.unwrap();
    assert_eq!(c.workflow_id.as_deref(), Some("mine"));

    let export = provider.export_persons(req.clone()).await.unwrap();
    // The export's own answer is the find_persons answer: same count, same sample.
    assert_eq!(export.answer.total, c.total);
    assert_eq!(export.answer.sample, c.sample);
    assert_eq!(export.answer.workflow_id.as_deref(), Some("mine"));
    assert!(export.answer.tool_trace_id.is_some());
    let batches: Vec<_> = export.records.collect().await;
    let ids: Vec<u64> = batches
        .iter()
        .flat_map(|b| b.as_ref().unwrap().iter().map(|(id, _)| id.0))
        .collect();
    assert_eq!(ids.len() as u64, c.total);
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "id order, no duplicates"
    );

    // Dropping a stream half-way must not hang the producer or the runtime.
    let mut stream = provider.export_persons(req.clone()).await.unwrap().records;
    for _ in 0..3 {
        stream.next().await.unwrap().unwrap();
    }
    drop(stream);

    req.expression = "nonsense".to_owned();
    assert!(matches!(
        provider.export_persons(req).await,
        Err(ProviderError::Validation { .. })
    ));
    let fb = provider
        .submit_feedback(FeedbackRequest {
            workflow_id: Some("mine".to_owned()),
            tool_trace_ids: vec![],
            rating: Some(4),
            message: "fine".to_owned(),
        })
        .await
        .unwrap();
    assert!(fb.accepted);
    assert_eq!(fb.workflow_id.as_deref(), Some("mine"));
}
