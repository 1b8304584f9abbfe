import assert from "node:assert/strict";
import type { MonitorSnapshot } from "../observe/monitor.ts";
import { renderStatus } from "./status_text.ts";

const AT = "2026-01-01T00:00:10.000Z";

function snapshot(workers: MonitorSnapshot["workers"]): MonitorSnapshot {
  return {
    queue: "q",
    at: AT,
    ready: 3,
    unacked: 2,
    consumers: 1,
    dead: 0,
    ratePerSecond: 0.5,
    workers,
    workersDropped: 0,
  };
}

Deno.test("status shows each worker's running tasks with their progress under it", () => {
  const since = "2026-01-01T00:00:05.000Z";
  const text = renderStatus(snapshot([
    {
      name: "alpha",
      state: "online",
      lastSeen: AT,
      inHand: 2,
      completed: 5,
      failed: 0,
      running: [
        { taskId: "a", seq: 3, attempt: 1, worker: "alpha", since, progress: 0.4 },
        {
          taskId: "b",
          seq: 4,
          name: "email",
          attempt: 1,
          worker: "alpha",
          since,
          progress: { stage: "upload" },
        },
      ],
    },
    {
      name: "beta",
      state: "lost",
      lastSeen: "2026-01-01T00:00:01.000Z",
      inHand: 1,
      completed: 0,
      failed: 0,
      running: [],
    },
  ]));
  assert.deepEqual(text.split("\n").slice(3), [
    "  worker  state    in hand  completed  failed  last seen",
    `  alpha   online         2          5       0  ${AT}`,
    "      task #3 40%",
    '      task #4 email {"stage":"upload"}',
    "  beta    lost           1          0       0  2026-01-01T00:00:01.000Z (9 s ago)",
  ]);
});
