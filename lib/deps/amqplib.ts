/**
 * amqplib, pinned here and only here. Every module imports it from this file rather than through
 * an import map, so that `mod.ts` imported by path from another project resolves it.
 * @module
 */
export { default } from "npm:amqplib@2.3.1";
export type {
  Channel,
  ChannelModel,
  ConfirmChannel,
  ConsumeMessage,
  GetMessage,
  Options,
} from "npm:amqplib@2.3.1";
