/**
 * What the benchmark ran on: machine, operating system, runtimes, broker and Redis versions, and
 * the pinned client packages.
 * @module
 */
import { brokerVersion } from "./_amqp.ts";
import { redisVersion } from "./bullmq.ts";
import { serverOf } from "./_procfs.ts";
import { amqpUrl, redisUrl, REPO_ROOT } from "./_util.ts";

/** The environment of one benchmark run. */
export interface Environment {
  /** When the run started, ISO 8601. */
  date: string;
  /** CPU model name. */
  cpu: string;
  /** Logical cores. */
  cores: number;
  /** Total memory, GiB. */
  memoryGiB: number;
  /** Kernel, e.g. `Linux 6.1.0`. */
  os: string;
  /** Deno, V8 and TypeScript versions. */
  deno: string;
  /** The broker's product and version, or why it is unknown. */
  broker: string;
  /** Redis's version, or why it is unknown. */
  redis: string;
  /** The broker's local process, e.g. `beam.smp, pid 2941`, when found. */
  brokerProcess?: string;
  /** Redis's local process, e.g. `redis-server, pid 2212`, when found. */
  redisProcess?: string;
  /** 1, 5 and 15-minute load averages when the run started. */
  loadAverage: number[];
  /** Pinned npm packages the benchmark uses, from deno.json. */
  packages: Record<string, string>;
  /** The checked-out commit, if any. */
  commit?: string;
}

async function readOr(path: string, fallback: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return fallback;
  }
}

async function git(args: string[]): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("git", {
      args,
      cwd: REPO_ROOT,
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

async function gitCommit(): Promise<string | undefined> {
  const commit = await git(["rev-parse", "--short", "HEAD"]);
  if (!commit) return undefined;
  const changes = await git(["status", "--porcelain", "--untracked-files=no"]);
  return changes ? `${commit} with uncommitted changes` : commit;
}

async function pinnedPackages(): Promise<Record<string, string>> {
  const imports: Record<string, string> = {};
  for (const file of ["deno.json", "bench/deno.json"]) {
    const config = JSON.parse(await readOr(`${REPO_ROOT}${file}`, "{}")) as {
      imports?: Record<string, string>;
    };
    Object.assign(imports, config.imports);
  }
  const out: Record<string, string> = {};
  for (const name of ["amqplib", "bullmq", "ioredis"]) {
    const spec = imports[name];
    if (spec) out[name] = spec.replace(/^npm:/, "");
  }
  return out;
}

function failed(error: unknown): string {
  return `unknown (${error instanceof Error ? error.message.split("\n")[0] : String(error)})`;
}

/** Collects the {@linkcode Environment} of this run. */
export async function describeEnvironment(): Promise<Environment> {
  const cpuinfo = await readOr("/proc/cpuinfo", "");
  const meminfo = await readOr("/proc/meminfo", "");
  const memKiB = Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0);
  const [broker, redis] = await Promise.all([
    brokerVersion(amqpUrl()).catch(failed),
    redisVersion().catch(failed),
  ]);
  const commit = await gitCommit();
  const [brokerProcess, redisProcess] = await Promise.all([
    serverOf(amqpUrl()),
    serverOf(redisUrl()),
  ]);
  return {
    date: new Date().toISOString(),
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    cores: navigator.hardwareConcurrency,
    memoryGiB: memKiB / 1024 / 1024,
    os: `${Deno.build.os} ${Deno.osRelease()}`,
    deno:
      `Deno ${Deno.version.deno} (V8 ${Deno.version.v8}, TypeScript ${Deno.version.typescript})`,
    broker,
    redis,
    loadAverage: Deno.loadavg(),
    packages: await pinnedPackages(),
    ...(commit ? { commit } : {}),
    ...(brokerProcess ? { brokerProcess: `${brokerProcess.name}, pid ${brokerProcess.pid}` } : {}),
    ...(redisProcess ? { redisProcess: `${redisProcess.name}, pid ${redisProcess.pid}` } : {}),
  };
}
