//! Indexes against an upstream whose `list_clusters` gives each cluster's size but no population
//! size, as the reference upstream does: the known-share baseline (each attribute among the
//! persons for whom it is known), and `WATT_POPULATION_SIZE` standing in for the missing figure.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use icp_contract::PopulationProvider;
use icp_mcp::faults::{FaultConfig, FaultyUpstream, FaultyUpstreamHandle};
use icp_population::{EmbeddedProvider, Population};
use serde_json::{Value, json};

/// The embedded population `pop` served over MCP with `population_size` stripped from every
/// `list_clusters` answer, and the Watt Data client pointed at it (`population_size` is its
/// `WATT_POPULATION_SIZE`).
async fn stripped(
    pop: Arc<Population>,
    population_size: Option<u64>,
) -> (Arc<dyn PopulationProvider>, FaultyUpstreamHandle) {
    let faults = FaultConfig {
        strip_population_size: true,
        ..FaultConfig::default()
    };
    let (addr, handle) = FaultyUpstream::start(Arc::new(EmbeddedProvider::new(pop)), faults)
        .await
        .expect("start the test upstream");
    let url = format!("http://{addr}/mcp");
    let provider = watt_provider_with(&url, |c| c.population_size = population_size).await;
    (provider, handle)
}

/// Persons in the population where every attribute is known.
const PERSONS: usize = 6_000;
/// Persons `0..SEGMENT` share four traits.
const SEGMENT: usize = 500;

