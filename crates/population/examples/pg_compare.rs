//! The same `find_persons` questions answered by this engine and by PostgreSQL, side by side.
//!
//! `cargo run --release -p icp-population --example pg_compare -- [persons]` (default 1,000,000)
//!
//! PostgreSQL holds the same population the way a team would without this engine: one row a
//! person with an `int[]` of cluster ids under a GIN index, and latitude/longitude with a b-tree
//! on latitude for the radius. It runs in a throwaway database `icp_bench_pop` on
//! 127.0.0.1:5432 (user `postgres`), dropped at the end. Both sides must give the same counts;
//! the figure is the median of several warm runs.

use std::io::Write;
use std::time::{Duration, Instant};

use icp_contract::{DistanceUnit, FindPersonsRequest, Location};
use icp_population::{GeneratorConfig, Population};

const RUNS: usize = 7;
const DB: &str = "icp_bench_pop";

fn median(mut f: impl FnMut() -> u64) -> (u64, Duration) {
    let mut times = Vec::with_capacity(RUNS);
    let mut answer = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        answer = f();
        times.push(t.elapsed());
    }
    times.sort();
    (answer, times[RUNS / 2])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let persons: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let t = Instant::now();
    let pop = Population::generate(&GeneratorConfig {
        persons,
        ..GeneratorConfig::default()
    });
    println!(
        "generated {persons} persons in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut admin = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls)?;
    // Separate statements: a multi-statement batch runs as one transaction, which
    // DROP/CREATE DATABASE refuse.
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {DB}"))?;
    admin.batch_execute(&format!("CREATE DATABASE {DB}"))?;
    let result = compare(&pop);
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {DB}"))?;
    result
}

fn compare(pop: &Population) -> Result<(), Box<dyn std::error::Error>> {
    let mut pg = postgres::Client::connect(
        &format!("host=127.0.0.1 user=postgres dbname={DB}"),
        postgres::NoTls,
    )?;
    pg.batch_execute(
        "CREATE UNLOGGED TABLE persons (id bigint, clusters int[] NOT NULL, lat float8, lon float8)",
    )?;
    let t = Instant::now();
    {
        let mut w = pg.copy_in("COPY persons FROM STDIN")?;
        let mut line = String::new();
        for p in 0..pop.len() {
            line.clear();
            let ids = pop.cluster_ids_of(p);
            let (lat, lon) = pop.coordinates(p).unwrap_or((f64::NAN, f64::NAN));
            line.push_str(&format!("{}\t{{", pop.person_id(p).0));
            for (i, id) in ids.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                line.push_str(&id.to_string());
            }
            line.push_str(&format!("}}\t{lat}\t{lon}\n"));
            w.write_all(line.as_bytes())?;
        }
        w.finish()?;
    }
    let load = t.elapsed();
    let t = Instant::now();
    pg.batch_execute(
        "ALTER TABLE persons ADD PRIMARY KEY (id);
         CREATE INDEX persons_clusters ON persons USING gin (clusters);
         CREATE INDEX persons_lat ON persons (lat);",
    )?;
    pg.batch_execute("VACUUM ANALYZE persons")?;
    println!(
        "PostgreSQL: COPY {:.1} s, indexes + analyze {:.1} s",
        load.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );

    let id = |n: &str, v: &str| pop.cluster_for(n, v).unwrap().cluster_id;
    let (fit, healthy, aff, male) = (
        id("interested_fitness", "Yes"),
        id("interested_healthy_living", "Yes"),
        id("fitness_affinity", "High"),
        id("gender", "Male"),
    );
    let cases = [
        (
            "AND of 3",
            format!("{fit} AND {healthy} AND {aff}"),
            format!("clusters @> ARRAY[{fit},{healthy},{aff}]"),
        ),
        (
            "OR of 3",
            format!("{fit} OR {healthy} OR {aff}"),
            format!("clusters && ARRAY[{fit},{healthy},{aff}]"),
        ),
        (
            "hybrid with AND NOT",
            format!("(({fit} AND {healthy}) OR ({fit} AND {aff})) AND NOT {male}"),
            format!(
                "(clusters @> ARRAY[{fit},{healthy}] OR clusters @> ARRAY[{fit},{aff}]) \
                 AND NOT clusters @> ARRAY[{male}]"
            ),
        ),
    ];
    // Chicago, 50 miles; the SQL narrows by a latitude band (indexed) then the exact haversine.
    let loc = Location {
        latitude: 41.8781,
        longitude: -87.6298,
        radius: 50.0,
        unit: DistanceUnit::Miles,
    };
    let band = (loc.radius / 3958.7613_f64).to_degrees();
    let radius_sql = format!(
        "lat BETWEEN {lo} AND {hi} AND 2 * 3958.7613 * asin(sqrt(\
         power(sin(radians(lat - {la}) / 2), 2) + \
         cos(radians({la})) * cos(radians(lat)) * power(sin(radians(lon - ({lon})) / 2), 2))) <= {r}",
        lo = loc.latitude - band,
        hi = loc.latitude + band,
        la = loc.latitude,
        lon = loc.longitude,
        r = loc.radius
    );

    println!(
        "\n| question ({}M persons) | engine | PostgreSQL | PostgreSQL / engine | count |",
        pop.len() as f64 / 1e6
    );
    println!("|---|---|---|---|---|");
    for (name, expr, sql) in &cases {
        for radius in [false, true] {
            let (ours, ours_t) = if radius {
                let req = FindPersonsRequest {
                    expression: expr.clone(),
                    identifier_type: None,
                    location: Some(loc),
                    audience_limit: None,
                    format: None,
                    workflow_id: None,
                };
                median(|| pop.audience(&req).unwrap().len())
            } else {
                median(|| pop.count(expr).unwrap())
            };
            let query = if radius {
                format!("SELECT count(*) FROM persons WHERE ({sql}) AND {radius_sql}")
            } else {
                format!("SELECT count(*) FROM persons WHERE {sql}")
            };
            let (theirs, theirs_t) = median(|| {
                pg.query_one(query.as_str(), &[])
                    .map(|r| r.get::<_, i64>(0) as u64)
                    .unwrap_or(u64::MAX)
            });
            assert_eq!(
                ours, theirs,
                "{name} (radius {radius}): engine and PostgreSQL disagree"
            );
            println!(
                "| {name}{} | {:.3} ms | {:.1} ms | {:.0}× | {ours} |",
                if radius { ", 50-mile radius" } else { "" },
                ms(ours_t),
                ms(theirs_t),
                theirs_t.as_secs_f64() / ours_t.as_secs_f64()
            );
        }
    }
    Ok(())
}
