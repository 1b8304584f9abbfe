/**
 * The README and docs/ stay true to the repository: every relative link reaches a file (and a
 * heading, when it names one), every `deno task <name>` is a task of deno.json, every flag written
 * after one is a flag of that command, each flag table of the reference lists exactly its
 * command's flags, every repository path in a code span exists, and the README stays a front door.
 * No broker: the commands are only asked for their `--help`, as a person would.
 */
import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import { checkSchedules, parseScheduleFile } from "../lib/operate/scheduler/schedules.ts";

const options = { sanitizeOps: true, sanitizeResources: true };
const ROOT = new URL("../", import.meta.url);
const README_MAX_LINES = 200;

/** A markdown page of the documentation, split into what is prose and what is code. */
interface Page {
  /** Path from the repository root, e.g. `docs/reference.md`. */
  path: string;
  /** Every line, as written. */
  lines: string[];
  /** The lines outside fenced blocks, as written. */
  outside: string[];
  /** The same lines with their code spans blanked out. */
  prose: string[];
  /** The text of every inline code span, and every line of every fenced block. */
  code: string[];
  /** The headings (outside fenced blocks), as written, e.g. "## Short tasks". */
  headings: string[];
}

function readPage(path: string): Page {
  const lines = Deno.readTextFileSync(new URL(path, ROOT)).split("\n");
  const page: Page = { path, lines, outside: [], prose: [], code: [], headings: [] };
  let fence: string | undefined;
  for (const line of lines) {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence !== undefined) {
      if (marker?.startsWith(fence)) fence = undefined;
      else page.code.push(line);
    } else if (marker !== undefined) {
      fence = marker;
    } else {
      page.outside.push(line);
      if (/^#{1,6}\s/.test(line)) page.headings.push(line);
      for (const span of line.matchAll(/`([^`]+)`/g)) page.code.push(span[1]!);
      page.prose.push(line.replaceAll(/`[^`]+`/g, (span) => " ".repeat(span.length)));
    }
  }
  return page;
}

const PAGES: Page[] = [
  readPage("README.md"),
  ...[...Deno.readDirSync(new URL("docs/", ROOT))]
    .filter((entry) => entry.isFile && entry.name.endsWith(".md"))
    .map((entry) => readPage(`docs/${entry.name}`))
    .sort((a, b) => a.path.localeCompare(b.path)),
];

/** GitHub's anchors for a page's headings: lowercased, punctuation dropped, spaces as hyphens. */
function anchors(page: Page): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const heading of page.headings) {
    const text = heading.replace(/^#+\s+/, "").replaceAll(/\[([^\]]*)\]\([^)]*\)/g, "$1");
    const slug = text.toLowerCase().replaceAll(/[^\p{L}\p{N}\s_-]/gu, "").trim()
      .replaceAll(/\s/g, "-");
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    result.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return result;
}

/** Relative link targets of a page (images included), outside code. */
function links(page: Page): string[] {
  return page.prose.flatMap((line) =>
    [...line.matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!)
  ).filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

function exists(url: URL): boolean {
  try {
    Deno.statSync(url);
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name:
    "every relative link of the README and docs/ reaches a file, and a heading when it names one",
  ...options,
  fn() {
    const broken: string[] = [];
    for (const page of PAGES) {
      const base = new URL(page.path, ROOT);
      for (const target of links(page)) {
        const [path = "", fragment] = target.split("#", 2);
        const url = path === "" ? base : new URL(decodeURIComponent(path), base);
        if (!exists(url)) {
          broken.push(`${page.path}: ${target} (no such file)`);
        } else if (fragment !== undefined) {
          const relative = url.href.slice(ROOT.href.length);
          if (!relative.endsWith(".md")) {
            broken.push(`${page.path}: ${target} (a fragment of a file that is not markdown)`);
          } else if (!anchors(readPage(relative)).has(fragment)) {
            broken.push(`${page.path}: ${target} (no heading #${fragment} in ${relative})`);
          }
        }
      }
    }
    assert.deepEqual(broken, []);
  },
});

Deno.test({
  name: "the README links to every page of docs/",
  ...options,
  fn() {
    const linked = new Set(links(PAGES[0]!).map((target) => target.split("#")[0]));
    const missing = PAGES.slice(1).map((page) => page.path).filter((path) => !linked.has(path));
    assert.deepEqual(missing, []);
  },
});

Deno.test({
  name: "the README stays a front door: under 200 lines",
  ...options,
  fn() {
    const lines = PAGES[0]!.lines.join("\n").trimEnd().split("\n").length;
    assert.ok(lines < README_MAX_LINES, `README.md has ${lines} lines`);
  },
});

const TASKS: Record<string, string> = JSON.parse(
  Deno.readTextFileSync(new URL("deno.json", ROOT)),
).tasks;

/** Every `deno task <name>` the page mentions, prose and code alike. */
function taskNames(page: Page): string[] {
  return [...page.lines.join("\n").matchAll(/deno task ([a-z][\w-]*)/g)].map((m) => m[1]!);
}

Deno.test({
  name: "every deno task the README and docs/ mention is a task of deno.json",
  ...options,
  fn() {
    const unknown = PAGES.flatMap((page) =>
      taskNames(page).filter((name) => !(name in TASKS)).map((name) => `${page.path}: ${name}`)
    );
    assert.deepEqual(unknown, []);
  },
});

/** The flags a command's `--help` lists, one per line that starts with it (`-h, --help` too). */
async function acceptedFlags(name: string): Promise<Set<string>> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["task", name, "--help"],
    cwd: ROOT,
    stdin: "null",
  }).output();
  const help = new TextDecoder().decode(stdout);
  assert.equal(code, 0, `deno task ${name} --help: ${new TextDecoder().decode(stderr)}`);
  return new Set([...help.matchAll(/^[ \t]+(?:-\w, )?(--[a-z][\w-]*)/gm)].map((m) => m[1]!));
}

