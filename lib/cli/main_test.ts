import assert from "node:assert/strict";
import {
  BrokerUnreachableError,
  ConfigError,
  TareasError,
  TaskFormatError,
  TaskTimeoutError,
  UsageError,
} from "../core/errors.ts";
import { BrokerUnavailableError, PrivateNodeError } from "../operate/local_broker.ts";
import { exitCodeOf } from "./main.ts";

Deno.test("the command line maps each expected failure to its documented exit code", () => {
  const cases: [Error, number][] = [
    [new UsageError("Invalid --count"), 2],
    [new ConfigError("Cannot declare queue"), 2],
    [new BrokerUnavailableError("amqp://u:secret@127.0.0.1:1"), 2],
    [new TareasError("The producer closed"), 1],
    [new BrokerUnreachableError("Cannot reach the broker"), 1],
    [new TaskFormatError("Payload is not JSON"), 1],
    [new TaskTimeoutError(1000), 1],
    [new PrivateNodeError("Cannot start RabbitMQ node"), 1],
  ];
  for (const [error, code] of cases) {
    assert.ok(error instanceof TareasError, `${error.name} is an expected failure`);
    assert.equal(exitCodeOf(error), code, error.name);
  }
  assert.equal(exitCodeOf(new Error("a bug")), 1, "a bug");
});

Deno.test("the error classes keep their name, message and cause", () => {
  const cause = new Error("underneath");
  const classes = [
    TareasError,
    UsageError,
    ConfigError,
    BrokerUnreachableError,
    TaskFormatError,
    PrivateNodeError,
  ];
  for (const Class of classes) {
    const error = new Class("One line", { cause });
    assert.equal(error.name, Class.name);
    assert.equal(error.message, "One line");
    assert.equal(error.cause, cause);
    assert.ok(!("exitCode" in error), `${Class.name} carries no exit code`);
  }
  const timeout = new TaskTimeoutError(1500);
  assert.equal(timeout.name, "TaskTimeoutError");
  assert.equal(timeout.message, "Task timed out after 1.5 s");
  const unavailable = new BrokerUnavailableError("amqp://u:secret@127.0.0.1:1", { cause });
  assert.equal(unavailable.name, "BrokerUnavailableError");
  assert.equal(unavailable.cause, cause);
  assert.ok(!unavailable.message.includes("secret"));
});
