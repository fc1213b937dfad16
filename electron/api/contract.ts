// The one typed contract between the renderer and a backend (Electron main over IPC, later the
// web server over WebSocket). Types only and no imports, so every side can depend on it.
// A first placeholder: real requests, results and progress events arrive with the app issue.

/** Calls the renderer makes; every call is async because it crosses a process boundary. */
export interface Api {
  version(): Promise<{ app: string }>;
}

/** Pushes from the backend to the renderer; fire-and-forget, hence `void`. */
export interface Events {
  log(line: string): void;
}
