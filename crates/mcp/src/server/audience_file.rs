//! An audience export's file, written as it is downloaded: the provider's records as they
//! stream, in the file's format.

use std::collections::BTreeSet;

use axum::body::Body;
use bytes::Bytes;
use futures::TryStreamExt;
use icp_contract::{
    AudienceStream, ExportFormat, FindPersonsRequest, PopulationProvider, ProviderError,
    RecordBatch,
};

use crate::export_rows::{
    add_audience_columns, content_type, write_audience_csv_header, write_audience_csv_rows,
};

/// The body of an audience export: the provider's records as they stream. JSON Lines and JSON
/// are the records' own JSON, joined; CSV rows are written from the parsed records, under the
/// columns of all of them, which a first pass over the audience finds (the served population does
/// not change, so both passes see the same records): the file streams in every format rather
/// than being built whole in memory.
pub(crate) async fn open(
    provider: &dyn PopulationProvider,
    request: FindPersonsRequest,
    format: ExportFormat,
) -> Result<(Body, &'static str), ProviderError> {
    let shape: Box<dyn FileShape> = match format {
        ExportFormat::Csv => {
            let mut columns = BTreeSet::new();
            let mut first = provider.export_persons(request.clone()).await?.records;
            while let Some(batch) = first.try_next().await? {
                add_audience_columns(&mut columns, &batch.decode()?);
            }
            Box::new(CsvRows { columns })
        }
        ExportFormat::Jsonl => Box::new(Joined::LINES),
        ExportFormat::Json | ExportFormat::None => Box::new(Joined::ARRAY),
    };
    let records = provider.export_persons(request).await?.records;
    Ok((
        Body::from_stream(stream_file(shape, records)),
        content_type(format),
    ))
}

/// How an export file is written around and between its records.
trait FileShape: Send + 'static {
    fn open(&mut self, out: &mut Vec<u8>) -> Result<(), ProviderError>;
    fn records(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ProviderError>;
    fn close(&mut self, out: &mut Vec<u8>);
}

/// Records' JSON, joined.
#[derive(Clone, Copy)]
struct Joined {
    open: &'static [u8],
    between: &'static [u8],
    after_each: &'static [u8],
    close: &'static [u8],
    any: bool,
}

impl Joined {
    const LINES: Joined = Joined {
        open: b"",
        between: b"",
        after_each: b"\n",
        close: b"",
        any: false,
    };
    const ARRAY: Joined = Joined {
        open: b"[",
        between: b",",
        after_each: b"",
        close: b"]",
        any: false,
    };
}

impl FileShape for Joined {
    fn open(&mut self, out: &mut Vec<u8>) -> Result<(), ProviderError> {
        out.extend_from_slice(self.open);
        Ok(())
    }

    fn records(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ProviderError> {
        for (_, json) in batch.iter() {
            if self.any {
                out.extend_from_slice(self.between);
            }
            out.extend_from_slice(json);
            out.extend_from_slice(self.after_each);
            self.any = true;
        }
        Ok(())
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.close);
    }
}

/// CSV rows under a header of every column.
struct CsvRows {
    columns: BTreeSet<String>,
}

impl FileShape for CsvRows {
    fn open(&mut self, out: &mut Vec<u8>) -> Result<(), ProviderError> {
        write_audience_csv_header(out, &self.columns)
    }

    fn records(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ProviderError> {
        write_audience_csv_rows(out, &self.columns, &batch.decode()?)
    }

    fn close(&mut self, _: &mut Vec<u8>) {}
}

/// The file, in pieces of about `SEND_AT` bytes. An error breaks the body off: the download
/// fails rather than ending short.
fn stream_file(
    shape: Box<dyn FileShape>,
    records: AudienceStream,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    /// Bytes gathered before they are sent on.
    const SEND_AT: usize = 256 * 1024;
    let start = (shape, records, Vec::new(), false);
    futures::stream::unfold(Some(start), |state| async move {
        let (mut shape, mut records, mut out, opened) = state?;
        if !opened && let Err(e) = shape.open(&mut out) {
            return Some((Err(std::io::Error::other(e)), None));
        }
        loop {
            let written = match records.try_next().await {
                Ok(Some(batch)) => shape.records(&batch, &mut out),
                Ok(None) => {
                    shape.close(&mut out);
                    return Some((Ok(Bytes::from(out)), None));
                }
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                return Some((Err(std::io::Error::other(e)), None));
            }
            if out.len() >= SEND_AT {
                let piece = Bytes::from(std::mem::take(&mut out));
                return Some((Ok(piece), Some((shape, records, out, true))));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use futures::StreamExt;
    use icp_contract::{AudienceRecord, PersonId};

    use super::*;
    use crate::export_rows::{ExportRow, encode};

    fn record(id: u64, emails: usize) -> AudienceRecord {
        let emails: BTreeMap<String, String> = (1..=emails)
            .map(|n| (format!("email{n}"), format!("p{id}.{n}@x.io")))
            .collect();
        AudienceRecord {
            person_id: PersonId(id),
            identifiers: BTreeMap::from([("email".to_owned(), emails)]),
        }
    }

    /// Batches of records as a provider streams them.
    fn stream_of(batches: &[Vec<AudienceRecord>]) -> AudienceStream {
        let batches: Vec<Result<RecordBatch, ProviderError>> = batches
            .iter()
            .map(|rows| {
                let mut batch = RecordBatch::default();
                rows.iter().for_each(|r| batch.push_record(r));
                Ok(batch)
            })
            .collect();
        futures::stream::iter(batches).boxed()
    }

    /// The file, and how many pieces it came in.
    async fn file(shape: impl FileShape, records: AudienceStream) -> (Vec<u8>, usize) {
        let pieces: Vec<Bytes> = stream_file(Box::new(shape), records)
            .try_collect()
            .await
            .unwrap();
        (pieces.concat(), pieces.len())
    }

    /// Streamed a batch at a time, each format is the file written whole: a CSV's header holds
    /// a column only a later batch has, and enough rows go past a piece's size.
    #[tokio::test]
    async fn streamed_files_are_the_files_written_whole() {
        let mut batches: Vec<Vec<AudienceRecord>> = (0..80u64)
            .map(|b| {
                (0..200)
                    .map(|i| record(b * 200 + i, 1 + (i % 2) as usize))
                    .collect()
            })
            .collect();
        batches.push(vec![record(99_999, 3)]);
        let all: Vec<AudienceRecord> = batches.iter().flatten().cloned().collect();

        let mut columns = BTreeSet::new();
        for rows in &batches {
            add_audience_columns(&mut columns, rows);
        }
        let (csv, pieces) = file(CsvRows { columns }, stream_of(&batches)).await;
        assert!(pieces > 1, "{} bytes in one piece", csv.len());
        assert_eq!(csv, AudienceRecord::to_csv(&all).unwrap());
        for (shape, format) in [
            (Joined::LINES, ExportFormat::Jsonl),
            (Joined::ARRAY, ExportFormat::Json),
        ] {
            let (joined, _) = file(shape, stream_of(&batches)).await;
            assert_eq!(joined, encode(&all, format).unwrap().0, "{format:?}");
        }
        // An empty audience is still a whole file.
        assert_eq!(file(Joined::ARRAY, stream_of(&[])).await.0, b"[]");
        let (empty, _) = file(
            CsvRows {
                columns: BTreeSet::new(),
            },
            stream_of(&[]),
        )
        .await;
        assert_eq!(empty, AudienceRecord::to_csv(&[]).unwrap());
    }
}
