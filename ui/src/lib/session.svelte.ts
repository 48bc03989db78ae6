import { appStatus } from './api/app';
import { setAuthErrorHandler, toCommandError } from './api/errors';
import { logout, me as fetchMe, sessionActivity, sessionStatus } from './api/session';
import type { AppStatus, CommandError, Me } from './api/types';
import { confirmation } from './confirm.svelte';
import { errorCopy } from './error-copy';
import { landingSection } from './nav';
import { phaseFor } from './phase';
import { router } from './router.svelte';
import { toasts } from './toasts.svelte';

class Session {
  booting = $state(true);
  status = $state<AppStatus | null>(null);
  bootError = $state<CommandError | null>(null);
  me = $state<Me | null>(null);
  /** Why the operator was sent back to sign-in (shown on the login screen). */
  notice = $state<string | null>(null);
  mfaBannerDismissed = $state(false);
  /** The operator the console locked itself for after the idle timeout (the screen they were
   * on stays in the router, and comes back when they sign in again). */
  locked = $state<string | null>(null);

  phase = $derived(phaseFor(this.booting, this.status, this.me, this.locked !== null));

  private poll: ReturnType<typeof setInterval> | undefined;
  private lastReport = 0;

  constructor() {
    setAuthErrorHandler((error) => this.onAuthError(error));
    if (typeof window !== 'undefined') {
      for (const kind of ['pointerdown', 'keydown', 'wheel', 'pointermove'] as const) {
        window.addEventListener(kind, () => this.activity(), { passive: true, capture: true });
      }
    }
  }

  /** A key, a click, a scroll or a move: told to the core at most every few seconds. */
  private activity(): void {
    if (this.me === null || this.locked !== null) return;
    const now = Date.now();
    if (now - this.lastReport < 5000) return;
    this.lastReport = now;
    sessionActivity()
      .then((s) => {
        if (s.state === 'locked') this.lock(s.locked_username);
      })
      .catch(() => {});
  }

  /** Asks the core every couple of seconds whether the console locked itself. */
  private watchLock(): void {
    clearInterval(this.poll);
    this.poll = setInterval(() => {
      if (this.me === null || this.locked !== null) return;
      sessionStatus()
        .then((s) => {
          if (s.state === 'locked') this.lock(s.locked_username);
          else if (s.state === 'signed_out' && this.me !== null) {
            this.toLogin('You were signed out. Sign in again to continue.');
          }
        })
        .catch(() => {});
    }, 2000);
  }

  /** Shows the lock screen; `me` and the route stay, so unlocking returns to the same screen. */
  lock(username: string | null): void {
    confirmation.answer(false);
    toasts.clear();
    this.locked = username ?? this.me?.username ?? '';
  }

  async boot(): Promise<void> {
    this.booting = true;
    this.bootError = null;
    try {
      const status = await appStatus();
      this.status = status;
      if (status.me) {
        this.signedIn(status.me);
      } else {
        this.me = null;
      }
    } catch (error) {
      this.status = null;
      this.bootError = toCommandError(error);
    } finally {
      this.booting = false;
    }
  }

  /** After setup, sign-in, MFA step or a password change. */
  signedIn(me: Me): void {
    const first = this.me === null || this.me.user_id !== me.user_id;
    this.me = me;
    this.locked = null;
    this.notice = null;
    this.lastReport = Date.now();
    this.watchLock();
    if (this.status && !this.status.initialised) {
      this.status = { ...this.status, initialised: true };
    }
    if (first) {
      this.mfaBannerDismissed = false;
      router.go({ name: landingSection(me.permissions) });
    }
  }

  /** Re-reads the signed-in operator (roles, MFA state…) from the core. */
  async refreshMe(): Promise<void> {
    try {
      const me = await fetchMe();
      if (me === null) {
        this.toLogin('You were signed out. Sign in again to continue.');
      } else {
        this.me = me;
      }
    } catch {
      // auth errors are handled by onAuthError; others leave the current state
    }
  }

  /** The console moved to another database (its session ended there): sign in to the new one. */
  async databaseMoved(to: string): Promise<void> {
    this.toLogin(`This console now uses ${to}. Sign in to it.`);
    try {
      this.status = await appStatus();
    } catch (error) {
      this.bootError = toCommandError(error);
    }
  }

  async signOut(): Promise<void> {
    try {
      await logout();
    } catch (error) {
      // The local session is dropped either way; say so if the core complained.
      const copy = errorCopy(error);
      if (copy.code !== 'not_signed_in' && copy.code !== 'session_ended') {
        toasts.error(`Signed out locally; the core reported: ${copy.detail}`);
      }
    }
    this.toLogin(null);
  }

  private toLogin(notice: string | null): void {
    confirmation.answer(false);
    toasts.clear();
    clearInterval(this.poll);
    this.locked = null;
    this.me = null;
    this.notice = notice;
    if (this.status) {
      this.status = { ...this.status, me: null };
    }
  }

  private onAuthError(error: CommandError): void {
    if (this.me === null) {
      return; // already on a signed-out screen; the form shows the error itself
    }
    if (error.code === 'session_locked') {
      this.lock(null);
      return;
    }
    if (error.code === 'must_change_password') {
      this.me = { ...this.me, must_change_password: true };
      return;
    }
    if (error.code === 'mfa_enrolment_required') {
      this.me = { ...this.me, must_enrol_mfa: true };
      return;
    }
    const copy = errorCopy(error);
    this.toLogin(error.code === 'session_ended' ? `${copy.title}. ${copy.detail}` : copy.detail);
  }
}

export const session = new Session();
