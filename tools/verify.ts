/**
 * `deno task verify`: proves on your broker that a task survives the loss of whatever runs it.
 * See `deno task verify --help` and docs/verify.md.
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };
import { onStopSignals, runMain } from "../lib/cli/main.ts";
import { parseVerifyArgs, VERIFY_HELP, type VerifyConfig } from "../lib/operate/verify/config.ts";
import { runVerify, workerCommand } from "../lib/operate/verify/mod.ts";
import { renderReport } from "../lib/operate/verify/report.ts";

const ROOT = new URL("../", import.meta.url).pathname;

async function verify(config: VerifyConfig): Promise<number> {
  const stop = new AbortController();
  const signals = onStopSignals(() => {
    say("Ctrl-C: stopping the workers and deleting the queue (again to exit at once)");
    stop.abort();
  }, () => Deno.exit(1)); // The workers' watchdog and private nodes' unload handlers clean up.
  try {
    const report = await runVerify({
      ...config,
      worker: workerCommand(denoJson.tasks.work, ROOT),
      tareasVersion: denoJson.version,
      signal: stop.signal,
      onNarrate: say,
    });
    console.log(config.json ? JSON.stringify(report, null, 2) : renderReport(report).join("\n"));
    return report.verdict.ok ? 0 : 1;
  } finally {
    signals.remove();
  }
}

/** Progress goes to stderr: stdout is the report alone (JSON with --json). */
function say(line: string): void {
  console.error(`verify: ${line}`);
}

await runMain("verify", {
  parse: () => parseVerifyArgs(Deno.args),
  help: VERIFY_HELP,
  run: verify,
  logLevel: "error",
});
