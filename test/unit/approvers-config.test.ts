import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../core/config';
import { isOpenSshPublicKey, keyWithoutComment } from '../../core/approvers';

const FILE = '/project/dbchange.yaml';
const ALICE_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGDYRF8n5lZ/tVG0gHTV7Kw8nV3c4zCNx1YpfNfd7Mbh alice@laptop';
const BOB_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILfbqMOIgkQtz20ZLchdD2cMmIwhOYWORrToBDKDkfFs';
const CHATOPS_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO+hEwHlK68dZzz75D23hKnwOWJuws3saOhQsxhbNMMi chatops';
const ECDSA_KEY = 'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPkja0I1rYITpKV9uu/wi6wpDiaWCyvcMuqyoUO739l/5EAvrCJWKHBBtIQ/Lo/68GQkI+/bcHi/z7jNaa0jpig=';

const HEAD = `migrations: { postDeploy: db/post_migrate }
environments:
  - name: staging
    databaseUrl: postgres://localhost/app
`;

function parse(text: string) {
  return parseConfig(HEAD + text, FILE, {}, '/project');
}

function problemsOf(text: string): string[] {
  try {
    parse(text);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('approvers, approvals and gateways in dbchange.yaml', () => {
  it('reads the documented example: roles and keys apart, the old form with no keys, and a gateway', () => {
    const config = parse(`approvers:
  alice: { roles: [release-manager, eoc], keys: ["${ALICE_KEY}"] }
  bob: [manager]
approvals: { signatures: required }
gateways:
  chatops: { keys: ["${CHATOPS_KEY}"], actsFor: [alice, bob] }
`);
    expect(config.approvers).toEqual({ alice: ['release-manager', 'eoc'], bob: ['manager'] });
    expect(config.approverKeys).toEqual({ alice: [ALICE_KEY], bob: [] });
    expect(config.signatures).toBe('required');
    expect(config.gateways).toEqual({ chatops: { keys: [CHATOPS_KEY], actsFor: ['alice', 'bob'] } });
  });

  it('defaults to optional signatures, no keys and no gateways', () => {
    const config = parse('approvers:\n  bob: [manager]\n');
    expect(config.signatures).toBe('optional');
    expect(config.approverKeys).toEqual({ bob: [] });
    expect(config.gateways).toEqual({});
    expect(parse('').approvers).toEqual({});
  });

  it('accepts the object form without keys, and keys of each supported type', () => {
    const config = parse(`approvers:
  alice: { roles: [eoc] }
  bob: { roles: [manager], keys: ["${BOB_KEY}", "${ECDSA_KEY} bob@yubikey"] }
`);
    expect(config.approvers).toEqual({ alice: ['eoc'], bob: ['manager'] });
    expect(config.approverKeys).toEqual({ alice: [], bob: [BOB_KEY, `${ECDSA_KEY} bob@yubikey`] });
  });

  it('reports a key that is not an OpenSSH public key with its line and path', () => {
    expect(
      problemsOf(`approvers:
  alice:
    roles: [eoc]
    keys:
      - "${ALICE_KEY}"
      - "ssh-ed25519 not-base64!"
`),
    ).toEqual(['line 10: approvers.alice.keys.1: not an OpenSSH public key (expected e.g. ssh-ed25519 AAAA… alice@laptop)']);
  });

  it('refuses a private key, a key type dbchange cannot verify, a key cut short and a key with the wrong type', () => {
    const problems = problemsOf(`approvers:
  alice: { roles: [eoc], keys: ["-----BEGIN OPENSSH PRIVATE KEY-----"] }
  bob: { roles: [eoc], keys: ["ssh-dss AAAAB3NzaC1kc3MAAACBAP"] }
  carol: { roles: [eoc], keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1"] }
  dave: { roles: [eoc], keys: ["ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIGDYRF8n5lZ/tVG0gHTV7Kw8nV3c4zCNx1YpfNfd7Mbh"] }
`);
    expect(problems).toEqual([
      'line 6: approvers.alice.keys.0: not an OpenSSH public key (expected e.g. ssh-ed25519 AAAA… alice@laptop)',
      'line 7: approvers.bob.keys.0: not an OpenSSH public key (expected e.g. ssh-ed25519 AAAA… alice@laptop)',
      'line 8: approvers.carol.keys.0: not an OpenSSH public key (expected e.g. ssh-ed25519 AAAA… alice@laptop)',
      'line 9: approvers.dave.keys.0: not an OpenSSH public key (expected e.g. ssh-ed25519 AAAA… alice@laptop)',
    ]);
  });

  it('says what an approver may be when it is neither a list of roles nor roles and keys', () => {
    expect(problemsOf('approvers:\n  alice: release-manager\n')).toEqual([
      'line 6: approvers.alice: expected a list of roles, e.g. [release-manager], or { roles: [release-manager], keys: ["ssh-ed25519 AAAA… alice@laptop"] }',
    ]);
    expect(problemsOf('approvers:\n  alice: { roles: [eoc], key: [] }\n')).toEqual(['line 6: approvers.alice.key: unknown key (check its spelling)']);
  });

  it('refuses an approver with keys whose name cannot be a signer identity', () => {
    expect(problemsOf(`approvers:\n  "alice smith": { roles: [eoc], keys: ["${ALICE_KEY}"] }\n`)).toEqual([
      'line 6: approvers.alice smith: an approver with keys needs a name of letters, digits and . _ @ + - (it is the signer identity ssh-keygen checks)',
    ]);
  });

  it('refuses an unknown signature policy', () => {
    expect(problemsOf('approvals: { signatures: always }\n')).toEqual([expect.stringMatching(/^line 5: approvals.signatures: /)]);
  });

  it('names each gateway actsFor entry that is not a configured approver, with its line', () => {
    expect(
      problemsOf(`approvers:
  alice: [eoc]
gateways:
  chatops:
    keys: ["${CHATOPS_KEY}"]
    actsFor:
      - alice
      - mallory
`),
    ).toEqual(['line 12: gateways.chatops.actsFor.1: "mallory" is not a configured approver (configured: alice)']);
  });

  it('refuses a gateway without keys or without anyone to act for, and a gateway with a bad key', () => {
    const problems = problemsOf(`approvers:
  alice: [eoc]
gateways:
  chatops: { keys: [], actsFor: [] }
  slack: { keys: ["ssh-ed25519 AAAA"], actsFor: [alice] }
`);
    expect(problems).toEqual([
      expect.stringMatching(/^line 8: gateways.chatops.keys: list the gateway's public key/),
      expect.stringMatching(/^line 8: gateways.chatops.actsFor: list the approvers this gateway may act for/),
      'line 9: gateways.slack.keys.0: not an OpenSSH public key (expected e.g. ssh-ed25519 AAAA… alice@laptop)',
    ]);
  });
});

describe('isOpenSshPublicKey', () => {
  it('takes a key with or without a comment, and with spaces in the comment', () => {
    expect(isOpenSshPublicKey(BOB_KEY)).toBe(true);
    expect(isOpenSshPublicKey(`${BOB_KEY} bob at work`)).toBe(true);
  });

  it('refuses options before the key, two keys on a line and a key split over lines', () => {
    expect(isOpenSshPublicKey(`namespaces="x" ${BOB_KEY}`)).toBe(false);
    expect(isOpenSshPublicKey(`${BOB_KEY}\n${ALICE_KEY}`)).toBe(false);
    expect(isOpenSshPublicKey('')).toBe(false);
  });

  it('keeps the type and key of a line, without its comment', () => {
    expect(keyWithoutComment(`  ${ALICE_KEY}  `)).toBe(ALICE_KEY.replace(' alice@laptop', ''));
  });
});
