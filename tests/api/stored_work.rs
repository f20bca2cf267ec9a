//! What the database holds of jobs whose service died: the work no later run may redo, named
//! as the upstream's call log names the calls (see `call_log`), so a test can tell whether a
//! call after a restart asked for work a checkpoint already held.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use icp_store::{JobStatus, Stage, Store};
use serde_json::Value;
use uuid::Uuid;

use crate::call_log::{Call, TOOLS, digest, resolve_unit};

/// What the database held when a run of the child ended: the work no later run may redo.
#[derive(Default)]
pub struct Durable {
    /// Workflows of jobs that had ended: nothing of theirs is to be called again.
    pub ended: HashSet<String>,
    /// `(workflow, tool, unit)` of every resolve call, enrichment batch and audience stored.
    pub units: HashSet<(String, &'static str, String)>,
    /// Per workflow, the attributes whose clusters the stored analysis holds.
    pub analyzed: HashMap<String, BTreeSet<String>>,
    /// Workflows whose map stage was stored.
    pub mapped: HashSet<String>,
}

impl Durable {
    /// Whether `call` asked for work this state already held.
    pub fn covers(&self, call: &Call) -> bool {
        if self.ended.contains(&call.workflow) {
            return true;
        }
        match call.tool {
            "list_clusters" => {
                self.mapped.contains(&call.workflow)
                    || self
                        .analyzed
                        .get(&call.workflow)
                        .is_some_and(|names| call.unit.split(',').all(|n| names.contains(n)))
            }
            tool => self
                .units
                .contains(&(call.workflow.clone(), tool, call.unit.clone())),
        }
    }
}

/// Reads what the database holds of `jobs` (the child is dead: nothing moves).
pub async fn durable_work(store: &Store, jobs: &[Uuid]) -> Durable {
    let mut durable = Durable::default();
    for &id in jobs {
        let job = store.get_job(id, None).await.unwrap().expect("the job");
        let Some(workflow) = job.workflow_id.clone() else {
            continue;
        };
        if !matches!(job.status, JobStatus::Queued | JobStatus::Running) {
            durable.ended.insert(workflow);
            continue;
        }
        let parts = |stage| async move { store.checkpoints(id, stage).await.unwrap() };
        for (seq, body) in parts(Stage::Resolve).await {
            if seq == 0 {
                continue; // the stage's summary, not a call's answer
            }
            let part: Value = serde_json::from_str(&body).unwrap();
            let ids = part["persons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| match &p[0] {
                    Value::String(s) => s.parse::<u64>().unwrap(),
                    n => n.as_u64().unwrap(),
                });
            let unit = resolve_unit(ids);
            durable
                .units
                .insert((workflow.clone(), "resolve_identities", unit));
        }
        for (_, body) in parts(Stage::Enrich).await {
            durable
                .units
                .insert((workflow.clone(), "get_person", digest(&body)));
        }
        if let Some((_, body)) = parts(Stage::Analyze).await.first() {
            let analyzed: Value = serde_json::from_str(body).unwrap();
            let names = analyzed["clusters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_owned())
                .collect();
            durable.analyzed.insert(workflow.clone(), names);
        }
        if !parts(Stage::Map).await.is_empty() {
            durable.mapped.insert(workflow.clone());
        }
        for (_, body) in parts(Stage::Find).await {
            let audience: Value = serde_json::from_str(&body).unwrap();
            let expression = audience["expression"].as_str().unwrap().to_owned();
            durable
                .units
                .insert((workflow.clone(), "find_persons", expression));
        }
    }
    durable
}

/// Every unit `durable` holds was asked for by a call the upstream saw: the units read from
/// the checkpoints are named as the calls are, so the checks below compare like with like.
pub fn assert_units_match_calls(durable: &Durable, calls: &[Call]) {
    let made: HashSet<(&str, &str, &str)> = calls
        .iter()
        .map(|c| (c.workflow.as_str(), c.tool, c.unit.as_str()))
        .collect();
    for (workflow, tool, unit) in &durable.units {
        assert!(
            made.contains(&(workflow.as_str(), *tool, unit.as_str())),
            "a stored {tool} part matches no call of workflow {workflow}"
        );
    }
    for (workflow, names) in &durable.analyzed {
        let listed: HashSet<&str> = calls
            .iter()
            .filter(|c| c.tool == "list_clusters" && &c.workflow == workflow)
            .flat_map(|c| c.unit.split(','))
            .collect();
        assert!(names.iter().all(|n| listed.contains(n.as_str())));
    }
}

/// Calls per tool, every tool named.
pub fn per_tool<'a>(calls: impl IntoIterator<Item = &'a Call>) -> BTreeMap<&'static str, u64> {
    let mut counted: BTreeMap<&'static str, u64> = TOOLS.iter().map(|t| (*t, 0)).collect();
    for c in calls {
        *counted.entry(c.tool).or_default() += 1;
    }
    counted
}
