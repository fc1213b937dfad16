// A LoRA adapter GGUF (llama.cpp's format, engine-notes §5) read back as low-rank overlays
// for the own graph. The own graph applies overlays to ffn_down only, which is where Graft's
// edits live; an adapter touching other weights is refused rather than half-applied.
import type { GraftNative } from '../native/binding.ts';
import type { GraphModelInfo, GraphOverlay } from '../native/graphTypes.ts';

function kvValue(kv: { key: string; value: unknown }[], key: string): unknown {
  return kv.find((e) => e.key === key)?.value;
}

export function overlaysFromLora(native: GraftNative, file: string, model: GraphModelInfo, userScale = 1): GraphOverlay[] {
  const info = native.inspect(file);
  if (kvValue(info.kv, 'general.type') !== 'adapter' || kvValue(info.kv, 'adapter.type') !== 'lora') {
    throw new Error(`${file} is not a LoRA adapter (general.type must be 'adapter' and adapter.type 'lora')`);
  }
  const arch = kvValue(info.kv, 'general.architecture');
  if (arch !== model.arch) throw new Error(`${file} is an adapter for '${String(arch)}' but the model is '${model.arch}'`);
  const alpha = Number(kvValue(info.kv, 'adapter.lora.alpha') ?? 0);
  const bases = new Set<string>();
  for (const t of info.tensors) {
    const m = /^(.*)\.lora_[ab]$/.exec(t.name);
    if (!m) throw new Error(`${file}: tensor ${t.name} is not a LoRA factor (…lora_a / …lora_b)`);
    bases.add(m[1]!);
  }
  const overlays: GraphOverlay[] = [];
  for (const base of [...bases].sort()) {
    const m = /^blk\.(\d+)\.ffn_down\.weight$/.exec(base);
    if (!m) throw new Error(`${file} adapts ${base}; the own graph applies adapters to blk.N.ffn_down.weight only`);
    const layer = Number(m[1]);
    if (layer >= model.nLayer) throw new Error(`${file} adapts layer ${layer} but the model has ${model.nLayer} layers`);
    const a = native.readTensor(file, `${base}.lora_a`);
    const b = native.readTensor(file, `${base}.lora_b`);
    const rank = a.shape[1] ?? 1;
    if (a.shape[0] !== model.nFf || b.shape[0] !== rank || b.shape[1] !== model.nEmbd) {
      throw new Error(`${file}: ${base} factors have shapes [${a.shape}] and [${b.shape}], expected [${model.nFf}, r] and [r, ${model.nEmbd}]`);
    }
    // lora_b is [r, n_embd] in ggml order: element (j, e) at e·r + j; overlays want u_j contiguous.
    const u = new Float32Array(rank * model.nEmbd);
    for (let j = 0; j < rank; j++) for (let e = 0; e < model.nEmbd; e++) u[j * model.nEmbd + e] = b.values[e * rank + j]!;
    overlays.push({ layer, rank, u, v: a.values, scale: alpha ? (userScale * alpha) / rank : userScale });
  }
  return overlays;
}
