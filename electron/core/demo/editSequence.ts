// Edits stacked one after another on the demo model, held in memory: ROME one fact at a time,
// MEMIT, EMMET and AlphaEdit a batch at a time, each computed on the stack the earlier ones
// left (AlphaEdit also protecting their keys). The quality benchmark and the sequence test
// both drive it, so they measure the same thing.
import fs from 'node:fs';
import path from 'node:path';

import { batchEdit, type BatchHparams, type BatchMethod, type ProjectorFor } from '../edits/batchEdit.ts';
import type { EditRequest } from '../edits/request.ts';
import type { RomeHparams } from '../edits/rome.ts';
import { romeEdit } from '../edits/romeEdit.ts';
import { mergedOverlays } from '../export/editStack.ts';
import type { GraftNative } from '../native/binding.ts';
import type { GraphOverlay, NativeGraphModel } from '../native/graphTypes.ts';

export type SequenceMethod = 'rome' | BatchMethod;

export interface SequenceSettings {
  modelPath: string;
  /** the second moments' corpus */
  corpus: string;
  statisticsDir: string;
  /** a scratch folder for the adapters the edits write; emptied after each edit (the stack lives here, in memory) */
  scratch: string;
  rome: RomeHparams;
  batch: (method: BatchMethod) => BatchHparams;
  projector: ProjectorFor;
}

export class EditSequence {
  /** the enabled edits so far, merged per layer */
  stack: GraphOverlay[] = [];
  /** seconds spent editing, not measuring */
  seconds = 0;
  private readonly preserved = new Map<number, Float32Array[]>();

  constructor(private readonly native: GraftNative, private readonly graph: NativeGraphModel, readonly method: SequenceMethod, private readonly s: SequenceSettings) {
    fs.mkdirSync(s.scratch, { recursive: true });
  }

  /** One more edit on top of the stack: a single request for ROME, a batch for the others. */
  async apply(batch: EditRequest[]): Promise<void> {
    if (this.method === 'rome' && batch.length !== 1) throw new Error(`ROME edits one fact at a time, got a batch of ${batch.length}`);
    const source = { modelPath: this.s.modelPath, corpus: this.s.corpus, statisticsDir: this.s.statisticsDir, out: this.s.scratch };
    const started = performance.now();
    if (this.method === 'rome') {
      const r = await romeEdit(this.native, this.graph, { ...source, request: batch[0]!, hparams: this.s.rome, overlays: this.stack });
      this.stack = mergedOverlays([...this.stack, { layer: r.layer, rank: 1, u: r.u, v: r.v }]);
    } else {
      const r = await batchEdit(this.native, this.graph, {
        ...source, requests: batch, hparams: this.s.batch(this.method), overlays: this.stack, projector: this.s.projector,
        preservedKeys: (layer) => this.preserved.get(layer) ?? [],
      });
      for (const k of r.keys) this.preserved.set(k.layer, [...(this.preserved.get(k.layer) ?? []), ...k.keys]);
      this.stack = mergedOverlays([...this.stack, ...r.factors]);
    }
    this.seconds += (performance.now() - started) / 1000;
    for (const f of fs.readdirSync(this.s.scratch)) fs.rmSync(path.join(this.s.scratch, f));
  }
}
