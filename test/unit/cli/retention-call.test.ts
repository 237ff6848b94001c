import { describe, expect, it } from 'vitest';
import { ExitCode, UsageError } from '../../../src/common/errors.js';
import type { CliContext } from '../../../src/cli/context.js';
import { expirePolicy } from '../../../src/cli/expire-call.js';
import { showPlanThenRun, type PlanRun } from '../../../src/cli/plan-run.js';
import { walDeleteRequest } from '../../../src/cli/wal-delete-call.js';
import { walResolveOptions } from '../../../src/cli/wal-resolve-call.js';

describe('walDeleteRequest', () => {
  it('passes --before through as text (the archive segment size is needed to read it)', () => {
    expect(walDeleteRequest({ before: '7d' })).toEqual({ before: '7d', plan: {}, execute: {} });
  });

  it('types --timeline (also hex) and --batch, and --force only when given', () => {
    expect(walDeleteRequest({ before: '0/3000000', timeline: '0x1A', batch: '250', force: true })).toEqual({
      before: '0/3000000',
      plan: { timeline: 26, force: true },
      execute: { batchSize: 250 },
    });
    expect(walDeleteRequest({ before: '0/3000000', force: false }).plan).toEqual({});
  });

  const refused: ReadonlyArray<[string, Record<string, string>]> = [
    ['no --before', {}],
    ['a timeline that is not a number', { before: '7d', timeline: 'two' }],
    ['batch 0', { before: '7d', batch: '0' }],
    ['batch above 1000', { before: '7d', batch: '1001' }],
  ];
  it.each(refused)('refuses %s as a usage error', (_what, flags) => {
    expect(() => walDeleteRequest(flags)).toThrow(UsageError);
  });
});

describe('expirePolicy', () => {
  it('is the one policy given', () => {
    expect(expirePolicy({ retainFull: '3' })).toEqual({ retainFull: 3 });
    expect(expirePolicy({ retainDays: '14' })).toEqual({ retainDays: 14 });
  });

  const refused: ReadonlyArray<[string, Record<string, string>, RegExp]> = [
    ['neither', {}, /exactly one of/],
    ['both', { retainFull: '3', retainDays: '14' }, /exactly one of/],
    ['zero backups', { retainFull: '0' }, /from 1 to 100000/],
    ['a fraction of a day', { retainDays: '1.5' }, /whole number/],
  ];
  it.each(refused)('refuses %s as a usage error', (_what, flags, message) => {
    expect(() => expirePolicy(flags)).toThrow(UsageError);
    expect(() => expirePolicy(flags)).toThrow(message);
  });
});

describe('walResolveOptions', () => {
  it('is a real run unless --dry-run', () => {
    expect(walResolveOptions([], {})).toEqual({ dryRun: false });
    expect(walResolveOptions(['000000010000000000000003'], { dryRun: true })).toEqual({ dryRun: true });
  });

  it('takes --keep with exactly one name', () => {
    expect(walResolveOptions(['000000010000000000000003'], { keep: 'abcdef01' })).toEqual({ keep: 'abcdef01', dryRun: false });
    expect(() => walResolveOptions([], { keep: 'abcdef01' })).toThrow(/--keep needs exactly one WAL file name/);
    expect(() => walResolveOptions(['000000010000000000000003', '000000010000000000000004'], { keep: 'abcdef01' })).toThrow(UsageError);
  });
});

describe('showPlanThenRun', () => {
  interface Outcome {
    readonly interrupted: boolean;
    readonly deleted: number;
  }

  function harness(outcome: Outcome | undefined): {
    ctx: CliContext;
    printed: string[];
    executed: () => number;
    run: PlanRun<string, Outcome>;
  } {
    const printed: string[] = [];
    let executions = 0;
    const ctx = { out: (text: string) => printed.push(text) } as unknown as CliContext;
    const run: PlanRun<string, Outcome> = {
      plan: 'P',
      execute:
        outcome === undefined
          ? undefined
          : async () => {
              executions++;
              return outcome;
            },
      renderPlan: (p) => `plan ${p}`,
      renderOutcome: (o) => `deleted ${o.deleted}`,
      json: (p, o, dryRun) => ({ plan: p, deleted: o?.deleted ?? 0, dryRun }),
    };
    return { ctx, printed, executed: () => executions, run };
  }

  it('shows the plan, executes it and shows the outcome', async () => {
    const h = harness({ interrupted: false, deleted: 5 });
    expect(await showPlanThenRun(h.ctx, {}, h.run)).toBe(ExitCode.ok);
    expect(h.printed).toEqual(['plan P', 'deleted 5']);
    expect(h.executed()).toBe(1);
  });

  it('executes nothing on a dry run, and says so', async () => {
    const h = harness({ interrupted: false, deleted: 5 });
    expect(await showPlanThenRun(h.ctx, { dryRun: true }, h.run)).toBe(ExitCode.ok);
    expect(h.printed).toEqual(['plan P', 'dry run: nothing deleted']);
    expect(h.executed()).toBe(0);
  });

  it('prints only the plan when there is nothing to do', async () => {
    const h = harness(undefined);
    expect(await showPlanThenRun(h.ctx, {}, h.run)).toBe(ExitCode.ok);
    expect(h.printed).toEqual(['plan P']);
  });

  it('prints one JSON document, the plan with the outcome, with --json', async () => {
    const h = harness({ interrupted: false, deleted: 5 });
    await showPlanThenRun(h.ctx, { json: true }, h.run);
    expect(h.printed.map((p) => JSON.parse(p) as unknown)).toEqual([{ plan: 'P', deleted: 5, dryRun: false }]);
    const dry = harness({ interrupted: false, deleted: 5 });
    await showPlanThenRun(dry.ctx, { json: true, dryRun: true }, dry.run);
    expect(dry.printed.map((p) => JSON.parse(p) as unknown)).toEqual([{ plan: 'P', deleted: 0, dryRun: true }]);
    const empty = harness(undefined);
    await showPlanThenRun(empty.ctx, { json: true }, empty.run);
    expect(empty.printed.map((p) => JSON.parse(p) as unknown)).toEqual([{ plan: 'P', deleted: 0, dryRun: false }]);
  });

  it('exits 3 when a signal stopped it between batches', async () => {
    const h = harness({ interrupted: true, deleted: 2 });
    expect(await showPlanThenRun(h.ctx, {}, h.run)).toBe(ExitCode.failure);
  });
});
