/**
 * Preloaded into every process the benchmark spawns (`deno run --preload bench/_exit_probe.ts`):
 * when the process ends (its event loop drains or it calls `Deno.exit`), prints to stdout
 * `bench exit <epoch ms> <utime + stime in clock ticks> <VmHWM in KiB>`, so that the benchmark
 * knows the CPU time and the peak memory of a process that is gone by the time it could look.
 * A process that dies of a signal or of an uncaught error prints nothing.
 * @module
 */
import { parseCpuTicks, parseStatusKiB } from "./_procfs.ts";
import { nowMs } from "./_util.ts";

globalThis.addEventListener("unload", () => {
  try {
    const ticks = parseCpuTicks(Deno.readTextFileSync("/proc/self/stat"));
    const hwm = parseStatusKiB(Deno.readTextFileSync("/proc/self/status"), "VmHWM");
    Deno.stdout.writeSync(new TextEncoder().encode(`bench exit ${nowMs()} ${ticks} ${hwm}\n`));
  } catch {
    // Not Linux, or stdout closed: the benchmark reports the figure as not measured.
  }
});
