import { HttpStatus } from '@nestjs/common';
import { DomainException } from '../../../common/domain.exception';

/** A user-scoped API key named a kind of repository the deployment allows only to admin keys. */
export class RepoUrlForbiddenException extends DomainException {
  readonly code = 'TASK_REPO_URL_FORBIDDEN';
  readonly status = HttpStatus.FORBIDDEN;
}

/** repo_url names (or resolves to) a loopback, private, link-local or metadata address. */
export class RepoHostForbiddenException extends DomainException {
  readonly code = 'TASK_REPO_HOST_FORBIDDEN';
  readonly status = HttpStatus.BAD_REQUEST;
}

/** repo_url is a local path into the service's own files, /proc, or another task's workspace. */
export class RepoPathForbiddenException extends DomainException {
  readonly code = 'TASK_REPO_PATH_FORBIDDEN';
  readonly status = HttpStatus.BAD_REQUEST;
}

/** The host of repo_url could not be resolved at clone time. */
export class RepoHostUnresolvedException extends DomainException {
  readonly code = 'TASK_REPO_HOST_UNRESOLVED';
  readonly status = HttpStatus.BAD_REQUEST;
}

/** The installed git cannot be pinned to the checked addresses (`http.curloptResolve` needs git 2.37). */
export class GitCannotPinException extends DomainException {
  readonly code = 'TASK_GIT_CANNOT_PIN';
  readonly status = HttpStatus.INTERNAL_SERVER_ERROR;
}
