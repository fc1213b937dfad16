// Token rows for training: each row starts with BOS and packs whole sentences, shuffled anew
// every epoch, so every fact is seen right after BOS (as prompts are asked) and after other
// text alike. A sentence that does not fit is cut; its start still teaches something.
import { SeededRandom } from '../util/seededRandom.ts';

export interface RowTokenizer {
  encode(text: string): number[];
  readonly bos: number;
}

export class TrainingRows {
  private readonly rng: SeededRandom;
  private readonly plain: number[][];
  private readonly spaced: number[][];
  private readonly bos: number;
  private order: number[] = [];
  private next = 0;
  epoch = 0;

  constructor(sentences: string[], tokenizer: RowTokenizer, private readonly rowLength: number, seed: number) {
    if (sentences.length === 0) throw new Error('there are no sentences to train on');
    this.rng = new SeededRandom(seed);
    // After BOS a sentence starts bare; after another sentence it follows a space, which
    // byte-level BPE folds into its first token.
    this.plain = sentences.map((s) => tokenizer.encode(s));
    this.spaced = sentences.map((s) => tokenizer.encode(` ${s}`));
    this.bos = tokenizer.bos;
  }

  private nextSentence(): number {
    if (this.next >= this.order.length) {
      this.order = this.plain.map((_, i) => i);
      for (let i = this.order.length - 1; i > 0; i--) {
        const j = this.rng.nextUint32() % (i + 1);
        [this.order[i], this.order[j]] = [this.order[j]!, this.order[i]!];
      }
      this.next = 0;
      this.epoch++;
    }
    return this.order[this.next++]!;
  }

  /** `count` rows of rowLength ids, concatenated. */
  batch(count: number): Int32Array {
    const out = new Int32Array(count * this.rowLength);
    for (let r = 0; r < count; r++) {
      let at = r * this.rowLength;
      const end = at + this.rowLength;
      out[at++] = this.bos;
      let first = true;
      while (at < end) {
        const s = this.nextSentence();
        const tokens = first ? this.plain[s]! : this.spaced[s]!;
        first = false;
        for (let i = 0; i < tokens.length && at < end; i++) out[at++] = tokens[i]!;
      }
    }
    return out;
  }
}
