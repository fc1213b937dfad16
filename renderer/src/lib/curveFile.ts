// Sequential-editing curves for the Probes screen: a curve JSON file the researcher loads (what
// `npm run bench -- sequence --json` prints, one curve per method, or what `graft edit MODEL
// --requests F --curve --json` prints, one curve), and curves of different lengths lined up on
// one x axis for a chart. Pure functions, so node tests check them.
import type { CurvePoint } from '../../../electron/api/contract.ts';

export interface NamedCurve {
  label: string;
  points: CurvePoint[];
}

const expected = 'expected the output of npm run bench -- sequence --json or graft edit --curve --json';

function notCurve(why: string): never {
  throw new Error(`this is not a curve JSON: ${why}; ${expected}`);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The file's JSON: the whole text, else the text from the last line where a JSON object starts
 * (output captured with `npm run`'s banner or progress lines before the result).
 */
function jsonOf(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const lines = text.split('\n');
    for (let i = lines.length - 1; i >= 0; i--) {
      if (!lines[i]!.trimStart().startsWith('{')) continue;
      try {
        return JSON.parse(lines.slice(i).join('\n'));
      } catch {
        /* the object starts on an earlier line, or is not there */
      }
    }
    return notCurve(text.trim() === '' ? 'the file is empty' : `it is not JSON (${(error as Error).message})`);
  }
}

function pointsOf(label: string, value: unknown): CurvePoint[] {
  if (!Array.isArray(value)) notCurve(`the curve of ${label} is not a list of points`);
  if (value.length === 0) notCurve(`the curve of ${label} has no points (was the run made with --curve?)`);
  return value.map((p, i) => {
    const where = `point ${i + 1} of ${label}`;
    if (!isObject(p)) notCurve(`${where} is not an object`);
    const number = (key: string): number => {
      const v = p[key];
      if (typeof v !== 'number' || !Number.isFinite(v)) notCurve(`${where} has no number "${key}"`);
      return v;
    };
    const optional = (key: string): number | null => {
      const v = p[key];
      if (v === undefined || v === null) return null;
      if (typeof v !== 'number') notCurve(`${where}: "${key}" is ${JSON.stringify(v)}, not a number or null`);
      return v;
    };
    const edits = number('edits');
    if (!Number.isInteger(edits) || edits < 1) notCurve(`${where}: "edits" is ${edits}, not a count of edits`);
    return { edits, efficacy: number('efficacy'), pNew: number('pNew'), sentencePplRatio: optional('sentencePplRatio'), normGrowth: optional('normGrowth') };
  });
}

/** The curves of a curve JSON file, one per method, or an error that says what the file is instead. */
export function parseCurveFile(text: string): NamedCurve[] {
  const json = jsonOf(text);
  if (!isObject(json)) notCurve(`its JSON is ${Array.isArray(json) ? 'a list' : typeof json}, not an object`);
  if ('curves' in json || json.benchmark === 'sequence') {
    if (json.benchmark !== 'sequence') notCurve(`it has "curves" but is not the sequence benchmark's output (benchmark: ${JSON.stringify(json.benchmark)})`);
    if (!isObject(json.curves) || Object.keys(json.curves).length === 0) notCurve('its "curves" holds no method');
    return Object.entries(json.curves).map(([method, c]) => ({ label: method, points: pointsOf(method, isObject(c) ? c.points : undefined) }));
  }
  if (typeof json.benchmark === 'string') notCurve(`it is the output of the ${json.benchmark} benchmark`);
  if ('curve' in json) {
    if (typeof json.method !== 'string') notCurve('it has a "curve" but no "method"');
    return [{ label: json.method, points: pointsOf(json.method, json.curve) }];
  }
  return notCurve('it has neither "curves" (the sequence benchmark) nor "curve" (graft edit with --requests and --curve)');
}

/**
 * Curves on one x axis (edits so far), for a chart with one line per curve: every x any curve
 * has, ascending, and each curve's values there (null where it has no point).
 */
export function alignCurves(curves: NamedCurve[], value: (p: CurvePoint) => number | null): { x: number[]; values: (number | null)[][] } {
  const x = [...new Set(curves.flatMap((c) => c.points.map((p) => p.edits)))].sort((a, b) => a - b);
  const values = curves.map((c) => {
    const at = new Map(c.points.map((p) => [p.edits, value(p)]));
    return x.map((e) => at.get(e) ?? null);
  });
  return { x, values };
}
