//! API keys: who is calling, and whether the service may answer at all.
//!
//! With at least one key in the database every `/v1` request must carry
//! `Authorization: Bearer <key>`, and a job belongs to the key that created it (its `owner`):
//! another key gets 404 for it. With no key the service runs open, and only on loopback
//! ([`Auth::check_listener`] refuses anything else), for a developer on their own machine. A
//! key created while the service runs closes it within [`OPEN_RECHECK`].

mod caller;
pub mod key;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use icp_store::Store;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

pub use caller::Caller;

use crate::problem::ApiError;

/// How long a key checked once is trusted before its row is read again: the time a revocation
/// takes to reach a running process.
const REVALIDATE_AFTER: Duration = Duration::from_secs(5);
/// While open, how often the database is asked whether a key has been created since.
const OPEN_RECHECK: Duration = Duration::from_secs(2);
/// Argon2 checks at once: each takes ~20 MiB and tens of milliseconds of a core, so a flood of
/// forged keys queues here instead of taking the machine.
const CONCURRENT_VERIFICATIONS: usize = 2;

/// A presented key already verified in this process.
struct Verified {
    key_id: String,
    checked: Instant,
}

pub struct Auth {
    store: Store,
    /// Set once any key exists; never unset while the process runs (revoking every key does not
    /// reopen a service that was closed).
    required: AtomicBool,
    last_open_check: Mutex<Option<Instant>>,
    /// SHA-256 of a whole presented key → its id, so Argon2 runs once per key and process.
    verified: Mutex<HashMap<[u8; 32], Verified>>,
    verifying: Semaphore,
}

impl Auth {
    /// Reads whether any key exists.
    pub async fn new(store: Store) -> Result<Self, icp_store::StoreError> {
        let required = store.count_active_api_keys().await? > 0;
        Ok(Self {
            store,
            required: AtomicBool::new(required),
            last_open_check: Mutex::new(Some(Instant::now())),
            verified: Mutex::new(HashMap::new()),
            verifying: Semaphore::new(CONCURRENT_VERIFICATIONS),
        })
    }

    /// Whether requests must carry a key.
    pub fn required(&self) -> bool {
        self.required.load(Ordering::Relaxed)
    }

    /// Refuses to serve a non-loopback address without a key: customer lists are personal data,
    /// and an open service on a reachable port would hand them to anyone.
    pub fn check_listener(&self, listen: SocketAddr) -> Result<(), String> {
        if self.required() || listen.ip().is_loopback() {
            return Ok(());
        }
        Err(format!(
            "refusing to listen on {listen} with no API key: anyone who can reach it could post \
             customer lists and read every job. Create a key first with \
             `icp keys create --name <name>` (against the same DATABASE_URL) and send it as \
             `Authorization: Bearer <key>`, or listen on loopback (127.0.0.1) to run without keys"
        ))
    }

    /// Who sent a request with this `Authorization` header.
    pub async fn authenticate(&self, header: Option<&HeaderValue>) -> Result<Caller, ApiError> {
        let Some(header) = header else {
            return if self.still_open().await? {
                Ok(Caller::anonymous())
            } else {
                Err(ApiError::Unauthorized(
                    "this service needs an API key: send `Authorization: Bearer <key>`".to_owned(),
                ))
            };
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "the Authorization header must read `Bearer <key>`".to_owned(),
                )
            })?;
        let presented = key::parse(token).ok_or_else(|| {
            ApiError::Unauthorized("the bearer token is not an icp API key".to_owned())
        })?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let known = {
            let cache = self.verified.lock().expect("auth cache poisoned");
            cache
                .get(&digest)
                .map(|v| (v.key_id.clone(), v.checked.elapsed() < REVALIDATE_AFTER))
        };
        if let Some((key_id, true)) = &known {
            return Ok(Caller::key(key_id.clone()));
        }

        let invalid = || ApiError::Unauthorized("this API key is not valid".to_owned());
        let record = self.store.api_key(presented.id).await?;
        let record = match record {
            Some(r) if r.revoked_at.is_none() => r,
            revoked_or_missing => {
                self.forget(&digest);
                // Only a holder of the key knows its id: saying it was revoked tells nobody else
                // anything.
                return Err(if revoked_or_missing.is_some() {
                    ApiError::Unauthorized("this API key was revoked".to_owned())
                } else {
                    invalid()
                });
            }
        };
        if known.is_none() {
            let _permit = self.verifying.acquire().await.map_err(ApiError::internal)?;
            let secret = presented.secret.to_owned();
            let hash = record.secret_hash.clone();
            let matches = tokio::task::spawn_blocking(move || key::verify(&secret, &hash))
                .await
                .map_err(ApiError::internal)?;
            if !matches {
                return Err(invalid());
            }
        }
        self.required.store(true, Ordering::Relaxed);
        self.verified.lock().expect("auth cache poisoned").insert(
            digest,
            Verified {
                key_id: record.id.clone(),
                checked: Instant::now(),
            },
        );
        Ok(Caller::key(record.id))
    }

    /// Whether the service may still answer without a key: no key when it started, and none
    /// created since (checked at most every `OPEN_RECHECK`).
    async fn still_open(&self) -> Result<bool, ApiError> {
        if self.required() {
            return Ok(false);
        }
        let due = {
            let mut last = self.last_open_check.lock().expect("auth clock poisoned");
            let due = last.is_none_or(|at| at.elapsed() >= OPEN_RECHECK);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due && self.store.count_active_api_keys().await? > 0 {
            tracing::info!("an API key now exists: requests need a key from now on");
            self.required.store(true, Ordering::Relaxed);
        }
        Ok(!self.required())
    }

    fn forget(&self, digest: &[u8; 32]) {
        self.verified
            .lock()
            .expect("auth cache poisoned")
            .remove(digest);
    }
}
