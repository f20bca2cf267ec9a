//! The client, through a real MCP server, answers exactly what the provider answers directly.

mod common;

use common::{audience, normalized, start};
use icp_contract::*;
use icp_mcp::faults::FaultConfig;

fn mixed_identifiers(n: u64) -> ResolveRequest {
    let values = |f: &dyn Fn(u64) -> String| (1..=n).map(f).chain(["nobody".to_string()]).collect();
    ResolveRequest {
        multi_identifiers: vec![
            IdentifierGroup {
                id_type: IdType::Email,
                hash_type: HashType::Plaintext,
                values: values(&|i| format!("p{i}@example.com")),
            },
            IdentifierGroup {
                id_type: IdType::Phone,
                hash_type: HashType::Plaintext,
                values: values(&|i| format!("555{:07}", i * 2)),
            },
            IdentifierGroup {
                id_type: IdType::Address,
                hash_type: HashType::Plaintext,
                values: values(&|i| format!("{} Main St", i * 3)),
            },
        ],
        format: None,
        workflow_id: None,
    }
}

#[tokio::test]
async fn all_six_tools_answer_as_the_provider_does() {
    let up = start(3_000, FaultConfig::default()).await;
    let (c, d) = (&up.client, &up.direct);

    let req = mixed_identifiers(500);
    let via = c.resolve_identities(req.clone()).await.unwrap();
    assert!(via.workflow_id.is_some(), "the upstream starts a workflow");
    assert_eq!(
        normalized(&via),
        normalized(&d.resolve_identities(req.clone()).await.unwrap())
    );
    // Read for who matched only: the same persons, scores and stats, nothing else built.
    let lean = c.resolve_persons(req.clone()).await.unwrap();
    let mut stripped = d.resolve_identities(req.clone()).await.unwrap();
    // Which identifiers matched, by criterion type, is counted before the matches go.
    assert_eq!(lean.matched_by_criterion, stripped.count_matched());
    assert!(!lean.matched_by_criterion.is_empty());
    for identity in &mut stripped.identities {
        identity.matches.clear();
        identity.identifiers.clear();
    }
    assert!(!lean.identities.is_empty());
    assert_eq!(lean.stats, stripped.stats);
    assert_eq!(lean.identities.len(), stripped.identities.len());
    for (a, b) in lean.identities.iter().zip(&stripped.identities) {
        assert_eq!(a, b);
    }
    // A file format sends the identities through an export download; the answer is the same.
    for format in [ExportFormat::Json, ExportFormat::Jsonl, ExportFormat::Csv] {
        let mut r = req.clone();
        r.format = Some(format);
        let via = c.resolve_identities(r.clone()).await.unwrap();
        assert_eq!(
            normalized(&via),
            normalized(&d.resolve_identities(req.clone()).await.unwrap()),
            "{format:?}"
        );
    }

    let ids: Vec<PersonId> = (1..=700).map(PersonId).chain([PersonId(99_999)]).collect();
    for domains in [
        None,
        Some(vec!["demographic".to_string(), "email".to_string()]),
    ] {
        let r = GetPersonRequest {
            person_ids: ids.clone(),
            domains,
            format: None,
            workflow_id: Some("w-1".into()),
        };
        let via = c.get_person(r.clone()).await.unwrap();
        assert_eq!(
            via.workflow_id.as_deref(),
            Some("w-1"),
            "workflow passes through"
        );
        assert_eq!(
            normalized(&via),
            normalized(&d.get_person(r).await.unwrap())
        );
    }

    let r = ListClustersRequest {
        domains: Some(vec!["demographic".into()]),
        limit: Some(4),
        offset: Some(2),
        ..Default::default()
    };
    let page = c.list_clusters(r.clone()).await.unwrap();
    assert_eq!(
        normalized(&page),
        normalized(&d.list_clusters(r).await.unwrap())
    );
    let hash = page.clusters[0].cluster_hash.clone();

    let r = GetClusterRequest {
        cluster_hash: Some(hash.clone()),
        ..Default::default()
    };
    assert_eq!(
        normalized(&c.get_cluster(r.clone()).await.unwrap()),
        normalized(&d.get_cluster(r).await.unwrap())
    );
    let missing = GetClusterRequest {
        cluster_id: Some("nope".into()),
        ..Default::default()
    };
    assert_eq!(
        c.get_cluster(missing.clone()).await.unwrap_err(),
        d.get_cluster(missing).await.unwrap_err()
    );

    let all = c
        .list_clusters(ListClustersRequest::default())
        .await
        .unwrap()
        .clusters;
    let expr = format!(
        "({} AND {}) OR ({} AND NOT {})",
        all[0].cluster_hash, all[3].cluster_id, all[1].cluster_hash, all[4].cluster_hash
    );
    let find = FindPersonsRequest {
        expression: expr,
        identifier_type: Some(IdType::Phone),
        location: None,
        audience_limit: Some(1_200),
        format: None,
        workflow_id: None,
    };
    let via = c.find_persons(find.clone()).await.unwrap();
    assert_eq!(
        normalized(&via),
        normalized(&d.find_persons(find.clone()).await.unwrap())
    );
    assert!(via.total > 10 && via.sample.len() == 10);

    let export = c.export_persons(find.clone()).await.unwrap();
    // One call gives the count and sample too, the same as find_persons'.
    assert_eq!(normalized(&export.answer), normalized(&via));
    let streamed: Vec<AudienceRecord> = export.parsed_records().await.unwrap();
    let direct = audience(d.as_ref(), find).await;
    assert_eq!(streamed.len() as u64, via.total);
    assert_eq!(streamed, direct);

    let fb = FeedbackRequest {
        workflow_id: Some("w-1".into()),
        tool_trace_ids: vec!["t1".into()],
        rating: Some(4),
        message: "resolve rate lower than expected".into(),
    };
    assert_eq!(
        normalized(&c.submit_feedback(fb.clone()).await.unwrap()),
        normalized(&d.submit_feedback(fb).await.unwrap())
    );

    // Every call of workflow w-1 left its trace id behind for the job detail and feedback.
    assert_eq!(c.take_traces("w-1", "get_person").len(), 2);
    assert_eq!(c.take_traces("w-1", "submit_feedback").len(), 1);
    assert!(
        c.take_traces("w-1", "get_person").is_empty(),
        "taking empties"
    );
}
