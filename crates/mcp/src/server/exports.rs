//! Export files handed out by URL, kept for a TTL and then answered with 410 Gone, the way the
//! upstream's presigned URLs expire.
//!
//! An audience export is not written when `find_persons` answers: the entry keeps the request
//! that selected it and the file is written as it is downloaded. The served population does not
//! change while the server runs, so every download of a URL gives the same file; and the server
//! holds a few bytes per export instead of the whole file (a reach audience of a large
//! population is hundreds of megabytes) for as long as the URL lives.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use icp_contract::{ExportFormat, FindPersonsRequest};

use super::token::random_token;

pub(crate) struct ExportStore {
    ttl: Duration,
    files: Mutex<HashMap<String, ExportFile>>,
}

/// What a URL serves.
#[derive(Clone)]
pub(crate) enum ExportBody {
    /// A file written when the call was answered.
    Written {
        bytes: Bytes,
        content_type: &'static str,
    },
    /// An audience, written as it is downloaded.
    Audience {
        request: FindPersonsRequest,
        format: ExportFormat,
    },
}

struct ExportFile {
    /// `None` once expired: only the token stays, to answer 410.
    body: Option<ExportBody>,
    created: Instant,
}

pub(crate) enum Lookup {
    Found(ExportBody),
    Expired,
    Unknown,
}

/// How long an expired file's token is remembered (to answer 410 rather than 404) before it is
/// forgotten altogether.
const TOMBSTONE_FACTOR: u32 = 4;

impl ExportStore {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            files: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn put(&self, body: ExportBody) -> String {
        let token = random_token();
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let forget_after = self.ttl.saturating_mul(TOMBSTONE_FACTOR);
        files.retain(|_, f| f.created.elapsed() < forget_after);
        // Expired bodies are dropped at once; only the token stays to answer 410.
        for f in files.values_mut() {
            if f.created.elapsed() >= self.ttl {
                f.body = None;
            }
        }
        files.insert(
            token.clone(),
            ExportFile {
                body: Some(body),
                created: Instant::now(),
            },
        );
        token
    }

    pub(crate) fn get(&self, token: &str) -> Lookup {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        match files.get(token) {
            Some(ExportFile {
                body: Some(body),
                created,
            }) if created.elapsed() < self.ttl => Lookup::Found(body.clone()),
            Some(_) => Lookup::Expired,
            None => Lookup::Unknown,
        }
    }
}