/**
 * The commands whose flags are checked: those deno.json runs as a program of ours. `test` and
 * `check` pass what follows them to deno itself.
 */
const PROGRAMS = Object.keys(TASKS).filter((name) => /^deno run .*\.ts$/.test(TASKS[name]!));
let flags: Promise<Map<string, Set<string>>> | undefined;

/** The flags of every program of ours, asked of each command once, all at once. */
function programFlags(): Promise<Map<string, Set<string>>> {
  flags ??= Promise.all(PROGRAMS.map(async (name) => [name, await acceptedFlags(name)] as const))
    .then((entries) => new Map(entries));
  return flags;
}

Deno.test({
  name: "every flag written after a deno task in code is one that command accepts",
  ...options,
  async fn() {
    const programs = await programFlags();
    assert.ok(programs.get("work")?.has("--concurrency"), "the worker's help lists its flags");
    const unknown: string[] = [];
    for (const page of PAGES) {
      for (const code of page.code) {
        for (const match of code.matchAll(/deno task ([a-z][\w-]*)(.*)/g)) {
          const name = match[1]!;
          // The command's own words end at a comment, a pipe, a `;`, `&&` or the next command.
          const words = match[2]!.split(/\s#|&&|\|\||[|;]|deno task /)[0]!;
          const accepted = programs.get(name);
          if (accepted === undefined) continue;
          for (const [flag] of words.matchAll(/(?<![\w-])--[a-z][\w-]*/g)) {
            if (!accepted.has(flag)) unknown.push(`${page.path}: deno task ${name} ${flag}`);
          }
        }
      }
    }
    assert.deepEqual(unknown, []);
  },
});

Deno.test({
  name: "each flag table of the reference lists exactly the flags its command accepts",
  ...options,
  async fn() {
    const programs = await programFlags();
    const reference = PAGES.find((page) => page.path === "docs/reference.md");
    assert.ok(reference, "docs/reference.md exists");
    const tables = new Map<string, Set<string>>();
    let command: string | undefined;
    for (const line of reference.outside) {
      if (/^#{1,6}\s/.test(line)) {
        command = /^#{2,4} `deno task ([a-z][\w-]*)`$/.exec(line)?.[1];
        if (command !== undefined) tables.set(command, new Set());
      } else if (command !== undefined && line.startsWith("|")) {
        const first = line.split("|")[1] ?? "";
        for (const [flag] of first.matchAll(/--[a-z][\w-]*/g)) tables.get(command)!.add(flag);
      }
    }
    // The benchmarks' flags are a tool's, listed by `deno task bench --help` alone.
    const commands = PROGRAMS.filter((name) => name !== "bench");
    assert.deepEqual([...tables.keys()].sort(), commands.sort(), "a flag table per command");
    for (const [name, documented] of tables) {
      const accepted = programs.get(name);
      assert.ok(accepted, `deno task ${name} is a program of ours`);
      const expected = [...accepted].filter((flag) => flag !== "--help").sort();
      assert.deepEqual([...documented].sort(), expected, `the flags of deno task ${name}`);
    }
  },
});

Deno.test({
  name: "every repository path written in a code span exists",
  ...options,
  fn() {
    const missing = PAGES.flatMap((page) =>
      page.code
        .filter((span) => /^(?:lib|tools|testing|tests|bench|docs|\.ci)\/[\w./-]*$/.test(span))
        .filter((path) => !exists(new URL(path, ROOT)))
        .map((path) => `${page.path}: ${path}`)
    );
    assert.deepEqual(missing, []);
  },
});

Deno.test({
  name: "the architecture page has a line for every file of the core",
  ...options,
  fn() {
    const page = PAGES.find((p) => p.path === "docs/architecture.md");
    assert.ok(page, "docs/architecture.md exists");
    const named = new Set(page.code);
    const core = new URL("lib/core/", ROOT);
    const files = [...Deno.readDirSync(core)].flatMap((entry) =>
      entry.isDirectory
        ? [...Deno.readDirSync(new URL(`${entry.name}/`, core))].map((f) =>
          `${entry.name}/${f.name}`
        )
        : [entry.name]
    ).filter((name) => name.endsWith(".ts") && !name.endsWith("_test.ts"));
    const missing = files.map((name) => `lib/core/${name}`).filter((path) => !named.has(path));
    assert.deepEqual(missing.sort(), []);
  },
});

/** The fenced blocks of `language` on every page, with where each is. */
function fencedBlocks(language: string): { where: string; text: string }[] {
  return PAGES.flatMap((page) =>
    [
      ...page.lines.join("\n").matchAll(
        new RegExp("^```" + language + "\\n([\\s\\S]*?)^```$", "gm"),
      ),
    ]
      .map((match) => ({ where: page.path, text: match[1]! }))
  );
}

Deno.test({
  name:
    "every schedule file and YAML snippet of the docs is one the scheduler and a YAML reader take",
  ...options,
  fn() {
    const schedules = fencedBlocks("json").filter((block) => block.text.includes('"schedules"'));
    assert.ok(schedules.length >= 2, "the README and docs/scheduling.md show schedule files");
    for (const { where, text } of schedules) {
      const file = parseScheduleFile(text, where);
      checkSchedules(file.schedules, file.catchUp, where);
    }
    const yamls = fencedBlocks("yaml");
    assert.ok(yamls.length >= 1);
    for (const { text } of yamls) parseYaml(text);
  },
});
