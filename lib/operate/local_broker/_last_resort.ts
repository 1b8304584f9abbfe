/**
 * What kills a private node whose owner went away without stopping it: the shell wrapper the node
 * runs under, whose watchdog notices this process's exit however it happened, and the unload
 * listener that kills every node still running when this process ends normally.
 * @module
 */

/**
 * The node's parent process, run by `/bin/sh -c` with the arguments server script, output file, pid
 * file and data dir. It runs the server and a watchdog that reads its standard input, a pipe from
 * this process that nothing writes to: end-of-file means this process has exited, however it
 * exited (even SIGKILL, when no unload listener runs), and the watchdog then kills the node and
 * removes its data dir, ignoring the SIGTERM the wrapper sends it when the server exits. A
 * background job's standard input is /dev/null unless redirected, hence fd 3.
 */
export const WRAPPER = `
exec 3<&0
"$0" </dev/null 3<&- >>"$1" 2>&1 &
server=$!
{
  read -r _ <&3 || true
  trap '' TERM
  kill -KILL $(cat "$2" 2>/dev/null) $(pgrep -P "$server" 2>/dev/null) "$server" 2>/dev/null
  rm -rf "$3" 2>/dev/null || { sleep 1; rm -rf "$3"; }
} &
watchdog=$!
exec 3<&-
wait "$server"
status=$?
kill "$watchdog" 2>/dev/null
exit "$status"
`;

/** A node the unload listener can kill: synchronously, as nothing is awaited on unload. */
export interface SyncKillable {
  /** Kills the node's processes and removes its data dir. */
  killSync(): void;
}

/** Nodes started by this process and not yet stopped, killed on unload as a last resort. */
const liveNodes = new Set<SyncKillable>();
let unloadListenerAdded = false;

/** Kills `node` when this process unloads, unless {@linkcode forgetOnUnload} comes first. */
export function killOnUnload(node: SyncKillable): void {
  liveNodes.add(node);
  addUnloadListener();
}

/** Leaves `node` alone on unload: it was stopped. */
export function forgetOnUnload(node: SyncKillable): void {
  liveNodes.delete(node);
}

function addUnloadListener(): void {
  if (unloadListenerAdded) return;
  unloadListenerAdded = true;
  globalThis.addEventListener("unload", () => {
    for (const node of liveNodes) node.killSync();
  });
}
