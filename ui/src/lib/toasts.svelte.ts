export type ToastTone = 'success' | 'error' | 'info';

export interface Toast {
  id: number;
  tone: ToastTone;
  text: string;
}

const SUCCESS_MS = 5000;

class Toasts {
  items = $state<Toast[]>([]);
  private next = 1;

  show(tone: ToastTone, text: string): void {
    const id = this.next++;
    this.items = [...this.items, { id, tone, text }].slice(-4);
    if (tone !== 'error') {
      setTimeout(() => this.dismiss(id), SUCCESS_MS);
    }
  }

  success(text: string): void {
    this.show('success', text);
  }

  error(text: string): void {
    this.show('error', text);
  }

  dismiss(id: number): void {
    this.items = this.items.filter((toast) => toast.id !== id);
  }

  clear(): void {
    this.items = [];
  }
}

export const toasts = new Toasts();
