-- Checkpoints and audience export chunks are stored LZ4-compressed: JSON shrinks four to six
-- times, and writing (and, on a job's end, securely deleting) the bytes was most of their cost.
-- The text columns stay for rows written before; a compressed row leaves them empty.
ALTER TABLE job_checkpoints ADD COLUMN payload_lz4 BLOB;
ALTER TABLE job_exports ADD COLUMN body_lz4 BLOB;
