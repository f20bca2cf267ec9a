use futures::stream::BoxStream;

use crate::{
    AudienceRecord, FeedbackRequest, FeedbackResponse, FindPersonsRequest, FindPersonsResponse,
    GetClusterRequest, GetClusterResponse, GetPersonRequest, GetPersonResponse,
    ListClustersRequest, ListClustersResponse, PersonId, ProviderError, ResolveRequest,
    ResolveResponse,
};

/// The full audience of a `find_persons` call, some records at a time, in the provider's order.
pub type AudienceStream = BoxStream<'static, Result<RecordBatch, ProviderError>>;

/// Audience records as the JSON of [`AudienceRecord`]s (JSON Lines rows without their
/// newlines), one after another in one buffer, each with its person id read out. An audience of
/// hundreds of thousands is encoded once, where its records are made or where they arrive, and
/// moved as bytes after that, a batch at a time (not an allocation a record): into the job's
/// stored export, and out of an MCP server's export file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordBatch {
    json: Vec<u8>,
    /// Each record's person id and where its JSON ends in `json`.
    ends: Vec<(PersonId, usize)>,
}

impl RecordBatch {
    pub fn with_capacity(records: usize, bytes: usize) -> Self {
        Self {
            json: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(records),
        }
    }

    /// Appends a record whose JSON `write` puts at the end of the buffer it is given.
    pub fn push_with(&mut self, person_id: PersonId, write: impl FnOnce(&mut Vec<u8>)) {
        write(&mut self.json);
        self.ends.push((person_id, self.json.len()));
    }

    /// Appends a record given as its JSON.
    pub fn push_json(&mut self, person_id: PersonId, json: &[u8]) {
        self.push_with(person_id, |buf| buf.extend_from_slice(json));
    }

    /// Appends a record, encoded.
    pub fn push_record(&mut self, record: &AudienceRecord) {
        // An AudienceRecord (numbers, strings, string maps) always serialises.
        self.push_with(record.person_id, |buf| {
            let _ = serde_json::to_writer(buf, record);
        });
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Each record's person id and JSON, in order.
    pub fn iter(&self) -> impl Iterator<Item = (PersonId, &[u8])> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|&(_, end)| end));
        self.ends
            .iter()
            .zip(starts)
            .map(|(&(id, end), start)| (id, &self.json[start..end]))
    }

    /// Every record, parsed; a record that is not one is a protocol error.
    pub fn decode(&self) -> Result<Vec<AudienceRecord>, ProviderError> {
        self.iter()
            .map(|(_, json)| {
                serde_json::from_slice(json)
                    .map_err(|e| ProviderError::protocol(format!("audience record: {e}")))
            })
            .collect()
    }
}

/// An audience already in memory, as the stream of its records' JSON.
pub fn audience_stream(records: &[AudienceRecord]) -> AudienceStream {
    use futures::StreamExt;
    let mut batch = RecordBatch::default();
    for record in records {
        batch.push_record(record);
    }
    futures::stream::iter((!batch.is_empty()).then_some(Ok(batch))).boxed()
}

/// A whole audience from one `find_persons` call: its answer (`total`, `sample`, `workflow_id`,
/// `tool_trace_id`; `export` already consumed) and every record, streamed.
pub struct AudienceExport {
    pub answer: FindPersonsResponse,
    pub records: AudienceStream,
}

impl AudienceExport {
    /// Every record, parsed: for small audiences and tests (a large export is meant to move
    /// as the bytes it is).
    pub async fn parsed_records(self) -> Result<Vec<AudienceRecord>, ProviderError> {
        use futures::TryStreamExt;
        let batches: Vec<RecordBatch> = self.records.try_collect().await?;
        let mut records = Vec::new();
        for batch in &batches {
            records.extend(batch.decode()?);
        }
        Ok(records)
    }
}

impl std::fmt::Debug for AudienceExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudienceExport")
            .field("answer", &self.answer)
            .finish_non_exhaustive()
    }
}

