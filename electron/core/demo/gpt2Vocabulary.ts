// The GGUF metadata that makes llama.cpp load a BpeTokenizer as its own "gpt2" vocabulary.
import type { KvEntry } from '../native/binding.ts';
import { GPT2_PRE_TOKENIZER, type BpeTokenizer } from './bpeTokenizer.ts';

export function gpt2VocabularyKv(tokenizer: BpeTokenizer): KvEntry[] {
  return [
    { key: 'tokenizer.ggml.model', type: 'str', value: 'gpt2' },
    // Without a pre-tokenizer name llama.cpp falls back to 'default' (a different split) and
    // warns that quality is degraded; 'gpt-2' selects the split bpeTokenizer.ts reproduces.
    { key: 'tokenizer.ggml.pre', type: 'str', value: GPT2_PRE_TOKENIZER },
    { key: 'tokenizer.ggml.tokens', type: 'arr', itemType: 'str', value: [...tokenizer.tokens] },
    { key: 'tokenizer.ggml.token_type', type: 'arr', itemType: 'i32', value: [...tokenizer.types] },
    { key: 'tokenizer.ggml.merges', type: 'arr', itemType: 'str', value: [...tokenizer.merges] },
    { key: 'tokenizer.ggml.bos_token_id', type: 'u32', value: tokenizer.bos },
    { key: 'tokenizer.ggml.eos_token_id', type: 'u32', value: tokenizer.eos },
    // llama.cpp's gpt2 defaults would make token 11 both BOS and EOS and add neither.
    { key: 'tokenizer.ggml.add_bos_token', type: 'bool', value: true },
    { key: 'tokenizer.ggml.add_eos_token', type: 'bool', value: false },
  ];
}
