// A method's hyperparameters from the choices a user made (CLI flags or the app's form), on
// top of the method's defaults for the model. The CLI and the app share it so that the same
// choice means the same edit, and a knob of one method given to another is refused alike.
import { batchDefaults, checkBatchHparams, type BatchHparams } from './batchEdit.ts';
import type { EditMethod } from './recordedEdit.ts';
import { romeDefaults, type RomeHparams } from './rome.ts';

export { parseLayers } from './layerList.ts';

export interface HparamChoices {
  layer?: number;
  layers?: number[];
  vLr?: number;
  vSteps?: number;
  klFactor?: number;
  vWeightDecay?: number;
  clampNormFactor?: number;
  mom2Adjustment?: boolean;
  mom2Ridge?: number;
  seed?: number;
  mom2UpdateWeight?: number;
  emmetLambda?: number;
  nullspaceThreshold?: number;
  l2?: number;
}

const batchOnly = ['layers', 'mom2UpdateWeight', 'emmetLambda', 'nullspaceThreshold', 'l2'] as const;

/**
 * `name` turns a choice's key into the caller's spelling (e.g. `--mom2-update-weight`), so a
 * refusal names what the user typed.
 */
export function editHparams(
  method: EditMethod, model: { nLayer: number; nFf: number }, c: HparamChoices, name: (key: keyof HparamChoices) => string = (k) => k,
): RomeHparams | BatchHparams {
  const given = <K extends keyof HparamChoices>(k: K): boolean => c[k] !== undefined;
  const shared = <T extends RomeHparams | BatchHparams>(d: T): T => ({
    ...d,
    ...Object.fromEntries((['vLr', 'vSteps', 'klFactor', 'vWeightDecay', 'clampNormFactor', 'mom2Ridge', 'seed'] as const).filter(given).map((k) => [k, c[k]])),
  });
  let hp: RomeHparams | BatchHparams;
  if (method === 'rome') {
    const wrong = batchOnly.find(given);
    if (wrong) throw new Error(`${name(wrong)} belongs to memit, emmet and alphaedit; ROME edits one layer (${name('layer')})`);
    const d = romeDefaults(model.nLayer);
    hp = { ...shared(d), ...(given('layer') ? { layer: c.layer! } : {}), ...(given('mom2Adjustment') ? { mom2Adjustment: c.mom2Adjustment! } : {}) };
    if (!Number.isInteger(hp.layer) || hp.layer < 0 || hp.layer >= model.nLayer) {
      throw new Error(`layer ${hp.layer} is out of range (the model has ${model.nLayer} layers, 0 to ${model.nLayer - 1})`);
    }
  } else {
    if (given('layer')) throw new Error(`${method} edits a range of layers: give ${name('layers')} (a range A-B or a list A,B,…) instead of ${name('layer')}`);
    if (given('mom2Adjustment')) throw new Error(`${name('mom2Adjustment')} belongs to ROME; ${method} always uses the second moments`);
    const d = batchDefaults(method, model.nLayer, model.nFf);
    hp = {
      ...shared(d),
      ...Object.fromEntries(batchOnly.filter(given).map((k) => [k, c[k]])),
    } as BatchHparams;
    checkBatchHparams(hp, model.nLayer);
  }
  if (!Number.isInteger(hp.vSteps) || hp.vSteps < 1) throw new Error(`${name('vSteps')} must be a whole number of at least 1, got ${hp.vSteps}`);
  return hp;
}
