//! Fetching an export the upstream handed out as a presigned URL. The URL is a credential of
//! sorts (its query signs the download): it never goes into an error message or a log.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use icp_contract::{
    AudienceRecord, AudienceStream, ExportFormat, PersonId, ProviderError, RecordBatch,
    audience_stream,
};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

use crate::export_rows::{ExportRow, decode};
use crate::payload;

/// Starts the download; the status decides what a failure means.
pub(crate) async fn open(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<reqwest::Response, ProviderError> {
    let resp = tokio::time::timeout(timeout, http.get(url).send())
        .await
        .map_err(|_| {
            ProviderError::unavailable(format!("export did not answer within {timeout:?}"))
        })?
        .map_err(|e| ProviderError::unavailable(format!("export download: {}", e.without_url())))?;
    let status = resp.status().as_u16();
    match status {
        200..=299 => Ok(resp),
        // Presigned URLs answer 403 when their signature expired, 404/410 once the object is gone.
        403 | 404 | 410 => Err(ProviderError::ExportExpired {
            message: format!("export URL answered HTTP {status}"),
        }),
        _ => {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            Err(payload::http_status(status, retry_after.as_deref()))
        }
    }
}

/// Reads and parses the whole export.
pub(crate) async fn read_all<T: ExportRow>(
    resp: reqwest::Response,
    format: ExportFormat,
) -> Result<Vec<T>, ProviderError> {
    let body = resp
        .bytes()
        .await
        .map_err(|e| ProviderError::unavailable(format!("export body: {}", e.without_url())))?;
    decode(&body, format)
}

/// An audience export's records as they arrive. JSON Lines are split and checked line by line
/// without holding the file, a batch from each piece of the body that arrives, each line kept as
/// the bytes it came in (see [`push_record_line`]); JSON and CSV have no row boundary a stream can
/// trust, so they are read whole first.
pub(crate) fn record_lines(resp: reqwest::Response, format: ExportFormat) -> AudienceStream {
    if format != ExportFormat::Jsonl {
        return stream::once(read_all::<AudienceRecord>(resp, format))
            .flat_map(|r| match r {
                Ok(rows) => audience_stream(&rows),
                Err(e) => stream::iter([Err(e)]).boxed(),
            })
            .boxed();
    }
    struct State {
        body: BoxStream<'static, reqwest::Result<Bytes>>,
        /// The unfinished line the last piece ended with.
        rest: Vec<u8>,
        done: bool,
    }
    let state = State {
        body: resp.bytes_stream().boxed(),
        rest: Vec::new(),
        done: false,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            let mut batch = RecordBatch::default();
            let read = match st.body.next().await {
                Some(Ok(piece)) => push_piece(&mut batch, &mut st.rest, &piece),
                Some(Err(e)) => Err(ProviderError::unavailable(format!(
                    "export body broke off: {}",
                    e.without_url()
                ))),
                None => {
                    st.done = true;
                    push_record_line(&mut batch, &std::mem::take(&mut st.rest))
                }
            };
            if let Err(e) = read {
                st.done = true;
                return Some((Err(e), st));
            }
            if !batch.is_empty() {
                return Some((Ok(batch), st));
            }
        }
    })
    .boxed()
}

/// The records of one piece of a JSON Lines body onto `batch`: the line the last piece left
/// unfinished (`rest`), then every whole line of this one; its own unfinished end waits in
/// `rest` for the next.
fn push_piece(
    batch: &mut RecordBatch,
    rest: &mut Vec<u8>,
    piece: &[u8],
) -> Result<(), ProviderError> {
    let mut lines = piece;
    if !rest.is_empty() {
        let Some(end) = memchr::memchr(b'\n', lines) else {
            rest.extend_from_slice(lines);
            return Ok(());
        };
        rest.extend_from_slice(&lines[..end]);
        push_record_line(batch, &std::mem::take(rest))?;
        lines = &lines[end + 1..];
    }
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', lines) {
        push_record_line(batch, &lines[start..end])?;
        start = end + 1;
    }
    rest.extend_from_slice(&lines[start..]);
    Ok(())
}

/// One JSON Lines record of an audience export, checked, onto `batch` (a blank line is
/// skipped). A line that holds exactly a record (`person_id`, and `identifiers` as maps of
/// strings) is kept as the bytes it came in, read without building the record; one that holds
/// more is parsed and written again, so fields this service does not know are dropped, as a
/// parse into the contract's record drops them.
pub(crate) fn push_record_line(batch: &mut RecordBatch, line: &[u8]) -> Result<(), ProviderError> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok(());
    }
    // UTF-8 checked once for the whole line, so the parse reads it as a `str` without checking
    // each string again.
    if let Ok(text) = std::str::from_utf8(line)
        && let Ok(exact) = serde_json::from_str::<ExactRecord>(text)
    {
        batch.push_json(PersonId(exact.person_id), line);
        return Ok(());
    }
    let record = serde_json::from_slice::<AudienceRecord>(line)
        .map_err(|e| ProviderError::protocol(format!("export JSON Lines: {e}")))?;
    batch.push_record(&record);
    Ok(())
}

