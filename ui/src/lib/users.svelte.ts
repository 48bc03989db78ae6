import { usersList } from './api/users';
import type { UserPage } from './api/types';
import { EMPTY_FILTERS, toUserQuery, type PageSize, type UserFilters } from './users-query';

/**
 * The Users list: filters, paging and the current page. Lives outside the
 * screen so that returning from a user's detail shows the same page.
 */
class UsersList {
  filters = $state<UserFilters>({ ...EMPTY_FILTERS });
  page = $state(0);
  pageSize = $state<PageSize>(25);
  data = $state<UserPage | null>(null);
  loading = $state(false);
  error = $state<unknown>(null);
  private serial = 0;

  /**
   * Fetches the current page. Resolves `true` when this response is the one now
   * shown, `false` when it failed or a newer request overtook it.
   */
  async load(): Promise<boolean> {
    const mine = ++this.serial;
    this.loading = true;
    try {
      const page = await usersList(toUserQuery(this.filters, this.page, this.pageSize));
      if (mine !== this.serial) return false;
      this.data = page;
      this.error = null;
      return true;
    } catch (error) {
      if (mine === this.serial) this.error = error;
      return false;
    } finally {
      if (mine === this.serial) this.loading = false;
    }
  }

  reset(): void {
    this.filters = { ...EMPTY_FILTERS };
    this.page = 0;
  }
}

export const userList = new UsersList();
