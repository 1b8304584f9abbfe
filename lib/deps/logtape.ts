/**
 * LogTape, pinned here and only here (see `amqplib.ts` for why a module and not the import map).
 * @module
 */
export {
  configure,
  getLogger,
  getTextFormatter,
  jsonLinesFormatter,
  type Logger,
  type LogLevel,
  type LogRecord,
  type TextFormatter,
} from "npm:@logtape/logtape@2.4.2";
