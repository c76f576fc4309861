import { Injectable } from '@nestjs/common';

/** API keys, stored hashed. (Skeleton: filled in by the access-control work.) */
@Injectable()
export class ApiKeyService {
  hasKeys(): boolean {
    return false;
  }
}
