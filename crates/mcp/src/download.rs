//! Fetching an export the upstream handed out as a presigned URL. The URL is a credential of
//! sorts (its query signs the download): it never goes into an error message or a log.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use icp_contract::{ExportFormat, ProviderError};

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

/// The export's rows as they arrive. JSON Lines are parsed line by line without holding the
/// file; JSON and CSV have no row boundary a stream can trust, so they are read whole first.
pub(crate) fn rows<T: ExportRow>(
    resp: reqwest::Response,
    format: ExportFormat,
) -> BoxStream<'static, Result<T, ProviderError>> {
    if format != ExportFormat::Jsonl {
        return stream::once(read_all::<T>(resp, format))
            .flat_map(|r| match r {
                Ok(rows) => stream::iter(rows.into_iter().map(Ok)).boxed(),
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
                let row = serde_json::from_slice::<T>(&line)
                    .map_err(|e| ProviderError::protocol(format!("export JSON Lines: {e}")));
                return Some((row, st));
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
                    while let Some(len) = st.buf[start..].iter().position(|b| *b == b'\n') {
                        push_line(&mut st.ready, st.buf[start..start + len + 1].to_vec());
                        start += len + 1;
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
                    push_line(&mut st.ready, rest);
                }
            }
        }
    })
    .boxed()
}

fn push_line(ready: &mut VecDeque<Vec<u8>>, line: Vec<u8>) {
    if !line.iter().all(u8::is_ascii_whitespace) {
        ready.push_back(line);
    }
}
