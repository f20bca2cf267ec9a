//! Audience records moved as the JSON bytes they are encoded in.

use crate::{AudienceRecord, PersonId, ProviderError};

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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::AudienceRecord;

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
