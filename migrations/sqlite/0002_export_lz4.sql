-- Audience export chunks are stored LZ4-compressed (a chunk of JSON lines shrinks about four
-- times, and writing the bytes was most of storing an export). `body` stays for chunks written
-- before; a compressed chunk leaves it empty.
ALTER TABLE job_exports ADD COLUMN body_lz4 BLOB;
