import { createParamDecorator, ExecutionContext, UnauthorizedException } from '@nestjs/common';
import { Principal, PRINCIPAL_REQUEST_KEY } from './principal';

/**
 * The caller of this request, as authenticated by the global API-key guard (which stores it on
 * the request). Fails closed: a request the guard did not authenticate gets a 401, never a
 * default principal.
 */
export const CurrentPrincipal = createParamDecorator((_data: unknown, ctx: ExecutionContext): Principal => {
  const req = ctx.switchToHttp().getRequest<Record<string, unknown>>();
  const principal = req[PRINCIPAL_REQUEST_KEY] as Principal | undefined;
  if (!principal) throw new UnauthorizedException('This endpoint needs an API key (Authorization: Bearer <key>)');
  return principal;
});
