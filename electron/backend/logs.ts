// The log drawer's lines: llama.cpp's messages, the engine's and the app's own, and every job
// failure, kept in a ring buffer so a renderer that connects later sees the recent past.
import type { LogLine } from '../api/contract.ts';
import type { EventHub } from './events.ts';

export class LogBuffer {
  private lines: LogLine[] = [];

  constructor(private readonly events: EventHub, private readonly capacity = 1000) {}

  push(level: LogLine['level'], source: LogLine['source'], text: string): void {
    const line: LogLine = { time: new Date().toISOString(), level, source, text: text.replace(/\s+$/, '') };
    if (line.text === '') return;
    this.lines.push(line);
    if (this.lines.length > this.capacity) this.lines.splice(0, this.lines.length - this.capacity);
    this.events.emit('log', line);
  }

  recent(): LogLine[] {
    return [...this.lines];
  }
}

/** node-llama-cpp's levels (fatal, error, warn, info, log, debug) on the drawer's four. */
export function levelOfLlama(level: string): LogLine['level'] {
  if (level === 'fatal' || level === 'error') return 'error';
  if (level === 'warn') return 'warn';
  if (level === 'debug') return 'debug';
  return 'info';
}
