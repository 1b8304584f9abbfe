/**
 * croner, the cron expression parser, pinned here and only here (see `amqplib.ts` for why a module
 * and not the import map). Chosen for the scheduler because it has no dependencies, runs under
 * Deno as it is, reads 5- and 6-field expressions (seconds) and the `@hourly` nicknames, computes
 * the next and previous times in any IANA time zone, and has written rules for daylight saving
 * time (a fixed-time job in the skipped hour runs right after it and once in the repeated hour;
 * an interval job keeps its real interval).
 * @module
 */
export { Cron } from "npm:croner@11.0.1";
