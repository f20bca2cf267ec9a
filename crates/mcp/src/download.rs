//! Fetching an export the upstream handed out as a presigned URL. The URL is a credential of
//! sorts (its query signs the download): it never goes into an error message or a log.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use icp_contract::{
    AudienceRecord, AudienceStream, ExportFormat, PersonId, ProviderError, RecordLine,
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
/// without holding the file, each line kept as the bytes it came in (see [`record_line`]); JSON
/// and CSV have no row boundary a stream can trust, so they are read whole first.
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
        buf: Vec<u8>,
        ready: VecDeque<Vec<u8>>,
        done: bool,
    }
    let state = State {
        body: resp.bytes_stream().boxed(),
        buf: Vec::new(),
        ready: VecDeque::new(),
        done: false,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            if let Some(line) = st.ready.pop_front() {
                return Some((record_line(line), st));
            }
            if st.done {
                return None;
            }
            match st.body.next().await {
                Some(Ok(chunk)) => {
                    st.buf.extend_from_slice(&chunk);
                    // Every whole line of the buffer, then one shift of the unfinished rest:
                    // draining line by line moved the rest once a line (quadratic in a chunk).
                    let mut start = 0;
                    for end in memchr::memchr_iter(b'\n', &st.buf) {
                        push_line(&mut st.ready, &st.buf[start..end]);
                        start = end + 1;
                    }
                    st.buf.drain(..start);
                }
                Some(Err(e)) => {
                    st.done = true;
                    st.ready.clear();
                    let err = ProviderError::unavailable(format!(
                        "export body broke off: {}",
                        e.without_url()
                    ));
                    return Some((Err(err), st));
                }
                None => {
                    st.done = true;
                    let rest = std::mem::take(&mut st.buf);
                    push_line(&mut st.ready, &rest);
                }
            }
        }
    })
    .boxed()
}

/// One JSON Lines record of an audience export, checked. A line that holds exactly a record
/// (`person_id`, and `identifiers` as maps of strings) is kept as the bytes it came in, read
/// without building the record; one that holds more is parsed and written again, so fields
/// this service does not know are dropped, as a parse into the contract's record drops them.
pub(crate) fn record_line(line: Vec<u8>) -> Result<RecordLine, ProviderError> {
    // UTF-8 checked once for the whole line, so the parse reads it as a `str` without checking
    // each string again.
    if let Ok(text) = std::str::from_utf8(&line)
        && let Ok(exact) = serde_json::from_str::<ExactRecord>(text)
    {
        return Ok(RecordLine {
            person_id: PersonId(exact.person_id),
            json: line,
        });
    }
    serde_json::from_slice::<AudienceRecord>(&line)
        .map(|record| RecordLine::encode(&record))
        .map_err(|e| ProviderError::protocol(format!("export JSON Lines: {e}")))
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

fn push_line(ready: &mut VecDeque<Vec<u8>>, line: &[u8]) {
    let line = line.trim_ascii();
    if !line.is_empty() {
        ready.push_back(line.to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_record_line_is_kept_as_it_came() {
        let line = br#"{"identifiers": {"email": {"email1": "a\u0040x.io"}}, "person_id": 7}"#;
        let kept = record_line(line.to_vec()).unwrap();
        assert_eq!(kept.person_id, PersonId(7));
        assert_eq!(kept.json, line.to_vec());
        assert_eq!(
            kept.decode().unwrap().identifiers["email"]["email1"],
            "a@x.io"
        );
    }

    #[test]
    fn a_line_with_more_than_a_record_is_written_again_without_it() {
        let line =
            br#"{"person_id": 7, "score": 0.5, "identifiers": {"email": {"email1": "a@x.io"}}}"#;
        let rewritten = record_line(line.to_vec()).unwrap();
        assert_eq!(
            rewritten.json,
            br#"{"person_id":7,"identifiers":{"email":{"email1":"a@x.io"}}}"#.to_vec()
        );
        let as_string = record_line(br#"{"person_id": "7"}"#.to_vec()).unwrap();
        assert_eq!(
            as_string.json,
            br#"{"person_id":7,"identifiers":{}}"#.to_vec()
        );
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
            let err = record_line(line.to_vec()).unwrap_err();
            assert!(matches!(err, ProviderError::Protocol { .. }), "{err:?}");
        }
    }
}
