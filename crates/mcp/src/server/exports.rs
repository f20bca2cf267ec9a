//! Export files handed out by URL, kept for a TTL and then answered with 410 Gone, the way the
//! upstream's presigned URLs expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub(crate) struct ExportStore {
    ttl: Duration,
    files: Mutex<HashMap<String, ExportFile>>,
}

#[derive(Clone)]
pub(crate) struct ExportFile {
    pub(crate) body: Bytes,
    pub(crate) content_type: &'static str,
    created: Instant,
}

pub(crate) enum Lookup {
    Found(ExportFile),
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

    pub(crate) fn put(&self, body: Vec<u8>, content_type: &'static str) -> String {
        let token = crate::server::random_token();
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let forget_after = self.ttl.saturating_mul(TOMBSTONE_FACTOR);
        files.retain(|_, f| f.created.elapsed() < forget_after);
        // Expired bodies are dropped at once; only the token stays to answer 410.
        for f in files.values_mut() {
            if f.created.elapsed() >= self.ttl {
                f.body = Bytes::new();
            }
        }
        files.insert(
            token.clone(),
            ExportFile {
                body: Bytes::from(body),
                content_type,
                created: Instant::now(),
            },
        );
        token
    }

    pub(crate) fn get(&self, token: &str) -> Lookup {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        match files.get(token) {
            Some(f) if f.created.elapsed() < self.ttl => Lookup::Found(f.clone()),
            Some(_) => Lookup::Expired,
            None => Lookup::Unknown,
        }
    }
}
