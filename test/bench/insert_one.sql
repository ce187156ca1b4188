-- test/bench/insert_one.sql, included by insert.sql: one timed INSERT of
-- bench.src into bench.:tbl (emptied first, then a CHECKPOINT and a sync of
-- the kernel's dirty pages), kept as sample :key with the server's CPU time
TRUNCATE bench.:tbl;
CHECKPOINT;
\! sync
SELECT bench.timed_cpu(:'key', :'n', format('INSERT INTO bench.%I (id, email, phone, notes, created_at)
    SELECT id, email, phone, notes, created_at FROM bench.src', :'tbl'));
