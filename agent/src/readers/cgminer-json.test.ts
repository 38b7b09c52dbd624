import { describe, expect, it } from 'vitest';
import { parseLenient } from './cgminer-json.js';

describe('parseLenient', () => {
  it('strips the NUL terminator without calling it a repair', () => {
    expect(parseLenient('{"a":1}\0')).toEqual({ ok: true, value: { a: 1 }, repaired: false });
  });
  it('inserts commas between values: }{ and missing commas', () => {
    expect(parseLenient('{"S":[{"a":1}{"b":2}]}')).toEqual({
      ok: true,
      value: { S: [{ a: 1 }, { b: 2 }] },
      repaired: true,
    });
    expect(parseLenient('{"t":60 "u":"x" "v":true}')).toMatchObject({ value: { t: 60, u: 'x', v: true } });
  });
  it('reads nan/inf as null and escapes raw control characters', () => {
    expect(parseLenient('{"a":nan,"b":-inf,"c":"x\ty"}')).toMatchObject({ value: { a: null, b: null, c: 'x\ty' } });
  });
  it('does not touch string contents', () => {
    expect(parseLenient('{"a":"}{ nan" "b":1}')).toMatchObject({ value: { a: '}{ nan', b: 1 } });
  });
  it('keeps the last of repeated keys (JSON.parse semantics)', () => {
    expect(parseLenient('{"Uptime":1,"Uptime":2}')).toMatchObject({ value: { Uptime: 2 } });
  });
  it('refuses what it cannot repair', () => {
    expect(parseLenient('{"a":1').ok).toBe(false);
    expect(parseLenient('').ok).toBe(false);
    expect(parseLenient('\0').ok).toBe(false);
    expect(parseLenient('<html>').ok).toBe(false);
  });
});
