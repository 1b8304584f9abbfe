/**
 * The library's examples run as written: every `ts` block of README.md and docs/tasks.md with a
 * `// prints:` comment is a whole program, run against the real broker with `--allow-net` only
 * (what the README says a library program needs), on a fresh queue. It must exit 0 and print,
 * in order, what its `// prints:` comments say.
 */
import assert from "node:assert/strict";
import { Scenario, within } from "../testing/scenario.ts";

const ROOT = new URL("../", import.meta.url);
const PAGES = ["README.md", "docs/tasks.md"];

/** A runnable example: where it is, its code, and the lines it must print. */
interface Example {
  where: string;
  code: string;
  prints: string[];
}

/** The `ts` blocks of a page that say what they print. */
function examples(path: string): Example[] {
  const text = Deno.readTextFileSync(new URL(path, ROOT));
  const found: Example[] = [];
  for (const match of text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)) {
    const code = match[1]!;
    const prints = [...code.matchAll(/\/\/ prints: (.*)$/gm)].map((m) => m[1]!.trim());
    if (prints.length === 0) continue;
    const line = text.slice(0, match.index).split("\n").length;
    found.push({ where: `${path}:${line}`, code, prints });
  }
  return found;
}

/**
 * The example on the scenario's broker and queue: every `queue: "name"` of its options (one name
 * per example) becomes the scenario's, with its `url`.
 */
function onScenario(example: Example, scenario: Scenario): string {
  const names = new Set([...example.code.matchAll(/queue: "([^"]+)"/g)].map((m) => m[1]));
  assert.equal(names.size, 1, `${example.where}: one queue name per example, found ${[...names]}`);
  return example.code.replaceAll(
    /queue: "[^"]+"/g,
    `url: ${JSON.stringify(scenario.url)}, queue: ${JSON.stringify(scenario.queue)}`,
  );
}

const ALL = PAGES.flatMap(examples);

Deno.test("README.md and docs/tasks.md have the five features' examples", () => {
  assert.ok(ALL.length >= 5, `${ALL.length} runnable examples`);
  for (const word of ["handlers:", "delay:", "call(", "progress(", "PermanentError("]) {
    assert.ok(ALL.some((e) => e.code.includes(word)), `an example with ${word}`);
  }
});

for (const example of ALL) {
  Deno.test({
    name: `the example at ${example.where} prints what it says`,
    sanitizeOps: true,
    sanitizeResources: true,
    async fn() {
      await using scenario = await Scenario.open();
      // In the repository's root, so that `./mod.ts` is tareas, as in the docs.
      const file = await Deno.makeTempFile({
        dir: ROOT.pathname,
        prefix: ".example-",
        suffix: ".ts",
      });
      try {
        await Deno.writeTextFile(file, onScenario(example, scenario));
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "--check", "--allow-net", file],
          cwd: ROOT.pathname,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const { code, stdout, stderr } = await within(child.output(), 60_000, example.where);
        const text = new TextDecoder();
        const output = `${text.decode(stdout)}${text.decode(stderr)}`;
        assert.equal(code, 0, output);
        const printed = text.decode(stdout).split("\n").filter((line) => line !== "");
        assert.deepEqual(printed, example.prints, output);
      } finally {
        await Deno.remove(file);
      }
      scenario.pass();
    },
  });
}
