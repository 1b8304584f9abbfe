/**
 * Broker URLs: the default, and redaction so that a password is never printed. Low level: the
 * connection and the test harness use it without the command-line configuration.
 * @module
 */

/** Broker URL used when none is given (`AMQP_URL` unset). */
export const DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672";

/**
 * Replaces the password of a URL with `***`, so it can be printed.
 *
 * @example
 * ```ts
 * redactUrl("amqp://guest:secret@host:5672"); // "amqp://guest:***@host:5672"
 * ```
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.href.replace(/\/$/, "");
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, "//$1:***@");
  }
}
