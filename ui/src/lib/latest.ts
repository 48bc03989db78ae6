// Loads that can overlap (a filter changed while the last list was still coming): only the
// newest one's outcome may land, so an older answer arriving late never replaces a newer one.

/** Hands out tickets; a ticket is current until a newer one is taken. */
export class Latest {
  private serial = 0;

  /** A new ticket, making every earlier one stale. */
  take(): () => boolean {
    const mine = ++this.serial;
    return () => mine === this.serial;
  }

  /** The current ticket, without making earlier ones stale (for "load more" after a load). */
  peek(): () => boolean {
    const mine = this.serial;
    return () => mine === this.serial;
  }
}
