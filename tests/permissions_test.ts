/**
 * Least privilege: each deno task runs with the permissions it needs and no more (deno.json). The
 * producer may only write its --timeline in the project's directory, and says so before it
 * publishes anything.
 */
import assert from "node:assert/strict";
import { Scenario } from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test({
  name: "deno task produce writes its timeline in the project's directory, and refuses another " +
    "place in one line before publishing",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    await scenario.step(t, "outside the project: one line, exit 2, nothing published", async () => {
      // Tried: the task had unscoped --allow-write for this one file.
      const outside = await Deno.makeTempFile({ suffix: ".svg" });
      try {
        const producer = scenario.spawnProducer(["--count", "1", "--wait", "--timeline", outside]);
        assert.equal((await producer.exit()).code, 2, producer.output());
        assert.ok(
          producer.lines.some((l) => /Cannot write --timeline .*project's directory/.test(l)),
          producer.output(),
        );
        assert.equal(await scenario.queueExists(scenario.queue), false, "nothing declared");
      } finally {
        await Deno.remove(outside);
      }
    });

    await scenario.step(t, "inside it: written, exit 0", async () => {
      await scenario.startWorker("quick", ["--time-scale", "0"]);
      const file = `timeline-test-${crypto.randomUUID().slice(0, 8)}.svg`;
      try {
        const producer = scenario.spawnProducer(["--count", "2", "--wait", "--timeline", file]);
        assert.equal((await producer.exit()).code, 0, producer.output());
        assert.match(await Deno.readTextFile(`${ROOT}${file}`), /^<svg/m);
      } finally {
        await Deno.remove(`${ROOT}${file}`).catch(() => {});
      }
    });
    scenario.pass();
  },
});
