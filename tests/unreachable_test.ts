/**
 * Start-up across a list of broker URLs none of which answers: an overall deadline, and short
 * lines whatever the length of the list.
 */
import assert from "node:assert/strict";
import { START_TIMEOUT_MS } from "../lib/core/connection.ts";
import { Child, freshQueue } from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/** Longest line we accept from a command that cannot reach a list of 1,001 nodes. */
const MAX_LINE = 300;

Deno.test({
  name: "a worker given 1,001 unreachable nodes gives up within the start-up deadline, in short " +
    "lines, and exit 1",
  ...options,
  async fn() {
    // Tried: 1,000 nodes that refuse at once (loopback addresses 127.0.x.y on a port nothing
    // listens on), and one that takes TCP connections but never answers, so that each attempt
    // there lasts the whole connect timeout.
    const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const holding = (async () => {
      try {
        for await (const conn of silent) held.push(conn);
      } catch {
        // The listener was closed.
      }
    })();
    const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const closedPort = free.addr.port;
    free.close();
    const urls = Array.from({ length: 1_000 }, (_, i) => {
      const host = `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
      return `amqp://guest:hunter2-S3CRET@${host}:${closedPort}`;
    });
    urls.splice(500, 0, `amqp://guest:hunter2-S3CRET@127.0.0.1:${silent.addr.port}`);

    const started = performance.now();
    await using worker = new Child("worker", "work", ["--queue", freshQueue("unreachable")], {
      AMQP_URL: urls.join(","),
      LOG_LEVEL: "info",
    });
    try {
      const margin = 10_000; // Starting deno task and the worker, and the attempt in progress.
      const status = await worker.exit(START_TIMEOUT_MS + margin);
      const seconds = (performance.now() - started) / 1000;
      assert.equal(status.code, 1, worker.output());
      const long = worker.lines.filter((line) => line.length > MAX_LINE);
      assert.deepEqual(long.map((line) => line.length), [], "every line is short");
      assert.doesNotMatch(worker.lines.join("\n"), /S3CRET/);
      assert.match(
        worker.lines.find((line) => line.includes("retrying")) ?? "",
        /Cannot reach amqp:\/\/guest:\*\*\*@127\.0\.\d+\.\d+:\d+ and 1000 more nodes \(.+\); retrying$/,
      );
      assert.match(
        worker.lines.at(-1)!,
        new RegExp(
          "^worker: Cannot reach the broker at amqp://guest:\\*\\*\\*@127\\.0\\.\\d+\\.\\d+:\\d+ " +
            `and 1000 more nodes within ${START_TIMEOUT_MS / 1000} s: .+$`,
        ),
      );
      console.log(`Gave up after ${seconds.toFixed(1)} s (deadline ${START_TIMEOUT_MS / 1000} s)`);
    } catch (error) {
      console.error(worker.output().slice(0, 5_000));
      throw error;
    } finally {
      silent.close();
      await holding;
      for (const conn of held) conn.close();
    }
  },
});
