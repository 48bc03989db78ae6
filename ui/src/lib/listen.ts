// Subscribing to a backend event for as long as a screen is shown.
import type { UnlistenFn } from './api/events';

/**
 * Subscribes `handler` with `subscribe` (one of the `on…` functions of `api/events`) and returns
 * the function that ends it, safe to call before the subscription is in place (it then ends as
 * soon as it is). A subscription that fails is ignored: the screen keeps what it loaded and its
 * Refresh still works. Return it from `onMount` so it ends with the screen.
 */
export function listenWhileShown<E>(
  subscribe: (handler: (event: E) => void) => Promise<UnlistenFn>,
  handler: (event: E) => void,
): () => void {
  let stopped = false;
  let unlisten: UnlistenFn | null = null;
  subscribe(handler)
    .then((stop) => {
      if (stopped) stop();
      else unlisten = stop;
    })
    .catch(() => {
      // Without events the screen still shows what was loaded.
    });
  return () => {
    stopped = true;
    unlisten?.();
  };
}
