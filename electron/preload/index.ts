// The renderer's only door to the main process: one narrow object on one channel. Raw
// ipcRenderer is never exposed (the contextBridge docs flag that as unsafe), so a compromised
// page can neither pick other channels nor read the IpcRendererEvent (it carries `sender`).
import { contextBridge, ipcRenderer } from 'electron';

const CHANNEL = 'rpc';

contextBridge.exposeInMainWorld('bridge', {
  // Serialised strings only: the same messages travel over a WebSocket in web mode.
  post: (message: string): void => ipcRenderer.send(CHANNEL, String(message)),
  on: (callback: (message: string) => void): void => {
    ipcRenderer.on(CHANNEL, (_event, message: string) => callback(message));
  },
});
