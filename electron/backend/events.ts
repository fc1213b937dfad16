// The backend's pushes, typed by the contract's Events, for any transport to forward.
import type { EventName, Events } from '../api/contract.ts';

export type EventListener = <E extends EventName>(event: E, ...data: Parameters<Events[E]>) => void;

export class EventHub {
  private listeners = new Set<EventListener>();

  /** Returns the unsubscribe function. */
  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit<E extends EventName>(event: E, ...data: Parameters<Events[E]>): void {
    for (const l of this.listeners) {
      // one broken transport (a closed socket) must not keep the others from hearing it
      try {
        l(event, ...data);
      } catch {
        /* the transport reports its own failures */
      }
    }
  }
}
