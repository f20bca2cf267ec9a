//! API keys: the public id, a name, and a hash of the secret. Hashing and checking the secret is
//! the caller's business; the store never sees a key in clear.

use time::OffsetDateTime;

use crate::connect::Store;
use crate::error::Result;
use crate::model::ApiKeyRecord;
use crate::row::{from_millis, now_millis};

type KeyRow = (String, Option<String>, String, i64, Option<i64>);

fn to_record((id, name, secret_hash, created_at, revoked_at): KeyRow) -> Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id,
        name,
        secret_hash,
        created_at: from_millis(created_at)?,
        revoked_at: revoked_at.map(from_millis).transpose()?,
    })
}

impl Store {
    /// Stores a new key. `id` must be new (ids are random: a clash is a `Database` error).
    pub async fn create_api_key(
        &self,
        id: &str,
        name: Option<&str>,
        secret_hash: &str,
    ) -> Result<ApiKeyRecord> {
        let row: KeyRow = write_on_pool!(self, pool => {
            sqlx::query_as(
                "INSERT INTO api_keys (id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4) \
                 RETURNING id, name, secret_hash, created_at, revoked_at",
            )
            .bind(id)
            .bind(name)
            .bind(secret_hash)
            .bind(now_millis())
            .fetch_one(pool)
            .await?
        });
        to_record(row)
    }

    /// The key with this id, revoked or not.
    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        let row: Option<KeyRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, name, secret_hash, created_at, revoked_at FROM api_keys WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        row.map(to_record).transpose()
    }

    /// Every key, oldest first.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        let rows: Vec<KeyRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, name, secret_hash, created_at, revoked_at FROM api_keys \
                 ORDER BY created_at, id",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(to_record).collect()
    }

    /// Revokes a key from now on. Returns false when there is no such key or it was revoked
    /// already.
    pub async fn revoke_api_key(&self, id: &str, at: OffsetDateTime) -> Result<bool> {
        let revoked = write_on_pool!(self, pool => {
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(crate::row::to_millis(at))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(revoked > 0)
    }

    /// How many keys are not revoked: with none, the service runs without authentication
    /// (and only on loopback).
    pub async fn count_active_api_keys(&self) -> Result<u64> {
        let count: i64 = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL")
                .fetch_one(pool)
                .await?
        });
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
