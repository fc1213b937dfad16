// How a user writes the layers a batch method edits: "4-8" or "4,5,6". No imports, so the
// renderer reads the field exactly as the CLI reads --layers.

/** `name` is how the caller's user spells the option, for the message. */
export function parseLayers(value: string, name = 'layers'): number[] {
  const range = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(value);
  if (range) {
    const [a, b] = [Number(range[1]), Number(range[2])];
    if (b < a) throw new Error(`${name} ${value}: the range runs backwards`);
    return Array.from({ length: b - a + 1 }, (_, i) => a + i);
  }
  const list = value.split(',').map((x) => x.trim());
  if (list.some((x) => !/^\d+$/.test(x))) throw new Error(`${name} must be a range like 4-8 or a list like 4,5,6, got '${value}'`);
  return list.map(Number);
}
