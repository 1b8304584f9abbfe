import assert from "node:assert/strict";
import { parseWorkerArgs, type WorkerConfig } from "../cli/config.ts";
import { UsageError } from "./errors.ts";
import {
  checkNumber,
  checkPrefetch,
  checkQueue,
  NUMBER_RULES,
  type NumberOption,
} from "./options.ts";

/** The worker config field each option's flag fills. */
const FIELDS: Record<NumberOption, keyof WorkerConfig> = {
  heartbeat: "heartbeat",
  concurrency: "concurrency",
  prefetch: "prefetch",
  maxAttempts: "maxAttempts",
  retryDelay: "retryDelayMs",
  taskTimeout: "taskTimeoutMs",
  maxBody: "maxBodyBytes",
  timeScale: "timeScale",
};

function refused(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof UsageError, String(error));
    assert.match(error.message, message);
    assert.ok(!error.message.includes("\n"), "one line");
    return true;
  });
}

Deno.test("a flag and its library option accept the same range and refuse alike", async (t) => {
  for (
    const [option, rule] of Object.entries(NUMBER_RULES) as [
      NumberOption,
      typeof NUMBER_RULES[NumberOption],
    ][]
  ) {
    await t.step(`${option} / --${rule.flag}`, () => {
      const scale = "scale" in rule ? rule.scale : 1;
      // prefetch must be at least concurrency: give both when testing concurrency's top.
      const extra = option === "concurrency" ? ["--prefetch", String(rule.max)] : [];
      for (const value of [rule.min, rule.max]) {
        const config = parseWorkerArgs([`--${rule.flag}`, String(value / scale), ...extra], {});
        assert.ok(config !== "help");
        assert.equal(config[FIELDS[option]], value, `--${rule.flag} ${value / scale}`);
        assert.equal(checkNumber(option, value), value, `${option} ${value}`);
      }
      const tooBig = rule.max + scale;
      const range = `from ${rule.min / scale} to ${rule.max / scale}`;
      refused(
        () => parseWorkerArgs([`--${rule.flag}`, String(tooBig / scale)], {}),
        new RegExp(`^Invalid --${rule.flag} "${tooBig / scale}": expected a .*number ${range}`),
      );
      refused(
        () => checkNumber(option, tooBig),
        new RegExp(
          `^Invalid ${option} ${tooBig}: expected a .*number from ${rule.min} to ${rule.max}`,
        ),
      );
      refused(() => checkNumber(option, Number.NaN), new RegExp(`^Invalid ${option} NaN`));
      assert.equal(checkNumber(option, undefined), rule.fallback, "the default");
    });
  }
});

Deno.test("prefetch below concurrency and reserved queue names are refused by both", () => {
  refused(() => checkPrefetch(1, 2), /^Invalid prefetch 1: it must be at least concurrency \(2\)$/);
  refused(
    () => parseWorkerArgs(["--prefetch", "1", "--concurrency", "2"], {}),
    /^Invalid --prefetch 1: it must be at least --concurrency \(2\)$/,
  );
  refused(() => checkQueue("amq.gen-x"), /^Invalid queue "amq.gen-x": expected 1 to 200/);
  refused(() => parseWorkerArgs(["--queue", "amq.x"], {}), /^Invalid --queue "amq.x": expected 1/);
});
