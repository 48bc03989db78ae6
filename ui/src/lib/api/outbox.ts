import { call } from './ipc';
import type {
  DeliveryReportView,
  MailSettingsView,
  MailTestReply,
  OutboxListQuery,
  OutboxMessageView,
} from './types';

/** The outbox, newest first (administrators and compliance officers). */
export function outboxList(req: OutboxListQuery): Promise<OutboxMessageView[]> {
  return call<OutboxMessageView[]>('outbox_list', { req });
}

/** Puts a queued or failed message back in the queue, due now. */
export function outboxRetry(req: { id: string }): Promise<OutboxMessageView> {
  return call<OutboxMessageView>('outbox_retry', { req });
}

/** Cancels a queued or failed message: it is never sent. */
export function outboxCancel(req: { id: string }): Promise<OutboxMessageView> {
  return call<OutboxMessageView>('outbox_cancel', { req });
}

/** Sends what is due now, with the signed-in operator's contact key. */
export function outboxDeliver(): Promise<DeliveryReportView> {
  return call<DeliveryReportView>('outbox_deliver');
}

/** The effective `[mail]` settings (never the password). */
export function mailSettings(): Promise<MailSettingsView> {
  return call<MailSettingsView>('mail_settings');
}

/** Sends one test message; resolves with what the server answered. */
export function mailTest(req: { address: string }): Promise<MailTestReply> {
  return call<MailTestReply>('mail_test', { req });
}
