// `graft`: the command line over the same core the app uses.
import { demoModelUsage, runDemoModel } from './commands/demoModel.ts';
import { editUsage, runEdit, runTrace, traceUsage } from './commands/edit.ts';
import { exportUsage, runExport } from './commands/export.ts';
import { gradUsage, runGrad } from './commands/graph.ts';
import { historyUsage, mergeUsage, moveUsage, runHistory, runMerge, runMove, runShow, runToggle, showUsage, toggleUsage } from './commands/history.ts';
import { runInfo, infoUsage } from './commands/info.ts';
import { keysUsage, logitsUsage, runKeys, runLogits } from './commands/inspect.ts';
import { runMakeModel, makeModelUsage } from './commands/makeModel.ts';
import { momentsUsage, runMoments } from './commands/moments.ts';
import { probeUsage, runProbe } from './commands/probe.ts';
import { runServe, serveUsage } from './commands/serve.ts';
import { runStart } from './commands/start.ts';
import { UsageError, messageOf } from './errors.ts';

const commands: Record<string, { run: (argv: string[]) => Promise<void>; usage: string; summary: string }> = {
  info: { run: runInfo, usage: infoUsage, summary: 'architecture, dimensions, types, sha256 and editability of a GGUF model' },
  'make-model': { run: runMakeModel, usage: makeModelUsage, summary: 'write a random-weight GGUF test model (llama, qwen2, qwen3)' },
  'demo-model': { run: runDemoModel, usage: demoModelUsage, summary: 'train the fact-world demo model from its seed: GGUF (F32, Q8_0), ground truth, knowledge check' },
  logits: { run: runLogits, usage: logitsUsage, summary: "log-probabilities of the next token at every position (llama.cpp, or Graft's own graph)" },
  keys: { run: runKeys, usage: keysUsage, summary: 'the MLP key (input of blk.L.ffn_down.weight) at every position' },
  edit: { run: runEdit, usage: editUsage, summary: 'one ROME edit of a fact, written as a LoRA adapter, with metrics before and after' },
  export: { run: runExport, usage: exportUsage, summary: "a workspace's enabled edits as a LoRA adapter, a patched GGUF, an edit log or a model card (verified)" },
  probe: { run: runProbe, usage: probeUsage, summary: 'collapse watch: sentence and corpus perplexity, KL to the base, hard cases, and a verdict' },
  history: { run: runHistory, usage: historyUsage, summary: 'the recorded edits, per workspace' },
  show: { run: runShow, usage: showUsage, summary: 'one recorded edit in full: request, settings, prefixes, factors, metrics' },
  toggle: { run: runToggle, usage: toggleUsage, summary: 'switch a recorded edit on or off in its workspace' },
  move: { run: runMove, usage: moveUsage, summary: "move a recorded edit to another place in its workspace's stack" },
  merge: { run: runMerge, usage: mergeUsage, summary: "merge a workspace's enabled edits into one low-rank edit (truncated SVD), reversibly" },
  trace: { run: runTrace, usage: traceUsage, summary: 'causal tracing: where the model recalls a fact (layers × tokens), and a suggested edit layer' },
  grad: { run: runGrad, usage: gradUsage, summary: "NLL of a target after a text and its gradient w.r.t. a delta at (layer, site, position), from Graft's own graph" },
  moments: { run: runMoments, usage: momentsUsage, summary: 'second moments Σkkᵀ/n of the MLP keys over a corpus, per layer, cached on disk' },
  serve: { run: runServe, usage: serveUsage, summary: 'the workbench in a browser: serves the app on 127.0.0.1 with an access token (web mode)' },
  start: { run: async () => runStart(), usage: 'graft start', summary: 'start the workbench: Electron where its binary exists, else the web mode' },
};

export function helpText(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'graft — edit the knowledge inside local GGUF language models',
    '',
    'commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'usage:',
    ...Object.values(commands).map((c) => `  ${c.usage}`),
    '',
    'environment: GRAFT_THREADS (default 1), GRAFT_GPU=off, GRAFT_NATIVE_VARIANT=cpu|cuda|vulkan, GRAFT_DB (history database), GRAFT_TOKEN (web mode)',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(`${helpText()}\n`);
    return 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`graft: unknown command '${name}'\n\n${helpText()}\n`);
    return 2;
  }
  try {
    await command.run(rest);
    return 0;
  } catch (error) {
    process.stderr.write(`graft ${name}: error: ${messageOf(error)}\n`);
    if (error instanceof UsageError) {
      const usage = (error.message.split('\n')[1] ?? '').trim();
      if (usage) process.stderr.write(`${usage}\n`);
      return 2;
    }
    if (process.env.GRAFT_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    return 1;
  }
}