/// A population: the five upstream operations (and feedback), whoever answers them.
///
/// Requests and answers are the upstream's shapes. Implementations handle their own transport
/// concerns (batching beyond a call's limits is the caller's job, except where noted):
/// - `resolve_identities` answers with every identity inline; a provider whose upstream hands out
///   an export URL downloads it before answering.
/// - `get_person` takes at most [`crate::MAX_PERSON_IDS_PER_CALL`] ids.
/// - `export_persons` is `find_persons` with the whole audience streamed: one call (one upstream
///   round trip) gives the count, the sample and every record, honouring `audience_limit`,
///   `location` and `identifier_type`; `format` is ignored.
#[async_trait::async_trait]
pub trait PopulationProvider: Send + Sync + 'static {
    /// A short name for logs and job details (`embedded`, `watt`).
    fn name(&self) -> &'static str;

    async fn resolve_identities(
        &self,
        req: ResolveRequest,
    ) -> Result<ResolveResponse, ProviderError>;

    /// `resolve_identities` for a caller that needs only who matched and how well: each
    /// identity's `person_id` and `overall_quality_score`, its `matches` and `identifiers` left
    /// empty. A provider that can skip building the rest does (an answer for 30,000 identifiers
    /// is megabytes of them).
    async fn resolve_persons(&self, req: ResolveRequest) -> Result<ResolveResponse, ProviderError> {
        let mut answer = self.resolve_identities(req).await?;
        for identity in &mut answer.identities {
            identity.matches.clear();
            identity.identifiers.clear();
        }
        Ok(answer)
    }

    async fn get_person(&self, req: GetPersonRequest) -> Result<GetPersonResponse, ProviderError>;

    async fn list_clusters(
        &self,
        req: ListClustersRequest,
    ) -> Result<ListClustersResponse, ProviderError>;

    async fn get_cluster(
        &self,
        req: GetClusterRequest,
    ) -> Result<GetClusterResponse, ProviderError>;

    async fn find_persons(
        &self,
        req: FindPersonsRequest,
    ) -> Result<FindPersonsResponse, ProviderError>;

    async fn export_persons(
        &self,
        req: FindPersonsRequest,
    ) -> Result<AudienceExport, ProviderError>;

    async fn submit_feedback(
        &self,
        req: FeedbackRequest,
    ) -> Result<FeedbackResponse, ProviderError>;

    /// `(tool, tool_trace_id)` of every call of `tool` made for the workflow since the last
    /// drain of that tool, oldest first, each handed out once — for providers that make calls
    /// whose answers do not reach the caller (the `find_persons` behind `export_persons`).
    /// `None` when the provider keeps no such log: the answers' own `tool_trace_id`s are then
    /// all there is.
    fn drain_traces(&self, _workflow_id: &str, _tool: &str) -> Option<Vec<(String, String)>> {
        None
    }

    /// Attempts this provider made that repeated a failed attempt (a 429, a dropped
    /// connection), since it was built: retries inside one call, which its caller never sees.
    /// Zero for a provider that does not retry.
    fn retried_attempts(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_batch_gives_back_each_record_as_it_was_pushed() {
        let record = AudienceRecord {
            person_id: PersonId(9),
            identifiers: BTreeMap::from([(
                "email".to_owned(),
                BTreeMap::from([("email1".to_owned(), "a@x.io".to_owned())]),
            )]),
        };
        let mut batch = RecordBatch::default();
        batch.push_json(PersonId(1), br#"{"person_id":1}"#);
        batch.push_record(&record);
        batch.push_with(PersonId(3), |buf| {
            buf.extend_from_slice(br#"{"person_id":3}"#)
        });
        assert_eq!(batch.len(), 3);
        let items: Vec<(u64, &[u8])> = batch.iter().map(|(id, json)| (id.0, json)).collect();
        assert_eq!(items[0], (1, &br#"{"person_id":1}"#[..]));
        assert_eq!(items[1].0, 9);
        assert_eq!(items[2], (3, &br#"{"person_id":3}"#[..]));
        let decoded = batch.decode().unwrap();
        assert_eq!(decoded[1], record);
        assert!(decoded[0].identifiers.is_empty());
        assert!(RecordBatch::default().iter().next().is_none());
    }
}
