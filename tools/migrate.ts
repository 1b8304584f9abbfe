/**
 * `deno task migrate`: turns the classic queue of the original scripts into tareas' quorum queue
 * of the same name, keeping every message (see `lib/operate/migrate.ts`). Progress lines and the summary
 * go to stdout; an expected failure is one line on stderr.
 * @module
 */
import type { ChannelModel } from "../lib/deps/amqplib.ts";
import { onStopSignals, runMain } from "../lib/cli/main.ts";
import { MIGRATE_HELP, type MigrateConfig, parseMigrateArgs } from "../lib/cli/tools_config.ts";
import { openConnection } from "../lib/core/connection.ts";
import { type MigrateEvent, migrateQueue } from "../lib/operate/migrate.ts";

/** Progress lines at most this often, plus one at the start of each phase. */
const PROGRESS_MS = 1000;

async function migrate(config: MigrateConfig): Promise<number> {
  let model: ChannelModel | undefined;
  await using connection = await openConnection({
    url: config.url,
    heartbeat: config.heartbeat,
    name: "tareas migrate",
    setup: (connected) => {
      model = connected;
      return Promise.resolve();
    },
  });
  let shown = 0;
  const onProgress = (event: MigrateEvent) => {
    switch (event.type) {
      case "found":
        if (event.kind === "classic") {
          console.log(
            `"${event.queue}" is a classic queue holding ${event.messageCount} message(s)`,
          );
        }
        if (event.migrating !== undefined) {
          console.log(`Resuming: ${event.migrating} message(s) wait in the temporary queue`);
        }
        break;
      case "moving":
        shown = Date.now();
        console.log(`Moving ${event.total} message(s) from "${event.from}" to "${event.to}"`);
        break;
      case "moved":
        if (Date.now() - shown >= PROGRESS_MS) {
          shown = Date.now();
          console.log(`  moved ${event.moved}/${event.total}`);
        }
        break;
      case "deleted":
        console.log(`Deleted the empty queue "${event.queue}"`);
        break;
      case "declared":
        console.log(`Declared "${event.queue}" as tareas' quorum queue`);
        break;
    }
  };
  const stop = new AbortController();
  // Any signal stops between two batches (moments away); SIGKILL is safe too.
  const signals = onStopSignals(() => stop.abort(), () => Deno.exit(1));
  try {
    const result = await Promise.race([
      migrateQueue(model!, config.queue, {
        batchSize: config.batch,
        signal: stop.signal,
        onProgress,
      }),
      connection.failed,
    ]);
    if (result.outcome === "nothing") {
      console.log(
        `Nothing to migrate: "${config.queue}" already is tareas' quorum queue ` +
          `(${result.ready} message(s) ready)`,
      );
      return 0;
    }
    const duplicates = result.duplicates > 0
      ? `; ${result.duplicates} of them repeat a message id (copies left by an interrupted run)`
      : "";
    console.log(
      `Migrated "${config.queue}" to tareas' quorum queue${
        result.resumed ? " (resumed)" : ""
      }: ${result.movedOut} message(s) moved out, ${result.movedBack} moved back${duplicates}; ` +
        `${result.ready} ready`,
    );
    return 0;
  } finally {
    signals.remove();
  }
}

if (import.meta.main) {
  await runMain("migrate", {
    parse: () => parseMigrateArgs(Deno.args),
    help: MIGRATE_HELP,
    run: migrate,
    logLevel: "warning",
  });
}
