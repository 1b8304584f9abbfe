/**
 * The library used from another project, as the README's "Use it as a library" invites: a program
 * in a directory of its own, with its own `deno.json` and nothing else configured, imports a
 * clone's `mod.ts` by path and runs a producer and a worker, with only the permissions the README
 * says a library program needs.
 */
import assert from "node:assert/strict";
import type { TaskEvent } from "../lib/core/events.ts";
import { Scenario } from "../testing/scenario.ts";

const MOD = new URL("../mod.ts", import.meta.url).href;

/** The README's permissions for a program that uses the library and reads AMQP_URL itself. */
const PERMISSIONS = ["--allow-net", "--allow-env=AMQP_URL", "--allow-sys=hostname"];

/** A user's program: enqueues one task, runs a worker until its handler has seen it. */
const PROGRAM = `import { createProducer, createWorker } from "${MOD}";

type Resize = { image: string; width: number };

const url = Deno.env.get("AMQP_URL");
const queue = Deno.args[0];
const seen = Promise.withResolvers<Resize>();
await using worker = await createWorker<Resize>({
  url,
  queue,
  name: "outside",
  handler: (task) => seen.resolve(task.payload),
});
await using producer = await createProducer({ url, queue });
await producer.enqueue({ image: "cat.png", width: 200 }, { id: "cat.png@200" });
console.log(JSON.stringify(await seen.promise));
`;

Deno.test({
  name: "a program in another project imports mod.ts by path, enqueues a task and runs it in a " +
    "worker, with its own deno.json and the README's permissions",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t) {
    // Tried: the bare specifiers of lib/ resolved only through this repository's import map
    // ("Import "amqplib" not a dependency").
    await using scenario = await Scenario.open();
    const dir = await Deno.makeTempDir({ prefix: "tareas-user-" });
    try {
      await Deno.writeTextFile(`${dir}/deno.json`, "{}\n");
      await Deno.writeTextFile(`${dir}/main.ts`, PROGRAM);
      await scenario.step(t, "deno run main.ts runs the task and exits 0", async () => {
        const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
          args: ["run", ...PERMISSIONS, "main.ts", scenario.queue],
          cwd: dir,
          env: { AMQP_URL: scenario.url },
          stdin: "null",
        }).output();
        const text = new TextDecoder();
        assert.equal(code, 0, text.decode(stderr));
        assert.deepEqual(JSON.parse(text.decode(stdout)), { image: "cat.png", width: 200 });
        const done = await scenario.waitForEvent<TaskEvent>(
          (e) => e.type === "task.completed" && e.taskId === "cat.png@200",
          "the completion of the program's task",
        );
        assert.equal(done.worker, "outside");
        assert.equal(await scenario.ready(), 0, "acked: nothing left in the queue");
      });
      await scenario.step(t, "deno check main.ts type-checks it there too", async () => {
        const { code, stderr } = await new Deno.Command(Deno.execPath(), {
          args: ["check", "main.ts"],
          cwd: dir,
          stdin: "null",
        }).output();
        assert.equal(code, 0, new TextDecoder().decode(stderr));
      });
      await scenario.step(
        t,
        "every entry point of deno.json's exports type-checks there",
        async () => {
          // The subpath modules pin npm packages of their own (prom-client, croner, ...).
          const { exports } = JSON.parse(
            await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
          ) as { exports: Record<string, string> };
          const imports = Object.values(exports).map((path, i) =>
            `export * as m${i} from "${new URL(`../${path}`, import.meta.url).href}";`
          );
          await Deno.writeTextFile(`${dir}/all.ts`, imports.join("\n") + "\n");
          const { code, stderr } = await new Deno.Command(Deno.execPath(), {
            args: ["check", "all.ts"],
            cwd: dir,
            stdin: "null",
          }).output();
          assert.equal(code, 0, new TextDecoder().decode(stderr));
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    scenario.pass();
  },
});
