import ipaddr from 'ipaddr.js';

/**
 * Host names that lead to a cloud provider's instance metadata service (credentials of the
 * machine) or to the machine itself, refused by name even before they are resolved.
 */
const METADATA_HOST_NAMES = new Set([
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.azure.internal',
  'metadata.tencentyun.com',
  'metadata.platformequinix.com',
]);

/** Words for the address ranges ipaddr.js names, as a refusal shows them. */
const RANGE_WORDS: Record<string, string> = {
  unspecified: 'unspecified',
  loopback: 'loopback',
  private: 'private (RFC 1918)',
  uniqueLocal: 'private (unique local, fc00::/7)',
  linkLocal: 'link-local (169.254.0.0/16, fe80::/10; includes cloud metadata 169.254.169.254)',
  carrierGradeNat: 'carrier-grade NAT (100.64.0.0/10)',
  broadcast: 'broadcast',
  multicast: 'multicast',
  reserved: 'reserved',
  benchmarking: 'benchmarking',
  rfc6052: 'NAT64 (embeds an IPv4 address)',
  rfc6145: 'IPv4-translated (embeds an IPv4 address)',
  '6to4': '6to4 (embeds an IPv4 address)',
  teredo: 'Teredo (embeds an IPv4 address)',
};

/**
 * Parses an address literal in any notation the URL parser, git or the C library would read:
 * dotted decimal, one 32-bit number (`2130706433`), hex and octal parts (`0x7f.1`, `0177.0.0.1`),
 * short forms (`127.1`), IPv6 with or without brackets, and IPv4-mapped IPv6
 * (`::ffff:127.0.0.1`), which becomes the IPv4 address it maps to. Null for a host name.
 */
export function parseAddress(host: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (!ipaddr.isValid(bare)) return null;
  return ipaddr.process(bare);
}

/**
 * Why an address must not be cloned from (a description of its range), or null for a public
 * unicast address. Anything that is not plain global unicast is refused: loopback, private,
 * link-local, unspecified, CGNAT, multicast, reserved and IPv6 forms that embed an IPv4 address.
 */
export function internalAddressKind(address: ipaddr.IPv4 | ipaddr.IPv6): string | null {
  const range = address.range();
  if (range === 'unicast') return null;
  return RANGE_WORDS[range] ?? range;
}

/** Lower case and without the trailing dot of a fully qualified name (`LocalHost.` is `localhost`). */
export function normalizeHostName(host: string): string {
  return host.toLowerCase().replace(/\.+$/, '');
}

/** Why a host *name* is internal on its face (before any lookup), or null. */
export function internalHostNameKind(host: string): string | null {
  const name = normalizeHostName(host);
  if (name === 'localhost' || name.endsWith('.localhost')) return 'loopback (localhost)';
  if (METADATA_HOST_NAMES.has(name)) return 'cloud metadata service';
  return null;
}

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

/**
 * TASK_REPO_HOST_ALLOWLIST: host names (matched exactly, case-insensitively, trailing dot
 * ignored), addresses and CIDR ranges that may be cloned from although they are internal.
 */
export class HostAllowlist {
  private readonly names = new Set<string>();
  private readonly ranges: Cidr[] = [];

  constructor(readonly entries: readonly string[]) {
    for (const raw of entries) {
      const entry = raw.trim();
      if (!entry) continue;
      const problem = hostAllowlistEntryProblem(entry);
      if (problem) throw new Error(problem);
      if (entry.includes('/')) {
        const [addr, bits] = ipaddr.parseCIDR(entry);
        this.ranges.push(normalizeCidr(addr, bits));
        continue;
      }
      const address = parseAddress(entry);
      if (address) this.ranges.push([address, address.kind() === 'ipv4' ? 32 : 128]);
      else this.names.add(normalizeHostName(entry));
    }
  }

  allowsName(host: string): boolean {
    return this.names.has(normalizeHostName(host));
  }

  allowsAddress(address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
    return this.ranges.some(([net, bits]) => address.kind() === net.kind() && address.match(net, bits));
  }
}

/** An IPv4-mapped CIDR (`::ffff:10.0.0.0/104`) becomes its IPv4 range, as addresses are compared mapped-to-IPv4. */
function normalizeCidr(addr: ipaddr.IPv4 | ipaddr.IPv6, bits: number): Cidr {
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
    return [(addr as ipaddr.IPv6).toIPv4Address(), bits - 96];
  }
  return [addr, bits];
}

const HOST_NAME = /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/;

/** Why one TASK_REPO_HOST_ALLOWLIST entry is not a host name, an address or a CIDR range; null when it is. */
export function hostAllowlistEntryProblem(entry: string): string | null {
  if (entry.includes('/')) {
    try {
      ipaddr.parseCIDR(entry);
      return null;
    } catch {
      return `"${entry}" is not a host name, an IP address or a CIDR range (e.g. 10.0.0.0/8 or fd00::/8)`;
    }
  }
  if (parseAddress(entry) || HOST_NAME.test(entry)) return null;
  return `"${entry}" is not a host name, an IP address or a CIDR range (e.g. git.corp.example, 10.0.0.5, 10.0.0.0/8)`;
}
