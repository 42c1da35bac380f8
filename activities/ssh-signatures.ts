// Signing and verifying decision statements with OpenSSH's own ssh-keygen (SSHSIG, `-Y sign|verify`): no
// cryptography here, only files in a private temp dir and one-line reasons without key material.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isOpenSshPublicKey, keyWithoutComment, PRINCIPAL_NAME_PATTERN, type GatewayConfig } from '../core/approvers';
import { DECISION_NAMESPACE, filesDigestText } from '../core/decision-statement';
import { MAX_SIGNATURE } from '../core/decisions';

const SSH_KEYGEN = 'ssh-keygen';
const SSH_KEYGEN_TIMEOUT_MS = 15_000;
/** Signing may wait for a person to type the key's passphrase. */
const SIGNING_TIMEOUT_MS = 120_000;
const GATEWAY_PREFIX = 'gateway:';
const SIGNATURE_ARMOR = /^-----BEGIN SSH SIGNATURE-----\n[A-Za-z0-9+/=\n]+\n-----END SSH SIGNATURE-----\n$/;
const FINGERPRINT = /SHA256:[A-Za-z0-9+/]+/;

export type StatementVerdict = { ok: true; fingerprint: string; key: string } | { ok: false; reason: string };
export type DecisionVerdict = { ok: true; fingerprint: string; signer: string } | { ok: false; reason: string };
export interface SigningKeys {
  approverKeys: Record<string, string[]>;
  gateways: Record<string, GatewayConfig>;
}

/** Signs `text` with a private key file, or with a `.pub` file whose private half ssh-agent holds. */
export async function signStatement(text: string, keyFile: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const throughAgent = keyFile.endsWith('.pub') && Boolean(env.SSH_AUTH_SOCK);
  const result = await runSshKeygen(['-Y', 'sign', '-f', keyFile, '-n', DECISION_NAMESPACE, ...(throughAgent ? ['-U'] : [])], text, SIGNING_TIMEOUT_MS, env);
  const signature = result.stdout.replace(/\r\n/g, '\n');
  if (result.code === 0 && SIGNATURE_ARMOR.test(signature)) return signature;
  const said = result.stderr.split('\n').filter((line) => line.trim() && !/^Signing data on standard input/.test(line));
  throw new Error(`ssh-keygen could not sign with ${keyFile}: ${oneLine(said.join('; ')) || `exit code ${result.code}`}`);
}

/** Verifies that `signature` is one of `keys` signing `text` as `principal` in dbchange's namespace. */
export async function verifyStatement(input: { text: string; signature: string; principal: string; keys: string[] }): Promise<StatementVerdict> {
  const who = signerLabel(input.principal);
  const refusal =
    signatureProblem(input.signature) ??
    (!/^(gateway:)?[A-Za-z0-9._@+-]+$/.test(input.principal) ? `"${input.principal}" cannot be a signer identity (use letters, digits and . _ @ + -)` : undefined) ??
    (input.keys.length === 0 ? `${who} has no keys in dbchange.yaml ${keysKey(input.principal)}` : undefined) ??
    (input.keys.some((key) => !isOpenSshPublicKey(key.trim())) ? `a key of ${who} is not an OpenSSH public key (check ${keysKey(input.principal)})` : undefined);
  if (refusal) return { ok: false, reason: refusal };
  return inPrivateDir(async (dir) => {
    const allowed = await writePrivate(dir, 'allowed_signers', allowedSigners([{ principal: input.principal, keys: input.keys }]));
    const signatureFile = await writePrivate(dir, 'statement.sig', normalizedSignature(input.signature));
    const verified = await runSshKeygen(['-Y', 'verify', '-f', allowed, '-I', input.principal, '-n', DECISION_NAMESPACE, '-s', signatureFile], input.text);
    const fingerprint = FINGERPRINT.exec(verified.stdout)?.[0];
    if (verified.code === 0 && fingerprint) {
      const fingerprints = await Promise.all(input.keys.map((key) => fingerprintOf(key)));
      return { ok: true, fingerprint, key: input.keys[fingerprints.indexOf(fingerprint)]?.trim() ?? '' };
    }
    const known = knownFailure(verified.stderr);
    if (known) return { ok: false, reason: known };
    // A good signature by a key that is not listed says nothing on stderr: name the key it was made with.
    const unchecked = await runSshKeygen(['-Y', 'check-novalidate', '-n', DECISION_NAMESPACE, '-s', signatureFile], input.text);
    const signedWith = unchecked.code === 0 ? FINGERPRINT.exec(unchecked.stdout)?.[0] : undefined;
    if (signedWith) return { ok: false, reason: `signed with key ${signedWith}, which is not one of the keys of ${who}` };
    return { ok: false, reason: oneLine(verified.stderr, dir) || `ssh-keygen could not verify the signature as ${who}` };
  });
}

