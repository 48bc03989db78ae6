export interface ConfirmRequest {
  title: string;
  message: string;
  confirmLabel: string;
  /** Destructive actions get a red confirm button. */
  danger?: boolean;
}

class ConfirmState {
  request = $state<ConfirmRequest | null>(null);
  private resolve: ((ok: boolean) => void) | null = null;

  /** Shows the confirmation dialog; resolves `true` when the operator confirms. */
  ask(request: ConfirmRequest): Promise<boolean> {
    this.resolve?.(false);
    this.request = request;
    return new Promise<boolean>((resolve) => {
      this.resolve = resolve;
    });
  }

  answer(ok: boolean): void {
    const resolve = this.resolve;
    this.resolve = null;
    this.request = null;
    resolve?.(ok);
  }
}

export const confirmation = new ConfirmState();
