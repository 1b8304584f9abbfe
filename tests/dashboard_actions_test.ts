/**
 * The dashboard's actions change the dead letters: every one needs the token. A check skipped on
 * any one of them (it happened to `/api/requeue-all`) must fail here.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { openDeadLetters } from "../lib/operate/dead_letters.ts";
import { deadQueue } from "../lib/core/topology.ts";
import { Scenario } from "../testing/scenario.ts";
import { spawnDashboard, StateStream } from "./_dashboard.ts";

const PAGE_SCRIPT = new URL("../lib/operate/dashboard/page/app.js", import.meta.url);

/**
 * The count of `<queue>.dead` and the ids of its messages, sorted, as `dead --list` reads them
 * (each moved through and back into place: nothing is given back to the queue). Reading moves
 * the count for a moment: the dashboard must not be running, or it would list them too.
 */
async function deadLetters(url: string, queue: string): Promise<{ count: number; ids: string[] }> {
  await using dead = await openDeadLetters({ url, queue });
  const { total, letters } = await dead.list();
  return { count: total, ids: letters.map((letter) => letter.id).sort() };
}

/** The count of `<queue>.dead`, from a passive declare (which leaves the queue alone). */
async function deadCount(scenario: Scenario): Promise<number> {
  return (await scenario.channel.checkQueue(deadQueue(scenario.queue))).messageCount;
}

Deno.test({
  name: "every dashboard action is refused without the token and with a wrong one, and the " +
    "dead letters stay as they were",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t) {
    await using scenario = await Scenario.open();
    const ids = ["dead-1", "dead-2", "dead-3"];
    await scenario.step(t, "three messages are dead-lettered", async () => {
      const worker = await scenario.startWorker("strict", ["--time-scale", "0"]);
      for (const id of ids) {
        await scenario.publish(Buffer.from("not json at all"), { messageId: id });
      }
      for (const id of ids) {
        await scenario.waitForEvent(
          (e) => e.type === "task.dead" && "taskId" in e && e.taskId === id,
          `task.dead of ${id}`,
        );
      }
      // No worker left: a requeued letter would wait in the work queue.
      worker.kill("SIGTERM");
      await worker.exit();
    });

    const before = { count: 3, ids };
    await scenario.step(t, "they are in the dead-letter queue", async () => {
      assert.deepEqual(await deadLetters(scenario.url, scenario.queue), before);
    });

    const actions: Record<string, unknown> = {
      "/api/requeue": { id: "dead-2" },
      "/api/requeue-all": {},
      "/api/purge": {},
    };
    await scenario.step(t, "the actions tried are every action of the page", async () => {
      const script = await Deno.readTextFile(PAGE_SCRIPT);
      const used = new Set([...script.matchAll(/\bact\("([^"]+)"/g)].map((match) => match[1]));
      assert.deepEqual([...used].sort(), Object.keys(actions).sort());
    });

    let dashboard = await spawnDashboard(scenario);
    const post = async (path: string, headers: Record<string, string>, body: unknown) => {
      const response = await fetch(new URL(path, dashboard.url), {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: await response.json() };
    };
    {
      await using page = await StateStream.open(dashboard.url);
      // Listing moves each letter through its queue: counting waits until it is done. After
      // that, the dashboard lists them again only once their count changes.
      await page.waitForDead((dead) => dead.total === 3, "3 dead letters");
    }

    const tokens: [string, Record<string, string>][] = [
      ["no token", {}],
      ["an empty token", { "x-tareas-token": "" }],
      ["a wrong token", { "x-tareas-token": "wrong-token" }],
      ["the token less its last character", { "x-tareas-token": dashboard.token.slice(0, -1) }],
      ["the token and one more character", { "x-tareas-token": `${dashboard.token}A` }],
      ["the token in another header", { authorization: `Bearer ${dashboard.token}` }],
    ];
    for (const [path, body] of Object.entries(actions)) {
      await scenario.step(t, `${path} is refused without the right token`, async () => {
        for (const [what, headers] of tokens) {
          const reply = await post(path, headers, body);
          assert.equal(reply.status, 403, `${path} with ${what}: ${JSON.stringify(reply.body)}`);
          assert.equal(reply.body.ok, false);
          assert.equal(await deadCount(scenario), 3, `${path} with ${what} left 3 dead letters`);
        }
        // Other methods are no actions at all, token or not.
        for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
          const response = await fetch(new URL(path, dashboard.url), {
            method,
            headers: { "x-tareas-token": dashboard.token },
            ...(method === "GET" ? {} : { body: JSON.stringify(body) }),
          });
          await response.body?.cancel();
          assert.ok(response.status >= 400, `${method} ${path}: ${response.status}`);
          assert.equal(await deadCount(scenario), 3, `${method} ${path} left 3 dead letters`);
        }
      });
    }

    await scenario.step(t, "the dead letters are the same three", async () => {
      dashboard.child.kill("SIGTERM");
      await dashboard.child.exit();
      assert.deepEqual(await deadLetters(scenario.url, scenario.queue), before);
    });

    await scenario.step(t, "with the token, the same requests do act", async () => {
      dashboard = await spawnDashboard(scenario);
      await using page = await StateStream.open(dashboard.url);
      await page.waitForDead((dead) => dead.total === 3, "3 dead letters");
      const token = { "x-tareas-token": dashboard.token };
      let listed = page.waitForNextDead((dead) => dead.total === 2, "2 dead letters");
      assert.equal((await post("/api/requeue", token, actions["/api/requeue"])).status, 200);
      assert.deepEqual((await listed).letters.map((letter) => letter.id).sort(), [
        "dead-1",
        "dead-3",
      ]);
      listed = page.waitForNextDead((dead) => dead.total === 0, "no dead letter");
      assert.equal((await post("/api/requeue-all", token, {})).status, 200);
      await listed;
      assert.equal(await deadCount(scenario), 0);
      assert.equal(await scenario.ready(), 3, "the three are back in the work queue");
    });
    scenario.pass();
  },
});
