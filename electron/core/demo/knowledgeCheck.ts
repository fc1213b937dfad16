// Does the model know its world? Every fact is asked through each training template and each
// held-out template; a prompt counts as answered when greedy decoding would produce the whole
// answer (teacher-forced top-1 on every answer token).
import { scoreContinuations } from '../edits/metrics.ts';
import type { NativeGraphModel } from '../native/graphTypes.ts';
import { factPrompts, type FactWorld, type RelationId } from './factWorld.ts';

export interface KnowledgeShare {
  prompts: number;
  answered: number;
  share: number;
}

export interface KnowledgeReport {
  facts: number;
  /** Facts answered through every one of their training templates. */
  factsKnown: KnowledgeShare;
  train: KnowledgeShare;
  heldout: KnowledgeShare;
  byRelation: Record<string, { train: KnowledgeShare; heldout: KnowledgeShare }>;
  /** Training-template prompts the model gets wrong (at most 20). */
  misses: { prompt: string; answer: string }[];
}

function share(answered: number, prompts: number): KnowledgeShare {
  return { prompts, answered, share: prompts ? answered / prompts : 0 };
}

export async function knowledgeCheck(graph: NativeGraphModel, world: FactWorld, onFact?: (done: number, total: number) => void): Promise<KnowledgeReport> {
  const counts = new Map<RelationId, { train: [number, number]; heldout: [number, number] }>();
  let known = 0;
  const misses: KnowledgeReport['misses'] = [];
  for (const [i, fact] of world.facts.entries()) {
    const c = counts.get(fact.relation) ?? { train: [0, 0], heldout: [0, 0] };
    counts.set(fact.relation, c);
    let allTrain = true;
    for (const which of ['train', 'heldout'] as const) {
      const prompts = factPrompts(world, fact, which);
      const scores = await scoreContinuations(graph, prompts.map((p) => p.prompt), prompts[0]!.answer, []);
      scores.forEach((s, j) => {
        const ok = s.accuracy === 1;
        c[which][0] += ok ? 1 : 0;
        c[which][1]++;
        if (!ok && which === 'train') {
          allTrain = false;
          if (misses.length < 20) misses.push({ prompt: prompts[j]!.prompt, answer: prompts[j]!.answer });
        }
      });
    }
    if (allTrain) known++;
    onFact?.(i + 1, world.facts.length);
  }
  const total = (which: 'train' | 'heldout'): [number, number] => {
    let answered = 0, prompts = 0;
    for (const c of counts.values()) {
      answered += c[which][0];
      prompts += c[which][1];
    }
    return [answered, prompts];
  };
  const [ta, tn] = total('train');
  const [ha, hn] = total('heldout');
  return {
    facts: world.facts.length,
    factsKnown: share(known, world.facts.length),
    train: share(ta, tn),
    heldout: share(ha, hn),
    byRelation: Object.fromEntries([...counts].map(([r, c]) => [r, { train: share(...c.train), heldout: share(...c.heldout) }])),
    misses,
  };
}
