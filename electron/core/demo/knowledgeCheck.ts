// Does the model know its world? Every fact is asked through each phrasing it was trained in,
// its two held-out paraphrases (phrasings the model saw only with other subjects) and the
// relation's unseen wording (never in the corpus); a prompt counts as answered when greedy
// decoding would produce the whole answer (teacher-forced top-1 on every answer token).
import { scoreContinuations } from '../edits/metrics.ts';
import type { NativeGraphModel } from '../native/graphTypes.ts';
import { factPrompts, type FactWorld, type PromptSet, type RelationId } from './factWorld.ts';

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
  unseen: KnowledgeShare;
  byRelation: Record<string, Record<PromptSet, KnowledgeShare>>;
  /** Training-template prompts the model gets wrong (at most 20). */
  misses: { prompt: string; answer: string }[];
}

function share(answered: number, prompts: number): KnowledgeShare {
  return { prompts, answered, share: prompts ? answered / prompts : 0 };
}

export async function knowledgeCheck(graph: NativeGraphModel, world: FactWorld, onFact?: (done: number, total: number) => void): Promise<KnowledgeReport> {
  const sets = ['train', 'heldout', 'unseen'] as const;
  const counts = new Map<RelationId, Record<PromptSet, [number, number]>>();
  let known = 0;
  const misses: KnowledgeReport['misses'] = [];
  for (const [i, fact] of world.facts.entries()) {
    const c = counts.get(fact.relation) ?? { train: [0, 0], heldout: [0, 0], unseen: [0, 0] };
    counts.set(fact.relation, c);
    let allTrain = true;
    for (const which of sets) {
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
  const total = (which: PromptSet): [number, number] => {
    let answered = 0, prompts = 0;
    for (const c of counts.values()) {
      answered += c[which][0];
      prompts += c[which][1];
    }
    return [answered, prompts];
  };
  return {
    facts: world.facts.length,
    factsKnown: share(known, world.facts.length),
    train: share(...total('train')),
    heldout: share(...total('heldout')),
    unseen: share(...total('unseen')),
    byRelation: Object.fromEntries([...counts].map(([r, c]) => [r, { train: share(...c.train), heldout: share(...c.heldout), unseen: share(...c.unseen) }])),
    misses,
  };
}
