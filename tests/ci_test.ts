/**
 * The logic of `.ci/run`, piece by piece (its functions, sourced into bash): the summary line
 * printed whatever the tests did, deno test's exit status kept, and a lockfile that may not change.
 */
import assert from "node:assert/strict";

const RUN = new URL("../.ci/run", import.meta.url).pathname;
const options = { sanitizeOps: true, sanitizeResources: true };

/** The end of a real failing `deno test` run, colours included. */
const FAILED_LOG = `fails ... inner \x1b[0m\x1b[38;5;245m=> ./a_test.ts:2:43\x1b[0m

\x1b[0m\x1b[31mFAILED\x1b[0m | 1 passed | 1 failed (1 step) \x1b[0m\x1b[38;5;245m(57ms)\x1b[0m

\x1b[0m\x1b[1m\x1b[31merror\x1b[0m: Test failed
`;
const PASSED_LOG =
  `\x1b[0m\x1b[32mok\x1b[0m | 65 passed (114 steps) | 0 failed \x1b[0m\x1b[38;5;245m(1m49s)\x1b[0m\n`;

/** Sources `.ci/run` in `dir`, then runs `script` in bash; returns exit code and stdout lines. */
async function bash(
  dir: string,
  script: string,
): Promise<{ code: number; lines: string[]; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command("bash", {
    args: ["-c", `source "$1" && cd "$2" && ${script}`, "bash", RUN, dir],
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code, lines: text.decode(stdout).trimEnd().split("\n"), stderr: text.decode(stderr) };
}

/** Runs `.ci/run`'s run_tests with `deno` replaced by a function printing `log`, exiting `status`. */
async function runTests(log: string, status: number) {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/test.log`, log);
    return await bash(dir, `deno() { cat test.log; return ${status}; }; run_tests`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: ".ci/run prints the summary line and keeps deno test's status when tests fail",
  ...options,
  async fn() {
    const { code, lines } = await runTests(FAILED_LOG, 1);
    assert.equal(lines.at(-1), "1 passed, 1 failed");
    assert.equal(code, 1);
  },
});

Deno.test({
  name: ".ci/run prints the summary line of a passing run and exits 0",
  ...options,
  async fn() {
    const { code, lines } = await runTests(PASSED_LOG, 0);
    assert.equal(lines.at(-1), "65 passed, 0 failed");
    assert.equal(code, 0);
  },
});

Deno.test({
  name: ".ci/run says when deno test stopped before its summary, and keeps the status",
  ...options,
  async fn() {
    const { code, lines } = await runTests("error: Module not found\n", 1);
    assert.equal(lines.at(-1), "no test summary: deno test stopped before reporting (exit 1)");
    assert.equal(code, 1);
  },
});

Deno.test({
  name: ".ci/run refuses a lockfile that does not match the imports, instead of updating it",
  ...options,
  async fn(t) {
    const dir = await Deno.makeTempDir();
    try {
      // A project locked with a dependency this repository already uses (in Deno's cache).
      await Deno.writeTextFile(`${dir}/deno.json`, '{ "imports": { "yaml": "npm:yaml@2.9.1" } }');
      await Deno.writeTextFile(`${dir}/mod.ts`, 'import "yaml";\n');
      const install = await new Deno.Command(Deno.execPath(), {
        args: ["install", "--entrypoint", "mod.ts"],
        cwd: dir,
        stdin: "null",
      }).output();
      assert.equal(install.code, 0, new TextDecoder().decode(install.stderr));
      const lock = await Deno.readTextFile(`${dir}/deno.lock`);
      await t.step("an up-to-date lockfile passes", async () => {
        const { code, stderr } = await bash(dir, "frozen_lockfile");
        assert.equal(code, 0, stderr);
      });
      await t.step("an import map changed without the lockfile fails", async () => {
        await Deno.writeTextFile(`${dir}/deno.json`, '{ "imports": { "yaml": "npm:yaml@2.8.0" } }');
        const { code, stderr } = await bash(dir, "frozen_lockfile");
        assert.notEqual(code, 0);
        assert.match(stderr, /The lockfile is out of date/);
        await Deno.writeTextFile(`${dir}/deno.json`, '{ "imports": { "yaml": "npm:yaml@2.9.1" } }');
      });
      await t.step("a module importing an unlocked package fails", async () => {
        await Deno.writeTextFile(`${dir}/other.ts`, 'import "npm:amqplib@2.3.1";\n');
        const { code, stderr } = await bash(dir, "frozen_lockfile");
        assert.notEqual(code, 0);
        assert.match(stderr, /The lockfile is out of date/);
      });
      assert.equal(await Deno.readTextFile(`${dir}/deno.lock`), lock, "the lockfile is untouched");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
