import { Inject, Injectable, Logger } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { timingSafeEqual } from 'node:crypto';
import { authConfig } from '../../config/auth.config';
import { hashApiKey, readApiKeyFile } from './api-key-file';
import { Principal } from './principal';

interface LoadedKey {
  principal: Principal;
  digest: Buffer;
}

/**
 * API keys from `API_KEYS_FILE`, stored as SHA-256 hashes. Loaded (and validated) once when
 * the service starts: a bad file stops the start; edits to the file need a restart.
 */
@Injectable()
export class ApiKeyService {
  private readonly logger = new Logger(ApiKeyService.name);
  private readonly keys: LoadedKey[];

  constructor(@Inject(authConfig.KEY) readonly config: ConfigType<typeof authConfig>) {
    this.keys = readApiKeyFile(config.apiKeysFile, { required: config.apiKeysFileRequired }).keys.map((e) => ({
      principal: Object.freeze({ keyName: e.name, scope: e.scope, userId: e.scope === 'user' ? (e.user_id ?? null) : null }),
      digest: Buffer.from(e.sha256, 'hex'),
    }));
    if (this.keys.length > 0) this.logger.log(`${this.keys.length} API key(s) loaded from ${config.apiKeysFile}`);
  }

  /** False when no keys are configured: every caller is then the local admin (loopback only). */
  hasKeys(): boolean {
    return this.keys.length > 0;
  }

  /** The principal of a presented key, or null when it matches no configured key. */
  authenticate(presented: string): Principal | null {
    const digest = Buffer.from(hashApiKey(presented), 'hex');
    let found: Principal | null = null;
    // Compare against every entry, in constant time each, so timing says nothing about which key is close.
    for (const key of this.keys) {
      if (timingSafeEqual(key.digest, digest) && found === null) found = key.principal;
    }
    return found;
  }
}
