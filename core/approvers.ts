// Who may decide, and with which SSH keys: dbchange.yaml's `approvers`, `approvals` and `gateways`.
import { z } from 'zod';

export const PUBLIC_KEY_TYPES = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'ssh-rsa',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
] as const;
export const SIGNATURE_POLICIES = ['optional', 'required'] as const;
export type SignaturePolicy = (typeof SIGNATURE_POLICIES)[number];
export const DEFAULT_SIGNATURE_POLICY: SignaturePolicy = 'optional';
/** A name that is a signer identity in an allowed_signers file: no spaces, commas, quotes or wildcards. */
export const PRINCIPAL_NAME_PATTERN = /^[A-Za-z0-9._@+-]+$/;

const PUBLIC_KEY_LINE = /^(\S+)[ \t]+([A-Za-z0-9+/]+={0,2})(?:[ \t]+[^\r\n]*)?$/;

export interface GatewayConfig {
  /** `<type> <base64> [comment]` lines. */
  keys: string[];
  /** The approvers this gateway may assert, having authenticated them itself. */
  actsFor: string[];
}

/**
 * True for one OpenSSH public key line, `<type> <base64> [comment]`, of a type ssh-keygen can sign with, whose
 * blob names the same type (catches a key pasted with the wrong prefix or cut short).
 */
export function isOpenSshPublicKey(line: string): boolean {
  const match = PUBLIC_KEY_LINE.exec(line);
  if (!match || !(PUBLIC_KEY_TYPES as readonly string[]).includes(match[1])) return false;
  return blobKeyType(match[2]) === match[1];
}

/** The key type written inside a key blob (a uint32 length, then the name), or undefined when it is not one. */
function blobKeyType(base64: string): string | undefined {
  let bytes: string;
  try {
    bytes = atob(base64);
  } catch {
    return undefined;
  }
  if (bytes.length < 4) return undefined;
  const length = ((bytes.charCodeAt(0) << 24) | (bytes.charCodeAt(1) << 16) | (bytes.charCodeAt(2) << 8) | bytes.charCodeAt(3)) >>> 0;
  return length > 0 && length <= 64 && bytes.length > 4 + length ? bytes.slice(4, 4 + length) : undefined;
}

/** `<type> <base64>`: the part of a key line that identifies the key, without its comment. */
export function keyWithoutComment(line: string): string {
  return line.trim().split(/\s+/).slice(0, 2).join(' ');
}

const role = z.string().min(1);
const publicKey = z
  .string()
  .transform((line) => line.trim())
  .refine(isOpenSshPublicKey, 'not an OpenSSH public key (expected e.g. ssh-ed25519 AAAA… alice@laptop)');

export const approverSchema = z.union(
  [z.array(role), z.strictObject({ roles: z.array(role), keys: z.array(publicKey).default([]) })],
  { error: 'expected a list of roles, e.g. [release-manager], or { roles: [release-manager], keys: ["ssh-ed25519 AAAA… alice@laptop"] }' },
);

export const approvalsSchema = z
  .strictObject({ signatures: z.enum(SIGNATURE_POLICIES).default(DEFAULT_SIGNATURE_POLICY) })
  .default({ signatures: DEFAULT_SIGNATURE_POLICY });

export const gatewaysSchema = z
  .record(
    z.string().regex(/^[a-z][a-z0-9-]*$/, 'use lowercase letters, digits and dashes, starting with a letter (e.g. chatops)'),
    z.strictObject({
      keys: z.array(publicKey).min(1, 'list the gateway\'s public key, e.g. ["ssh-ed25519 AAAA… chatops"]'),
      actsFor: z.array(z.string().min(1)).min(1, 'list the approvers this gateway may act for, e.g. [alice, bob]'),
    }),
  )
  .default({});

type RawApprover = z.infer<typeof approverSchema>;

/** Roles and keys apart: `approvers` keeps its old shape (user → roles); `approverKeys` is user → key lines. */
export function splitApprovers(raw: Record<string, RawApprover>): { roles: Record<string, string[]>; keys: Record<string, string[]> } {
  const roles: Record<string, string[]> = {};
  const keys: Record<string, string[]> = {};
  for (const [user, entry] of Object.entries(raw)) {
    roles[user] = Array.isArray(entry) ? entry : entry.roles;
    keys[user] = Array.isArray(entry) ? [] : entry.keys;
  }
  return { roles, keys };
}

/**
 * Checks across approvers and gateways, on the raw document: a gateway acts only for configured approvers, and an
 * approver with keys has a name ssh-keygen can take as a signer identity.
 */
export function approverProblems(raw: unknown, lineOf: (path: PropertyKey[]) => string): string[] {
  const config = (raw ?? {}) as { approvers?: unknown; gateways?: unknown };
  const approvers = isRecord(config.approvers) ? config.approvers : {};
  const gateways = isRecord(config.gateways) ? config.gateways : {};
  const problems: string[] = [];
  for (const [user, entry] of Object.entries(approvers)) {
    if (isRecord(entry) && entry.keys !== undefined && !PRINCIPAL_NAME_PATTERN.test(user)) {
      problems.push(`${lineOf(['approvers', user])}: approvers.${user}: an approver with keys needs a name of letters, digits and . _ @ + - (it is the signer identity ssh-keygen checks)`);
    }
  }
  const known = Object.keys(approvers);
  for (const [name, gateway] of Object.entries(gateways)) {
    const actsFor = isRecord(gateway) && Array.isArray(gateway.actsFor) ? (gateway.actsFor as unknown[]) : [];
    actsFor.forEach((user, index) => {
      if (typeof user === 'string' && !Object.hasOwn(approvers, user)) {
        problems.push(`${lineOf(['gateways', name, 'actsFor', index])}: gateways.${name}.actsFor.${index}: "${user}" is not a configured approver (configured: ${known.join(', ') || 'none'})`);
      }
    });
  }
  return problems;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
