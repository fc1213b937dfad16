import { describeModel, type ModelInfo } from '../../core/models/modelInfo.ts';
import { loadNative } from '../../core/native/binding.ts';
import { parseCommandArgs } from '../args.ts';
import { UsageError } from '../errors.ts';

export const infoUsage = 'graft info MODEL [--json] [--no-sha256]';

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function formatText(info: ModelInfo): string {
  const types = Object.values(info.ffnDownTypes);
  const distinct = [...new Set(types)];
  const lines = [
    `model         ${info.path}`,
    `name          ${info.name ?? '-'}`,
    `architecture  ${info.architecture ?? '-'}`,
    `layers        ${info.layers ?? '-'}`,
    `n_embd        ${info.nEmbd ?? '-'}`,
    `n_ff          ${info.nFf ?? '-'}`,
    `heads         ${info.nHead ?? '-'} (kv ${info.nHeadKv ?? '-'})`,
    `vocab         ${info.vocabSize ?? '-'}`,
    `context       ${info.contextLength ?? '-'}`,
    `file type     ${info.fileType ?? '-'}`,
    `ffn_down      ${distinct.length === 1 ? `${distinct[0]} (all ${types.length} layers)` : Object.entries(info.ffnDownTypes).map(([k, v]) => `${k}=${v}`).join(', ') || '-'}`,
    `parameters    ${info.parameterCount.toLocaleString('en-US')}`,
    `size          ${formatBytes(info.size)} (${info.size} bytes)`,
    `sha256        ${info.sha256 ?? '(not computed)'}`,
    `editable      ${info.editable ? 'yes' : `no — ${info.notEditableReason}`}`,
  ];
  return lines.join('\n');
}

export async function runInfo(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(argv, {
    json: { type: 'boolean', default: false },
    'no-sha256': { type: 'boolean', default: false },
  }, infoUsage);
  if (positionals.length !== 1) throw new UsageError(`give exactly one model file\nusage: ${infoUsage}`);
  const native = await loadNative();
  const info = await describeModel(native, positionals[0]!, { sha256: !values['no-sha256'] });
  process.stdout.write(values.json ? `${JSON.stringify(info, null, 2)}\n` : `${formatText(info)}\n`);
}
