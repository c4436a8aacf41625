import assert from "node:assert/strict";
import { storeTest, uniqueName } from "./_helpers.ts";
import { type ChildResult, runTogether, sibling } from "./_spawn.ts";

const CHILD = sibling("./_instance_child", import.meta.url);
const INSTANCES = 8;
const LOAD_MILLIS = 10_000;
const BACKLOG = 20_000;

function assertAllSucceeded(results: ChildResult[]): void {
  for (const [i, result] of results.entries()) {
    assert.equal(
      result.code,
      0,
      `instance ${i} failed (exit ${result.code}):\n${result.stdout}${result.stderr}`,
    );
  }
}

storeTest(
  "8 processes pruning one table never run two prune DELETEs at once",
  async ({ sql, schema, table }) => {
    // Statement triggers log when each DELETE on the table starts and ends and
    // how many rows it removed. The children only set and get, so every DELETE
    // is a prune.
    const log = `"${schema}"."prune_log"`;
    await sql.unsafe(`CREATE TABLE ${log} (
      pid int NOT NULL DEFAULT pg_backend_pid(),
      phase text NOT NULL,
      at timestamptz NOT NULL DEFAULT clock_timestamp(),
      rows bigint)`);
    await sql.unsafe(`CREATE FUNCTION "${schema}".prune_started()
      RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
        INSERT INTO ${log} (phase) VALUES ('start'); RETURN NULL; END$$`);
    await sql.unsafe(`CREATE FUNCTION "${schema}".prune_ended()
      RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
        INSERT INTO ${log} (phase, rows) SELECT 'end', count(*) FROM gone;
        RETURN NULL; END$$`);
    await sql.unsafe(`CREATE TRIGGER prune_started BEFORE DELETE ON ${table}
      FOR EACH STATEMENT EXECUTE PROCEDURE "${schema}".prune_started()`);
    await sql.unsafe(`CREATE TRIGGER prune_ended AFTER DELETE ON ${table}
      REFERENCING OLD TABLE AS gone
      FOR EACH STATEMENT EXECUTE PROCEDURE "${schema}".prune_ended()`);
    // A backlog, so that the first prunes run many batches back to back:
    // without the lock, instances pruning together would overlap here.
    await sql.unsafe(`INSERT INTO ${table} (sid, sess, expire)
      SELECT 'old-' || i, '{}', now() - interval '1 hour'
      FROM generate_series(1, ${BACKLOG}) AS i`);

    const results = await runTogether(
      INSTANCES,
      CHILD,
      ["load", schema, String(LOAD_MILLIS)],
      { timeoutMs: LOAD_MILLIS + 60_000 },
    );
    assertAllSucceeded(results);

    // Walk the starts and ends in time order: more than one DELETE in flight
    // means two instances pruned at once.
    const [overlap] = await sql.unsafe(`
      SELECT coalesce(max(in_flight), 0)::int AS most
      FROM (SELECT sum(CASE phase WHEN 'start' THEN 1 ELSE -1 END)
              OVER (ORDER BY at, phase) AS in_flight FROM ${log}) AS walk`);
    assert.equal(overlap.most, 1, "at most one prune DELETE at a time");

    const [figures] = await sql.unsafe(`
      SELECT count(*)::int AS deletes,
             (count(*) FILTER (WHERE rows > 0))::int AS useful,
             coalesce(sum(rows), 0)::int AS rows,
             count(DISTINCT pid)::int AS backends
      FROM ${log} WHERE phase = 'end'`);
    const [{ left }] = await sql.unsafe(
      `SELECT count(*)::int AS left FROM ${table} WHERE sid LIKE 'old-%'`,
    );
    assert.equal(left, 0, "the backlog was pruned");
    assert.ok(figures.rows >= BACKLOG);
    const calls = results.reduce(
      (sum, r) => sum + JSON.parse(r.stdout.trim().split("\n").at(-1)!).calls,
      0,
    );
    console.log(
      `${INSTANCES} instances, ${
        LOAD_MILLIS / 1000
      } s, ${calls} get/set calls, backlog ${BACKLOG}: ` +
        `${figures.deletes} prune DELETEs from ${figures.backends} backends, ` +
        `${figures.useful} deleted rows (${figures.rows} rows in all)`,
    );
  },
);

storeTest(
  "createTableIfMissing from 8 processes at once: one creates, none fails",
  async ({ sql, schema }) => {
    // The stores create a schema that does not exist yet; an event trigger
    // logs every object really created in it (IF NOT EXISTS that finds the
    // object creates nothing and logs nothing).
    const target = uniqueName("fresh");
    const log = `"${schema}"."ddl_log"`;
    const trigger = `${target}_ddl`;
    await sql.unsafe(`CREATE TABLE ${log} (
      pid int NOT NULL DEFAULT pg_backend_pid(), command text, object text)`);
    await sql.unsafe(`CREATE FUNCTION "${schema}".log_ddl()
      RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN
        INSERT INTO ${log} (command, object)
        SELECT command_tag, object_identity FROM pg_event_trigger_ddl_commands()
        WHERE schema_name = '${target}' OR object_identity = '${target}';
      END$$`);
    await sql.unsafe(`CREATE EVENT TRIGGER "${trigger}" ON ddl_command_end
      EXECUTE PROCEDURE "${schema}".log_ddl()`);
    try {
      const results = await runTogether(INSTANCES, CHILD, ["create", target]);
      assertAllSucceeded(results);

      const created = await sql.unsafe(
        `SELECT command, object, pid FROM ${log} ORDER BY command, object`,
      );
      assert.deepEqual(
        created.map((row) => `${row.command} ${row.object}`),
        [
          `CREATE INDEX ${target}."IDX_session_expire"`,
          `CREATE INDEX ${target}.session_pkey`,
          `CREATE SCHEMA ${target}`,
          `CREATE TABLE ${target}.session`,
        ],
      );
      assert.equal(
        new Set(created.map((row) => row.pid)).size,
        1,
        "one connection created everything",
      );
      const [{ sessions }] = await sql.unsafe(
        `SELECT count(*)::int AS sessions FROM "${target}"."session"`,
      );
      assert.equal(sessions, 1, "every instance wrote the same session id");
    } finally {
      await sql.unsafe(`DROP EVENT TRIGGER IF EXISTS "${trigger}"`);
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${target}" CASCADE`);
    }
  },
  { createTable: false },
);
