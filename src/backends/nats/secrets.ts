/**
 * Resolves the secrets of the NATS auth settings. routes.yaml never holds a secret
 * inline: each is `{env: VAR}` or `{file: path}`, read at start so a missing
 * one fails the start with its name rather than a vague auth error later (and a
 * file again on each reconnect, see connection.ts).
 */
import { readFileSync } from "node:fs";
import type { SecretRef } from "../../config/types.js";
import { TurnoutError } from "../../errors.js";

/**
 * A secret or file named in `nats:` that cannot be used. A TURNOUT_ERR_CONFIG
 * whose message is `key: detail`; `key` and `detail` are kept apart so the start
 * can list it as a configuration problem like those of the file itself.
 */
export class NatsSettingError extends TurnoutError {
  constructor(
    /** The setting, e.g. `nats.auth.token`. */
    readonly key: string,
    /** What is wrong, naming the variable or file (never the secret). */
    readonly detail: string,
    cause?: unknown,
  ) {
    super("TURNOUT_ERR_CONFIG", `${key}: ${detail}`, { cause });
    this.name = "NatsSettingError";
  }
}

/** The secret's value; `key` (e.g. `nats.auth.token`) names the setting in the error. */
export function resolveSecret(ref: SecretRef, key: string): string {
  if ("env" in ref) {
    const value = process.env[ref.env];
    if (value === undefined || value === "") {
      throw new NatsSettingError(key, `environment variable ${ref.env} is not set or empty`);
    }
    return value;
  }
  return readSecretFile(ref.file, key);
}

/** A file's content without its trailing newline, which editors add and servers never expect. */
export function readSecretFile(file: string, key: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new NatsSettingError(key, `cannot read secret file ${file} (${reason(err)})`, err);
  }
  const value = text.replace(/\r?\n$/, "");
  if (value === "") throw new NatsSettingError(key, `secret file ${file} is empty`);
  return value;
}

/** The errno code (ENOENT, EACCES...), which says why more plainly than the message. */
export function reason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "EISDIR") return "EISDIR: a directory, not a file";
  return code ?? String(err);
}
