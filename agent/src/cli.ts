#!/usr/bin/env node
/**
 * `hashwatch-agent` entry point: sets V8 flags for a small, long-lived process (v8-flags.ts),
 * then loads the program (program.ts). The flags come first because V8 sizes its heap while the
 * modules load.
 */
import { setFlagsFromString } from 'node:v8';
import { agentV8Flags } from './v8-flags.js';

for (const flag of agentV8Flags(`${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`)) {
  setFlagsFromString(flag);
}

const { main } = await import('./program.js');
await main(process.argv);
