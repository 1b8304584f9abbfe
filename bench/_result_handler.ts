/**
 * The handler our worker runs in the call scenario (`--handler bench/_result_handler.ts`): returns
 * {@linkcode CALL_RESULT} at once, the small value every system of the scenario answers with.
 * @module
 */
import type { TaskHandler } from "../mod.ts";

/** The result every responder of the call scenario returns. */
export const CALL_RESULT = { ok: true } as const;

const handler: TaskHandler = () => CALL_RESULT;

export default handler;