/**
 * Verifies a decision sent as `user`: with the user's own keys, else with a gateway that acts for them. When
 * neither does, says whose key it was if it was another approver's or a gateway's that may not act for `user`.
 * Checks the signature only; what the statement says is statementMismatch's job.
 */
export async function verifyDecision(config: SigningKeys, decision: { user: string; text: string; signature: string }): Promise<DecisionVerdict> {
  const { user, text, signature } = decision;
  const problem = signatureProblem(signature);
  if (problem) return { ok: false, reason: problem };
  const ownKeys = Object.hasOwn(config.approverKeys, user) ? config.approverKeys[user] : [];
  const gateways = Object.entries(config.gateways);
  const actingFor = gateways.filter(([, gateway]) => gateway.actsFor.includes(user));
  let firstReason: string | undefined;
  if (ownKeys.length > 0) {
    const verdict = await verifyStatement({ text, signature, principal: user, keys: ownKeys });
    if (verdict.ok) return { ok: true, fingerprint: verdict.fingerprint, signer: user };
    firstReason = verdict.reason;
  }
  for (const [name, gateway] of actingFor) {
    const verdict = await verifyStatement({ text, signature, principal: `${GATEWAY_PREFIX}${name}`, keys: gateway.keys });
    if (verdict.ok) return { ok: true, fingerprint: verdict.fingerprint, signer: `gateway ${name}` };
    firstReason ??= verdict.reason;
  }
  const others = [
    ...Object.entries(config.approverKeys).filter(([name, keys]) => name !== user && keys.length > 0 && PRINCIPAL_NAME_PATTERN.test(name)).map(([name, keys]) => ({ principal: name, keys })),
    ...gateways.filter(([, gateway]) => !gateway.actsFor.includes(user)).map(([name, gateway]) => ({ principal: `${GATEWAY_PREFIX}${name}`, keys: gateway.keys })),
  ];
  const owner = (await keyOwners(signature, others))[0];
  if (owner?.startsWith(GATEWAY_PREFIX)) {
    const name = owner.slice(GATEWAY_PREFIX.length);
    return { ok: false, reason: `gateway ${name} may not act for ${user} (actsFor: ${config.gateways[name].actsFor.join(', ')})` };
  }
  if (owner) return { ok: false, reason: `signed with ${owner}'s key, not ${user}'s` };
  return { ok: false, reason: firstReason ?? `${user} has no keys in dbchange.yaml approvers.${user}.keys, and no gateway acts for ${user}` };
}

/** `SHA256:…` of one public key line, as ssh-keygen -l prints it. */
export async function fingerprintOf(publicKey: string): Promise<string> {
  const result = await runSshKeygen(['-l', '-f', '-'], `${keyWithoutComment(publicKey)}\n`);
  const fingerprint = result.code === 0 ? FINGERPRINT.exec(result.stdout)?.[0] : undefined;
  if (!fingerprint) throw new Error('ssh-keygen could not read the public key (expected e.g. ssh-ed25519 AAAA… alice@laptop)');
  return fingerprint;
}

/** A pipeline gate's digest, `sha256:<hex>` of filesDigestText (workflows cannot hash, so an activity does). */
export function digestOfFiles(entries: readonly { version: string; checksum: string; target?: string }[]): string {
  return `sha256:${createHash('sha256').update(filesDigestText(entries), 'utf8').digest('hex')}`;
}

