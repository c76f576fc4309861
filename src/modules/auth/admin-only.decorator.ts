import { SetMetadata } from '@nestjs/common';

export const ADMIN_ONLY_KEY = 'asa:adminOnly';

/** Restricts a handler (or controller) to admin-scope keys: user-scope keys get a 403. */
export const AdminOnly = () => SetMetadata(ADMIN_ONLY_KEY, true);
