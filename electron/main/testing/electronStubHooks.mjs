// Module resolution hook (node --import of registerElectronStub.mjs installs it): the bare
// specifier 'electron' becomes electronStub.mjs; everything else resolves as usual.
export async function resolve(specifier, context, next) {
  if (specifier === 'electron') return { url: new URL('./electronStub.mjs', import.meta.url).href, shortCircuit: true };
  return next(specifier, context);
}