/// Every person has a value of every trait attribute; persons `0..SEGMENT` form a segment.
fn fully_known() -> Arc<Population> {
    let mut csv = String::from(
        "email,demographic:gender,demographic:age_range,interest:interested_fitness,\
         financial:income_band,lifestyle:pet_owner\n",
    );
    let pick = |i: usize, k: usize, of: &[&'static str]| of[(i * k + i / 13) % of.len()];
    for i in 0..PERSONS {
        let gender = pick(i, 7, &["Female", "Male"]);
        let (age, fitness, income, pet) = if i < SEGMENT {
            ("25-34", "Yes", "High", "Yes")
        } else {
            (
                pick(i, 3, &["18-24", "25-34", "35-44", "45-54", "55+"]),
                pick(i, 5, &["Yes", "No", "No"]),
                pick(i, 11, &["Low", "Middle", "Middle", "High"]),
                pick(i, 17, &["Yes", "No"]),
            )
        };
        writeln!(
            csv,
            "p{i}@example.com,{gender},{age},{fitness},{income},{pet}"
        )
        .unwrap();
    }
    Arc::new(Population::from_csv_reader(csv.as_bytes()).expect("imports"))
}

/// Runs a job of `emails` and returns its result.
async fn result_of(provider: Arc<dyn PopulationProvider>, emails: &[String]) -> Value {
    let db = databases().await.remove(0);
    let app = spawn_app_over(db, provider).await;
    let body = job_body(emails, json!({"min_support": 0.05, "audience_limit": 200}));
    let job: Value = app.post_json("/v1/jobs", &body).await.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_owned();
    let job = app.wait_for(&id, Duration::from_secs(180)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let result = app.get_json(&format!("/v1/jobs/{id}/result")).await;
    app.shutdown().await;
    result
}

/// Every index of a result, keyed by what it is the index of, in report order.
fn indexes(result: &Value) -> Vec<(String, Option<f64>)> {
    let name = |i: &Value| {
        format!(
            "{}={}",
            i["name"].as_str().unwrap(),
            i["value"].as_str().unwrap()
        )
    };
    let mut all: Vec<(String, Option<f64>)> = result["top_attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (name(t), t["index"].as_f64()))
        .collect();
    for list in ["top_intersections", "multi_attribute_clusters"] {
        for set in result[list].as_array().unwrap() {
            let items: Vec<String> = set["items"].as_array().unwrap().iter().map(name).collect();
            all.push((
                format!("{list}: {}", items.join(" & ")),
                set["index"].as_f64(),
            ));
        }
    }
    all
}

fn traits_of(cluster: &Value) -> HashSet<(String, String)> {
    cluster["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_owned(),
                i["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_every_person_has_every_attribute_the_index_is_the_embedded_one() {
    let pop = fully_known();
    let emails: Vec<String> = (0..400)
        .chain(SEGMENT + 100..SEGMENT + 300)
        .map(|i| format!("p{i}@example.com"))
        .collect();

    let embedded = result_of(Arc::new(EmbeddedProvider::new(pop.clone())), &emails).await;
    let (provider, upstream) = stripped(pop, None).await;
    let remote = result_of(provider, &emails).await;
    assert!(
        upstream
            .calls()
            .get("list_clusters")
            .is_some_and(|&n| n > 0)
    );

    assert_eq!(embedded["notes"]["baseline"], "population_size");
    assert_eq!(embedded["notes"]["population_size"], PERSONS as u64);
    assert_eq!(
        remote["notes"]["baseline"], "known_share",
        "{}",
        remote["notes"]
    );
    assert!(remote["notes"].get("population_size").is_none());

    let (want, got) = (indexes(&embedded), indexes(&remote));
    assert_eq!(
        want.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        got.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        "the ranking moved"
    );
    let mut compared = 0;
    for ((what, a), (_, b)) in want.iter().zip(&got) {
        let (a, b) = (
            a.expect("indexed"),
            b.unwrap_or_else(|| panic!("{what}: no index")),
        );
        assert!(
            (a - b).abs() <= 1e-9 * a.abs().max(b.abs()),
            "{what}: {a} over the population size, {b} over the known share"
        );
        compared += 1;
    }
    assert!(compared > 10, "only {compared} indexes");
    // The planted segment, ranked against the population, comes first either way.
    let segment: HashSet<(String, String)> = [
        ("age_range", "25-34"),
        ("interested_fitness", "Yes"),
        ("income_band", "High"),
        ("pet_owner", "Yes"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
    .collect();
    let first = &remote["multi_attribute_clusters"][0];
    assert!(
        traits_of(first).is_subset(&segment) && traits_of(first).len() >= 3,
        "{first}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_coverage_differs_the_index_stays_sane_and_the_size_can_be_given() {
    let pop = population();
    let segment = 3;
    let (segment_name, emails) = segment_emails(segment, 1200);
    let defining = defining_traits(segment);

    let embedded = result_of(Arc::new(EmbeddedProvider::new(pop.clone())), &emails).await;
    let (provider, _upstream) = stripped(pop.clone(), None).await;
    let known_share = result_of(provider, &emails).await;
    assert_eq!(known_share["notes"]["baseline"], "known_share");

    // The generated attributes are known for 80 % to 98 % of persons: the known share differs
    // from the population's, but not by an order of magnitude.
    let sized: std::collections::HashMap<String, f64> = indexes(&embedded)
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect();
    let mut compared = 0;
    for (what, index) in indexes(&known_share) {
        let index = index.unwrap_or_else(|| panic!("{what}: no index"));
        assert!(index.is_finite() && index > 0.0, "{what}: {index}");
        if let Some(&over_population) = sized.get(&what) {
            let ratio = index / over_population;
            assert!(
                (0.5..=2.0).contains(&ratio),
                "{what}: {index} vs {over_population}"
            );
            compared += 1;
        }
    }
    assert!(compared > 10, "only {compared} indexes in common");
    let first = &known_share["multi_attribute_clusters"][0];
    assert!(
        traits_of(first).intersection(&defining).count() >= 3,
        "the best cluster does not name 3 of {segment_name}'s traits {defining:?}: {first}"
    );

    // `WATT_POPULATION_SIZE` fills the missing figure: the embedded result, index for index.
    let (provider, _upstream) = stripped(pop.clone(), Some(pop.len() as u64)).await;
    let overridden = result_of(provider, &emails).await;
    assert_eq!(overridden["notes"]["baseline"], "population_size");
    assert_eq!(indexes(&overridden), indexes(&embedded));
}
