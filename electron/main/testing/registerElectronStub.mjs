// `node --import …/registerElectronStub.mjs`: makes `import … from 'electron'` load the stub.
import { register } from 'node:module';

register('./electronStubHooks.mjs', import.meta.url);
