import { HostAllowlist, hostAllowlistEntryProblem, internalAddressKind, internalHostNameKind, parseAddress } from './host-address';

const kindOf = (host: string) => {
  const a = parseAddress(host);
  if (!a) throw new Error(`${host} did not parse as an address`);
  return internalAddressKind(a);
};

describe('address classification', () => {
  it.each([
    // Loopback in every notation the URL parser, git or inet_aton accept.
    ['127.0.0.1', '127.0.0.1', /loopback/],
    ['2130706433', '127.0.0.1', /loopback/],
    ['0x7f000001', '127.0.0.1', /loopback/],
    ['0x7f.1', '127.0.0.1', /loopback/],
    ['0177.0.0.1', '127.0.0.1', /loopback/],
    ['017700000001', '127.0.0.1', /loopback/],
    ['127.1', '127.0.0.1', /loopback/],
    ['127.255.255.254', '127.255.255.254', /loopback/],
    ['::1', '::1', /loopback/],
    ['[::1]', '::1', /loopback/],
    // IPv4-mapped IPv6: judged as the IPv4 address it maps to.
    ['[::ffff:127.0.0.1]', '127.0.0.1', /loopback/],
    ['::ffff:7f00:1', '127.0.0.1', /loopback/],
    ['::ffff:10.1.2.3', '10.1.2.3', /private/],
    ['::ffff:169.254.169.254', '169.254.169.254', /link-local/],
    // Private, link-local, metadata, unspecified, CGNAT.
    ['10.0.0.1', '10.0.0.1', /private \(RFC 1918\)/],
    ['172.16.5.4', '172.16.5.4', /private/],
    ['172.31.255.255', '172.31.255.255', /private/],
    ['192.168.1.1', '192.168.1.1', /private/],
    ['169.254.169.254', '169.254.169.254', /link-local.*metadata/],
    ['fe80::1', 'fe80::1', /link-local/],
    ['fd00:ec2::254', 'fd00:ec2::254', /unique local/],
    ['fc00::1', 'fc00::1', /unique local/],
    ['0.0.0.0', '0.0.0.0', /unspecified/],
    ['0', '0.0.0.0', /unspecified/],
    ['::', '::', /unspecified/],
    ['100.64.0.1', '100.64.0.1', /carrier-grade NAT/],
    ['100.100.100.200', '100.100.100.200', /carrier-grade NAT/],
    ['255.255.255.255', '255.255.255.255', /broadcast/],
    ['224.0.0.1', '224.0.0.1', /multicast/],
    // IPv6 forms that carry an IPv4 address to a gateway.
    ['64:ff9b::7f00:1', '64:ff9b::7f00:1', /NAT64/],
    ['2002:7f00:1::', '2002:7f00:1::', /6to4/],
  ])('%s is %s, refused (%s)', (host, normal, kind) => {
    expect(parseAddress(host)?.toString()).toBe(normal);
    expect(kindOf(host)).toMatch(kind);
  });

  it.each(['8.8.8.8', '140.82.112.3', '2606:4700::1111', '[2a00:1450:4001:82b::200e]', '::ffff:8.8.8.8', '172.32.0.1', '100.128.0.1', '11.0.0.1'])(
    '%s is public unicast',
    (host) => {
      expect(kindOf(host)).toBeNull();
    },
  );

  it('does not take host names for addresses', () => {
    for (const name of ['github.com', 'localhost', 'git.example.internal', '127.0.0.1.nip.io', 'metadata.google.internal']) {
      expect(parseAddress(name)).toBeNull();
    }
  });

  it('names localhost and metadata hosts, in any case and with a trailing dot', () => {
    expect(internalHostNameKind('localhost')).toMatch(/loopback/);
    expect(internalHostNameKind('LocalHost.')).toMatch(/loopback/);
    expect(internalHostNameKind('anything.localhost')).toMatch(/loopback/);
    expect(internalHostNameKind('metadata.google.internal')).toMatch(/metadata/);
    expect(internalHostNameKind('Metadata.Google.Internal.')).toMatch(/metadata/);
    expect(internalHostNameKind('instance-data')).toMatch(/metadata/);
    expect(internalHostNameKind('github.com')).toBeNull();
    expect(internalHostNameKind('localhost.example.com')).toBeNull();
  });
});

describe('HostAllowlist (TASK_REPO_HOST_ALLOWLIST)', () => {
  const list = new HostAllowlist(['git.corp.example', '10.0.0.0/8', '192.168.1.20', 'fd00:1::/32', '::ffff:172.16.0.0/108', ' ']);
  const addr = (s: string) => parseAddress(s)!;

  it('matches names exactly, case-insensitively, trailing dot ignored', () => {
    expect(list.allowsName('git.corp.example')).toBe(true);
    expect(list.allowsName('GIT.corp.example.')).toBe(true);
    expect(list.allowsName('other.corp.example')).toBe(false);
    expect(list.allowsName('corp.example')).toBe(false);
  });

  it('matches addresses and CIDR ranges, IPv4-mapped forms as their IPv4 address', () => {
    expect(list.allowsAddress(addr('10.200.3.4'))).toBe(true);
    expect(list.allowsAddress(addr('::ffff:10.200.3.4'))).toBe(true);
    expect(list.allowsAddress(addr('0x0a.1'))).toBe(true);
    expect(list.allowsAddress(addr('11.0.0.1'))).toBe(false);
    expect(list.allowsAddress(addr('192.168.1.20'))).toBe(true);
    expect(list.allowsAddress(addr('192.168.1.21'))).toBe(false);
    expect(list.allowsAddress(addr('fd00:1:2::3'))).toBe(true);
    expect(list.allowsAddress(addr('fd00:2::3'))).toBe(false);
    // ::ffff:172.16.0.0/108 is 172.16.0.0/12.
    expect(list.allowsAddress(addr('172.20.1.1'))).toBe(true);
    expect(list.allowsAddress(addr('172.32.1.1'))).toBe(false);
    expect(list.allowsAddress(addr('127.0.0.1'))).toBe(false);
  });

  it('an address entry is not a name entry (and the other way round)', () => {
    const l = new HostAllowlist(['127.0.0.1']);
    expect(l.allowsAddress(addr('2130706433'))).toBe(true);
    expect(l.allowsName('localhost')).toBe(false);
  });

  it.each([
    ['git.corp.example', null],
    ['10.0.0.0/8', null],
    ['fd00::/8', null],
    ['[::1]', null],
    ['10.0.0.0/33', /not a host name, an IP address or a CIDR range/],
    ['exa mple', /not a host name/],
    ['http://host', /not a host name/],
    ['-bad.example', /not a host name/],
  ])('entry %j', (entry, problem) => {
    const p = hostAllowlistEntryProblem(entry);
    if (problem === null) expect(p).toBeNull();
    else expect(p).toMatch(problem);
  });

  it('refuses a bad entry when built', () => {
    expect(() => new HostAllowlist(['10.0.0.0/99'])).toThrow(/10.0.0.0\/99/);
  });
});