/// The fields of an [`AudienceRecord`] and no others, checked without being kept.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ExactRecord {
    /// A number: a person id given as a string is written again as the number it is.
    person_id: u64,
    #[serde(default, rename = "identifiers")]
    _identifiers: StringMaps,
}

/// A map of maps of strings, checked without being kept.
#[derive(Default)]
struct StringMaps;

/// A map of strings, checked without being kept.
struct StringMap;

/// A string, checked without being kept.
struct Str;

impl<'de> Deserialize<'de> for StringMaps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringMaps;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of identifier types to maps of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<StringMaps, A::Error> {
                while m.next_key::<Str>()?.is_some() {
                    m.next_value::<StringMap>()?;
                }
                Ok(StringMaps)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringMap;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<StringMap, A::Error> {
                while m.next_entry::<Str, Str>()?.is_some() {}
                Ok(StringMap)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Str;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Str, E> {
                Ok(Str)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &[u8]) -> Result<RecordBatch, ProviderError> {
        let mut batch = RecordBatch::default();
        push_record_line(&mut batch, line).map(|()| batch)
    }

    fn json_of(batch: &RecordBatch) -> Vec<u8> {
        batch.iter().next().unwrap().1.to_vec()
    }

    #[test]
    fn an_exact_record_line_is_kept_as_it_came() {
        let line = br#"{"identifiers": {"email": {"email1": "a\u0040x.io"}}, "person_id": 7}"#;
        let kept = one(line).unwrap();
        assert_eq!(kept.iter().next().unwrap().0, PersonId(7));
        assert_eq!(json_of(&kept), line.to_vec());
        assert_eq!(
            kept.decode().unwrap()[0].identifiers["email"]["email1"],
            "a@x.io"
        );
        // Blank lines and the spaces around a line are not records.
        assert!(one(b"  \r").unwrap().is_empty());
        assert_eq!(
            json_of(&one(b" {\"person_id\": 7}\r").unwrap()),
            b"{\"person_id\": 7}"
        );
    }

    #[test]
    fn a_line_with_more_than_a_record_is_written_again_without_it() {
        let line =
            br#"{"person_id": 7, "score": 0.5, "identifiers": {"email": {"email1": "a@x.io"}}}"#;
        assert_eq!(
            json_of(&one(line).unwrap()),
            br#"{"person_id":7,"identifiers":{"email":{"email1":"a@x.io"}}}"#.to_vec()
        );
        assert_eq!(
            json_of(&one(br#"{"person_id": "7"}"#).unwrap()),
            br#"{"person_id":7,"identifiers":{}}"#.to_vec()
        );
    }

    /// A JSON Lines body read as it arrives, in pieces that cut lines anywhere.
    async fn ids_of(pieces: &[&'static str]) -> Result<Vec<u64>, ProviderError> {
        let body = futures::stream::iter(
            pieces
                .iter()
                .map(|p| Ok::<_, std::io::Error>(Bytes::from_static(p.as_bytes())))
                .collect::<Vec<_>>(),
        );
        let resp = http::Response::new(reqwest::Body::wrap_stream(body));
        let mut ids = Vec::new();
        let mut batches = record_lines(resp.into(), ExportFormat::Jsonl);
        while let Some(batch) = batches.next().await {
            ids.extend(batch?.iter().map(|(id, _)| id.0));
        }
        Ok(ids)
    }

    #[tokio::test]
    async fn lines_cut_across_pieces_are_read_whole() {
        let ids = ids_of(&[
            "{\"person_id\":1}\n{\"pers",
            "on_id\":2}\n\n",
            "{\"person_id\":3",
            "0}",
            "\n{\"person_id\":4}",
        ])
        .await
        .unwrap();
        assert_eq!(ids, vec![1, 2, 30, 4]);
        let err = ids_of(&["{\"person_id\":1}\n{\"person_", "id\":\"x\"}\n"])
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Protocol { .. }), "{err:?}");
    }

    #[test]
    fn a_line_that_is_no_record_is_a_protocol_error() {
        for line in [
            &br#"{"person_id": "x"}"#[..],
            br#"{"person_id": 7, "identifiers": {"email": {"email1": 3}}}"#,
            br#"{"person_id": 7, "identifiers": null}"#,
            br#"{"identifiers": {}}"#,
            br#"{"person_id": 7"#,
        ] {
            let err = one(line).unwrap_err();
            assert!(matches!(err, ProviderError::Protocol { .. }), "{err:?}");
        }
    }
}
