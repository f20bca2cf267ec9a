//! Importing a population from CSV: what is accepted, and bad files refused whole.

mod common;

use icp_contract::{
    DistanceUnit, FindPersonsRequest, HashType, IdType, IdentifierGroup, ListClustersRequest,
    Location, digest_hex,
};
use icp_population::{ImportError, PERSON_ID_BASE, Population};

const GOOD: &str = "\
email,email2,phone,address,latitude,longitude,first_name,gender,interested_fitness,interest:likes_cats,plan
 Ann@Example.com ,ann2@example.com,+1 (512) 555-0101,\"1 Main St, Austin, TX 78701\",30.2672,-97.7431,Ann,Female,Yes,Yes,Gold
bob@example.com,,512.555.0102,\"2 Oak Ave, Austin, TX 78702\",30.30,-97.70,Bob,Male,,,Silver
cat@example.com,,,,,,,Female,Yes,,Gold
";

fn good() -> Population {
    Population::from_csv_reader(GOOD.as_bytes()).unwrap()
}

#[test]
fn imports_identifiers_traits_and_places() {
    let p = good();
    assert_eq!(p.len(), 3);
    assert!(p.segments().is_empty());
    assert_eq!(p.segment_of(p.person_id(0)), None);
    let clusters = p
        .list_clusters(&ListClustersRequest::default())
        .unwrap()
        .clusters;
    let find = |n: &str, v: &str| {
        clusters
            .iter()
            .find(|c| c.name == n && c.value == v)
            .unwrap()
    };
    assert_eq!(find("gender", "Female").size, 2);
    assert_eq!(find("gender", "Female").domain, "demographic");
    assert_eq!(find("interested_fitness", "Yes").domain, "interest");
    assert_eq!(find("likes_cats", "Yes").domain, "interest");
    assert_eq!(find("plan", "Gold").domain, "lifestyle");
    assert_eq!(find("plan", "Gold").size, 2);
    // Same name/value/domain as the generator: same hash.
    assert_eq!(
        find("gender", "Female").cluster_hash,
        icp_population::cluster_hash("demographic", "gender", "Female")
    );

    let d = common::profile(&p, p.person_id(0));
    assert_eq!(d["email1"], "ann@example.com");
    assert_eq!(d["email2"], "ann2@example.com");
    assert_eq!(d["phone1"], "5125550101");
    assert_eq!(d["first_name"], "Ann");
    assert_eq!(d["plan"], "Gold");

    let out = common::resolve(
        &p,
        vec![
            IdentifierGroup {
                id_type: IdType::Phone,
                hash_type: HashType::Plaintext,
                values: vec!["(512) 555-0102".to_owned()],
            },
            IdentifierGroup {
                id_type: IdType::Email,
                hash_type: HashType::Sha256,
                values: vec![digest_hex(HashType::Sha256, "cat@example.com")],
            },
            IdentifierGroup {
                id_type: IdType::Address,
                hash_type: HashType::Plaintext,
                values: vec!["1 main st austin tx 78701".to_owned()],
            },
        ],
    )
    .unwrap();
    assert_eq!(out.stats.resolved, 3);
    let ids: Vec<u64> = out
        .identities
        .iter()
        .map(|i| i.person_id.0 - PERSON_ID_BASE)
        .collect();
    assert_eq!(ids, vec![1, 2, 0]);

    // Near Austin: the two located persons; the third has no place and is never in a circle.
    let gold_or_silver = format!(
        "{} OR {}",
        find("plan", "Gold").cluster_hash,
        find("plan", "Silver").cluster_id
    );
    let total = |loc: Option<Location>| {
        p.find_persons(&FindPersonsRequest {
            expression: gold_or_silver.clone(),
            identifier_type: None,
            location: loc,
            audience_limit: None,
            format: None,
            workflow_id: None,
        })
        .unwrap()
        .total
    };
    assert_eq!(total(None), 3);
    assert_eq!(
        total(Some(Location {
            latitude: 30.27,
            longitude: -97.74,
            radius: 20.0,
            unit: DistanceUnit::Km,
        })),
        2
    );
}

fn refused(csv: &str) -> (u64, String) {
    match Population::from_csv_reader(csv.as_bytes()) {
        Err(ImportError::Invalid { line, reason, .. }) => (line, reason),
        other => panic!("{csv:?}: expected refusal, got {other:?}"),
    }
}

