//! What a job accumulates while it runs: stage checkpoints, audience export chunks, trace ids.
//!
//! Worker writes take the job row first (a fenced `UPDATE … updated_at`), in the same
//! transaction as the write itself: the row lock (Postgres) or write lock (SQLite) keeps a
//! reclaim from slipping in between the fence check and the write.

use sqlx::types::Json;
use uuid::Uuid;

use crate::connect::Store;
use crate::error::{Result, StoreError};
use crate::model::{Lease, Stage, TraceRecord};
use crate::row::{TraceRow, now_millis};

/// Fenced touch of the job row inside transaction `$tx`; returns `LeaseLost` from the enclosing
/// function when the lease no longer holds.
macro_rules! hold_lease {
    ($tx:ident, $lease:expr, $now:expr) => {
        let held = bind_lease!(
            sqlx::query(concat!("UPDATE jobs SET updated_at = $4 WHERE ", fence!())),
            $lease
        )
        .bind($now)
        .execute(&mut *$tx)
        .await?
        .rows_affected();
        if held == 0 {
            return Err(StoreError::LeaseLost);
        }
    };
}

/// One finished part of a stage (see [`Store::put_part`]).
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    pub stage: Stage,
    pub seq: i64,
    pub payload: &'a str,
    /// `(tool, tool_trace_id)` of the calls that produced the part.
    pub traces: &'a [(String, String)],
    /// The job's progress document with the part counted; `None` leaves it as it is.
    pub progress: Option<&'a serde_json::Value>,
}

