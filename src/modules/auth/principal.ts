/**
 * Who is calling. Attached to the request by the global API-key guard; read it in a handler
 * with `@CurrentPrincipal()`. Without configured API keys every caller is the `local` admin.
 */
export interface Principal {
  /** Name of the API key (`local` when no keys are configured). */
  keyName: string;
  /** `admin` sees everything; `user` sees only the data of `userId`. */
  scope: 'admin' | 'user';
  /** The user a `user`-scope key belongs to; null for admin keys. */
  userId: string | null;
}

/** The principal of every request when no API keys are configured (local, unauthenticated mode). */
export const LOCAL_ADMIN: Principal = Object.freeze({ keyName: 'local', scope: 'admin', userId: null }) as Principal;

/** Property of the Fastify request the guard stores the principal under. */
export const PRINCIPAL_REQUEST_KEY = 'principal';

/** True when the principal may see data belonging to `userId`. */
export function canAccessUser(principal: Principal, userId: string | null): boolean {
  return principal.scope === 'admin' || (userId !== null && principal.userId === userId);
}
