// The state of a list screen's list: the rows last loaded, the failure of the last load, and
// whether one is under way. Overlapping loads land newest only (see `Latest`).
import { Latest } from './latest';

export class ListLoader<T> {
  /** Null until the first load succeeds. */
  rows = $state<T | null>(null);
  failure = $state<unknown>(null);
  loading = $state(false);
  readonly latest = new Latest();

  constructor(private readonly fetch: () => Promise<T>) {}

  /** Loads afresh; resolves once this load (or a newer one) is over. */
  load = async (): Promise<void> => {
    const current = this.latest.take();
    this.loading = true;
    try {
      const result = await this.fetch();
      if (!current()) return;
      this.rows = result;
      this.failure = null;
    } catch (error) {
      if (current()) this.failure = error;
    } finally {
      if (current()) this.loading = false;
    }
  };
}
