import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { AGENT_V8_FLAGS, agentV8Flags } from './v8-flags.js';

describe('agentV8Flags', () => {
  it('sets every flag when node was started plainly', () => {
    expect(agentV8Flags(' ')).toEqual(AGENT_V8_FLAGS.map((f) => f.flag));
  });

  it('leaves a flag to the operator who gave it or a flag it stands for, in either spelling', () => {
    expect(agentV8Flags('--max-semi-space-size=4 ')).toEqual(['--heap-growing-percent=20', '--no-opt']);
    expect(agentV8Flags(' --max_semi_space_size=4')).toEqual(['--heap-growing-percent=20', '--no-opt']);
    expect(agentV8Flags('--opt --heap-growing-percent=50')).toEqual(['--semi-space-growth-factor=1']);
    expect(agentV8Flags('--no-turbofan')).not.toContain('--no-opt');
    // A longer flag that merely starts with the same name does not count.
    expect(agentV8Flags('--optimize-for-size')).toContain('--no-opt');
  });

  it('names only flags this node accepts', () => {
    for (const { flag } of AGENT_V8_FLAGS) {
      expect(() => execFileSync(process.execPath, [flag, '-e', '0'], { stdio: 'pipe' })).not.toThrow();
    }
  });
});
