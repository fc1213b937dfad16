// `graft export`: a workspace's enabled edits as a LoRA adapter, a patched GGUF, an edit log
// or a model card; adapters and models are verified in node-llama-cpp before they appear.
import { exportStack, requantizeTypes, type ExportFormat, type RequantizeType } from '../../core/export/stackExport.ts';
import { loadNative } from '../../core/native/binding.ts';
import { defaultDatabasePath, openDatabase } from '../../core/store/database.ts';
import { listWorkspaces } from '../../core/store/repository.ts';
import { parseCommandArgs } from '../args.ts';
import { UsageError } from '../errors.ts';

export const exportUsage = `graft export --format lora|gguf|log|card --out F [--workspace W] [--db F] [--json]\n       [--requantize ${requantizeTypes.join('|')}]  (gguf only; measures and warns how much of the edits it erases)`;

export async function runExport(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(argv, {
    format: { type: 'string' }, out: { type: 'string' }, workspace: { type: 'string' }, db: { type: 'string' }, requantize: { type: 'string' }, json: { type: 'boolean', default: false },
  }, exportUsage);
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'\nusage: ${exportUsage}`);
  const format = values.format as ExportFormat | undefined;
  if (!format || !['lora', 'gguf', 'log', 'card'].includes(format)) throw new UsageError(`--format must be lora, gguf, log or card\nusage: ${exportUsage}`);
  if (!values.out) throw new UsageError(`--out is required\nusage: ${exportUsage}`);
  const requantize = values.requantize as RequantizeType | undefined;
  if (requantize !== undefined && !requantizeTypes.includes(requantize)) throw new UsageError(`--requantize must be one of ${requantizeTypes.join(', ')}\nusage: ${exportUsage}`);
  if (requantize !== undefined && format !== 'gguf') throw new UsageError('--requantize applies to --format gguf only');
  const db = openDatabase(values.db ?? defaultDatabasePath());
  try {
    const workspaces = listWorkspaces(db);
    const workspace = values.workspace === undefined
      ? (workspaces.length === 1 ? workspaces[0] : undefined)
      : workspaces.find((w) => w.name === values.workspace);
    if (!workspace) {
      throw new Error(values.workspace === undefined
        ? `there are ${workspaces.length} workspaces; name one with --workspace (${workspaces.map((w) => w.name).join(', ') || 'none yet'})`
        : `there is no workspace '${values.workspace}'`);
    }
    const native = await loadNative();
    const result = await exportStack(native, db, workspace, format, values.out, requantize ? { requantize } : {});
    if (result.requantization) process.stderr.write(`warning: ${result.requantization.warning}\n`);
    process.stdout.write(values.json ? `${JSON.stringify(result)}\n`
      : `${result.path}\n  ${format}, edits ${result.edits.join(', ')}, sha256 ${result.sha256.slice(0, 16)}…` +
        (result.verification ? `, verified in node-llama-cpp (max |Δp| ${result.verification.maxDifference.toExponential(2)})` : '') + '\n');
  } finally {
    db.close();
  }
}
