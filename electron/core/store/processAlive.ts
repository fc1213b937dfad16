// Whether the process that claimed a running edit or batch run still exists: signal 0 tests
// for it without touching it (EPERM: it exists but belongs to another user).
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
