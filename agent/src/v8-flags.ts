/**
 * The V8 flags the agent program (cli.ts) sets before it loads anything else. They are set at
 * run time so that they hold however node is started (the systemd unit, `node dist/cli.js`, a
 * container), and only in the program: the Agent class embedded in another process (the demo,
 * the fleet simulator, the benchmarks) leaves that process's heap alone.
 *
 * Why, measured with one agent polling 200 simulated rigs every 10 s (`test/bench/suites/agent.ts`,
 * `--trace-gc`, `perf record`): with V8's defaults, sized for a busy server, the agent sat at
 * 130-150 MB RSS; with these flags (and the allocation cuts in the readers) it stays under 80 MB.
 *
 * - `--semi-space-growth-factor=1`: the young generation keeps its initial 1 MB semi-spaces
 *   instead of doubling up to 16 MB (32 MB resident) after a few rounds. The price is about a
 *   dozen scavenges per poll round instead of one or two (~30 ms of pauses per round).
 * - `--heap-growing-percent=20`: after a full GC the old generation may grow by 20 % (at least
 *   V8's 8 MB step) before the next one, instead of up to 4x; the agent's live heap is ~15 MB
 *   and flat, so it does not need the headroom.
 * - `--no-opt`: no TurboFan. Each function of the agent runs a few hundred times per round,
 *   too little to repay optimizing it: TurboFan kept recompiling in steady state (a tenth of the
 *   agent's CPU in a `perf` profile), and its code and compiler memory cost ~10 MB of RSS.
 *   Ignition and Sparkplug run the same code; the agent's CPU per round went down, not up.
 *
 * Setting these three after start is sound: V8 reads them each time it grows the young
 * generation, recomputes the old generation's limit or decides whether to optimize a function.
 * A flag the operator gives on node's command line or in NODE_OPTIONS wins: each flag here is
 * left out when any of the flags it stands for is given (e.g. `--max-semi-space-size=4`, `--opt`).
 */
export const AGENT_V8_FLAGS: readonly { flag: string; unlessGiven: readonly string[] }[] = [
  {
    flag: '--semi-space-growth-factor=1',
    unlessGiven: ['semi-space-growth-factor', 'max-semi-space-size', 'min-semi-space-size'],
  },
  { flag: '--heap-growing-percent=20', unlessGiven: ['heap-growing-percent'] },
  { flag: '--no-opt', unlessGiven: ['opt', 'turbofan', 'max-opt'] },
];

/**
 * The flags of AGENT_V8_FLAGS to set, given what node was started with (`process.execArgv` and
 * NODE_OPTIONS, joined by a space).
 */
export function agentV8Flags(given: string): string[] {
  const normalized = given.replaceAll('_', '-');
  return AGENT_V8_FLAGS.filter(
    ({ unlessGiven }) => !unlessGiven.some((name) => new RegExp(`--(no-)?${name}(=|\\s|$)`).test(normalized)),
  ).map(({ flag }) => flag);
}
