//! One audience export, shared by the stages and custom audiences: written (customers dropped
//! and counted, at most `limit` records kept, the kept ones gathered into chunks of JSON lines,
//! the records' JSON as the provider encoded it, a line each) and read back.

use std::collections::HashSet;

use icp_contract::PersonId;
use icp_store::{Store, StoreError};
use serde::Deserialize;
use uuid::Uuid;

/// The part of an audience record read back from its export.
#[derive(Deserialize)]
struct RecordId {
    person_id: PersonId,
}

/// Reads every record of job `job`'s stored export `name` (JSON Lines, chunk by chunk), handing
/// each record's person id and line to `each`.
pub async fn read_export(
    store: &Store,
    job: Uuid,
    name: &str,
    mut each: impl FnMut(PersonId, &str),
) -> Result<(), StoreError> {
    let mut n = 0;
    while let Some(body) = store.export_chunk(job, name, n).await? {
        for line in body.lines().filter(|l| !l.is_empty()) {
            let record: RecordId = serde_json::from_str(line).map_err(|e| {
                StoreError::InvalidData(format!("a record of the export {name}: {e}"))
            })?;
            each(record.person_id, line);
        }
        n += 1;
    }
    Ok(())
}

pub struct ExportTally<'a> {
    customers: &'a HashSet<PersonId>,
    limit: Option<u64>,
    chunk_rows: usize,
    /// Records read, customers included.
    pub rows: u64,
    pub exported: u64,
    /// Customers found and left out.
    pub excluded: u64,
    /// Whether the limit left records out.
    pub truncated: bool,
    chunk: Vec<u8>,
    in_chunk: usize,
    chunk_no: i64,
}

impl<'a> ExportTally<'a> {
    pub fn new(customers: &'a HashSet<PersonId>, limit: Option<u64>, chunk_rows: usize) -> Self {
        Self {
            customers,
            limit,
            chunk_rows: chunk_rows.max(1),
            rows: 0,
            exported: 0,
            excluded: 0,
            truncated: false,
            chunk: Vec::new(),
            in_chunk: 0,
            chunk_no: 0,
        }
    }

    /// The rows to ask the provider for: the limit plus the customers', so the limit still
    /// holds once they are dropped.
    pub fn asked(&self) -> Option<u64> {
        self.limit
            .map(|l| l.saturating_add(self.customers.len() as u64))
    }

    /// Takes one record; answers a full chunk (its number and body) to store.
    pub fn take(&mut self, person_id: PersonId, json: &[u8]) -> Option<(i64, Vec<u8>)> {
        self.rows += 1;
        if self.customers.contains(&person_id) {
            self.excluded += 1;
            return None;
        }
        if self.limit.is_some_and(|l| self.exported >= l) {
            self.truncated = true;
            return None;
        }
        self.chunk.extend_from_slice(json);
        self.chunk.push(b'\n');
        self.exported += 1;
        self.in_chunk += 1;
        (self.in_chunk == self.chunk_rows).then(|| self.cut())
    }

    /// The last chunk, when records are left over.
    pub fn finish(&mut self) -> Option<(i64, Vec<u8>)> {
        (self.in_chunk > 0).then(|| self.cut())
    }

    fn cut(&mut self) -> (i64, Vec<u8>) {
        let next = Vec::with_capacity(self.chunk.len());
        let body = std::mem::replace(&mut self.chunk, next);
        let no = self.chunk_no;
        self.chunk_no += 1;
        self.in_chunk = 0;
        (no, body)
    }

    /// Whether every customer of the audience was seen (so `total − excluded` is exact): the
    /// export held the whole audience, unless it returned every row it was asked for and the
    /// audience (`total`, customers included) is larger.
    pub fn exact(&self, total: u64) -> bool {
        self.asked().is_none_or(|asked| self.rows < asked) || self.rows >= total
    }
}
