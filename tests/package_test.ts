/**
 * The package as JSR would publish it: `deno publish --dry-run` passes (it works offline) and
 * ships the library, its licence and its documentation, not the tests, the harness or the bench.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test({
  name: "deno publish --dry-run passes and the package is the library, not the bench or the tests",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["publish", "--dry-run", "--allow-dirty"],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
    }).output();
    const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    assert.equal(code, 0, text);
    assert.doesNotMatch(text, /error\[/, "no publish error");
    // "   file:///…/README.md (35.81KB)", one line per file the package would ship.
    const shipped = [...text.matchAll(/^\s+file:\/\/(\S+) \(/gm)].map((m) =>
      m[1]!.slice(ROOT.length)
    );
    for (const needed of ["mod.ts", "LICENSE", "README.md", "deno.json"]) {
      assert.ok(shipped.includes(needed), `ships ${needed}: ${shipped.join(" ")}`);
    }
    for (const file of shipped) {
      assert.doesNotMatch(file, /^(tests|testing|bench|tools|\.ci)\/|_test\.ts$/, `ships ${file}`);
    }
  },
});