/// Inserts one trace id inside transaction `$tx`.
macro_rules! insert_trace {
    ($tx:ident, $lease:expr, $stage:expr, $tool:expr, $id:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO job_traces (job_id, stage, tool, tool_trace_id, at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind($lease.job_id)
        .bind($stage.as_str())
        .bind($tool)
        .bind($id)
        .bind($now)
        .execute(&mut *$tx)
        .await?;
    };
}

impl Store {
    /// Stores (or replaces) checkpoint `seq` of `stage`.
    pub async fn put_checkpoint(
        &self,
        lease: &Lease,
        stage: Stage,
        seq: i64,
        payload: &str,
    ) -> Result<()> {
        self.put_part(
            lease,
            Part {
                stage,
                seq,
                payload,
                traces: &[],
                progress: None,
            },
        )
        .await
    }

    /// Stores one finished part of a stage in one transaction: its checkpoint, the trace ids
    /// of the calls behind it and the progress that counts it. (Three transactions were three
    /// commits, each a disk sync, per answer of the upstream.)
    pub async fn put_part(&self, lease: &Lease, part: Part<'_>) -> Result<()> {
        let packed = pack(part.payload.as_bytes());
        let now = now_millis();
        in_tx!(self, tx => {
            match part.progress {
                Some(progress) => {
                    let held = bind_lease!(
                        sqlx::query(concat!(
                            "UPDATE jobs SET progress = $4, updated_at = $5 WHERE ",
                            fence!()
                        )),
                        lease
                    )
                    .bind(Json(progress))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if held == 0 {
                        return Err(StoreError::LeaseLost);
                    }
                    append_event!(tx, lease.job_id, "progress", now);
                }
                None => {
                    hold_lease!(tx, lease, now);
                }
            }
            sqlx::query(
                "INSERT INTO job_checkpoints (job_id, stage, seq, payload, payload_lz4) \
                 VALUES ($1, $2, $3, '', $4) ON CONFLICT (job_id, stage, seq) \
                 DO UPDATE SET payload = excluded.payload, payload_lz4 = excluded.payload_lz4",
            )
            .bind(lease.job_id)
            .bind(part.stage.as_str())
            .bind(part.seq)
            .bind(&packed)
            .execute(&mut *tx)
            .await?;
            for (tool, id) in part.traces {
                insert_trace!(tx, lease, part.stage, tool, id, now);
            }
        });
        Ok(())
    }

    /// The checkpoints of one stage, by `seq`.
    pub async fn checkpoints(&self, id: Uuid, stage: Stage) -> Result<Vec<(i64, String)>> {
        let rows: Vec<(i64, String, Option<Vec<u8>>)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT seq, payload, payload_lz4 FROM job_checkpoints \
                 WHERE job_id = $1 AND stage = $2 ORDER BY seq",
            )
            .bind(id)
            .bind(stage.as_str())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(seq, plain, packed)| {
                unpack(plain, packed, || {
                    format!("checkpoint {seq} of {}", stage.as_str())
                })
                .map(|payload| (seq, payload))
            })
            .collect()
    }

    /// Stores (or replaces) chunk `chunk_no` of one strategy's audience export (see
    /// [`Store::put_export_chunks`]).
    pub async fn put_export_chunk(
        &self,
        lease: &Lease,
        strategy: &str,
        chunk_no: i64,
        body: &str,
    ) -> Result<()> {
        self.put_export_chunks(lease, strategy, &[(chunk_no, body.as_bytes())])
            .await
    }

    /// Stores (or replaces) chunks of one strategy's audience export, by chunk number, in one
    /// transaction and one statement, LZ4-compressed: JSON lines shrink about four times. A
    /// writer that fell behind hands over what piled up at once: on SQLite each statement is a
    /// round trip to the connection's thread and each commit a disk sync, which (not the bytes)
    /// had become an export's pace. The bodies are UTF-8 text, checked when read back (the
    /// writer has its lines from checked JSON and need not check them twice).
    pub async fn put_export_chunks(
        &self,
        lease: &Lease,
        strategy: &str,
        chunks: &[(i64, &[u8])],
    ) -> Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let (packed, sql) = insert_chunks(chunks);
        let now = now_millis();
        in_tx!(self, tx => {
            hold_lease!(tx, lease, now);
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(lease.job_id)
                .bind(strategy);
            for (no, bytes) in &packed {
                query = query.bind(*no).bind(bytes.as_slice());
            }
            query.execute(&mut *tx).await?;
        });
        Ok(())
    }

    /// Drops every checkpoint of one stage, when they no longer fit the stage's plan.
    pub async fn clear_checkpoints(&self, lease: &Lease, stage: Stage) -> Result<()> {
        let now = now_millis();
        in_tx!(self, tx => {
            hold_lease!(tx, lease, now);
            sqlx::query("DELETE FROM job_checkpoints WHERE job_id = $1 AND stage = $2")
                .bind(lease.job_id)
                .bind(stage.as_str())
                .execute(&mut *tx)
                .await?;
        });
        Ok(())
    }

    /// Drops every chunk of one strategy's export, before writing it again from the start.
    pub async fn clear_exports(&self, lease: &Lease, strategy: &str) -> Result<()> {
        let now = now_millis();
        in_tx!(self, tx => {
            hold_lease!(tx, lease, now);
            sqlx::query("DELETE FROM job_exports WHERE job_id = $1 AND strategy = $2")
                .bind(lease.job_id)
                .bind(strategy)
                .execute(&mut *tx)
                .await?;
        });
        Ok(())
    }

    /// One chunk of an export; `None` past the last one.
    pub async fn export_chunk(
        &self,
        id: Uuid,
        strategy: &str,
        chunk_no: i64,
    ) -> Result<Option<String>> {
        let row: Option<(String, Option<Vec<u8>>)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT body, body_lz4 FROM job_exports \
                 WHERE job_id = $1 AND strategy = $2 AND chunk_no = $3",
            )
            .bind(id)
            .bind(strategy)
            .bind(chunk_no)
            .fetch_optional(pool)
            .await?
        });
        row.map(|(plain, packed)| {
            unpack(plain, packed, || {
                format!("export chunk {chunk_no} of {strategy}")
            })
        })
        .transpose()
    }

    /// How many chunks one strategy's export has (chunk numbers as written, counted).
    pub async fn export_chunk_count(&self, id: Uuid, strategy: &str) -> Result<i64> {
        Ok(on_pool!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM job_exports WHERE job_id = $1 AND strategy = $2")
                .bind(id)
                .bind(strategy)
                .fetch_one(pool)
                .await?
        }))
    }

    /// Records an upstream call's `tool_trace_id`.
    pub async fn add_trace(
        &self,
        lease: &Lease,
        stage: Stage,
        tool: &str,
        tool_trace_id: &str,
    ) -> Result<()> {
        let now = now_millis();
        in_tx!(self, tx => {
            hold_lease!(tx, lease, now);
            insert_trace!(tx, lease, stage, tool, tool_trace_id, now);
        });
        Ok(())
    }

    /// The job's trace ids, in the order they were recorded.
    pub async fn traces(&self, id: Uuid) -> Result<Vec<TraceRecord>> {
        let rows: Vec<TraceRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT stage, tool, tool_trace_id, at FROM job_traces WHERE job_id = $1 ORDER BY id",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(TraceRecord::try_from).collect()
    }
}

/// Text as stored: LZ4, its length first.
fn pack(text: &[u8]) -> Vec<u8> {
    lz4_flex::compress_prepend_size(text)
}

