/**
 * Minimal NATS JWT v2 issuing for tests (there is no `nsc` on the machine): an
 * operator, its accounts and their users, a nats-server config trusting the
 * operator with the accounts preloaded in a MEMORY resolver, and .creds files.
 *
 * Layout as in github.com/nats-io/jwt/v2: header {"typ":"JWT","alg":"ed25519-nkey"};
 * the signature is the issuer's ed25519 signature over `b64url(header).b64url(claims)`;
 * jti is base32 (no padding) of SHA-512/256 over the claims without jti. nats-server
 * does not recompute jti: it checks the signature, the issuer's key prefix, and
 * that the issuer is trusted (operator key for accounts, account key for users).
 */
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { nkeys } from "@nats-io/transport-node";

export type KeyPair = ReturnType<typeof nkeys.createUser>;

const HEADER = { typ: "JWT", alg: "ed25519-nkey" };
const UNLIMITED = -1;

function b64url(data: string | Uint8Array): string {
  return Buffer.from(data).toString("base64url");
}

const BASE32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 base32, no padding (Go's base32.StdEncoding.WithPadding(NoPadding)). */
function base32(data: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const byte of data) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/** Signs `nats` claims about `subject` with `issuer` into a v2 JWT. */
export function encodeJwt(
  issuer: KeyPair,
  subject: string,
  name: string,
  nats: Record<string, unknown>,
): string {
  const base = {
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject,
  };
  const jti = base32(createHash("sha512-256").update(JSON.stringify(base)).digest());
  const claims = { jti, ...base, nats };
  const signed = `${b64url(JSON.stringify(HEADER))}.${b64url(JSON.stringify(claims))}`;
  const sig = issuer.sign(new TextEncoder().encode(signed));
  return `${signed}.${b64url(sig)}`;
}

/** A self-signed operator JWT. */
export function operatorJwt(operator: KeyPair, name = "test-operator"): string {
  return encodeJwt(operator, operator.getPublicKey(), name, { type: "operator", version: 2 });
}

/** An account JWT issued by the operator, with no limits. */
export function accountJwt(operator: KeyPair, account: KeyPair, name = "test-account"): string {
  return encodeJwt(operator, account.getPublicKey(), name, {
    limits: {
      subs: UNLIMITED,
      data: UNLIMITED,
      payload: UNLIMITED,
      imports: UNLIMITED,
      exports: UNLIMITED,
      wildcards: true,
      conn: UNLIMITED,
      leaf: UNLIMITED,
    },
    default_permissions: { pub: {}, sub: {} },
    type: "account",
    version: 2,
  });
}

/** A user JWT issued by the account, with no limits or permissions. */
export function userJwt(account: KeyPair, user: KeyPair, name = "test-user"): string {
  return encodeJwt(account, user.getPublicKey(), name, {
    pub: {},
    sub: {},
    subs: UNLIMITED,
    data: UNLIMITED,
    payload: UNLIMITED,
    type: "user",
    version: 2,
  });
}

/** The .creds file text (as `nsc generate creds` writes it). */
export function credsText(jwt: string, user: KeyPair): string {
  const seed = new TextDecoder().decode(user.getSeed());
  return (
    `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n` +
    "************************* IMPORTANT *************************\n" +
    "NKEY Seed printed below can be used to sign and prove identity.\n" +
    "NKEYs are sensitive and should be treated as secrets.\n\n" +
    `-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n\n` +
    "*************************************************************\n"
  );
}

export interface OperatorSetup {
  readonly operator: KeyPair;
  readonly account: KeyPair;
  /** nats-server config file: operator mode, the account preloaded in memory. */
  readonly conf: string;
  /** Writes a .creds file for a new user issued by `issuer` (the account by default). */
  writeCreds(file: string, issuer?: KeyPair): string;
}

/** An operator with one account, and a server config trusting them, in `dir`. */
export function operatorSetup(dir: string): OperatorSetup {
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  const conf = join(dir, "operator.conf");
  writeFileSync(
    conf,
    `operator: ${operatorJwt(operator)}\n` +
      "resolver: MEMORY\n" +
      `resolver_preload: {\n  ${account.getPublicKey()}: ${accountJwt(operator, account)}\n}\n`,
  );
  return {
    operator,
    account,
    conf,
    writeCreds(file, issuer = account) {
      const user = nkeys.createUser();
      writeFileSync(file, credsText(userJwt(issuer, user), user), { mode: 0o600 });
      return file;
    },
  };
}