#[test]
fn malformed_files_are_refused_with_line_and_reason() {
    let (line, reason) = refused("email,gender\na@b.com,Female\nb@b.com\n");
    assert_eq!(line, 3);
    assert!(reason.contains("fields"), "{reason}");
    let (line, reason) = refused("email,phone\na@b.com,5125550101\nb@b.com,555-01\n");
    assert_eq!(line, 3);
    assert!(reason.contains("10 digits"), "{reason}");
    let (line, _) = refused("email\nnot-an-email\n");
    assert_eq!(line, 2);
    let (line, reason) = refused("email,latitude,longitude\na@b.com,95,10\n");
    assert_eq!(line, 2);
    assert!(reason.contains("latitude"), "{reason}");
    let (_, reason) = refused("email,latitude\na@b.com,40\n");
    assert!(reason.contains("together"), "{reason}");
    let (line, reason) = refused("email,gender,Gender\n");
    assert_eq!(line, 1);
    assert!(reason.contains("twice"), "{reason}");
    let (_, reason) = refused("email,gender\n");
    assert!(reason.contains("no persons"), "{reason}");
    let (_, reason) = refused("");
    assert!(reason.contains("empty"), "{reason}");
    let (_, reason) = refused("email,shoes:size\na@b.com,9\n");
    assert!(reason.contains("unknown domain"), "{reason}");
    let (_, reason) = refused("person_id,email\n1,a@b.com\n");
    assert!(reason.contains("assigned by the engine"), "{reason}");
    let bad_utf8 = b"email,gender\na@b.com,\xff\xfe\n";
    assert!(matches!(
        Population::from_csv_reader(&bad_utf8[..]),
        Err(ImportError::Invalid { line: 2, .. })
    ));
    let missing = Population::from_csv_path(std::path::Path::new("/nonexistent/pop.csv"));
    assert!(matches!(missing, Err(ImportError::Io(_))));
    // The message a user sees names the line and the column.
    let err = Population::from_csv_reader("email,phone\na@b.com,12\n".as_bytes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 2, column \"phone\": a phone is 10 digits (an optional leading +1)"
    );
}

#[test]
fn a_generated_population_written_as_csv_imports_to_the_same_clusters() {
    let generated = common::generated(2_000, 4);
    let mut csv = Vec::new();
    generated.write_csv(&mut csv).unwrap();
    let back = Population::from_csv_reader(&csv[..]).unwrap();
    assert_eq!(back.len(), generated.len());
    let all = |p: &Population| {
        let mut v: Vec<(String, u64)> = p
            .list_clusters(&ListClustersRequest {
                limit: Some(10_000),
                ..Default::default()
            })
            .unwrap()
            .clusters
            .into_iter()
            .filter(|c| c.size > 0)
            .map(|c| (c.cluster_hash, c.size))
            .collect();
        v.sort();
        v
    };
    assert_eq!(all(&back), all(&generated));
}

/// A person found by many emails: every one of them resolves to that person — also when the
/// person is the file's last row — and more columns of a kind than can be indexed are refused.
#[test]
fn every_email_of_a_person_with_many_resolves() {
    let header: Vec<String> = (1..=16).map(|i| format!("email{i}")).collect();
    let row =
        |who: &str| -> Vec<String> { (1..=16).map(|i| format!("{who}.{i}@example.com")).collect() };
    let csv = format!(
        "{},gender\n{},Female\n{},Male\n",
        header.join(","),
        row("first").join(","),
        row("last").join(",")
    );
    let p = Population::from_csv_reader(csv.as_bytes()).unwrap();
    for (who, person) in [("first", 0), ("last", 1)] {
        let answer = common::resolve(
            &p,
            vec![IdentifierGroup {
                id_type: IdType::Email,
                hash_type: HashType::Plaintext,
                values: row(who),
            }],
        )
        .unwrap();
        assert_eq!(answer.stats.resolved, 16, "{who}: {:?}", answer.stats);
        assert!(
            answer
                .identities
                .iter()
                .all(|i| i.person_id == p.person_id(person)),
            "{who}"
        );
    }

    let seventeen: Vec<String> = (1..=17).map(|i| format!("email{i}")).collect();
    let (line, reason) = refused(&format!("{}\n", seventeen.join(",")));
    assert_eq!(line, 1);
    assert!(reason.contains("at most 16"), "{reason}");
}