/// Stored text back: unpacked when it was packed, else the plain column (rows written before
/// compression). `what` names the row for the error.
pub(crate) fn unpack(
    plain: String,
    packed: Option<Vec<u8>>,
    what: impl FnOnce() -> String,
) -> Result<String> {
    let Some(packed) = packed else {
        return Ok(plain);
    };
    lz4_flex::decompress_size_prepended(&packed)
        .map_err(|e| e.to_string())
        .and_then(|bytes| String::from_utf8(bytes).map_err(|e| e.to_string()))
        .map_err(|e| StoreError::InvalidData(format!("{} does not unpack: {e}", what())))
}

impl Store {
    /// Stores chunks of an export added to a finished job (a custom audience), in one
    /// transaction, only while the job has `succeeded`: `false` when it has not (or is gone).
    /// No lease: the job has no worker any more.
    pub async fn put_finished_export_chunks(
        &self,
        id: Uuid,
        name: &str,
        chunks: &[(i64, &[u8])],
    ) -> Result<bool> {
        if chunks.is_empty() {
            return Ok(true);
        }
        let (packed, sql) = insert_chunks(chunks);
        let stored = in_tx!(self, tx => {
            let held = sqlx::query(
                "UPDATE jobs SET updated_at = updated_at WHERE id = $1 AND status = 'succeeded'",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if held > 0 {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(id)
                    .bind(name);
                for (no, bytes) in &packed {
                    query = query.bind(*no).bind(bytes.as_slice());
                }
                query.execute(&mut *tx).await?;
            }
            held > 0
        });
        Ok(stored)
    }

    /// Drops one export of a job, whatever its state (a custom audience that did not finish).
    pub async fn delete_export(&self, id: Uuid, name: &str) -> Result<()> {
        in_tx!(self, tx => {
            sqlx::query("DELETE FROM job_exports WHERE job_id = $1 AND strategy = $2")
                .bind(id)
                .bind(name)
                .execute(&mut *tx)
                .await?;
        });
        Ok(())
    }

    /// Adds a custom audience to a succeeded job's result, in one transaction holding the job
    /// row: it is named `custom-<n>` (the next free number), the export stored under `from` is
    /// renamed to it, and `audience(name)` is appended to the result's `custom_audiences`.
    /// Answers the audience as stored; `None` when the job has not succeeded (or is gone).
    pub async fn add_custom_audience(
        &self,
        id: Uuid,
        from: &str,
        audience: impl FnOnce(&str) -> serde_json::Value,
    ) -> Result<Option<serde_json::Value>> {
        let added = in_tx!(self, tx => {
            let held = sqlx::query(
                "UPDATE jobs SET updated_at = updated_at WHERE id = $1 AND status = 'succeeded'",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if held == 0 {
                None
            } else {
                let result: Option<Json<serde_json::Value>> =
                    sqlx::query_scalar("SELECT result FROM jobs WHERE id = $1")
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?;
                let mut result = result.map(|j| j.0).unwrap_or_else(|| serde_json::json!({}));
                let n = result["custom_audiences"].as_array().map_or(0, Vec::len) + 1;
                let name = format!("custom-{n}");
                let added = audience(&name);
                sqlx::query(
                    "UPDATE job_exports SET strategy = $3 WHERE job_id = $1 AND strategy = $2",
                )
                .bind(id)
                .bind(from)
                .bind(&name)
                .execute(&mut *tx)
                .await?;
                match result["custom_audiences"].as_array_mut() {
                    Some(list) => list.push(added.clone()),
                    None => result["custom_audiences"] = serde_json::json!([added.clone()]),
                }
                sqlx::query("UPDATE jobs SET result = $2 WHERE id = $1")
                    .bind(id)
                    .bind(Json(&result))
                    .execute(&mut *tx)
                    .await?;
                Some(added)
            }
        });
        Ok(added)
    }
}

/// The chunks packed, and the statement that stores them: `($1, $2, $3, '', $4), ($1, $2, $5,
/// '', $6), …`, the job and export name bound once.
fn insert_chunks(chunks: &[(i64, &[u8])]) -> (Vec<(i64, Vec<u8>)>, String) {
    let packed: Vec<(i64, Vec<u8>)> = chunks.iter().map(|(no, body)| (*no, pack(body))).collect();
    let rows: Vec<String> = (0..packed.len())
        .map(|i| format!("($1, $2, ${}, '', ${})", 3 + 2 * i, 4 + 2 * i))
        .collect();
    let sql = format!(
        "INSERT INTO job_exports (job_id, strategy, chunk_no, body, body_lz4) VALUES {} \
         ON CONFLICT (job_id, strategy, chunk_no) \
         DO UPDATE SET body = excluded.body, body_lz4 = excluded.body_lz4",
        rows.join(", ")
    );
    (packed, sql)
}
