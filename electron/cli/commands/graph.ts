// `graft logits --engine graph` and `graft grad`: Graft's own differentiable graph from the
// command line, as JSON, so the engine can be checked from outside.
import { continuationTokens, openGraphModel, teacherForced } from '../../core/engine/graphModel.ts';
import { rows } from '../../core/engine/llamaSession.ts';
import { overlaysFromLora } from '../../core/engine/loraOverlays.ts';
import { loadNative, type LoraAdapter } from '../../core/native/binding.ts';
import type { GraphOverlay } from '../../core/native/graphTypes.ts';
import { integerOption, parseCommandArgs, threadsOption } from '../args.ts';
import { UsageError } from '../errors.ts';

export const gradUsage = 'graft grad MODEL --text T --target T2 --layer L [--site mlp_out|resid] [--position P] [--threads N] [--json]';

function nonEmpty(text: string | undefined, flag: string, usage: string): string {
  if (text === undefined) throw new UsageError(`${flag} is required\nusage: ${usage}`);
  if (text.trim() === '') throw new Error(`${flag} is empty; give the text to evaluate`);
  return text;
}

export async function graphLogits(model: string, text: string, loras: LoraAdapter[], threads?: number): Promise<void> {
  const native = await loadNative();
  const graph = await openGraphModel(native, model, { threads });
  try {
    const overlays: GraphOverlay[] = loras.flatMap((a) => overlaysFromLora(native, a.path, graph.info, a.scale ?? 1));
    const tokens = graph.tokenize(nonEmpty(text, '--text', ''), true);
    const result = await graph.run({ prompts: [tokens], allLogits: true, overlays });
    process.stdout.write(`${JSON.stringify({ engine: 'graph', tokens: Array.from(tokens), logprobs: rows(result.logprobs, result.nVocab) })}\n`);
  } finally {
    graph.dispose();
  }
}

export async function runGrad(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(argv, {
    text: { type: 'string' }, target: { type: 'string' }, layer: { type: 'string' }, site: { type: 'string', default: 'mlp_out' },
    position: { type: 'string' }, threads: { type: 'string' }, json: { type: 'boolean', default: false },
  }, gradUsage);
  if (positionals.length !== 1) throw new UsageError(`give exactly one model file\nusage: ${gradUsage}`);
  const text = nonEmpty(values.text, '--text', gradUsage);
  const target = nonEmpty(values.target, '--target', gradUsage);
  const layer = integerOption(values.layer, '--layer');
  const site = values.site === 'resid' || values.site === 'resid_out' ? 'resid_out' : values.site;
  if (site !== 'mlp_out' && site !== 'resid_out') throw new UsageError(`--site must be mlp_out or resid, got '${values.site}'\nusage: ${gradUsage}`);
  const threads = threadsOption(values.threads);

  const native = await loadNative();
  const graph = await openGraphModel(native, positionals[0]!, { threads });
  try {
    const prefix = graph.tokenize(text, true);
    const continuation = continuationTokens((t, special) => graph.tokenize(t, special), text, target);
    const { tokens, targets } = teacherForced(prefix, continuation);
    const position = integerOption(values.position, '--position', prefix.length - 1);
    if (position < 0 || position >= tokens.length) {
      throw new Error(`--position ${position} is outside the ${tokens.length} tokens of text and target (0 to ${tokens.length - 1})`);
    }
    const result = await graph.run({
      prompts: [tokens],
      deltas: [{ layer, site, rows: [{ prompt: 0, pos: position }], values: new Float32Array(graph.info.nEmbd) }],
      targets,
    }, { backward: true });
    process.stdout.write(`${JSON.stringify({
      tokens: Array.from(tokens), targetTokens: Array.from(continuation), layer, site, position,
      nll: result.nll, gradient: Array.from(result.gradients[0]!),
    })}\n`);
  } finally {
    graph.dispose();
  }
}
