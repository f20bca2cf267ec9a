//! `icp mcp-serve` in miniature: the embedded population served over MCP, reached through the
//! Watt client, answers exactly as the embedded provider called directly.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::{audience, normalized, serve};
use icp_contract::*;
use icp_mcp::faults::FaultConfig;
use icp_population::{EmbeddedProvider, GeneratorConfig, Population};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_population_over_mcp_equals_the_embedded_provider() {
    let population = Arc::new(Population::generate(&GeneratorConfig {
        persons: 20_000,
        seed: 7,
    }));
    let direct = Arc::new(EmbeddedProvider::new(population));
    let (client, _upstream, _) = serve(direct.clone(), FaultConfig::default()).await;

    let page = ListClustersRequest {
        limit: Some(40),
        offset: Some(5),
        ..Default::default()
    };
    let clusters = client.list_clusters(page.clone()).await.unwrap();
    assert_eq!(
        normalized(&clusters),
        normalized(&direct.list_clusters(page).await.unwrap())
    );
    let all = client
        .list_clusters_all(ListClustersRequest::default())
        .await
        .unwrap();
    assert_eq!(all.clusters.len() as u64, all.total);

    for get in [
        GetClusterRequest {
            cluster_hash: Some(clusters.clusters[0].cluster_hash.clone()),
            ..Default::default()
        },
        GetClusterRequest {
            cluster_id: Some(clusters.clusters[1].cluster_id.clone()),
            ..Default::default()
        },
    ] {
        assert_eq!(
            normalized(&client.get_cluster(get.clone()).await.unwrap()),
            normalized(&direct.get_cluster(get).await.unwrap())
        );
    }

    // Customers: the contacts of an audience, so they resolve.
    let big = all.clusters.iter().max_by_key(|c| c.size).unwrap();
    let second = all
        .clusters
        .iter()
        .filter(|c| c.name != big.name)
        .max_by_key(|c| c.size)
        .unwrap();
    let contacts = |kind: IdType| {
        let d = direct.clone();
        let expression = big.cluster_hash.clone();
        async move {
            let req = FindPersonsRequest {
                expression,
                identifier_type: Some(kind),
                location: None,
                audience_limit: Some(400),
                format: None,
                workflow_id: None,
            };
            audience(d.as_ref(), req)
                .await
                .into_iter()
                .flat_map(|r| r.identifiers.into_values().flat_map(|m| m.into_values()))
                .collect::<Vec<String>>()
        }
    };
    let resolve = ResolveRequest {
        multi_identifiers: [IdType::Email, IdType::Phone, IdType::Address]
            .into_iter()
            .zip([
                contacts(IdType::Email).await,
                contacts(IdType::Phone).await,
                contacts(IdType::Address).await,
            ])
            .map(|(id_type, values)| IdentifierGroup {
                id_type,
                hash_type: HashType::Plaintext,
                values,
            })
            .collect(),
        format: None,
        workflow_id: None,
    };
    let via = client.resolve_identities(resolve.clone()).await.unwrap();
    let want = direct.resolve_identities(resolve.clone()).await.unwrap();
    assert!(want.identities.len() > 300, "{}", want.identities.len());
    assert_eq!(normalized(&via), normalized(&want));
    let mut as_file = resolve.clone();
    as_file.format = Some(ExportFormat::Csv);
    assert_eq!(
        normalized(&client.resolve_identities(as_file).await.unwrap()),
        normalized(&want)
    );

    let ids: Vec<PersonId> = want.identities.iter().map(|i| i.person_id).collect();
    let enrich = GetPersonRequest {
        person_ids: ids[..ids.len().min(1000)].to_vec(),
        domains: None,
        format: None,
        workflow_id: via.workflow_id.clone(),
    };
    assert_eq!(
        normalized(&client.get_person(enrich.clone()).await.unwrap()),
        normalized(&direct.get_person(enrich).await.unwrap())
    );

    let find = FindPersonsRequest {
        expression: format!(
            "({} AND {}) OR {}",
            big.cluster_hash, second.cluster_hash, clusters.clusters[2].cluster_id
        ),
        identifier_type: Some(IdType::Email),
        location: None,
        audience_limit: Some(3_000),
        format: None,
        // The embedded population draws a limited audience's members per workflow.
        workflow_id: Some("w-find".into()),
    };
    let found = client.find_persons(find.clone()).await.unwrap();
    assert_eq!(
        normalized(&found),
        normalized(&direct.find_persons(find.clone()).await.unwrap())
    );
    let streamed = audience(&client, find.clone()).await;
    let want = audience(direct.as_ref(), find.clone()).await;
    assert_eq!(streamed, want);
    // The server's export files, in every format, hold the same records: written as they are
    // downloaded, and the same file at every download of a URL.
    let http = reqwest::Client::new();
    for format in [ExportFormat::Json, ExportFormat::Jsonl, ExportFormat::Csv] {
        let as_file = FindPersonsRequest {
            format: Some(format),
            ..find.clone()
        };
        let export = client.find_persons(as_file).await.unwrap().export.unwrap();
        assert_eq!(export.rows, Some(want.len() as u64), "{format:?}");
        for _ in 0..2 {
            let resp = http.get(&export.url).send().await.unwrap();
            assert!(resp.status().is_success(), "{format:?}: {}", resp.status());
            let body = resp.bytes().await.unwrap();
            let rows: Vec<AudienceRecord> = icp_mcp::export_rows::decode(&body, format).unwrap();
            assert_eq!(rows, want, "{format:?}");
        }
    }
    let distinct: BTreeSet<PersonId> = streamed.iter().map(|r| r.person_id).collect();
    assert_eq!(distinct.len(), streamed.len());

    let bad = FindPersonsRequest {
        expression: "NOT".into(),
        identifier_type: None,
        location: None,
        audience_limit: None,
        format: None,
        workflow_id: None,
    };
    assert_eq!(
        client.find_persons(bad.clone()).await.unwrap_err(),
        direct.find_persons(bad).await.unwrap_err()
    );

    let fb = FeedbackRequest {
        workflow_id: via.workflow_id.clone(),
        tool_trace_ids: vec![],
        rating: None,
        message: "thanks".into(),
    };
    assert_eq!(
        normalized(&client.submit_feedback(fb.clone()).await.unwrap()),
        normalized(&direct.submit_feedback(fb).await.unwrap())
    );
}
