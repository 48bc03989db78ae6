// A form's submission: whether it is under way, and the failure of the last attempt.

export class Submission {
  busy = $state(false);
  failure = $state<unknown>(null);

  /** Runs `send` (clearing the last failure); true when it succeeded, else the failure is kept. */
  run = async (send: () => Promise<void>): Promise<boolean> => {
    this.busy = true;
    this.failure = null;
    try {
      await send();
      return true;
    } catch (error) {
      this.failure = error;
      return false;
    } finally {
      this.busy = false;
    }
  };
}