/** Why a signature is refused before ssh-keygen sees it: too big, or not an armored SSH signature. */
export function signatureProblem(signature: string): string | undefined {
  if (Buffer.byteLength(signature, 'utf8') > MAX_SIGNATURE) return `the signature is larger than ${MAX_SIGNATURE} bytes; an SSH signature is under 2 KB`;
  const armored = normalizedSignature(signature);
  if (armored.startsWith('-----BEGIN SSH SIGNATURE-----\n') && !armored.includes('-----END SSH SIGNATURE-----')) {
    return 'the signature is truncated: it has no -----END SSH SIGNATURE----- line';
  }
  if (!SIGNATURE_ARMOR.test(armored)) return 'not an SSH signature: expected the -----BEGIN SSH SIGNATURE----- … -----END SSH SIGNATURE----- text of ssh-keygen -Y sign';
  return undefined;
}

/** The principals (of `signers`) whose keys made `signature`, by the key it carries; it does not check the text. */
async function keyOwners(signature: string, signers: { principal: string; keys: string[] }[]): Promise<string[]> {
  if (signers.length === 0) return [];
  return inPrivateDir(async (dir) => {
    const allowed = await writePrivate(dir, 'allowed_signers', allowedSigners(signers));
    const signatureFile = await writePrivate(dir, 'statement.sig', normalizedSignature(signature));
    const found = await runSshKeygen(['-Y', 'find-principals', '-f', allowed, '-s', signatureFile], '');
    return found.code === 0 ? found.stdout.split('\n').filter(Boolean) : [];
  });
}

function allowedSigners(signers: { principal: string; keys: string[] }[]): string {
  return signers
    .flatMap(({ principal, keys }) => keys.filter((key) => isOpenSshPublicKey(key.trim())).map((key) => `${principal} namespaces="${DECISION_NAMESPACE}" ${keyWithoutComment(key)}\n`))
    .join('');
}

/** ssh-keygen's stderr for a signature that cannot be the statement's, as a reason a person can act on. */
function knownFailure(stderr: string): string | undefined {
  if (/incorrect signature/i.test(stderr)) return 'the signature does not match the statement (it was made over other text, or the text was changed)';
  if (/namespace does not match/i.test(stderr)) return `the signature was made for another purpose: sign with ssh-keygen -Y sign -n ${DECISION_NAMESPACE}`;
  if (/parse signature|invalid format|missing (header|footer)|sshsig/i.test(stderr)) return 'the signature is truncated or damaged (ssh-keygen cannot read it)';
  return undefined;
}

function signerLabel(principal: string): string {
  return principal.startsWith(GATEWAY_PREFIX) ? `gateway ${principal.slice(GATEWAY_PREFIX.length)}` : principal;
}

function keysKey(principal: string): string {
  return principal.startsWith(GATEWAY_PREFIX) ? `gateways.${principal.slice(GATEWAY_PREFIX.length)}.keys` : `approvers.${principal}.keys`;
}

function normalizedSignature(signature: string): string {
  return `${signature.replace(/\r\n/g, '\n').trim()}\n`;
}

/** The first line of ssh-keygen's words, without temp paths or anything long enough to be key material. */
function oneLine(text: string, dir?: string): string {
  const first = text.split('\n').find((line) => line.trim()) ?? '';
  const withoutPath = dir ? first.split(dir).join('') : first;
  return withoutPath.replace(/[A-Za-z0-9+/]{40,}={0,2}/g, '…').trim().slice(0, 300);
}

async function inPrivateDir<T>(use: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'dbchange-signature-'));
  try {
    await chmod(dir, 0o700);
    return await use(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function writePrivate(dir: string, name: string, content: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, content, { mode: 0o600 });
  return file;
}

interface SshKeygenResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs ssh-keygen with `input` on stdin; resolves with its exit code and output, rejects only when it cannot run. */
function runSshKeygen(args: string[], input: string, timeoutMs = SSH_KEYGEN_TIMEOUT_MS, env: NodeJS.ProcessEnv = process.env): Promise<SshKeygenResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(SSH_KEYGEN, args, { env, timeout: timeoutMs, maxBuffer: 64 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error && typeof error.code === 'string') {
        reject(new Error(error.code === 'ENOENT' ? 'ssh-keygen is not installed here (install OpenSSH 8.2 or newer)' : `ssh-keygen could not run: ${error.code}`));
        return;
      }
      if (error?.killed) {
        resolve({ code: null, stdout, stderr: `ssh-keygen did not finish within ${timeoutMs / 1000}s (is it waiting for a passphrase?)` });
        return;
      }
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
    child.stdin?.on('error', () => undefined); // ssh-keygen may exit before reading all of stdin
    child.stdin?.end(input);
  });
}
